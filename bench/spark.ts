/**
 * The full build against the monolith baseline (one job that rebuilds all five tables from every
 * file, as the original ETL did), three ways alternating per repetition: the monolith, our jobs
 * through `spark/run.py`, and our jobs through the orchestrator (Temporal + local EMR). Then the
 * songs write alone on many song files, where the monolith's one-file-per-artist layout hurts.
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
  row,
  runMeasured,
  stats,
  tail,
} from './lib';
import { startBenchStack } from './stack';

export interface SparkBenchOptions {
  days: number;
  eventsPerDay: number;
  users: number;
  songs: number;
  songFiles: number;
  seed: number;
  start: string;
  repeat: number;
  driverMemory: string;
  master: string;
  monolith: string;
}

export const MONOLITH_DEFAULT = path.resolve(REPO_ROOT, '..', 'shared', 'bench', 'monolith_etl.py');
/** The five lake tables: what the monolith builds. */
const LAKE_ASSETS = 'songs,artists,users,time,songplays';
const LAKE_SELECTION = '+songplays,time';

const sparkSubmit = path.join(REPO_ROOT, '.venv', 'bin', 'spark-submit');
const python = path.join(REPO_ROOT, '.venv', 'bin', 'python');
const runPy = path.join(REPO_ROOT, 'spark', 'run.py');

/** spark-submit with the settings both sides share, so only the jobs differ. */
function submitter(o: SparkBenchOptions, logs: string, log: (s: string) => void) {
  const env = { ...process.env, PYSPARK_PYTHON: python, PYSPARK_DRIVER_PYTHON: python };
  return async (label: string, args: string[], conf: string[] = []): Promise<MeasuredRun> => {
    const logFile = path.join(logs, `${label}.log`);
    log(`spark: ${label} ...`);
    const r = await runMeasured(
      sparkSubmit,
      [
        '--master',
        o.master,
        '--driver-memory',
        o.driverMemory,
        '--conf',
        'spark.sql.session.timeZone=UTC',
        // Other work shares this machine; a UI port race is noise that has nothing to do with the jobs.
        '--conf',
        'spark.ui.enabled=false',
        ...conf,
        ...args,
      ],
      { logFile, env },
    );
    if (r.code !== 0) {
      throw new Error(
        `${label} exited with ${r.code ?? r.signal} after ${r.seconds.toFixed(1)} s; log ${logFile}:\n${tail(logFile)}`,
      );
    }
    log(`spark: ${label} ${r.seconds.toFixed(1)} s`);
    return r;
  };
}

const oursArgs = (raw: string, lake: string, assets: string, from: string, to: string) => [
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
  path.join(lake, '_reports', 'bench.json'),
];

/** Spark jobs a run asked for: load-independent, counts checks and state as work too. */
function sparkJobs(r: MeasuredRun): number | null {
  const n = (fs.readFileSync(r.logFile, 'utf8').match(/INFO DAGScheduler: Job \d+ finished/g) ?? []).length;
  return n > 0 ? n : null; // 0 means Spark logged below INFO, not that no job ran
}

const medianOf = (rs: MeasuredRun[], f: (r: MeasuredRun) => number | null): number | null => {
  const v = rs.map(f).filter((x): x is number => x !== null);
  return v.length ? stats(v).median : null;
};

