import Table from 'cli-table3';
import type { AssetResult, MaterializeResult } from '../workflows/types';

const SYMBOL: Record<AssetResult['status'], string> = {
  pending: '·',
  running: '…',
  materialized: '✔',
  up_to_date: '=',
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
      [a.reason, a.logFile ? `log: ${a.logFile}` : undefined].filter(Boolean).join('\n'),
    ]);
  }
  const code = result.codeVersion ? `, code ${result.codeVersion}` : '';
  return `${result.workflowId} (${result.range.start} → ${result.range.end}${code})\n${table.toString()}`;
}
