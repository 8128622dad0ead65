import { graph } from '../assets';
import type { InputFingerprints } from './fingerprints';
import { partitionStatus, type PartitionStatus } from './freshness';
import { UNPARTITIONED } from './manifests';
import { entryAsManifest, successOf, type AssetIndex } from './partition-index';

/**
 * Partition states computed in memory from the partition index: the rules of freshness.ts (the
 * ones `status` and backfill plans apply to manifests) applied to index entries, which carry what
 * they need — code version, data version, input fingerprints and upstream data versions.
 */

export interface IndexedStatusQuery {
  /** Assets to report on (default: all), in any order. */
  assets?: readonly string[];
  /** The days of the daily partitions to report on. */
  days: readonly string[];
  /** The code version a run would use now. */
  codeVersion: string;
  /** Fingerprints of the raw inputs for those days (see fingerprints.ts). */
  inputs: InputFingerprints;
}

export function statusFromIndex(
  index: ReadonlyMap<string, AssetIndex>,
  q: IndexedStatusQuery,
): PartitionStatus[] {
  const asked = new Set(q.assets ?? graph.order);
  const ctx = {
    codeVersion: q.codeVersion,
    inputs: q.inputs,
    versionOf: (asset: string, partition: string) => {
      const entry = index.get(asset)?.get(partition);
      return entry ? successOf(entry)?.dataVersion : undefined;
    },
  };
  const cells: PartitionStatus[] = [];
  for (const key of graph.order) {
    if (!asked.has(key)) continue;
    const spec = graph.specs.get(key)!;
    const mine = index.get(key);
    const partitions = spec.partitioning === 'daily' ? q.days : [UNPARTITIONED];
    for (const p of partitions) {
      const entry = mine?.get(p);
      cells.push(partitionStatus(spec, p, entry ? entryAsManifest(key, p, entry) : null, ctx));
    }
  }
  return cells;
}

/** Every day some daily asset has an index entry for, sorted. */
export function indexedDays(index: ReadonlyMap<string, AssetIndex>): string[] {
  const days = new Set<string>();
  for (const [asset, entries] of index) {
    if (graph.specs.get(asset)?.partitioning !== 'daily') continue;
    for (const p of entries.keys()) days.add(p);
  }
  return [...days].sort();
}
