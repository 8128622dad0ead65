import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { ScheduleOverlapPolicy, WorkflowFailedError } from '@temporalio/client';
import { carriedResult } from '../client/watch';
import type { BackfillProgress } from '../workflows/backfill';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { openLake } from '../lake/store';
import { loadConfig, type Config } from '../config/config';
import { applySchedule } from '../client/schedule';
import { backfillWorkflowId, startBackfill } from '../client/backfill';
import { daily } from '../workflows';
import { SA_ASSETS, SA_MONTHS, SA_RUN_KIND } from '../workflows/search-attributes';
import { workflowMetadataQuery } from '@temporalio/workflow';
import { createTemporalEnv, workflowBundle } from './helpers/temporal';
import { FAKE_CODE, scriptedActivities, type StepScript } from './helpers/scripted';
import { planBackfill } from '../lake/plan';

// The lake's tables: these tests are about the lake (the warehouse steps have test/warehouse.test.ts).
const LAKE = '+songplays,time';

jest.setTimeout(300_000);

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await createTemporalEnv();
  await workflowBundle();
});
afterAll(async () => {
  await env?.teardown();
});

interface Harness {
  config: Config;
  lakeDir: string;
  rawDir: string;
  ledger: string;
}

function harness(extraEnv: Record<string, string> = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'sparkify-sb-'));
  const rawDir = join(dir, 'raw');
  mkdirSync(join(rawDir, 'song_data', 'A', 'B', 'C'), { recursive: true });
  writeFileSync(join(rawDir, 'song_data', 'A', 'B', 'C', 'TRAAAAA.json'), '{"song_id":"S1"}');
  const config = loadConfig({
    env: {
      SPARKIFY_TEMPORAL_TASK_QUEUE: `sb-${randomUUID()}`,
      SPARKIFY_SCHEDULE_ID: `daily-${randomUUID()}`,
      SPARKIFY_RAW_URI: rawDir,
      SPARKIFY_LAKE_URI: join(dir, 'lake'),
      SPARKIFY_CODE_URI: join(dir, 'code'),
      // One EMR step per declared step, so the scripted ledger names each.
      SPARKIFY_EMR_FUSE_STEPS: 'none',
      ...extraEnv,
    },
  });
  return { config, lakeDir: join(dir, 'lake'), rawDir, ledger: join(dir, 'ledger.txt') };
}

async function withWorker<T>(h: Harness, script: StepScript, fn: () => Promise<T>): Promise<T> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: h.config.temporal.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: scriptedActivities(h.config, openLake(h.lakeDir), { ledger: h.ledger, ...script }),
    maxConcurrentActivityTaskExecutions: 50,
  });
  return worker.runUntil(fn());
}

const ledger = (h: Harness) => readFileSync(h.ledger, 'utf8').trim().split('\n').filter(Boolean);

