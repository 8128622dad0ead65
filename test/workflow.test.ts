import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { addDays, daysIn, graph, selectAssets } from '../assets';
import { startMaterialize } from '../client/runs';
import { carriedResult } from '../client/watch';
import { loadConfig, type Config } from '../config/config';
import { readLakeStatus } from '../lake/status';
import { openLake } from '../lake/store';
import { createActivities, leaseWorkflowId } from '../activities';
import { leaseStateQuery, materialize } from '../workflows';
import { SA_ASSETS, SA_MONTHS, SA_PARTITION_START, SA_RUN_KIND } from '../workflows/search-attributes';
import { workflowMetadataQuery } from '@temporalio/workflow';
import type { MaterializeInput, MaterializeResult, SparkifyActivities } from '../workflows/types';
import { FAKE_CODE, scriptedActivities, type StepScript } from './helpers/scripted';
import { createTemporalEnv, workflowBundle } from './helpers/temporal';

// The lake's tables: these tests are about the lake (the warehouse steps have test/warehouse.test.ts).
const LAKE = '+songplays,time';
const LAKE_ASSETS = selectAssets(graph, LAKE);

jest.setTimeout(120_000);

const RANGE = { start: '2018-11-01', end: '2018-11-03' };

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
  dir: string;
  rawDir: string;
  events: string;
}

/** A lake, raw data (a song file and a log file per day of November 2018) and a task queue. */
function harness(fuse: 'none' | 'daily' | 'all' = 'none'): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'sparkify-wf-'));
  const rawDir = join(dir, 'raw');
  mkdirSync(join(rawDir, 'song_data/A/B/C'), { recursive: true });
  writeFileSync(join(rawDir, 'song_data/A/B/C/TRAAAAA.json'), '{"song_id":"S1"}');
  mkdirSync(join(rawDir, 'log_data/2018/11'), { recursive: true });
  for (const day of daysIn({ start: '2018-11-01', end: '2018-12-01' })) {
    writeFileSync(join(rawDir, `log_data/2018/11/${day}-events.json`), `{"day":"${day}"}\n`);
  }
  const config = loadConfig({
    env: {
      SPARKIFY_TEMPORAL_TASK_QUEUE: `wf-${randomUUID()}`,
      SPARKIFY_RAW_URI: rawDir,
      SPARKIFY_LAKE_URI: join(dir, 'lake'),
      SPARKIFY_CODE_URI: join(dir, 'code'),
      SPARKIFY_EMR_FUSE_STEPS: fuse,
    },
  });
  return { config, dir, rawDir, events: join(dir, 'events.txt') };
}

/** A worker of the scripted activities, `adjust`ed if given (a test's own replacements). */
async function withWorker<T>(
  h: Harness,
  script: StepScript,
  fn: () => Promise<T>,
  adjust: (activities: SparkifyActivities) => SparkifyActivities = (a) => a,
): Promise<T> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: h.config.temporal.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: adjust(
      scriptedActivities(h.config, openLake(h.config.storage.lake), {
        events: h.events,
        ...script,
      }),
    ),
    maxConcurrentActivityTaskExecutions: 50,
  });
  return worker.runUntil(fn());
}

interface StepSpan {
  label: string;
  start: number;
  end: number;
}

/** Steps as the scripted EMR saw them: when each started and ended. */
function spans(h: Harness): StepSpan[] {
  if (!existsSync(h.events)) return [];
  const lines = readFileSync(h.events, 'utf8').trim().split('\n');
  const out: StepSpan[] = [];
  const open = new Map<string, number[]>();
  for (const line of lines) {
    const [what, label, at] = line.split(' ') as [string, string, string];
    if (what === 'started') open.set(label, [...(open.get(label) ?? []), Number(at)]);
    if (what === 'ended') out.push({ label, start: open.get(label)!.shift()!, end: Number(at) });
  }
  return out;
}

const stepsRun = (h: Harness) => spans(h).map((s) => s.label);

function run(h: Harness, input: Partial<MaterializeInput>, workflowId = `wf-${randomUUID()}`) {
  return env.client.workflow.execute(materialize, {
    taskQueue: h.config.temporal.taskQueue,
    workflowId,
    args: [{ selection: LAKE, range: RANGE, fuse: h.config.emr.fuseSteps, ...input }],
  });
}

