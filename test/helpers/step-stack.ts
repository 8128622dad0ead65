// What the tests of the real step lifecycle share: a real worker (worker/worker.ts) on a real
// Temporal dev server, the local EMR running a cheap `node` command in place of spark-submit, and
// ways to look at that EMR and at the processes it started.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { daysIn } from '../../assets';
import { loadConfig, type Config } from '../../config/config';

/** Raw inputs enough for prepareStep: a song file, and a log file per day of November 2018. */
export function writeRawFixture(rawDir: string): void {
  mkdirSync(join(rawDir, 'song_data/A/B/C'), { recursive: true });
  writeFileSync(join(rawDir, 'song_data/A/B/C/TRAAAAA.json'), '{"song_id":"S1"}');
  mkdirSync(join(rawDir, 'log_data/2018/11'), { recursive: true });
  for (const day of daysIn({ start: '2018-11-01', end: '2018-12-01' })) {
    writeFileSync(join(rawDir, `log_data/2018/11/${day}-events.json`), `{"day":"${day}"}\n`);
  }
}

/** The product's configuration from the environment, as a deployment sets it: defaults otherwise. */
export function stackConfig(env: Record<string, string>): Config {
  return loadConfig({ env });
}

export interface LocalStepInfo {
  state: string;
  pgid?: number;
  runnerPid?: number;
  exitCode?: number;
}

export async function localStep(endpoint: string, stepId: string): Promise<LocalStepInfo> {
  const res = await fetch(`${endpoint}/_local/steps/${stepId}`);
  return (await res.json()) as LocalStepInfo;
}

export interface LocalEmrStats {
  addJobFlowSteps: number;
  stepsByName: Record<string, number>;
  steps: { total: number; byState: Record<string, number> };
  calls: Record<string, number>;
}

export async function emrStats(endpoint: string): Promise<LocalEmrStats> {
  const res = await fetch(`${endpoint}/_local/stats`);
  return (await res.json()) as LocalEmrStats;
}

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The pids of the live processes in process group `pgid`, from /proc (zombies do not count). */
export function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so parse from the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
