import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { monthRange } from '../assets';
import type { Config } from '../config/config';
import { generate } from './generator/generate';
import { connectClient } from '../client/temporal';
import { devDefaults, runDevStack } from './stack';
import { renderRun, formatRows } from '../client/render';
import { startMaterialize } from '../client/runs';
import { renderReport, reportFromWarehouse } from '../client/report';
import { watchRun } from '../client/watch';

export const DEMO_MONTH = '2018-11';

export interface DemoOptions {
  /** Keep the stack (and its Web UI) up until Ctrl-C. */
  stay: boolean;
  live: boolean;
  json: boolean;
}

/** A storage root as a local folder, or null for S3. */
function localFolder(uri: string): string | null {
  if (/^s3a?:\/\//.test(uri)) return null;
  return resolve(uri.startsWith('file:') ? fileURLToPath(uri) : uri);
}

/**
 * Where the demo keeps its data: the configured storage roots (by default .sparkify/raw, lake,
 * code), so `status`, `ui` and `dev` afterwards show what it built without flags. Only when a
 * root is not a local folder (S3: the demo generates files locally) does it use its own folders
 * under .sparkify/demo — and then says how to look at them.
 */
export function demoStorage(base: Config): { raw: string; lake: string; code: string; own: boolean } {
  const [raw, lake, code] = [base.storage.raw, base.storage.lake, base.storage.code].map(localFolder);
  if (raw && lake && code) return { raw, lake, code, own: false };
  const demoDir = resolve(base.dev.stateDir, 'demo');
  return { raw: join(demoDir, 'raw'), lake: join(demoDir, 'lake'), code: join(demoDir, 'code'), own: true };
}

/**
 * On a fresh machine: generate a month of data, run the whole graph through Temporal and the
 * local EMR with real Spark, and show the rows per asset and where to look.
 */
export async function runDemo(base: Config, opts: DemoOptions): Promise<boolean> {
  const say = (line: string) => {
    if (!opts.json) console.log(line);
  };
  const storage = demoStorage(base);
  const raw = storage.raw;
  if (storage.own) say(`the configured storage is not a local folder; the demo uses ${resolve(raw, '..')}`);
  if (!existsSync(join(raw, '_generator.json')) && existsSync(join(raw, 'log_data'))) {
    say(`using the raw data already in ${raw}`);
  } else if (!existsSync(join(raw, '_generator.json'))) {
    say(`generating a month of Sparkify data into ${raw} ...`);
    await generate({
      out: raw,
      start: monthRange(DEMO_MONTH).start,
      days: 30,
      users: 120,
      songs: 300,
      seed: 2018,
      eventsPerDay: 3000,
    });
  }
  const config = devDefaults({ ...base, storage: { raw, lake: storage.lake, code: storage.code } });
  say('starting the embedded stack (Temporal dev server, local EMR, worker, page) ...');
  let finished: boolean | undefined; // the run's outcome, once it has one
  const outcome = await runDevStack(config, { log: say, page: true }, async (stack, stopping) => {
    const client = await connectClient(stack.config);
    try {
      // A signal abandons this body: its calls are cancelled at once rather than retried against
      // a server that is stopping, and the connection closes once they have settled.
      return await client.connection.withAbortSignal(stopping, async () => {
        const range = monthRange(DEMO_MONTH);
        const { handle } = await startMaterialize(client, stack.config, { selection: '*', range });
        say(`materializing every asset for ${DEMO_MONTH}: workflow ${handle.workflowId}`);
        const result = await watchRun(handle, { live: opts.live && !opts.json });
        finished = result.ok;
        if (opts.json) {
          console.log(JSON.stringify(result, null, 2));
        } else {
          console.log(renderRun(result));
          const rows = new Table({ head: ['asset', 'rows'], style: { head: [], border: [] } });
          for (const a of result.assets) rows.push([a.asset, formatRows(a.rows)]);
          console.log(rows.toString());
          console.log(`\nWhere to look:`);
          if (stack.pageUrl) console.log(`  Sparkify page     ${stack.pageUrl}`);
          if (stack.uiUrl) {
            console.log(
              `  Temporal Web UI   ${stack.uiUrl}/namespaces/${config.temporal.namespace}/workflows/${handle.workflowId}`,
            );
          }
          console.log(`  lake (Parquet)    ${config.storage.lake}`);
          console.log(`  raw input         ${raw}`);
          console.log(`  step logs         ${resolve(config.dev.stateDir, 'emr', 'logs')}`);
          // The default roots: plain `status` reads this lake.
          const where = storage.own ? ` --lake ${config.storage.lake} --raw ${raw}` : '';
          console.log(`  status grid       npm run sparkify -- status --month ${DEMO_MONTH}${where}`);
          if (stack.warehouse && result.ok) {
            // The analytics, from the serving database the run just loaded.
            console.log(`\n${renderReport(await reportFromWarehouse(stack.config, range))}`);
            console.log(`\nThe warehouse (PostgreSQL, while the stack is up):`);
            console.log(`  psql              ${stack.warehouse.psql}`);
            console.log(`  report            npm run sparkify -- report --month ${DEMO_MONTH}`);
            console.log(
              `  one question      psql -h ${stack.warehouse.socketDir} -p ${stack.warehouse.port} -U ${stack.warehouse.user} -v from=${range.start} -v to=${range.end} -f warehouse/reports/top_songs.sql ${stack.warehouse.database}`,
            );
          }
        }
        if (opts.stay) {
          say('\nThe stack stays up for the page and the Web UI; press Ctrl-C to stop it.');
          await new Promise<void>((res) => stopping.addEventListener('abort', () => res(), { once: true }));
        }
        return result.ok;
      });
    } finally {
      await client.connection.close().catch(() => undefined);
    }
  });
  // Ctrl-C while --stay keeps the stack up for the Web UI ends the demo as planned; during the run
  // it interrupts the demo.
  if (outcome.stoppedBy === null) return outcome.result;
  if (finished !== undefined) return finished;
  say(`the demo was interrupted (${outcome.stoppedBy}) before its run finished`);
  return false;
}
