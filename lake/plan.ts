import {
  addDays,
  contiguousRanges,
  daysIn,
  downstreamOf,
  graph,
  monthRange,
  monthsBetween,
  planSteps,
  selectAssets,
  stepLease,
  type DayRange,
  type StepPlan,
} from '../assets';
import { matchesFilter, type PartitionFilter, type PartitionState, type PartitionStatus } from './freshness';
import { UNPARTITIONED } from './manifests';
import { readLakeStatus } from './status';
import type { Lake } from './store';

/**
 * A backfill's plan, computed from the lake before anything starts: every partition's state,
 * the steps that will run and roughly how many EMR API calls they make. `backfill --plan` prints
 * it; the backfill workflow computes the same plan (an activity calling this) and runs it.
 *
 * Unpartitioned assets (songs, artists) are planned once for the whole backfill, never once per
 * month; the daily partitions that read them run after them. Within a chunk (a month, or a day
 * with --per day) a step runs only the days that need it, and only if any does.
 */

export interface PlannedStep {
  step: string;
  assets: string[];
  /** The day ranges the step will build (for an unpartitioned step, the backfill's range). */
  ranges: DayRange[];
  /**
   * Days it builds only if an upstream step planned before it changes its data (a rebuild that
   * writes the same data leaves them up to date). Decided when it gets there.
   */
  conditional: DayRange[];
}

export interface PlannedChunk {
  /** YYYY-MM, YYYY-MM-DD, or `all` for the unpartitioned part. */
  partition: string;
  range: DayRange;
  steps: PlannedStep[];
}

export interface BackfillPlan {
  selection: string;
  selected: string[];
  only: PartitionFilter;
  codeVersion: string;
  /** The unpartitioned part, run first and once; null when it has nothing to do. */
  unpartitioned: PlannedChunk | null;
  /**
   * Daily steps that rewrite a whole table each run (users): one run writes at a time anyway, so
   * they run a month at a time, in order, whatever `per` says; a month's chunks start once its
   * month here is done.
   */
  serial: PlannedChunk[];
  /** Chunks with something to do, in order. */
  chunks: PlannedChunk[];
  /** Chunks left out because nothing in them matched. */
  skippedChunks: number;
  /** Partitions by asset and state. */
  states: Record<string, Partial<Record<PartitionState, number>>>;
  /** The partitions that will be (or may be) rebuilt, with why; at most `detailLimit`. */
  detail: { asset: string; partition: string; state: PartitionState; reason?: string }[];
  detailTotal: number;
}

export interface PlanOptions {
  selection: string;
  from: string;
  to: string;
  per: 'month' | 'day';
  only: PartitionFilter;
  codeVersion: string;
  detailLimit?: number;
}

