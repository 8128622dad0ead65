import Table from 'cli-table3';
import { addDays, describeRange } from '../assets/partitions';
import type { AssetResult, MaterializeResult } from '../workflows/types';

const SYMBOL: Record<AssetResult['status'], string> = {
  pending: '·',
  waiting: '⧗',
  running: '…',
  materialized: '✔',
  up_to_date: '=',
  filtered: '-',
  failed: '✘',
  skipped: '↷',
};

export function formatRows(n: number | undefined): string {
  return n === undefined ? '' : n.toLocaleString('en-US');
}

/** The per-asset table shown live while a run goes and once more at its end. */
export function renderRun(result: MaterializeResult): string {
  const table = new Table({
    head: ['asset', 'status', 'rows', 'quarantined', 'EMR step', 'seconds', 'note'],
    style: { head: [], border: [] },
    colWidths: [null, null, null, null, null, null, 60],
    wordWrap: true,
  } as ConstructorParameters<typeof Table>[0]);
  for (const a of result.assets) {
    const quarantined = Object.values(a.quarantined ?? {}).reduce((x, y) => x + y, 0);
    table.push([
      a.asset,
      `${SYMBOL[a.status]} ${a.status}`,
      formatRows(a.rows),
      quarantined ? formatRows(quarantined) : '',
      a.stepId ?? '',
      a.durationS === undefined ? '' : a.durationS.toFixed(1),
      [
        a.ranges && a.ranges.length > 0 ? `built ${a.ranges.map(describeRange).join(', ')}` : undefined,
        a.upToDate ? `${a.upToDate} partition${a.upToDate === 1 ? '' : 's'} already up to date` : undefined,
        a.reason,
        ...(a.warnings ?? []).map((w) => `warning: ${w}`),
        a.stagingUri ? `staged output kept at ${a.stagingUri}` : undefined,
        a.logFile ? `log: ${a.logFile}` : undefined,
      ]
        .filter(Boolean)
        .join('\n'),
    ]);
  }
  const code = result.codeVersion ? `, code ${result.codeVersion}` : '';
  const days = `${result.range.start} → ${addDays(result.range.end, -1)}`;
  return `${result.workflowId} (${days}, both included${code})\n${table.toString()}`;
}
