/**
 * Content-addressed Spark code. Steps reference `<code root>/<hash>/run.py`, never a mutable
 * "latest", so a step submitted (or retried, or adopted) hours later runs exactly the code its
 * workflow chose, and a new deploy cannot change a backfill halfway through.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { zipSync, type Zippable } from 'fflate';
import type { Lake } from '../lake/store';
import { jdbcJar } from '../warehouse/jdbc';

/** run.py, the package zip, and jars for spark-submit --jars (e.g. the JDBC driver). */
export type BundleFileName = 'run.py' | 'sparkify_jobs.zip' | `${string}.jar`;

export interface SparkBundle {
  /** First 16 hex of sha256 over the shipped sources (see {@link hashSources}). */
  hash: string;
  files: { name: BundleFileName; body: Buffer }[];
  /** The shipped sources (paths relative to the spark dir), sorted; what the hash covers. */
  sources: string[];
}

export interface PublishedCode {
  hash: string;
  runPy: string;
  pyFiles: string;
  /** URIs of the bundle's jars, for spark-submit --jars; absent when it has none. */
  jars?: string[];
  /** false when `<hash>/_COMPLETE` was already there and nothing was written. */
  uploaded: boolean;
}

/** The part of {@link Lake} publishing needs; any lake root works as a code root. */
export type CodeRoot = Pick<Lake, 'uriOf' | 'exists' | 'write'>;

const PACKAGE = 'sparkify_jobs';
// zip stores DOS local time; building the Date from local fields makes the stored fields the
// same in every time zone (1980-01-01 00:00, the earliest DOS date).
const ZIP_MTIME = new Date(1980, 0, 1, 0, 0, 0);

export interface BundleOptions {
  /**
   * Data files shipped inside the package zip, keyed by their path in the zip (which must be
   * under the package), e.g. `{ 'sparkify_jobs/assets.json': '<repo>/assets/assets.json' }`.
   */
  data?: Record<string, string>;
  /** Jars shipped beside run.py and passed to spark-submit with --jars (their bytes count in the hash). */
  jars?: string[];
}

export async function buildSparkBundle(sparkDir: string, opts: BundleOptions = {}): Promise<SparkBundle> {
  const runPy = await fs.readFile(path.join(sparkDir, 'run.py')).catch((err: unknown) => {
    throw new Error(`cannot read ${path.join(sparkDir, 'run.py')}: ${(err as Error).message}`);
  });
  const pkgDir = path.join(sparkDir, PACKAGE);
  const modules = await listPython(pkgDir, PACKAGE);
  if (!modules.some((m) => m === `${PACKAGE}/__init__.py`)) {
    throw new Error(`${pkgDir} is not a Python package (no __init__.py)`);
  }
  const sources = new Map<string, Buffer>([['run.py', runPy]]);
  for (const rel of modules) sources.set(rel, await fs.readFile(path.join(sparkDir, ...rel.split('/'))));
  const data = Object.entries(opts.data ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [rel, file] of data) {
    if (!rel.startsWith(`${PACKAGE}/`) || rel.split('/').some((s) => s === '' || s === '..')) {
      throw new Error(`bundle data path ${rel} must be a path inside ${PACKAGE}/`);
    }
    sources.set(
      rel,
      await fs.readFile(file).catch((err: unknown) => {
        throw new Error(`cannot read ${file} for the Spark bundle: ${(err as Error).message}`);
      }),
    );
  }
  const zipped = [...modules, ...data.map(([rel]) => rel)].sort();
  const jars: { name: `${string}.jar`; body: Buffer }[] = [];
  for (const file of opts.jars ?? []) {
    const name = path.basename(file);
    if (!/^[A-Za-z0-9._-]+\.jar$/.test(name)) throw new Error(`bundle jar ${file} must be a .jar file`);
    const body = await fs.readFile(file).catch((err: unknown) => {
      throw new Error(`cannot read ${file} for the Spark bundle: ${(err as Error).message}`);
    });
    sources.set(`jars/${name}`, body);
    jars.push({ name: name as `${string}.jar`, body });
  }

  const entries: Zippable = {};
  for (const rel of zipped) {
    entries[rel] = [new Uint8Array(sources.get(rel)!), { mtime: ZIP_MTIME, level: 9 }];
  }
  const zip = Buffer.from(zipSync(entries, { mtime: ZIP_MTIME, level: 9 }));
  return {
    hash: hashSources(sources),
    files: [{ name: 'run.py', body: runPy }, { name: 'sparkify_jobs.zip', body: zip }, ...jars],
    sources: [...sources.keys()].sort(),
  };
}

