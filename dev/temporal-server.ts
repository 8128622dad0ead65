import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { searchAttributeFlags, SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

export const TEMPORAL_CLI = resolve(__dirname, '../.tools/bin/temporal');

export interface DevServerOptions {
  dbFile: string;
  port: number;
  uiPort: number;
  namespace?: string;
  logFile?: string;
  /** Web UI on; tests turn it off to save a port and memory. */
  ui?: boolean;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The Temporal dev server (the CLI embeds it) on a persistent SQLite file, so workflow state
 * survives a restart of the server, as it does on a real cluster.
 */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<DevServer> {
  mkdirSync(dirname(opts.dbFile), { recursive: true });
  const namespace = opts.namespace ?? 'default';
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...searchAttributeFlags().flatMap((f) => ['--search-attribute', f]),
    ...(opts.ui === false ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
  ];
  const logFd = openSync(opts.logFile ?? `${opts.dbFile}.log`, 'a');
  const child = spawn(TEMPORAL_CLI, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  child.once('error', () => undefined);
  const address = `127.0.0.1:${opts.port}`;
  const ready = waitForServer(address, namespace, 60_000);
  const result = await Promise.race([ready.then(() => 'ready' as const), exited.then((code) => code)]);
  if (result !== 'ready') {
    throw new Error(
      `the Temporal dev server exited (code ${result}) before it was ready; see ${opts.logFile ?? `${opts.dbFile}.log`}` +
        ` (is port ${opts.port} or ${opts.uiPort} already in use?)`,
    );
  }
  const connection = await Connection.connect({ address });
  try {
    await ensureSearchAttributes(connection, namespace);
  } finally {
    await connection.close();
  }
  return {
    address,
    uiUrl: opts.ui === false ? null : `http://127.0.0.1:${opts.uiPort}`,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timeout = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timeout);
    },
  };
}

async function waitForServer(address: string, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal at ${address} did not come up within ${timeoutMs} ms: ${String(lastError)}`);
}

/**
 * `--search-attribute` only registers attributes on a new database file; a restart on an
 * older file needs them added through the operator service.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = SEARCH_ATTRIBUTES.filter((k) => !have.has(k.name));
  if (missing.length === 0) return;
  const typeCode: Record<string, number> = { KEYWORD: 2, KEYWORD_LIST: 7 };
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, typeCode[k.type]!])),
  });
}
