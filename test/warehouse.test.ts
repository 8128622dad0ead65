import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { Client } from 'pg';
import { graph, selectAssets } from '../assets';
import { readManifests } from '../lake/manifests';
import { openLake } from '../lake/store';
import { startMaterialize } from '../client/runs';
import { parseReportRange, reportFromWarehouse } from '../client/report';
import { UsageError } from '../client/cli-input';
import { loadConfig, type Config } from '../config/config';
import { startLocalEmr } from '../dev/emr-local';
import { generate } from '../dev/generator/generate';
import { startTemporalDevServer } from '../dev/temporal-server';
import { startEmbeddedWarehouse, type EmbeddedWarehouse } from '../dev/warehouse';
import { createWorker } from '../worker/worker';
import { clientConfig, jdbcUrl, warehouseJobArgs } from '../warehouse/connection';
import { QUESTION_NAMES, reportQuery, runReports } from '../warehouse/reports';
import { freePorts } from './helpers/ports';
import { workflowBundle } from './helpers/temporal';

/**
 * The serving database from the TypeScript side, on a real PostgreSQL (the embedded one `sparkify
 * dev` runs): its start-up and credentials, the report runner, and the whole graph, warehouse
 * included, through Temporal, the local EMR and Spark.
 */

jest.setTimeout(900_000);

const REPO = resolve(__dirname, '..');
let dir: string;
let wh: EmbeddedWarehouse;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkify-warehouse-'));
  chmodSync(dir, 0o755); // as root the server runs as nobody, which must reach its directory
  const [port] = await freePorts(1);
  wh = await startEmbeddedWarehouse({
    dir: join(dir, 'warehouse'),
    port: port!,
    database: 'sparkify',
    user: 'sparkify',
  });
});

