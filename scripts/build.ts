/**
 * `npm run build`: the worker, the CLI and the dev harness as JavaScript in dist/, laid out like
 * the sources (dist/worker/main.js for worker/main.ts), so every `__dirname`-relative path still
 * resolves: the files the code reads beside itself (the Spark jobs, the asset declaration, the
 * warehouse's SQL, the dev harness's plain-JS helpers) are copied in with the same layout, and tsc
 * emits the other JSON the code imports (warehouse/jdbc.json, dev/emr-local/s3a-jars.json). Then the workflows are bundled once, into
 * the file the worker loads (worker/worker.ts prebuiltWorkflowBundle), instead of at every start.
 *
 *   tsx scripts/build.ts              build
 *   tsx scripts/build.ts --if-stale   build only if the sources changed since the last build
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_BUNDLE_FILE } from '../worker/bundle';

export const ROOT = path.resolve(__dirname, '..');
export const DIST = path.join(ROOT, 'dist');
const STAMP = path.join(DIST, 'build-info.json');

/** What tsc compiles (tsconfig.build.json `include`): top-level directories of TypeScript. */
export function compiledDirs(): string[] {
  const config = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
    include: string[];
  };
  return config.include;
}

/**
 * Files the compiled code reads by a path relative to itself, copied into dist/ at the same place:
 * the Spark code the worker publishes (activities/code-bundle.ts: `../spark`, whose package zip
 * carries `../assets/assets.json` and `../warehouse/migrations`), the report queries
 * (warehouse/reports.ts), and the dev harness's plain-JS helpers it spawns.
 */
export const DATA_FILES: { from: string; keep?: (name: string) => boolean }[] = [
  // tsc emits the JSON it imports re-serialized; the code bundle ships the declaration's bytes
  // (they count in the code version), so it is copied as it is, over tsc's.
  { from: 'assets/assets.json' },
  { from: 'spark/run.py' },
  { from: 'spark/sparkify_jobs', keep: (name) => name.endsWith('.py') },
  { from: 'warehouse/migrations', keep: (name) => name.endsWith('.sql') },
  { from: 'warehouse/reports', keep: (name) => name.endsWith('.sql') },
  { from: 'dev/emr-local/step-runner.js' },
  { from: 'dev/orphan-guard.js' },
  // The page's HTML, stylesheet and ES modules (ui/server.ts serves them from beside itself).
  { from: 'ui/static' },
];

/** The compiled CLI's entry, made executable for the `sparkify` bin. */
const BIN = 'client/bin.js';

/** Every file the build reads, sorted: what decides whether dist/ is current. */
function inputs(): string[] {
  const out: string[] = [];
  const walk = (rel: string, keep: (name: string) => boolean): void => {
    const abs = path.join(ROOT, rel);
    if (!existsSync(abs)) return;
    if (!statSync(abs).isDirectory()) {
      out.push(rel);
      return;
    }
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      if (e.name.startsWith('.') || e.name === '__pycache__' || e.name === 'node_modules') continue;
      const child = path.posix.join(rel, e.name);
      if (e.isDirectory()) walk(child, keep);
      else if (keep(e.name)) out.push(child);
    }
  };
  for (const dir of compiledDirs()) walk(dir, (n) => /\.(ts|json)$/.test(n));
  for (const d of DATA_FILES) walk(d.from, d.keep ?? (() => true));
  out.push('tsconfig.json', 'tsconfig.build.json', 'scripts/build.ts', 'package-lock.json');
  return [...new Set(out)].sort();
}

/** A digest of everything the build reads (paths and contents). */
export function sourceDigest(): string {
  const h = createHash('sha256');
  for (const rel of inputs()) {
    const body = readFileSync(path.join(ROOT, rel));
    h.update(`${rel}\0${body.length}\0`).update(body);
  }
  return h.digest('hex');
}

/** Whether dist/ was built from the sources as they are now. */
export function buildIsCurrent(): boolean {
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8')) as { sources?: string };
    return stamp.sources === sourceDigest() && existsSync(path.join(DIST, 'workflows', WORKFLOW_BUNDLE_FILE));
  } catch {
    return false;
  }
}

export async function build(log: (line: string) => void = (l) => console.log(l)): Promise<void> {
  const t0 = Date.now();
  const sources = sourceDigest();
  rmSync(DIST, { recursive: true, force: true });
  const tsc = spawnSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  if (tsc.status !== 0)
    throw new Error(`tsc -p tsconfig.build.json failed (exit ${tsc.status ?? tsc.signal})`);
  for (const d of DATA_FILES) {
    const from = path.join(ROOT, d.from);
    const to = path.join(DIST, d.from);
    mkdirSync(path.dirname(to), { recursive: true });
    cpSync(from, to, {
      recursive: true,
      filter: (src) => {
        const name = path.basename(src);
        if (src === from) return true;
        if (name.startsWith('.') || name === '__pycache__') return false;
        // Directories are walked; files are kept by the entry's rule.
        return !d.keep || statSync(src).isDirectory() || d.keep(name);
      },
    });
  }
  chmodSync(path.join(DIST, BIN), 0o755);
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(DIST, 'workflows', 'index.js'),
    logger: quietLogger,
  });
  writeFileSync(path.join(DIST, 'workflows', WORKFLOW_BUNDLE_FILE), bundle.code);
  writeFileSync(STAMP, `${JSON.stringify({ sources, builtAt: new Date().toISOString() }, null, 2)}\n`);
  log(
    `build: dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s (workflow bundle: dist/workflows/${WORKFLOW_BUNDLE_FILE})`,
  );
}

/** Builds unless dist/ is current; for scripts/test and the tests that run the compiled code. */
export async function ensureBuilt(log?: (line: string) => void): Promise<void> {
  if (!buildIsCurrent()) await build(log);
}

const noop = (): void => undefined;
const quietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: (message: string) => console.warn(`build: ${message}`),
  error: (message: string) => console.error(`build: ${message}`),
  log: noop,
};

if (require.main === module) {
  const ifStale = process.argv.includes('--if-stale');
  (ifStale ? ensureBuilt() : build()).catch((err: unknown) => {
    console.error(`build: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
