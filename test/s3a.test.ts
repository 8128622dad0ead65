import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { startMaterialize } from '../client/runs';
import { loadConfig, type Config } from '../config/config';
import { s3aSupport, startLocalEmr, type LocalEmr, type S3aSupport } from '../dev/emr-local';
import { clusterConf } from '../dev/emr-local/command';
import { generate, type GeneratorSummary } from '../dev/generator/generate';
import { startTemporalDevServer, type DevServer } from '../dev/temporal-server';
import { readManifests } from '../lake/manifests';
import { openLake } from '../lake/store';
import { createWorker } from '../worker/worker';
import type { MaterializeResult } from '../workflows/types';
import { startMoto, motoS3, type Moto } from './helpers/moto';
import { freePorts } from './helpers/ports';
import { workflowBundle } from './helpers/temporal';

/**
 * The path production takes, off EMR: raw data, lake and code on S3 (moto's server), read and
 * written by real Spark through S3A, with the connector and its settings given by the local EMR
 * (as EMR gives EMRFS), a real Temporal dev server and a real worker. The lake read back from S3
 * equals a folder lake built from the same raw data; write-audit-publish holds on S3, where a
 * rename is a copy and a delete.
 */

jest.setTimeout(900_000);

const LAKE = '+songplays,time';
const BUCKET = 'sparkify-s3a-e2e';
const RANGE = { start: '2018-11-01', end: '2018-11-05' };
const DAYS = ['2018-11-01', '2018-11-02', '2018-11-03', '2018-11-04'];
const CHANGED_DAY = '2018-11-02';
const REPO = resolve(__dirname, '..');
const PYTHON = join(REPO, '.venv/bin/python');
const SPARK_SUBMIT = join(REPO, '.venv/bin/spark-submit');
// moto takes any keys; they reach the worker and the steps through the environment only.
const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'moto-s3a-e2e',
  AWS_SECRET_ACCESS_KEY: 'moto-s3a-e2e-secret',
  AWS_REGION: 'us-east-1',
};
const run = promisify(execFile);

let dir: string;
let raw: string;
let summary: GeneratorSummary;
let moto: Moto;
let s3: S3Client;
let s3a: S3aSupport;
let temporal: DevServer;
let client: Client;
let emr: LocalEmr;
let config: Config;
const savedEnv: Record<string, string | undefined> = {};

interface Digest {
  [table: string]: {
    rows: number;
    sha256: string;
    with_song_match?: number;
    levels?: Record<string, string>;
  };
}

