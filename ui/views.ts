import { addDays, daysIn, graph, monthRange, monthsBetween, type DayRange } from '../assets';
import type { PartitionState, PartitionStatus } from '../lake/freshness';
import { indexedDays, statusFromIndex } from '../lake/index-status';
import { readManifest, UNPARTITIONED, type RunRecord } from '../lake/manifests';
import { successOf, type AssetIndex, type IndexRecord } from '../lake/partition-index';
import { readLakeStatus } from '../lake/status';
import type { Lake } from '../lake/store';
import type { InputFingerprintCache } from './inputs';
import { covers, type RunningCover } from './temporal-runs';

/**
 * What each page shows, as plain data (the JSON API returns it as is): the graph with each
 * asset's state, the partition heatmap, an asset's rows, durations and costs, one partition's
 * history. Everything but the partition page comes from the partition index and is computed in
 * memory; the partition page reads that one partition's manifest, which has its full history.
 */

export interface Price {
  instanceHourUsd: number;
  instanceCount: number;
}

export interface ViewSources {
  lake: Lake;
  raw: Lake;
  /** The partition index (the bench swaps in a reader of every manifest, the baseline it replaces). */
  index: {
    read(assets: readonly string[], wantScope?: (scope: string) => boolean): Promise<Map<string, AssetIndex>>;
  };
  inputs: InputFingerprintCache;
  codeVersion: () => Promise<string>;
  /** Running materializations; throws when Temporal cannot be reached. */
  running: () => Promise<RunningCover[]>;
  price: Price;
}

export type CellState = PartitionState | 'running';

/** One letter per state in the heatmap's strings: compact for ten years of days. */
export const STATE_CODE: Record<CellState, string> = {
  materialized: 'm',
  failed: 'f',
  stale: 's',
  missing: 'x',
  running: 'r',
};

