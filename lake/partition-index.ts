import { z } from 'zod';
import { ASSET_KEY_PATTERN, graph } from '../assets';
import { readManifests, RunRecordSchema, UNPARTITIONED, type Manifest, type RunRecord } from './manifests';
import type { Lake, LakeObject } from './store';

/**
 * The partition index: per asset, the compact state of every partition (its last run and its
 * last success), so a view of thousands of partitions reads a few objects per asset instead of a
 * manifest per partition. Manifests stay the source of truth; the index is derived from them:
 * the bookkeeping activities update it right after they write manifests (`indexRuns`), and
 * `rebuildIndex` makes it from the manifests (for lakes written before it existed, or after a
 * crash between a manifest write and its index update).
 *
 * Layout: `_index/<asset>/<scope>/<generation>.json`, scope = the year of a daily partition
 * (`2018`) or `all`. Each generation is a complete, immutable snapshot of its scope; the
 * highest generation is the current one.
 *
 * Concurrent writers, without locks (the commit protocol of Delta Lake's `_delta_log`): two
 * steps of one asset may record different days of one year at once (day-range leases let runs
 * over disjoint days run side by side). A writer reads the current generation N, merges its
 * entries in, and *creates* N+1 with `Lake.create`, which succeeds for exactly one writer; the
 * others re-read N+1 and try N+2. Nothing is ever overwritten, so no update is lost:
 *  - the merge is a join (per partition, the later record by `at`, then a fixed tie-break; the
 *    same for the last success), so merging is commutative, associative and idempotent: retrying,
 *    merging twice, or a rebuild running beside the activities all converge on the same state;
 *  - generations below N-1 are deleted only once N+1 exists, and a writer whose base was so old
 *    that its number had been deleted (and so re-created) sees a higher generation after its
 *    create and merges again on top of it; readers that find a listed generation gone list again;
 *  - every generation is built on the one below it, so the highest contains every update whose
 *    writer returned.
 * Records of one partition are serialised by its lease, so `at` (the recording worker's clock)
 * orders them as the manifest does unless two workers' clocks disagree by more than the time
 * between two runs of one partition.
 */

export const INDEX_PREFIX = '_index';
/** Written by `rebuildIndex`: every manifest written before `rebuiltAt` is in the index. */
export const INDEX_MARKER = `${INDEX_PREFIX}/_meta.json`;
const GENERATION_DIGITS = 10;
const MAX_ATTEMPTS = 60;

/** A run as the index keeps it: the manifest's record without report, staging and check details. */
export const IndexRecordSchema = RunRecordSchema.omit({
  reportUri: true,
  stagingUri: true,
  warnings: true,
  quarantined: true,
}).extend({
  /** Quarantined input rows, all reasons together (the manifest has them by reason). */
  quarantined: z.number().optional(),
  /** How many non-blocking checks failed. */
  warnings: z.number().optional(),
});
export type IndexRecord = z.infer<typeof IndexRecordSchema>;

export const IndexEntrySchema = z.object({
  last: IndexRecordSchema,
  /** The last success, when the last run failed (otherwise it is `last`). */
  success: IndexRecordSchema.optional(),
});
export type IndexEntry = z.infer<typeof IndexEntrySchema>;

const ScopeFileSchema = z.object({
  version: z.literal(1),
  asset: z.string(),
  scope: z.string(),
  generation: z.number().int().min(1),
  partitions: z.record(z.string(), IndexEntrySchema),
});
type ScopeFile = z.infer<typeof ScopeFileSchema>;

export class IndexError extends Error {
  override name = 'IndexError';
}

/** The scope a partition's entry lives in: its year, or `all`. */
export function scopeOf(partition: string): string {
  if (partition === UNPARTITIONED) return UNPARTITIONED;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(partition)) throw new IndexError(`not a partition: ${partition}`);
  return partition.slice(0, 4);
}

function checkAsset(asset: string): string {
  if (!ASSET_KEY_PATTERN.test(asset)) throw new IndexError(`not an asset key: ${asset}`);
  return asset;
}

export function generationKey(asset: string, scope: string, generation: number): string {
  return `${INDEX_PREFIX}/${checkAsset(asset)}/${scope}/${String(generation).padStart(GENERATION_DIGITS, '0')}.json`;
}

const GENERATION_KEY = /^_index\/([a-z][a-z0-9_]*)\/(\d{4}|all)\/(\d+)\.json$/;

