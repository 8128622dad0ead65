import { z } from 'zod';
import { daysIn, type DayRange } from '../assets/partitions';
import type { Lake } from './store';

/**
 * Materialization manifests: one small JSON per asset partition at
 * `_manifests/<asset>/<partition>.json`, holding the last run and the last success. Status,
 * staleness and change detection are all read from here, not from Temporal's history.
 */

export const UNPARTITIONED = 'all';

const RunRecord = z.object({
  status: z.enum(['materialized', 'failed']),
  at: z.string(),
  workflowId: z.string(),
  runKind: z.string(),
  step: z.string(),
  stepId: z.string().optional(),
  codeVersion: z.string(),
  range: z.object({ start: z.string(), end: z.string() }),
  rows: z.number().nullable().optional(),
  quarantined: z.record(z.string(), z.number()).optional(),
  reason: z.string().optional(),
  logFile: z.string().optional(),
  reportUri: z.string().optional(),
  sourceFingerprint: z.string().optional(),
});
export type RunRecord = z.infer<typeof RunRecord>;

export const ManifestSchema = z.object({
  asset: z.string(),
  partition: z.string(),
  lastRun: RunRecord,
  lastSuccess: RunRecord.nullable(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export function manifestKey(asset: string, partition: string): string {
  return `_manifests/${asset}/${partition}.json`;
}

export function partitionsOf(partitioning: 'daily' | 'unpartitioned', range: DayRange): string[] {
  return partitioning === 'daily' ? daysIn(range) : [UNPARTITIONED];
}

export async function readManifest(lake: Lake, asset: string, partition: string): Promise<Manifest | null> {
  const text = await lake.readText(manifestKey(asset, partition));
  if (text === null) return null;
  const parsed = ManifestSchema.safeParse(JSON.parse(text));
  return parsed.success ? parsed.data : null;
}

export async function writeRun(lake: Lake, asset: string, partition: string, run: RunRecord): Promise<void> {
  const previous = await readManifest(lake, asset, partition);
  const manifest: Manifest = {
    asset,
    partition,
    lastRun: run,
    lastSuccess: run.status === 'materialized' ? run : (previous?.lastSuccess ?? null),
  };
  await lake.write(manifestKey(asset, partition), JSON.stringify(manifest, null, 2));
}

/** Every manifest of an asset, keyed by partition. One listing, then small reads. */
export async function readManifests(lake: Lake, asset: string): Promise<Map<string, Manifest>> {
  const objects = await lake.list(`_manifests/${asset}/`);
  const manifests = new Map<string, Manifest>();
  await Promise.all(
    objects.map(async (o) => {
      const partition = o.key.slice(`_manifests/${asset}/`.length).replace(/\.json$/, '');
      const m = await readManifest(lake, asset, partition);
      if (m) manifests.set(partition, m);
    }),
  );
  return manifests;
}