/** The result of a run that may fail: a failed run carries it in its failure. */
async function settle(p: Promise<MaterializeResult>): Promise<MaterializeResult> {
  try {
    return await p;
  } catch (err) {
    const carried = carriedResult<MaterializeResult>(err);
    if (!carried) throw err;
    return carried;
  }
}

const statusOf = (r: MaterializeResult) => Object.fromEntries(r.assets.map((a) => [a.asset, a.status]));

test('steps run in dependency order, independent ones in parallel up to the bound', async () => {
  const h = harness();
  const result = await withWorker(h, { durationMs: 600 }, () => run(h, { maxParallelSteps: 2 }));
  expect(result.ok).toBe(true);
  expect(statusOf(result)).toEqual({
    songs: 'materialized',
    artists: 'materialized',
    users: 'materialized',
    time: 'materialized',
    songplays: 'materialized',
  });
  const s = new Map(spans(h).map((x) => [x.label.split('@')[0]!, x]));
  expect(s.get('songplays')!.start).toBeGreaterThanOrEqual(s.get('song_tables')!.end);
  expect(s.get('songplays')!.start).toBeGreaterThanOrEqual(s.get('users')!.end);
  const all = [...s.values()];
  const maxAtOnce = Math.max(...all.map((a) => all.filter((b) => b.start < a.end && a.start < b.end).length));
  expect(maxAtOnce).toBe(2);
  expect(result.codeVersion).toBe(FAKE_CODE.hash);
  expect(result.assets.find((a) => a.asset === 'songs')!.step).toBe('song_tables');
});

test('a recorded history replays deterministically against the current workflow code', async () => {
  const h = harness();
  const workflowId = `replay-${randomUUID()}`;
  await withWorker(h, { fail: ['users@2018-11-01'] }, () => settle(run(h, {}, workflowId)));
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  // Throws DeterminismViolationError if the code would make different decisions on replay.
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
});

test('a run recorded before leases were asked for by local activity replays against the current code', async () => {
  // Recorded on 2026-11-28 from a fused two-day run of the lake: its leases were asked for by
  // regular activities and released by local ones (the RELEASE patch). A deploy must not break
  // the runs in flight: the current code must make the same decisions on their histories.
  const H = temporal.api.history.v1.History;
  const recorded = H.fromObject(
    JSON.parse(
      readFileSync(join(__dirname, 'fixtures/histories/materialize-lease-by-activity.json'), 'utf8'),
    ),
  );
  const types = recorded.events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
  expect(types.filter((t) => t === 'requestLease')).toHaveLength(2);
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, recorded, 'recorded');
});

test('a run replays whatever order its local activities came back in', async () => {
  // Units without dependencies between them (song_tables, users) ask for their leases at once.
  // When one chain of local activities (lease, prepare, then the EMR step) runs ahead of the
  // other's, the replay must still issue the same commands: the worker replays a run on every
  // cache eviction, query and restart. Delays: a slow lease for either unit, then every
  // bookkeeping call slowed by a varying few tens of ms.
  const slowed = (activities: SparkifyActivities, delayMs: (name: string, input: unknown) => number) =>
    Object.fromEntries(
      Object.entries(activities).map(([name, fn]) => [
        name,
        async (input: unknown) => {
          await new Promise((r) => setTimeout(r, delayMs(name, input)));
          return (fn as (i: unknown) => Promise<unknown>)(input);
        },
      ]),
    ) as unknown as SparkifyActivities;
  const leaseOf = (input: unknown) => (input as { request?: { requestId: string } }).request?.requestId ?? '';
  let n = 0;
  const delays: ((name: string, input: unknown) => number)[] = [
    (name, input) => (name === 'tryRequestLease' && leaseOf(input).endsWith('/song_tables') ? 400 : 0),
    (name, input) => (name === 'tryRequestLease' && leaseOf(input).endsWith('/users') ? 400 : 0),
    (name) => (name === 'runStep' ? 0 : ((n++ * 37) % 90) + 5),
  ];
  for (const delayMs of delays) {
    const h = harness();
    const workflowId = `order-${randomUUID()}`;
    const result = await withWorker(
      h,
      {},
      () => run(h, { selection: '+songplays', maxParallelSteps: 2 }, workflowId),
      (activities) => slowed(activities, delayMs),
    );
    expect(result.ok).toBe(true);
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
  }
});

