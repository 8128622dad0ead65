import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { unzipSync } from 'fflate';
import { buildSparkBundle, projectBundle, publishSparkCode } from '../activities/code-bundle';
import { buildSparkSubmitArgs } from '../activities/emr-step';
import { JDBC_JAR_NAME } from '../warehouse/jdbc';
import { openLake, type Lake } from '../lake/store';
import { motoS3, startMoto, type Moto } from './helpers/moto';

jest.setTimeout(60_000);

const PYTHON = path.resolve(__dirname, '../.venv/bin/python');

let tmp: string;
let moto: Moto;
let s3: S3Client;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sparkify-bundle-test-'));
  moto = await startMoto();
  s3 = motoS3(moto.endpoint);
});

afterAll(async () => {
  s3?.destroy();
  await moto?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

let dirs = 0;

/** A tiny stand-in for spark/: run.py importing a two-module package, plus files that must not ship. */
async function fakeSparkDir(): Promise<string> {
  const dir = path.join(tmp, `spark-${++dirs}`);
  const files: Record<string, string> = {
    'run.py': 'import sys\nfrom sparkify_jobs.cli import main\nsys.exit(main(sys.argv[1:]))\n',
    'sparkify_jobs/__init__.py': '',
    'sparkify_jobs/cli.py':
      'from sparkify_jobs.sub.util import answer\n\ndef main(argv):\n    print(answer())\n    return 0\n',
    'sparkify_jobs/sub/__init__.py': '',
    'sparkify_jobs/sub/util.py': 'def answer():\n    return 42\n',
    'sparkify_jobs/__pycache__/cli.cpython-311.pyc': 'junk',
    'sparkify_jobs/README.md': 'not shipped',
    'tests/test_x.py': 'not shipped either',
  };
  for (const [rel, body] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), body);
  }
  return dir;
}

describe('jars in the bundle (the warehouse load’s JDBC driver)', () => {
  test('ship beside run.py, count in the hash, and reach spark-submit as --jars', async () => {
    const dir = await fakeSparkDir();
    const jar = path.join(dir, 'driver-1.0.jar');
    await fs.writeFile(jar, 'jar v1');
    const plain = await buildSparkBundle(dir);
    const withJar = await buildSparkBundle(dir, { jars: [jar] });
    expect(withJar.files.map((f) => f.name)).toEqual(['run.py', 'sparkify_jobs.zip', 'driver-1.0.jar']);
    expect(withJar.hash).not.toBe(plain.hash);
    await fs.writeFile(jar, 'jar v2');
    expect((await buildSparkBundle(dir, { jars: [jar] })).hash).not.toBe(withJar.hash);

    const root = openLake(await fs.mkdtemp(path.join(os.tmpdir(), 'sparkify-jars-')));
    const published = await publishSparkCode(root, withJar);
    expect(published.jars).toEqual([`${root.uri}/${withJar.hash}/driver-1.0.jar`]);
    const args = buildSparkSubmitArgs({ ...published, jobArgs: ['--assets', 'warehouse_time'] });
    expect(args.slice(args.indexOf('--jars'), args.indexOf('--jars') + 2)).toEqual([
      '--jars',
      published.jars![0],
    ]);
    expect(args.indexOf('--jars')).toBeLessThan(args.indexOf(published.runPy));
  });

  test("the project's bundle carries the migrations and the pinned JDBC driver", async () => {
    const bundle = await projectBundle();
    expect(bundle.sources).toContain('sparkify_jobs/migrations/0001_star_schema.sql');
    expect(bundle.files.map((f) => f.name)).toContain(JDBC_JAR_NAME);
    const zip = unzipSync(new Uint8Array(bundle.files.find((f) => f.name === 'sparkify_jobs.zip')!.body));
    expect(Object.keys(zip)).toContain('sparkify_jobs/migrations/0001_star_schema.sql');
  });
});

