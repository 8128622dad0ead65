import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection, defaultPayloadConverter } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { openLake } from '../lake/store';
import { readManifests } from '../lake/manifests';
import { monthRange } from '../assets';
import { startMaterialize } from '../client/runs';
import { startTemporalDevServer, type DevServer } from '../dev/temporal-server';
import { loadConfig, ENV_SETTINGS, type Config } from '../config/config';
import { startLocalEmr, type LocalEmr } from '../dev/emr-local';
import { generate } from '../dev/generator/generate';
import type { GeneratorSummary } from '../dev/generator/generate';
import type { MaterializeResult } from '../workflows/types';
import { leaseStateQuery } from '../workflows';
import type { LeaseAnswer } from '../workflows/lease';
import { leaseWorkflowId } from '../activities';
import { createWorker } from '../worker/worker';
import { freePorts } from './helpers/ports';
import { workflowBundle } from './helpers/temporal';

/**
 * The whole product on one machine: a real Temporal dev server on a SQLite file, the local EMR
 * running real spark-submit, and workers, over a month of generated data.
 */

// The lake's five tables: these tests run no warehouse (test/warehouse.test.ts runs the graph
// with one).
const LAKE = '+songplays,time';

jest.setTimeout(900_000);

const REPO = resolve(__dirname, '..');
const PYTHON = join(REPO, '.venv/bin/python');
const MONTH = monthRange('2018-11');
const run = promisify(execFile);

let dir: string;
let raw: string;
let summary: GeneratorSummary;
let temporal: DevServer;
let temporalPort: number;
let dbFile: string;
let client: Client;

interface Digest {
  [table: string]: {
    rows: number;
    sha256: string;
    with_song_match?: number;
    levels?: Record<string, string>;
  };
}

