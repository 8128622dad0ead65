import { z } from 'zod';
import { DECLARATION } from './graph';

/**
 * UTC day partitions. Partition keys reach S3 keys and spark-submit arguments, so they are
 * validated here, strictly, before anything else sees them. Pure: workflow code uses it too.
 */

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const MONTH_RE = /^(\d{4})-(\d{2})$/;
const DAY_MS = 86_400_000;
const { first: FIRST_DAY, last: LAST_DAY } = DECLARATION.partitions.daily;

function isRealDay(value: string): boolean {
  const m = DAY_RE.exec(value);
  if (!m) return false;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return value >= FIRST_DAY && value <= LAST_DAY && new Date(ms).toISOString().slice(0, 10) === value;
}

export const DaySchema = z
  .string()
  .refine(isRealDay, { message: `expected a UTC day as YYYY-MM-DD, from ${FIRST_DAY} to ${LAST_DAY}` });
export const MonthSchema = z
  .string()
  .refine((v) => MONTH_RE.test(v) && isRealDay(`${v}-01`), { message: 'expected a month as YYYY-MM' });

/** A half-open range of UTC days: [start, end). */
export const DayRangeSchema = z
  .object({ start: DaySchema, end: DaySchema })
  .strict()
  .refine((r) => r.start < r.end, { message: 'the range is empty: end must be after start' });
export type DayRange = z.infer<typeof DayRangeSchema>;

export function dayToMs(day: string): number {
  return Date.parse(`${day}T00:00:00Z`);
}

export function msToDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function addDays(day: string, n: number): string {
  return msToDay(dayToMs(day) + n * DAY_MS);
}

export function daysIn(range: DayRange): string[] {
  const days: string[] = [];
  for (let d = range.start; d < range.end; d = addDays(d, 1)) days.push(d);
  return days;
}

export function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

export function monthRange(month: string): DayRange {
  return { start: `${month}-01`, end: `${nextMonth(month)}-01` };
}

/** Months from `from` to `to`, both included. */
export function monthsBetween(from: string, to: string): string[] {
  // An invalid month (2018-13) would never reach `to` by nextMonth: refuse it rather than loop.
  for (const m of [from, to]) {
    if (!MonthSchema.safeParse(m).success) throw new RangeError(`${m}: expected a month as YYYY-MM`);
  }
  const months: string[] = [];
  for (let m = from; m <= to; m = nextMonth(m)) months.push(m);
  return months;
}

export function monthsOf(range: DayRange): string[] {
  return monthsBetween(range.start.slice(0, 7), addDays(range.end, -1).slice(0, 7));
}

export function describeRange(range: DayRange): string {
  return addDays(range.start, 1) === range.end ? range.start : `${range.start}..${addDays(range.end, -1)}`;
}

/** Maximal runs of consecutive days, as half-open ranges. */
export function contiguousRanges(days: readonly string[]): DayRange[] {
  const sorted = [...new Set(days)].sort();
  const out: DayRange[] = [];
  for (const day of sorted) {
    const last = out.at(-1);
    if (last && last.end === day) last.end = addDays(day, 1);
    else out.push({ start: day, end: addDays(day, 1) });
  }
  return out;
}
