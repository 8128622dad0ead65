import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openLake } from '../lake/store';
import { writeRun, type RunRecord } from '../lake/manifests';
import type { StatusCell } from '../lake/status';
import { freePort } from './helpers/ports';

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

test('status --month shows materialized, failed, missing and stale partitions from the manifests', async () => {
  const lakeDir = mkdtempSync(join(tmpdir(), 'sparkify-cli-'));
  const lake = openLake(lakeDir);
  const base: RunRecord = {
    status: 'materialized',
    at: '2026-01-01T00:00:00.000Z',
    workflowId: 'w',
    runKind: 'manual',
    step: 's',
    codeVersion: '0123456789abcdef',
    range: { start: '2018-11-01', end: '2018-11-03' },
    rows: 5,
  };
  await writeRun(lake, 'songplays', '2018-11-01', base);
  await writeRun(lake, 'songplays', '2018-11-02', { ...base, status: 'failed', reason: 'boom' });
  await writeRun(lake, 'users', '2018-11-01', base);
  // songs rebuilt after songplays of 2018-11-01 was built: that partition is stale.
  await writeRun(lake, 'songs', 'all', { ...base, at: '2026-01-02T00:00:00.000Z' });
  const r = await sparkify(['status', '--month', '2018-11', '--lake', lakeDir, '--json']);
  expect(r.code).toBe(0);
  const cells = JSON.parse(r.stdout) as StatusCell[];
  const state = (asset: string, partition: string) =>
    cells.find((c) => c.asset === asset && c.partition === partition)?.state;
  expect(state('songplays', '2018-11-01')).toBe('stale');
  expect(cells.find((c) => c.asset === 'songplays' && c.partition === '2018-11-01')!.staleBecause).toBe(
    'songs',
  );
  expect(state('songplays', '2018-11-02')).toBe('failed');
  expect(state('songplays', '2018-11-03')).toBe('missing');
  expect(state('users', '2018-11-01')).toBe('materialized');
  expect(state('songs', 'all')).toBe('materialized');
  expect(state('artists', 'all')).toBe('missing');
  expect(cells.filter((c) => c.asset === 'time')).toHaveLength(30);

  const grid = await sparkify(['status', '--month', '2018-11', '--lake', lakeDir]);
  expect(grid.stdout).toMatch(/songplays.*~.*✘.*·/);
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