async function digest(lake: string): Promise<Digest> {
  const { stdout } = await run(PYTHON, [join(__dirname, 'helpers/lake_digest.py'), lake], {
    maxBuffer: 64 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Digest;
}

async function startTemporal(): Promise<DevServer> {
  return startTemporalDevServer({ dbFile, port: temporalPort, uiPort: 0, ui: false });
}

async function localEmr(name: string): Promise<LocalEmr> {
  return startLocalEmr({ stateDir: join(dir, name, 'emr'), stepConcurrency: 2, master: 'local[2]' });
}

function configFor(name: string, emr: LocalEmr): Config {
  return loadConfig({ env: envFor(name, emr) });
}

function envFor(name: string, emr: LocalEmr): Record<string, string> {
  return {
    SPARKIFY_TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
    SPARKIFY_TEMPORAL_TASK_QUEUE: `e2e-${name}`,
    SPARKIFY_EMR_ENDPOINT: emr.endpoint,
    SPARKIFY_EMR_CLUSTER_ID: emr.clusterId,
    SPARKIFY_EMR_POLL_INITIAL_MS: '300',
    SPARKIFY_EMR_POLL_MAX_MS: '1000',
    SPARKIFY_EMR_HEARTBEAT_TIMEOUT_MS: '5000',
    SPARKIFY_RAW_URI: raw,
    SPARKIFY_LAKE_URI: join(dir, name, 'lake'),
    SPARKIFY_CODE_URI: join(dir, 'code'),
  };
}

async function stats(
  emr: LocalEmr,
): Promise<{ addJobFlowSteps: number; stepsByName: Record<string, number> }> {
  const res = await fetch(`${emr.endpoint}/_local/stats`);
  return (await res.json()) as { addJobFlowSteps: number; stepsByName: Record<string, number> };
}

async function runningSteps(emr: LocalEmr): Promise<number> {
  const res = await fetch(`${emr.endpoint}/_local/stats`);
  const body = (await res.json()) as { steps?: { byState?: Record<string, number> } };
  return body.steps?.byState?.RUNNING ?? 0;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** handle.result() across a server restart: the client's own retries may give up while it is down. */
async function resultOf(workflowId: string): Promise<MaterializeResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.workflow.getHandle(workflowId).result();
    } catch (err) {
      if (attempt > 60 || !/UNAVAILABLE|unavailable|ECONNREFUSED|Connection/i.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function spawnWorker(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--require', 'tsx/cjs', join(REPO, 'worker/main.ts')], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

let uninterrupted: Digest;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkify-e2e-'));
  raw = join(dir, 'raw');
  summary = generate({
    out: raw,
    start: MONTH.start,
    days: 30,
    users: 25,
    songs: 40,
    seed: 11,
    eventsPerDay: 250,
  }).summary;
  temporalPort = (await freePorts(1))[0]!;
  dbFile = join(dir, 'temporal.db');
  temporal = await startTemporal();
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  await workflowBundle();
});

afterAll(async () => {
  await client?.connection.close();
  await temporal?.stop();
});

test('the whole graph for a month of generated data: tables and manifests', async () => {
  const emr = await localEmr('clean');
  const config = configFor('clean', emr);
  const connection = await NativeConnection.connect({ address: temporal.address });
  const worker = await createWorker({ config, connection, workflowBundle: await workflowBundle() });
  try {
    const result = await worker.runUntil(async () => {
      const { handle } = await startMaterialize(client, config, { selection: LAKE, range: MONTH });
      return handle.result();
    });
    expect(result.assets.map((a) => [a.asset, a.status])).toEqual([
      ['songs', 'materialized'],
      ['artists', 'materialized'],
      ['users', 'materialized'],
      ['time', 'materialized'],
      ['songplays', 'materialized'],
    ]);
    const byAsset = Object.fromEntries(result.assets.map((a) => [a.asset, a]));
    expect(byAsset.songplays!.rows).toBe(summary.songplays);
    expect(byAsset.songplays!.rowsPerDay).toEqual(summary.songplays_per_day);
    expect(byAsset.songplays!.stepId).toMatch(/^s-[A-Z0-9]{13}$/);
    expect(result.codeVersion).toMatch(/^[0-9a-f]{16}$/);

    uninterrupted = await digest(config.storage.lake);
    expect(uninterrupted.songs!.rows).toBe(summary.songs);
    expect(uninterrupted.artists!.rows).toBe(summary.artists);
    expect(uninterrupted.users!.rows).toBe(summary.users);
    expect(uninterrupted.users!.levels).toEqual(summary.users_latest_level);
    expect(uninterrupted.time!.rows).toBe(summary.time_rows);
    expect(uninterrupted.songplays!.rows).toBe(summary.songplays);
    expect(uninterrupted.songplays!.with_song_match).toBe(summary.songplays_with_song_match);

    const lake = openLake(config.storage.lake);
    const songplays = await readManifests(lake, 'songplays');
    expect([...songplays.keys()].sort()).toEqual(summary.days);
    for (const [day, m] of songplays) {
      expect(m.lastRun).toMatchObject({
        status: 'materialized',
        rows: summary.songplays_per_day[day],
        codeVersion: result.codeVersion,
      });
    }
    expect((await readManifests(lake, 'songs')).get('all')!.lastSuccess!.rows).toBe(summary.songs);
    // Each step went to EMR exactly once: songs and artists, then the daily assets fused in one.
    const s = await stats(emr);
    expect(
      Object.keys(s.stepsByName)
        .map((n) => n.split('/')[1])
        .sort(),
    ).toEqual(['song_tables', 'users+time+songplays']);
    expect(Object.values(s.stepsByName)).toEqual([1, 1]);
  } finally {
    await connection.close();
    await emr.close({ killSteps: true });
  }
});

test('a worker killed with SIGKILL mid-step is replaced and the run completes with one step each', async () => {
  const emr = await localEmr('crash');
  const env = envFor('crash', emr);
  const config = loadConfig({ env });
  let worker = spawnWorker(env);
  try {
    const { handle } = await startMaterialize(client, config, { selection: LAKE, range: MONTH });
    await waitFor('a step to be running', async () => (await runningSteps(emr)) > 0);
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    worker = spawnWorker(env);
    const result = await handle.result();
    expect(result.ok).toBe(true);
    const s = await stats(emr);
    expect(Object.keys(s.stepsByName)).toHaveLength(2);
    expect(Object.values(s.stepsByName)).toEqual([1, 1]);
    expect(s.addJobFlowSteps).toBe(2);
    expect(await digest(config.storage.lake)).toEqual(uninterrupted);
    // The leases held at the kill were neither lost nor doubled: one grant per request (one
    // request per EMR step), all released.
    const lease = client.workflow.getHandle(leaseWorkflowId(openLake(config.storage.lake).uri));
    expect(await lease.query(leaseStateQuery)).toMatchObject({ held: [], waiting: [] });
    // A grant is told in the request's update answer, or later by a leaseGranted signal.
    const grants = (await lease.fetchHistory()).events!.filter((e) => {
      if (e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === 'leaseGranted')
        return true;
      const answer = e.workflowExecutionUpdateCompletedEventAttributes?.outcome?.success?.payloads?.[0];
      return answer !== undefined && defaultPayloadConverter.fromPayload<LeaseAnswer>(answer).granted;
    });
    expect(grants).toHaveLength(2);
  } finally {
    worker.kill('SIGKILL');
    await emr.close({ killSteps: true });
  }
});

test('the Temporal server stopped and restarted on the same SQLite file mid-run: the run completes', async () => {
  const emr = await localEmr('restart');
  const config = configFor('restart', emr);
  const worker = spawnWorker(envFor('restart', emr));
  try {
    const { handle } = await startMaterialize(client, config, { selection: 'time', range: MONTH });
    await waitFor('the step to be running', async () => (await runningSteps(emr)) > 0);
    await temporal.stop();
    await new Promise((r) => setTimeout(r, 2000));
    temporal = await startTemporal();
    const result = await resultOf(handle.workflowId);
    expect(result.ok).toBe(true);
    expect(result.assets[0]!.rows).toBe(summary.time_rows);
    expect(Object.values((await stats(emr)).stepsByName)).toEqual([1]);
  } finally {
    worker.kill('SIGKILL');
    await emr.close({ killSteps: true });
  }
});

// Keeps ENV_SETTINGS in use as the single source of env names these tests rely on.
test('the env names the e2e tests use are all real settings', () => {
  for (const name of Object.keys(
    envFor('x', { endpoint: 'http://127.0.0.1:1', clusterId: 'j-X' } as LocalEmr),
  )) {
    expect(ENV_SETTINGS).toHaveProperty(name);
  }
});
