/**
 * The page in a real browser on a real stack: Debian's Chromium driven by playwright-core, a real
 * Temporal dev server, a worker with scripted steps (test/helpers/scripted.ts) and the page's
 * server. Set SPARKIFY_UI_SCREENSHOTS=docs to keep a screenshot of each main view.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Page } from 'playwright-core';
import { daysIn, graph } from '../assets';
import { carriedResult } from '../client/watch';
import { loadConfig, type Config } from '../config/config';
import { launchChromium, type Chromium } from '../dev/chromium';
import { IndexReader } from '../lake/partition-index';
import { openLake, type Lake } from '../lake/store';
import { startUiServer, type UiServer } from '../ui/server';
import { materialize } from '../workflows';
import type { MaterializeInput, MaterializeResult } from '../workflows/types';
import { FAKE_CODE, scriptedActivities, type StepScript } from './helpers/scripted';
import { createTemporalEnv, workflowBundle } from './helpers/temporal';

jest.setTimeout(180_000);

const SHOTS = process.env.SPARKIFY_UI_SCREENSHOTS ? resolve(process.env.SPARKIFY_UI_SCREENSHOTS) : null;

let env: TestWorkflowEnvironment;
let chromium: Chromium;
let server: UiServer;
let config: Config;
let lake: Lake;

/** Rows that vary by day, so the charts have something to show. */
const rows = (asset: string, day: string) =>
  asset === 'songs' || asset === 'artists'
    ? 300
    : Math.round((asset === 'time' ? 2400 : 2000) + 600 * Math.sin(Number(day.slice(8)) / 2.5));

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sparkify-ui-'));
  const rawDir = join(dir, 'raw');
  mkdirSync(join(rawDir, 'song_data/A/B/C'), { recursive: true });
  writeFileSync(join(rawDir, 'song_data/A/B/C/TRAAAAA.json'), '{"song_id":"S1"}');
  mkdirSync(join(rawDir, 'log_data/2018/11'), { recursive: true });
  for (const day of daysIn({ start: '2018-11-01', end: '2018-12-01' })) {
    writeFileSync(join(rawDir, `log_data/2018/11/${day}-events.json`), `{"day":"${day}"}\n`);
  }
  config = loadConfig({
    env: {
      SPARKIFY_TEMPORAL_TASK_QUEUE: `ui-${randomUUID()}`,
      SPARKIFY_RAW_URI: rawDir,
      SPARKIFY_LAKE_URI: join(dir, 'lake'),
      SPARKIFY_CODE_URI: join(dir, 'code'),
    },
  });
  lake = openLake(config.storage.lake);
  [env, chromium] = await Promise.all([createTemporalEnv(), launchChromium(), workflowBundle()]);
  server = await startUiServer({
    config,
    lake,
    temporal: async () => env.client,
    port: 0,
    codeVersion: async () => FAKE_CODE.hash,
    inputsTtlMs: 0,
  });
});

afterAll(async () => {
  await server?.close();
  await chromium?.close();
  await env?.teardown();
});

/** Runs `fn` with a worker (scripted steps) on the page's task queue. */
async function withWorker<T>(script: StepScript, fn: () => Promise<T>) {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: config.temporal.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: scriptedActivities(config, lake, { rows, durationMs: 150, ...script }),
    maxConcurrentActivityTaskExecutions: 20,
  });
  return worker.runUntil(fn());
}

async function run(input: Partial<MaterializeInput>) {
  try {
    return await env.client.workflow.execute(materialize, {
      taskQueue: config.temporal.taskQueue,
      workflowId: `ui-test-${randomUUID()}`,
      args: [{ selection: '*', range: { start: '2018-11-01', end: '2018-11-02' }, ...input }],
    });
  } catch (err) {
    const carried = carriedResult<MaterializeResult>(err);
    if (!carried) throw err;
    return carried;
  }
}

/** Errors the pages threw; none is expected. */
const pageErrors: string[] = [];
afterEach(() => expect(pageErrors.splice(0)).toEqual([]));

async function open(path: string): Promise<Page> {
  const page = await chromium.context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`${path}: ${err.message}`));
  await page.goto(`${server.url}${path}`);
  await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 30_000 });
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `ui-${name}.png`), fullPage: true });
}

const cell = (dayIndex: number, assetIndex: number, monthIndex = 0) =>
  `.hm .row[data-m="${monthIndex}"][data-a="${assetIndex}"] i:nth-of-type(${dayIndex})`;
// The heatmap's rows per month: the daily assets in graph order.
const USERS = 0;
const TIME = 1;
const SONGPLAYS = 2;

