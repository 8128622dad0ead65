import { graph, type AssetSpec } from '../assets';
import type { Lake } from './store';
import { readManifests, UNPARTITIONED, type Manifest } from './manifests';

/** Partition states, derived from the manifests in the lake; Temporal is not needed. */
export type CellState = 'materialized' | 'failed' | 'missing' | 'stale';

export interface StatusCell {
  asset: string;
  partition: string;
  state: CellState;
  lastRun?: Manifest['lastRun'];
  /** For stale cells: the upstream that changed after this partition was built. */
  staleBecause?: string;
}

function upstreamPartition(dep: AssetSpec, partition: string): string {
  return dep.partitioning === 'daily' ? partition : UNPARTITIONED;
}

/** Without `partitionsFor`, the partitions that have a manifest. */
export async function readStatus(
  lake: Lake,
  partitionsFor?: (spec: AssetSpec) => string[],
): Promise<StatusCell[]> {
  const manifests = new Map(
    await Promise.all(graph.order.map(async (a) => [a, await readManifests(lake, a)] as const)),
  );
  const cells: StatusCell[] = [];
  for (const asset of graph.order) {
    const spec = graph.specs.get(asset)!;
    const known = [...manifests.get(asset)!.keys()].sort();
    for (const partition of partitionsFor ? partitionsFor(spec) : known) {
      const m = manifests.get(asset)!.get(partition);
      if (!m) {
        cells.push({ asset, partition, state: 'missing' });
        continue;
      }
      if (m.lastRun.status === 'failed') {
        cells.push({ asset, partition, state: 'failed', lastRun: m.lastRun });
        continue;
      }
      const builtAt = m.lastSuccess?.at ?? m.lastRun.at;
      const newer = spec.deps.find((d) => {
        const up = manifests.get(d)!.get(upstreamPartition(graph.specs.get(d)!, partition));
        return up?.lastSuccess !== undefined && up.lastSuccess !== null && up.lastSuccess.at > builtAt;
      });
      cells.push(
        newer
          ? { asset, partition, state: 'stale', lastRun: m.lastRun, staleBecause: newer }
          : { asset, partition, state: 'materialized', lastRun: m.lastRun },
      );
    }
  }
  return cells;
}

/** The state of a group of cells: the worst of them (failed > missing > stale > materialized). */
export function worstState(cells: readonly StatusCell[]): CellState {
  for (const s of ['failed', 'missing', 'stale'] as const) if (cells.some((c) => c.state === s)) return s;
  return 'materialized';
}
