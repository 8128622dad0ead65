import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { openLake, readJsonAt, s3ClientFor, validateKey, type Lake } from '../lake/store';
import { motoS3, startMoto, type Moto } from './helpers/moto';

jest.setTimeout(60_000);

interface Backend {
  name: string;
  /** A fresh, empty lake root (and, for S3, a client that pages every 7 keys). */
  fresh(): Promise<Lake>;
}

let moto: Moto;
let s3: S3Client;
let tmpRoot: string;
let counter = 0;

beforeAll(async () => {
  tmpRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'sparkify-lake-test-'));
  moto = await startMoto();
  s3 = motoS3(moto.endpoint);
});

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
  await fs.rm(tmpRoot, { recursive: true, force: true });
});

const PAGE = 7;

const backends: Backend[] = [
  {
    name: 'local',
    async fresh() {
      const dir = path.join(tmpRoot, `lake-${++counter}`);
      return openLake(dir);
    },
  },
  {
    name: 's3 (moto)',
    async fresh() {
      const bucket = `lake-${++counter}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return openLake(`s3://${bucket}/root/prefix`, { s3, listPageSize: PAGE });
    },
  },
];

describe.each(backends)('Lake on $name', (backend) => {
  let lake: Lake;
  beforeEach(async () => {
    lake = await backend.fresh();
  });

  test('read after write, text and binary, overwrite', async () => {
    await lake.write('_manifests/songs/all.json', '{"a":1}');
    expect(await lake.readText('_manifests/songs/all.json')).toBe('{"a":1}');
    const bin = Buffer.from([0, 1, 2, 255, 254]);
    await lake.write('bin/x.bin', bin);
    expect(await lake.read('bin/x.bin')).toEqual(bin);
    await lake.write('_manifests/songs/all.json', 'v2');
    expect(await lake.readText('_manifests/songs/all.json')).toBe('v2');
    await lake.write('empty', '');
    expect(await lake.read('empty')).toEqual(Buffer.alloc(0));
  });

  test('create writes only an absent key: of concurrent creates exactly one wins, whole', async () => {
    expect(await lake.create('_index/a/2018/0000000001.json', 'first')).toBe(true);
    expect(await lake.create('_index/a/2018/0000000001.json', 'second')).toBe(false);
    expect(await lake.readText('_index/a/2018/0000000001.json')).toBe('first');
    const bodies = Array.from({ length: 12 }, (_, i) => `body-${i}-${'x'.repeat(2000)}`);
    const won = await Promise.all(bodies.map((b) => lake.create('_index/a/2018/0000000002.json', b)));
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(await lake.readText('_index/a/2018/0000000002.json')).toBe(bodies[won.indexOf(true)]);
    expect((await lake.list('_index/')).map((o) => o.key)).toEqual([
      '_index/a/2018/0000000001.json',
      '_index/a/2018/0000000002.json',
    ]);
  });

  test('absent keys read as null and do not exist; delete is idempotent', async () => {
    expect(await lake.read('nope/never.json')).toBeNull();
    expect(await lake.readText('nope')).toBeNull();
    expect(await lake.exists('nope')).toBe(false);
    await lake.write('a/b.json', 'x');
    expect(await lake.exists('a/b.json')).toBe(true);
    // A "directory" is not an object.
    expect(await lake.exists('a')).toBe(false);
    expect(await lake.read('a')).toBeNull();
    await lake.delete('a/b.json');
    expect(await lake.exists('a/b.json')).toBe(false);
    expect(await lake.read('a/b.json')).toBeNull();
    await expect(lake.delete('a/b.json')).resolves.toBeUndefined();
  });

  test('list is recursive, sorted, filtered by string prefix, with size and md5 etag', async () => {
    const keys = [
      'songplays/year=2018/month=11/day=2/part-1.parquet',
      'songplays/year=2018/month=11/day=1/part-0.parquet',
      'songs/year=2000/artist_id=A1/part-0.parquet',
      'songplays_old/x',
      '_reports/run-1/step.json',
    ];
    for (const k of keys) await lake.write(k, `body of ${k}`);
    const all = await lake.list('');
    expect(all.map((o) => o.key)).toEqual([...keys].sort());
    const first = all.find((o) => o.key === '_reports/run-1/step.json')!;
    expect(first.size).toBe(Buffer.byteLength('body of _reports/run-1/step.json'));
    expect(first.etag).toBe(createHash('md5').update('body of _reports/run-1/step.json').digest('hex'));

    expect((await lake.list('songplays/')).map((o) => o.key)).toEqual([
      'songplays/year=2018/month=11/day=1/part-0.parquet',
      'songplays/year=2018/month=11/day=2/part-1.parquet',
    ]);
    // A plain string prefix, as in S3: 'songplays' also matches 'songplays_old/'.
    expect((await lake.list('songplays')).map((o) => o.key)).toHaveLength(3);
    expect((await lake.list('songplays/year=2018/month=11/day=1')).map((o) => o.key)).toEqual([
      'songplays/year=2018/month=11/day=1/part-0.parquet',
    ]);
    expect(await lake.list('missing/')).toEqual([]);
  });

  test('list pages through many keys', async () => {
    const n = PAGE * 3 + 2;
    const keys = Array.from({ length: n }, (_, i) => `many/k${String(i).padStart(3, '0')}.json`);
    await Promise.all(keys.map((k) => lake.write(k, k)));
    const send = jest.spyOn(s3, 'send');
    try {
      const listed = await lake.list('many/');
      expect(listed.map((o) => o.key)).toEqual(keys);
      if (backend.name.startsWith('s3')) {
        const pages = send.mock.calls.filter(([cmd]) => cmd instanceof ListObjectsV2Command);
        expect(pages).toHaveLength(Math.ceil(n / PAGE));
      }
    } finally {
      send.mockRestore();
    }
  });

  test('invalid keys are rejected, naming the key, before touching storage', async () => {
    const bad = [
      '',
      '/abs/path',
      '../escape',
      'a/../b',
      'a//b',
      'a/./b',
      'a/',
      'sp ace',
      'new\nline',
      'c:colon',
      'q?x',
    ];
    for (const key of bad) {
      await expect(lake.write(key, 'x')).rejects.toThrow(/invalid lake key/);
      await expect(lake.read(key)).rejects.toThrow(/invalid lake key/);
      expect(() => lake.uriOf(key)).toThrow(/invalid lake key/);
    }
    await expect(lake.write('../escape', 'x')).rejects.toThrow('"../escape"');
    await expect(lake.list('../')).rejects.toThrow(/invalid lake key/);
    expect(() =>
      validateKey('songs/year=2018/artist_id=AR5KOSW1187FB35FF4/part-0.c000.snappy.parquet'),
    ).not.toThrow();
  });

  test('uriOf joins the root and the key', async () => {
    expect(lake.uriOf('songs/x.parquet')).toBe(`${lake.uri}/songs/x.parquet`);
    expect(lake.uri.endsWith('/')).toBe(false);
  });

  test('readJsonAt reads a full URI', async () => {
    await lake.write('_reports/r/s.json', JSON.stringify({ status: 'succeeded' }));
    const opts = { s3 };
    expect(await readJsonAt(lake.uriOf('_reports/r/s.json'), opts)).toEqual({ status: 'succeeded' });
    expect(await readJsonAt(lake.uriOf('_reports/r/none.json'), opts)).toBeNull();
  });
});

