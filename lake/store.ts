/**
 * One small object-store interface over the two places a lake lives: a local directory (dev, tests,
 * the local EMR) and S3 (EMR). Everything the orchestrator reads or writes outside Spark — reports,
 * manifests, the code bundle — goes through it, so the two backends must behave identically.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';

export interface LakeObject {
  key: string;
  size: number;
  etag: string;
}

export interface Lake {
  /** Root URI without a trailing slash: `file:///abs/path` or `s3://bucket/prefix` (scheme as given). */
  readonly uri: string;
  uriOf(key: string): string;
  /** null when the object does not exist. */
  read(key: string): Promise<Buffer | null>;
  readText(key: string): Promise<string | null>;
  /** Local: written to a temp file and renamed, so readers never see a partial object. */
  write(key: string, body: Buffer | string): Promise<void>;
  /**
   * Writes only if no object exists at `key`, atomically: of several concurrent creates of one
   * key exactly one returns true and its body is what every reader sees; the others return false
   * and write nothing. Local: a complete temp file hard-linked into place (link fails on an
   * existing name); S3: PutObject with `If-None-Match: *`. Lock-free writers (the partition
   * index) build on it.
   */
  create(key: string, body: Buffer | string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /**
   * Every object whose key starts with `prefix` (a plain string prefix, as in S3), recursively,
   * sorted by key. `''` lists everything.
   */
  list(prefix: string): Promise<LakeObject[]>;
  /** Deleting an absent key is not an error (S3 semantics). */
  delete(key: string): Promise<void>;
}

export interface OpenLakeOptions {
  /** Client for s3:// roots; defaults to `s3ClientFor({})` (default credential chain). */
  s3?: S3Client;
  /** ListObjectsV2 MaxKeys; only worth setting in tests, to exercise pagination cheaply. */
  listPageSize?: number;
}

// Deliberately narrow: these keys end up in local paths, S3 keys and Spark/Hadoop paths (where
// ':' breaks relative-path parsing and spaces need escaping), so refuse anything unusual early.
const SEGMENT_RE = /^[A-Za-z0-9._=+,@~-]+$/;
const MAX_KEY_LENGTH = 1024;

/** Throws unless `key` is a relative object key made of safe, non-empty, non-dot segments. */
export function validateKey(key: string): string {
  return checkKey(key, false);
}

function checkKey(key: string, allowPrefix: boolean): string {
  const fail = (why: string): never => {
    throw new Error(`invalid lake key ${JSON.stringify(key)}: ${why}`);
  };
  if (typeof key !== 'string') fail('not a string');
  if (allowPrefix && key === '') return key;
  if (key === '') fail('empty');
  if (key.length > MAX_KEY_LENGTH) fail(`longer than ${MAX_KEY_LENGTH} characters`);
  if (key.startsWith('/') || /^[A-Za-z]:/.test(key)) fail('absolute paths are not keys');
  const body = allowPrefix && key.endsWith('/') ? key.slice(0, -1) : key;
  for (const seg of body.split('/')) {
    if (seg === '') fail('empty path segment');
    if (seg === '.' || seg === '..') fail(`'${seg}' segments are not allowed`);
    if (!SEGMENT_RE.test(seg))
      fail(`segment ${JSON.stringify(seg)} has characters outside [A-Za-z0-9._=+,@~-]`);
  }
  return key;
}

interface ParsedUri {
  kind: 'local' | 's3';
  /** local: absolute directory. */
  dir?: string;
  scheme?: 's3' | 's3a';
  bucket?: string;
  /** s3: key prefix without leading/trailing slash ('' for the bucket root). */
  prefix?: string;
}

function parseLakeUri(uri: string): ParsedUri {
  if (typeof uri !== 'string' || uri.trim() === '') throw new Error('lake URI is empty');
  const s3 = /^(s3a?):\/\/([^/]+)(?:\/(.*))?$/.exec(uri);
  if (!s3 && /^s3a?:/.test(uri)) throw new Error(`lake URI ${uri}: expected s3://bucket[/prefix]`);
  if (s3) {
    const [, scheme, bucket, rest] = s3;
    if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new Error(`lake URI ${uri}: invalid bucket name ${JSON.stringify(bucket)}`);
    }
    const prefix = (rest ?? '').replace(/\/+$/, '');
    if (prefix !== '') checkKey(prefix, false);
    return { kind: 's3', scheme: scheme as 's3' | 's3a', bucket, prefix };
  }
  if (uri.startsWith('file:')) {
    return { kind: 'local', dir: path.resolve(fileURLToPath(uri)) };
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(uri)) {
    throw new Error(`lake URI ${uri}: unsupported scheme (use a path, file://, s3:// or s3a://)`);
  }
  return { kind: 'local', dir: path.resolve(uri) };
}