describe('the daily schedule', () => {
  test('apply twice leaves one schedule, with the new settings', async () => {
    const h = harness({ SPARKIFY_SCHEDULE_HOUR: '2' });
    expect(await applySchedule(env.client, h.config)).toBe('created');
    const changed = {
      ...h.config,
      schedule: { ...h.config.schedule, hour: 5, minute: 30, selection: 'time' },
    };
    expect(await applySchedule(env.client, changed)).toBe('updated');
    const ids: string[] = [];
    for await (const s of env.client.schedule.list()) ids.push(s.scheduleId);
    expect(ids.filter((id) => id === h.config.schedule.id)).toHaveLength(1);
    const d = await env.client.schedule.getHandle(h.config.schedule.id).describe();
    expect(d.spec.calendars?.[0]).toMatchObject({
      hour: [{ start: 5, end: 5, step: 1 }],
      minute: [{ start: 30, end: 30, step: 1 }],
    });
    expect(d.action.type === 'startWorkflow' && d.action.args).toEqual([
      { selection: 'time', maxParallelSteps: 2, stepHeartbeatTimeoutMs: 120_000, fuse: 'none' },
    ]);
    expect(d.policies.overlap).toBe(ScheduleOverlapPolicy.BUFFER_ONE);
    await env.client.schedule.getHandle(h.config.schedule.id).delete();
  });

  test('a backfilled scheduled run processes the day before its nominal time, not the clock', async () => {
    const h = harness({ SPARKIFY_SCHEDULE_SELECTION: 'time' });
    await applySchedule(env.client, h.config);
    const handle = env.client.schedule.getHandle(h.config.schedule.id);
    await handle.pause('test drives it by hand');
    await withWorker(h, {}, async () => {
      await handle.backfill({
        start: new Date('2018-11-15T02:00:00Z'),
        end: new Date('2018-11-15T02:00:01Z'),
        overlap: ScheduleOverlapPolicy.ALLOW_ALL,
      });
      let workflowId: string | undefined;
      for (let i = 0; i < 100 && !workflowId; i++) {
        for await (const w of env.client.workflow.list({
          query: `WorkflowType = 'daily' AND TaskQueue = '${h.config.temporal.taskQueue}'`,
        })) {
          workflowId = w.workflowId;
        }
        if (!workflowId) await new Promise((r) => setTimeout(r, 200));
      }
      expect(workflowId).toBe(`${h.config.schedule.id}-2018-11-15T02:00:00Z`);
      const described = await env.client.workflow.getHandle(workflowId!).describe();
      expect(await described.staticSummary()).toMatch(/ · the UTC day before · schedule$/);
      expect(await described.staticDetails()).toContain(`| lake | \`${h.config.storage.lake}\` |`);
      const result = await env.client.workflow.getHandle<typeof daily>(workflowId!).result();
      expect(result.range).toEqual({ start: '2018-11-14', end: '2018-11-15' });
      expect(result.ok).toBe(true);
    });
    expect(ledger(h)).toEqual(['time@2018-11-14']);
    await handle.delete();
  });

  test('songs and artists are skipped while song_data is unchanged and rebuilt when a song file is added', async () => {
    const h = harness();
    const run = (day: string) =>
      env.client.workflow.execute(daily, {
        taskQueue: h.config.temporal.taskQueue,
        workflowId: `daily-skip-${randomUUID()}`,
        args: [{ selection: LAKE, day }],
      });
    await withWorker(h, {}, async () => {
      const first = await run('2018-11-01');
      expect(first.assets.find((a) => a.asset === 'songs')!.status).toBe('materialized');
      const second = await run('2018-11-02');
      expect(second.assets.filter((a) => a.status === 'up_to_date').map((a) => a.asset)).toEqual([
        'songs',
        'artists',
      ]);
      expect(second.assets.find((a) => a.asset === 'songplays')!.status).toBe('materialized');
      writeFileSync(join(h.rawDir, 'song_data', 'A', 'B', 'C', 'TRBBBBB.json'), '{"song_id":"S2"}');
      const third = await run('2018-11-03');
      expect(third.assets.find((a) => a.asset === 'songs')!.status).toBe('materialized');
    });
    expect(ledger(h).filter((l) => l.startsWith('song_tables'))).toEqual([
      'song_tables@2018-11-01',
      'song_tables@2018-11-03',
    ]);
    expect(ledger(h).filter((l) => l.startsWith('users'))).toHaveLength(3);
  });
});