export function stepSeconds(r: Pick<RunRecord, 'startedAt' | 'endedAt'>): number | null {
  if (!r.startedAt || !r.endedAt) return null;
  const s = (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000;
  return Number.isFinite(s) && s >= 0 ? s : null;
}

/**
 * An estimate: the hours the EMR step ran × the instances of the cluster × their hourly price.
 * Steps running side by side share the cluster, so for them this is an upper bound.
 */
export function stepCostUsd(seconds: number | null, price: Price): number | null {
  return seconds === null ? null : (seconds / 3600) * price.instanceCount * price.instanceHourUsd;
}

function dayCount(range: DayRange): number {
  return Math.max(1, daysIn(range).length);
}

/** How long a lake view waits for Temporal's list of running workflows before drawing without it. */
const RUNNING_WAIT_MS = 1_500;

async function runningOrError(
  sources: ViewSources,
): Promise<{ running: RunningCover[]; runningError: string | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Temporal did not answer within ${RUNNING_WAIT_MS / 1000} s`)),
      RUNNING_WAIT_MS,
    );
  });
  try {
    return { running: await Promise.race([sources.running(), late]), runningError: null };
  } catch (err) {
    return { running: [], runningError: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** A cell's state with running materializations laid over it. */
function overlay(
  cell: PartitionStatus,
  running: readonly RunningCover[],
): { state: CellState; reason: string | undefined } {
  const run = running.find((r) => covers(r, cell.asset, cell.partition));
  if (!run) return { state: cell.state, reason: cell.reason };
  const before = cell.state === 'materialized' ? 'materialized' : `${cell.state}: ${cell.reason ?? ''}`;
  return { state: 'running', reason: `running in ${run.workflowId} (before: ${before})` };
}

/** Depth of each asset in the graph (longest path from a root), for drawing it in columns. */
function depths(): Map<string, number> {
  const depth = new Map<string, number>();
  for (const key of graph.order) {
    const deps = graph.specs.get(key)!.deps;
    depth.set(key, deps.length === 0 ? 0 : Math.max(...deps.map((d) => depth.get(d)! + 1)));
  }
  return depth;
}

export interface AssetCard {
  key: string;
  description: string;
  partitioning: 'daily' | 'unpartitioned';
  step: string;
  deps: string[];
  depth: number;
  /** The worst state among its partitions (running first). */
  state: CellState;
  counts: Record<CellState, number>;
  partitions: number;
  lastRun: { status: string; at: string; workflowId: string } | null;
  lastMaterialization: string | null;
  /** The table's rows: users' and unpartitioned assets' recorded table size, else the sum over its days. */
  rows: number | null;
  /** Why it is not up to date, for its worst partitions (a few). */
  reasons: string[];
}

export interface Overview {
  assets: AssetCard[];
  edges: [string, string][];
  first: string | null;
  last: string | null;
  codeVersion: string;
  inputsCheckedAt: string | null;
  runningError: string | null;
}

const WORST: CellState[] = ['running', 'failed', 'stale', 'missing', 'materialized'];

function emptyCounts(): Record<CellState, number> {
  return { materialized: 0, failed: 0, stale: 0, missing: 0, running: 0 };
}

function tableRows(asset: string, entries: AssetIndex | undefined): number | null {
  if (!entries || entries.size === 0) return null;
  const successes = [...entries.values()].map(successOf).filter((r): r is IndexRecord => r !== undefined);
  if (successes.length === 0) return null;
  const latest = successes.reduce((a, b) => (a.at >= b.at ? a : b));
  if (latest.tableRows !== undefined && latest.tableRows !== null) return latest.tableRows;
  if (graph.specs.get(asset)!.partitioning !== 'daily') return latest.rows ?? null;
  return successes.reduce((n, r) => n + (r.rows ?? 0), 0);
}

/** The graph, each asset with its state over every day the lake knows of. */
export async function overview(sources: ViewSources): Promise<Overview> {
  const [index, codeVersion, live] = await Promise.all([
    sources.index.read(graph.order),
    sources.codeVersion(),
    runningOrError(sources),
  ]);
  const days = indexedDays(index);
  const specs = graph.order.map((k) => graph.specs.get(k)!);
  const { inputs, checkedAt } = await sources.inputs.get(specs, days);
  const cells = statusFromIndex(index, { days, codeVersion, inputs });
  const depth = depths();
  const assets = graph.order.map((key): AssetCard => {
    const spec = graph.specs.get(key)!;
    const counts = emptyCounts();
    const reasons = new Set<string>();
    for (const cell of cells) {
      if (cell.asset !== key) continue;
      const { state, reason } = overlay(cell, live.running);
      counts[state]++;
      if (state !== 'materialized' && reason && reasons.size < 3)
        reasons.add(`${cell.partition === UNPARTITIONED ? 'table' : cell.partition}: ${reason}`);
    }
    const entries = [...(index.get(key)?.values() ?? [])];
    const last = entries
      .map((e) => e.last)
      .reduce<IndexRecord | null>((a, b) => (a && a.at >= b.at ? a : b), null);
    const success = entries
      .map(successOf)
      .reduce<IndexRecord | null | undefined>((a, b) => (b && (!a || b.at > a.at) ? b : a), null);
    return {
      key,
      description: spec.description,
      partitioning: spec.partitioning,
      step: spec.step,
      deps: [...spec.deps],
      depth: depth.get(key)!,
      state: WORST.find((s) => counts[s] > 0) ?? 'missing',
      counts,
      partitions: spec.partitioning === 'daily' ? days.length : 1,
      lastRun: last ? { status: last.status, at: last.at, workflowId: last.workflowId } : null,
      lastMaterialization: success?.at ?? null,
      rows: tableRows(key, index.get(key)),
      reasons: [...reasons],
    };
  });
  return {
    assets,
    edges: graph.order.flatMap((k) => graph.specs.get(k)!.deps.map((d): [string, string] => [d, k])),
    first: days[0] ?? null,
    last: days.at(-1) ?? null,
    codeVersion,
    inputsCheckedAt: checkedAt,
    runningError: live.runningError,
  };
}

export interface HealthMonth {
  month: string;
  days: number;
  /** Per daily asset: one letter per day of the month (see STATE_CODE). */
  cells: Record<string, string>;
  /** Per daily asset, per day: the index of its reason in `reasons`, or -1. */
  why: Record<string, number[]>;
}

export interface Health {
  from: string;
  to: string;
  daily: string[];
  tables: { asset: string; state: CellState; reason: string | null }[];
  months: HealthMonth[];
  reasons: string[];
  counts: Record<string, Record<CellState, number>>;
  codeVersion: string;
  inputsCheckedAt: string | null;
  runningError: string | null;
}

/** The first and last day the lake has a partition of (any state), or null for an empty lake. */
export async function knownDaySpan(sources: ViewSources): Promise<{ first: string; last: string } | null> {
  const days = indexedDays(await sources.index.read(graph.order));
  return days.length ? { first: days[0]!, last: days.at(-1)! } : null;
}

/** The months the lake knows of, or the current month for an empty lake. */
export async function knownMonths(sources: ViewSources): Promise<{ from: string; to: string }> {
  const days = await knownDaySpan(sources);
  const now = new Date().toISOString().slice(0, 7);
  return { from: days?.first.slice(0, 7) ?? now, to: days?.last.slice(0, 7) ?? now };
}

/** The asset × day heatmap for the months from `from` to `to` (both included). */
export async function health(sources: ViewSources, from: string, to: string): Promise<Health> {
  const months = monthsBetween(from, to);
  const days = daysIn({ start: `${from}-01`, end: monthRange(to).end });
  const years = new Set(days.map((d) => d.slice(0, 4)));
  const [index, codeVersion, live] = await Promise.all([
    sources.index.read(graph.order, (scope) => scope === UNPARTITIONED || years.has(scope)),
    sources.codeVersion(),
    runningOrError(sources),
  ]);
  const specs = graph.order.map((k) => graph.specs.get(k)!);
  const { inputs, checkedAt } = await sources.inputs.get(specs, days);
  const cells = statusFromIndex(index, { days, codeVersion, inputs });
  const daily = graph.order.filter((k) => graph.specs.get(k)!.partitioning === 'daily');
  const reasons: string[] = [];
  const reasonIds = new Map<string, number>();
  const reasonId = (r: string | undefined) => {
    if (r === undefined) return -1;
    let id = reasonIds.get(r);
    if (id === undefined) {
      id = reasons.push(r) - 1;
      reasonIds.set(r, id);
    }
    return id;
  };
  const counts: Health['counts'] = Object.fromEntries(graph.order.map((k) => [k, emptyCounts()]));
  const byMonth = new Map<string, HealthMonth>(
    months.map((m) => [
      m,
      {
        month: m,
        days: daysIn(monthRange(m)).length,
        cells: Object.fromEntries(daily.map((a) => [a, ''])),
        why: Object.fromEntries(daily.map((a) => [a, [] as number[]])),
      },
    ]),
  );
  const tables: Health['tables'] = [];
  // statusFromIndex returns each asset's days in order, so appending builds each month's string.
  for (const cell of cells) {
    const { state, reason } = overlay(cell, live.running);
    counts[cell.asset]![state]++;
    if (cell.partition === UNPARTITIONED) {
      tables.push({ asset: cell.asset, state, reason: reason ?? null });
      continue;
    }
    const month = byMonth.get(cell.partition.slice(0, 7))!;
    month.cells[cell.asset] += STATE_CODE[state];
    month.why[cell.asset]!.push(state === 'materialized' ? -1 : reasonId(reason));
  }
  return {
    from,
    to,
    daily,
    tables,
    months: [...byMonth.values()],
    reasons,
    counts,
    codeVersion,
    inputsCheckedAt: checkedAt,
    runningError: live.runningError,
  };
}

export interface MetricPoint {
  /** The day, or for an unpartitioned asset the time of the run. */
  x: string;
  status: string;
  rows: number | null;
  quarantined: number | null;
  stepId: string | null;
  /** The EMR step's duration; it built every day of `first`..`last` at once. */
  durationS: number | null;
  stepCostUsd: number | null;
  /** The step's cost divided by the days it built. */
  costUsd: number | null;
  first: string;
  last: string;
  at: string;
}

export interface AssetMetrics {
  asset: string;
  partitioning: 'daily' | 'unpartitioned';
  points: MetricPoint[];
  price: Price;
  /** Over the points shown, each EMR step counted once. */
  totals: { steps: number; durationS: number; costUsd: number };
}

function point(
  x: string,
  r: Pick<RunRecord, 'status' | 'at' | 'stepId' | 'range' | 'startedAt' | 'endedAt'> & {
    rows?: number | null;
    tableRows?: number | null;
  },
  quarantined: number | null,
  price: Price,
  daily: boolean,
): MetricPoint {
  const seconds = stepSeconds(r);
  const cost = stepCostUsd(seconds, price);
  return {
    x,
    status: r.status,
    rows: (daily ? r.rows : (r.tableRows ?? r.rows)) ?? null,
    quarantined,
    stepId: r.stepId ?? null,
    durationS: seconds,
    stepCostUsd: cost,
    costUsd: cost === null ? null : daily ? cost / dayCount(r.range) : cost,
    first: r.range.start,
    last: addDays(r.range.end, -1),
    at: r.at,
  };
}

/**
 * An asset's rows over time, as Dagster plots materialization metadata: per day for a daily asset
 * (what its last success wrote), per run for an unpartitioned one (from its manifest's history);
 * beside each, the EMR step's duration and estimated cost.
 */
export async function assetMetrics(
  sources: ViewSources,
  asset: string,
  range?: { from: string; to: string },
): Promise<AssetMetrics> {
  const spec = graph.specs.get(asset)!;
  let points: MetricPoint[];
  if (spec.partitioning === 'daily') {
    const years = range ? new Set(monthsBetween(range.from, range.to).map((m) => m.slice(0, 4))) : null;
    const index = await sources.index.read([asset], (scope) => years === null || years.has(scope));
    const start = range ? `${range.from}-01` : '';
    const end = range ? monthRange(range.to).end : '9999';
    points = [...(index.get(asset)?.entries() ?? [])]
      .filter(([day]) => day >= start && day < end)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .flatMap(([day, entry]) => {
        const built = successOf(entry);
        return built ? [point(day, built, built.quarantined ?? null, sources.price, true)] : [];
      });
  } else {
    const manifest = await readManifest(sources.lake, asset, UNPARTITIONED);
    const runs = manifest ? [manifest.lastRun, ...manifest.history].reverse() : [];
    points = runs.map((r) =>
      point(r.at, r, r.quarantined ? sum(Object.values(r.quarantined)) : null, sources.price, false),
    );
  }
  const steps = new Map<string, MetricPoint>();
  for (const p of points) steps.set(p.stepId ?? `${p.first}/${p.at}`, p);
  return {
    asset,
    partitioning: spec.partitioning,
    points,
    price: sources.price,
    totals: {
      steps: steps.size,
      durationS: sum([...steps.values()].map((p) => p.durationS ?? 0)),
      costUsd: sum([...steps.values()].map((p) => p.stepCostUsd ?? 0)),
    },
  };
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

export interface PartitionRun {
  status: string;
  at: string;
  workflowId: string;
  runKind: string;
  step: string;
  stepId: string | null;
  first: string;
  last: string;
  rows: number | null;
  tableRows: number | null;
  quarantined: number | null;
  quarantinedByReason: Record<string, number>;
  durationS: number | null;
  stepCostUsd: number | null;
  costUsd: number | null;
  codeVersion: string;
  dataVersion: string | null;
  logFile: string | null;
  reportUri: string | null;
  stagingUri: string | null;
  reason: string | null;
  warnings: string[];
}

export interface PartitionDetail {
  asset: string;
  partition: string;
  partitioning: 'daily' | 'unpartitioned';
  state: CellState;
  reason: string | null;
  running: RunningCover[];
  runningError: string | null;
  /** Newest first: the manifest's last run and its history. */
  runs: PartitionRun[];
  upstream: { asset: string; partition: string }[];
  downstream: { asset: string; partition: string }[];
  codeVersion: string;
}

function partitionRun(r: RunRecord, price: Price, daily: boolean): PartitionRun {
  const seconds = stepSeconds(r);
  const cost = stepCostUsd(seconds, price);
  return {
    status: r.status,
    at: r.at,
    workflowId: r.workflowId,
    runKind: r.runKind,
    step: r.step,
    stepId: r.stepId ?? null,
    first: r.range.start,
    last: addDays(r.range.end, -1),
    rows: r.rows ?? null,
    tableRows: r.tableRows ?? null,
    quarantined: r.quarantined ? sum(Object.values(r.quarantined)) : null,
    quarantinedByReason: r.quarantined ?? {},
    durationS: seconds,
    stepCostUsd: cost,
    costUsd: cost === null ? null : daily ? cost / dayCount(r.range) : cost,
    codeVersion: r.codeVersion,
    dataVersion: r.dataVersion ?? null,
    logFile: r.logFile ?? null,
    reportUri: r.reportUri ?? null,
    stagingUri: r.stagingUri ?? null,
    reason: r.reason ?? null,
    warnings: r.warnings ?? [],
  };
}

function neighbour(asset: string, partition: string) {
  return {
    asset,
    partition:
      graph.specs.get(asset)!.partitioning === 'daily' && partition !== UNPARTITIONED
        ? partition
        : UNPARTITIONED,
  };
}

/** One partition: its state and why (from its manifest, as `status` decides), and its run history. */
export async function partitionDetail(
  sources: ViewSources,
  asset: string,
  partition: string,
): Promise<PartitionDetail> {
  const spec = graph.specs.get(asset)!;
  const daily = spec.partitioning === 'daily';
  const codeVersion = await sources.codeVersion();
  const [manifest, status, live] = await Promise.all([
    readManifest(sources.lake, asset, partition),
    readLakeStatus(sources.lake, sources.raw, {
      assets: [asset],
      days: daily ? [partition] : [],
      codeVersion,
    }),
    runningOrError(sources),
  ]);
  const cell = status.cells.find((c) => c.partition === partition)!;
  const { state, reason } = overlay(cell, live.running);
  const runs = manifest ? [manifest.lastRun, ...manifest.history] : [];
  return {
    asset,
    partition,
    partitioning: spec.partitioning,
    state,
    reason: reason ?? null,
    running: live.running.filter((r) => covers(r, asset, partition)),
    runningError: live.runningError,
    runs: runs.map((r) => partitionRun(r, sources.price, daily)),
    upstream: spec.deps.map((d) => neighbour(d, partition)),
    downstream: (graph.downstream.get(asset) ?? []).map((d) =>
      graph.specs.get(d)!.partitioning === 'daily' && !daily
        ? { asset: d, partition: '' } // every day of it reads this table
        : neighbour(d, partition),
    ),
    codeVersion,
  };
}