test('a lease request the lease workflow does not answer in time is asked again by a regular activity, as the same request', async () => {
  const h = harness();
  const lake = openLake(h.config.storage.lake);
  const activities = createActivities(h.config, {
    lake,
    raw: openLake(h.config.storage.raw),
    temporalClient: () => env.client,
  });
  const request = {
    requestId: `wf/run/users-${randomUUID()}`,
    holder: { workflowId: 'wf', runId: 'run' },
    claims: [{ key: 'users', range: null }],
    ttlMs: 60_000,
    label: 'users (whole table) (wf)',
  };
  // No worker polls the task queue yet: the lease workflow starts but cannot answer.
  const startedAt = Date.now();
  expect(await activities.tryRequestLease({ request, answerWithinMs: 300 })).toBeNull();
  expect(Date.now() - startedAt).toBeLessThan(5_000);
  const leaseId = leaseWorkflowId(lake.uri);
  await withWorker(h, {}, async () => {
    expect(await activities.requestLease(request)).toEqual({
      leaseWorkflowId: leaseId,
      granted: true,
      heldBy: [],
    });
    const state = await env.client.workflow.getHandle(leaseId).query(leaseStateQuery);
    expect(state.held.map((g) => g.requestId)).toEqual([request.requestId]);
    expect(state.waiting).toEqual([]);
    await activities.releaseLease({ leaseWorkflowId: leaseId, requestId: request.requestId });
  });

  // In a run: a local request that comes back unanswered falls back to the activity.
  const fallback = harness();
  const workflowId = `fallback-${randomUUID()}`;
  const result = await withWorker(
    fallback,
    {},
    () => run(fallback, { selection: 'songplays', only: 'all' }, workflowId),
    (activities) => ({ ...activities, tryRequestLease: async () => null }),
  );
  expect(result.ok).toBe(true);
  const scheduled = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events!.flatMap(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
  );
  expect(scheduled.filter((name) => name === 'requestLease')).toHaveLength(1);
});

test('a failed step skips its downstream assets while unrelated ones go on, and the run is Failed', async () => {
  const h = harness();
  const workflowId = `fail-${randomUUID()}`;
  const outcome = await withWorker(h, { fail: ['song_tables@2018-11-01'] }, () =>
    run(h, {}, workflowId).then(
      () => null,
      (err: unknown) => err,
    ),
  );
  // Failed, not Completed: found by ExecutionStatus and by the assets that failed.
  expect(outcome).toBeInstanceOf(WorkflowFailedError);
  const failure = (outcome as WorkflowFailedError).cause as ApplicationFailure;
  expect(failure.type).toBe('MaterializationFailed');
  expect(failure.message).toMatch(/^songs failed: scripted failure of song_tables@2018-11-01/);
  const result = failure.details![0] as MaterializeResult;
  const status = Object.fromEntries(result.assets.map((a) => [a.asset, a]));
  expect(status.songs!.status).toBe('failed');
  expect(status.songs!.reason).toMatch(/^scripted failure of song_tables@2018-11-01 — EMR step/);
  expect(status.songs!.logFile).toBe('file:///logs/song_tables@2018-11-01/stderr');
  expect(status.artists!.status).toBe('failed');
  expect(status.songplays!.status).toBe('skipped');
  expect(status.songplays!.reason).toMatch(/upstream (songs|artists) failed/);
  expect(status.users!.status).toBe('materialized');
  expect(status.time!.status).toBe('materialized');
  expect(stepsRun(h)).not.toContain('songplays@2018-11-01');
  const found: string[] = [];
  for await (const w of env.client.workflow.list({
    query: `ExecutionStatus = 'Failed' AND SparkifyFailedAssets = 'songs' AND TaskQueue = '${h.config.temporal.taskQueue}'`,
  })) {
    found.push(w.workflowId);
  }
  expect(found).toEqual([workflowId]);
});

