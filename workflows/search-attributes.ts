import {
  defineSearchAttributeKey,
  SearchAttributeType,
  type SearchAttributePair,
  type TypedSearchAttributes,
} from '@temporalio/common';
import { monthsOf, type DayRange } from '../assets/partitions';
import type { PartitionFilter } from '../lake/freshness';
import type { RunKind } from './types';

/**
 * Custom search attributes, so the Web UI can list e.g. every run of songplays for 2018-11:
 *   SparkifyAssets = 'songplays' AND SparkifyMonths = '2018-11'
 * Registered by `sparkify dev`; on a real cluster register them once (see README).
 */
export const SA_ASSETS = defineSearchAttributeKey('SparkifyAssets', SearchAttributeType.KEYWORD_LIST);
export const SA_MONTHS = defineSearchAttributeKey('SparkifyMonths', SearchAttributeType.KEYWORD_LIST);
export const SA_PARTITION_START = defineSearchAttributeKey(
  'SparkifyPartitionStart',
  SearchAttributeType.KEYWORD,
);
export const SA_PARTITION_END = defineSearchAttributeKey('SparkifyPartitionEnd', SearchAttributeType.KEYWORD);
export const SA_RUN_KIND = defineSearchAttributeKey('SparkifyRunKind', SearchAttributeType.KEYWORD);
/** Set on a run that failed: the assets that failed or were skipped (`SparkifyFailedAssets = 'users'`). */
export const SA_FAILED_ASSETS = defineSearchAttributeKey(
  'SparkifyFailedAssets',
  SearchAttributeType.KEYWORD_LIST,
);

export const SEARCH_ATTRIBUTES = [
  SA_ASSETS,
  SA_MONTHS,
  SA_PARTITION_START,
  SA_PARTITION_END,
  SA_RUN_KIND,
  SA_FAILED_ASSETS,
];

/** `Name=Type` as the Temporal CLI's --search-attribute flag takes it. */
export function searchAttributeFlags(): string[] {
  const cliType: Record<string, string> = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList' };
  return SEARCH_ATTRIBUTES.map((k) => `${k.name}=${cliType[k.type]}`);
}

/** What a materialization is findable by (search attributes) and shows in the Web UI's list (memo). */
export interface RunAttributes {
  searchAttributes: SearchAttributePair[];
  memo: Record<string, unknown>;
}

export function materializeAttributes(run: {
  selection: string;
  assets: string[];
  range: DayRange;
  runKind: RunKind;
  only: PartitionFilter;
}): RunAttributes {
  return {
    searchAttributes: [
      { key: SA_ASSETS, value: run.assets },
      { key: SA_MONTHS, value: monthsOf(run.range) },
      { key: SA_PARTITION_START, value: run.range.start },
      { key: SA_PARTITION_END, value: run.range.end },
      { key: SA_RUN_KIND, value: run.runKind },
    ],
    memo: { selection: run.selection, assets: run.assets, range: run.range, only: run.only },
  };
}

/**
 * Of a run's attributes, those it was not started with. A starter that sets them at start (the
 * CLI, a backfill's children) saves the run two upserts: two history events and two visibility
 * writes each. The start's attributes are in the run's first event, so replays decide the same.
 */
export function attributesNotStartedWith(
  wanted: RunAttributes,
  started: { typedSearchAttributes: TypedSearchAttributes; memo?: Record<string, unknown> },
): { searchAttributes: SearchAttributePair[]; memo: Record<string, unknown> | null } {
  const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);
  return {
    searchAttributes: wanted.searchAttributes.filter(
      (p) => !same(started.typedSearchAttributes.get(p.key), p.value),
    ),
    memo: Object.entries(wanted.memo).every(([k, v]) => same(started.memo?.[k], v)) ? null : wanted.memo,
  };
}

/** JSON with object keys sorted: equal values, equal text, whatever order their keys came in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'undefined';
}
