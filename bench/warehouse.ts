/**
 * The warehouse load's rate: the Spark step that loads days of time and songplays into PostgreSQL
 * (stage over JDBC, check, one transaction in), in rows per second, against a plain `COPY` of the
 * same rows into a table with the same indexes, on the same server in the same run.
 *
 * Wire it into bench/main.ts by adding 'warehouse' to BENCHES and one branch to the loop:
 *
 *     else if (name === 'warehouse') res = await warehouseBench(o, scratch, log);
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { generate } from '../dev/generator/generate';
import { startEmbeddedWarehouse } from '../dev/warehouse';
import { jdbcJar } from '../warehouse/jdbc';
import { BenchResult, REPO_ROOT, Scratch, addDays, row, runMeasured, tail } from './lib';
import { freePort } from './stack';

export interface WarehouseBenchOptions {
  days: number;
  eventsPerDay: number;
  users: number;
  songs: number;
  seed: number;
  start: string;
  driverMemory: string;
  master: string;
}

export async function warehouseBench(
  o: WarehouseBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const sparkSubmit = path.join(REPO_ROOT, '.venv', 'bin', 'spark-submit');
  const python = path.join(REPO_ROOT, '.venv', 'bin', 'python');
  const runPy = path.join(REPO_ROOT, 'spark', 'run.py');
  const end = addDays(o.start, o.days);
  const notes: string[] = [];
  const result: BenchResult = {
    name: 'warehouse',
    title: 'Warehouse: loading days of plays into PostgreSQL vs. a plain COPY of the same rows',
    params: { days: o.days, eventsPerDay: o.eventsPerDay, users: o.users, master: o.master },
    rows: [],
    notes,
  };
  if (!fs.existsSync(sparkSubmit)) {
    result.skipped = `${sparkSubmit} is missing (run scripts/setup)`;
    return result;
  }
  const jar = await jdbcJar();

  // The embedded server runs as nobody when this is root: it must reach its directory.
  fs.chmodSync(scratch.root, 0o755);
  const raw = scratch.dir('warehouse/raw');
  const lake = scratch.dir('warehouse/lake');
  const logs = scratch.dir('warehouse/logs');
  log(`warehouse: generating ${o.days} days × ${o.eventsPerDay} events/day`);
  generate({
    out: raw,
    start: o.start,
    days: o.days,
    users: o.users,
    songs: o.songs,
    seed: o.seed,
    eventsPerDay: o.eventsPerDay,
  });

  const db = await startEmbeddedWarehouse({
    dir: path.join(scratch.root, 'warehouse', 'pg'),
    port: await freePort(),
    database: 'sparkify',
    user: 'sparkify',
  });
  try {
    const env = {
      ...process.env,
      PYSPARK_PYTHON: python,
      PYSPARK_DRIVER_PYTHON: python,
      PGPASSWORD: db.password,
    };
    const warehouseArgs = [
      '--warehouse-url',
      `jdbc:postgresql://127.0.0.1:${db.port}/${db.database}`,
      '--warehouse-user',
      db.user,
    ];
    const submit = async (label: string, assets: string, daily: boolean) => {
      const logFile = path.join(logs, `${label}.log`);
      const report = path.join(logs, `${label}.json`);
      const args = [
        ...['--master', o.master, '--driver-memory', o.driverMemory, '--jars', jar],
        ...['--conf', 'spark.sql.session.timeZone=UTC', '--conf', 'spark.ui.enabled=false'],
        ...[runPy, '--assets', assets, '--raw', raw, '--lake', lake, '--report', report],
        ...(daily ? ['--start', o.start, '--end', end] : []),
        ...(assets.startsWith('warehouse_') ? warehouseArgs : []),
      ];
      log(`warehouse: ${label} ...`);
      const r = await runMeasured(sparkSubmit, args, { logFile, env });
      if (r.code !== 0)
        throw new Error(`${label} exited with ${r.code ?? r.signal}; log ${logFile}:\n${tail(logFile)}`);
      const doc = JSON.parse(fs.readFileSync(report, 'utf8')) as {
        duration_s: number;
        assets: Record<string, { rows: number; duration_s: number }>;
      };
      log(`warehouse: ${label} ${r.seconds.toFixed(1)} s`);
      return { seconds: r.seconds, report: doc };
    };

    await submit('lake', 'songs,artists,users,time,songplays', true);
    await submit('load-catalog', 'warehouse_songs,warehouse_artists', false);
    await submit('load-users', 'warehouse_users', true);
    const plays = await submit('load-plays', 'warehouse_time,warehouse_songplays', true);
    const again = await submit('reload-plays', 'warehouse_time,warehouse_songplays', true);
    const rows = plays.report.assets.warehouse_songplays!.rows;
    const timeRows = plays.report.assets.warehouse_time!.rows;

    // The baseline: the same songplays rows, exported by the server and copied back in by COPY
    // into a table with songplays' columns and indexes (LIKE ... INCLUDING ALL; no foreign keys).
    const admin = new Client({ host: db.socketDir, port: db.port, user: 'postgres', database: db.database });
    await admin.connect();
    let copySeconds: number;
    try {
      const file = path.join(scratch.root, 'warehouse', 'pg', 'songplays.copy');
      await admin.query(`COPY (SELECT * FROM songplays) TO '${file}'`);
      await admin.query('CREATE TABLE bench_copy (LIKE songplays INCLUDING ALL)');
      const t0 = process.hrtime.bigint();
      const copied = await admin.query(`COPY bench_copy FROM '${file}'`);
      copySeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (copied.rowCount !== rows) throw new Error(`COPY loaded ${copied.rowCount} rows, the step ${rows}`);
    } finally {
      await admin.end();
    }

    const copyRate = rows / copySeconds;
    const base = { label: 'plain COPY, same rows', value: copyRate };
    result.rows.push(row(`songplays loaded`, rows, 'rows'));
    result.rows.push(
      row('load step, end to end (spark-submit)', rows / plays.seconds, 'rows/s', base, 'higher'),
    );
    result.rows.push(
      row('load step, in the job (no JVM start)', rows / plays.report.duration_s, 'rows/s', base, 'higher'),
    );
    result.rows.push(row('re-run of the same days (nothing changes)', again.seconds, 's'));
    result.rows.push(row('plain COPY', copySeconds, 's'));
    notes.push(
      `the step also loads ${timeRows.toLocaleString('en-US')} time rows, checks counts, keys and references, and stages over JDBC first (two writes per row); COPY is one server-side bulk write`,
      `the end-to-end figure includes starting Spark (tens of seconds on 2 cores): it is the per-step cost, and dominates small days`,
    );
  } finally {
    await db.stop();
  }
  return result;
}