/** The directory a local lake URI (a path or file://) names; undefined for S3 or a URI it refuses. */
export function localDirOf(uri: string): string | undefined {
  try {
    return parseLakeUri(uri).dir;
  } catch {
    return undefined;
  }
}

export function openLake(uri: string, opts: OpenLakeOptions = {}): Lake {
  const parsed = parseLakeUri(uri);
  if (parsed.kind === 's3') {
    return new S3Lake(
      parsed.scheme!,
      parsed.bucket!,
      parsed.prefix!,
      opts.s3 ?? s3ClientFor({}),
      opts.listPageSize,
    );
  }
  return new LocalLake(parsed.dir!);
}

/**
 * An S3 client from the default credential chain (env, profile, instance/task role — never
 * credentials in code). A custom endpoint (moto, MinIO) implies path-style addressing.
 */
export function s3ClientFor(opts: { region?: string; endpoint?: string }): S3Client {
  return new S3Client({
    region: opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // The lake bucket may live in another region than the default; follow the 301 rather than fail.
    followRegionRedirects: true,
    ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
  });
}

/** Reads the object at a full URI (e.g. a report URI handed to Spark); null when absent. */
export async function readTextAt(uri: string, opts: OpenLakeOptions = {}): Promise<string | null> {
  const { root, key } = splitUri(uri);
  return openLake(root, opts).readText(key);
}

/** Parses the JSON object at `uri`; null when absent. */
export async function readJsonAt(uri: string, opts: OpenLakeOptions = {}): Promise<unknown | null> {
  const text = await readTextAt(uri, opts);
  return text === null ? null : (JSON.parse(text) as unknown);
}

function splitUri(uri: string): { root: string; key: string } {
  const cut = uri.lastIndexOf('/');
  const key = uri.slice(cut + 1);
  let root = cut < 0 ? '.' : uri.slice(0, cut);
  if (root === '') root = '/';
  if (root === 'file://') root = 'file:///';
  if (key === '' || /^s3a?:\/?$/.test(root)) throw new Error(`${uri} does not name an object`);
  return { root, key };
}

function md5Hex(body: Buffer): string {
  return createHash('md5').update(body).digest('hex');
}

