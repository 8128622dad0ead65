import { addDays, describeRange, monthRange, type DayRange } from '../assets/partitions';
import type { BackfillProgress } from './backfill';
import type { MaterializeResult, RunKind } from './types';

/**
 * What the Temporal Web UI shows a person: a one-line summary and markdown details for each
 * workflow we start, a summary per activity, and each run's current details, kept current. Pure
 * text from the run's own data; the workflows and the client both use it.
 */

/** `2018-11` for a whole month, else the days, both included. */
export function rangeLabel(range: DayRange): string {
  const month = range.start.slice(0, 7);
  const whole = monthRange(month);
  return whole.start === range.start && whole.end === range.end ? month : describeRange(range);
}

/** e.g. `songplays, users, time · 2018-11 · backfill`. */
export function runSummary(assets: readonly string[], range: DayRange, kind: RunKind | 'daily'): string {
  return `${assets.join(', ')} · ${rangeLabel(range)} · ${kind}`;
}

export function runDetails(o: {
  selection: string;
  assets: readonly string[];
  range: DayRange;
  only?: string;
  codeVersion?: string;
  lake?: string;
}): string {
  const rows = [
    ['selection', `\`${o.selection}\` → ${o.assets.join(', ')}`],
    ['days', `${o.range.start} → ${addDays(o.range.end, -1)} (both included)`],
    [
      'builds',
      o.only === undefined || o.only === 'outdated'
        ? 'what is not up to date'
        : o.only === 'all'
          ? 'everything (forced)'
          : `only ${o.only} partitions`,
    ],
    ...(o.codeVersion ? [['code version', `\`${o.codeVersion}\``]] : []),
    ...(o.lake ? [['lake', `\`${o.lake}\``]] : []),
  ];
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

/** e.g. `EMR step songplays 2018-11-01..2018-11-30`. */
export function stepSummary(step: string, range: DayRange | null): string {
  return `EMR step ${step}${range ? ` ${describeRange(range)}` : ''}`;
}

const cell = (text: string | number | undefined) =>
  text === undefined ? '' : String(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A markdown table of asset × status × rows × EMR step × duration × log, and the reasons. */
export function materializeDetails(r: MaterializeResult): string {
  const lines = [
    '| asset | status | rows | EMR step | seconds | log |',
    '|---|---|---:|---|---:|---|',
    ...r.assets.map(
      (a) =>
        `| ${a.asset} | ${a.status} | ${cell(a.rows?.toLocaleString('en-US'))} | ${cell(a.stepId)} | ${cell(
          a.durationS?.toFixed(1),
        )} | ${cell(a.logFile)} |`,
    ),
  ];
  const why = r.assets.filter((a) => a.reason && a.status !== 'materialized');
  if (why.length > 0) {
    lines.push('', ...why.map((a) => `- **${a.asset}** (${a.status}): ${cell(a.reason)}`));
  }
  return lines.join('\n');
}

export function backfillDetails(p: BackfillProgress): string {
  const failed = Object.entries(p.failed);
  const lines = [
    `| done | failed | running | pending | left out (nothing to build) |`,
    '|---:|---:|---:|---:|---:|',
    `| ${p.done} | ${failed.length} | ${p.running.length} | ${p.pending} | ${p.skippedByFilter} |`,
  ];
  if (p.running.length > 0) lines.push('', `Running: ${p.running.join(', ')}`);
  if (failed.length > 0) {
    lines.push('', '**Failed**', ...failed.slice(0, 50).map(([part, why]) => `- ${part}: ${cell(why)}`));
    if (failed.length > 50) lines.push(`- … and ${failed.length - 50} more`);
  }
  return lines.join('\n');
}
