import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EMRClient, ListStepsCommand, type StepSummary } from '@aws-sdk/client-emr';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { graph, monthRange, stepLease } from '../assets';
import { startBackfill } from '../client/backfill';
import { startMaterialize } from '../client/runs';
import { loadConfig, type Config } from '../config/config';
import { generate } from '../dev/generator/generate';
import { startLocalEmr, type LocalEmr } from '../dev/emr-local';
import { startTemporalDevServer, type DevServer } from '../dev/temporal-server';
import { readManifest } from '../lake/manifests';
import { openLake } from '../lake/store';
import { createWorker } from '../worker/worker';
import type { MaterializeResult } from '../workflows/types';
import { freePorts } from './helpers/ports';
import { workflowBundle } from './helpers/temporal';

/**
 * What two workflows could do at once, done at once, with real Spark through the local EMR:
 * a backfill at concurrency 3 and a manual run of one of its months, on a lake that already has
 * a users state. And a check that fails: nothing it checked becomes visible.
 */

// The lake's five tables: these tests run no warehouse (test/warehouse.test.ts runs the graph
// with one).
const LAKE = '+songplays,time';

jest.setTimeout(1_500_000);

const REPO = resolve(__dirname, '..');
const PYTHON = join(REPO, '.venv/bin/python');
const run = promisify(execFile);

let dir: string;
let raw: string;
let temporal: DevServer;
let client: Client;
let emr: LocalEmr;
let config: Config;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkify-concurrency-'));
  raw = join(dir, 'raw');
  // Three months in which users upgrade and downgrade, so the order of users runs matters.
  generate({ out: raw, start: '2018-11-01', days: 92, users: 40, songs: 30, seed: 7, eventsPerDay: 120 });
  const [port] = await freePorts(1);
  temporal = await startTemporalDevServer({
    dbFile: join(dir, 'temporal.db'),
    port: port!,
    uiPort: 0,
    ui: false,
  });
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  emr = await startLocalEmr({ stateDir: join(dir, 'emr'), stepConcurrency: 3, master: 'local[1]' });
  config = loadConfig({
    env: {
      SPARKIFY_TEMPORAL_ADDRESS: temporal.address,
      SPARKIFY_TEMPORAL_TASK_QUEUE: 'concurrency',
      SPARKIFY_EMR_ENDPOINT: emr.endpoint,
      SPARKIFY_EMR_CLUSTER_ID: emr.clusterId,
      SPARKIFY_EMR_POLL_INITIAL_MS: '300',
      SPARKIFY_EMR_POLL_MAX_MS: '1000',
      SPARKIFY_RAW_URI: raw,
      SPARKIFY_LAKE_URI: join(dir, 'lake'),
      SPARKIFY_CODE_URI: join(dir, 'code'),
      SPARKIFY_STEP_CONCURRENCY: '3',
    },
  });
  await workflowBundle();
});

afterAll(async () => {
  await emr?.close({ killSteps: true });
  await client?.connection.close();
  await temporal?.stop();
});

async function withWorker<T>(fn: () => Promise<T>): Promise<T> {
  const connection = await NativeConnection.connect({ address: temporal.address });
  try {
    const worker = await createWorker({ config, connection, workflowBundle: await workflowBundle() });
    return await worker.runUntil(fn());
  } finally {
    await connection.close();
  }
}