export async function sparkBench(
  o: SparkBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const haveMonolith = fs.existsSync(o.monolith);
  const notes: string[] = [];
  const result: BenchResult = {
    name: 'spark',
    title: 'Full build: the monolith vs. our jobs (spark/run.py) vs. our jobs through the orchestrator',
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

  const root = scratch.dir('spark');
  const raw = path.join(root, 'raw');
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
  const logs = scratch.dir('spark/logs');
  const submit = submitter(o, logs, log);
  const end = addDays(o.start, o.days);

  const stack = await startBenchStack(scratch.dir('spark/stack'), { stepConcurrency: 2 });
  const mono: MeasuredRun[] = [];
  const ours: MeasuredRun[] = [];
  const orchestrated: number[] = [];
  try {
    for (let i = 1; i <= o.repeat; i++) {
      if (haveMonolith) {
        mono.push(
          await submit(`monolith-${i}`, [
            o.monolith,
            '--input',
            raw,
            '--output',
            path.join(root, `mono-${i}`),
          ]),
        );
      }
      const lake = path.join(root, `lake-${i}`);
      ours.push(await submit(`ours-${i}`, oursArgs(raw, lake, LAKE_ASSETS, o.start, end)));
      // The orchestrator's side: the same graph as a user's `sparkify materialize`, on a new lake.
      // One EMR step for the whole build (SPARKIFY_EMR_FUSE_STEPS=all): one JVM, as the monolith.
      const orch = stack.lake(`full-${i}`, path.join(root, `lake-orch-${i}`), raw, {
        SPARKIFY_EMR_FUSE_STEPS: 'all',
      });
      await orch.ready();
      log(`spark: orchestrated-${i} ...`);
      const r = await orch.materialize(LAKE_SELECTION, { start: o.start, end }, 'all');
      if (!r.result.ok) throw new Error(`the orchestrated full build ${i} failed`);
      log(`spark: orchestrated-${i} ${r.seconds.toFixed(1)} s`);
      orchestrated.push(r.seconds);
      // Each repetition's outputs are only needed until measured; keep the temp dir small.
      for (const d of [`mono-${i}`, `lake-${i}`, `lake-orch-${i}`])
        fs.rmSync(path.join(root, d), { recursive: true, force: true });
    }
  } finally {
    await stack.stop();
  }

  const wall = (rs: MeasuredRun[]) => stats(rs.map((r) => r.seconds));
  const monoWall = mono.length ? wall(mono) : null;
  const base = (value: number | null) =>
    haveMonolith ? { label: `monolith, ${o.days} days`, value } : undefined;
  const oursWall = wall(ours);
  const orchWall = stats(orchestrated);
  const rows: Row[] = result.rows;
  if (monoWall)
    rows.push(
      row(
        `wall, monolith (min ${monoWall.min.toFixed(1)}, max ${monoWall.max.toFixed(1)})`,
        monoWall.median,
        's',
      ),
    );
  rows.push(
    row(
      `wall, spark/run.py (min ${oursWall.min.toFixed(1)}, max ${oursWall.max.toFixed(1)})`,
      oursWall.median,
      's',
      base(monoWall?.median ?? null),
      'lower',
    ),
    row(
      `wall, through the orchestrator (min ${orchWall.min.toFixed(1)}, max ${orchWall.max.toFixed(1)})`,
      orchWall.median,
      's',
      base(monoWall?.median ?? null),
      'lower',
    ),
    row(
      'CPU, spark/run.py',
      medianOf(ours, (r) => r.cpuSeconds),
      'CPU s',
      base(medianOf(mono, (r) => r.cpuSeconds)),
      'lower',
    ),
    row(
      'peak RSS, spark/run.py',
      medianOf(ours, (r) => r.peakRssBytes),
      'bytes',
      base(medianOf(mono, (r) => r.peakRssBytes)),
      'lower',
    ),
    row(
      'Spark jobs, spark/run.py',
      ours.length ? sparkJobs(ours.at(-1)!) : null,
      'jobs',
      base(mono.length ? sparkJobs(mono.at(-1)!) : null),
      'lower',
    ),
  );
  notes.push(
    `goal: full build ≤ 1.0× the monolith, through spark/run.py and through the orchestrator (selection ${LAKE_SELECTION}, the lake's five tables, all in one EMR step: SPARKIFY_EMR_FUSE_STEPS=all)`,
    `wall is spark-submit start to exit (JVM start included, the same for both), or workflow start to result; CPU is user+sys of the process tree; RSS is the tree (JVM + Python) sampled every 200 ms`,
    `through the orchestrator: each lake's worker is started and polling before the clock starts (a user's worker is a running service; its own start took 4-8 s); the local EMR's drivers map the machine's class-data archive (SPARKIFY_CACHE_DIR/cds); where there was none yet, the first step dumps it (once per machine) and its repetition is the max`,
    `ours does more than the monolith: write-audit-publish through staging, checks, quarantine, users' state, a manifest and a report per asset`,
    `logs: ${logs}`,
  );

  if (o.songFiles > 0) await songsWrite(o, scratch, submit, haveMonolith, result, log);
  return result;
}

/**
 * The songs table alone on `songFiles` song files: ours as a songs-only run, the monolith as the
 * time from its start to the end of its songs write (read from its Spark event log), since it
 * cannot build one table on its own.
 */
async function songsWrite(
  o: SparkBenchOptions,
  scratch: Scratch,
  submit: ReturnType<typeof submitter>,
  haveMonolith: boolean,
  result: BenchResult,
  log: (s: string) => void,
): Promise<void> {
  const root = scratch.dir('songs');
  const raw = path.join(root, 'raw');
  log(`spark: generating ${o.songFiles} song files (and one day of events) into ${raw}`);
  generate({
    out: raw,
    start: o.start,
    days: 1,
    users: o.users,
    songs: o.songFiles,
    seed: o.seed,
    eventsPerDay: 100,
  });
  const ours: number[] = [];
  const mono: number[] = [];
  for (let i = 1; i <= o.repeat; i++) {
    if (haveMonolith) {
      const events = scratch.dir(`songs/events-${i}`);
      const startedAt = Date.now();
      await submit(
        `songs-monolith-${i}`,
        [o.monolith, '--input', raw, '--output', path.join(root, `mono-${i}`)],
        ['--conf', 'spark.eventLog.enabled=true', '--conf', `spark.eventLog.dir=file://${events}`],
      );
      const doneAt = songsWriteEnd(events);
      if (doneAt === null)
        throw new Error(`no songs write found in the monolith's event log under ${events}`);
      mono.push((doneAt - startedAt) / 1000);
    }
    const lake = path.join(root, `lake-${i}`);
    ours.push(
      (await submit(`songs-ours-${i}`, oursArgs(raw, lake, 'songs', o.start, addDays(o.start, 1)))).seconds,
    );
    for (const d of [`mono-${i}`, `lake-${i}`])
      fs.rmSync(path.join(root, d), { recursive: true, force: true });
  }
  const s = stats(ours);
  const m = mono.length ? stats(mono) : null;
  result.rows.push(
    ...(m
      ? [
          row(
            `songs write, monolith, ${o.songFiles} song files (min ${m.min.toFixed(1)}, max ${m.max.toFixed(1)})`,
            m.median,
            's',
          ),
        ]
      : []),
    row(
      `songs write, ours, ${o.songFiles} song files (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)})`,
      s.median,
      's',
      m ? { label: 'monolith songs write', value: m.median } : undefined,
      'lower',
    ),
  );
  result.notes.push(
    `songs write: ours is a whole songs-only run (JVM start, read, checks, publish, report); the monolith's is its start to the end of its songs write (Spark event log), JVM start and song_data schema inference included`,
  );
}

/** Epoch ms at which the first SQL execution writing `…/songs` ended, from a Spark event log. */
function songsWriteEnd(dir: string): number | null {
  for (const file of fs.readdirSync(dir)) {
    let writeId: number | undefined;
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      if (!line.includes('SparkListenerSQLExecution')) continue;
      const e = JSON.parse(line) as { Event: string; executionId: number; time: number };
      if (
        writeId === undefined &&
        e.Event.endsWith('SparkListenerSQLExecutionStart') &&
        /Execute InsertIntoHadoopFsRelationCommand \S+\/songs, /.test(line)
      )
        writeId = e.executionId;
      if (
        writeId !== undefined &&
        e.Event.endsWith('SparkListenerSQLExecutionEnd') &&
        e.executionId === writeId
      )
        return e.time;
    }
  }
  return null;
}
