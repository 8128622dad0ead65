import type { Command } from 'commander';
import { z } from 'zod';
import { UsageError } from '../client/cli-input';
import type { Config } from '../config/config';
import { rebuildIndex } from '../lake/partition-index';
import { openLake, s3ClientFor } from '../lake/store';
import { UiAccessError } from './auth';
import { startUiServer } from './server';

/** `sparkify ui` and `sparkify index rebuild`, registered on the CLI's program. */

const PortSchema = z
  .string()
  .regex(/^[0-9]+$/, 'expected a port number')
  .transform(Number)
  .refine((p) => p <= 65535, 'expected a port number up to 65535');

function lakeOf(cfg: Config, uri: string | undefined, fallback: string) {
  return openLake(uri ?? fallback, {
    s3: s3ClientFor({ region: cfg.emr.region, endpoint: cfg.s3.endpoint }),
  });
}

export function registerUiCommands(program: Command, config: () => Config): void {
  program
    .command('ui')
    .description(
      'the web page: asset graph, partition health, runs and backfills, launching them; on 127.0.0.1 unless told otherwise (then a token is required)',
    )
    .option('--host <address>', 'address to listen on (default: the configured ui.host, 127.0.0.1)')
    .option('--port <port>', 'port (default: the configured ui.port, 8240)')
    .option('--lake <uri>', 'lake root (default: the configured storage.lake)')
    .option('--raw <uri>', 'raw input root (default: the configured storage.raw)')
    .action(async (opts: { host?: string; port?: string; lake?: string; raw?: string }) => {
      const cfg = config();
      const port = opts.port === undefined ? undefined : PortSchema.safeParse(opts.port);
      if (port && !port.success)
        throw new UsageError(`--port ${opts.port}: ${port.error.issues[0]?.message}`);
      let server;
      try {
        server = await startUiServer({
          config: cfg,
          host: opts.host,
          port: port?.data,
          lake: lakeOf(cfg, opts.lake, cfg.storage.lake),
          raw: lakeOf(cfg, opts.raw, cfg.storage.raw),
          log: (line) => console.error(line),
        });
      } catch (err) {
        if (err instanceof UiAccessError) throw new UsageError(err.message);
        throw err;
      }
      console.log(`Sparkify page on ${server.url} (lake ${opts.lake ?? cfg.storage.lake}); Ctrl-C stops it`);
      await new Promise<void>((res) => {
        process.once('SIGINT', res);
        process.once('SIGTERM', res);
      });
      await server.close();
    });

  program
    .command('index')
    .description('the partition index the page reads (kept by the worker as it records runs)')
    .command('rebuild')
    .description(
      'make the index from the manifests: for a lake written before the index existed, or after a crash between a manifest and its index update',
    )
    .option('--lake <uri>', 'lake root (default: the configured storage.lake)')
    .action(async (opts: { lake?: string }) => {
      const cfg = config();
      const lake = lakeOf(cfg, opts.lake, cfg.storage.lake);
      const r = await rebuildIndex(lake, { log: (line) => console.log(`  ${line}`) });
      console.log(`indexed ${r.partitions} partitions of ${r.assets} assets in ${lake.uri}`);
    });
}