/** Every step the local EMR ran, with its name and timeline. */
async function emrSteps(): Promise<StepSummary[]> {
  const sdk = new EMRClient({
    region: 'us-east-1',
    endpoint: emr.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const steps: StepSummary[] = [];
  let marker: string | undefined;
  do {
    const page = await sdk.send(new ListStepsCommand({ ClusterId: emr.clusterId, Marker: marker }));
    steps.push(...(page.Steps ?? []));
    marker = page.Marker;
  } while (marker);
  sdk.destroy();
  return steps;
}

/** `sparkify/<step>/<start>_<end>/<run digest>` → the step and its half-open day range. */
function parseName(name: string): { step: string; start: string; end: string } {
  const [, step, range] = name.split('/') as [string, string, string];
  const [start, end] = range.split('_') as [string, string];
  return { step, start, end };
}

function compareKeys(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The users table as the raw JSON says it must be: each user's latest play decides. */
function usersFromRaw(): Map<number, { level: string; first: string; last: string }> {
  const latest = new Map<number, { key: number[]; level: string; first: string; last: string }>();
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
  for (const file of walk(join(raw, 'log_data'))) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      if (e.page !== 'NextSong' || e.userId === '' || e.userId === undefined) continue;
      const user = Number(e.userId);
      const key = [Number(e.ts), Number(e.sessionId), Number(e.itemInSession)];
      const prev = latest.get(user);
      if (!prev || compareKeys(key, prev.key) > 0) {
        latest.set(user, {
          key,
          level: String(e.level),
          first: String(e.firstName),
          last: String(e.lastName),
        });
      }
    }
  }
  return new Map([...latest].map(([u, v]) => [u, { level: v.level, first: v.first, last: v.last }]));
}

async function usersInLake(): Promise<Record<string, string>> {
  const { stdout } = await run(PYTHON, [join(__dirname, 'helpers/lake_digest.py'), config.storage.lake], {
    maxBuffer: 64 << 20,
  });
  const digest = JSON.parse(stdout.trim().split('\n').pop()!) as {
    users: { levels: Record<string, string> };
  };
  return digest.users.levels;
}

function overlaps(a: StepSummary, b: StepSummary): boolean {
  const [as, ae] = [a.Status!.Timeline!.StartDateTime!.getTime(), a.Status!.Timeline!.EndDateTime!.getTime()];
  const [bs, be] = [b.Status!.Timeline!.StartDateTime!.getTime(), b.Status!.Timeline!.EndDateTime!.getTime()];
  return as < be && bs < ae;
}

test('a backfill at concurrency 3 and a manual run of one of its months, at once: users exact, each piece of work once, no two writers of one state side by side', async () => {
  await withWorker(async () => {
    // A users state to race on: the first day, as a daily run would have left it.
    const seed = await startMaterialize(client, config, {
      selection: 'users',
      range: { start: '2018-11-01', end: '2018-11-02' },
    });
    expect((await seed.handle.result()).ok).toBe(true);

    const backfill = await startBackfill(client, config, {
      selection: LAKE,
      from: '2018-11',
      to: '2019-01',
      concurrency: 3,
    });
    // The manual run of December starts while the backfill is under way.
    for (let i = 0; i < 600; i++) {
      if ((await emrSteps()).length > 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const manual = await startMaterialize(client, config, { selection: LAKE, range: monthRange('2018-12') });
    const [b, m] = await Promise.all([backfill.result(), manual.handle.result()]);
    expect(b.failed).toEqual({});
    expect(m.ok).toBe(true);
  });

  // users equals what the raw JSON says, user by user.
  const truth = usersFromRaw();
  const levels = await usersInLake();
  expect(Object.keys(levels).length).toBe(truth.size);
  expect(levels).toEqual(Object.fromEntries([...truth].map(([u, v]) => [String(u), v.level])));

  const steps = (await emrSteps()).filter((s) => s.Status?.State === 'COMPLETED');
  const named = steps.map((s) => ({ ...parseName(s.Name!), s }));
  // songs and artists: built once for the whole backfill, not once per month.
  expect(named.filter((n) => n.step === 'song_tables')).toHaveLength(1);
  // Each piece of work done once: no step and range went to EMR twice (December included).
  const work = named.map((n) => `${n.step} ${n.start}..${n.end}`);
  expect(work.length).toBe(new Set(work).size);
  // December's daily assets went to EMR once, in one fused step (users+time+songplays).
  const december = named.filter((n) => n.start >= '2018-12-01' && n.start < '2019-01-01');
  expect(december.map((n) => n.step)).toEqual(['users+time+songplays']);
  // No two writers of the same state at once: steps writing users (whole-table state) or the
  // song tables one at a time; a table's day partitions never by two steps whose days overlap.
  const writes = (n: { step: string }) => n.step.split('+');
  for (const a of named) {
    for (const b of named) {
      if (a === b) continue;
      const shared = writes(a).filter((w) => writes(b).includes(w));
      if (shared.length === 0) continue;
      const wholeTable = shared.some((w) => stepLease(graph, w).wholeTable);
      if (wholeTable || (a.start < b.end && b.start < a.end)) {
        expect({ a: a.s.Name, b: b.s.Name, overlap: overlaps(a.s, b.s) }).toMatchObject({ overlap: false });
      }
    }
  }
});

// On the lake the test above built.
test("a check that fails: the table is unchanged and readable, the run Failed, and the reason is the job's explanation", async () => {
  const lake = openLake(config.storage.lake);
  const day = 'year=2018/month=11/day=5';
  const partition = join(config.storage.lake, 'songplays', day);
  const files = () =>
    Object.fromEntries(
      readdirSync(partition).map((f) => [
        f,
        createHash('sha256')
          .update(readFileSync(join(partition, f)))
          .digest('hex'),
      ]),
    );
  const before = files();
  expect(Object.keys(before).some((f) => f.endsWith('.parquet'))).toBe(true);
  // users gone (say, a bad manual clean-up): songplays' check cannot find the plays' users.
  rmSync(join(config.storage.lake, 'users'), { recursive: true });
  const outcome = await withWorker(async () => {
    const { handle } = await startMaterialize(client, config, {
      selection: 'songplays',
      range: { start: '2018-11-05', end: '2018-11-06' },
      only: 'all',
    });
    return handle.result().then(
      () => null,
      (err: unknown) => err,
    );
  });
  expect(outcome).toBeInstanceOf(WorkflowFailedError);
  const failure = (outcome as WorkflowFailedError).cause as ApplicationFailure;
  const result = failure.details![0] as MaterializeResult;
  const songplays = result.assets[0]!;
  expect(songplays.status).toBe('failed');
  expect(songplays.reason).toMatch(
    /^users table missing at .*\/users: materialize users for these days \(2018-11-05\) first \(songplays\.user_id in users: \d+ failing rows?, e\.g\. /,
  );
  expect(songplays.reason).toMatch(/— EMR step s-[A-Z0-9]+ FAILED, log \S+\/stderr; staged output kept at /);
  expect(songplays.reason).not.toMatch(/\|--|Traceback|at org\./);
  // Nothing it checked became visible: the partition is byte for byte what it was.
  expect(files()).toEqual(before);
  const manifest = await readManifest(lake, 'songplays', '2018-11-05');
  expect(manifest!.lastRun).toMatchObject({ status: 'failed', reason: songplays.reason });
  expect(manifest!.lastSuccess!.status).toBe('materialized');
  // What it staged is kept for inspection, where the failure says.
  const staged = fileURLToPath(/staged output kept at (\S+)$/.exec(songplays.reason!)![1]!);
  expect(readdirSync(join(staged, 'songplays', day)).some((f) => f.endsWith('.parquet'))).toBe(true);
});