async function digest(lake: string, conf: string[] = []): Promise<Digest> {
  const { stdout } = await run(PYTHON, [join(__dirname, 'helpers/lake_digest.py'), lake, ...conf], {
    maxBuffer: 64 << 20,
    env: { ...process.env, ...AWS_ENV },
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Digest;
}

/** Every object under `prefix`: key → ETag. */
async function objects(prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) out[o.Key!] = o.ETag!;
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

const parquet = (objs: Record<string, string>) =>
  Object.fromEntries(Object.entries(objs).filter(([k]) => k.endsWith('.parquet')));

async function withWorker<T>(fn: () => Promise<T>): Promise<T> {
  const connection = await NativeConnection.connect({ address: temporal.address });
  try {
    const worker = await createWorker({ config, connection, workflowBundle: await workflowBundle() });
    return await worker.runUntil(fn());
  } finally {
    await connection.close();
  }
}

async function materialize(selection: string, range: { start: string; end: string }, only?: 'all') {
  return withWorker(async () => {
    const { handle } = await startMaterialize(client, config, {
      selection,
      range,
      ...(only ? { only } : {}),
    });
    return handle.result().then(
      (result) => ({ result, error: null }),
      (error: unknown) => ({ result: null, error }),
    );
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkify-s3a-'));
  raw = join(dir, 'raw');
  summary = generate({
    out: raw,
    start: RANGE.start,
    days: DAYS.length,
    users: 15,
    songs: 30,
    seed: 23,
    eventsPerDay: 200,
  }).summary;
  for (const [k, v] of Object.entries(AWS_ENV)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  savedEnv.AWS_PROFILE = process.env.AWS_PROFILE;
  delete process.env.AWS_PROFILE;

  moto = await startMoto();
  s3 = motoS3(moto.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  for (const file of readdirSync(raw, { recursive: true, encoding: 'utf8' })) {
    const abs = join(raw, file);
    if (!statSync(abs).isFile()) continue;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `raw/${file}`, Body: readFileSync(abs) }));
  }

  const [port] = await freePorts(1);
  temporal = await startTemporalDevServer({
    dbFile: join(dir, 'temporal.db'),
    port: port!,
    uiPort: 0,
    ui: false,
  });
  client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  // The connector and the endpoint come from the configuration, as `sparkify dev` does it.
  s3a = s3aSupport({ endpoint: moto.endpoint, sparkSubmit: SPARK_SUBMIT });
  emr = await startLocalEmr({ stateDir: join(dir, 'emr'), stepConcurrency: 2, master: 'local[2]', ...s3a });
  config = loadConfig({
    env: {
      SPARKIFY_TEMPORAL_ADDRESS: temporal.address,
      SPARKIFY_TEMPORAL_TASK_QUEUE: 's3a',
      SPARKIFY_EMR_ENDPOINT: emr.endpoint,
      SPARKIFY_EMR_CLUSTER_ID: emr.clusterId,
      SPARKIFY_EMR_POLL_INITIAL_MS: '300',
      SPARKIFY_EMR_POLL_MAX_MS: '1000',
      SPARKIFY_S3_ENDPOINT: moto.endpoint,
      // Both spellings: s3a:// as given; s3:// (EMRFS on EMR) read as s3a:// by the jobs.
      SPARKIFY_RAW_URI: `s3a://${BUCKET}/raw`,
      SPARKIFY_LAKE_URI: `s3://${BUCKET}/lake`,
      SPARKIFY_CODE_URI: `s3://${BUCKET}/code`,
    },
  });
  await workflowBundle();
});

afterAll(async () => {
  await emr?.close({ killSteps: true });
  await client?.connection.close();
  await temporal?.stop();
  await moto?.stop();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let onS3: Digest;

test('the whole lake graph with raw, lake and code on S3 equals a folder lake built from the same data', async () => {
  const { result, error } = await materialize(LAKE, RANGE);
  expect(error).toBeNull();
  expect(result!.assets.map((a) => [a.asset, a.status])).toEqual([
    ['songs', 'materialized'],
    ['artists', 'materialized'],
    ['users', 'materialized'],
    ['time', 'materialized'],
    ['songplays', 'materialized'],
  ]);
  const songplays = result!.assets.find((a) => a.asset === 'songplays')!;
  expect(songplays.rowsPerDay).toEqual(summary.songplays_per_day);

  // The same jobs over the same raw data, straight from the checkout into a folder.
  const folder = join(dir, 'folder-lake');
  await run(
    SPARK_SUBMIT,
    [
      '--master',
      'local[2]',
      '--conf',
      'spark.ui.enabled=false',
      join(REPO, 'spark/run.py'),
      '--assets',
      'songs,artists,users,time,songplays',
      '--raw',
      raw,
      '--lake',
      folder,
      '--start',
      RANGE.start,
      '--end',
      RANGE.end,
      '--report',
      join(dir, 'folder-report.json'),
    ],
    // find-spark-home runs $PYSPARK_PYTHON (the venv's, which has pyspark), as the local EMR's steps do.
    { maxBuffer: 64 << 20, env: { ...process.env, PYSPARK_PYTHON: PYTHON, PYSPARK_DRIVER_PYTHON: PYTHON } },
  );
  onS3 = await digest(`s3a://${BUCKET}/lake`, clusterConf(s3a));
  expect(onS3).toEqual(await digest(folder));
  expect(onS3.songplays!.rows).toBe(summary.songplays);
  expect(onS3.users!.levels).toEqual(summary.users_latest_level);

  // The orchestrator's side of the lake is on S3 too: manifests, reports, the code bundle.
  const lake = openLake(config.storage.lake, { s3 });
  expect([...(await readManifests(lake, 'songplays')).keys()].sort()).toEqual(DAYS);
  expect(Object.keys(await objects(`code/${result!.codeVersion}/`))).toEqual(
    expect.arrayContaining([`code/${result!.codeVersion}/run.py`, `code/${result!.codeVersion}/_COMPLETE`]),
  );
  // Everything staged was published: no data left under _staging.
  expect(parquet(await objects('lake/_staging/'))).toEqual({});

  // The connector is the cluster's, not the step's: EMR's arguments ship no S3A jar (EMRFS
  // serves s3:// there); the local EMR put it on the driver's classpath with the endpoint.
  for (const a of result!.assets) {
    const logDir = join(emr.stateDir, 'logs', emr.clusterId, 'steps', a.stepId!);
    const { args } = JSON.parse(readFileSync(join(logDir, 'command.json'), 'utf8')) as { args: string[] };
    const record = (await (await fetch(`${emr.endpoint}/_local/steps/${a.stepId}`)).json()) as {
      args: string[];
    };
    expect(record.args.join(' ')).not.toMatch(/hadoop-aws|aws-java-sdk|fs\.s3a/);
    expect(args).toEqual(expect.arrayContaining(clusterConf(s3a)));
    expect(args.join(' ')).toContain(`spark.hadoop.fs.s3a.endpoint=${moto.endpoint}`);
    // No credential in any argument: the steps take them from their environment.
    expect(args.join(' ')).not.toContain(AWS_ENV.AWS_SECRET_ACCESS_KEY);
  }
});

/** The day's log with one more play, by a user the users table has never seen. */
async function addPlayByUnknownUser(): Promise<void> {
  const key = `raw/log_data/2018/11/${CHANGED_DAY}-events.json`;
  const body = await (
    await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))
  ).Body!.transformToString();
  const lines = body.split('\n').filter((l) => l.trim() !== '');
  const play = JSON.parse(
    lines.find((l) => (JSON.parse(l) as { page: string }).page === 'NextSong')!,
  ) as Record<string, unknown>;
  const stranger = {
    ...play,
    userId: '990001',
    firstName: 'Nobody',
    lastName: 'Known',
    sessionId: 990001,
    itemInSession: 0,
  };
  await s3.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: key,
      Body: `${[...lines, JSON.stringify(stranger)].join('\n')}\n`,
    }),
  );
}

