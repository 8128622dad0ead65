import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ClientConfig } from 'pg';
import type { Config } from '../config/config';

/**
 * How the parts reach the serving database. The Spark load gets a JDBC URL and a user on its
 * command line, never a password: on EMR it reads the password from AWS Secrets Manager
 * (warehouse.secretId), locally from PGPASSWORD in its environment. The CLI reads PGPASSWORD; next
 * to `sparkify dev` it uses the embedded database's socket, which needs none.
 */

export function jdbcUrl(w: Config['warehouse']): string {
  return `jdbc:postgresql://${w.host}:${w.port}/${w.database}${w.ssl ? '?sslmode=require' : ''}`;
}

/** The warehouse arguments of a load step (see spark/sparkify_jobs/args.py). */
export function warehouseJobArgs(config: Config): string[] {
  const w = config.warehouse;
  const args = ['--warehouse-url', jdbcUrl(w), '--warehouse-user', w.user];
  if (w.secretId) {
    args.push(
      '--warehouse-secret-id',
      w.secretId,
      '--warehouse-secret-region',
      w.secretRegion ?? config.emr.region,
    );
  }
  return args;
}

/** The socket directory of the embedded database `sparkify dev` runs (dev/warehouse.ts). */
export function devSocketDir(config: Config): string {
  return resolve(config.dev.stateDir, 'warehouse', 'socket');
}

/** Where `psql` and `sparkify report` connect, as a person would type it. */
export function describeConnection(c: ClientConfig): string {
  return `${String(c.host)}:${String(c.port)}/${String(c.database)} as ${String(c.user)}`;
}

/**
 * node-postgres settings for the CLI: PGPASSWORD when set; without one, the embedded database's
 * socket when `sparkify dev` (or the demo) has one for this port; else a TCP connection that the
 * server may accept without a password (trust, certificates).
 */
export function clientConfig(config: Config, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const w = config.warehouse;
  const base = { port: w.port, database: w.database, user: w.user, application_name: 'sparkify-report' };
  const password = env.PGPASSWORD;
  const socket = devSocketDir(config);
  if (!password && existsSync(join(socket, `.s.PGSQL.${w.port}`))) return { ...base, host: socket };
  return {
    ...base,
    host: w.host,
    ...(password ? { password } : {}),
    ...(w.ssl ? { ssl: { rejectUnauthorized: false } } : {}),
  };
}
