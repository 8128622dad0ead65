import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { join } from 'node:path';

const ORPHAN_GUARD = join(__dirname, 'orphan-guard.js');

/**
 * Starts the guard of orphan-guard.js for process group `pgid`: when this process dies, however
 * it dies, the group gets `signal` (SIGKILL unless a server has a cleaner way out). Holds no
 * reference that keeps this process alive; kill the guard after a normal stop.
 */
export function startOrphanGuard(
  pgid: number,
  marker: string,
  signal: NodeJS.Signals = 'SIGKILL',
): ChildProcess | undefined {
  try {
    const guard = spawn(process.execPath, [ORPHAN_GUARD, String(pgid), marker, signal], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    guard.once('error', () => undefined);
    guard.unref();
    (guard.stdin as Socket | null)?.unref();
    return guard;
  } catch {
    return undefined; // exit handlers still cover every exit Node sees
  }
}