test('write-audit-publish on S3: a failed check publishes nothing; a passing run replaces exactly its day', async () => {
  expect(onS3).toBeDefined();
  const dayDir = (day: string) => `lake/songplays/year=2018/month=11/day=${Number(day.slice(8))}/`;
  const before = parquet(await objects('lake/'));
  await addPlayByUnknownUser();
  const day = { start: CHANGED_DAY, end: '2018-11-03' };

  // songplays alone: its changed day builds, but users was not rebuilt, so the check fails.
  const failed = await materialize('songplays', day);
  expect(failed.error).toBeInstanceOf(WorkflowFailedError);
  const details = ((failed.error as WorkflowFailedError).cause as ApplicationFailure)
    .details![0] as MaterializeResult;
  const reason = details.assets[0]!.reason!;
  expect(reason).toMatch(/songplays\.user_id in users: 1 failing row, e\.g\. 990001/);
  // Nothing it checked became visible: every object of the lake's tables is what it was.
  const lakeNow = parquet(await objects('lake/'));
  const tables = (objs: Record<string, string>) =>
    Object.fromEntries(Object.entries(objs).filter(([k]) => !k.startsWith('lake/_staging/')));
  expect(tables(lakeNow)).toEqual(before);
  // What it staged is kept on S3 for inspection, where the failure says.
  const staged = /staged output kept at (s3:\/\/\S+)$/.exec(reason)![1]!;
  const stagedPrefix = `${staged.slice(`s3://${BUCKET}/`.length)}/`;
  expect(Object.keys(parquet(await objects(`${stagedPrefix}songplays/`))).length).toBeGreaterThan(0);

  // With users: both publish; the day's partition is replaced by new objects, others untouched.
  const passed = await materialize('+songplays', day);
  expect(passed.error).toBeNull();
  const statuses = Object.fromEntries(passed.result!.assets.map((a) => [a.asset, a.status]));
  expect(statuses).toMatchObject({ users: 'materialized', songplays: 'materialized' });
  const songplays = passed.result!.assets.find((a) => a.asset === 'songplays')!;
  expect(songplays.rowsPerDay).toEqual({ [CHANGED_DAY]: summary.songplays_per_day[CHANGED_DAY]! + 1 });
  const after = tables(parquet(await objects('lake/')));
  const oldDay = Object.keys(before).filter((k) => k.startsWith(dayDir(CHANGED_DAY)));
  const newDay = Object.keys(after).filter((k) => k.startsWith(dayDir(CHANGED_DAY)));
  expect(newDay.length).toBeGreaterThan(0);
  expect(newDay.filter((k) => oldDay.includes(k))).toEqual([]);
  for (const other of DAYS.filter((d) => d !== CHANGED_DAY)) {
    const of = (objs: Record<string, string>) =>
      Object.fromEntries(Object.entries(objs).filter(([k]) => k.startsWith(dayDir(other))));
    expect(of(after)).toEqual(of(before));
  }
  const digest2 = await digest(`s3a://${BUCKET}/lake`, clusterConf(s3a));
  expect(digest2.songplays!.rows).toBe(summary.songplays + 1);
  expect(digest2.users!.rows).toBe(summary.users + 1);
  expect(digest2.users!.levels!['990001']).toBeDefined();
  // Only the failed run's staging is left; the passing run's moved or deleted all of its own.
  const leftover = Object.keys(parquet(await objects('lake/_staging/'))).filter(
    (k) => !k.startsWith(stagedPrefix),
  );
  expect(leftover).toEqual([]);
});
