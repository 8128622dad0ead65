/**
 * The embedded stack as the benchmarks drive it: a Temporal dev server, the local EMR, and workers
 * in processes of their own (as in production, so their CPU and memory are theirs), one per lake.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import type { DayRange } from '../assets';
import { startMaterialize } from '../client/runs';
import { loadConfig, type Config } from '../config/config';
import { startLocalEmr, type LocalEmr } from '../dev/emr-local';
import { startTemporalDevServer, type DevServer } from '../dev/temporal-server';
import type { MaterializeResult } from '../workflows/types';
import { WORKER_ENV, WORKER_NODE_FLAGS } from '../worker/process-settings';
import { REPO_ROOT } from './lib';

const WORKER_READY_TIMEOUT_MS = 120_000;

export interface BenchStack {
  client: Client;
  emr: LocalEmr;
  /** The Temporal dev server's process id, for its CPU time. */
  temporalPid: number | undefined;
  /** A worker for `lake` on a task queue of its own; `env` adds settings (e.g. the fuse mode). */
  lake(name: string, lakeDir: string, raw: string, env?: Record<string, string>): BenchLake;
  /** The process ids of the workers started so far. */
  workerPids(): number[];
  stop(): Promise<void>;
}

export interface BenchLake {
  config: Config;
  worker: ChildProcess;
  /**
   * Resolves once the worker polls its workflow and activity task queues. A user's worker is a
   * running service: a measured run starts after this, so the worker's own start (Node, the
   * workflow bundle: 4-8 s here) is not counted as the run's.
   */
  ready(): Promise<void>;
  /** Materializes `selection` for `range`; the seconds from start to result, and the result. */
  materialize(
    selection: string,
    range: DayRange,
    only?: 'outdated' | 'all',
  ): Promise<{ seconds: number; result: MaterializeResult }>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startBenchStack(
  root: string,
  opts: {
    sparkSubmit?: string;
    /** Added to every step's environment. */
    stepEnv?: Record<string, string>;
    stepConcurrency?: number;
    pollMs?: number;
    /** Run the compiled worker (`npm run build`: dist/, prebuilt workflow bundle), as the image does. */
    compiled?: boolean;
  },
): Promise<BenchStack> {
  if (opts.compiled) execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO_ROOT, stdio: 'ignore' });
  // With the node flags and environment the image runs the worker with.
  const workerArgs = [
    ...WORKER_NODE_FLAGS,
    ...(opts.compiled
      ? [path.join(REPO_ROOT, 'dist', 'worker', 'main.js')]
      : ['--require', 'tsx/cjs', path.join(REPO_ROOT, 'worker/main.ts')]),
  ];
  const temporal: DevServer = await startTemporalDevServer({
    dbFile: path.join(root, 'temporal.db'),
    port: await freePort(),
    uiPort: 0,
    ui: false,
  });
  let emr: LocalEmr | undefined;
  const workers: ChildProcess[] = [];
  try {
    emr = await startLocalEmr({
      stateDir: path.join(root, 'emr'),
      stepConcurrency: opts.stepConcurrency ?? 2,
      pollIntervalMs: 20,
      ...(opts.sparkSubmit ? { sparkSubmit: opts.sparkSubmit } : {}),
      ...(opts.stepEnv ? { stepEnv: opts.stepEnv } : {}),
    });
    const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
    const localEmr = emr;
    return {
      client,
      emr,
      temporalPid: temporal.process.pid,
      workerPids: () => workers.flatMap((w) => (w.pid === undefined ? [] : [w.pid])),
      lake(name, lakeDir, raw, extra = {}) {
        const env: Record<string, string> = {
          ...WORKER_ENV,
          SPARKIFY_TEMPORAL_ADDRESS: temporal.address,
          SPARKIFY_TEMPORAL_TASK_QUEUE: `bench-${name}`,
          SPARKIFY_EMR_ENDPOINT: localEmr.endpoint,
          SPARKIFY_EMR_CLUSTER_ID: localEmr.clusterId,
          // The local EMR has no API quota: poll as often as `sparkify dev` could.
          SPARKIFY_EMR_POLL_INITIAL_MS: String(opts.pollMs ?? 100),
          SPARKIFY_EMR_POLL_MAX_MS: String((opts.pollMs ?? 100) * 5),
          SPARKIFY_RAW_URI: raw,
          SPARKIFY_LAKE_URI: lakeDir,
          SPARKIFY_CODE_URI: path.join(root, 'code'),
          SPARKIFY_STEP_CONCURRENCY: '4',
          SPARKIFY_MONTH_CONCURRENCY: '4',
          ...extra,
        };
        const logFd = openSync(path.join(root, `worker-${name}.log`), 'a');
        const worker = spawn(process.execPath, workerArgs, {
          env: { ...process.env, ...env },
          // The worker's log would drown the bench's progress; it is kept beside the lake.
          stdio: ['ignore', logFd, logFd],
        });
        closeSync(logFd);
        workers.push(worker);
        const config = loadConfig({ env });
        return {
          config,
          worker,
          async ready() {
            const deadline = Date.now() + WORKER_READY_TIMEOUT_MS;
            for (;;) {
              if (worker.exitCode !== null || worker.signalCode !== null) {
                throw new Error(
                  `the ${name} worker exited (${worker.exitCode ?? worker.signalCode}) before it polled; log ${path.join(root, `worker-${name}.log`)}`,
                );
              }
              const polled = await Promise.all(
                [
                  proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                  proto.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                ].map(
                  async (taskQueueType) =>
                    (
                      await client.workflowService.describeTaskQueue({
                        namespace: config.temporal.namespace,
                        taskQueue: { name: config.temporal.taskQueue },
                        taskQueueType,
                      })
                    ).pollers.length > 0,
                ),
              );
              if (polled.every(Boolean)) return;
              if (Date.now() > deadline) {
                throw new Error(`the ${name} worker did not poll within ${WORKER_READY_TIMEOUT_MS / 1000} s`);
              }
              await new Promise((r) => setTimeout(r, 100));
            }
          },
          async materialize(selection, range, only = 'outdated') {
            const t0 = process.hrtime.bigint();
            const { handle } = await startMaterialize(client, config, { selection, range, only });
            const result = await handle.result();
            return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result };
          },
        };
      },
      async stop() {
        for (const w of workers) w.kill('SIGTERM');
        await Promise.all(
          workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))),
        );
        await client.connection.close();
        await localEmr.close({ killSteps: true });
        await temporal.stop();
      },
    };
  } catch (err) {
    for (const w of workers) w.kill('SIGKILL');
    await emr?.close({ killSteps: true });
    await temporal.stop();
    throw err;
  }
}

/** Peak resident set of a process (VmHWM), in bytes. */
export function peakRss(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a live process has used so far; null once it is gone. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of this process's other children, the step processes: those reaped so far (cutime +
 * cstime of this process) and, for each live child not in `exclude` (the Temporal server, the
 * workers), its own CPU and that of the children it reaped. The local EMR's runner stays alive and
 * serves every step, so its share is only visible on the live process.
 */
export function stepProcessesCpuSeconds(exclude: readonly (number | undefined)[]): number {
  let total = reapedChildrenCpuSeconds();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || exclude.includes(Number(entry))) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== process.pid) continue;
      total +=
        (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
    } catch {
      // gone meanwhile: reaped, and counted by the next reading
    }
  }
  return total;
}

/** CPU seconds of this process's children that have exited and been reaped (cutime + cstime). */
export function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

// USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK).
const CLOCK_TICKS = 100;
