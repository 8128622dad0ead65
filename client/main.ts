import { Command, Option } from 'commander';
import { graph, toMermaid } from '../assets';
import { openLake, s3ClientFor } from '../lake/store';
import { ConfigError, loadConfig, type Config } from '../config/config';
import { parseFilter, parseRange, parseSelection, UsageError, type FilterCliOptions } from './cli-input';
import { renderRun } from './render';
import { startMaterialize } from './runs';
import { knownDays, readLakeStatus } from '../lake/status';
import { planBackfill } from '../lake/plan';
import { projectBundle } from '../activities/code-bundle';
import { addDays, daysIn, monthRange } from '../assets';
import { renderGrid, renderSummary } from './status';
import { recentStepDurations } from './durations';
import { connectClient } from './temporal';
import { watchRun } from './watch';
import { MonthSchema } from '../assets/partitions';
import YAML from 'yaml';
import { backfillProgressQuery } from '../workflows';
import { renderBackfill, renderPlan, startBackfill, watchBackfill } from './backfill';
import { parseBackfillOptions, type BackfillCliOptions } from './cli-input';
import { applySchedule, describeSchedule } from './schedule';
import { registerUiCommands } from '../ui/commands';
import { parseReportRange, renderReport, reportFromWarehouse, type ReportCliOptions } from './report';

const program = new Command()
  .name('sparkify')
  .description('Materialize the Sparkify data lake: assets on Temporal, Spark steps on EMR')
  .option('--config <file>', 'YAML config file (default: $SPARKIFY_CONFIG or ./sparkify.yaml)')
  .showHelpAfterError();

/**
 * The dev harness (local EMR, generator, embedded stack) is loaded only by `dev` and `demo`; the
 * production image does not carry it.
 */
async function devHarness(): Promise<typeof import('../dev')> {
  try {
    // require, not import(): under `node --require tsx/cjs` (client/bin.js, the `sparkify` bin) an
    // import() goes to Node's ESM loader, which resolves neither a directory nor TypeScript.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../dev') as typeof import('../dev');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    throw new UsageError(
      'the dev harness (dev/) is not part of this installation: run `sparkify dev` and `demo` from a clone of the repository',
    );
  }
}

function config(): Config {
  return loadConfig({ file: program.opts<{ config?: string }>().config });
}

program
  .command('materialize')
  .description('materialize a selection of assets for a day, a month or a range of days')
  .requiredOption(
    '--select <selection>',
    'assets: name, +name (with upstream), name+ (with downstream), * (all); comma-separated',
  )
  .option('--day <YYYY-MM-DD>', 'one UTC day')
  .option('--month <YYYY-MM>', 'a whole month')
  .option('--from <YYYY-MM-DD>', 'first day (with --to)')
  .option('--to <YYYY-MM-DD>', 'last day, included (with --from)')
  .option('--force', 'rebuild every partition asked for, even those up to date')
  .option('--only-missing', 'build only partitions never materialized')
  .option('--only-failed', 'build only partitions whose last run failed')
  .option('--only-stale', 'build only partitions whose code, input or upstream data changed')
  .option('--json', 'print the result as JSON')
  .option('--no-wait', 'start (or join) the run and return its workflow id')
  .action(
    async (
      opts: {
        select: string;
        day?: string;
        month?: string;
        from?: string;
        to?: string;
        json?: boolean;
        wait: boolean;
      } & FilterCliOptions,
    ) => {
      const selection = parseSelection(opts.select);
      const range = parseRange({ day: opts.day, month: opts.month, from: opts.from, to: opts.to });
      const only = parseFilter(opts);
      const cfg = config();
      const client = await connectClient(cfg);
      const { handle, joined } = await startMaterialize(client, cfg, { selection, range, only });
      if (!opts.json)
        console.error(`${joined ? 'joined the running' : 'started'} workflow ${handle.workflowId}`);
      if (!opts.wait) {
        if (opts.json) console.log(JSON.stringify({ workflowId: handle.workflowId, joined }));
        return;
      }
      const result = await watchRun(handle, { live: !opts.json && process.stdout.isTTY === true });
      console.log(opts.json ? JSON.stringify(result, null, 2) : renderRun(result));
      if (!result.ok) process.exitCode = 1;
    },
  );

