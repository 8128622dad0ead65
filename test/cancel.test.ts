import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMRClient, ListStepsCommand } from '@aws-sdk/client-emr';
import { WorkflowFailedError, defaultPayloadConverter } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startMaterialize } from '../client/runs';
import { startLocalEmr, type LocalEmr } from '../dev/emr-local';
import { readManifests } from '../lake/manifests';
import { openLake } from '../lake/store';
import { createWorker } from '../worker/worker';
import {
  emrStats,
  localStep,
  processAlive,
  processGroup,
  stackConfig,
  waitFor,
  writeRawFixture,
} from './helpers/step-stack';
import { createTemporalEnv, workflowBundle } from './helpers/temporal';

/**
 * `temporal workflow cancel` of a running materialization, through the real workflow, the real
 * worker (worker/worker.ts) with the product's default heartbeat settings, and the local EMR. The
 * step runs `node` sleeping for ten minutes instead of spark-submit (the activities' `stepArgs`
 * seam): what is under test is the cancel's way to the step, not Spark.
 */

jest.setTimeout(180_000);

const RANGE = { start: '2018-11-05', end: '2018-11-06' };
const TEN_MINUTES = 'setTimeout(() => {}, 600000)';

let env: TestWorkflowEnvironment;
let dir: string;
let emr: LocalEmr | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkify-cancel-'));
  env = await createTemporalEnv();
  await workflowBundle();
});

afterAll(async () => {
  await emr?.close({ killSteps: true });
  await env?.teardown();
  rmSync(dir, { recursive: true, force: true });
});

test('a cancelled materialization cancels its EMR step within seconds, with the default 120 s heartbeat timeout', async () => {
  const raw = join(dir, 'raw');
  writeRawFixture(raw);
  emr = await startLocalEmr({
    stateDir: join(dir, 'emr'),
    allowedCommands: ['spark-submit', 'node'],
    pollIntervalMs: 100,
  });
  const config = stackConfig({
    SPARKIFY_TEMPORAL_TASK_QUEUE: `cancel-${randomUUID()}`,
    SPARKIFY_EMR_ENDPOINT: emr.endpoint,
    SPARKIFY_EMR_CLUSTER_ID: emr.clusterId,
    SPARKIFY_RAW_URI: raw,
    SPARKIFY_LAKE_URI: join(dir, 'lake'),
    SPARKIFY_CODE_URI: join(dir, 'code'),
  });
  // The defaults under which a cancel used to wait for the SDK's 60 s heartbeat throttle.
  expect(config.emr.stepHeartbeatTimeoutMs).toBe(120_000);
  expect(config.emr.pollInitialMs).toBe(10_000);

  const emrClient = new EMRClient({
    endpoint: emr.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const worker = await createWorker({
    config,
    connection: env.nativeConnection,
    workflowBundle: await workflowBundle(),
    activityDeps: { stepArgs: () => ['node', '-e', TEN_MINUTES] },
  });
  const local = emr;
  let stepId = '';
  let handle!: Awaited<ReturnType<typeof startMaterialize>>['handle'];
  const timings = await worker.runUntil(async () => {
    ({ handle } = await startMaterialize(env.client, config, { selection: 'time', range: RANGE }));
    await waitFor('the step to run', async () => {
      const steps = (await emrClient.send(new ListStepsCommand({ ClusterId: local.clusterId }))).Steps ?? [];
      stepId = steps[0]?.Id ?? '';
      return stepId !== '' && (await localStep(local.endpoint, stepId)).pgid !== undefined;
    });
    expect((await localStep(local.endpoint, stepId)).state).toBe('RUNNING');
    // Long enough for the activity to be well into its polling (the first poll waits 10 s).
    await new Promise((r) => setTimeout(r, 3_000));

    const cancelledAt = Date.now();
    await handle.cancel();
    await waitFor(
      'CancelSteps to reach the local EMR',
      async () => ((await emrStats(local.endpoint)).calls.CancelSteps ?? 0) > 0,
      90_000,
      50,
    );
    const cancelStepsAfterMs = Date.now() - cancelledAt;
    await waitFor(
      'the step to be CANCELLED',
      async () => (await localStep(local.endpoint, stepId)).state === 'CANCELLED',
      90_000,
      50,
    );
    const stepCancelledAfterMs = Date.now() - cancelledAt;
    const err: unknown = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    return { cancelStepsAfterMs, stepCancelledAfterMs, workflowClosedAfterMs: Date.now() - cancelledAt };
  });
  emrClient.destroy();
  process.stderr.write(`cancel timings: ${JSON.stringify(timings)}\n`);

  expect(timings.cancelStepsAfterMs).toBeLessThan(10_000);
  expect(timings.stepCancelledAfterMs).toBeLessThan(10_000);
  expect(timings.workflowClosedAfterMs).toBeLessThan(15_000);
  expect((await handle.describe()).status.name).toBe('CANCELLED');

  // No process of the step is left: not the command's process group; its runner is either gone
  // or the local EMR's standby runner, which serves the next steps and has recorded this one's end.
  const info = await localStep(local.endpoint, stepId);
  expect(info.pgid).toBeGreaterThan(0);
  await waitFor('the step command to exit', () => processGroup(info.pgid!).length === 0, 10_000);
  expect(info.exitCode).toBeDefined();
  if (processAlive(info.runnerPid!))
    expect(readFileSync(`/proc/${info.runnerPid!}/cmdline`, 'utf8')).toContain('--standby');
  const stats = await emrStats(local.endpoint);
  expect(stats.addJobFlowSteps).toBe(1);
  expect(stats.steps.byState).toEqual({ CANCELLED: 1 });

  // Nothing was published or recorded as materialized (nor as failed: a cancel is neither).
  const lake = openLake(config.storage.lake);
  expect([...(await readManifests(lake, 'time')).values()]).toEqual([]);
  expect(existsSync(join(dir, 'lake', 'time'))).toBe(false);
  // Activities, and local activities (bookkeeping) by the summaries of their markers.
  const events = (await handle.fetchHistory()).events!;
  const scheduled = events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  const bookkeeping = events.flatMap((e) =>
    e.markerRecordedEventAttributes && e.userMetadata?.summary
      ? [defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary)]
      : [],
  );
  expect(scheduled).toContain('runStep');
  expect(bookkeeping.some((s) => s.startsWith('what '))).toBe(true);
  expect(bookkeeping.filter((s) => s.startsWith('record'))).toEqual([]);
});