interface Generation {
  key: string;
  etag: string;
  scope: string;
  generation: number;
}

function generationsIn(objects: readonly LakeObject[]): Generation[] {
  const out: Generation[] = [];
  for (const o of objects) {
    const m = GENERATION_KEY.exec(o.key);
    if (m) out.push({ key: o.key, etag: o.etag, scope: m[2]!, generation: Number(m[3]) });
  }
  return out.sort((a, b) => a.generation - b.generation);
}

export function toIndexRecord(run: RunRecord): IndexRecord {
  const { reportUri: _r, stagingUri: _s, warnings, quarantined, ...kept } = run;
  const total = quarantined ? Object.values(quarantined).reduce((a, b) => a + b, 0) : undefined;
  return {
    ...kept,
    ...(total !== undefined ? { quarantined: total } : {}),
    ...(warnings && warnings.length > 0 ? { warnings: warnings.length } : {}),
  };
}

/** A record in the manifest's shape (without what the index leaves out), for freshness.ts. */
export function toRunRecord(record: IndexRecord): RunRecord {
  const { quarantined: _q, warnings: _w, ...rest } = record;
  return rest;
}

/** The manifest an entry stands for (its history left out), for freshness.ts. */
export function entryAsManifest(asset: string, partition: string, entry: IndexEntry): Manifest {
  const lastRun = toRunRecord(entry.last);
  const success =
    entry.last.status === 'materialized' ? lastRun : entry.success && toRunRecord(entry.success);
  return { asset, partition, lastRun, lastSuccess: success ?? null, history: [] };
}

/** The last success an entry knows of. */
export function successOf(entry: IndexEntry): IndexRecord | undefined {
  return entry.last.status === 'materialized' ? entry.last : entry.success;
}

/**
 * A total order on records, so that a merge picks the same one whatever the order of its inputs:
 * the later `at`, then a fixed tie-break. Returns `a` when they are the same record.
 */
export function laterOf(a: IndexRecord, b: IndexRecord): IndexRecord {
  if (a.at !== b.at) return a.at > b.at ? a : b;
  if (a.status !== b.status) return a.status === 'failed' ? a : b;
  if (a.workflowId !== b.workflowId) return a.workflowId > b.workflowId ? a : b;
  const ja = canonicalJson(a);
  const jb = canonicalJson(b);
  return ja >= jb ? a : b;
}

/** JSON with keys sorted at every level: equal records give equal text whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The join of two entries of one partition. Returns `a` itself when `b` adds nothing. */
export function mergeEntry(a: IndexEntry | undefined, b: IndexEntry): IndexEntry {
  if (a === undefined) return b;
  const last = laterOf(a.last, b.last);
  const sa = successOf(a);
  const sb = successOf(b);
  const success = sa && sb ? laterOf(sa, sb) : (sa ?? sb);
  const changed = last !== a.last || success !== sa;
  if (!changed) return a;
  return last.status === 'failed' && success ? { last, success } : { last };
}

export function entryOf(manifest: Pick<Manifest, 'lastRun' | 'lastSuccess'>): IndexEntry {
  const last = toIndexRecord(manifest.lastRun);
  if (last.status === 'materialized' || !manifest.lastSuccess) return { last };
  return { last, success: toIndexRecord(manifest.lastSuccess) };
}

function parseScope(text: string, key: string): ScopeFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new IndexError(
      `${key}: not JSON (${(err as Error).message}); \`sparkify index rebuild\` remakes it`,
    );
  }
  const parsed = ScopeFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new IndexError(
      `${key}: not an index file (${issue?.path.join('.')}: ${issue?.message}); \`sparkify index rebuild\` remakes it`,
    );
  }
  return parsed.data;
}

async function listScope(lake: Lake, asset: string, scope: string): Promise<Generation[]> {
  return generationsIn(await lake.list(`${INDEX_PREFIX}/${checkAsset(asset)}/${scope}/`));
}

interface ScopeState {
  generation: number;
  partitions: Record<string, IndexEntry>;
}

/**
 * Generations this process read or wrote last, by lake and key, with their ETag: a generation is
 * immutable, so a writer whose base is the generation it wrote itself (a backfill's next day)
 * neither reads nor parses it again. A year's scope holds up to 366 entries, and reading it back
 * for every update made the bookkeeping of a day grow with the days before it in the year.
 */
