/**
 * The deployment files (docker-compose.yml, Dockerfile, deploy/) against the code they deploy.
 * No Docker engine is needed: the files are parsed, and the one script they run on their own
 * (search-attribute registration) is run against the Temporal CLI's dev server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TEMPORAL_CLI } from '../dev/temporal-server';
import { ENV_SETTINGS, loadConfig } from '../config/config';
import { SEARCH_ATTRIBUTES, searchAttributeFlags } from '../workflows/search-attributes';
import { DATA_FILES } from '../scripts/build';
import { WORKER_ENV, WORKER_NODE_FLAGS } from '../worker/process-settings';
import {
  contextPaths,
  copies,
  dockerfileInstructions,
  execForm,
  finalStage,
  imageCommand,
  stage,
  stages,
} from './helpers/dockerfile';
import { freePort } from './helpers/ports';

const ROOT = path.resolve(__dirname, '..');
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

// --- docker-compose.yml ------------------------------------------------------------------------

const StringList = z.array(z.string());
const Environment = z.union([
  z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  StringList,
]);
const Service = z.object({
  image: z.string().optional(),
  build: z
    .union([z.string(), z.object({ context: z.string(), dockerfile: z.string().optional() })])
    .optional(),
  command: z.unknown().optional(),
  entrypoint: z.unknown().optional(),
  environment: Environment.optional(),
  ports: z.array(z.union([z.string(), z.number()])).optional(),
  volumes: z.array(z.string()).optional(),
  depends_on: z.union([StringList, z.record(z.string(), z.object({ condition: z.string() }))]).optional(),
  healthcheck: z.object({ test: z.unknown() }).optional(),
  user: z.string().optional(),
});
type Service = z.infer<typeof Service>;
const Compose = z.object({ services: z.record(z.string(), Service) });

const COMPOSE_TEXT = read('docker-compose.yml');
const compose = Compose.parse(parseYaml(COMPOSE_TEXT));

function service(name: string): Service {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
}

/** A service's environment as written (before substitution), whichever syntax it uses. */
function rawEnv(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((kv) => [kv.split('=')[0]!, kv.includes('=') ? kv.slice(kv.indexOf('=') + 1) : '']),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/**
 * Compose's variable substitution, as far as this file uses it: $$, $VAR, ${VAR},
 * ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}.
 */
function substitute(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(
    /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, dollar?: string, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar) return '$';
      const key = (name ?? bare)!;
      const v = vars[key];
      const missing = v === undefined || (colon === ':' && v === '');
      if (op === '-') return missing ? arg! : v!;
      if (op === '?') {
        if (missing) throw new Error(`required variable ${key} is missing a value: ${arg}`);
        return v!;
      }
      return v ?? '';
    },
  );
}

function resolvedEnv(s: Service, vars: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(rawEnv(s)).map(([k, v]) => [k, substitute(v, vars)]));
}

/** deploy/.env.example as the variables compose would read from .env. */
function envExample(): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of read('deploy/.env.example').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) vars[m[1]!] = m[2]!.trim();
  }
  return vars;
}

/** Variables the file requires (`${VAR:?...}`) anywhere. */
function requiredVars(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?/g)].map((m) => m[1]!))].sort();
}

