import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { appendFileSync } from 'node:fs';
import { DefaultLogger, Runtime, type LogEntry, type Worker } from '@temporalio/worker';
import type { Config } from '../config/config';
import { startLocalEmr } from './emr-local';
import { createWorker } from '../worker/worker';
import { startTemporalDevServer } from './temporal-server';
import { startUiServer, type UiServer } from '../ui/server';

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
    Runtime.install({ logger: new DefaultLogger('INFO', write) });
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
  stop(): Promise<void>;
}

/**
 * The embedded stack in one process tree: the Temporal dev server on a persistent SQLite file
 * (Web UI on its port), the local EMR, and a worker pointed at both. The returned config is the
 * one a client uses to talk to it.
 */
export async function startDevStack(
  base: Config,
  opts: { log?: (line: string) => void; ui?: boolean; page?: boolean } = {},
): Promise<DevStack> {
  const log = opts.log ?? (() => undefined);
  const stateDir = resolve(base.dev.stateDir);
  mkdirSync(stateDir, { recursive: true });
  const temporal = await startTemporalDevServer({
    dbFile: join(stateDir, 'temporal.db'),
    port: base.dev.temporalPort,
    uiPort: base.dev.uiPort,
    namespace: base.temporal.namespace,
    logFile: join(stateDir, 'temporal.log'),
    ui: opts.ui,
  });
  log(`temporal dev server on ${temporal.address}${temporal.uiUrl ? `, Web UI ${temporal.uiUrl}` : ''}`);
  let emr: Awaited<ReturnType<typeof startLocalEmr>> | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  try {
    emr = await startLocalEmr({
      port: base.dev.emrPort,
      stateDir: join(stateDir, 'emr'),
      clusterId: base.emr.clusterId,
      stepConcurrency: base.concurrency.steps,
    });
    log(`local EMR on ${emr.endpoint} (cluster ${emr.clusterId})`);
    const config: Config = {
      ...base,
      temporal: { ...base.temporal, address: temporal.address },
      emr: { ...base.emr, endpoint: emr.endpoint, clusterId: emr.clusterId },
    };
    logWorkerTo(join(stateDir, 'worker.log'));
    worker = await createWorker({ config });
    running = worker.run();
    log(`worker on task queue ${config.temporal.taskQueue} (log: ${join(stateDir, 'worker.log')})`);
    const page = opts.page ? await startPage(config, temporal.uiUrl, log) : null;
    return {
      config,
      uiUrl: temporal.uiUrl,
      pageUrl: page?.url ?? null,
      emrEndpoint: emr.endpoint,
      async stop() {
        await page?.close();
        worker!.shutdown();
        await running!.catch(() => undefined);
        await emr!.close({ killSteps: true });
        await temporal.stop();
      },
    };
  } catch (err) {
    if (worker && running) {
      worker.shutdown();
      await running.catch(() => undefined);
    }
    await emr?.close({ killSteps: true });
    await temporal.stop();
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
