import { graph, type AssetSpec } from '../assets';
import { inputsOfPartition, type InputFingerprints } from './fingerprints';
import { UNPARTITIONED, type Manifest, type RunRecord } from './manifests';

/**
 * Whether a partition is up to date, and if not, why — by data, not by clock. A partition is
 * stale when the code that built it changed, an upstream partition it read now has another data
 * version (a rebuild that produced the same data changes nothing), or its raw input changed.
 */

export type PartitionState = 'materialized' | 'failed' | 'missing' | 'stale';

/** Which partitions a run or backfill acts on: not up to date (the default), one state, or all. */
export type PartitionFilter = 'outdated' | 'missing' | 'failed' | 'stale' | 'all';

export interface PartitionStatus {
  asset: string;
  partition: string;
  state: PartitionState;
  /** Why it is failed, missing or stale, for a person. */
  reason?: string;
  lastRun?: RunRecord;
}

export interface FreshnessContext {
  /** The code version a run would use now. */
  codeVersion: string;
  inputs: InputFingerprints;
  /** The current data version of an asset partition (its last success's), if any. */
  versionOf: (asset: string, partition: string) => string | undefined;
}

/** The partition of `dep` that `partition` of a dependent reads: the same day, or the whole table. */
export function upstreamPartition(dep: AssetSpec, partition: string): string {
  return dep.partitioning === 'daily' ? partition : UNPARTITIONED;
}

/** The data versions of the upstream partitions a partition of `spec` reads, now. */
export function upstreamVersions(
  spec: AssetSpec,
  partition: string,
  versionOf: FreshnessContext['versionOf'],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const dep of spec.deps) {
    const version = versionOf(dep, upstreamPartition(graph.specs.get(dep)!, partition));
    if (version !== undefined) out[dep] = version;
  }
  return out;
}

export function partitionStatus(
  spec: AssetSpec,
  partition: string,
  manifest: Manifest | null | undefined,
  ctx: FreshnessContext,
): PartitionStatus {
  const base = { asset: spec.key, partition };
  if (!manifest) return { ...base, state: 'missing', reason: 'never materialized' };
  const { lastRun, lastSuccess } = manifest;
  if (lastRun.status === 'failed') {
    return { ...base, state: 'failed', reason: lastRun.reason ?? 'the last run failed', lastRun };
  }
  const built = lastSuccess ?? lastRun;
  const stale = staleReason(spec, partition, built, ctx);
  return stale
    ? { ...base, state: 'stale', reason: stale, lastRun }
    : { ...base, state: 'materialized', lastRun };
}

function staleReason(
  spec: AssetSpec,
  partition: string,
  built: RunRecord,
  ctx: FreshnessContext,
): string | null {
  if (built.codeVersion !== ctx.codeVersion) {
    return `code changed: built with ${built.codeVersion}, now ${ctx.codeVersion}`;
  }
  const inputs = inputsOfPartition(spec, partition, ctx.inputs);
  for (const [input, now] of Object.entries(inputs)) {
    const then = built.inputs?.[input];
    if (then !== now) {
      const what = input === 'log_data' ? `log_data for ${partition}` : input;
      return then === undefined ? `${what}: not recorded when built` : `${what} changed since it was built`;
    }
  }
  for (const dep of spec.deps) {
    const depPartition = upstreamPartition(graph.specs.get(dep)!, partition);
    const now = ctx.versionOf(dep, depPartition);
    const then = built.upstream?.[dep];
    if (now !== then) {
      const where = depPartition === UNPARTITIONED ? dep : `${dep}/${depPartition}`;
      if (now === undefined) return `upstream ${where} is not materialized`;
      return then === undefined
        ? `upstream ${where}: version not recorded when built`
        : `upstream ${where} changed (data version ${then} → ${now})`;
    }
  }
  return null;
}

export function matchesFilter(state: PartitionState, filter: PartitionFilter): boolean {
  switch (filter) {
    case 'all':
      return true;
    case 'outdated':
      return state !== 'materialized';
    default:
      return state === filter;
  }
}

/** The current data version of a partition from its manifest: that of its last success. */
export function versionFromManifest(manifest: Manifest | null | undefined): string | undefined {
  return manifest?.lastSuccess?.dataVersion;
}
