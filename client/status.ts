import Table from 'cli-table3';
import { addDays, daysIn, graph, monthRange, type DayRange } from '../assets';
import { UNPARTITIONED } from '../lake/manifests';
import type { CellState, StatusCell } from '../lake/status';

const MARK: Record<CellState, string> = { materialized: '✔', failed: '✘', missing: '·', stale: '~' };
export const LEGEND = '✔ materialized  ✘ failed  · missing  ~ stale (code, input or upstream data changed)';

function lastRunOf(cells: StatusCell[]) {
  return cells
    .map((c) => c.lastRun)
    .filter((r) => r !== undefined)
    .sort((a, b) => (a.at < b.at ? 1 : -1))[0];
}

/**
 * An asset × day grid for a month, one character per day so it fits an 80-column terminal;
 * unpartitioned assets show one mark for their whole table.
 */
export function renderGrid(cells: StatusCell[], month: string): string {
  const days = daysIn(monthRange(month));
  const width = Math.max(...graph.order.map((a) => a.length));
  const lines = [`${month.padEnd(width)}  ${dayRuler(days.length)}   (day of the month)`];
  for (const asset of graph.order) {
    const mine = cells.filter((c) => c.asset === asset);
    if (graph.specs.get(asset)!.partitioning === 'daily') {
      const marks = days.map((d) => MARK[mine.find((c) => c.partition === d)?.state ?? 'missing']);
      const counts = countStates(mine);
      lines.push(`${asset.padEnd(width)}  ${marks.join('')}   ${counts}`);
    } else {
      const whole = mine.find((c) => c.partition === UNPARTITIONED);
      const state = whole?.state ?? 'missing';
      lines.push(`${asset.padEnd(width)}  ${MARK[state]} whole table: ${state}`);
    }
  }
  return [...lines, '', LEGEND, ...renderReasons(cells)].join('\n');
}

/** Day numbers 1, 5, 10 … with each number's last digit over its day's column. */
export function dayRuler(days: number): string {
  const ruler = Array.from({ length: days }, () => ' ');
  for (const d of [1, 5, 10, 15, 20, 25, 30]) {
    if (d > days) continue;
    const text = String(d);
    for (let i = 0; i < text.length; i++) ruler[d - text.length + i] = text[i]!;
  }
  return ruler.join('');
}

/** Counts as marks (`27✔ 1✘ 2~`): short, so a month's line stays within 80 columns. */
function countStates(cells: StatusCell[]): string {
  const n = (s: CellState) => cells.filter((c) => c.state === s).length;
  return (['materialized', 'failed', 'stale', 'missing'] as const)
    .filter((s) => n(s) > 0)
    .map((s) => `${n(s)}${MARK[s]}`)
    .join(' ');
}

/** Why each partition that is not materialized is so; consecutive days with one reason are one line. */
export function renderReasons(cells: StatusCell[], limit = 20): string[] {
  const out: string[] = [];
  for (const asset of graph.order) {
    const bad = cells
      .filter((c) => c.asset === asset && c.state !== 'materialized')
      .sort((a, b) => (a.partition < b.partition ? -1 : 1));
    let run: { first: StatusCell; last: string } | undefined;
    const flush = () => {
      if (!run) return;
      const where =
        run.first.partition === UNPARTITIONED
          ? 'whole table'
          : run.first.partition === run.last
            ? run.first.partition
            : `${run.first.partition}..${run.last}`;
      out.push(`  ${asset} ${where} ${run.first.state}: ${run.first.reason ?? ''}`);
    };
    for (const c of bad) {
      const continues =
        run &&
        c.state === run.first.state &&
        c.reason === run.first.reason &&
        c.partition !== UNPARTITIONED &&
        addDays(run.last, 1) === c.partition;
      if (continues) run!.last = c.partition;
      else {
        flush();
        run = { first: c, last: c.partition };
      }
    }
    flush();
  }
  if (out.length === 0) return [];
  const shown = out.slice(0, limit);
  if (out.length > limit) shown.push(`  … and ${out.length - limit} more (--json has every partition)`);
  return ['', 'Not up to date, and why:', ...shown];
}

/**
 * Per asset: how many partitions are in each state, the latest run, and its rows — the whole
 * table's, or (for a range that is not every day the lake has) the rows of the days shown, said so.
 */
export function renderSummary(
  cells: StatusCell[],
  range: DayRange | null,
  opts: { lake?: string; everyDay?: boolean } = {},
): string {
  const table = new Table({
    head: ['asset', 'materialized', 'failed', 'stale', 'missing', 'last run', 'rows', 'code'],
    style: { head: [], border: [] },
  });
  for (const asset of graph.order) {
    const mine = cells.filter((c) => c.asset === asset);
    const count = (s: CellState) => mine.filter((c) => c.state === s).length;
    const last = lastRunOf(mine);
    table.push([
      asset,
      count('materialized'),
      count('failed'),
      count('stale'),
      count('missing'),
      last ? `${last.status} ${last.at.slice(0, 19)}Z` : 'never',
      rowsOf(asset, mine, opts.everyDay ?? false),
      last?.codeVersion ?? '',
    ]);
  }
  const where = opts.lake ? ` in ${opts.lake}` : '';
  const over = range
    ? `partitions ${range.start} → ${addDays(range.end, -1)} (both included)${where}`
    : `no partition recorded${where}: nothing materialized yet, or another lake (--lake, SPARKIFY_LAKE_URI)`;
  return [over, table.toString(), LEGEND, ...renderReasons(cells)].filter((l) => l !== '').join('\n');
}

/** The rows cell, saying what it counts: the whole table, or the days shown. */
function rowsOf(asset: string, cells: StatusCell[], everyDay: boolean): string {
  const rows = tableRows(asset, cells);
  if (rows === undefined) return '';
  const whole = rows.whole || everyDay;
  return `${rows.rows.toLocaleString('en-US')} ${whole ? '(table)' : '(days shown)'}`;
}

/**
 * The table's size: an unpartitioned asset's (or users') last recorded table size, else the sum
 * of its materialized day partitions' rows.
 */
function tableRows(asset: string, cells: StatusCell[]): { rows: number; whole: boolean } | undefined {
  const withRows = cells.filter((c) => c.lastRun?.status === 'materialized');
  if (withRows.length === 0) return undefined;
  const latest = lastRunOf(withRows);
  if (latest?.tableRows !== undefined && latest.tableRows !== null)
    return { rows: latest.tableRows, whole: true };
  if (graph.specs.get(asset)!.partitioning !== 'daily') {
    return latest?.rows === undefined || latest.rows === null
      ? undefined
      : { rows: latest.rows, whole: true };
  }
  return { rows: withRows.reduce((n, c) => n + (c.lastRun?.rows ?? 0), 0), whole: false };
}