describe('backfills', () => {
  test('three months at concurrency 2 run one materialization per month, two at a time', async () => {
    const h = harness();
    const result = await withWorker(h, { durationMs: 400 }, async () => {
      const handle = await startBackfill(env.client, h.config, {
        selection: 'time',
        from: '2018-11',
        to: '2019-01',
        concurrency: 2,
      });
      expect(handle.workflowId).toBe('backfill-time-2018-11..2019-01');
      const progress = await handle.result();
      // What the Web UI shows on the backfill's page (a query needs a polling worker).
      const { currentDetails } = await handle.query(workflowMetadataQuery);
      expect(currentDetails).toContain('| 3 | 0 | 0 | 0 | 0 |');
      expect(await (await handle.describe()).staticSummary()).toBe(
        'time · 2018-11-01..2019-01-31 · backfill',
      );
      const child = await env.client.workflow.getHandle(`${handle.workflowId}-2018-12`).describe();
      expect(await child.staticSummary()).toBe('time · 2018-12 · backfill');
      expect(await child.staticDetails()).toContain(`Part of backfill \`${handle.workflowId}\`.`);
      // Findable and described from its start: the backfill sets them, the child upserts nothing
      // of its own (the only upsert left is the SDK's patch version).
      expect(child.typedSearchAttributes.get(SA_ASSETS)).toEqual(['time']);
      expect(child.typedSearchAttributes.get(SA_MONTHS)).toEqual(['2018-12']);
      expect(child.typedSearchAttributes.get(SA_RUN_KIND)).toBe('backfill');
      expect(child.memo).toEqual({
        selection: 'time',
        assets: ['time'],
        range: { start: '2018-12-01', end: '2019-01-01' },
        only: 'outdated',
      });
      const events = (await env.client.workflow.getHandle(child.workflowId).fetchHistory()).events!;
      expect(events.filter((e) => e.workflowPropertiesModifiedEventAttributes)).toEqual([]);
      const upserted = events.flatMap((e) =>
        Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}),
      );
      expect(upserted).toEqual(['TemporalChangeVersion']);
      return progress;
    });
    expect(result).toMatchObject({ total: 3, done: 3, failed: {}, per: 'month' });
    expect(ledger(h).sort()).toEqual(['time@2018-11-01', 'time@2018-12-01', 'time@2019-01-01']);
    const children: string[] = [];
    for await (const w of env.client.workflow.list({
      query: `WorkflowType = 'materialize' AND TaskQueue = '${h.config.temporal.taskQueue}'`,
    })) {
      children.push(w.workflowId);
      expect(w.startTime.getTime()).toBeGreaterThan(0);
    }
    expect(children.sort()).toEqual([
      'backfill-time-2018-11..2019-01-2018-11',
      'backfill-time-2018-11..2019-01-2018-12',
      'backfill-time-2018-11..2019-01-2019-01',
    ]);
  });

  test('a worker killed mid-backfill is replaced; every month runs to completion exactly once', async () => {
    const h = harness({ SPARKIFY_EMR_HEARTBEAT_TIMEOUT_MS: '3000' });
    const events = join(h.lakeDir, '..', 'events.txt');
    const workerEnv = {
      ...process.env,
      SPARKIFY_TEMPORAL_ADDRESS: env.address,
      SPARKIFY_TEMPORAL_TASK_QUEUE: h.config.temporal.taskQueue,
      SPARKIFY_RAW_URI: h.config.storage.raw,
      SPARKIFY_LAKE_URI: h.config.storage.lake,
      SPARKIFY_CODE_URI: h.config.storage.code,
      SCRIPTED_STEP_MS: '4000',
      SCRIPTED_LEDGER: h.ledger,
      SCRIPTED_EVENTS: events,
    };
    const spawnWorker = () =>
      spawn(process.execPath, ['--require', 'tsx/cjs', join(__dirname, 'helpers/scripted-worker.ts')], {
        env: workerEnv,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    let worker = spawnWorker();
    try {
      const handle = await startBackfill(env.client, h.config, {
        selection: 'time',
        from: '2018-11',
        to: '2019-01',
        concurrency: 2,
      });
      const started = () =>
        existsSync(events) ? (readFileSync(events, 'utf8').match(/^started/gm)?.length ?? 0) : 0;
      for (let i = 0; i < 600 && started() < 2; i++) await new Promise((r) => setTimeout(r, 100));
      expect(started()).toBeGreaterThanOrEqual(2);
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      worker = spawnWorker();
      const result = await handle.result();
      expect(result).toMatchObject({ total: 3, done: 3, failed: {} });
    } finally {
      worker.kill('SIGKILL');
    }
    // The steps in flight at the kill were started again, but each month completed once.
    expect(ledger(h).sort()).toEqual(['time@2018-11-01', 'time@2018-12-01', 'time@2019-01-01']);
    expect(readFileSync(events, 'utf8').match(/^started/gm)!.length).toBeGreaterThan(3);
  });

  test('a backfill with a failed month ends Failed; the next one builds only what is not up to date', async () => {
    const h = harness();
    const input = { selection: 'time', from: '2018-11', to: '2019-01', concurrency: 3 };
    const first = await withWorker(h, { fail: ['time@2018-12-01'] }, async () =>
      (await startBackfill(env.client, h.config, input)).result().then(
        () => null,
        (err: unknown) => err,
      ),
    );
    expect(first).toBeInstanceOf(WorkflowFailedError);
    const progress = carriedResult<BackfillProgress>(first)!;
    expect(progress.done).toBe(2);
    expect(Object.keys(progress.failed)).toEqual(['2018-12']);
    expect(progress.failed['2018-12']).toMatch(/^time failed: scripted failure of time@2018-12-01/);
    const second = await withWorker(h, {}, async () =>
      (await startBackfill(env.client, h.config, input)).result(),
    );
    expect(second).toMatchObject({ total: 1, skippedByFilter: 2, done: 1, failed: {} });
    expect(ledger(h).sort()).toEqual(['time@2018-11-01', 'time@2018-12-01', 'time@2019-01-01']);
  });

  test('the plan printed before a backfill is exactly what it runs: unpartitioned once, then only the failed partitions', async () => {
    const h = harness();
    // 2018-11 built a day at a time, songplays of the 5th failed; 2018-12 never built.
    await withWorker(h, { fail: ['songplays@2018-11-05'] }, async () => {
      const first = await startBackfill(env.client, h.config, {
        selection: LAKE,
        from: '2018-11',
        to: '2018-11',
        per: 'day',
        concurrency: 5,
      });
      await expect(first.result()).rejects.toThrow(WorkflowFailedError);
    });
    const before = ledger(h).length;
    const lake = openLake(h.lakeDir);
    const raw = openLake(h.rawDir);
    const args = {
      selection: LAKE,
      from: '2018-11',
      to: '2018-12',
      per: 'month' as const,
      codeVersion: FAKE_CODE.hash,
    };
    const failedOnly = await planBackfill(lake, raw, { ...args, only: 'failed' });
    expect(failedOnly.unpartitioned).toBeNull();
    expect(failedOnly.chunks).toEqual([
      {
        partition: '2018-11',
        range: { start: '2018-11-01', end: '2018-12-01' },
        steps: [
          {
            step: 'songplays',
            assets: ['songplays'],
            ranges: [{ start: '2018-11-05', end: '2018-11-06' }],
            conditional: [],
          },
        ],
      },
    ]);
    await withWorker(h, {}, async () =>
      (
        await startBackfill(env.client, h.config, {
          selection: LAKE,
          from: '2018-11',
          to: '2018-12',
          only: 'failed',
        })
      ).result(),
    );
    expect(ledger(h).slice(before)).toEqual(['songplays@2018-11-05']);

    // Without a filter: December is missing, everything of November is up to date.
    const outdated = await planBackfill(lake, raw, { ...args, only: 'outdated' });
    expect(outdated.unpartitioned).toBeNull();
    // users rewrites a whole table: it runs a month at a time ahead of the chunks (the serial part).
    expect(outdated.serial.map((c) => [c.partition, c.steps.map((st) => st.step)])).toEqual([
      ['2018-12', ['users']],
    ]);
    expect(outdated.chunks.map((c) => [c.partition, c.steps.map((st) => st.step)])).toEqual([
      ['2018-12', ['time', 'songplays']],
    ]);
    expect(outdated.skippedChunks).toBe(1);
    const after = ledger(h).length;
    const progress = await withWorker(h, {}, async () =>
      (
        await startBackfill(env.client, h.config, { selection: LAKE, from: '2018-11', to: '2018-12' })
      ).result(),
    );
    expect(progress).toMatchObject({ total: 2, skippedByFilter: 1, done: 2 });
    expect(ledger(h).slice(after).sort()).toEqual([
      'songplays@2018-12-01',
      'time@2018-12-01',
      'users@2018-12-01',
    ]);
  });

  test('cancelling a backfill cancels its running materializations and their steps', async () => {
    // A short heartbeat timeout shortens the SDK's heartbeat throttling, which is what carries
    // the cancellation to a running activity.
    const h = harness({ SPARKIFY_EMR_HEARTBEAT_TIMEOUT_MS: '2000' });
    const events = join(h.lakeDir, '..', 'events.txt');
    const handle = await withWorker(h, { durationMs: 60_000, events }, async () => {
      const handle = await startBackfill(env.client, h.config, {
        selection: 'time',
        from: '2018-11',
        to: '2019-02',
        concurrency: 2,
      });
      const started = () =>
        existsSync(events) ? (readFileSync(events, 'utf8').match(/^started/gm)?.length ?? 0) : 0;
      for (let i = 0; i < 200 && started() < 2; i++) await new Promise((r) => setTimeout(r, 100));
      await handle.cancel();
      await expect(handle.result()).rejects.toThrow(/cancel/i);
      return handle;
    });
    const lines = readFileSync(events, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ').slice(0, 2).join(' '))
      .sort();
    expect(lines).toEqual([
      'cancelled time@2018-11-01',
      'cancelled time@2018-12-01',
      'started time@2018-11-01',
      'started time@2018-12-01',
    ]);
    const children: string[] = [];
    for await (const w of env.client.workflow.list({
      query: `WorkflowType = 'materialize' AND TaskQueue = '${h.config.temporal.taskQueue}'`,
    })) {
      children.push(`${w.workflowId} ${w.status.name}`);
    }
    expect(children.sort()).toEqual([
      `${handle.workflowId}-2018-11 CANCELLED`,
      `${handle.workflowId}-2018-12 CANCELLED`,
    ]);
  });

  test('a per-day backfill of 1,000+ days continues as new and keeps every history under 10,000 events', async () => {
    const h = harness();
    // A low history limit makes the 1,000 days span several runs, as a multi-year backfill would.
    const input = {
      selection: 'time',
      from: '2016-01',
      to: '2018-09',
      per: 'day' as const,
      concurrency: 10,
      historyLimit: 2_000,
    };
    const workflowId = backfillWorkflowId(input);
    const result = await withWorker(h, { durationMs: 1 }, async () =>
      (await startBackfill(env.client, h.config, input)).result(),
    );
    expect(result.total).toBe(1004);
    expect(result.done).toBe(1004);
    expect(result.runs).toBeGreaterThan(1);
    let runs = 0;
    for await (const w of env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs++;
      const history = await env.client.workflow.getHandle(workflowId, w.runId).fetchHistory();
      expect(history.events!.length).toBeLessThan(10_000);
    }
    expect(runs).toBe(result.runs);
    expect(new Set(ledger(h)).size).toBe(1004);
  });
});