const recentScopes = new Map<string, { etag: string; partitions: Readonly<Record<string, IndexEntry>> }>();
const RECENT_SCOPES_MAX = 64;

function rememberScope(lake: Lake, g: Generation, partitions: Readonly<Record<string, IndexEntry>>): void {
  const id = `${lake.uri}\n${g.key}`;
  recentScopes.delete(id);
  if (recentScopes.size >= RECENT_SCOPES_MAX) recentScopes.delete(recentScopes.keys().next().value!);
  recentScopes.set(id, { etag: g.etag, partitions });
}

/**
 * The current generation of a scope. A generation listed but gone when read was deleted because
 * two newer ones exist: list again.
 */
async function readScope(
  lake: Lake,
  asset: string,
  scope: string,
  opts: { lenient?: boolean } = {},
): Promise<ScopeState> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const top = (await listScope(lake, asset, scope)).at(-1);
    if (!top) return { generation: 0, partitions: {} };
    const hit = recentScopes.get(`${lake.uri}\n${top.key}`);
    if (hit && hit.etag === top.etag) return { generation: top.generation, partitions: hit.partitions };
    const text = await lake.readText(top.key);
    if (text === null) continue;
    try {
      const partitions = parseScope(text, top.key).partitions;
      rememberScope(lake, top, partitions);
      return { generation: top.generation, partitions };
    } catch (err) {
      // A rebuild starts the scope afresh from the manifests rather than stop at a broken file.
      if (opts.lenient && err instanceof IndexError) return { generation: top.generation, partitions: {} };
      throw err;
    }
  }
  throw new IndexError(`${INDEX_PREFIX}/${asset}/${scope}: could not read a current generation`);
}

const pause = (attempt: number) =>
  new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random())));

/** Merges `entries` (partition → entry, all of one scope) into the scope's index; see the top. */
export async function updateScope(
  lake: Lake,
  asset: string,
  scope: string,
  entries: Readonly<Record<string, IndexEntry>>,
  opts: { lenient?: boolean } = {},
): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const base = await readScope(lake, asset, scope, opts);
    const merged: Record<string, IndexEntry> = { ...base.partitions };
    let changed = false;
    for (const [partition, entry] of Object.entries(entries)) {
      if (scopeOf(partition) !== scope) throw new IndexError(`${partition} is not in scope ${scope}`);
      const next = mergeEntry(base.partitions[partition], entry);
      if (next !== base.partitions[partition]) {
        merged[partition] = next;
        changed = true;
      }
    }
    // Already in (a retried activity, or a writer that merged ours into its own): nothing to do.
    if (!changed) return;
    const generation = base.generation + 1;
    const file: ScopeFile = { version: 1, asset, scope, generation, partitions: sortedKeys(merged) };
    if (!(await lake.create(generationKey(asset, scope, generation), JSON.stringify(file)))) {
      await pause(attempt);
      continue;
    }
    const after = await listScope(lake, asset, scope);
    // A higher generation already: ours re-used a number deleted under a writer whose base was
    // that old, and is not in the line. Merge again on top of the current one (idempotent).
    if (after.some((g) => g.generation > generation)) continue;
    const ours = after.find((g) => g.generation === generation);
    if (ours) rememberScope(lake, ours, file.partitions);
    // Keep the one below ours for readers that listed before ours appeared.
    await Promise.all(after.filter((g) => g.generation < generation - 1).map((g) => lake.delete(g.key)));
    return;
  }
  throw new IndexError(`${INDEX_PREFIX}/${asset}/${scope}: gave up after ${MAX_ATTEMPTS} contended attempts`);
}

function sortedKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface RecordedRun {
  asset: string;
  partition: string;
  run: RunRecord;
}

/**
 * The hook the bookkeeping activities call after writing manifests: one index update per asset
 * and year touched (a month's step is one update, not thirty).
 */
export async function indexRuns(lake: Lake, runs: readonly RecordedRun[]): Promise<void> {
  const groups = new Map<string, { asset: string; scope: string; entries: Record<string, IndexEntry> }>();
  for (const { asset, partition, run } of runs) {
    const scope = scopeOf(partition);
    const id = `${asset}/${scope}`;
    const group = groups.get(id) ?? { asset, scope, entries: {} };
    group.entries[partition] = mergeEntry(group.entries[partition], { last: toIndexRecord(run) });
    groups.set(id, group);
  }
  await Promise.all([...groups.values()].map((g) => updateScope(lake, g.asset, g.scope, g.entries)));
}

