import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { projectBundle } from '../activities/code-bundle';
import { startMaterialize } from '../client/runs';
import { loadConfig } from '../config/config';
import { startLocalEmr, type LocalEmr } from '../dev/emr-local';
import { startTemporalDevServer, type DevServer } from '../dev/temporal-server';
import { NOOP_SPARK_SUBMIT, noopStepEnv } from '../bench/noop';
import { ensureBuilt } from '../scripts/build';
import { JDBC_JAR_NAME, jdbcJarPath } from '../warehouse/jdbc';
import { copies, finalStage, imageCommand, imageEnv, ROOT, workdir } from './helpers/dockerfile';
import { freePorts } from './helpers/ports';
import { writeRawFixture } from './helpers/step-stack';

/**
 * The production shape without a Docker engine: `npm run build`, then the image's files laid out
 * as the Dockerfile's final stage copies them (compiled code from the build, the production
 * dependencies only, the JDBC jar, its ENV), and the image's command started there against a
 * real Temporal dev server and the local EMR (with a no-op spark-submit that writes a valid
 * report). It must run a materialization end to end, publish the same code version as the
 * checkout, load its workflows from the prebuilt bundle, and stop cleanly on SIGTERM.
 */

jest.setTimeout(600_000);

/** The Node that runs the image's command: this one, or another (e.g. the image's) to try. */
const NODE = process.env.SPARKIFY_IMAGE_NODE ?? process.execPath;

let dir: string;
let image: { root: string; app: string; env: Record<string, string>; command: string[] };
let temporal: DevServer;
let emr: LocalEmr;
let client: Client;
let worker: ChildProcess | undefined;
let workerOut = '';

/**
 * node_modules as `npm ci --omit=dev` makes it, as far as our code can tell: only the production
 * dependencies are there to be required (each links to the checkout's install, whose own
 * dependencies resolve from there). A require of a dev dependency (tsx, typescript, jest) fails.
 */
function productionModules(into: string): void {
  const pkg = z
    .object({ dependencies: z.record(z.string(), z.string()) })
    .parse(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')));
  for (const name of Object.keys(pkg.dependencies)) {
    const link = path.join(into, name);
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules', name), link, 'dir');
  }
}

/** COPY / ADD of the final stage, into `root` (which plays `/`), from the checkout after a build. */
function layOutImage(root: string): typeof image {
  const wd = workdir();
  const inImage = (p: string) => path.join(root, path.posix.isAbsolute(p) ? p : path.posix.join(wd, p));
  for (const c of copies(finalStage())) {
    for (const src of c.sources) {
      const intoDir = c.dest.endsWith('/') || c.sources.length > 1;
      if (c.from === 'deps') {
        expect(src).toBe('/app/node_modules');
        productionModules(inImage(c.dest));
        continue;
      }
      let from: string;
      if (c.from === 'build') from = path.join(ROOT, src.replace(/^\/app\//, ''));
      else if (c.from !== undefined) throw new Error(`COPY --from=${c.from}: unknown stage`);
      else if (/^https?:/.test(src)) {
        // The pinned JDBC driver, from the set-up cache (the download is checked there).
        expect(path.posix.basename(src)).toBe(JDBC_JAR_NAME);
        from = jdbcJarPath();
      } else from = path.join(ROOT, src);
      const dest =
        intoDir && !statSync(from).isDirectory()
          ? path.join(inImage(c.dest), path.basename(from))
          : inImage(c.dest);
      mkdirSync(statSync(from).isDirectory() ? dest : path.dirname(dest), { recursive: true });
      if (statSync(from).isDirectory()) cpSync(from, dest, { recursive: true });
      else copyFileSync(from, dest);
    }
  }
  const env = Object.fromEntries(
    Object.entries(imageEnv()).map(([k, v]) => [k, v.startsWith('/') ? path.join(root, v) : v]),
  );
  return { root, app: inImage('.'), env, command: imageCommand() };
}

/** What a container would have: the image's ENV, a PATH, nothing else from this process. */
function containerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: path.join(dir, 'home'), ...image.env, ...extra };
}

function run(args: string[]) {
  return spawnSync(NODE, args, { cwd: image.app, env: containerEnv({}), encoding: 'utf8', timeout: 60_000 });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sparkify-compiled-'));
  await ensureBuilt((line) => console.log(line));
  image = layOutImage(path.join(dir, 'image'));
  const [port] = await freePorts(1);
  temporal = await startTemporalDevServer({
    dbFile: path.join(dir, 'temporal.db'),
    port: port!,
    uiPort: 0,
    ui: false,
  });
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  emr = await startLocalEmr({
    stateDir: path.join(dir, 'emr'),
    stepConcurrency: 4,
    sparkSubmit: NOOP_SPARK_SUBMIT,
    stepEnv: noopStepEnv(),
  });
});

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
  await emr?.close({ killSteps: true });
  await client?.connection.close();
  await temporal?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the image carries every data path its compiled code reaches', () => {
  const dist = path.join(image.app, 'dist');
  const missing: string[] = [];
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.js') ? [path.join(d, e.name)] : [],
    );
  for (const file of walk(dist)) {
    const text = readFileSync(file, 'utf8');
    const literals = [
      ...[...text.matchAll(/['"](\.\.?\/[^'"\s]*)['"]/g)].map((m) => m[1]!),
      ...[...text.matchAll(/__dirname,\s*['"]([^.'"\s][^'"\s]*)['"]/g)].map((m) => `./${m[1]!}`),
    ];
    for (const literal of literals) {
      const target = path.resolve(path.dirname(file), literal);
      const rel = path.relative(dist, target);
      // The dev harness is not in the image (the CLI says so); the rest must be where the code looks.
      if (rel.startsWith('..') || rel.split(path.sep)[0] === 'dev') continue;
      const inSources = [path.join(ROOT, rel), `${path.join(ROOT, rel)}.ts`].some((p) => existsSync(p));
      const inImage = [target, `${target}.js`].some((p) => existsSync(p));
      if (inSources && !inImage) missing.push(`${path.relative(dist, file)}: ${literal}`);
    }
  }
  expect(missing).toEqual([]);
  // The data the worker reads beside itself, concretely.
  for (const p of [
    'dist/spark/run.py',
    'dist/spark/sparkify_jobs/__init__.py',
    'dist/assets/assets.json',
    'dist/warehouse/jdbc.json',
    'dist/warehouse/migrations/0001_star_schema.sql',
    'dist/warehouse/reports/top_songs.sql',
    'dist/workflows/workflow-bundle.js',
  ])
    expect({ p, exists: existsSync(path.join(image.app, p)) }).toEqual({ p, exists: true });
  expect(existsSync(path.join(image.app, 'dist/dev'))).toBe(false);
});