describe('on a real stack', () => {
  beforeAll(async () => {
    // November 1–20 built; then users for the 21st–22nd fails; then songs is rebuilt with other
    // data, so every songplays day built from the old songs is stale.
    await withWorker({}, () => run({ range: { start: '2018-11-01', end: '2018-11-21' } }));
    const failed = await withWorker({ fail: ['users@2018-11-21'] }, () =>
      run({ selection: 'users', range: { start: '2018-11-21', end: '2018-11-23' } }),
    );
    expect(failed.ok).toBe(false);
    await withWorker({ dataSalt: 'rebuilt' }, () =>
      run({ selection: 'songs', range: { start: '2018-11-01', end: '2018-11-02' }, only: 'all' }),
    );
  });

  test('the activities keep the partition index the page reads', async () => {
    const index = await new IndexReader(lake).read(['users', 'songs']);
    expect(index.get('users')!.size).toBe(22);
    expect(index.get('users')!.get('2018-11-21')!.last).toMatchObject({
      status: 'failed',
      stepId: 's-users@2018-11-21',
    });
    expect(index.get('songs')!.get('all')!.last.status).toBe('materialized');
  });

  test('the overview draws the declared graph, each asset with its state, last materialization and rows', async () => {
    const page = await open('/');
    const nodes = await page
      .locator('svg.graph g.node')
      .evaluateAll((gs) => gs.map((g) => g.getAttribute('data-asset')));
    // Every asset of the declaration, in its order: the lake's tables, then the serving database's.
    expect(nodes).toEqual(graph.order);
    expect(nodes.slice(0, 5)).toEqual(['songs', 'artists', 'users', 'time', 'songplays']);
    const users = page.locator('svg.graph g.node[data-asset="users"]');
    await expect(users.textContent()).resolves.toMatch(/failed · 20\/22 days, 2 failed/);
    await expect(page.locator('svg.graph g.node[data-asset="songplays"]').textContent()).resolves.toMatch(
      /stale/,
    );
    const songsRow = page.locator('#assets tr[data-asset="songs"]');
    await expect(songsRow.textContent()).resolves.toMatch(/materialized/);
    await expect(page.locator('#assets tr[data-asset="time"] td').nth(10).textContent()).resolves.toBe(
      daysIn({ start: '2018-11-01', end: '2018-11-21' })
        .reduce((n, d) => n + rows('time', d), 0)
        .toLocaleString('en-US'),
    );
    await shot(page, 'overview');
    await page.close();
  });

  test('after a failing run the partition shows as failed, with its reason on hover and on its page', async () => {
    const page = await open('/health.html?from=2018-11&to=2018-11');
    await expect(page.locator(cell(21, USERS)).getAttribute('class')).resolves.toBe('f');
    await expect(page.locator(cell(20, USERS)).getAttribute('class')).resolves.toBe('m');
    await expect(page.locator(cell(5, SONGPLAYS)).getAttribute('class')).resolves.toBe('s');
    await expect(page.locator(cell(25, TIME)).getAttribute('class')).resolves.toBe('x');
    await page.hover(cell(21, USERS));
    await expect(page.locator('#tip').textContent()).resolves.toMatch(
      /^users 2018-11-21 — failed: scripted failure of users@2018-11-21/,
    );
    await page.hover(cell(5, SONGPLAYS));
    await expect(page.locator('#tip').textContent()).resolves.toMatch(
      /stale: upstream songs changed \(data version/,
    );
    await shot(page, 'health');
    await page.click(cell(21, USERS));
    await page.waitForURL(/partition\.html\?asset=users&partition=2018-11-21/);
    await page.waitForSelector('body[data-ready]', { state: 'attached' });
    await expect(page.locator('#reason').textContent()).resolves.toMatch(
      /scripted failure of users@2018-11-21 — EMR step s-users@2018-11-21 FAILED/,
    );
    await expect(page.locator('#state-line').textContent()).resolves.toBe('failed its latest run failed');
    await expect(page.locator('#facts').textContent()).resolves.toMatch(/s-users@2018-11-21/);
    expect(await page.locator('#history tbody tr').count()).toBe(1);
    // The failure's reason names the step's log; the history does not repeat it.
    const history = (await page.locator('#history tbody td.reason').textContent()) ?? '';
    expect(history.split('file:///logs/users@2018-11-21/stderr').length - 1).toBe(1);
    const link = await page.locator('#temporal-link').getAttribute('href');
    expect(decodeURIComponent(link!)).toBe(
      `http://127.0.0.1:8233/namespaces/default/workflows?query=SparkifyAssets = 'users' AND SparkifyMonths = '2018-11'`,
    );
    // The runs Temporal knows of for this partition, by that query.
    await page.waitForSelector('#temporal-runs tbody tr td a');
    await expect(page.locator('#temporal-runs tbody').textContent()).resolves.toMatch(/FAILED|failed/);
    // and why that run failed, as on the runs page
    await expect(page.locator('#temporal-runs .failure').first().textContent()).resolves.toMatch(
      /^users failed: scripted failure of users@2018-11-21/,
    );
    await shot(page, 'partition');
    await page.close();
  });

  test('the runs page says why a failed run failed, not only which assets', async () => {
    const page = await open('/runs.html');
    await page.waitForSelector('#runs .failure');
    await expect(page.locator('#runs .failure').first().textContent()).resolves.toMatch(
      /^users failed: scripted failure of users@2018-11-21 — EMR step s-users@2018-11-21 FAILED/,
    );
    await page.close();
  });

  test("an asset's page plots its rows and each partition's duration and estimated cost", async () => {
    const page = await open('/asset.html?asset=time');
    await expect(page.locator('#rows svg path.line').count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('#cost svg rect.bar').count()).resolves.toBe(20);
    await expect(page.locator('#totals').textContent()).resolves.toMatch(/1 EMR steps, .* ≈ \$0\.\d+/);
    await shot(page, 'asset');
    await page.close();
  });

  test('a partition a running materialization covers shows as running', async () => {
    await withWorker({ durationMs: 6_000 }, async () => {
      const handle = await env.client.workflow.start(materialize, {
        taskQueue: config.temporal.taskQueue,
        workflowId: `ui-running-${randomUUID()}`,
        args: [{ selection: 'time', range: { start: '2018-11-25', end: '2018-11-27' } }],
      });
      // Visibility is eventually consistent: wait until the list sees it running, with the
      // search attributes its first workflow task sets.
      const query = `WorkflowId = '${handle.workflowId}' AND SparkifyAssets = 'time' AND ExecutionStatus = 'Running'`;
      const deadline = Date.now() + 20_000;
      while ((await env.client.workflow.count(query)).count === 0) {
        if (Date.now() > deadline) throw new Error(`not listed as running: ${query}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const page = await open('/health.html?from=2018-11&to=2018-11');
      await expect(page.locator(cell(25, TIME)).getAttribute('class')).resolves.toBe('r');
      await expect(page.locator(cell(26, TIME)).getAttribute('class')).resolves.toBe('r');
      await expect(page.locator(cell(27, TIME)).getAttribute('class')).resolves.toBe('x');
      const runs = await open('/runs.html');
      await runs.waitForSelector(`tr[data-workflow="${handle.workflowId}"] .progress`);
      await page.close();
      await runs.close();
      await handle.result();
    });
  });

  test('launching a materialization from the page starts a workflow the Temporal API sees', async () => {
    await withWorker({}, async () => {
      const page = await open('/runs.html');
      // The forms start at the lake's days (November 2018 here), not at today's date.
      const lastDay = await page.inputValue('#materialize [name=from]');
      expect(lastDay).toMatch(/^2018-11-\d\d$/);
      await expect(page.inputValue('#materialize [name=to]')).resolves.toBe(lastDay);
      await expect(page.inputValue('#backfill [name=from]')).resolves.toBe('2018-11');
      await expect(page.inputValue('#backfill [name=to]')).resolves.toBe('2018-11');
      await page.fill('#materialize [name=selection]', 'time');
      await page.fill('#materialize [name=from]', '2018-11-28');
      await page.fill('#materialize [name=to]', '2018-11-29');
      await page.click('#materialize button[type=submit]');
      const workflowId = await page.locator('#started-workflow').textContent({ timeout: 30_000 });
      expect(workflowId).toBe('materialize-time-2018-11-28..2018-11-29');
      const handle = env.client.workflow.getHandle(workflowId!);
      const described = await handle.describe();
      expect(described.type).toBe('materialize');
      expect(described.memo).toMatchObject({
        selection: 'time',
        range: { start: '2018-11-28', end: '2018-11-30' },
      });
      const result = (await handle.result()) as MaterializeResult;
      expect(result.assets.map((a) => a.status)).toEqual(['materialized']);
      await page.close();
    });
  });

  test("a backfill's plan is shown before it starts, and starting runs that plan", async () => {
    await withWorker({}, async () => {
      const page = await open('/runs.html');
      await page.fill('#backfill [name=selection]', 'time');
      await page.fill('#backfill [name=from]', '2018-11');
      await page.fill('#backfill [name=to]', '2018-12');
      await expect(page.locator('#start-backfill').isDisabled()).resolves.toBe(true);
      await page.click('#backfill button[type=submit]');
      await page.waitForSelector('#plan:not([hidden])');
      const plan = await page.locator('#plan').textContent();
      expect(plan).toMatch(/^Plan for time — builds what is not up to date/);
      expect(plan).toMatch(/time\s+24 materialized, 37 missing/);
      expect(plan).toMatch(/2018-11: time 2018-11-21\.\.2018-11-24, 2018-11-27, 2018-11-30/);
      await expect(page.locator('#start-backfill').isEnabled()).resolves.toBe(true);
      await shot(page, 'runs');
      // A plan belongs to its arguments: change one and it must be made again.
      await page.fill('#backfill [name=to]', '2019-01');
      await expect(page.locator('#start-backfill').isDisabled()).resolves.toBe(true);
      await page.fill('#backfill [name=to]', '2018-12');
      await page.click('#backfill button[type=submit]');
      await page.waitForSelector('#start-backfill:not([disabled])');
      await page.click('#start-backfill');
      const workflowId = await page.locator('#started-backfill').textContent({ timeout: 30_000 });
      expect(workflowId).toBe('backfill-time-2018-11..2018-12');
      const described = await env.client.workflow.getHandle(workflowId!).describe();
      expect(described.type).toBe('backfill');
      await env.client.workflow.getHandle(workflowId!).result();
      await page.close();
    });
  });
});

describe('the API', () => {
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  test('refuses bad input with the field named, before anything starts', async () => {
    const r = await post('/api/materializations', {
      selection: 'plays',
      from: '2018-11-31',
      to: '2018-11-01',
    });
    expect(r.status).toBe(400);
    const { error } = (await r.json()) as { error: string };
    expect(error).toMatch(/selection: unknown asset "plays"/);
    expect(error).toMatch(/from: expected a UTC day/);
    const extra = await post('/api/backfills', {
      selection: '*',
      from: '2018-11',
      to: '2018-10',
      force: true,
    });
    expect(extra.status).toBe(400);
    expect(((await extra.json()) as { error: string }).error).toMatch(/Unrecognized key.*force/);
    expect((await fetch(`${server.url}/api/health?from=2018-13&to=2019-01`)).status).toBe(400);
    expect((await fetch(`${server.url}/api/partitions/users/all`)).status).toBe(400);
    expect((await fetch(`${server.url}/api/partitions/songs/2018-11-01`)).status).toBe(400);
  });

  test('a change must be JSON from the page itself (no cross-site requests)', async () => {
    const plan = { selection: 'time', from: '2018-11', to: '2018-11' };
    expect((await post('/api/backfills/plan', plan, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post('/api/backfills/plan', plan, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    const form = await fetch(`${server.url}/api/backfills/plan`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify(plan),
    });
    expect(form.status).toBe(415);
    expect((await post('/api/backfills/plan', plan, { origin: server.url })).status).toBe(200);
  });

  test('on loopback, a Host that is not loopback is refused (DNS rebinding)', async () => {
    const status = await new Promise<number>((res, rej) => {
      const req = request(`${server.url}/api/overview`, { headers: { host: 'evil.example' } }, (r) => {
        r.resume();
        res(r.statusCode!);
      });
      req.on('error', rej);
      req.end();
    });
    expect(status).toBe(403);
  });

  test('a token, when set, is required by every request; beyond loopback one is required', async () => {
    await expect(startUiServer({ config, lake, host: '0.0.0.0', port: 0 })).rejects.toThrow(
      /without a token: set SPARKIFY_UI_TOKEN/,
    );
    const token = 'a-token-for-the-test-0123';
    const guarded = await startUiServer({
      config,
      lake,
      temporal: async () => env.client,
      port: 0,
      token,
      codeVersion: async () => FAKE_CODE.hash,
    });
    try {
      expect((await fetch(`${guarded.url}/api/overview`)).status).toBe(401);
      expect((await fetch(`${guarded.url}/`)).status).toBe(401);
      const bearer = await fetch(`${guarded.url}/api/config`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(bearer.status).toBe(200);
      expect(
        (await fetch(`${guarded.url}/api/config`, { headers: { authorization: 'Bearer wrong' } })).status,
      ).toBe(401);
      // A person opens the address with ?token=…: a cookie, and the token leaves the address bar.
      const opened = await fetch(`${guarded.url}/health.html?token=${token}&from=2018-11`, {
        redirect: 'manual',
      });
      expect(opened.status).toBe(303);
      expect(opened.headers.get('location')).toBe('/health.html?from=2018-11');
      const cookie = opened.headers.get('set-cookie')!;
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Strict/);
      const withCookie = await fetch(`${guarded.url}/health.html`, {
        headers: { cookie: cookie.split(';')[0]! },
      });
      expect(withCookie.status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});