describe('lake URIs', () => {
  test('plain paths, file:// and relative paths open the same local lake', async () => {
    const dir = path.join(tmpRoot, 'uri-forms');
    const a = openLake(dir);
    const b = openLake(pathToFileURL(dir).href);
    const c = openLake(path.relative(process.cwd(), dir));
    expect(a.uri).toBe(pathToFileURL(dir).href);
    expect(b.uri).toBe(a.uri);
    expect(c.uri).toBe(a.uri);
    await a.write('x/y.json', '1');
    expect(await b.readText('x/y.json')).toBe('1');
    expect(await fs.readFile(path.join(dir, 'x', 'y.json'), 'utf8')).toBe('1');
    expect(openLake(`${pathToFileURL(dir).href}/`).uri).toBe(a.uri);
  });

  test('local writes leave no temp files behind', async () => {
    const dir = path.join(tmpRoot, 'atomic');
    const lake = openLake(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => lake.write('same.json', `v${i}`)));
    expect(await fs.readdir(dir)).toEqual(['same.json']);
    expect(await lake.readText('same.json')).toMatch(/^v\d+$/);
  });

  test('s3:// and s3a:// keep their scheme; prefix slashes are normalized', () => {
    expect(openLake('s3://bucket-a/some/prefix/', { s3 }).uri).toBe('s3://bucket-a/some/prefix');
    expect(openLake('s3a://bucket-a/p', { s3 }).uriOf('k/v.json')).toBe('s3a://bucket-a/p/k/v.json');
    expect(openLake('s3://bucket-a', { s3 }).uriOf('k')).toBe('s3://bucket-a/k');
  });

  test('s3 roots share data regardless of scheme', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'scheme-bucket' }));
    await openLake('s3://scheme-bucket/p', { s3 }).write('a.json', 'hello');
    expect(await openLake('s3a://scheme-bucket/p/', { s3 }).readText('a.json')).toBe('hello');
    expect(await openLake('s3://scheme-bucket', { s3 }).readText('p/a.json')).toBe('hello');
    expect((await openLake('s3://scheme-bucket', { s3 }).list('')).map((o) => o.key)).toEqual(['p/a.json']);
  });

  test('unsupported or malformed URIs are refused', () => {
    expect(() => openLake('gs://bucket/x')).toThrow(/unsupported scheme/);
    expect(() => openLake('s3:/bucket')).toThrow(/expected s3:\/\/bucket/);
    expect(() => openLake('s3://Bad_Bucket/x', { s3 })).toThrow(/invalid bucket/);
    expect(() => openLake('s3://bucket/a/../b', { s3 })).toThrow(/invalid lake key/);
    expect(() => openLake('')).toThrow(/empty/);
  });

  test('s3ClientFor uses the default credential chain and path-style for custom endpoints', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'moto';
    process.env.AWS_SECRET_ACCESS_KEY = 'moto';
    const client = s3ClientFor({ region: 'us-east-1', endpoint: moto.endpoint });
    try {
      expect(client.config.forcePathStyle).toBe(true);
      await client.send(new CreateBucketCommand({ Bucket: 'chain-bucket' }));
      const lake = openLake('s3://chain-bucket/x', { s3: client });
      await lake.write('k.json', '{}');
      expect(await lake.readText('k.json')).toBe('{}');
    } finally {
      client.destroy();
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });
});
