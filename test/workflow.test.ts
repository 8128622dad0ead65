import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { loadConfig, type Config } from '../config/config';
import { materialize } from '../workflows';
import type { AssetResult, CodeVersion, RunStepInput, SparkifyActivities } from '../workflows/types';
import { startMaterialize } from '../client/runs';
import { createTemporalEnv, workflowBundle } from './helpers/temporal';

jest.setTimeout(120_000);

const CODE: CodeVersion = {
  hash: '0123456789abcdef',
  runPy: 'file:///code/run.py',
  pyFiles: 'file:///code/jobs.zip',
};
const RANGE = { start: '2018-11-01', end: '2018-11-03' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Script {
  /** How long each step "runs", by step key. */
  durationMs?: Record<string, number>;
  /** Steps that fail for good. */
  fail?: string[];
}

/** Activities that record what the workflow asked of them, instead of running Spark. */
function scriptedActivities(script: Script) {
  const calls: { step: string; input: RunStepInput; start: number; end: number }[] = [];
  let publishes = 0;
  let running = 0;
  let maxRunning = 0;
  const activities: SparkifyActivities = {
    async publishSparkCode() {
      publishes++;
      return CODE;
    },
    async runStep(input) {
      const start = Date.now();
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        await sleep(script.durationMs?.[input.stepKey] ?? 300);
        if (script.fail?.includes(input.stepKey)) {
          throw ApplicationFailure.create({
            message: `step ${input.stepKey} failed: Spark exited with 1`,
            type: 'EmrStepFailed',
            nonRetryable: true,
            details: [{ stepId: 's-FAILED', logFile: `/logs/${input.stepKey}/stderr` }],
          });
        }
        return { stepId: `s-${input.stepKey.toUpperCase()}`, adopted: false, reportUri: 'file:///r.json' };
      } finally {
        running--;
        calls.push({ step: input.stepKey, input, start, end: Date.now() });
      }
    },
    async recordMaterialization(input): Promise<AssetResult[]> {
      return input.assets.map((asset) => ({
        asset,
        status: 'materialized',
        step: input.stepKey,
        stepId: input.outcome.stepId,
        rows: 10,
        codeVersion: input.code.hash,
      }));
    },
    async recordFailure() {},
    async checkSongDataUnchanged() {
      return { fingerprint: 'f', upToDate: [] };
    },
    async partitionStates() {
      return {};
    },
  };
  return { activities, calls, stats: () => ({ publishes, maxRunning }) };
}

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await createTemporalEnv();
  await workflowBundle();
});
afterAll(async () => {
  await env?.teardown();
});

async function runWith<T>(script: Script, fn: (config: Config, taskQueue: string) => Promise<T>) {
  const taskQueue = `wf-test-${randomUUID()}`;
  const scripted = scriptedActivities(script);
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: scripted.activities,
  });
  const config = loadConfig({ env: { SPARKIFY_TEMPORAL_TASK_QUEUE: taskQueue } });
  const result = await worker.runUntil(fn(config, taskQueue));
  return { result, ...scripted };
}

test('steps run in dependency order, independent ones in parallel up to the bound', async () => {
  const { result, calls, stats } = await runWith(
    { durationMs: { song_tables: 800, users: 400 } },
    (_c, taskQueue) =>
      env.client.workflow.execute(materialize, {
        taskQueue,
        workflowId: `order-${randomUUID()}`,
        args: [{ selection: '*', range: RANGE, maxParallelSteps: 2 }],
      }),
  );
  expect(result.ok).toBe(true);
  expect(result.assets.map((a) => [a.asset, a.status])).toEqual([
    ['songs', 'materialized'],
    ['artists', 'materialized'],
    ['users', 'materialized'],
    ['time', 'materialized'],
    ['songplays', 'materialized'],
  ]);
  const byStep = new Map(calls.map((c) => [c.step, c]));
  const songplays = byStep.get('songplays')!;
  expect(songplays.start).toBeGreaterThanOrEqual(byStep.get('song_tables')!.end);
  expect(songplays.start).toBeGreaterThanOrEqual(byStep.get('users')!.end);
  expect(stats().maxRunning).toBe(2);
  // One publish, and every step runs the code it pinned.
  expect(stats().publishes).toBe(1);
  expect(new Set(calls.map((c) => c.input.code.hash))).toEqual(new Set([CODE.hash]));
  expect(calls.find((c) => c.step === 'song_tables')!.input.assets).toEqual(['songs', 'artists']);
});

test('a recorded history replays deterministically against the current workflow code', async () => {
  const workflowId = `replay-${randomUUID()}`;
  await runWith({ fail: ['users'] }, (_c, taskQueue) =>
    env.client.workflow.execute(materialize, {
      taskQueue,
      workflowId,
      args: [{ selection: '*', range: RANGE }],
    }),
  );
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  // Throws DeterminismViolationError if the code would make different decisions on replay.
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
});

test('a failed step skips its downstream assets while unrelated assets go on', async () => {
  const { result, calls } = await runWith({ fail: ['song_tables'] }, (_c, taskQueue) =>
    env.client.workflow.execute(materialize, {
      taskQueue,
      workflowId: `fail-${randomUUID()}`,
      args: [{ selection: '*', range: RANGE }],
    }),
  );
  expect(result.ok).toBe(false);
  const status = Object.fromEntries(result.assets.map((a) => [a.asset, a]));
  expect(status.songs!.status).toBe('failed');
  expect(status.songs!.reason).toMatch(/EmrStepFailed: step song_tables failed/);
  expect(status.songs!.logFile).toBe('/logs/song_tables/stderr');
  expect(status.artists!.status).toBe('failed');
  expect(status.songplays!.status).toBe('skipped');
  expect(status.songplays!.reason).toMatch(/upstream (songs|artists) failed/);
  expect(status.users!.status).toBe('materialized');
  expect(status.time!.status).toBe('materialized');
  expect(calls.map((c) => c.step)).not.toContain('songplays');
});

test('the same materialization started twice is joined, not run twice', async () => {
  const { result, calls } = await runWith({ durationMs: { time: 1500 } }, async (config) => {
    const range = { start: '2018-11-05', end: '2018-11-06' };
    const first = await startMaterialize(env.client, config, { selection: 'time', range });
    const second = await startMaterialize(env.client, config, { selection: 'time', range });
    expect(first.joined).toBe(false);
    expect(second.joined).toBe(true);
    expect(second.handle.workflowId).toBe('materialize-time-2018-11-05');
    expect((await second.handle.describe()).runId).toBe((await first.handle.describe()).runId);
    return first.handle.result();
  });
  expect(result.ok).toBe(true);
  expect(calls.filter((c) => c.step === 'time')).toHaveLength(1);
});

test('invalid workflow input fails the run before any step starts', async () => {
  const { calls } = await runWith({}, async (_c, taskQueue) => {
    const run = env.client.workflow.execute(materialize, {
      taskQueue,
      workflowId: `bad-${randomUUID()}`,
      args: [{ selection: 'nope', range: { start: '2018-11-03', end: '2018-11-01' } }],
    });
    await expect(run).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/range: the range is empty: end must be after start/) },
    });
  });
  expect(calls).toHaveLength(0);
});
