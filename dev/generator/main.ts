/**
 * CLI: npm run generate -- --out DIR --days N --users U --songs S --seed K
 *        [--start 2018-11-01] [--events-per-day E] [--match-share F] [--force]
 */
import { Command, CommanderError } from 'commander';
import { generate } from './generate';
import { DEFAULTS, OptionsError, parseOptions } from './options';

export { generate } from './generate';
export type { GenerateResult, GeneratorSummary } from './generate';
export { parseOptions, OptionsError } from './options';
export type { GeneratorOptions, RawOptions } from './options';

/** Exit code for bad options (nothing written), as for the Spark entrypoint. */
export const EXIT_USAGE = 2;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const processIo: CliIo = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
};

/** Runs the CLI on `argv` (without node and script) and returns the exit code. */
export function runCli(argv: string[], io: CliIo = processIo): number {
  const program = new Command('generate')
    .description('Write a synthetic Sparkify raw zone (song_data, log_data) and _generator.json')
    .requiredOption('--out <dir>', 'output directory (raw root)')
    .requiredOption('--days <n>', 'number of consecutive UTC days of logs')
    .requiredOption('--users <n>', 'number of users')
    .requiredOption('--songs <n>', 'number of song files')
    .requiredOption('--seed <n>', 'random seed; the same seed writes the same bytes')
    .option('--start <date>', 'first UTC day, YYYY-MM-DD', DEFAULTS.start)
    .option('--events-per-day <n>', 'average events per day', String(DEFAULTS.eventsPerDay))
    .option('--match-share <f>', 'share of plays of a song in song_data, 0..1', String(DEFAULTS.matchShare))
    .option('--force', 'replace generated data already in --out', false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .allowExcessArguments(false);

  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    throw e;
  }

  let options;
  try {
    options = parseOptions(program.opts());
  } catch (e) {
    if (e instanceof OptionsError) {
      for (const p of e.problems) io.err(`error: ${p}`);
      return EXIT_USAGE;
    }
    throw e;
  }

  const r = generate(options);
  const s = r.summary;
  io.err(
    `generated ${r.files} files (${s.song_files} songs, ${s.log_files} days), ${s.events} events ` +
      `(${s.songplays} songplays), ${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(2)} s ` +
      `(logs ${r.logSeconds.toFixed(2)} s, ${Math.round(r.eventsPerSecond)} events/s) -> ${options.out}`,
  );
  return 0;
}

if (require.main === module) {
  process.exitCode = runCli(process.argv.slice(2));
}
