/**
 * `npm run bench`: the speed and memory figures, each printed beside a baseline measured in the
 * same run on the same machine (never as thresholds in tests, which would flake on a busy host).
 *
 *   npm run bench -- [--only daily|spark|orchestration|warehouse|ui|generator|poller] [--json] [--days 14] [--events-per-day 5000] ...
 */
import os from 'node:os';
import { Command, Option } from 'commander';
import { z } from 'zod';
import { dailyBench } from './daily';
import { generatorBench } from './generator';
import { BENCH_ORDER, BenchResult, Scratch, killRunning, printResult } from './lib';
import { orchestrationBench } from './orchestration';
import { pollerBench } from './poller';
import { writeReport } from './report';
import { MONOLITH_DEFAULT, sparkBench } from './spark';
import { uiBench } from './ui';
import { warehouseBench } from './warehouse';

/** The sizes the performance goals are stated at (docs/benchmarks.md is written with these). */
const GOAL_SIZES =
  'npm run bench -- --days 14 --long-history 365 --backfill-days 365 --song-files 10000 --ui-years 10';
/** The full build at the scale of its goal, in a report of its own. */
const AT_SCALE =
  'npm run bench -- --only spark --days 30 --events-per-day 100000 --songs 50000 --song-files 0 --repeat 1 --out docs/benchmarks-at-scale.md';

const BENCHES = BENCH_ORDER;
type BenchName = (typeof BENCHES)[number];

const int = (flag: string, min: number) =>
  z.coerce
    .number({ error: `${flag} must be a number` })
    .int(`${flag} must be an integer`)
    .min(min, `${flag} must be at least ${min}`);

const OptionsSchema = z.object({
  only: z.enum(BENCHES).optional(),
  json: z.boolean(),
  keep: z.boolean(),
  start: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, '--start must be YYYY-MM-DD'),
  seed: int('--seed', 0),
  days: int('--days', 1),
  eventsPerDay: int('--events-per-day', 1),
  users: int('--users', 1),
  songs: int('--songs', 1),
  repeat: int('--repeat', 1),
  driverMemory: z.string().regex(/^\d+[kmgt]?$/i, '--driver-memory must look like 1g or 512m'),
  master: z.string().min(1),
  monolith: z.string().min(1),
  genDays: int('--gen-days', 1),
  genEventsPerDay: int('--gen-events-per-day', 1),
  stepSeconds: z.coerce.number().positive('--step-seconds must be positive'),
  shortHistory: int('--short-history', 1),
  longHistory: int('--long-history', 2),
  dailyEventsPerDay: int('--daily-events-per-day', 1),
  backfillDays: int('--backfill-days', 1),
  backfillConcurrency: int('--backfill-concurrency', 1),
  songFiles: int('--song-files', 0),
  out: z.string().min(1),
  uiYears: int('--ui-years', 1),
});

