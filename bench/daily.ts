/**
 * The daily run as the schedule does it, end to end: Temporal, the local EMR and real Spark, one
 * new day after a short and after a long history, the daily assets fused in one EMR step and not.
 * Baseline: the monolith, which has to rebuild everything from every day to add one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { addDays } from '../assets';
import { generate } from '../dev/generator/generate';
import { BenchResult, MeasuredRun, REPO_ROOT, Row, Scratch, row, runMeasured, stats } from './lib';
import { startBenchStack } from './stack';

export interface DailyBenchOptions {
  shortHistory: number;
  longHistory: number;
  eventsPerDay: number;
  users: number;
  songs: number;
  seed: number;
  repeat: number;
  monolith: string;
  master: string;
  driverMemory: string;
}

/** The lake's assets (the serving database is another bench's). */
const LAKE = '+songplays,time';
const START = '2017-01-01';

export async function dailyBench(
  o: DailyBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const root = scratch.dir('daily');
  const notes: string[] = [];
  const result: BenchResult = {
    name: 'daily',
    title:
      'Daily run end to end (Temporal + local EMR + Spark): one new day after a short and a long history',
    params: {
      shortHistory: o.shortHistory,
      longHistory: o.longHistory,
      eventsPerDay: o.eventsPerDay,
      users: o.users,
      songs: o.songs,
      repeat: o.repeat,
    },
    rows: [],
    notes,
  };
  // Daily days follow the long history; each is run on both lakes, once fused and once not.
  const days = o.longHistory + 2 * o.repeat;
  const raw = path.join(root, 'raw');
  log(`daily: generating ${days} days × ${o.eventsPerDay} events into ${raw}`);
  generate({
    out: raw,
    start: START,
    days,
    users: o.users,
    songs: o.songs,
    seed: o.seed,
    eventsPerDay: o.eventsPerDay,
  });

  const historyEnd = addDays(START, o.longHistory);
  const stack = await startBenchStack(root, { stepConcurrency: 2 });
  try {
    const long = stack.lake('long', path.join(root, 'lake-long'), raw);
    const short = stack.lake('short', path.join(root, 'lake-short'), raw);
    const shortNone = stack.lake('short-none', path.join(root, 'lake-short'), raw, {
      SPARKIFY_EMR_FUSE_STEPS: 'none',
    });
    log(`daily: building ${o.longHistory} and ${o.shortHistory} days of history through the orchestrator`);
    const hLong = await long.materialize(LAKE, { start: START, end: historyEnd });
    const hShort = await short.materialize(LAKE, {
      start: addDays(historyEnd, -o.shortHistory),
      end: historyEnd,
    });
    if (!hLong.result.ok || !hShort.result.ok) throw new Error('building the history failed');
    notes.push(
      `history set-up through the orchestrator: ${o.longHistory} days in ${hLong.seconds.toFixed(0)} s, ${o.shortHistory} days in ${hShort.seconds.toFixed(0)} s`,
    );

    const sShort: number[] = [];
    const sLong: number[] = [];
    const sNone: number[] = [];
    for (let i = 0; i < o.repeat; i++) {
      // Alternating, so a change in the machine's load hits both sides alike.
      const day = addDays(historyEnd, i);
      const dayNone = addDays(historyEnd, o.repeat + i);
      for (const [label, lake, d, into] of [
        ['short', short, day, sShort],
        ['long', long, day, sLong],
        ['short, unfused', shortNone, dayNone, sNone],
      ] as const) {
        const r = await lake.materialize(LAKE, { start: d, end: addDays(d, 1) });
        if (!r.result.ok) throw new Error(`the daily run of ${d} (${label}) failed`);
        const built = r.result.assets.filter((a) => a.status === 'materialized').map((a) => a.asset);
        log(`daily: ${label} history, ${d}: ${r.seconds.toFixed(1)} s (built ${built.join(', ')})`);
        into.push(r.seconds);
      }
    }
    await stack.stop();

    // The monolith adds a day by rebuilding every day: at the short and at the long history.
    const mono = await monolithDaily(o, root, raw, historyEnd, log);

    const short$ = stats(sShort);
    const long$ = stats(sLong);
    const none$ = stats(sNone);
    const rows: Row[] = result.rows;
    rows.push(
      row(
        `one new day after ${o.shortHistory} days (fused daily step), median`,
        short$.median,
        's',
        mono.short
          ? { label: `monolith rebuild of ${o.shortHistory + 1} days`, value: mono.short.median }
          : undefined,
        'lower',
      ),
      row(`… min–max`, short$.min, 's', { label: 'max', value: short$.max }),
      row(
        `one new day after ${o.longHistory} days (fused), median`,
        long$.median,
        's',
        mono.long
          ? { label: `monolith rebuild of ${o.longHistory + 1} days`, value: mono.long.median }
          : undefined,
        'lower',
      ),
      row(`… min–max`, long$.min, 's', { label: 'max', value: long$.max }),
      row(
        `${o.longHistory}-day over ${o.shortHistory}-day history (goal ≤ 1.3)`,
        long$.median / short$.median,
        '×',
      ),
      ...(mono.short && mono.long
        ? [
            row(
              `monolith: ${o.longHistory + 1}-day over ${o.shortHistory + 1}-day rebuild`,
              mono.long.median / mono.short.median,
              '×',
            ),
          ]
        : []),
      row(
        `one new day after ${o.shortHistory} days, unfused (3 EMR steps)`,
        none$.median,
        's',
        { label: 'fused', value: short$.median },
        'lower',
      ),
    );
    notes.push(
      `goal: one new day ≤ 15 s wall on this machine; each figure from start of the workflow to its result`,
    );
    notes.push(`local EMR drivers start from a class-data-sharing archive (dev/emr-local/class-data.ts)`);
    return result;
  } catch (err) {
    await stack.stop().catch(() => undefined);
    throw err;
  }
}