describe('buildSparkBundle', () => {
  test('same code gives the same hash and byte-identical zip, wherever it lives', async () => {
    const a = await buildSparkBundle(await fakeSparkDir());
    const b = await buildSparkBundle(await fakeSparkDir());
    expect(a.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(b.hash).toBe(a.hash);
    expect(b.files).toEqual(a.files);
    expect(a.files.map((f) => f.name)).toEqual(['run.py', 'sparkify_jobs.zip']);
    expect(a.sources).toEqual([
      'run.py',
      'sparkify_jobs/__init__.py',
      'sparkify_jobs/cli.py',
      'sparkify_jobs/sub/__init__.py',
      'sparkify_jobs/sub/util.py',
    ]);
  });

  test('file mtimes do not matter; any content, new file or rename changes the hash', async () => {
    const dir = await fakeSparkDir();
    const base = await buildSparkBundle(dir);

    const old = new Date('2001-02-03T04:05:06Z');
    await fs.utimes(path.join(dir, 'sparkify_jobs/cli.py'), old, old);
    expect((await buildSparkBundle(dir)).files).toEqual(base.files);

    await fs.appendFile(path.join(dir, 'sparkify_jobs/sub/util.py'), '# tweak\n');
    const changed = await buildSparkBundle(dir);
    expect(changed.hash).not.toBe(base.hash);

    await fs.appendFile(path.join(dir, 'run.py'), '# tweak\n');
    const runChanged = await buildSparkBundle(dir);
    expect(runChanged.hash).not.toBe(changed.hash);

    await fs.writeFile(path.join(dir, 'sparkify_jobs/new.py'), '');
    const added = await buildSparkBundle(dir);
    expect(added.hash).not.toBe(runChanged.hash);

    await fs.rename(path.join(dir, 'sparkify_jobs/new.py'), path.join(dir, 'sparkify_jobs/renamed.py'));
    expect((await buildSparkBundle(dir)).hash).not.toBe(added.hash);

    // Files that do not ship do not change the version.
    await fs.writeFile(path.join(dir, 'sparkify_jobs/README.md'), 'edited');
    await fs.writeFile(path.join(dir, 'sparkify_jobs/__pycache__/x.pyc'), 'edited');
    const again = await buildSparkBundle(dir);
    await fs.writeFile(path.join(dir, 'sparkify_jobs/notes.txt'), 'new');
    expect((await buildSparkBundle(dir)).hash).toBe(again.hash);
  });

  test('the zip holds exactly the package, sorted, with a fixed timestamp', async () => {
    const dir = await fakeSparkDir();
    const bundle = await buildSparkBundle(dir);
    const zip = bundle.files.find((f) => f.name === 'sparkify_jobs.zip')!.body;
    const entries = unzipSync(new Uint8Array(zip));
    expect(Object.keys(entries)).toEqual([
      'sparkify_jobs/__init__.py',
      'sparkify_jobs/cli.py',
      'sparkify_jobs/sub/__init__.py',
      'sparkify_jobs/sub/util.py',
    ]);
    expect(Buffer.from(entries['sparkify_jobs/sub/util.py']!).toString()).toBe(
      'def answer():\n    return 42\n',
    );
    // Local file header: DOS time at offset 10, date at 12; 1980-01-01 00:00 is time 0, date 0x21.
    expect(zip.readUInt16LE(10)).toBe(0);
    expect(zip.readUInt16LE(12)).toBe(0x21);
  });

  test('python imports the package from the zip alone (as --py-files ships it)', async () => {
    const dir = await fakeSparkDir();
    const bundle = await buildSparkBundle(dir);
    const isolated = path.join(tmp, `isolated-${dirs}`);
    await fs.mkdir(isolated);
    for (const f of bundle.files) await fs.writeFile(path.join(isolated, f.name), f.body);
    const out = execFileSync(PYTHON, [path.join(isolated, 'run.py')], {
      cwd: isolated,
      env: {
        ...process.env,
        PYTHONPATH: path.join(isolated, 'sparkify_jobs.zip'),
        PYTHONDONTWRITEBYTECODE: '1',
      },
    });
    expect(out.toString().trim()).toBe('42');
  });

  test('a missing package is a clear error', async () => {
    const dir = path.join(tmp, 'empty-spark');
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, 'run.py'), '');
    await expect(buildSparkBundle(dir)).rejects.toThrow(/sparkify_jobs/);
    await expect(buildSparkBundle(path.join(tmp, 'nowhere'))).rejects.toThrow(/run\.py/);
  });
});

describe.each([
  { name: 'local', root: async (): Promise<Lake> => openLake(path.join(tmp, `code-${++dirs}`)) },
  {
    name: 's3 (moto)',
    root: async (): Promise<Lake> => {
      const bucket = `code-${++dirs}`;
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      return openLake(`s3://${bucket}/sparkify/code`, { s3 });
    },
  },
])('publishSparkCode on $name', ({ root }) => {
  test('uploads once under the hash, marker last; a second publish skips', async () => {
    const codeRoot = await root();
    const bundle = await buildSparkBundle(await fakeSparkDir());
    const writes: string[] = [];
    const spy: Lake = {
      ...codeRoot,
      uri: codeRoot.uri,
      uriOf: (k) => codeRoot.uriOf(k),
      exists: (k) => codeRoot.exists(k),
      write: async (k, b) => {
        writes.push(k);
        await codeRoot.write(k, b);
      },
    };

    const first = await publishSparkCode(spy, bundle);
    expect(first).toEqual({
      hash: bundle.hash,
      runPy: `${codeRoot.uri}/${bundle.hash}/run.py`,
      pyFiles: `${codeRoot.uri}/${bundle.hash}/sparkify_jobs.zip`,
      uploaded: true,
    });
    expect(writes).toEqual([
      `${bundle.hash}/run.py`,
      `${bundle.hash}/sparkify_jobs.zip`,
      `${bundle.hash}/_COMPLETE`,
    ]);
    expect(await codeRoot.read(`${bundle.hash}/sparkify_jobs.zip`)).toEqual(bundle.files[1]!.body);
    const marker = JSON.parse((await codeRoot.readText(`${bundle.hash}/_COMPLETE`))!);
    expect(marker.hash).toBe(bundle.hash);

    writes.length = 0;
    const second = await publishSparkCode(spy, await buildSparkBundle(await fakeSparkDir()));
    expect(second).toEqual({ ...first, uploaded: false });
    expect(writes).toEqual([]);
  });

  test('an interrupted upload (no marker) is redone; new code goes beside the old', async () => {
    const codeRoot = await root();
    const dir = await fakeSparkDir();
    const bundle = await buildSparkBundle(dir);
    await codeRoot.write(`${bundle.hash}/run.py`, 'partial');
    expect((await publishSparkCode(codeRoot, bundle)).uploaded).toBe(true);
    expect(await codeRoot.read(`${bundle.hash}/run.py`)).toEqual(bundle.files[0]!.body);

    await fs.appendFile(path.join(dir, 'sparkify_jobs/cli.py'), '# v2\n');
    const v2 = await buildSparkBundle(dir);
    const published = await publishSparkCode(codeRoot, v2);
    expect(published.uploaded).toBe(true);
    expect(published.hash).not.toBe(bundle.hash);
    expect((await codeRoot.list('')).map((o) => o.key)).toEqual(
      [bundle.hash, v2.hash]
        .sort()
        .flatMap((h) => [`${h}/_COMPLETE`, `${h}/run.py`, `${h}/sparkify_jobs.zip`]),
    );
  });
});
