import { z } from 'zod';
import type { PartitionFilter } from '../lake/freshness';
import type { BackfillInput } from '../workflows/backfill';
import {
  addDays,
  DayRangeSchema,
  DaySchema,
  graph,
  MonthSchema,
  monthRange,
  selectAssets,
  type DayRange,
} from '../assets';

/** CLI input validated before anything starts: a bad argument names itself and starts nothing. */

export class UsageError extends Error {
  override name = 'UsageError';
}

export const RangeOptionsSchema = z
  .object({
    day: DaySchema.optional(),
    month: MonthSchema.optional(),
    from: DaySchema.optional(),
    to: DaySchema.optional(),
  })
  .strict();

function issueText(error: z.ZodError, prefix = '--'): string {
  return error.issues.map((i) => `${prefix}${i.path.join('.')}: ${i.message}`).join('; ');
}

/** --day D | --month M | --from D --to D (both days included). */
export function parseRange(raw: Record<string, unknown>): DayRange {
  const parsed = RangeOptionsSchema.safeParse(raw);
  if (!parsed.success) throw new UsageError(issueText(parsed.error));
  const { day, month, from, to } = parsed.data;
  const forms = [day !== undefined, month !== undefined, from !== undefined || to !== undefined].filter(
    Boolean,
  );
  if (forms.length !== 1) {
    throw new UsageError(
      'give exactly one of --day YYYY-MM-DD, --month YYYY-MM, or --from YYYY-MM-DD --to YYYY-MM-DD',
    );
  }
  if (day) return { start: day, end: addDays(day, 1) };
  if (month) return monthRange(month);
  if (!from || !to) throw new UsageError('--from and --to go together (both days are included)');
  const range = DayRangeSchema.safeParse({ start: from, end: addDays(to, 1) });
  if (!range.success) throw new UsageError(`--to ${to} is before --from ${from}`);
  return range.data;
}

export function parseSelection(selection: string): string {
  try {
    selectAssets(graph, selection);
  } catch (err) {
    throw new UsageError(`--select: ${(err as Error).message}`);
  }
  return selection;
}

/** The partition filter flags shared by materialize and backfill. */
export interface FilterCliOptions {
  onlyMissing?: boolean;
  onlyFailed?: boolean;
  onlyStale?: boolean;
  force?: boolean;
}

/** --only-missing | --only-failed | --only-stale | --force; none: what is not up to date. */
export function parseFilter(opts: FilterCliOptions): PartitionFilter {
  const given = (
    [
      ['--only-missing', opts.onlyMissing, 'missing'],
      ['--only-failed', opts.onlyFailed, 'failed'],
      ['--only-stale', opts.onlyStale, 'stale'],
      ['--force', opts.force, 'all'],
    ] as const
  ).filter(([, on]) => on === true);
  if (given.length > 1) {
    throw new UsageError(`${given.map(([flag]) => flag).join(' and ')} exclude each other: give at most one`);
  }
  return given[0]?.[2] ?? 'outdated';
}

/** The backfill command's options as commander hands them over. */
export interface BackfillCliOptions extends FilterCliOptions {
  select?: string;
  from?: string;
  to?: string;
  concurrency?: string;
  per: 'month' | 'day';
}

export function parseBackfillOptions(opts: BackfillCliOptions, defaultConcurrency: number): BackfillInput {
  if (opts.select === undefined) throw new UsageError('--select is required (e.g. --select "*")');
  const selection = parseSelection(opts.select);
  const months = z.object({ from: MonthSchema, to: MonthSchema }).safeParse({ from: opts.from, to: opts.to });
  if (!months.success) throw new UsageError(`${issueText(months.error)} (both --from and --to are needed)`);
  if (months.data.to < months.data.from)
    throw new UsageError(`--to ${months.data.to} is before --from ${months.data.from}`);
  const only = parseFilter(opts);
  const concurrency = z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .safeParse(opts.concurrency ?? defaultConcurrency);
  if (!concurrency.success)
    throw new UsageError(`--concurrency ${opts.concurrency}: expected a whole number from 1 to 100`);
  return {
    selection,
    from: months.data.from,
    to: months.data.to,
    per: opts.per,
    concurrency: concurrency.data,
    only,
  };
}