async function main(argv: string[]): Promise<number> {
  const program = new Command('bench')
    .description(
      'Sparkify Lake benchmarks: each figure is printed next to a baseline measured in the same run',
    )
    .addOption(new Option('--only <name>', 'run one benchmark').choices(BENCHES))
    .option('--json', 'print the results as JSON on stdout (progress stays on stderr)', false)
    .option('--keep', 'keep the temp directory (data, lakes, Spark logs)', false)
    .option('--start <day>', 'first UTC day of generated data', '2018-11-01')
    .option('--seed <n>', 'generator seed', '42')
    .option('--days <n>', 'spark: days of history', '5')
    .option('--events-per-day <n>', 'spark: events per day', '5000')
    .option('--users <n>', 'generated users', '500')
    .option('--songs <n>', 'generated song files', '200')
    .option('--repeat <n>', 'runs per measurement, alternating the two sides (median, min, max)', '3')
    .option('--driver-memory <size>', 'spark: driver memory, the same for ours and the monolith', '1g')
    .option('--master <url>', 'spark: master, the same for both', 'local[2]')
    .option('--monolith <path>', 'spark: the baseline job', MONOLITH_DEFAULT)
    .option('--gen-days <n>', 'generator: days', '3')
    .option('--gen-events-per-day <n>', 'generator: events per day', '100000')
    .option('--step-seconds <s>', 'poller: how long the EMR step runs', '20')
    .option('--short-history <days>', 'daily: days of history of the short lake', '30')
    .option('--long-history <days>', 'daily: days of history of the long lake', '60')
    .option('--daily-events-per-day <n>', 'daily: events per day', '500')
    .option('--backfill-days <n>', 'orchestration: days of the per-day backfill', '31')
    .option('--backfill-concurrency <n>', "orchestration: the backfill's concurrency", '10')
    .option('--song-files <n>', 'spark: song files of the songs-write comparison (0: none)', '500')
    .option('--ui-years <n>', 'ui: years of daily partitions in the generated lake', '10')
    .option('--out <file>', 'where the report goes (a .json beside it)', 'docs/benchmarks.md')
    .addHelpText(
      'after',
      `\nThe defaults took 14 minutes on a 2-core machine. The sizes of the goals (issue 8)\ntook 33 minutes there:\n  ${GOAL_SIZES}\nThe full build at the scale of its goal took 19 minutes there:\n  ${AT_SCALE}`,
    )
    .showHelpAfterError();
  program.parse(argv, { from: 'user' });
  const parsed = OptionsSchema.safeParse(program.opts());
  if (!parsed.success) {
    for (const issue of parsed.error.issues) process.stderr.write(`bench: ${issue.message}\n`);
    return 2;
  }
  const o = parsed.data;
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const out = (s: string): void => void process.stdout.write(`${s}\n`);

  const scratch = new Scratch(o.keep);
  const onSignal = (sig: NodeJS.Signals): void => {
    killRunning();
    scratch.cleanup();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  log(`bench: inputs and outputs under ${scratch.root} (${o.keep ? 'kept' : 'removed at the end'})`);

  const selected: BenchName[] = o.only ? [o.only] : [...BENCHES];
  const results: BenchResult[] = [];
  const failures: { name: string; error: string }[] = [];
  for (const name of selected) {
    const load0 = os.loadavg()[0]!;
    try {
      let res: BenchResult;
      if (name === 'spark') res = await sparkBench(o, scratch, log);
      else if (name === 'daily')
        res = await dailyBench({ ...o, eventsPerDay: o.dailyEventsPerDay }, scratch, log);
      else if (name === 'orchestration')
        res = await orchestrationBench(
          { backfillDays: o.backfillDays, repeat: o.repeat, concurrency: o.backfillConcurrency },
          scratch,
          log,
        );
      else if (name === 'warehouse') res = await warehouseBench(o, scratch, log);
      else if (name === 'ui') res = await uiBench(o, scratch, log);
      else if (name === 'generator')
        res = await generatorBench({ ...o, days: o.genDays, eventsPerDay: o.genEventsPerDay }, scratch, log);
      else res = await pollerBench(o, scratch, log);
      // A shared machine makes absolute figures drift; the load says how much to trust them.
      res.load = { before: load0, after: os.loadavg()[0]! };
      res.notes.push(
        `load average (1 min) ${load0.toFixed(2)} before, ${os.loadavg()[0]!.toFixed(2)} after, ${os.cpus().length} CPUs`,
      );
      results.push(res);
      if (!o.json) printResult(res, out);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      failures.push({ name, error });
      log(`bench: ${name} failed: ${error}`);
    }
  }

  scratch.cleanup();
  const written = writeReport(o.out, { argv, results, failures });
  log(`bench: wrote ${written.join(' and ')}`);
  if (o.json) {
    out(JSON.stringify({ root: scratch.root, kept: o.keep, results, failures }, null, 2));
  } else {
    out('');
    out(o.keep ? `kept: ${scratch.root}` : `removed: ${scratch.root}`);
  }
  return failures.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