test('what is up to date is not rebuilt; --force rebuilds; --only-failed rebuilds exactly the failed partitions', async () => {
  const h = harness();
  await withWorker(h, { fail: ['songplays@2018-11-02'] }, async () => {
    // Fails songplays for the 2nd only: the 1st and the 2nd are separate ranges of two runs.
    await settle(run(h, { range: { start: '2018-11-01', end: '2018-11-02' } }));
    await settle(
      run(h, { selection: 'users,time,songplays', range: { start: '2018-11-02', end: '2018-11-03' } }),
    );
  });
  expect(stepsRun(h).sort()).toEqual([
    'song_tables@2018-11-01',
    'songplays@2018-11-01',
    'songplays@2018-11-02',
    'time@2018-11-01',
    'time@2018-11-02',
    'users@2018-11-01',
    'users@2018-11-02',
  ]);
  const before = stepsRun(h).length;

  const again = await withWorker(h, {}, () => settle(run(h, { only: 'failed' })));
  expect(statusOf(again)).toEqual({
    songs: 'filtered',
    artists: 'filtered',
    users: 'filtered',
    time: 'filtered',
    songplays: 'materialized',
  });
  expect(again.assets.find((a) => a.asset === 'songplays')!.ranges).toEqual([
    { start: '2018-11-02', end: '2018-11-03' },
  ]);
  expect(stepsRun(h).slice(before)).toEqual(['songplays@2018-11-02']);

  const fresh = await withWorker(h, {}, () => run(h, {}));
  expect(new Set(Object.values(statusOf(fresh)))).toEqual(new Set(['up_to_date']));
  expect(stepsRun(h)).toHaveLength(before + 1);

  const forced = await withWorker(h, {}, () => run(h, { only: 'all' }));
  expect(new Set(Object.values(statusOf(forced)))).toEqual(new Set(['materialized']));
  expect(stepsRun(h)).toHaveLength(before + 1 + 4);
});

test('runs writing the same whole-table state are serialised; runs writing other days are not', async () => {
  const h = harness();
  const days = ['2018-11-05', '2018-11-06', '2018-11-07'];
  const results = await withWorker(h, { durationMs: 700 }, () =>
    Promise.all(
      days.map((d) =>
        startMaterialize(env.client, h.config, {
          selection: 'users,time',
          range: { start: d, end: addDays(d, 1) },
        }).then((s) => s.handle.result()),
      ),
    ),
  );
  expect(results.every((r) => r.ok)).toBe(true);
  const users = spans(h).filter((s) => s.label.startsWith('users@'));
  const time = spans(h).filter((s) => s.label.startsWith('time@'));
  expect(users).toHaveLength(3);
  const overlaps = (xs: StepSpan[]) =>
    xs.some((a) => xs.some((b) => a !== b && a.start < b.end && b.start < a.end));
  // users rewrites _state/user_current and the users table as a whole: one at a time.
  expect(overlaps(users)).toBe(false);
  // time writes only its own days: the three runs' time steps ran side by side.
  expect(overlaps(time)).toBe(true);
});

test('the same materialization started twice is joined, not run twice', async () => {
  const h = harness();
  const result = await withWorker(h, { durationMs: 1500 }, async () => {
    const range = { start: '2018-11-05', end: '2018-11-06' };
    const first = await startMaterialize(env.client, h.config, { selection: 'time', range });
    const second = await startMaterialize(env.client, h.config, { selection: 'time', range });
    expect(first.joined).toBe(false);
    expect(second.joined).toBe(true);
    expect(second.handle.workflowId).toBe('materialize-time-2018-11-05');
    expect((await second.handle.describe()).runId).toBe((await first.handle.describe()).runId);
    return first.handle.result();
  });
  expect(result.ok).toBe(true);
  expect(stepsRun(h)).toEqual(['time@2018-11-05']);
});