afterAll(async () => {
  await wh?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function configFor(extra: Record<string, string> = {}): Config {
  return loadConfig({
    env: {
      SPARKIFY_WAREHOUSE_PORT: String(wh.port),
      SPARKIFY_STATE_DIR: dir,
      ...extra,
    },
  });
}

describe('the embedded warehouse', () => {
  test('TCP needs this start’s password; the socket trusts its owner; nothing writes the password down', async () => {
    const tcp = (password: string) =>
      new Client({ host: '127.0.0.1', port: wh.port, user: 'sparkify', database: 'sparkify', password });
    const good = tcp(wh.password);
    await good.connect();
    expect((await good.query('SELECT current_user AS u')).rows).toEqual([{ u: 'sparkify' }]);
    await good.end();
    await expect(tcp('wrong').connect()).rejects.toThrow(/password authentication failed/);
    const socket = new Client({ host: wh.socketDir, port: wh.port, user: 'sparkify', database: 'sparkify' });
    await socket.connect();
    await socket.end();
    expect(wh.psql).toBe(`psql -h ${wh.socketDir} -p ${wh.port} -U sparkify sparkify`);
    // Not in the server's log, its data directory's settings, or the psql line.
    expect(readFileSync(wh.logFile, 'utf8')).not.toContain(wh.password);
    for (const f of ['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf']) {
      expect(readFileSync(join(dir, 'warehouse', 'data', f), 'utf8')).not.toContain(wh.password);
    }
    expect(wh.psql).not.toContain(wh.password);
  });

  test('the CLI reaches it through the socket without a password, or over TCP with PGPASSWORD', () => {
    const config = configFor();
    expect(clientConfig(config, {})).toMatchObject({ host: wh.socketDir, port: wh.port });
    expect(clientConfig(config, { PGPASSWORD: 'x' })).toMatchObject({ host: '127.0.0.1', password: 'x' });
  });
});

describe('the load step’s arguments', () => {
  test('a JDBC URL and a user, a secret by name on AWS, never a password', () => {
    const local = configFor();
    expect(warehouseJobArgs(local)).toEqual([
      '--warehouse-url',
      `jdbc:postgresql://127.0.0.1:${wh.port}/sparkify`,
      '--warehouse-user',
      'sparkify',
    ]);
    const aws = configFor({
      SPARKIFY_WAREHOUSE_HOST: 'db.abc.eu-west-1.rds.amazonaws.com',
      SPARKIFY_WAREHOUSE_PORT: '5432',
      SPARKIFY_WAREHOUSE_SSL: 'true',
      SPARKIFY_WAREHOUSE_SECRET_ID: 'sparkify/warehouse',
      SPARKIFY_EMR_REGION: 'eu-west-1',
    });
    expect(jdbcUrl(aws.warehouse)).toBe(
      'jdbc:postgresql://db.abc.eu-west-1.rds.amazonaws.com:5432/sparkify?sslmode=require',
    );
    expect(warehouseJobArgs(aws).slice(4)).toEqual([
      '--warehouse-secret-id',
      'sparkify/warehouse',
      '--warehouse-secret-region',
      'eu-west-1',
    ]);
    expect(() => configFor({ SPARKIFY_WAREHOUSE_PORT: '54e2' })).toThrow(/warehouse.port/);
    expect(() => configFor({ SPARKIFY_WAREHOUSE_HOST: 'db;drop' })).toThrow(/warehouse.host/);
  });
});

describe('the report queries', () => {
  test('every file in warehouse/reports is a question, with psql variables as bind parameters', () => {
    const files = readdirSync(join(REPO, 'warehouse/reports'))
      .filter((f) => f.endsWith('.sql'))
      .map((f) => f.replace(/\.sql$/, ''))
      .sort();
    expect(files).toEqual([...QUESTION_NAMES].sort());
    for (const name of QUESTION_NAMES) {
      const sql = reportQuery(name);
      expect(sql).not.toMatch(/:'/);
      expect(sql).toContain('$1');
      expect(sql).toContain('$2');
    }
  });

  test('--month, --from/--to or every day; bad input names itself', () => {
    expect(parseReportRange({ month: '2018-11' })).toEqual({ start: '2018-11-01', end: '2018-12-01' });
    expect(parseReportRange({ from: '2018-11-05', to: '2018-11-05' })).toEqual({
      start: '2018-11-05',
      end: '2018-11-06',
    });
    expect(parseReportRange({})).toEqual({ start: '1970-01-01', end: '2200-01-01' });
    expect(() => parseReportRange({ month: '2018-13' })).toThrow(UsageError);
    expect(() => parseReportRange({ from: '2018-11-05' })).toThrow(/--from and --to go together/);
  });

  test('a warehouse with no tables yet says to materialize it', async () => {
    const config = configFor({
      SPARKIFY_WAREHOUSE_DATABASE: 'postgres',
      SPARKIFY_WAREHOUSE_USER: 'postgres',
    });
    await expect(reportFromWarehouse(config, { start: '2018-11-01', end: '2018-12-01' })).rejects.toThrow(
      /no tables yet: materialize the warehouse first/,
    );
  });
});

describe('the whole graph, warehouse included, through Temporal, the local EMR and Spark', () => {
  test('a month of generated data: every asset, the warehouse equal to the lake, the report, a re-run that does nothing', async () => {
    const raw = join(dir, 'raw');
    const range = { start: '2018-11-29', end: '2018-12-02' };
    const { summary } = generate({
      out: raw,
      start: range.start,
      days: 3,
      users: 20,
      songs: 30,
      seed: 7,
      eventsPerDay: 300,
    });
    const [temporalPort] = await freePorts(1);
    const temporal = await startTemporalDevServer({
      dbFile: join(dir, 'temporal.db'),
      port: temporalPort!,
      uiPort: 0,
      ui: false,
    });
    const emr = await startLocalEmr({
      stateDir: join(dir, 'emr'),
      stepConcurrency: 2,
      master: 'local[2]',
      stepEnv: { PGPASSWORD: wh.password },
    });
    const config = configFor({
      SPARKIFY_TEMPORAL_ADDRESS: temporal.address,
      SPARKIFY_TEMPORAL_TASK_QUEUE: 'warehouse-e2e',
      SPARKIFY_EMR_ENDPOINT: emr.endpoint,
      SPARKIFY_EMR_CLUSTER_ID: emr.clusterId,
      SPARKIFY_EMR_POLL_INITIAL_MS: '300',
      SPARKIFY_EMR_POLL_MAX_MS: '1000',
      SPARKIFY_RAW_URI: raw,
      SPARKIFY_LAKE_URI: join(dir, 'lake'),
      SPARKIFY_CODE_URI: join(dir, 'code'),
    });
    const client = new TemporalClient({
      connection: await Connection.connect({ address: temporal.address }),
    });
    const connection = await NativeConnection.connect({ address: temporal.address });
    const worker = await createWorker({ config, connection, workflowBundle: await workflowBundle() });
    try {
      const [first, again] = await worker.runUntil(async () => {
        const run = async () =>
          (await startMaterialize(client, config, { selection: '*', range })).handle.result();
        const one = await run();
        return [one, await run()];
      });
      expect(first.assets.map((a) => [a.asset, a.status])).toEqual(
        selectAssets(graph, '*').map((a) => [a, 'materialized']),
      );
      const rows = Object.fromEntries(first.assets.map((a) => [a.asset, a.rows]));
      expect(rows.warehouse_songplays).toBe(summary.songplays);
      expect(rows.warehouse_songs).toBe(summary.songs);
      expect(rows.warehouse_users).toBe(summary.users);
      // Unchanged inputs, same code: nothing to do, no EMR step.
      expect(again.assets.every((a) => a.status === 'up_to_date')).toBe(true);

      const pg = new Client({ host: wh.socketDir, port: wh.port, user: 'sparkify', database: 'sparkify' });
      await pg.connect();
      try {
        const count = async (sql: string) => Number((await pg.query<{ n: string }>(sql)).rows[0]!.n);
        expect(await count('SELECT count(*) AS n FROM songplays')).toBe(summary.songplays);
        expect(await count('SELECT count(*) AS n FROM time')).toBe(summary.time_rows);
        expect(await count('SELECT count(*) AS n FROM artists')).toBe(summary.artists);
        const report = await runReports(pg, range);
        expect(report.answers.catalogue_share).toEqual([
          {
            plays: summary.songplays,
            in_catalogue: summary.songplays_with_song_match,
            share: Number((summary.songplays_with_song_match / summary.songplays).toFixed(4)),
          },
        ]);
        expect(report.answers.plays_by_hour.reduce((n, r) => n + r.plays, 0)).toBe(summary.songplays);
      } finally {
        await pg.end();
      }
      // The CLI's way in (the socket next to the dev state dir) gives the same answers.
      const viaCli = await reportFromWarehouse(config, range);
      expect(viaCli.answers.catalogue_share[0]!.plays).toBe(summary.songplays);

      // Manifests per warehouse partition, like every other asset's.
      const lake = openLake(config.storage.lake);
      expect([...(await readManifests(lake, 'warehouse_songplays')).keys()].sort()).toEqual(summary.days);
      expect([...(await readManifests(lake, 'warehouse_songs')).keys()]).toEqual(['all']);
      // The password reached the steps through their environment only.
      const steps = join(dir, 'emr', 'logs');
      const commands = readdirSync(steps, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('command.json'));
      expect(commands.length).toBeGreaterThan(0);
      for (const c of commands) expect(readFileSync(join(steps, c), 'utf8')).not.toContain(wh.password);
      const load = commands
        .map((c) => readFileSync(join(steps, c), 'utf8'))
        .find((t) => t.includes('warehouse_songplays'))!;
      expect(load).toContain('--jars');
      expect(load).toContain('--warehouse-url');
    } finally {
      await connection.close();
      await client.connection.close();
      await emr.close({ killSteps: true });
      await temporal.stop();
    }
  });
});
