import Table from 'cli-table3';
import { daysIn, graph, monthRange, type AssetSpec } from '../assets';
import { UNPARTITIONED } from '../lake/manifests';
import type { CellState, StatusCell } from '../lake/status';

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
    const lastText = last
      ? `${last.status} ${last.at.slice(0, 19)}Z ${last.stepId ?? ''} code ${last.codeVersion}`
      : '';
    if (graph.specs.get(asset)!.partitioning === 'daily') {
      table.push([
        asset,
        ...days.map((d) => MARK[mine.find((c) => c.partition === d)?.state ?? 'missing']),
        lastText,
      ]);
    } else {
      const whole = mine[0]!;
      table.push([
        asset,
        { colSpan: days.length, content: `${MARK[whole.state]} ${whole.state} (whole table)` },
        lastText,
      ]);
    }
  }
  return `${table.toString()}\n✔ materialized  ✘ failed  · missing  ~ stale (an upstream changed later)`;
}

/** Per asset: how many partitions are in each state, and the latest run. */
export function renderSummary(cells: StatusCell[]): string {
  const table = new Table({
    head: ['asset', 'materialized', 'failed', 'stale', 'last run', 'rows', 'code'],
    style: { head: [], border: [] },
  });
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
