import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { searchAttributeFlags, SEARCH_ATTRIBUTES } from '../workflows/search-attributes';
import { startOrphanGuard } from './orphans';
import { REPO_ROOT } from './repo';

export const TEMPORAL_CLI = resolve(REPO_ROOT, '.tools/bin/temporal');
const STOP_GRACE_MS = 10_000;

export interface DevServerOptions {
  dbFile: string;
  port: number;
  uiPort: number;
  namespace?: string;
  logFile?: string;
  /** Web UI on; tests turn it off to save a port and memory. */
  ui?: boolean;
  /** Aborting while the server starts kills it, and the start rejects with the abort reason. */
  signal?: AbortSignal;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  /** Settles when the server process has exited, whoever stopped it. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs` (10 s); `graceMs: 0` kills at once. */
  stop(opts?: { graceMs?: number }): Promise<void>;
  /** SIGKILL at once, synchronously (for `exit` handlers). */
  kill(): void;
}

/**
 * The Temporal dev server (the CLI embeds it) on a persistent SQLite file, so workflow state
 * survives a restart of the server, as it does on a real cluster.
 *
 * It runs in its own process group, so a terminal's Ctrl-C (SIGINT to the foreground group) does
 * not stop it under a worker that is still draining: whoever started it stops it. In exchange it
 * must not outlive this process: an `exit` handler SIGKILLs it, and for the deaths no handler sees
 * (SIGKILL, OOM) a small guard process, watching a pipe from this one, does.
 */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<DevServer> {
  opts.signal?.throwIfAborted();
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
    // A step's activity goes straight back to the worker that scheduled it, in the answer to
    // its workflow task, instead of through the task queue: a round trip less per step.
    '--dynamic-config-value',
    'system.enableActivityEagerExecution=true',
    // SQLite's defaults (a rollback journal, synchronous=FULL) create, fsync and delete a journal
    // file on every commit, and the server commits on every history event: that was most of the
    // dev server's CPU and latency in a backfill. With a write-ahead log and synchronous=NORMAL a
    // commit is an append; what is committed survives the server's or the worker's crash, and
    // only a crash of the machine itself can lose the last commits before a checkpoint — fine
    // for the embedded stack (a cluster brings its own database).
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
    ...(opts.ui === false ? ['--headless'] : ['--ui-port', String(opts.uiPort)]),
  ];
  const logFile = opts.logFile ?? `${opts.dbFile}.log`;
  const logFd = openSync(logFile, 'a');
  const child = spawn(TEMPORAL_CLI, args, { stdio: ['ignore', logFd, logFd], detached: true });
  closeSync(logFd);
  child.once('error', () => undefined); // a failed spawn shows up as an exit
  const exited = new Promise<number | null>((res) => {
    child.once('exit', (code) => res(code));
    child.once('error', () => res(null));
  });
  const running = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  const kill = () => {
    if (!running()) return;
    try {
      process.kill(-child.pid!, 'SIGKILL'); // the group: the CLI and anything it started
    } catch {
      child.kill('SIGKILL');
    }
  };
  process.on('exit', kill);
  const guard = child.pid === undefined ? undefined : startOrphanGuard(child.pid, opts.dbFile);
  void exited.then(() => {
    process.off('exit', kill);
    guard?.kill('SIGKILL');
  });
  const stop = async ({ graceMs = STOP_GRACE_MS }: { graceMs?: number } = {}) => {
    if (running()) {
      if (graceMs <= 0) kill();
      else {
        try {
          process.kill(-child.pid!, 'SIGTERM');
        } catch {
          child.kill('SIGTERM');
        }
      }
    }
    const timeout = setTimeout(kill, Math.max(graceMs, 0));
    await exited;
    clearTimeout(timeout);
  };

  let onAbort: (() => void) | undefined;
  try {
    const address = `127.0.0.1:${opts.port}`;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(opts.signal!.reason as Error);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    const result = await Promise.race([
      waitForServer(address, namespace, 60_000, exited).then(() => 'ready' as const),
      exited,
      aborted,
    ]);
    opts.signal?.removeEventListener('abort', onAbort!);
    if (result !== 'ready') {
      throw new Error(
        `the Temporal dev server exited (code ${result}) before it was ready; see ${logFile}` +
          ` (is port ${opts.port}${opts.ui === false ? '' : ` or ${opts.uiPort}`} already in use?)`,
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
      exited,
      stop,
      kill,
    };
  } catch (err) {
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    await stop({ graceMs: 0 });
    throw err;
  }
}

async function waitForServer(
  address: string,
  namespace: string,
  timeoutMs: number,
  exited: Promise<unknown>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let gone = false;
  void exited.then(() => (gone = true));
  while (Date.now() < deadline && !gone) {
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