/**
 * The Spark bundle as this checkout (or image) would publish it: its hash is the code version.
 * Besides the jobs: the asset declaration, the warehouse migrations (the load applies them) and
 * the PostgreSQL JDBC driver (cached by scripts/setup-jdbc; SPARKIFY_JDBC_JAR names another).
 */
export async function projectBundle(sparkDir = path.resolve(__dirname, '../spark')): Promise<SparkBundle> {
  const migrations = path.resolve(sparkDir, '../warehouse/migrations');
  const data: Record<string, string> = {
    // The jobs read the asset declaration the orchestrator reads (spark/sparkify_jobs/graph.py).
    'sparkify_jobs/assets.json': path.resolve(sparkDir, '../assets/assets.json'),
  };
  for (const name of (await fs.readdir(migrations)).filter((n) => n.endsWith('.sql')).sort()) {
    data[`sparkify_jobs/migrations/${name}`] = path.join(migrations, name);
  }
  return buildSparkBundle(sparkDir, { data, jars: [await jdbcJar()] });
}

/**
 * sha256 over the sorted (relative path, content) pairs, each length-prefixed so that no two
 * different file sets can produce the same byte stream. Hashing sources rather than the zip keeps
 * the version stable across fflate upgrades.
 */
export function hashSources(sources: Map<string, Buffer>): string {
  const h = createHash('sha256');
  for (const rel of [...sources.keys()].sort()) {
    const body = sources.get(rel)!;
    const name = Buffer.from(rel, 'utf8');
    h.update(`${name.length}:`).update(name).update(`${body.length}:`).update(body);
  }
  return h.digest('hex').slice(0, 16);
}

/** `**\/*.py` under `dir`, as sorted `/`-separated paths starting with `relBase`; skips caches and dotfiles. */
async function listPython(dir: string, relBase: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    const entries = await fs.readdir(abs, { withFileTypes: true });
    for (const ent of entries) {
      if (ent.name.startsWith('.') || ent.name === '__pycache__') continue;
      const childRel = `${rel}/${ent.name}`;
      if (ent.isDirectory()) await walk(path.join(abs, ent.name), childRel);
      else if (ent.isFile() && ent.name.endsWith('.py')) out.push(childRel);
    }
  };
  await walk(dir, relBase).catch((err: unknown) => {
    throw new Error(`cannot read the Spark package at ${dir}: ${(err as Error).message}`);
  });
  return out.sort();
}

/**
 * Uploads the bundle under `<hash>/` unless `<hash>/_COMPLETE` says it is already there. The
 * marker goes last, so a crash mid-upload leaves no marker and the next publish redoes it;
 * concurrent publishers write identical bytes, so racing them is harmless.
 */
export async function publishSparkCode(codeRoot: CodeRoot, bundle: SparkBundle): Promise<PublishedCode> {
  const key = (name: string): string => `${bundle.hash}/${name}`;
  const jars = bundle.files.filter((f) => f.name.endsWith('.jar')).map((f) => codeRoot.uriOf(key(f.name)));
  const result = {
    hash: bundle.hash,
    runPy: codeRoot.uriOf(key('run.py')),
    pyFiles: codeRoot.uriOf(key('sparkify_jobs.zip')),
    ...(jars.length > 0 ? { jars } : {}),
  };
  if (await codeRoot.exists(key('_COMPLETE'))) return { ...result, uploaded: false };
  for (const f of bundle.files) await codeRoot.write(key(f.name), f.body);
  const marker = {
    hash: bundle.hash,
    sources: bundle.sources,
    files: bundle.files.map((f) => ({
      name: f.name,
      size: f.body.length,
      sha256: createHash('sha256').update(f.body).digest('hex'),
    })),
  };
  await codeRoot.write(key('_COMPLETE'), `${JSON.stringify(marker, null, 2)}\n`);
  return { ...result, uploaded: true };
}