test('staleness by data: a changed code version or day of log_data makes exactly the right partitions stale, and --only-stale rebuilds them', async () => {
  const h = harness();
  const lake = openLake(h.config.storage.lake);
  const raw = openLake(h.config.storage.raw);
  const range = { start: '2018-11-01', end: '2018-11-04' };
  const stale = async (codeVersion = FAKE_CODE.hash) =>
    (await readLakeStatus(lake, raw, { days: daysIn(range), codeVersion })).cells
      .filter((c) => c.state === 'stale')
      .map((c) => `${c.asset}/${c.partition}`)
      .sort();
  await withWorker(h, {}, () => run(h, { range }));
  expect(await stale()).toEqual([]);

  // A rebuild of songs that writes the same data leaves songplays up to date.
  await withWorker(h, {}, () => run(h, { selection: 'songs', range, only: 'all' }));
  expect(await stale()).toEqual([]);
  // One that writes other data makes every songplays day that read it stale.
  await withWorker(h, { dataSalt: 'new catalogue' }, () =>
    run(h, { selection: 'songs', range, only: 'all' }),
  );
  expect(await stale()).toEqual(['songplays/2018-11-01', 'songplays/2018-11-02', 'songplays/2018-11-03']);
  const n = stepsRun(h).length;
  await withWorker(h, { dataSalt: 'new catalogue' }, () => run(h, { range, only: 'stale' }));
  expect(stepsRun(h).slice(n)).toEqual(['songplays@2018-11-01']);
  expect(await stale()).toEqual([]);

  // One day's log file changes: that day of every asset reading log_data is stale, nothing else.
  writeFileSync(join(h.rawDir, 'log_data/2018/11/2018-11-02-events.json'), '{"day":"corrected"}\n');
  expect(await stale()).toEqual(['songplays/2018-11-02', 'time/2018-11-02', 'users/2018-11-02']);
  const m = stepsRun(h).length;
  await withWorker(h, { dataSalt: 'new catalogue' }, () => run(h, { range, only: 'stale' }));
  expect(stepsRun(h).slice(m).sort()).toEqual([
    'songplays@2018-11-02',
    'time@2018-11-02',
    'users@2018-11-02',
  ]);
  expect(await stale()).toEqual([]);

  // New code: everything is stale, with the reason.
  const other = 'abcdefabcdef0002';
  const cells = (
    await readLakeStatus(lake, raw, {
      assets: selectAssets(graph, LAKE),
      days: daysIn(range),
      codeVersion: other,
    })
  ).cells;
  expect(cells.every((c) => c.state === 'stale')).toBe(true);
  expect(cells[0]!.reason).toBe(`code changed: built with ${FAKE_CODE.hash}, now ${other}`);
});

test('a run is findable by its assets, months and kind whether or not its starter set them', async () => {
  const h = harness();
  const range = { start: '2018-11-30', end: '2018-12-02' };
  const upsertsOf = async (workflowId: string) => {
    const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events!;
    return {
      memo: events.filter((e) => e.workflowPropertiesModifiedEventAttributes).length,
      searchAttributes: events.flatMap((e) =>
        Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}),
      ),
    };
  };
  const { byCli, plain } = await withWorker(h, {}, async () => {
    // The CLI sets them at start; a plain client start (a script, the Temporal CLI) does not.
    const { handle } = await startMaterialize(env.client, h.config, { selection: 'time', range });
    await handle.result();
    const plainId = `plain-${randomUUID()}`;
    await run(h, { selection: 'time', range }, plainId);
    return { byCli: handle.workflowId, plain: plainId };
  });
  for (const workflowId of [byCli, plain]) {
    const d = await env.client.workflow.getHandle(workflowId).describe();
    expect(d.typedSearchAttributes.get(SA_ASSETS)).toEqual(['time']);
    expect(d.typedSearchAttributes.get(SA_MONTHS)).toEqual(['2018-11', '2018-12']);
    expect(d.typedSearchAttributes.get(SA_PARTITION_START)).toBe('2018-11-30');
    expect(d.typedSearchAttributes.get(SA_RUN_KIND)).toBe('manual');
    expect(d.memo).toEqual({ selection: 'time', assets: ['time'], range, only: 'outdated' });
  }
  expect(await upsertsOf(byCli)).toEqual({ memo: 0, searchAttributes: ['TemporalChangeVersion'] });
  expect(await upsertsOf(plain)).toEqual({
    memo: 1,
    searchAttributes: expect.arrayContaining(['SparkifyAssets', 'TemporalChangeVersion']),
  });
});

test('invalid workflow input fails the run before any step starts', async () => {
  const h = harness();
  await withWorker(h, {}, async () => {
    const bad = run(h, { selection: 'nope', range: { start: '2018-11-03', end: '2018-11-01' } });
    await expect(bad).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/range: the range is empty: end must be after start/) },
    });
  });
  expect(stepsRun(h)).toHaveLength(0);
});

