/** What every benchmark shares: measured child processes, result rows and how they are printed. */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Table from 'cli-table3';

export const REPO_ROOT = path.resolve(__dirname, '..');

/** One printed line: a figure, optionally against a baseline measured in the same run. */
export interface Row {
  figure: string;
  value: number | null;
  unit: string;
  baseline?: { label: string; value: number | null };
  /** value / baseline.value. */
  ratio?: number | null;
  /** How to read the ratio: which direction is better. */
  better?: 'lower' | 'higher';
}

/** Every bench, in the order they run and are reported. */
export const BENCH_ORDER = [
  'daily',
  'spark',
  'orchestration',
  'warehouse',
  'ui',
  'generator',
  'poller',
] as const;

export interface BenchResult {
  name: string;
  title: string;
  /** Sizes and settings the figures depend on. */
  params: Record<string, unknown>;
  rows: Row[];
  notes: string[];
  /** Set when the benchmark could not compare (e.g. the baseline is missing); rows may still hold figures. */
  skipped?: string;
  /** The 1-minute load average before and after: how far to trust the wall times. */
  load?: { before: number; after: number };
  /** The command and day that measured it (a report can hold sections of several runs). */
  measuredBy?: { command: string; date: string };
}

export function row(
  figure: string,
  value: number | null,
  unit: string,
  baseline?: { label: string; value: number | null },
  better?: 'lower' | 'higher',
): Row {
  const r: Row = { figure, value, unit };
  if (baseline) {
    r.baseline = baseline;
    r.better = better;
    r.ratio = value !== null && baseline.value !== null && baseline.value > 0 ? value / baseline.value : null;
  }
  return r;
}

