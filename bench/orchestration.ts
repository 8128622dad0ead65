/**
 * Orchestration overhead: Temporal, the local EMR and the bookkeeping with Spark taken out. The
 * local EMR runs every step with a no-op spark-submit (bench/noop-spark-submit.js) that writes a
 * well-formed report and exits, so what is timed is everything around Spark: leases, planning,
 * submitting and polling steps, manifests.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { addDays, daysIn, monthRange } from '../assets';
import { openLake } from '../lake/store';
import { startBackfill } from '../client/backfill';
import { startMaterialize } from '../client/runs';
import { loadConfig, type Config } from '../config/config';
import { startLocalEmr, type LocalEmr } from '../dev/emr-local';
import { startTemporalDevServer, type DevServer } from '../dev/temporal-server';
import { BenchResult, REPO_ROOT, Scratch, median, row } from './lib';

export interface OrchestrationBenchOptions {
  /** Days of the per-day backfill. */
  backfillDays: number;
  /** Repetitions of the one-day run (median reported). */
  repeat: number;
  concurrency: number;
}

/** Dagster's figures on this kind of machine (see ../shared/notes/facts.md): the anchors. */
const DAGSTER_IN_PROCESS_S = 0.87;
const DAGSTER_CLI_S = 14.3;
const DAGSTER_BACKFILL_RUNS_PER_S = 1;

const NOOP = path.join(REPO_ROOT, 'bench', 'noop-spark-submit.js');