/** Every partition of an asset, from its index. */
export type AssetIndex = Map<string, IndexEntry>;

/**
 * Reads the index of the given assets (and, optionally, only the scopes `wantScope` accepts):
 * one listing per asset, then the current generation of each scope. Generations never change once
 * written, so a reader keeps them by key and etag and reads only what is new since last time.
 */
export class IndexReader {
  private readonly cache = new Map<string, { etag: string; partitions: Record<string, IndexEntry> }>();

  constructor(
    private readonly lake: Lake,
    private readonly maxCached = 2048,
  ) {}

  async read(
    assets: readonly string[],
    wantScope: (scope: string) => boolean = () => true,
  ): Promise<Map<string, AssetIndex>> {
    const out = new Map<string, AssetIndex>();
    await Promise.all(
      assets.map(async (asset) => {
        const all = generationsIn(await this.lake.list(`${INDEX_PREFIX}/${checkAsset(asset)}/`));
        const top = new Map<string, Generation>();
        for (const g of all) if (wantScope(g.scope)) top.set(g.scope, g);
        const partitions: AssetIndex = new Map();
        const scopes = await Promise.all([...top.values()].map((g) => this.readGeneration(asset, g)));
        for (const scope of scopes) for (const [p, e] of Object.entries(scope)) partitions.set(p, e);
        out.set(asset, partitions);
      }),
    );
    return out;
  }

  private async readGeneration(asset: string, g: Generation): Promise<Record<string, IndexEntry>> {
    const hit = this.cache.get(g.key);
    if (hit && hit.etag === g.etag) return hit.partitions;
    const text = await this.lake.readText(g.key);
    // Gone since the listing: newer generations exist; take the current one.
    if (text === null) return (await readScope(this.lake, asset, g.scope)).partitions;
    const partitions = parseScope(text, g.key).partitions;
    if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(g.key, { etag: g.etag, partitions });
    return partitions;
  }
}

export interface RebuildResult {
  assets: number;
  partitions: number;
  rebuiltAt: string;
}

/**
 * Makes the index from the manifests (one listing per asset, then every manifest): for a lake
 * written before the index existed, or to heal one the activities could not update (a crash
 * between a manifest write and its index update). Merges like any writer, so it is safe beside
 * running activities; a scope whose current file is broken is started afresh.
 */
export async function rebuildIndex(
  lake: Lake,
  opts: { assets?: readonly string[]; log?: (line: string) => void; now?: () => Date } = {},
): Promise<RebuildResult> {
  const rebuiltAt = (opts.now ?? (() => new Date()))().toISOString();
  const assets = opts.assets ?? graph.order;
  let partitions = 0;
  for (const asset of assets) {
    const manifests = await readManifests(lake, asset);
    const byScope = new Map<string, Record<string, IndexEntry>>();
    for (const [partition, manifest] of manifests) {
      const scope = scopeOf(partition);
      const entries = byScope.get(scope) ?? {};
      entries[partition] = entryOf(manifest);
      byScope.set(scope, entries);
    }
    for (const [scope, entries] of byScope) await updateScope(lake, asset, scope, entries, { lenient: true });
    partitions += manifests.size;
    opts.log?.(`${asset}: ${manifests.size} partitions indexed`);
  }
  await lake.write(INDEX_MARKER, JSON.stringify({ version: 1, rebuiltAt }, null, 2));
  return { assets: assets.length, partitions, rebuiltAt };
}

/** Whether the index was ever built from this lake's manifests (see rebuildIndex). */
export async function indexBuilt(lake: Lake): Promise<boolean> {
  return lake.exists(INDEX_MARKER);
}

/**
 * What the index replaces: every manifest of each asset listed and read, for each view. Kept as
 * the bench's baseline (`npm run bench -- --only ui`), with the same interface as IndexReader.
 */
export class ManifestScan {
  constructor(private readonly lake: Lake) {}

  async read(
    assets: readonly string[],
    wantScope: (scope: string) => boolean = () => true,
  ): Promise<Map<string, AssetIndex>> {
    const out = new Map<string, AssetIndex>();
    for (const asset of assets) {
      const entries: AssetIndex = new Map();
      for (const [partition, manifest] of await readManifests(this.lake, asset)) {
        if (wantScope(scopeOf(partition))) entries.set(partition, entryOf(manifest));
      }
      out.set(asset, entries);
    }
    return out;
  }
}
