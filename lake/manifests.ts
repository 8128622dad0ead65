import { z } from 'zod';
import { daysIn, type DayRange } from '../assets/partitions';
import type { Lake } from './store';

/**
 * Materialization manifests: one small JSON per asset partition at
 * `_manifests/<asset>/<partition>.json`, holding the last run, the last success and a short
 * history. Status, staleness and change detection are all read from here, not from Temporal's
 * history. A partition's manifest is written only by a step holding that partition's lease, so
 * two writers never race on one file.
 */

export const UNPARTITIONED = 'all';
const HISTORY = 20;

export const RunRecordSchema = z.object({
  status: z.enum(['materialized', 'failed']),
  /** When the run was recorded. */
  at: z.string(),
  workflowId: z.string(),
  runKind: z.string(),
  step: z.string(),
  stepId: z.string().optional(),
  codeVersion: z.string(),
  range: z.object({ start: z.string(), end: z.string() }),
  rows: z.number().nullable().optional(),
  /** The table's size after the run, for assets that rewrite a whole table. */
  tableRows: z.number().nullable().optional(),
  quarantined: z.record(z.string(), z.number()).optional(),
  reason: z.string().optional(),
  logFile: z.string().optional(),
  reportUri: z.string().optional(),
  /** Where a step that failed its checks left its output for inspection. */
  stagingUri: z.string().optional(),
  /** A digest of the partition's content as written (same data, same version). */
  dataVersion: z.string().optional(),
  /** Fingerprints of the raw inputs the step read for this partition, taken before it read them. */
  inputs: z.record(z.string(), z.string()).optional(),
  /** The data version of each upstream partition the step read, by asset. */
  upstream: z.record(z.string(), z.string()).optional(),
  /** The EMR step's own start and end, for durations and cost. */
  startedAt: z.string().optional(),
  endedAt: z.string().optional(),
  /** Non-blocking checks that failed: published anyway. */
  warnings: z.array(z.string()).optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

export const ManifestSchema = z.object({
  asset: z.string(),
  partition: z.string(),
  lastRun: RunRecordSchema,
  lastSuccess: RunRecordSchema.nullable(),
  /** Earlier runs, newest first (the last run is not repeated here). */
  history: z.array(RunRecordSchema).default([]),
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
    history: previous ? [previous.lastRun, ...previous.history].slice(0, HISTORY) : [],
  };
  await lake.write(manifestKey(asset, partition), JSON.stringify(manifest, null, 2));
}

/** Every manifest of an asset, keyed by partition. One listing, then small reads. */
export async function readManifests(lake: Lake, asset: string): Promise<Map<string, Manifest>> {
  const objects = await lake.list(`_manifests/${asset}/`);
  const manifests = new Map<string, Manifest>();
  await mapLimit(objects, 32, async (o) => {
    const partition = o.key.slice(`_manifests/${asset}/`.length).replace(/\.json$/, '');
    const m = await readManifest(lake, asset, partition);
    if (m) manifests.set(partition, m);
  });
  return manifests;
}

/** The manifests of the given partitions of an asset (absent ones are left out). */
export async function readManifestsOf(
  lake: Lake,
  asset: string,
  partitions: readonly string[],
): Promise<Map<string, Manifest>> {
  const manifests = new Map<string, Manifest>();
  await mapLimit(partitions, 32, async (p) => {
    const m = await readManifest(lake, asset, p);
    if (m) manifests.set(p, m);
  });
  return manifests;
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
