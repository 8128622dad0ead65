import Table from 'cli-table3';
import { Client } from 'pg';
import { addDays, DECLARATION, describeRange, type DayRange } from '../assets';
import type { Config } from '../config/config';
import { clientConfig, describeConnection } from '../warehouse/connection';
import { QUESTIONS, QUESTION_NAMES, runReports, type WarehouseReport } from '../warehouse/reports';
import { parseRange } from './cli-input';

/** `sparkify report`: the analytics from the serving database. */

export interface ReportCliOptions {
  month?: string;
  from?: string;
  to?: string;
}

/** --month M | --from D --to D (both included) | nothing: every day the partitions allow. */
export function parseReportRange(opts: ReportCliOptions): DayRange {
  if (opts.month === undefined && opts.from === undefined && opts.to === undefined) {
    const { first, last } = DECLARATION.partitions.daily;
    return { start: first, end: addDays(last, 1) };
  }
  return parseRange({ month: opts.month, from: opts.from, to: opts.to });
}

/** What went wrong reaching or reading the warehouse, and what to do. */
function explain(err: unknown, where: string): Error {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOENT':
      return new Error(
        `cannot reach the warehouse at ${where}: is it running? (\`sparkify dev\` starts one)`,
      );
    case '28P01':
    case '28000':
      return new Error(`the warehouse at ${where} refused the login (${e.message}): set PGPASSWORD`);
    case '3D000':
      return new Error(`the warehouse at ${where} has no such database: check warehouse.database`);
    case '42P01':
      return new Error(
        `the warehouse at ${where} has no tables yet: materialize the warehouse first, e.g. sparkify materialize --select '+warehouse_songplays' --month 2018-11`,
      );
    default:
      return err instanceof Error ? err : new Error(String(err));
  }
}

export async function reportFromWarehouse(config: Config, range: DayRange): Promise<WarehouseReport> {
  const settings = clientConfig(config);
  const where = describeConnection(settings);
  const client = new Client({ ...settings, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    throw explain(err, where);
  }
  try {
    return await runReports(client, range);
  } catch (err) {
    throw explain(err, where);
  } finally {
    await client.end();
  }
}

const percent = (share: number | null) => (share === null ? '' : `${(share * 100).toFixed(1)}%`);
const text = (v: unknown) =>
  v === null || v === undefined
    ? ''
    : typeof v === 'number'
      ? v.toLocaleString('en-US')
      : String(v as string);

/** One table per question, shares as percentages. */
export function renderReport(report: WarehouseReport): string {
  const out = [`Song-play analytics for ${describeRange(report.range)} (UTC)`];
  for (const name of QUESTION_NAMES) {
    const rows = report.answers[name] as Record<string, unknown>[];
    const columns = Object.keys(QUESTIONS[name].row.shape);
    const table = new Table({ head: columns, style: { head: [], border: [] } });
    for (const row of rows) {
      table.push(
        columns.map((c) => (c.startsWith('share') ? percent(row[c] as number | null) : text(row[c]))),
      );
    }
    out.push('', QUESTIONS[name].title, rows.length > 0 ? table.toString() : '  (no plays)');
  }
  return out.join('\n');
}
