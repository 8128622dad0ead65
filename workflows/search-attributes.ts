import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

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