program
  .command('status')
  .description(
    'per asset, partitions materialized, failed, stale (and why) or missing, from the manifests in the lake; --month for a day grid',
  )
  .option('--month <YYYY-MM>', 'an asset × day grid for this month')
  .option('--from <YYYY-MM-DD>', 'first day (with --to; default: every day with a manifest)')
  .option('--to <YYYY-MM-DD>', 'last day, included (with --from)')
  .option('--lake <uri>', 'lake root (default: the configured storage.lake)')
  .option('--raw <uri>', 'raw input root, for input changes (default: the configured storage.raw)')
  .option('--json', 'print every partition as JSON')
  .action(
    async (opts: {
      month?: string;
      from?: string;
      to?: string;
      lake?: string;
      raw?: string;
      json?: boolean;
    }) => {
      if (opts.month !== undefined && !MonthSchema.safeParse(opts.month).success) {
        throw new UsageError(`--month ${opts.month}: expected YYYY-MM`);
      }
      const range =
        opts.month !== undefined
          ? monthRange(opts.month)
          : opts.from !== undefined || opts.to !== undefined
            ? parseRange({ from: opts.from, to: opts.to })
            : null;
      const cfg = config();
      const s3 = s3ClientFor({ region: cfg.emr.region, endpoint: cfg.s3.endpoint });
      const lake = openLake(opts.lake ?? cfg.storage.lake, { s3 });
      const raw = openLake(opts.raw ?? cfg.storage.raw, { s3 });
      const days = range ? daysIn(range) : await knownDays(lake);
      const codeVersion = (await projectBundle()).hash;
      const { cells } = await readLakeStatus(lake, raw, { days, codeVersion });
      if (opts.json) console.log(JSON.stringify(cells, null, 2));
      else if (opts.month) console.log(renderGrid(cells, opts.month));
      else
        console.log(
          renderSummary(cells, days.length > 0 ? { start: days[0]!, end: addDays(days.at(-1)!, 1) } : null, {
            lake: lake.uri,
            everyDay: range === null,
          }),
        );
    },
  );

program
  .command('report')
  .description('the song-play analytics from the serving database (each question: warehouse/reports/*.sql)')
  .option('--month <YYYY-MM>', 'a whole month')
  .option('--from <YYYY-MM-DD>', 'first day (with --to)')
  .option('--to <YYYY-MM-DD>', 'last day, included (with --from)')
  .option('--json', 'print the answers as JSON')
  .action(async (opts: ReportCliOptions & { json?: boolean }) => {
    const range = parseReportRange(opts);
    const report = await reportFromWarehouse(config(), range);
    console.log(opts.json ? JSON.stringify(report, null, 2) : renderReport(report));
  });

program
  .command('assets')
  .description('the asset graph, as text and as Mermaid')
  .addOption(new Option('--format <format>', 'output').choices(['text', 'mermaid', 'both']).default('both'))
  .action((opts: { format: string }) => {
    if (opts.format !== 'mermaid') {
      const [kw, sw] = [graph.order, graph.order.map((k) => graph.specs.get(k)!.step)].map((names) =>
        Math.max(10, ...names.map((n) => n.length)),
      );
      for (const key of graph.order) {
        const s = graph.specs.get(key)!;
        const deps = s.deps.length ? ` ← ${s.deps.join(', ')}` : '';
        console.log(`${key.padEnd(kw!)} ${s.partitioning.padEnd(13)} step ${s.step.padEnd(sw!)}${deps}`);
        console.log(`${''.padEnd(kw!)} ${s.description}`);
      }
    }
    if (opts.format === 'both') console.log();
    if (opts.format !== 'text') console.log(toMermaid(graph));
  });

program
  .command('dev')
  .description(
    'the embedded stack: Temporal dev server (Web UI), local EMR, a worker and the page; Ctrl-C stops it all',
  )
  .option('--headless', 'no Temporal Web UI')
  .action(async (opts: { headless?: boolean }) => {
    const { devDefaults, runDevStack } = await devHarness();
    const log = (line: string) => console.log(line);
    // Stopped by a signal is how `dev` ends: exit 0 once everything is down.
    await runDevStack(
      devDefaults(config()),
      { log, ui: !opts.headless, page: true },
      async (_stack, stopping) => {
        console.log('ready; press Ctrl-C to stop');
        await new Promise<void>((res) => stopping.addEventListener('abort', () => res(), { once: true }));
      },
    );
    console.log('stopped');
  });

program
  .command('demo')
  .description('generate a month of data and run the whole graph on the embedded stack with real Spark')
  .option('--exit', 'stop the stack when the run ends (default on a terminal: keep it up for the Web UI)')
  .option('--json', 'print the result as JSON')
  .action(async (opts: { exit?: boolean; json?: boolean }) => {
    const tty = process.stdout.isTTY === true;
    const { runDemo } = await devHarness();
    const ok = await runDemo(config(), {
      stay: tty && !opts.exit && !opts.json,
      live: tty,
      json: opts.json === true,
    });
    if (!ok) process.exitCode = 1;
  });

const schedule = program
  .command('schedule')
  .description('the daily Temporal Schedule (materializes the previous UTC day)');

schedule
  .command('apply')
  .description('create the schedule, or update it to the configured settings (idempotent)')
  .action(async () => {
    const cfg = config();
    const client = await connectClient(cfg);
    const outcome = await applySchedule(client, cfg);
    console.log(
      `schedule ${cfg.schedule.id} ${outcome}: every day at ${String(cfg.schedule.hour).padStart(2, '0')}:${String(cfg.schedule.minute).padStart(2, '0')} UTC, selection ${cfg.schedule.selection}`,
    );
  });