function fmt(value: number | null, unit: string): string {
  if (value === null) return 'n/a';
  if (unit === 'bytes') return `${(value / 2 ** 20).toFixed(0)} MiB`;
  if (unit === 's' || unit === 'CPU s') return `${value.toFixed(value < 10 ? 2 : 1)} ${unit}`;
  const digits = Number.isInteger(value) ? 0 : Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${unit}`;
}

function verdict(r: Row): string {
  if (r.ratio === undefined) return '';
  if (r.ratio === null) return 'n/a';
  const x = r.ratio.toFixed(2);
  if (!r.better) return `×${x}`;
  // Spell out the direction: a bare ratio is read the wrong way round half the time.
  const good = r.better === 'lower' ? r.ratio < 1 : r.ratio > 1;
  const factor = r.ratio >= 1 ? r.ratio : 1 / r.ratio;
  if (factor < 1.05) return `×${x} (about equal)`;
  return `×${x} (${factor.toFixed(1)}× ${good ? 'better' : 'worse'})`;
}

export function printResult(res: BenchResult, log: (s: string) => void): void {
  log('');
  log(`== ${res.title} ==`);
  const params = Object.entries(res.params)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('  ');
  if (params) log(params);
  if (res.skipped) log(`SKIPPED COMPARISON: ${res.skipped}`);
  if (res.rows.length > 0) {
    const table = new Table({
      head: ['figure', 'value', 'baseline', 'ratio'],
      style: { head: [], border: [] },
    });
    for (const r of res.rows) {
      table.push([
        r.figure,
        fmt(r.value, r.unit),
        r.baseline ? `${fmt(r.baseline.value, r.unit)} (${r.baseline.label})` : '',
        verdict(r),
      ]);
    }
    log(table.toString());
  }
  for (const n of res.notes) log(`  - ${n}`);
}

export interface MeasuredRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  /** Highest sampled sum of RSS over the process and all its descendants; null without /proc. */
  peakRssBytes: number | null;
  /** User + system CPU of the whole tree (from /usr/bin/time); null without it. */
  cpuSeconds: number | null;
  logFile: string;
}

let pageSize: number | undefined;
function getPageSize(): number {
  if (pageSize === undefined) {
    try {
      pageSize = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;
    } catch {
      pageSize = 4096;
    }
  }
  return pageSize;
}

/** Parent and child within this share of each other's RSS, same name: one image (treeRss). */
const SAME_IMAGE_RSS_SHARE = 0.05;

function isParentImage(
  child: { name: string; rss: number },
  parent: { name: string; rss: number } | undefined,
): boolean {
  if (!parent || parent.name !== child.name || parent.rss === 0) return false;
  return Math.abs(child.rss - parent.rss) <= SAME_IMAGE_RSS_SHARE * parent.rss;
}

/**
 * RSS of `root` and its descendants, from /proc. spark-submit is a shell script that execs a JVM,
 * which starts a Python driver: ru_maxrss (what /usr/bin/time reports) would give only the largest
 * single process, not the tree that competes for the machine's memory.
 *
 * A child that is still its parent's image is counted once, with the parent: the JVM starts each
 * process it runs (Hadoop's `chmod` of every file it writes, without the native library) with
 * posix_spawn, whose child shares the JVM's memory until it execs, and a sample taken then saw
 * the JVM twice (run.py on 117 MiB of events: a peak of 1.1 GiB in one run, 2.4 in the next, two
 * JVMs of 1 GiB in the sample). A fresh fork() is the same: its pages are still the parent's.
 * Such a child has its parent's name and, within what the parent allocated between the two
 * reads of /proc, its resident size.
 */
function treeRss(root: number): number | null {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return null;
  }
  const children = new Map<number, number[]>();
  const procs = new Map<number, { ppid: number; name: string; rss: number }>();
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // exited between readdir and read
    }
    // comm may hold spaces and parentheses; the fixed fields start after the last ')'.
    const close = stat.lastIndexOf(')');
    const f = stat.slice(close + 2).split(' ');
    const pid = Number(e);
    const ppid = Number(f[1]);
    const rss = Number(f[21]) * getPageSize();
    procs.set(pid, { ppid, name: stat.slice(stat.indexOf('(') + 1, close), rss });
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  if (!procs.has(root)) return null;
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    const p = procs.get(pid);
    if (p && !(pid !== root && isParentImage(p, procs.get(p.ppid)))) total += p.rss;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

const TIME_BIN = '/usr/bin/time';

function readCpu(file: string): number | null {
  try {
    // GNU time writes "Command exited with non-zero status N" first when it fails.
    const last = fs.readFileSync(file, 'utf8').trim().split('\n').pop() ?? '';
    const [user, sys] = last.split(' ').map(Number);
    return Number.isFinite(user) && Number.isFinite(sys) ? user! + sys! : null;
  } catch {
    return null;
  }
}

const running = new Set<number>();

/** Stops the process groups of measured runs still going (on SIGINT/SIGTERM). */
export function killRunning(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

/** Runs a command (argument array, no shell), its output to `logFile`, timing it and sampling its memory. */
export function runMeasured(
  command: string,
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string; sampleMs?: number },
): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(opts.logFile, 'w');
    fs.writeSync(out, `$ ${[command, ...args].map((a) => JSON.stringify(a)).join(' ')}\n`);
    // CPU time is the figure a busy machine distorts least; GNU time sums it over every waited-for
    // descendant, which /proc sampling would miss for processes that exit between samples.
    const cpuFile = `${opts.logFile}.cpu`;
    const timed = fs.existsSync(TIME_BIN);
    const argv = timed ? [TIME_BIN, '-f', '%U %S', '-o', cpuFile, command, ...args] : [command, ...args];
    const t0 = process.hrtime.bigint();
    // Own process group, so an interrupted bench can stop the whole tree (the Python driver
    // is a child of the JVM and would outlive a signal sent to the JVM alone).
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd ?? REPO_ROOT,
      env: opts.env ?? process.env,
      stdio: ['ignore', out, out],
      detached: true,
    });
    if (child.pid !== undefined) running.add(child.pid);
    let peak: number | null = null;
    const sample = (): void => {
      if (child.pid === undefined) return;
      const v = treeRss(child.pid);
      if (v !== null && (peak === null || v > peak)) peak = v;
    };
    const timer = setInterval(sample, opts.sampleMs ?? 200);
    child.on('error', (err) => {
      clearInterval(timer);
      fs.closeSync(out);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      if (child.pid !== undefined) running.delete(child.pid);
      clearInterval(timer);
      fs.closeSync(out);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      resolve({
        code,
        signal,
        seconds,
        peakRssBytes: peak,
        cpuSeconds: readCpu(cpuFile),
        logFile: opts.logFile,
      });
    });
  });
}

export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Temp dirs made by the benchmarks, removed at exit unless asked to keep them. */
export class Scratch {
  readonly root: string;
  constructor(readonly keep: boolean) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkify-bench-'));
  }
  dir(name: string): string {
    const d = path.join(this.root, name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  }
  cleanup(): void {
    if (!this.keep) fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

/** Median, min and max of repeated measurements. */
export function stats(xs: number[]): { median: number; min: number; max: number; n: number } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}