async function monolithDaily(
  o: DailyBenchOptions,
  root: string,
  raw: string,
  historyEnd: string,
  log: (s: string) => void,
): Promise<{ short: ReturnType<typeof stats> | null; long: ReturnType<typeof stats> | null }> {
  if (!fs.existsSync(o.monolith)) return { short: null, long: null };
  // The monolith reads every file under log_data: give it exactly the days it would have.
  const subset = (name: string, from: string, days: number) => {
    const dir = path.join(root, name);
    fs.mkdirSync(path.join(dir, 'log_data'), { recursive: true });
    fs.symlinkSync(path.join(raw, 'song_data'), path.join(dir, 'song_data'));
    for (let i = 0; i < days; i++) {
      const d = addDays(from, i);
      const rel = `log_data/${d.slice(0, 4)}/${d.slice(5, 7)}/${d}-events.json`;
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.symlinkSync(path.join(raw, rel), path.join(dir, rel));
    }
    return dir;
  };
  const shortRaw = subset('raw-short', addDays(historyEnd, -o.shortHistory), o.shortHistory + 1);
  const longRaw = subset('raw-long', START, o.longHistory + 1);
  const sparkSubmit = path.join(REPO_ROOT, '.venv', 'bin', 'spark-submit');
  const python = path.join(REPO_ROOT, '.venv', 'bin', 'python');
  const env = { ...process.env, PYSPARK_PYTHON: python, PYSPARK_DRIVER_PYTHON: python };
  const run = async (label: string, input: string): Promise<MeasuredRun> => {
    const out = path.join(root, `mono-${label}`);
    fs.rmSync(out, { recursive: true, force: true });
    const r = await runMeasured(
      sparkSubmit,
      [
        '--master',
        o.master,
        '--driver-memory',
        o.driverMemory,
        '--conf',
        'spark.ui.enabled=false',
        o.monolith,
        '--input',
        input,
        '--output',
        out,
      ],
      { logFile: path.join(root, `mono-${label}.log`), env },
    );
    if (r.code !== 0) throw new Error(`monolith ${label} exited with ${r.code}`);
    log(`daily: monolith rebuild (${label}) ${r.seconds.toFixed(1)} s`);
    return r;
  };
  const short: number[] = [];
  const long: number[] = [];
  for (let i = 0; i < o.repeat; i++) {
    short.push((await run('short', shortRaw)).seconds);
    long.push((await run('long', longRaw)).seconds);
  }
  return { short: stats(short), long: stats(long) };
}