for (const [name, description] of [
  ['pause', 'pause the schedule'],
  ['unpause', 'resume the schedule'],
  ['trigger', 'run the schedule now (processes the day before now)'],
  ['describe', 'settings, next and recent runs'],
] as const) {
  schedule
    .command(name)
    .description(description)
    .option('--json', 'print JSON (describe)')
    .action(async (opts: { json?: boolean }) => {
      const cfg = config();
      const client = await connectClient(cfg);
      const handle = client.schedule.getHandle(cfg.schedule.id);
      if (name === 'pause') await handle.pause('paused from the sparkify CLI');
      if (name === 'unpause') await handle.unpause('unpaused from the sparkify CLI');
      if (name === 'trigger') await handle.trigger();
      if (name === 'describe') {
        const d = describeSchedule(await handle.describe());
        console.log(opts.json ? JSON.stringify(d, null, 2) : YAML.stringify(d));
      } else console.log(`schedule ${cfg.schedule.id}: ${name} done`);
    });
}

const backfillCommand = program
  .command('backfill')
  .description(
    'materialize a selection for a range of months: one run per month (or per day), months in parallel',
  )
  .option('--select <selection>', 'assets to backfill (see materialize)')
  .option('--from <YYYY-MM>', 'first month')
  .option('--to <YYYY-MM>', 'last month, included')
  .option('--concurrency <n>', 'partitions at once (default: the configured concurrency.months)')
  .option('--force', 'rebuild every partition, even those up to date')
  .option('--only-missing', 'build only partitions never materialized')
  .option('--only-failed', 'build only partitions whose last run failed')
  .option('--only-stale', 'build only partitions whose code, input or upstream data changed')
  .option('--plan', 'print what it would build, and the EMR API calls, without starting anything')
  .addOption(
    new Option('--per <unit>', 'one materialization per month or per day')
      .choices(['month', 'day'])
      .default('month'),
  )
  .option('--json', 'print the final progress as JSON')
  .option('--no-wait', 'start (or join) the backfill and return its id')
  .action(async (opts: BackfillCliOptions & { json?: boolean; wait: boolean; plan?: boolean }) => {
    const cfg = config();
    const input = parseBackfillOptions(opts, cfg.concurrency.months);
    if (opts.plan) {
      // The same planning the backfill workflow does first, from the same lake: nothing starts.
      const s3 = s3ClientFor({ region: cfg.emr.region, endpoint: cfg.s3.endpoint });
      const lake = openLake(cfg.storage.lake, { s3 });
      const plan = await planBackfill(lake, openLake(cfg.storage.raw, { s3 }), {
        selection: input.selection,
        from: input.from,
        to: input.to,
        per: input.per ?? 'month',
        only: input.only ?? 'outdated',
        codeVersion: (await projectBundle()).hash,
      });
      const durations = await recentStepDurations(lake);
      console.log(
        opts.json
          ? JSON.stringify(plan, null, 2)
          : renderPlan(plan, {
              poll: { initialMs: cfg.emr.pollInitialMs, maxMs: cfg.emr.pollMaxMs },
              durations,
            }),
      );
      return;
    }
    const client = await connectClient(cfg);
    const handle = await startBackfill(client, cfg, input);
    if (!opts.json)
      console.error(
        `backfill ${handle.workflowId} started (or joined); follow it with: sparkify backfill status ${handle.workflowId}`,
      );
    if (!opts.wait) {
      if (opts.json) console.log(JSON.stringify({ workflowId: handle.workflowId }));
      return;
    }
    const final = await watchBackfill(client, handle.workflowId, {
      live: !opts.json && process.stdout.isTTY === true,
    });
    console.log(opts.json ? JSON.stringify(final, null, 2) : renderBackfill(final));
    if (Object.keys(final.failed).length > 0) process.exitCode = 1;
  });

backfillCommand
  .command('status <workflowId>')
  .description('progress of a backfill (a query on its workflow)')
  .option('--json', 'print JSON')
  .action(async (workflowId: string, opts: { json?: boolean }) => {
    const client = await connectClient(config());
    const p = await client.workflow.getHandle(workflowId).query(backfillProgressQuery);
    console.log(opts.json ? JSON.stringify(p, null, 2) : renderBackfill(p));
  });

backfillCommand
  .command('cancel <workflowId>')
  .description('cancel a backfill; its running materializations and their EMR steps are cancelled too')
  .action(async (workflowId: string) => {
    const client = await connectClient(config());
    await client.workflow.getHandle(workflowId).cancel();
    console.log(`cancellation requested for ${workflowId}`);
  });

registerUiCommands(program, config);

export async function main(argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`sparkify: ${err.message}`);
      process.exitCode = 2;
      return;
    }
    console.error(`sparkify: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

if (require.main === module) void main(process.argv);