test('the Temporal Web UI tells the story: a summary and details per run, a summary per activity, current details', async () => {
  const h = harness();
  const range = { start: '2018-11-01', end: '2018-11-03' };
  // A query needs a worker: the details are read while one polls.
  const { result, metadata } = await withWorker(h, {}, async () => {
    const { handle } = await startMaterialize(env.client, h.config, { selection: '+songplays', range });
    return { result: await handle.result(), metadata: await handle.query(workflowMetadataQuery) };
  });
  const handle = env.client.workflow.getHandle(result.workflowId);
  const described = await handle.describe();
  expect(await described.staticSummary()).toBe(
    'songs, artists, users, songplays · 2018-11-01..2018-11-02 · manual',
  );
  const details = await described.staticDetails();
  expect(details).toContain('| days | 2018-11-01 → 2018-11-02 (both included) |');
  expect(details).toContain(`| lake | \`${h.config.storage.lake}\` |`);
  expect(metadata.currentDetails).toContain('| asset | status | rows | EMR step | seconds | log |');
  expect(metadata.currentDetails).toContain('| songplays | materialized | 20 | s-songplays@2018-11-01 |');
  // Activities and local activities (bookkeeping: markers in the history) alike; the other
  // markers (patches) carry no summary.
  const summaries = (await handle.fetchHistory())
    .events!.filter(
      (e) =>
        e.activityTaskScheduledEventAttributes ||
        e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
    )
    .map((e) => defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary!));
  expect(summaries).toEqual(
    expect.arrayContaining([
      'publish the Spark code',
      'lease users (whole table)',
      'lease songplays 2018-11-01..2018-11-02',
      'lease song_tables (whole table)',
      'EMR step song_tables',
      'EMR step songplays 2018-11-01..2018-11-02',
      'record songplays 2018-11-01..2018-11-02',
      'release songplays 2018-11-01..2018-11-02',
    ]),
  );
});

test('fused daily steps: one EMR step for users, time and songplays, each asset recorded on its own; a failed check fails only its asset', async () => {
  const h = harness('daily');
  const lake = openLake(h.config.storage.lake);
  const raw = openLake(h.config.storage.raw);
  const first = await withWorker(h, {}, () => run(h, { range: { start: '2018-11-01', end: '2018-11-03' } }));
  expect(statusOf(first)).toEqual({
    songs: 'materialized',
    artists: 'materialized',
    users: 'materialized',
    time: 'materialized',
    songplays: 'materialized',
  });
  expect(stepsRun(h)).toEqual(['song_tables@2018-11-01', 'users+time+songplays@2018-11-01']);
  const cells = (
    await readLakeStatus(lake, raw, {
      assets: LAKE_ASSETS,
      days: ['2018-11-01', '2018-11-02'],
      codeVersion: FAKE_CODE.hash,
    })
  ).cells;
  // Every partition up to date: songplays recorded the users versions its own step just wrote.
  expect(cells.filter((c) => c.state !== 'materialized')).toEqual([]);

  // A new day whose songplays check fails: users and time of that day are published all the same.
  const next = await withWorker(h, { failChecks: ['songplays@2018-11-03'] }, () =>
    settle(run(h, { range: { start: '2018-11-03', end: '2018-11-04' } })),
  );
  expect(statusOf(next)).toEqual({
    songs: 'up_to_date',
    artists: 'up_to_date',
    users: 'materialized',
    time: 'materialized',
    songplays: 'failed',
  });
  const songplays = next.assets.find((a) => a.asset === 'songplays')!;
  expect(songplays.reason).toMatch(
    /^users table missing: materialize users for these days first \(songplays.user_id in users: 73 failing rows, e.g. 3, 9\) — EMR step s-users\+time\+songplays@2018-11-03 FAILED/,
  );
  const day3 = (
    await readLakeStatus(lake, raw, {
      assets: LAKE_ASSETS,
      days: ['2018-11-03'],
      codeVersion: FAKE_CODE.hash,
    })
  ).cells;
  expect(Object.fromEntries(day3.map((c) => [c.asset, c.state]))).toMatchObject({
    users: 'materialized',
    time: 'materialized',
    songplays: 'failed',
  });
});