/** Peak resident set of a process (VmHWM), in bytes. */
function peakRss(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export async function orchestrationBench(
  o: OrchestrationBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const root = scratch.dir('orchestration');
  const notes: string[] = [];
  const result: BenchResult = {
    name: 'orchestration',
    title: 'Orchestration overhead: Temporal + local EMR + bookkeeping, with a no-op Spark',
    params: { backfillDays: o.backfillDays, repeat: o.repeat, concurrency: o.concurrency },
    rows: [],
    notes,
  };
  let temporal: DevServer | undefined;
  let emr: LocalEmr | undefined;
  let client: Client | undefined;
  let worker: ReturnType<typeof spawn> | undefined;
  try {
    temporal = await startTemporalDevServer({
      dbFile: path.join(root, 'temporal.db'),
      port: await freePort(),
      uiPort: 0,
      ui: false,
    });
    emr = await startLocalEmr({
      stateDir: path.join(root, 'emr'),
      stepConcurrency: 64,
      sparkSubmit: NOOP,
      pollIntervalMs: 20,
    });
    const raw = path.join(root, 'raw');
    mkdirSync(path.join(raw, 'song_data/A/B/C'), { recursive: true });
    writeFileSync(path.join(raw, 'song_data/A/B/C/TRA.json'), '{"song_id":"S1"}\n');
    const env: Record<string, string> = {
      SPARKIFY_TEMPORAL_ADDRESS: temporal.address,
      SPARKIFY_TEMPORAL_TASK_QUEUE: 'bench',
      SPARKIFY_EMR_ENDPOINT: emr.endpoint,
      SPARKIFY_EMR_CLUSTER_ID: emr.clusterId,
      // The local EMR has no API quota: poll often, as `sparkify dev` does.
      SPARKIFY_EMR_POLL_INITIAL_MS: '20',
      SPARKIFY_EMR_POLL_MAX_MS: '100',
      SPARKIFY_RAW_URI: raw,
      SPARKIFY_CODE_URI: path.join(root, 'code'),
      SPARKIFY_LAKE_URI: path.join(root, 'lake-one-day'),
      SPARKIFY_STEP_CONCURRENCY: '4',
      SPARKIFY_MONTH_CONCURRENCY: String(o.concurrency),
    };
    const config = (lake: string): Config => loadConfig({ env: { ...env, SPARKIFY_LAKE_URI: lake } });
    // The worker in a process of its own, as in production, so its memory is its own.
    const startWorker = (lake: string) =>
      spawn(process.execPath, ['--require', 'tsx/cjs', path.join(REPO_ROOT, 'worker/main.ts')], {
        env: { ...process.env, ...env, SPARKIFY_LAKE_URI: lake },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    client = new Client({ connection: await Connection.connect({ address: temporal.address }) });

    // 1. The whole graph for one day, on a lake where nothing is built yet.
    const lakeOne = path.join(root, 'lake-one-day');
    worker = startWorker(lakeOne);
    const seconds: number[] = [];
    for (let i = 0; i < o.repeat + 1; i++) {
      const day = addDays('2018-11-01', i);
      const t0 = process.hrtime.bigint();
      const { handle } = await startMaterialize(client, config(lakeOne), {
        selection: '*',
        range: { start: day, end: addDays(day, 1) },
        only: 'all',
      });
      const res = await handle.result();
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (!res.ok) throw new Error(`one-day run ${day} failed`);
      // The first run warms the worker (bundling, connections); it is not counted.
      if (i > 0) seconds.push(s);
      log(`orchestration: one-day run ${day}: ${s.toFixed(2)} s${i === 0 ? ' (warm-up)' : ''}`);
    }
    worker.kill('SIGTERM');
    await new Promise((r) => worker!.once('exit', r));

    const oneDay = median(seconds);
    result.rows.push(
      row(
        'whole graph, one day, start to result (median)',
        oneDay,
        's',
        {
          label: 'Dagster, 3 no-op assets in-process',
          value: DAGSTER_IN_PROCESS_S,
        },
        'lower',
      ),
      row('… min / max', Math.min(...seconds), 's', { label: 'max', value: Math.max(...seconds) }),
    );

    // 2. A per-day backfill of every asset, on a fresh lake.
    const lakeBackfill = path.join(root, 'lake-backfill');
    worker = startWorker(lakeBackfill);
    const months = Math.ceil(o.backfillDays / 30.5);
    const from = '2016-01';
    const to = addDays(`${from}-01`, o.backfillDays - 1).slice(0, 7);
    const t0 = process.hrtime.bigint();
    const handle = await startBackfill(client, config(lakeBackfill), {
      selection: '*',
      from,
      to,
      per: 'day',
      concurrency: o.concurrency,
    });
    const progress = await handle.result();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const rss = peakRss(worker.pid!);
    worker.kill('SIGTERM');
    await new Promise((r) => worker!.once('exit', r));
    const days = daysIn({ start: `${from}-01`, end: monthRange(to).end }).length;
    // Every asset partition the backfill materialized has its manifest.
    const partitions = (await openLake(lakeBackfill).list('_manifests/')).length;
    if (Object.keys(progress.failed).length > 0)
      throw new Error(`the backfill failed: ${JSON.stringify(progress.failed)}`);
    log(`orchestration: backfill of ${days} days (${months} months) in ${s.toFixed(1)} s`);
    result.rows.push(
      row(
        'per-day backfill: asset partitions materialized per second',
        partitions / s,
        '/s',
        {
          label: 'Dagster backfill runs/s (dagster#28998)',
          value: DAGSTER_BACKFILL_RUNS_PER_S,
        },
        'higher',
      ),
      row('per-day backfill: day runs completed per second', days / s, '/s'),
      row('worker peak RSS during the backfill', rss, 'bytes'),
    );
    notes.push(
      `Dagster anchors (same kind of machine): ${DAGSTER_IN_PROCESS_S} s for three no-op assets in-process, ` +
        `${DAGSTER_CLI_S} s per \`dagster asset materialize\`, ~${DAGSTER_BACKFILL_RUNS_PER_S} backfill run/s launched.`,
    );
    return result;
  } finally {
    worker?.kill('SIGKILL');
    await client?.connection.close();
    await emr?.close({ killSteps: true });
    await temporal?.stop();
  }
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