/** Bind mounts (short syntax), after substitution (a default may itself contain a colon). */
function bindMounts(s: Service, vars: Record<string, string | undefined> = EXAMPLE): BindMount[] {
  return (s.volumes ?? []).map((v) => {
    const [source = '', target = '', mode = ''] = substitute(v, vars).split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

interface BindMount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** Maps a container path back to the repo file that a `./...` bind mount puts there. */
function repoFileMountedAt(s: Service, containerPath: string): string | undefined {
  for (const m of bindMounts(s)) {
    if (!m.source.startsWith('./')) continue;
    if (containerPath === m.target) return path.join(ROOT, m.source);
    if (containerPath.startsWith(`${m.target}/`))
      return path.join(ROOT, m.source, containerPath.slice(m.target.length));
  }
  return undefined;
}

// --- Dockerfile (test/helpers/dockerfile.ts) ------------------------------------------------------

/** The final stage's copies from the build stage: what of dist/ the image carries. */
function fromBuild(): string[] {
  return copies(finalStage())
    .filter((c) => c.from === 'build')
    .flatMap((c) => c.sources)
    .map((p) => p.replace(/^\/app\//, ''));
}

/** tsconfig.build.json: where `npm run build` puts what. */
const BUILD_CONFIG = z
  .object({
    compilerOptions: z.object({ outDir: z.string(), rootDir: z.string() }),
    include: z.array(z.string()),
  })
  .parse(JSON.parse(read('tsconfig.build.json')));

/** The source file a compiled file comes from (dist/worker/main.js ← worker/main.ts). */
function sourceOf(compiled: string): string {
  const out = `${BUILD_CONFIG.compilerOptions.outDir.replace(/\/$/, '')}/`;
  expect(compiled.startsWith(out)).toBe(true);
  return compiled.slice(out.length).replace(/\.js$/, '.ts');
}

// --- the tests -----------------------------------------------------------------------------------

const EXAMPLE = envExample();
const SERVICES = ['postgresql', 'warehouse', 'temporal', 'temporal-setup', 'temporal-ui', 'worker'];

describe('docker-compose.yml', () => {
  test('has the services of the stack', () => {
    expect(Object.keys(compose.services).sort()).toEqual([...SERVICES].sort());
  });

  test('pins every image to a version', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.build !== undefined) continue;
      expect({ name, image: s.image }).toEqual({
        name,
        image: expect.stringMatching(/^[\w./-]+:\d[\w.-]*$/),
      });
    }
    expect(service('temporal').image).toMatch(/^temporalio\/auto-setup:1\.29\.\d+$/);
    expect(service('postgresql').image).toBe('postgres:16');
  });

  test('publishes the frontend (7233) and the Web UI (8080), on loopback only', () => {
    const published = (s: Service) =>
      (s.ports ?? []).map((p) => {
        const parts = String(p).split(':');
        return { host: parts.length === 3 ? parts[0] : undefined, container: Number(parts.at(-1)) };
      });
    expect(published(service('temporal'))).toEqual([{ host: '127.0.0.1', container: 7233 }]);
    expect(published(service('temporal-ui'))).toEqual([{ host: '127.0.0.1', container: 8080 }]);
    expect(rawEnv(service('temporal-ui')).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(service('postgresql').ports).toBeUndefined();
  });

  test('runs the warehouse database beside Temporal’s: its own volume, loopback, password only from a secret', () => {
    const warehouse = service('warehouse');
    expect(warehouse.image).toMatch(/^postgres:\d+$/);
    const env = rawEnv(warehouse);
    expect(env.POSTGRES_PASSWORD).toBeUndefined();
    expect(env.POSTGRES_PASSWORD_FILE).toBe('/run/secrets/warehouse_password');
    const top = z
      .object({ secrets: z.record(z.string(), z.object({ environment: z.string() })) })
      .parse(parseYaml(COMPOSE_TEXT));
    expect(top.secrets.warehouse_password).toEqual({ environment: 'SPARKIFY_WAREHOUSE_PASSWORD' });
    expect(bindMounts(warehouse).map((m) => m.source)).toEqual(['warehouse-data']);
    expect((warehouse.ports ?? []).map((p) => substitute(String(p), {}))).toEqual(['127.0.0.1:5433:5432']);
    // The worker hands the steps a host and a secret's name; the config agrees with the service.
    const config = loadConfig({ env: resolvedEnv(service('worker'), EXAMPLE) });
    expect(config.warehouse).toMatchObject({
      host: EXAMPLE.SPARKIFY_WAREHOUSE_HOST,
      user: env.POSTGRES_USER,
    });
    expect(config.warehouse.database).toBe(env.POSTGRES_DB);
    expect(config.warehouse.secretId).toBeUndefined();
    expect(
      loadConfig({
        env: resolvedEnv(service('worker'), {
          ...EXAMPLE,
          SPARKIFY_WAREHOUSE_SECRET_ID: 'sparkify/warehouse',
        }),
      }).warehouse.secretId,
    ).toBe('sparkify/warehouse');
  });

  test('runs every command, entrypoint and health check in exec form', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const [key, value] of Object.entries({ command: s.command, entrypoint: s.entrypoint })) {
        if (value === undefined) continue;
        expect({ name, key, exec: StringList.safeParse(value).success }).toEqual({ name, key, exec: true });
      }
      if (s.healthcheck) {
        const test = StringList.parse(s.healthcheck.test);
        expect({ name, first: test[0] }).toEqual({ name, first: 'CMD' });
      }
    }
  });

  test('gives the worker only settings the config knows, and the ones it needs', () => {
    const env = rawEnv(service('worker'));
    const names = Object.keys(env);
    const configNames = names.filter((n) => /^(SPARKIFY|TEMPORAL)_/.test(n));
    expect(configNames.filter((n) => !(n in ENV_SETTINGS))).toEqual([]);
    // AWS access is the SDK's default chain: a profile name at most, never keys.
    expect(names.filter((n) => !configNames.includes(n))).toEqual(['AWS_PROFILE']);

    expect(env.SPARKIFY_TEMPORAL_ADDRESS).toBe('temporal:7233');
    for (const name of [
      'SPARKIFY_EMR_CLUSTER_ID',
      'SPARKIFY_RAW_URI',
      'SPARKIFY_LAKE_URI',
      'SPARKIFY_CODE_URI',
    ]) {
      expect({ name, value: env[name] }).toEqual({
        name,
        value: expect.stringMatching(`^\\$\\{${name}:\\?.+\\}$`),
      });
    }
  });

  test('fails with a message when a required variable is not set', () => {
    const { SPARKIFY_LAKE_URI: _omitted, ...rest } = EXAMPLE;
    expect(() => resolvedEnv(service('worker'), rest)).toThrow(/SPARKIFY_LAKE_URI.*deploy\/\.env\.example/);
  });

  test('deploy/.env.example sets every required variable and holds no credentials', () => {
    for (const name of requiredVars(COMPOSE_TEXT))
      expect({ name, set: (EXAMPLE[name] ?? '') !== '' }).toEqual({ name, set: true });
    expect(Object.keys(EXAMPLE).filter((k) => /SECRET|ACCESS_KEY|SESSION_TOKEN|API_KEY/.test(k))).toEqual([]);
  });

  test("the worker's environment, from .env.example, is a valid config", () => {
    const env = resolvedEnv(service('worker'), EXAMPLE);
    const config = loadConfig({ env });
    expect(config.temporal.address).toBe('temporal:7233');
    expect(config.emr.clusterId).toBe(EXAMPLE.SPARKIFY_EMR_CLUSTER_ID);
    expect(config.emr.region).toBe(EXAMPLE.SPARKIFY_EMR_REGION);
    expect(config.storage).toEqual({
      raw: EXAMPLE.SPARKIFY_RAW_URI,
      lake: EXAMPLE.SPARKIFY_LAKE_URI,
      code: EXAMPLE.SPARKIFY_CODE_URI,
    });
    // The real cluster, not the local stand-in.
    expect(config.emr.endpoint).toBeUndefined();
    expect(config.s3.endpoint).toBeUndefined();
  });

  test('with only the required variables set, the defaults are a valid config too', () => {
    const vars = Object.fromEntries(requiredVars(COMPOSE_TEXT).map((n) => [n, EXAMPLE[n]]));
    const config = loadConfig({ env: resolvedEnv(service('worker'), vars) });
    expect(config.temporal.address).toBe('temporal:7233');
    expect(config.temporal.namespace).toBe('default');
  });

  test('the server, the setup job, the UI and the worker agree on the namespace', () => {
    for (const vars of [EXAMPLE, { ...EXAMPLE, SPARKIFY_TEMPORAL_NAMESPACE: 'sparkify-prod' }]) {
      const namespace = loadConfig({ env: resolvedEnv(service('worker'), vars) }).temporal.namespace;
      expect(resolvedEnv(service('temporal'), vars).DEFAULT_NAMESPACE).toBe(namespace);
      expect(resolvedEnv(service('temporal-setup'), vars).TEMPORAL_NAMESPACE).toBe(namespace);
      expect(resolvedEnv(service('temporal-ui'), vars).TEMPORAL_DEFAULT_NAMESPACE).toBe(namespace);
    }
  });

  test('sets Temporal up on PostgreSQL with the dynamic config from deploy/', () => {
    const temporal = service('temporal');
    const env = resolvedEnv(temporal, EXAMPLE);
    expect(env).toMatchObject({ DB: 'postgres12', DB_PORT: '5432', POSTGRES_SEEDS: 'postgresql' });
    const pg = resolvedEnv(service('postgresql'), EXAMPLE);
    expect(env.POSTGRES_USER).toBe(pg.POSTGRES_USER);
    expect(env.POSTGRES_PWD).toBe(pg.POSTGRES_PASSWORD);
    expect(rawEnv(temporal).POSTGRES_PWD).toBe('${POSTGRES_PASSWORD:-temporal}');
    expect(temporal.depends_on).toEqual({ postgresql: { condition: 'service_healthy' } });

    // auto-setup resolves DYNAMIC_CONFIG_FILE_PATH against /etc/temporal.
    const file = repoFileMountedAt(temporal, path.posix.join('/etc/temporal', env.DYNAMIC_CONFIG_FILE_PATH!));
    expect(file).toBeDefined();
    const dynamic = z
      .record(z.string(), z.array(z.object({ value: z.unknown(), constraints: z.object({}).optional() })))
      .parse(parseYaml(readFileSync(file!, 'utf8')));
    expect(dynamic['system.forceSearchAttributesCacheRefreshOnRead']?.[0]?.value).toBe(true);
  });

  test('registers exactly the search attributes the workflows use', () => {
    const setup = service('temporal-setup');
    const args = StringList.parse(setup.command);
    const registered: string[] = [];
    for (let i = 0; i < args.length; i += 4) {
      expect([args[i], args[i + 2]]).toEqual(['--name', '--type']);
      registered.push(`${args[i + 1]}=${args[i + 3]}`);
    }
    expect(registered.sort()).toEqual(searchAttributeFlags().sort());
    expect(registered).toHaveLength(SEARCH_ATTRIBUTES.length);
    expect(resolvedEnv(setup, EXAMPLE).TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(setup.depends_on).toEqual({ temporal: { condition: 'service_healthy' } });
  });

  test("the setup job's script is the one in deploy/", () => {
    const setup = service('temporal-setup');
    const entrypoint = StringList.parse(setup.entrypoint);
    expect(entrypoint[0]).toBe('/bin/sh');
    const script = repoFileMountedAt(setup, entrypoint[1]!);
    expect(script).toBe(path.join(ROOT, 'deploy/temporal/register-search-attributes.sh'));
    expect(existsSync(script!)).toBe(true);
  });

  test('starts the worker after the search attributes exist, and mounts ~/.aws read-only', () => {
    const worker = service('worker');
    expect(worker.depends_on).toEqual({
      temporal: { condition: 'service_healthy' },
      'temporal-setup': { condition: 'service_completed_successfully' },
    });
    expect(worker.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    for (const vars of [EXAMPLE, {}]) {
      const aws = bindMounts(worker, vars).filter((m) => m.target.endsWith('/.aws'));
      expect(aws).toEqual([{ source: '~/.aws', target: '/home/node/.aws', readOnly: true }]);
    }
    // The mount lands in the home of the user the image runs as.
    expect(
      finalStage()
        .filter((i) => i.op === 'USER')
        .at(-1)?.args,
    ).toBe('node');
  });

  test("the worker's command runs the compiled worker with node alone", () => {
    const command =
      service('worker').command === undefined ? imageCommand() : StringList.parse(service('worker').command);
    expect(command[0]).toBe('node');
    expect(command).not.toContain('--require');
    const scripts = command.filter((a) => /\.(ts|js)$/.test(a));
    expect(scripts).toEqual(['dist/worker/main.js']);
    expect(existsSync(path.join(ROOT, sourceOf(scripts[0]!)))).toBe(true);
    // npm ci --omit=dev: tsx is a dev convenience now, so the image need not (and does not) carry it.
    const pkg = z
      .object({
        dependencies: z.record(z.string(), z.string()),
        devDependencies: z.record(z.string(), z.string()),
        bin: z.record(z.string(), z.string()),
      })
      .parse(JSON.parse(read('package.json')));
    expect(pkg.dependencies.tsx).toBeUndefined();
    expect(pkg.devDependencies.tsx).toBeDefined();
    // The `sparkify` bin is the compiled CLI too.
    expect(pkg.bin).toEqual({ sparkify: 'dist/client/bin.js' });
    expect(existsSync(path.join(ROOT, sourceOf(pkg.bin.sparkify!)))).toBe(true);
  });
});

describe('Dockerfile', () => {
  test('downloads the JDBC driver warehouse/jdbc.json pins, checked by its sha256', () => {
    const jdbc = z
      .object({ version: z.string(), sha256: z.string() })
      .parse(JSON.parse(read('warehouse/jdbc.json')));
    const add = finalStage().find((i) => i.op === 'ADD' && i.args.includes('postgresql'));
    expect(add?.args).toContain(`--checksum=sha256:${jdbc.sha256}`);
    expect(add?.args).toContain(`/postgresql/${jdbc.version}/postgresql-${jdbc.version}.jar`);
    const env = finalStage().find((i) => i.op === 'ENV' && i.args.startsWith('SPARKIFY_JDBC_JAR='));
    expect(env?.args).toBe(`SPARKIFY_JDBC_JAR=/app/jars/postgresql-${jdbc.version}.jar`);
  });

  test('builds in stages on an LTS Node of 22 or later, and runs as a non-root user', () => {
    const all = dockerfileInstructions();
    // The AWS SDK for JavaScript needs Node 22 or later for its releases from January 2027; LTS
    // lines are the even ones.
    const image = all.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='))?.args;
    const major = Number(/^NODE_IMAGE=node:(\d+)-bookworm-slim$/.exec(image ?? '')?.[1]);
    expect({ image, lts: major >= 22 && major % 2 === 0 }).toEqual({ image, lts: true });
    expect(stages().map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    for (const s of stages()) expect(s.instructions[0]!.args).toMatch(/^\$\{NODE_IMAGE\} AS /);
    // build: every dependency, then `npm run build`; deps: the production tree only.
    const runs = (name: string) =>
      stage(name)
        .instructions.filter((i) => i.op === 'RUN')
        .map((i) => i.args);
    expect(runs('build').some((r) => /npm ci\b/.test(r) && !/--omit=dev/.test(r))).toBe(true);
    expect(runs('build').at(-1)).toBe('npm run build');
    expect(runs('deps').some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true);
    expect(copies(finalStage()).find((c) => c.from === 'deps')).toMatchObject({
      sources: ['/app/node_modules'],
      dest: './node_modules',
    });
    const user = finalStage()
      .filter((i) => i.op === 'USER')
      .at(-1)?.args;
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    // No Spark or Java in the image: EMR runs Spark.
    expect(read('Dockerfile')).not.toMatch(/openjdk|default-jre|pyspark|spark-submit/i);
  });

  test('CMD and ENTRYPOINT are in exec form and run compiled files the image carries', () => {
    for (const i of finalStage().filter((x) => x.op === 'CMD' || x.op === 'ENTRYPOINT')) {
      expect({ op: i.op, exec: execForm(i.args) !== undefined }).toEqual({ op: i.op, exec: true });
    }
    const files = imageCommand().filter((a) => /\.(ts|js)$/.test(a));
    expect(files).toEqual(['dist/worker/main.js']);
    for (const f of files) {
      expect(fromBuild().some((c) => f.startsWith(`${c}/`))).toBe(true);
      expect(existsSync(path.join(ROOT, sourceOf(f)))).toBe(true);
    }
    // `npm run build` writes the worker's prebuilt workflow bundle where the image copies from.
    expect(fromBuild()).toContain('dist/workflows');
  });

  test('runs the worker with its memory settings (worker/process-settings.ts), as npm start and the bench do', () => {
    const command = imageCommand();
    expect(command.slice(1, -1)).toEqual([...WORKER_NODE_FLAGS]);
    const env = Object.fromEntries(
      finalStage()
        .filter((i) => i.op === 'ENV')
        .map((i) => i.args.split('=', 2) as [string, string]),
    );
    for (const [name, value] of Object.entries(WORKER_ENV))
      expect({ name, value: env[name] }).toEqual({ name, value });
    const start = z
      .object({ scripts: z.object({ start: z.string() }) })
      .parse(JSON.parse(read('package.json'))).scripts.start;
    expect(start).toBe(
      [
        ...Object.entries(WORKER_ENV).map(([k, v]) => `${k}=${v}`),
        'node',
        ...WORKER_NODE_FLAGS,
        'dist/worker/main.js',
      ].join(' '),
    );
  });

  test('copies only paths that exist, and .dockerignore does not drop them', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const s of stages()) {
      for (const p of contextPaths(s.instructions)) {
        expect({ p, exists: existsSync(path.join(ROOT, p)) }).toEqual({ p, exists: true });
        expect({ p, ignored: ignored.includes(p) || ignored.includes(`${p}/`) }).toEqual({
          p,
          ignored: false,
        });
      }
    }
    // Local settings, credentials and a host build never reach a builder.
    for (const p of ['.env', 'dl.cfg', '.aws', 'node_modules', '.sparkify', 'dist'])
      expect(ignored).toContain(p);
  });

  test('builds and copies every top-level directory the worker and the CLI reach', () => {
    const reached = reachableTopLevelDirs(['worker/main.ts', 'client/main.ts', 'client/bin.ts']).filter(
      (d) => !(d in DEV_ONLY),
    );
    // Sanity: the scan follows imports and __dirname-relative paths alike.
    expect(reached).toEqual(expect.arrayContaining(['worker', 'activities', 'workflows', 'config', 'spark']));
    // The build stage has their sources; the build compiles them (tsconfig.build.json) or copies
    // what the code reads beside itself (scripts/build.ts DATA_FILES) into dist/ with the same
    // layout; the image copies each dist/<dir>.
    const context = new Set(contextPaths(stage('build').instructions));
    const built = new Set([...BUILD_CONFIG.include, ...DATA_FILES.map((d) => d.from.split('/')[0]!)]);
    const image = new Set(fromBuild());
    expect(reached.filter((d) => !context.has(d))).toEqual([]);
    expect(reached.filter((d) => !built.has(d))).toEqual([]);
    expect(reached.filter((d) => !image.has(`dist/${d}`))).toEqual([]);
    // The build reads only what its stage has.
    for (const d of [...BUILD_CONFIG.include, ...DATA_FILES.map((x) => x.from.split('/')[0]!)])
      expect({ d, inBuildStage: context.has(d) }).toEqual({ d, inBuildStage: true });
    expect(BUILD_CONFIG.compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
    // The dev harness is compiled (the CLI's `dev` runs it in a clone) but stays out of the image.
    expect(image.has('dist/dev')).toBe(false);
  });
});

/** Directories the code refers to that only `sparkify dev` uses; the stack replaces them. */
const DEV_ONLY: Record<string, string> = {
  '.tools': 'the Temporal CLI and dev server; compose runs the real server',
  '.venv': 'the local spark-submit for the local EMR; EMR runs Spark',
  '.sparkify': 'local state of the dev stack',
  dev: 'the dev harness (local EMR, generator, embedded stack) behind `sparkify dev` and `demo`',
};

/**
 * Top-level directories of the repo that the entry points need at run time: the directories of
 * every file reached through relative imports/requires, plus any `'../dir'` path literal in them
 * (e.g. `resolve(__dirname, '../spark')`), which an import scan alone would miss.
 */
function reachableTopLevelDirs(entries: string[]): string[] {
  const seen = new Set<string>();
  const dirs = new Set<string>();
  const queue = entries.map((e) => path.join(ROOT, e));
  const resolveFile = (base: string): string | undefined =>
    [base, `${base}.ts`, `${base}.js`, path.join(base, 'index.ts'), path.join(base, 'index.js')].find(
      (c) => existsSync(c) && statSync(c).isFile(),
    );
  const topLevel = (abs: string): string | undefined => {
    const rel = path.relative(ROOT, abs);
    if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    const first = rel.split(path.sep)[0]!;
    return rel.includes(path.sep) ? first : undefined;
  };
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const top = topLevel(file);
    if (top) dirs.add(top);
    const text = readFileSync(file, 'utf8');
    const literals = [
      ...[...text.matchAll(/['"](\.\.?\/[^'"\s]*)['"]/g)].map((m) => m[1]!),
      // resolve(__dirname, 'reports'): a path beside the file.
      ...[...text.matchAll(/__dirname,\s*['"]([^.'"\s][^'"\s]*)['"]/g)].map((m) => `./${m[1]!}`),
    ];
    for (const literal of literals) {
      const target = path.resolve(path.dirname(file), literal);
      const asFile = resolveFile(target);
      if (asFile && /\.(ts|js)$/.test(asFile)) queue.push(asFile);
      else if (existsSync(target)) {
        const t = topLevel(path.join(target, 'x'));
        if (t) dirs.add(t);
      }
    }
  }
  return [...dirs].sort();
}

describe('no credentials in the deployment files', () => {
  const files = [
    'docker-compose.yml',
    'Dockerfile',
    '.dockerignore',
    'docs/deploy.md',
    ...listFiles('deploy'),
  ];

  test.each(files)('%s', (file) => {
    const text = read(file);
    expect(text).not.toMatch(/\b(AKIA|ASIA)[0-9A-Z]{16}\b/);
    expect(text).not.toMatch(/aws_secret_access_key\s*[=:]\s*\S|aws_session_token\s*[=:]\s*\S/i);
    expect(text).not.toMatch(/AWS_(SECRET_ACCESS_KEY|ACCESS_KEY_ID|SESSION_TOKEN)\s*[=:]/);
    // A literal value; `"$(secret lookup)"` in the docs is the recommended way, not a leak.
    expect(text).not.toMatch(/TEMPORAL_API_KEY\s*[=:]\s*['"]?[\w.-]{8}/);
  });
});

function listFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}

describe('deploy/temporal/register-search-attributes.sh against a real server', () => {
  const script = path.join(ROOT, 'deploy/temporal/register-search-attributes.sh');
  const args = StringList.parse(service('temporal-setup').command);
  let server: ChildProcess | undefined;
  let dir: string;
  let address: string;

  const run = (argv: string[], timeoutS = 60) =>
    spawnSync('sh', [script, ...argv], {
      encoding: 'utf8',
      env: {
        ...process.env,
        PATH: `${path.dirname(TEMPORAL_CLI)}${path.delimiter}${process.env.PATH ?? ''}`,
        TEMPORAL_ADDRESS: address,
        TEMPORAL_NAMESPACE: 'default',
        SETUP_TIMEOUT_SECONDS: String(timeoutS),
      },
      timeout: (timeoutS + 30) * 1000,
    });

  beforeAll(async () => {
    if (!existsSync(TEMPORAL_CLI)) throw new Error(`${TEMPORAL_CLI} is missing: run scripts/setup`);
    dir = mkdtempSync(path.join(tmpdir(), 'sparkify-sa-'));
    address = `127.0.0.1:${await freePort()}`;
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('waits for the server, registers the attributes, and is idempotent', async () => {
    // Started after the script so that its wait-and-retry path runs too.
    const port = address.split(':')[1]!;
    const first = new Promise<ReturnType<typeof run>>((resolve) => {
      const child = spawn('sh', [script, ...args], {
        env: {
          ...process.env,
          PATH: `${path.dirname(TEMPORAL_CLI)}${path.delimiter}${process.env.PATH ?? ''}`,
          TEMPORAL_ADDRESS: address,
          SETUP_TIMEOUT_SECONDS: '60',
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (status) => resolve({ status, stdout, stderr } as ReturnType<typeof run>));
    });
    server = spawn(
      TEMPORAL_CLI,
      [
        'server',
        'start-dev',
        '--headless',
        '--ip',
        '127.0.0.1',
        '--port',
        port,
        '--db-filename',
        path.join(dir, 'db.sqlite'),
        '--log-level',
        'error',
      ],
      { stdio: 'ignore' },
    );
    const result = await first;
    expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    expect(result.stdout).toMatch(/SparkifyAssets \(KeywordList\): registered/);

    const again = run(args);
    expect(again.status).toBe(0);
    expect(again.stdout.match(/already registered/g)).toHaveLength(SEARCH_ATTRIBUTES.length);

    const connection = await Connection.connect({ address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: 'default',
      });
      const typeCode: Record<string, number> = { KEYWORD: 2, KEYWORD_LIST: 7 };
      for (const key of SEARCH_ATTRIBUTES)
        expect({ [key.name]: customAttributes?.[key.name] }).toEqual({ [key.name]: typeCode[key.type] });
    } finally {
      await connection.close();
    }
  });

  test('refuses an attribute that exists with another type', () => {
    const result = run(['--name', 'SparkifyRunKind', '--type', 'KeywordList'], 5);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/SparkifyRunKind is registered on default as Keyword, not KeywordList/);
  });

  test('rejects arguments that are not --name/--type pairs', () => {
    const result = run(['--name', 'SparkifyRunKind'], 5);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/--name NAME --type TYPE/);
  });
});
