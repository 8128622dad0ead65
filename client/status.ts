import Table from 'cli-table3';
import { daysIn, graph, monthRange, type AssetSpec } from '../assets';
import type { Lake } from '../activities/lake';
import { readManifests, UNPARTITIONED, type Manifest } from '../activities/manifests';

/** Partition states, derived from the manifests in the lake; Temporal is not needed. */
export type CellState = 'materialized' | 'failed' | 'missing' | 'stale';

export interface StatusCell {
  asset: string;
  partition: string;
  state: CellState;
  lastRun?: Manifest['lastRun'];
  /** For stale cells: the upstream that changed after this partition was built. */
  staleBecause?: string;
}

function upstreamPartition(dep: AssetSpec, partition: string): string {
  return dep.partitioning === 'daily' ? partition : UNPARTITIONED;
}

/** Without `partitionsFor`, the partitions that have a manifest. */
export async function readStatus(
  lake: Lake,
  partitionsFor?: (spec: AssetSpec) => string[],
): Promise<StatusCell[]> {
  const manifests = new Map(
    await Promise.all(graph.order.map(async (a) => [a, await readManifests(lake, a)] as const)),
  );
  const cells: StatusCell[] = [];
  for (const asset of graph.order) {
    const spec = graph.specs.get(asset)!;
    const known = [...manifests.get(asset)!.keys()].sort();
    for (const partition of partitionsFor ? partitionsFor(spec) : known) {
      const m = manifests.get(asset)!.get(partition);
      if (!m) {
        cells.push({ asset, partition, state: 'missing' });
        continue;
      }
      if (m.lastRun.status === 'failed') {
        cells.push({ asset, partition, state: 'failed', lastRun: m.lastRun });
        continue;
      }
      const builtAt = m.lastSuccess?.at ?? m.lastRun.at;
      const newer = spec.deps.find((d) => {
        const up = manifests.get(d)!.get(upstreamPartition(graph.specs.get(d)!, partition));
        return up?.lastSuccess !== undefined && up.lastSuccess !== null && up.lastSuccess.at > builtAt;
      });
      cells.push(
        newer
          ? { asset, partition, state: 'stale', lastRun: m.lastRun, staleBecause: newer }
          : { asset, partition, state: 'materialized', lastRun: m.lastRun },
      );
    }
  }
  return cells;
}

export function monthPartitions(month: string): (spec: AssetSpec) => string[] {
  const days = daysIn(monthRange(month));
  return (spec) => (spec.partitioning === 'daily' ? days : [UNPARTITIONED]);
}

const MARK: Record<CellState, string> = { materialized: '✔', failed: '✘', missing: '·', stale: '~' };

/** An asset × day grid for a month; unpartitioned assets show one cell for their whole table. */
export function renderGrid(cells: StatusCell[], month: string): string {
  const days = daysIn(monthRange(month));
  const table = new Table({
    head: ['asset', ...days.map((d) => d.slice(8)), 'last run'],
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const asset of graph.order) {
    const mine = cells.filter((c) => c.asset === asset);
    const last = mine
      .map((c) => c.lastRun)
      .filter((r) => r !== undefined)
      .sort((a, b) => (a.at < b.at ? 1 : -1))[0];
    const lastText = last ? `${last.status} ${last.at.slice(0, 19)}Z ${last.stepId ?? ''} code ${last.codeVersion}` : '';
    if (graph.specs.get(asset)!.partitioning === 'daily') {
      table.push([asset, ...days.map((d) => MARK[mine.find((c) => c.partition === d)?.state ?? 'missing']), lastText]);
    } else {
      const whole = mine[0]!;
      table.push([asset, { colSpan: days.length, content: `${MARK[whole.state]} ${whole.state} (whole table)` }, lastText]);
    }
  }
  return `${table.toString()}\n✔ materialized  ✘ failed  · missing  ~ stale (an upstream changed later)`;
}

/** Per asset: how many partitions are in each state, and the latest run. */
export function renderSummary(cells: StatusCell[]): string {
  const table = new Table({ head: ['asset', 'materialized', 'failed', 'stale', 'last run', 'rows', 'code'], style: { head: [], border: [] } });
  for (const asset of graph.order) {
    const mine = cells.filter((c) => c.asset === asset);
    const count = (s: CellState) => mine.filter((c) => c.state === s).length;
    const last = mine
      .map((c) => c.lastRun)
      .filter((r) => r !== undefined)
      .sort((a, b) => (a.at < b.at ? 1 : -1))[0];
    table.push([
      asset,
      count('materialized'),
      count('failed'),
      count('stale'),
      last ? `${last.status} ${last.at.slice(0, 19)}Z` : 'never',
      last?.rows?.toLocaleString('en-US') ?? '',
      last?.codeVersion ?? '',
    ]);
  }
  return table.toString();
}