test('the compiled CLI runs from the image, without the dev harness', () => {
  const assets = run(['dist/client/bin.js', 'assets', '--format', 'mermaid']);
  expect({ status: assets.status, stderr: assets.stderr }).toEqual({ status: 0, stderr: '' });
  expect(assets.stdout).toMatch(/^graph LR/m);
  expect(assets.stdout).toContain('songplays');
  const dev = run(['dist/client/bin.js', 'dev']);
  expect(dev.status).toBe(2);
  expect(dev.stderr).toMatch(/the dev harness \(dev\/\) is not part of this installation/);
});

test("the image's command starts the compiled worker, which runs a materialization and stops on SIGTERM", async () => {
  const raw = path.join(dir, 'raw');
  writeRawFixture(raw);
  const env = {
    SPARKIFY_TEMPORAL_ADDRESS: temporal.address,
    SPARKIFY_TEMPORAL_TASK_QUEUE: 'compiled',
    SPARKIFY_EMR_ENDPOINT: emr.endpoint,
    SPARKIFY_EMR_CLUSTER_ID: emr.clusterId,
    SPARKIFY_EMR_POLL_INITIAL_MS: '50',
    SPARKIFY_EMR_POLL_MAX_MS: '200',
    SPARKIFY_RAW_URI: raw,
    SPARKIFY_LAKE_URI: path.join(dir, 'lake'),
    SPARKIFY_CODE_URI: path.join(dir, 'code'),
  };
  const [node, ...args] = image.command;
  expect(node).toBe('node');
  worker = spawn(NODE, args, { cwd: image.app, env: containerEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  worker.stdout!.on('data', (d: Buffer) => (workerOut += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (workerOut += d.toString()));
  const exited = new Promise<number | null>((resolve) => worker!.once('exit', (code) => resolve(code)));

  const config = loadConfig({ env });
  const { handle } = await startMaterialize(client, config, {
    selection: '*',
    range: { start: '2018-11-05', end: '2018-11-06' },
    only: 'all',
  });
  const result = await Promise.race([
    handle.result(),
    exited.then((code) => {
      throw new Error(`the worker exited (${code}) before the run ended:\n${workerOut}`);
    }),
  ]);
  expect(result.ok).toBe(true);
  expect(result.assets.every((a) => a.status === 'materialized')).toBe(true);
  expect(result.assets.map((a) => a.asset)).toEqual(
    expect.arrayContaining(['songplays', 'warehouse_songplays']),
  );
  // The image's dist/spark, assets.json, migrations and JDBC jar are the checkout's: same version.
  expect(result.codeVersion).toBe((await projectBundle()).hash);
  expect(workerOut).toMatch(/workflows from the prebuilt bundle \S+\/dist\/workflows\/workflow-bundle\.js/);
  expect(workerOut).not.toMatch(/Error|ERROR/);

  worker.kill('SIGTERM');
  const timer = setTimeout(() => worker!.kill('SIGKILL'), 30_000);
  const code = await exited;
  clearTimeout(timer);
  expect({ code, output: workerOut }).toEqual({ code: 0, output: expect.any(String) });
});
