import { z } from 'zod';
import { addDays, DayRangeSchema, DaySchema, graph, MonthSchema, monthRange, selectAssets, type DayRange } from '../assets';

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
  const forms = [day !== undefined, month !== undefined, from !== undefined || to !== undefined].filter(Boolean);
  if (forms.length !== 1) {
    throw new UsageError('give exactly one of --day YYYY-MM-DD, --month YYYY-MM, or --from YYYY-MM-DD --to YYYY-MM-DD');
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