function byKey(a: LakeObject, b: LakeObject): number {
  // Code-unit order, which for our ASCII-only keys equals S3's UTF-8 binary order.
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

const TMP_MARK = '.sparkify-tmp-';
/** Local etags are the content md5 (like S3's single-part etag) up to this size, else size+mtime. */
const LOCAL_MD5_MAX_BYTES = 8 * 1024 * 1024;

class LocalLake implements Lake {
  readonly uri: string;

  constructor(private readonly root: string) {
    this.uri = pathToFileURL(root).href.replace(/\/+$/, '');
  }

  private pathOf(key: string): string {
    validateKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  uriOf(key: string): string {
    return pathToFileURL(this.pathOf(key)).href;
  }

  async read(key: string): Promise<Buffer | null> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async readText(key: string): Promise<string | null> {
    const buf = await this.read(key);
    return buf === null ? null : buf.toString('utf8');
  }

  async write(key: string, body: Buffer | string): Promise<void> {
    const target = this.pathOf(key);
    const tmp = await writeSynced(target, body);
    try {
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async create(key: string, body: Buffer | string): Promise<boolean> {
    const target = this.pathOf(key);
    const tmp = await writeSynced(target, body);
    try {
      // link(2), unlike rename(2), refuses to replace an existing name: an atomic create-if-absent
      // of a file that is complete the moment it appears.
      await fs.link(tmp, target);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'EEXIST') return false;
      throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await fs.stat(this.pathOf(key))).isFile();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  async list(prefix: string): Promise<LakeObject[]> {
    checkKey(prefix, true);
    // Walk only the deepest directory the prefix pins down, then filter by string prefix.
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: LakeObject[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err)) return;
        throw err;
      }
      for (const ent of entries) {
        const key = keyPrefix === '' ? ent.name : `${keyPrefix}/${ent.name}`;
        if (ent.name.startsWith(TMP_MARK)) continue;
        if (ent.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`))
            await walk(path.join(dir, ent.name), key);
        } else if (ent.isFile() && key.startsWith(prefix)) {
          // Deleted since readdir: not listed, as S3 would not list it (not an error).
          const described = await this.describe(path.join(dir, ent.name), key).catch((err: unknown) => {
            if (isMissing(err)) return null;
            throw err;
          });
          if (described) out.push(described);
        }
      }
    };
    await walk(baseKey === '' ? this.root : path.join(this.root, ...baseKey.split('/')), baseKey);
    return out.sort(byKey);
  }

  private async describe(file: string, key: string): Promise<LakeObject> {
    const st = await fs.stat(file);
    const etag =
      st.size <= LOCAL_MD5_MAX_BYTES
        ? md5Hex(await fs.readFile(file))
        : `${st.size.toString(16)}-${Math.trunc(st.mtimeMs).toString(16)}`;
    return { key, size: st.size, etag };
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

function isS3NotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

class S3Lake implements Lake {
  readonly uri: string;

  constructor(
    scheme: 's3' | 's3a',
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly s3: S3Client,
    private readonly pageSize?: number,
  ) {
    this.uri = `${scheme}://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
  }

  private keyOf(key: string): string {
    validateKey(key);
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  uriOf(key: string): string {
    validateKey(key);
    return `${this.uri}/${key}`;
  }

  async read(key: string): Promise<Buffer | null> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      if (!res.Body) return Buffer.alloc(0);
      return Buffer.from(await res.Body.transformToByteArray());
    } catch (err) {
      if (isS3NotFound(err)) return null;
      throw err;
    }
  }

  async readText(key: string): Promise<string | null> {
    const buf = await this.read(key);
    return buf === null ? null : buf.toString('utf8');
  }

  async write(key: string, body: Buffer | string): Promise<void> {
    const k = this.keyOf(key);
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: k,
        Body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
        ContentType: k.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      }),
    );
  }

  async create(key: string, body: Buffer | string): Promise<boolean> {
    const k = this.keyOf(key);
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: k,
          Body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
          ContentType: k.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          IfNoneMatch: '*',
        }),
      );
      return true;
    } catch (err) {
      // 412: the key exists. 409: another conditional write of the key is in flight; S3 says to
      // retry, which for a create-if-absent caller means "look again". (An SDK retry of our own
      // request that had in fact succeeded also lands here as 412: callers re-read, so the
      // answer "not created" is safe.)
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) return false;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return true;
    } catch (err) {
      if (isS3NotFound(err)) return false;
      throw err;
    }
  }

  async list(prefix: string): Promise<LakeObject[]> {
    checkKey(prefix, true);
    const rootPrefix = this.prefix === '' ? '' : `${this.prefix}/`;
    const out: LakeObject[] = [];
    let token: string | undefined;
    do {
      const res = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: rootPrefix + prefix,
          ContinuationToken: token,
          MaxKeys: this.pageSize,
        }),
      );
      for (const obj of res.Contents ?? []) {
        // Zero-byte "folder" markers created by consoles and some tools are not objects of ours.
        if (!obj.Key || obj.Key.endsWith('/')) continue;
        out.push({
          key: obj.Key.slice(rootPrefix.length),
          size: obj.Size ?? 0,
          etag: (obj.ETag ?? '').replace(/"/g, ''),
        });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort(byKey);
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
  }
}

/**
 * Writes `body` to a new temporary file beside `target` and syncs it: without the fsync a crash
 * right after the rename (or link) can leave an empty file under the final name. Returns its path.
 */
async function writeSynced(target: string, body: Buffer | string): Promise<string> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = path.join(
    path.dirname(target),
    `${TMP_MARK}${path.basename(target)}.${randomBytes(6).toString('hex')}`,
  );
  try {
    const fh = await fs.open(tmp, 'wx');
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return tmp;
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
