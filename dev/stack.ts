import { appendFileSync, mkdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { DefaultLogger, Runtime, type LogEntry, type Worker } from '@temporalio/worker';
import type { Config } from '../config/config';
import { s3aSupport, startLocalEmr, usesS3, type LocalEmr } from './emr-local';
import { createWorker } from '../worker/worker';
import { startTemporalDevServer, type DevServer } from './temporal-server';
import { startEmbeddedWarehouse, type EmbeddedWarehouse } from './warehouse';
import { startUiServer, type UiServer } from '../ui/server';

/** How long a stop waits for the worker to finish its tasks before it stops the rest anyway. */
const WORKER_DRAIN_MS = 15_000;
/**
 * One Ctrl-C can arrive as several signals: the terminal signals the whole foreground group and
 * npm (and tsx) relay theirs to the child as well. Signals this close to the first are that one.
 */
const SAME_KEYPRESS_MS = 300;
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const LOOPBACK = new Set(['127.0.0.1', 'localhost']);

/**
 * The in-process worker logs to a file: the terminal belongs to the run's progress table.
 * Warnings still reach the terminal, since they usually mean something needs attention.
 */
function logWorkerTo(file: string): void {
  const write = (entry: LogEntry) => {
    const line = `${new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString()} ${entry.level} ${entry.message} ${JSON.stringify(entry.meta ?? {})}\n`;
    appendFileSync(file, line);
    if (entry.level === 'WARN' || entry.level === 'ERROR')
      process.stderr.write(`worker ${entry.level}: ${entry.message}\n`);
  };
  try {
    // No shutdownSignals: the stack stops the worker itself, in order (see runDevStack).
    Runtime.install({ logger: new DefaultLogger('INFO', write), shutdownSignals: [] });
  } catch {
    // Already installed (a second stack in one process): keep the first logger.
  }
}

export interface DevStack {
  config: Config;
  uiUrl: string | null;
  /** The Sparkify page (`sparkify ui`), when asked for and its port was free. */
  pageUrl: string | null;
  emrEndpoint: string;
  /** The embedded serving database; null when the config points the warehouse elsewhere. */
  warehouse: EmbeddedWarehouse | null;
  /** Rejects when a part of the stack dies on its own (the Temporal server exits, the worker fails). */
  failed: Promise<never>;
  /**
   * Stops everything, in order: the worker (its tasks drain), the local EMR and its steps, the
   * Temporal server. Safe to call again; later calls wait for the first.
   */
  stop(): Promise<void>;
  /** Kills what is still running at once, synchronously: the steps' and the Temporal server's groups. */
  kill(): void;
}

/**
 * The embedded stack in one process tree: the Temporal dev server on a persistent SQLite file
 * (Web UI on its port), the local EMR, and a worker pointed at both. The returned config is the
 * one a client uses to talk to it. Whatever has started is stopped again if the start fails or
 * `signal` aborts it, and killed by an `exit` handler if the process exits without a stop.
 */
export async function startDevStack(
  base: Config,
  opts: { log?: (line: string) => void; ui?: boolean; page?: boolean; signal?: AbortSignal } = {},
): Promise<DevStack> {
  const log = opts.log ?? (() => undefined);
  const signal = opts.signal;
  const stateDir = resolve(base.dev.stateDir);
  mkdirSync(stateDir, { recursive: true });
  let temporal: DevServer | undefined;
  let emr: LocalEmr | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let warehouse: EmbeddedWarehouse | null = null;
  let page: UiServer | null = null;
  let stopping = false;

  const kill = () => {
    emr?.killStepsSync();
    temporal?.kill();
  };
  // Steps outlive a bare local EMR on purpose (a restarted server re-attaches them); the stack's
  // do not outlive the stack. The Temporal server has its own exit handler.
  const killSteps = () => emr?.killStepsSync();

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopping = true;
    stopped ??= (async () => {
      try {
        await page?.close();
        if (worker && running) {
          // Worker.shutdown() throws unless the worker is RUNNING (e.g. already DRAINING).
          if (worker.getState() === 'RUNNING') worker.shutdown();
          const drained = await Promise.race([
            running.then(
              () => true,
              () => true,
            ),
            delay(WORKER_DRAIN_MS).then(() => false),
          ]);
          if (!drained) log(`the worker did not drain within ${WORKER_DRAIN_MS / 1000} s; stopping the rest`);
        }
      } finally {
        try {
          await emr?.close({ killSteps: true });
          process.off('exit', killSteps);
        } finally {
          try {
            await temporal?.stop();
          } finally {
            await warehouse?.stop();
          }
        }
      }
    })();
    return stopped;
  };

  try {
    // The serving database, unless the config names one elsewhere (then the steps use PGPASSWORD
    // from this process's environment, which the local EMR passes on).
    if (LOOPBACK.has(base.warehouse.host)) {
      warehouse = await startEmbeddedWarehouse({
        dir: join(stateDir, 'warehouse'),
        port: base.warehouse.port,
        database: base.warehouse.database,
        user: base.warehouse.user,
      });
      log(`embedded PostgreSQL on 127.0.0.1:${warehouse.port} (${warehouse.psql})`);
      signal?.throwIfAborted();
    }
    temporal = await startTemporalDevServer({
      dbFile: join(stateDir, 'temporal.db'),
      port: base.dev.temporalPort,
      uiPort: base.dev.uiPort,
      namespace: base.temporal.namespace,
      logFile: join(stateDir, 'temporal.log'),
      ui: opts.ui,
      signal,
    });
    log(`temporal dev server on ${temporal.address}${temporal.uiUrl ? `, Web UI ${temporal.uiUrl}` : ''}`);
    signal?.throwIfAborted();
    try {
      emr = await startLocalEmr({
        port: base.dev.emrPort,
        stateDir: join(stateDir, 'emr'),
        clusterId: base.emr.clusterId,
        region: base.emr.region,
        stepConcurrency: base.concurrency.steps,
        // The load's password reaches its steps through their environment only.
        ...(warehouse ? { stepEnv: { PGPASSWORD: warehouse.password } } : {}),
        // Raw, lake or code on S3: the steps get the S3A connector and the configured endpoint
        // (AWS credentials: the default chain, from this process's environment or ~/.aws).
        ...(usesS3(base) ? s3aSupport({ endpoint: base.s3.endpoint }) : {}),
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new Error(
          `the local EMR cannot listen on 127.0.0.1:${base.dev.emrPort}: the port is in use` +
            ' (set another with SPARKIFY_DEV_EMR_PORT or dev.emrPort)',
          { cause: err },
        );
      }
      throw err;
    }
    process.on('exit', killSteps);
    log(`local EMR on ${emr.endpoint} (cluster ${emr.clusterId})`);
    signal?.throwIfAborted();
    const config: Config = {
      ...base,
      temporal: { ...base.temporal, address: temporal.address },
      emr: { ...base.emr, endpoint: emr.endpoint, clusterId: emr.clusterId },
      ...(warehouse ? { warehouse: { ...base.warehouse, host: warehouse.host, ssl: false } } : {}),
    };
    logWorkerTo(join(stateDir, 'worker.log'));
    worker = await createWorker({ config });
    running = worker.run(); // RUNNING at once, so a stop can shut it down
    signal?.throwIfAborted();
    log(`worker on task queue ${config.temporal.taskQueue} (log: ${join(stateDir, 'worker.log')})`);
    if (opts.page) page = await startPage(config, temporal.uiUrl, log);
    signal?.throwIfAborted();

    const server = temporal;
    const failed = new Promise<never>((_, reject) => {
      void server.exited.then((code) => {
        if (!stopping) {
          const how = code === null ? 'was killed' : `exited with code ${code}`;
          reject(new Error(`the Temporal dev server ${how}; see ${join(stateDir, 'temporal.log')}`));
        }
      });
      running!.then(
        () => {
          if (!stopping) reject(new Error('the worker stopped on its own'));
        },
        (err: unknown) => {
          if (!stopping)
            reject(new Error(`the worker failed: ${err instanceof Error ? err.message : String(err)}`));
        },
      );
    });
    failed.catch(() => undefined);
    return {
      config,
      uiUrl: temporal.uiUrl,
      pageUrl: page?.url ?? null,
      emrEndpoint: emr.endpoint,
      warehouse,
      failed,
      stop,
      kill,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The page, on the configured port; a stack without it (port taken) still runs. */
async function startPage(
  config: Config,
  webUrl: string | null,
  log: (line: string) => void,
): Promise<UiServer | null> {
  try {
    const page = await startUiServer({
      config: {
        ...config,
        ui: { ...config.ui, temporalWebUrl: config.ui.temporalWebUrl ?? webUrl ?? undefined },
      },
      log,
    });
    log(`Sparkify page on ${page.url}`);
    return page;
  } catch (err) {
    log(
      `the Sparkify page did not start (${err instanceof Error ? err.message : String(err)}); \`sparkify ui\` starts it alone`,
    );
    return null;
  }
}

/** Local runs use a short poll: EMR's API quota does not apply to the local server. */
export function devDefaults(config: Config): Config {
  return { ...config, emr: { ...config.emr, pollInitialMs: 500, pollMaxMs: 2_000 } };
}

export type DevStackOutcome<T> =
  { stoppedBy: null; result: T } | { stoppedBy: NodeJS.Signals; result: undefined };

/**
 * Runs `body` on a started dev stack and stops the stack on every way out: `body` returns or
 * throws, the start fails, a part of the stack dies, or a signal (SIGINT, SIGTERM, SIGHUP) comes.
 * The first signal stops the stack in order, whether it is still starting or running `body`
 * (which is abandoned; `stopping` tells it). A second signal while stopping kills what is left
 * at once (the Temporal server's and the steps' process groups) and exits. The signals are this
 * function's from its start to its end, so no signal kills the process half-way.
 */
export async function runDevStack<T>(
  base: Config,
  opts: { log?: (line: string) => void; ui?: boolean; page?: boolean },
  body: (stack: DevStack, stopping: AbortSignal) => Promise<T>,
): Promise<DevStackOutcome<T>> {
  const log = opts.log ?? (() => undefined);
  const abort = new AbortController();
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  let stack: DevStack | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!first) {
      first = { signal, at: Date.now() };
      log(`${signal}: stopping the stack (again to kill it) ...`);
      abort.abort(new StackStopped(signal));
      return;
    }
    if (Date.now() - first.at < SAME_KEYPRESS_MS) return;
    log(`${signal} again: killing the stack`);
    stack?.kill(); // the `exit` handlers would too; this names the intent
    process.exit(128 + (constants.signals[first.signal] ?? 0));
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    try {
      stack = await startDevStack(base, { ...opts, signal: abort.signal });
    } catch (err) {
      if (first) return { stoppedBy: first.signal, result: undefined };
      throw err;
    }
    try {
      const work = body(stack, abort.signal);
      work.catch(() => undefined); // abandoned when a signal comes first
      const stopped = new Promise<'stopped'>((res) => {
        if (abort.signal.aborted) res('stopped');
        abort.signal.addEventListener('abort', () => res('stopped'), { once: true });
      });
      const outcome = await Promise.race([work.then((result) => ({ result })), stopped, stack.failed]);
      if (outcome === 'stopped') return { stoppedBy: first!.signal, result: undefined };
      return { stoppedBy: null, result: outcome.result };
    } finally {
      if (!first) log('stopping the embedded stack ...');
      await stack.stop();
    }
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}

export class StackStopped extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
    this.name = 'StackStopped';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms).unref());
}