export async function planBackfill(lake: Lake, raw: Lake, o: PlanOptions): Promise<BackfillPlan> {
  const selected = selectAssets(graph, o.selection);
  const months = monthsBetween(o.from, o.to);
  const whole: DayRange = { start: `${o.from}-01`, end: monthRange(o.to).end };
  const days = daysIn(whole);
  const { cells } = await readLakeStatus(lake, raw, { assets: selected, days, codeVersion: o.codeVersion });
  const byAsset = new Map<string, Map<string, PartitionStatus>>();
  for (const c of cells) {
    const m = byAsset.get(c.asset) ?? new Map<string, PartitionStatus>();
    m.set(c.partition, c);
    byAsset.set(c.asset, m);
  }
  const wanted = (asset: string, partition: string) => {
    const c = byAsset.get(asset)?.get(partition);
    return c !== undefined && matchesFilter(c.state, o.only);
  };

  const steps = planSteps(graph, selected);
  const unpartitionedSteps = steps.filter((s) => s.partitioning === 'unpartitioned');
  const dailySteps = steps.filter((s) => s.partitioning === 'daily');

  const upfront = unpartitionedSteps
    .filter((s) => s.assets.some((a) => wanted(a, UNPARTITIONED)))
    .map((s) => ({ step: s.key, assets: [...s.assets], ranges: [whole], conditional: [] }));
  // What a rebuilt unpartitioned asset may make stale downstream (only if its data changes).
  const mayChange = new Set(upfront.flatMap((s) => s.assets.flatMap((a) => [...downstreamOf(graph, a)])));
  const conditionalToo = o.only === 'outdated' || o.only === 'stale';

  const serialSteps = dailySteps.filter((st) => stepLease(graph, st.key).wholeTable);
  const chunkSteps = dailySteps.filter((st) => !serialSteps.includes(st));
  // asset -> days it may rebuild, across the serial months and the chunks
  const plannedDays = new Map<string, Set<string>>();
  const planDays = (steps: StepPlan[], range: DayRange): PlannedStep[] => {
    const chunkDays = daysIn(range);
    const planned: PlannedStep[] = [];
    for (const st of steps) {
      const need = chunkDays.filter((d) => st.assets.some((a) => wanted(a, d)));
      const upstreamMoves = (d: string) =>
        st.assets.some((a) =>
          graph.specs.get(a)!.deps.some((dep) => mayChange.has(a) || plannedDays.get(dep)?.has(d)),
        );
      const maybe = conditionalToo ? chunkDays.filter((d) => !need.includes(d) && upstreamMoves(d)) : [];
      if (need.length === 0 && maybe.length === 0) continue;
      planned.push({
        step: st.key,
        assets: [...st.assets],
        ranges: contiguousRanges(need),
        conditional: contiguousRanges(maybe),
      });
      for (const a of st.assets) {
        const days = plannedDays.get(a) ?? new Set<string>();
        [...need, ...maybe].forEach((d) => days.add(d));
        plannedDays.set(a, days);
      }
    }
    return planned;
  };
  const serial: PlannedChunk[] = [];
  for (const m of months) {
    const steps = planDays(serialSteps, monthRange(m));
    if (steps.length > 0) serial.push({ partition: m, range: monthRange(m), steps });
  }

  const chunks: PlannedChunk[] = [];
  let skippedChunks = 0;
  const chunkRanges: [string, DayRange][] =
    o.per === 'month'
      ? months.map((m) => [m, monthRange(m)])
      : days.map((d) => [d, { start: d, end: addDays(d, 1) }]);
  for (const [partition, range] of chunkRanges) {
    const planned = planDays(chunkSteps, range);
    if (planned.length > 0) chunks.push({ partition, range, steps: planned });
    else skippedChunks++;
  }

  const states: BackfillPlan['states'] = {};
  for (const c of cells) {
    const s = (states[c.asset] ??= {});
    s[c.state] = (s[c.state] ?? 0) + 1;
  }
  const detailed = cells.filter((c) => matchesFilter(c.state, o.only) && c.state !== 'materialized');
  return {
    selection: o.selection,
    selected,
    only: o.only,
    codeVersion: o.codeVersion,
    unpartitioned: upfront.length > 0 ? { partition: UNPARTITIONED, range: whole, steps: upfront } : null,
    serial,
    chunks,
    skippedChunks,
    states,
    detail: detailed
      .slice(0, o.detailLimit ?? 200)
      .map((c) => ({ asset: c.asset, partition: c.partition, state: c.state, reason: c.reason })),
    detailTotal: detailed.length,
  };
}

/** EMR API calls of one step run: a lookup, a submit, and DescribeStep polls over its duration. */
export function emrCallsOf(
  durationS: number | undefined,
  poll: { initialMs: number; maxMs: number },
): { listSteps: number; addJobFlowSteps: number; describeStep: number | null } {
  if (durationS === undefined) return { listSteps: 1, addJobFlowSteps: 1, describeStep: null };
  // Expected intervals of the jittered exponential backoff (emr-step.ts), until the step ends.
  let elapsed = 0;
  let polls = 1;
  for (let n = 0; elapsed < durationS * 1000; n++) {
    const ceiling = Math.min(poll.maxMs, poll.initialMs * 2 ** Math.min(n, 30));
    elapsed += (poll.initialMs + Math.max(ceiling, poll.initialMs)) / 2;
    polls++;
  }
  return { listSteps: 1, addJobFlowSteps: 1, describeStep: polls };
}
