import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openLake } from '../lake/store';
import { writeRun, type RunRecord } from '../lake/manifests';
import type { StatusCell } from '../lake/status';
import { projectBundle } from '../activities/code-bundle';
import { songDataFingerprint } from '../lake/fingerprints';
import { freePort } from './helpers/ports';
import { daysIn, graph } from '../assets';
import { loadConfig } from '../config/config';
import { demoStorage } from '../dev/demo';
import type { CellState } from '../lake/status';
import { dayRuler, renderGrid, renderSummary } from '../client/status';

const REPO = resolve(__dirname, '..');
const run = promisify(execFile);

/** Runs the real CLI; Temporal points at a closed port, so anything that tried to start would fail loudly. */
async function sparkify(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--require', 'tsx/cjs', join(REPO, 'client/main.ts'), ...args],
      {
        cwd: REPO,
        env: { ...process.env, SPARKIFY_TEMPORAL_ADDRESS: '127.0.0.1:9', ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test.each([
  [['materialize', '--select', 'plays', '--day', '2018-11-01'], /--select: unknown asset "plays"/],
  [['materialize', '--select', '*', '--day', '2018-11-31'], /--day: expected a UTC day as YYYY-MM-DD/],
  [['materialize', '--select', '*', '--day', '2018-11-01', '--month', '2018-11'], /exactly one of --day/],
  [
    ['materialize', '--select', '*', '--from', '2018-11-05', '--to', '2018-11-01'],
    /--to 2018-11-01 is before --from/,
  ],
  [
    ['backfill', '--select', '*', '--from', '2018-11', '--to', '2019-13'],
    /--to: expected a month as YYYY-MM/,
  ],
  [
    ['backfill', '--select', '*', '--from', '2018-11', '--to', '2019-01', '--only-missing', '--only-failed'],
    /exclude each other/,
  ],
  [
    ['backfill', '--select', '*', '--from', '2018-11', '--to', '2019-01', '--concurrency', '0'],
    /--concurrency 0/,
  ],
])('%j is refused with exit 2 before anything starts', async (args, message) => {
  const r = await sparkify(args);
  expect(r.stderr).toMatch(message);
  expect(r.code).toBe(2);
});

test('a bad setting names the setting and its variable', async () => {
  const r = await sparkify(['status'], { SPARKIFY_EMR_CLUSTER_ID: 'cluster-1' });
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/emr.clusterId \(env SPARKIFY_EMR_CLUSTER_ID\): an EMR cluster id looks like j-/);
});

test('status --month shows materialized, failed, missing and stale partitions, and why', async () => {
  const lakeDir = mkdtempSync(join(tmpdir(), 'sparkify-cli-'));
  const rawDir = mkdtempSync(join(tmpdir(), 'sparkify-cli-raw-'));
  const lake = openLake(lakeDir);
  const code = (await projectBundle()).hash;
  const base: RunRecord = {
    status: 'materialized',
    at: '2026-01-01T00:00:00.000Z',
    workflowId: 'w',
    runKind: 'manual',
    step: 's',
    codeVersion: code,
    range: { start: '2018-11-01', end: '2018-11-03' },
    rows: 5,
    inputs: { log_data: 'absent' },
  };
  const songData = await songDataFingerprint(openLake(rawDir));
  const songs = { ...base, inputs: { song_data: songData }, dataVersion: 'aaaaaaaaaaaaaaaa' };
  await writeRun(lake, 'songs', 'all', songs);
  await writeRun(lake, 'artists', 'all', { ...songs, dataVersion: 'bbbbbbbbbbbbbbbb' });
  await writeRun(lake, 'users', '2018-11-01', { ...base, dataVersion: 'cccccccccccccccc' });
  const upstream = { songs: 'aaaaaaaaaaaaaaaa', artists: 'bbbbbbbbbbbbbbbb', users: 'cccccccccccccccc' };
  await writeRun(lake, 'songplays', '2018-11-01', { ...base, upstream });
  await writeRun(lake, 'songplays', '2018-11-02', { ...base, status: 'failed', reason: 'boom' });
  await writeRun(lake, 'songplays', '2018-11-04', { ...base, upstream });
  // songs rebuilt with other data since: every songplays day built from the old songs is stale.
  await writeRun(lake, 'songs', 'all', { ...songs, dataVersion: 'dddddddddddddddd' });
  const r = await sparkify(['status', '--month', '2018-11', '--lake', lakeDir, '--raw', rawDir, '--json']);
  expect(r.code).toBe(0);
  const cells = JSON.parse(r.stdout) as StatusCell[];
  const cell = (asset: string, partition: string) =>
    cells.find((c) => c.asset === asset && c.partition === partition);
  expect(cell('songplays', '2018-11-01')).toMatchObject({
    state: 'stale',
    reason: 'upstream songs changed (data version aaaaaaaaaaaaaaaa → dddddddddddddddd)',
  });
  expect(cell('songplays', '2018-11-02')).toMatchObject({ state: 'failed', reason: 'boom' });
  expect(cell('songplays', '2018-11-03')).toMatchObject({ state: 'missing', reason: 'never materialized' });
  expect(cell('users', '2018-11-01')?.state).toBe('materialized');
  expect(cell('songs', 'all')?.state).toBe('materialized');
  expect(cell('artists', 'all')?.state).toBe('materialized');
  expect(cells.filter((c) => c.asset === 'time')).toHaveLength(30);

  const grid = await sparkify(['status', '--month', '2018-11', '--lake', lakeDir, '--raw', rawDir]);
  expect(grid.code).toBe(0);
  // One character per day: fits an 80-column terminal.
  const gridLines = grid.stdout.split('\n').slice(0, 6);
  expect(gridLines[5]).toMatch(/^songplays/);
  expect(Math.max(...gridLines.map((l) => [...l].length))).toBeLessThanOrEqual(80);
  expect(grid.stdout).toMatch(/songplays\s+~✘·~·/);
  expect(grid.stdout).toMatch(/songplays 2018-11-01 stale: upstream songs changed/);
  expect(grid.stdout).toMatch(/songplays 2018-11-05..2018-11-30 missing: never materialized/);

  // A lake written before the partition index existed: one command indexes it.
  const rebuilt = await sparkify(['index', 'rebuild', '--lake', lakeDir]);
  expect(rebuilt.code).toBe(0);
  expect(rebuilt.stdout).toMatch(
    new RegExp(`indexed 6 partitions of ${graph.order.length} assets in file://`),
  );
});

test("backfill --plan prints each asset's partitions and the steps it would run, and starts nothing", async () => {
  const lakeDir = mkdtempSync(join(tmpdir(), 'sparkify-plan-'));
  const rawDir = mkdtempSync(join(tmpdir(), 'sparkify-plan-raw-'));
  // Temporal points at a closed port (see sparkify()): the plan must not need it.
  // The lake's tables (the warehouse's steps would add their own lines).
  const r = await sparkify(
    ['backfill', '--select', '+songplays,time', '--from', '2018-11', '--to', '2018-12', '--plan'],
    {
      SPARKIFY_LAKE_URI: lakeDir,
      SPARKIFY_RAW_URI: rawDir,
    },
  );
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/songplays\s+61 missing/);
  expect(r.stdout).toMatch(/first, once: song_tables \(songs, artists\), whole tables/);
  expect(r.stdout).toMatch(
    /2018-11, one month at a time \(it rewrites a whole table\): users 2018-11-01\.\.2018-11-30/,
  );
  expect(r.stdout).toMatch(/2018-11: time 2018-11-01\.\.2018-11-30 \| songplays 2018-11-01\.\.2018-11-30/);
  expect(r.stdout).toMatch(/AddJobFlowSteps 7, ListSteps 7/);
});

test('a command that needs Temporal, with Temporal unreachable, names the address and what to do', async () => {
  const address = `127.0.0.1:${await freePort()}`;
  const r = await sparkify(['schedule', 'describe'], {
    SPARKIFY_TEMPORAL_ADDRESS: address,
    SPARKIFY_TEMPORAL_CONNECT_TIMEOUT_MS: '500',
  });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(
    `sparkify: cannot reach Temporal at ${address} (namespace default): Failed to connect before the deadline (0.5 s) — is the server running? \`npm run sparkify -- dev\` starts one locally; set SPARKIFY_TEMPORAL_ADDRESS for another`,
  );
});

describe('views a new user reads', () => {
  const month = daysIn({ start: '2018-12-01', end: '2019-01-01' });
  const states: CellState[] = ['materialized', 'failed', 'stale', 'missing'];
  /** Every daily asset with every state, in two-digit counts: the widest a month's line gets. */
  const cells: StatusCell[] = ['users', 'time', 'songplays'].flatMap((asset) =>
    month.map((day, i) => ({
      asset,
      partition: day,
      state: states[Math.min(3, Math.floor(i / 10))]!,
      reason: 'why',
      lastRun: { ...runAt(day), rows: 7 },
    })),
  );
  function runAt(day: string): RunRecord {
    return {
      status: 'materialized',
      at: '2026-01-01T00:00:00.000Z',
      workflowId: 'w',
      runKind: 'manual',
      step: 's',
      codeVersion: 'c',
      range: { start: day, end: day },
    };
  }

  test('the month grid fits 80 columns whatever the counts, and its ruler numbers the days', () => {
    // The header, then a row per asset of the graph (the serving database's included).
    const lines = renderGrid(cells, '2018-12')
      .split('\n')
      .slice(0, 1 + graph.order.length);
    expect(Math.max(...lines.map((l) => [...l].length))).toBeLessThanOrEqual(80);
    const ruler = dayRuler(31);
    // Each day's mark sits under its column of the ruler.
    const column = lines[0]!.indexOf(ruler);
    expect(column).toBeGreaterThan(0);
    const songplays = lines.find((l) => l.startsWith('songplays '))!;
    expect(songplays.slice(0, column).trim()).toBe('songplays');
    expect(songplays.slice(column)).toBe(
      `${'✔'.repeat(10)}${'✘'.repeat(10)}${'~'.repeat(10)}·   10✔ 10✘ 10~ 1·`,
    );
    for (const d of [1, 5, 10, 15, 20, 25, 30]) expect(ruler.slice(0, d).endsWith(String(d))).toBe(true);
  });

  test("status's rows say what they count: the whole table, or the days shown", () => {
    const all = renderSummary(
      cells,
      { start: '2018-12-01', end: '2019-01-01' },
      { lake: 'file:///l', everyDay: true },
    );
    expect(all).toMatch(/time .* 217 \(table\)/);
    expect(all.split('\n')[0]).toBe('partitions 2018-12-01 → 2018-12-31 (both included) in file:///l');
    const some = renderSummary(cells, { start: '2018-12-01', end: '2019-01-01' }, { everyDay: false });
    expect(some).toMatch(/time .* 217 \(days shown\)/);
    expect(renderSummary([], null, { lake: 'file:///l' })).toMatch(
      /^no partition recorded in file:\/\/\/l: nothing materialized yet, or another lake \(--lake, SPARKIFY_LAKE_URI\)/,
    );
  });

  test('the demo builds the lake the defaults point at, so status and ui show it without flags', () => {
    const defaults = loadConfig({ env: {} });
    expect(demoStorage(defaults)).toEqual({
      raw: join(REPO, '.sparkify/raw'),
      lake: join(REPO, '.sparkify/lake'),
      code: join(REPO, '.sparkify/code'),
      own: false,
    });
    // Not a local folder: the demo keeps its own, and says so.
    const s3 = loadConfig({ env: { SPARKIFY_LAKE_URI: 's3://bucket-a/lake' } });
    expect(demoStorage(s3)).toMatchObject({ lake: join(REPO, '.sparkify/demo/lake'), own: true });
  });
});
