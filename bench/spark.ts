/**
 * The daily incremental Spark run against the monolith baseline (one job that rebuilds all five
 * tables from every day, as the original ETL did). The monolith has to redo everything each day,
 * so "one new day with ours" vs "all days with the monolith" is the comparison that matters daily.
 */
import fs from 'node:fs';
import path from 'node:path';
import { generate } from '../dev/generator/generate';
import {
  BenchResult,
  MeasuredRun,
  REPO_ROOT,
  Row,
  Scratch,
  addDays,
  median,
  row,
  runMeasured,
  tail,
} from './lib';

export interface SparkBenchOptions {
  days: number;
  eventsPerDay: number;
  users: number;
  songs: number;
  seed: number;
  start: string;
  repeat: number;
  driverMemory: string;
  master: string;
  monolith: string;
}

export const MONOLITH_DEFAULT = path.resolve(REPO_ROOT, '..', 'shared', 'bench', 'monolith_etl.py');
const ALL_ASSETS = 'songs,artists,users,time,songplays';
const DAILY_ASSETS = 'users,time,songplays';

export async function sparkBench(
  o: SparkBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const sparkSubmit = path.join(REPO_ROOT, '.venv', 'bin', 'spark-submit');
  const python = path.join(REPO_ROOT, '.venv', 'bin', 'python');
  const runPy = path.join(REPO_ROOT, 'spark', 'run.py');
  const end = addDays(o.start, o.days);
  const lastDay = addDays(o.start, o.days - 1);
  const haveMonolith = fs.existsSync(o.monolith);
  const notes: string[] = [];
  const result: BenchResult = {
    name: 'spark',
    title: 'Spark: incremental daily run vs. monolith rebuild',
    params: {
      days: o.days,
      eventsPerDay: o.eventsPerDay,
      users: o.users,
      songs: o.songs,
      master: o.master,
      driverMemory: o.driverMemory,
      repeat: o.repeat,
    },
    rows: [],
    notes,
  };
  if (!fs.existsSync(sparkSubmit)) {
    result.skipped = `${sparkSubmit} is missing (run scripts/setup)`;
    return result;
  }
  if (!haveMonolith) {
    result.skipped = `baseline missing: ${o.monolith} not found; our runs are measured but not compared`;
    log(`spark: ${result.skipped}`);
  }

  const raw = scratch.dir('spark/raw');
  log(`spark: generating ${o.days} days × ${o.eventsPerDay} events/day into ${raw}`);
  const gen = generate({
    out: raw,
    start: o.start,
    days: o.days,
    users: o.users,
    songs: o.songs,
    seed: o.seed,
    eventsPerDay: o.eventsPerDay,
  });
  notes.push(
    `input: ${gen.summary.events.toLocaleString('en-US')} events (${gen.summary.songplays.toLocaleString('en-US')} plays), ` +
      `${gen.summary.song_files} song files, ${(gen.bytes / 2 ** 20).toFixed(1)} MiB`,
  );

  // Identical Spark settings for both sides, so only the jobs differ.
  const sparkConf = [
    '--master',
    o.master,
    '--driver-memory',
    o.driverMemory,
    '--conf',
    'spark.sql.session.timeZone=UTC',
    // Other work shares this machine; a UI port race is noise that has nothing to do with the jobs.
    '--conf',
    'spark.ui.enabled=false',
  ];
  const env = { ...process.env, PYSPARK_PYTHON: python, PYSPARK_DRIVER_PYTHON: python };
  const logs = scratch.dir('spark/logs');

  const run = async (label: string, args: string[]): Promise<MeasuredRun> => {
    const logFile = path.join(logs, `${label}.log`);
    log(`spark: ${label} ...`);
    const r = await runMeasured(sparkSubmit, [...sparkConf, ...args], { logFile, env });
    if (r.code !== 0) {
      throw new Error(
        `${label} exited with ${r.code ?? r.signal} after ${r.seconds.toFixed(1)} s; log ${logFile}:\n${tail(logFile)}`,
      );
    }
    log(`spark: ${label} ${r.seconds.toFixed(1)} s`);
    return r;
  };
  const ours = (label: string, lake: string, assets: string, from: string, to: string) =>
    run(label, [
      runPy,
      '--assets',
      assets,
      '--raw',
      raw,
      '--lake',
      lake,
      '--start',
      from,
      '--end',
      to,
      '--report',
      path.join(lake, '_reports', `${label}.json`),
    ]);

  // The daily shape needs a lake holding every day but the last; built once, copied per repeat
  // so each incremental run meets the same state (a new day, not a re-run of one). songs/artists
  // are left out: the daily run reads song_data itself, not those tables, and they are the
  // slowest part (one file per year/artist partition).
  const history = scratch.dir('spark/lake-history');
  const hist = o.days > 1 ? await ours('ours-history', history, DAILY_ASSETS, o.start, lastDay) : undefined;

  const mono: MeasuredRun[] = [];
  const full: MeasuredRun[] = [];
  const incr: MeasuredRun[] = [];
  for (let i = 1; i <= o.repeat; i++) {
    if (haveMonolith) {
      const out = scratch.dir(`spark/monolith-${i}`);
      mono.push(await run(`monolith-all-${i}`, [o.monolith, '--input', raw, '--output', out]));
    }
    full.push(await ours(`ours-all-${i}`, scratch.dir(`spark/lake-all-${i}`), ALL_ASSETS, o.start, end));
    const lake = path.join(scratch.root, 'spark', `lake-daily-${i}`);
    fs.cpSync(history, lake, { recursive: true });
    incr.push(await ours(`ours-daily-${i}`, lake, DAILY_ASSETS, lastDay, end));
    // Each repeat's outputs are only needed until measured; keep the temp dir small.
    if (i < o.repeat) {
      for (const d of [`monolith-${i}`, `lake-all-${i}`, `lake-daily-${i}`]) {
        fs.rmSync(path.join(scratch.root, 'spark', d), { recursive: true, force: true });
      }
    }
  }

  const secs = (rs: MeasuredRun[]) => (rs.length ? median(rs.map((r) => r.seconds)) : null);
  const rss = (rs: MeasuredRun[]) => {
    const v = rs.map((r) => r.peakRssBytes).filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  const cpu = (rs: MeasuredRun[]) => {
    const v = rs.map((r) => r.cpuSeconds).filter((x): x is number => x !== null);
    return v.length ? median(v) : null;
  };
  // Load-independent: how much work each side asks Spark for (checks and state cost jobs too).
  const jobs = (rs: MeasuredRun[]) => {
    const last = rs.at(-1);
    if (!last) return null;
    const log = fs.readFileSync(last.logFile, 'utf8');
    const n = (log.match(/INFO DAGScheduler: Job \d+ finished/g) ?? []).length;
    return n > 0 ? n : null; // 0 means Spark logged below INFO, not that no job ran
  };
  const monoLabel = `monolith, ${o.days} days`;
  const withBase = (figure: string, value: number | null, unit: string, base: number | null): Row =>
    haveMonolith
      ? row(figure, value, unit, { label: monoLabel, value: base }, 'lower')
      : row(figure, value, unit);

  const rows = result.rows;
  if (haveMonolith) rows.push(row(`wall time, monolith, all ${o.days} days`, secs(mono), 's'));
  rows.push(withBase(`wall time, ours, all ${o.days} days`, secs(full), 's', secs(mono)));
  rows.push(withBase(`wall time, ours, 1 new day (daily)`, secs(incr), 's', secs(mono)));
  if (haveMonolith) rows.push(row(`CPU time, monolith, all ${o.days} days`, cpu(mono), 'CPU s'));
  rows.push(withBase(`CPU time, ours, all ${o.days} days`, cpu(full), 'CPU s', cpu(mono)));
  rows.push(withBase(`CPU time, ours, 1 new day (daily)`, cpu(incr), 'CPU s', cpu(mono)));
  if (haveMonolith) rows.push(row(`peak RSS, monolith, all ${o.days} days`, rss(mono), 'bytes'));
  rows.push(withBase(`peak RSS, ours, all ${o.days} days`, rss(full), 'bytes', rss(mono)));
  rows.push(withBase(`peak RSS, ours, 1 new day (daily)`, rss(incr), 'bytes', rss(mono)));
  if (haveMonolith) rows.push(row(`Spark jobs, monolith, all ${o.days} days`, jobs(mono), 'jobs'));
  rows.push(withBase(`Spark jobs, ours, all ${o.days} days`, jobs(full), 'jobs', jobs(mono)));
  rows.push(withBase(`Spark jobs, ours, 1 new day (daily)`, jobs(incr), 'jobs', jobs(mono)));
  if (hist)
    rows.push(
      row(`wall time, ours, history set-up (${DAILY_ASSETS}, ${o.days - 1} days)`, hist.seconds, 's'),
    );

  notes.push(
    `wall time is spark-submit start to exit (JVM start-up included, the same for both); CPU is user+sys of the tree; ` +
      `median of ${o.repeat} run(s); RSS is the process tree (JVM + Python), sampled every 200 ms`,
  );
  notes.push(
    `ours writes more than the monolith: _state/user_latest, quarantine, checks and a report per run; ` +
      `the monolith uses Spark's defaults otherwise (e.g. its shuffle partitions), ours its own`,
  );
  const report = readReport(path.join(scratch.root, 'spark', `lake-daily-${o.repeat}`, '_reports'));
  if (report) notes.push(`daily run's own report: ${report}`);
  notes.push(`logs: ${logs}`);
  return result;
}

function readReport(dir: string): string | undefined {
  try {
    const file = fs.readdirSync(dir).find((f) => f.startsWith('ours-daily-'));
    if (!file) return undefined;
    const r = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as {
      status?: string;
      duration_s?: number;
      assets?: Record<string, { rows?: number; duration_s?: number }>;
    };
    const rows = Object.entries(r.assets ?? {})
      .map(([k, v]) => `${k}=${v.rows ?? '?'}`)
      .join(' ');
    const per = Object.entries(r.assets ?? {})
      .map(([k, v]) => `${k}=${v.duration_s ?? '?'}s`)
      .join(' ');
    return `status=${r.status} duration_s=${r.duration_s} per asset: ${per}; rows: ${rows}`;
  } catch {
    return undefined;
  }
}
