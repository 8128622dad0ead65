import { graph, type AssetSpec } from '../assets';
import { fingerprintsFor, type InputFingerprints } from './fingerprints';
import {
  partitionStatus,
  upstreamPartition,
  versionFromManifest,
  type PartitionState,
  type PartitionStatus,
} from './freshness';
import { readManifestsOf, UNPARTITIONED, type Manifest } from './manifests';
import type { Lake } from './store';

/** Partition states, derived from the manifests in the lake and the raw inputs' fingerprints. */

export type CellState = PartitionState;
export type StatusCell = PartitionStatus;

export interface StatusQuery {
  /** Assets to report on (default: all), in any order. */
  assets?: readonly string[];
  /** The days of the daily partitions to report on. */
  days: readonly string[];
  /** The code version a run would use now (see activities/code-bundle.ts). */
  codeVersion: string;
}

export interface LakeStatus {
  cells: PartitionStatus[];
  inputs: InputFingerprints;
  manifests: ReadonlyMap<string, ReadonlyMap<string, Manifest>>;
}

function partitionsOf(spec: AssetSpec, days: readonly string[]): string[] {
  return spec.partitioning === 'daily' ? [...days] : [UNPARTITIONED];
}

/** Reads exactly the manifests the answer needs: the asked partitions and what they read upstream. */
export async function readLakeStatus(lake: Lake, raw: Lake, q: StatusQuery): Promise<LakeStatus> {
  const asked = new Set(q.assets ?? graph.order);
  const specs = graph.order.filter((k) => asked.has(k)).map((k) => graph.specs.get(k)!);
  const wanted = new Map<string, Set<string>>();
  const want = (asset: string, partitions: Iterable<string>) => {
    const set = wanted.get(asset) ?? new Set<string>();
    for (const p of partitions) set.add(p);
    wanted.set(asset, set);
  };
  for (const spec of specs) {
    const partitions = partitionsOf(spec, q.days);
    want(spec.key, partitions);
    for (const dep of spec.deps) {
      const depSpec = graph.specs.get(dep)!;
      want(
        dep,
        partitions.map((p) => upstreamPartition(depSpec, p)),
      );
    }
  }
  const [manifests, inputs] = await Promise.all([
    Promise.all(
      [...wanted.entries()].map(
        async ([asset, ps]) => [asset, await readManifestsOf(lake, asset, [...ps])] as const,
      ),
    ).then((entries) => new Map(entries)),
    fingerprintsFor(raw, specs, q.days),
  ]);
  const ctx = {
    codeVersion: q.codeVersion,
    inputs,
    versionOf: (asset: string, partition: string) =>
      versionFromManifest(manifests.get(asset)?.get(partition)),
  };
  const cells = specs.flatMap((spec) =>
    partitionsOf(spec, q.days).map((p) => partitionStatus(spec, p, manifests.get(spec.key)?.get(p), ctx)),
  );
  return { cells, inputs, manifests };
}

/** Every day some daily asset has a manifest for, sorted: what `status` without a range covers. */
export async function knownDays(lake: Lake): Promise<string[]> {
  const days = new Set<string>();
  for (const spec of graph.specs.values()) {
    if (spec.partitioning !== 'daily') continue;
    for (const o of await lake.list(`_manifests/${spec.key}/`)) {
      const m = /\/(\d{4}-\d{2}-\d{2})\.json$/.exec(o.key);
      if (m) days.add(m[1]!);
    }
  }
  return [...days].sort();
}

/** The state of a group of cells: the worst of them (failed > missing > stale > materialized). */
export function worstState(cells: readonly { state: CellState }[]): CellState {
  for (const s of ['failed', 'missing', 'stale'] as const) if (cells.some((c) => c.state === s)) return s;
  return 'materialized';
}
