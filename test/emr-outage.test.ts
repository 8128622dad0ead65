import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startMaterialize } from '../client/runs';
import { startLocalEmr, type LocalEmr } from '../dev/emr-local';
import { readManifests } from '../lake/manifests';
import { openLake } from '../lake/store';
import { createWorker } from '../worker/worker';
import { scriptedReport } from './helpers/scripted';
import { emrStats, localStep, stackConfig, waitFor, writeRawFixture } from './helpers/step-stack';
import { createTemporalEnv, workflowBundle } from './helpers/temporal';

/**
 * The EMR API goes away while a step runs on: first unreachable (connections refused), then
 * throttling every request, for longer than the step activity's old budget of 12 consecutive
 * failures (with the short poll settings below, 5-15 s). The activity keeps its attempt,
 * heartbeating, and when the API answers again reports the step's real end: COMPLETED while the
 * API was away. Real workflow, real worker (worker/worker.ts), local EMR behind a proxy that
 * plays the outage; the step runs `node` (sleeps, then writes a job report) instead of Spark.
 */

jest.setTimeout(180_000);

const RANGE = { start: '2018-11-05', end: '2018-11-06' };
const STEP_MS = 4_000;
const REFUSED_MS = 20_000;
const THROTTLED_MS = 6_000;
/** Sleeps, then writes the report it was given where it was told (argv: path, report, ms). */
const STEP_SCRIPT = `
const [, file, report, ms] = process.argv;
const fs = require('node:fs');
const path = require('node:path');
setTimeout(() => {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, report);
}, Number(ms));
`;

/** An HTTP proxy in front of the local EMR that can refuse connections or throttle everything. */
interface EmrProxy {
  endpoint: string;
  /** Answers every request with 400 ThrottlingException while true. */
  throttling: boolean;
  throttled: number;
  down(): Promise<void>;
  up(): Promise<void>;
}

async function startProxy(target: string): Promise<EmrProxy> {
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    if (proxy.throttling) {
      req.resume();
      req.on('end', () => {
        proxy.throttled += 1;
        const body = JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' });
        res.writeHead(400, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-errortype': 'ThrottlingException',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      });
      return;
    }
    const upstream = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  // Longer than the SDK's idle sockets live, so a reused socket is never closed under a request.
  server.keepAliveTimeout = 65_000;
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const proxy: EmrProxy = {
    endpoint: `http://127.0.0.1:${port}`,
    throttling: false,
    throttled: 0,
    down: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    up: () => listen(port),
  };
  return proxy;
}

let env: TestWorkflowEnvironment;
let dir: string;
let emr: LocalEmr | undefined;
let proxy: EmrProxy | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkify-outage-'));
  env = await createTemporalEnv();
  await workflowBundle();
});

afterAll(async () => {
  await proxy?.down().catch(() => undefined);
  await emr?.close({ killSteps: true });
  await env?.teardown();
  rmSync(dir, { recursive: true, force: true });
});

test('an EMR API outage longer than the old retry budget is ridden out in one attempt; the run succeeds with the step it started', async () => {
  const raw = join(dir, 'raw');
  writeRawFixture(raw);
  emr = await startLocalEmr({
    stateDir: join(dir, 'emr'),
    allowedCommands: ['spark-submit', 'node'],
    pollIntervalMs: 100,
  });
  const local = emr;
  const p = await startProxy(local.endpoint);
  proxy = p;
  const config = stackConfig({
    SPARKIFY_TEMPORAL_TASK_QUEUE: `outage-${randomUUID()}`,
    SPARKIFY_EMR_ENDPOINT: p.endpoint,
    SPARKIFY_EMR_CLUSTER_ID: local.clusterId,
    SPARKIFY_EMR_POLL_INITIAL_MS: '200',
    SPARKIFY_EMR_POLL_MAX_MS: '500',
    // Short, so an attempt that stopped heartbeating during the outage would be noticed.
    SPARKIFY_EMR_HEARTBEAT_TIMEOUT_MS: '5000',
    SPARKIFY_RAW_URI: raw,
    SPARKIFY_LAKE_URI: join(dir, 'lake'),
    SPARKIFY_CODE_URI: join(dir, 'code'),
  });
  const worker = await createWorker({
    config,
    connection: env.nativeConnection,
    workflowBundle: await workflowBundle(),
    activityDeps: {
      stepArgs: ({ input, reportUri }) => [
        'node',
        '-e',
        STEP_SCRIPT,
        fileURLToPath(reportUri),
        JSON.stringify(scriptedReport(input)),
        String(STEP_MS),
      ],
    },
  });

  let stepId = '';
  let apiBackAt = 0;
  const { handle, result } = await worker.runUntil(async () => {
    const { handle } = await startMaterialize(env.client, config, { selection: 'time', range: RANGE });
    // The local EMR's own endpoint, not the proxy: the test sees what the activity cannot.
    await waitFor(
      'the step to run',
      async () => ((await emrStats(local.endpoint)).steps.byState.RUNNING ?? 0) > 0,
    );
    const state = JSON.parse(readFileSync(join(local.stateDir, 'state.json'), 'utf8')) as {
      steps: { id: string }[];
    };
    stepId = state.steps[0]!.id;

    await p.down();
    await new Promise((r) => setTimeout(r, REFUSED_MS));
    p.throttling = true;
    await p.up();
    await new Promise((r) => setTimeout(r, THROTTLED_MS));
    // The step ended while the API was away.
    expect((await localStep(local.endpoint, stepId)).state).toBe('COMPLETED');
    expect(p.throttled).toBeGreaterThan(0); // the attempt was still polling after 20 s refused
    apiBackAt = Date.now();
    p.throttling = false;
    return { handle, result: await handle.result() };
  });

  expect(result.ok).toBe(true);
  expect(result.assets).toEqual([expect.objectContaining({ asset: 'time', status: 'materialized', stepId })]);
  // One step, submitted once, and the activity that ran it never failed an attempt.
  const stats = await emrStats(local.endpoint);
  expect(stats.addJobFlowSteps).toBe(1);
  expect(stats.steps.byState).toEqual({ COMPLETED: 1 });
  const events = (await handle.fetchHistory()).events!;
  const runStep = events.find(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runStep',
  )!;
  const started = events.find(
    (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(runStep.eventId),
  )!;
  expect(started.activityTaskStartedEventAttributes!.attempt).toBe(1);
  // The step's real end, as EMR recorded it during the outage, not when the API came back.
  const manifest = (await readManifests(openLake(config.storage.lake), 'time')).get(RANGE.start)!;
  expect(manifest.lastRun).toMatchObject({ status: 'materialized', stepId });
  expect(Date.parse(manifest.lastRun.endedAt!)).toBeLessThan(apiBackAt - THROTTLED_MS);
});
