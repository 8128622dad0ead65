import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * One schema for every setting. Values come from an optional YAML file and from environment
 * variables (which win), so the same worker image runs on a laptop and on a real cluster.
 * Credentials never appear here: AWS comes from the SDK's default chain, and the Temporal API
 * key is read from the environment only.
 */

/** How a refused value reads in a message: `null`, `a list`, `"2.5"`, `24`. */
function shown(input: unknown): string {
  if (input === null) return 'null';
  if (input === undefined) return 'nothing';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'string') return JSON.stringify(input);
  return String(input as number | boolean | bigint);
}

/** One message for every way a value can be wrong: its type, its format, its range. */
function expecting(what: string) {
  return { error: (issue: { input?: unknown }) => `expected ${what}, got ${shown(issue.input)}` };
}

/**
 * A whole number: a YAML number, or in the environment a string of digits only (see fromEnv).
 * No coercion: null, true, [] or "2.5" are refused, not turned into 0, 1 or 2.
 */
function wholeNumber(min: number, max?: number) {
  const what =
    max === undefined ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`;
  const atLeast = z.number(expecting(what)).int().min(min);
  return max === undefined ? atLeast : atLeast.max(max);
}

/** A number with a fraction, e.g. a price: a YAML number, or in the environment digits with an optional `.digits`. */
function decimal(min: number) {
  // zod 4 refuses Infinity and NaN in z.number() already.
  return z.number(expecting(`a number of at least ${min}`)).min(min);
}

/** A YAML boolean, or in the environment true/false/1/0/yes/no (see fromEnv). */
const flag = () => z.boolean(expecting('true or false (in the environment also 1/0, yes/no)'));

const text = () => z.string(expecting('a non-empty string')).min(1);
const optionalText = () => z.string(expecting('a string')).optional();
const url = () => z.url(expecting('a URL such as https://host:port')).optional();

const URI_FORMS = 'a local path, file:///abs/path, or s3://bucket/prefix';
const uri = () =>
  z
    .string(expecting(URI_FORMS))
    .min(1)
    .refine(
      (v) => /^(s3a?:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?|file:\/\/\/.*|[^:]*)$/.test(v),
      expecting(URI_FORMS),
    );

const port = () => wholeNumber(1, 65535);

/** A section of settings: a mapping with known keys only; absent means all defaults. */
function section<Shape extends z.ZodRawShape>(shape: Shape) {
  const notAMapping = expecting('a mapping of settings').error;
  // Unknown keys keep zod's message, which names them.
  const mapping = z
    .object(shape, { error: (issue) => (issue.code === 'invalid_type' ? notAMapping(issue) : undefined) })
    .strict();
  // Every setting has a default or is optional, so {} is a valid input; TypeScript cannot see it.
  return mapping.prefault({} as z.input<typeof mapping>);
}

const OVERLAP_POLICIES = ['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'ALLOW_ALL'] as const;
const FUSE_MODES = ['none', 'daily', 'all'] as const;

export const ConfigSchema = z
  .object({
    temporal: section({
      address: text().default('127.0.0.1:7233'),
      namespace: text().default('default'),
      taskQueue: text().default('sparkify-lake'),
      /** How long the CLI's client keeps trying to reach the server before it gives up. */
      connectTimeoutMs: wholeNumber(100).default(10_000),
      tls: flag().default(false),
      tlsServerName: optionalText(),
      tlsCaPath: optionalText(),
      tlsCertPath: optionalText(),
      tlsKeyPath: optionalText(),
      apiKey: optionalText(),
    }),
    emr: section({
      clusterId: z
        .string(expecting('an EMR cluster id such as j-1ABCDEF2GHIJK'))
        .regex(/^j-[A-Z0-9]{1,64}$/, 'an EMR cluster id looks like j-1ABCDEF2GHIJK')
        .default('j-SPARKIFYLOCAL'),
      region: text().default('us-east-1'),
      endpoint: url(),
      logUri: optionalText(),
      pollInitialMs: wholeNumber(10).default(10_000),
      pollMaxMs: wholeNumber(10).default(60_000),
      /** A step activity silent this long is retried on another worker, where it re-attaches. */
      stepHeartbeatTimeoutMs: wholeNumber(1000).default(120_000),
      /** Which steps of a run share one EMR step (assets/derive.ts fuseSteps). */
      fuseSteps: z.enum(FUSE_MODES, expecting(`one of ${FUSE_MODES.join(', ')}`)).default('daily'),
      /**
       * How long a step activity rides out an EMR API that does not answer (unreachable, 5xx,
       * throttled) before its attempt fails; the step runs on meanwhile. Default: the step
       * activity's own timeout, 12 h.
       */
      outageToleranceMs: wholeNumber(1000).default(12 * 3_600_000),
      /**
       * What one instance of the cluster costs per hour (EC2 + EMR), for the page's cost
       * estimates. Default: m5.xlarge on demand in us-east-1 ($0.192 + $0.048).
       */
      instanceHourUsd: decimal(0).default(0.24),
      /** Instances in the cluster (primary + core + task), for the same estimates. */
      instanceCount: wholeNumber(1).default(3),
    }),
    s3: section({
      endpoint: url(),
    }),
    storage: section({
      raw: uri().default('.sparkify/raw'),
      lake: uri().default('.sparkify/lake'),
      code: uri().default('.sparkify/code'),
    }),
    concurrency: section({
      steps: wholeNumber(1, 64).default(2),
      months: wholeNumber(1, 64).default(2),
    }),
    schedule: section({
      id: text().default('sparkify-daily'),
      hour: wholeNumber(0, 23).default(2),
      minute: wholeNumber(0, 59).default(0),
      selection: text().default('*'),
      overlap: z
        .enum(OVERLAP_POLICIES, expecting(`one of ${OVERLAP_POLICIES.join(', ')}`))
        .default('BUFFER_ONE'),
      catchupWindowDays: wholeNumber(0, 365).default(7),
    }),
    /**
     * The serving database (PostgreSQL) the warehouse_* assets load. No password here: the load
     * reads it from AWS Secrets Manager (secretId) or PGPASSWORD in its environment, the CLI from
     * PGPASSWORD. `sparkify dev` runs an embedded one on host:port (loopback).
     */
    warehouse: section({
      host: z
        .string(expecting('a host name or IP address'))
        .regex(/^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:]+\]$/, 'expected a host name or IP address')
        .default('127.0.0.1'),
      port: port().default(5433),
      database: z
        .string(expecting('a database name'))
        .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'expected a database name: letters, digits, _ and -')
        .default('sparkify'),
      user: z
        .string(expecting('a user name'))
        .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,62}$/, 'expected a user name: letters, digits, _, . and -')
        .default('sparkify'),
      /** sslmode=require (RDS enforces TLS by default). */
      ssl: flag().default(false),
      /** AWS Secrets Manager secret (name or ARN) holding the password, read by the load on EMR. */
      secretId: optionalText(),
      /** Its region; default emr.region. */
      secretRegion: optionalText(),
    }),
    /** The web page (`sparkify ui`; also started by `sparkify dev` and the demo). */
    ui: section({
      /** Loopback by default; any other address needs a token. */
      host: text().default('127.0.0.1'),
      port: port().default(8240),
      /** Required by every request when set; required to bind to anything but loopback. */
      token: z
        .string(expecting('a token of at least 16 characters'))
        // A secret: the message must not repeat it.
        .min(16, 'expected a token of at least 16 characters (the value is not shown)')
        .optional(),
      /** Where the Temporal Web UI is, for links (default: the dev server's, on dev.uiPort). */
      temporalWebUrl: url(),
    }),
    dev: section({
      temporalPort: port().default(7233),
      uiPort: port().default(8233),
      emrPort: port().default(8990),
      stateDir: text().default('.sparkify'),
    }),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;

/** Environment variable → dotted setting path. Documented in the README. */
export const ENV_SETTINGS: Record<string, string> = {
  SPARKIFY_TEMPORAL_ADDRESS: 'temporal.address',
  SPARKIFY_TEMPORAL_NAMESPACE: 'temporal.namespace',
  SPARKIFY_TEMPORAL_TASK_QUEUE: 'temporal.taskQueue',
  SPARKIFY_TEMPORAL_CONNECT_TIMEOUT_MS: 'temporal.connectTimeoutMs',
  SPARKIFY_TEMPORAL_TLS: 'temporal.tls',
  SPARKIFY_TEMPORAL_TLS_SERVER_NAME: 'temporal.tlsServerName',
  SPARKIFY_TEMPORAL_TLS_CA: 'temporal.tlsCaPath',
  SPARKIFY_TEMPORAL_TLS_CERT: 'temporal.tlsCertPath',
  SPARKIFY_TEMPORAL_TLS_KEY: 'temporal.tlsKeyPath',
  TEMPORAL_API_KEY: 'temporal.apiKey',
  SPARKIFY_EMR_CLUSTER_ID: 'emr.clusterId',
  SPARKIFY_EMR_REGION: 'emr.region',
  SPARKIFY_EMR_ENDPOINT: 'emr.endpoint',
  SPARKIFY_EMR_LOG_URI: 'emr.logUri',
  SPARKIFY_EMR_POLL_INITIAL_MS: 'emr.pollInitialMs',
  SPARKIFY_EMR_POLL_MAX_MS: 'emr.pollMaxMs',
  SPARKIFY_EMR_HEARTBEAT_TIMEOUT_MS: 'emr.stepHeartbeatTimeoutMs',
  SPARKIFY_EMR_FUSE_STEPS: 'emr.fuseSteps',
  SPARKIFY_EMR_OUTAGE_TOLERANCE_MS: 'emr.outageToleranceMs',
  SPARKIFY_EMR_INSTANCE_HOUR_USD: 'emr.instanceHourUsd',
  SPARKIFY_EMR_INSTANCE_COUNT: 'emr.instanceCount',
  SPARKIFY_S3_ENDPOINT: 's3.endpoint',
  SPARKIFY_RAW_URI: 'storage.raw',
  SPARKIFY_LAKE_URI: 'storage.lake',
  SPARKIFY_CODE_URI: 'storage.code',
  SPARKIFY_STEP_CONCURRENCY: 'concurrency.steps',
  SPARKIFY_MONTH_CONCURRENCY: 'concurrency.months',
  SPARKIFY_SCHEDULE_ID: 'schedule.id',
  SPARKIFY_SCHEDULE_HOUR: 'schedule.hour',
  SPARKIFY_SCHEDULE_MINUTE: 'schedule.minute',
  SPARKIFY_SCHEDULE_SELECTION: 'schedule.selection',
  SPARKIFY_SCHEDULE_OVERLAP: 'schedule.overlap',
  SPARKIFY_SCHEDULE_CATCHUP_DAYS: 'schedule.catchupWindowDays',
  SPARKIFY_WAREHOUSE_HOST: 'warehouse.host',
  SPARKIFY_WAREHOUSE_PORT: 'warehouse.port',
  SPARKIFY_WAREHOUSE_DATABASE: 'warehouse.database',
  SPARKIFY_WAREHOUSE_USER: 'warehouse.user',
  SPARKIFY_WAREHOUSE_SSL: 'warehouse.ssl',
  SPARKIFY_WAREHOUSE_SECRET_ID: 'warehouse.secretId',
  SPARKIFY_WAREHOUSE_SECRET_REGION: 'warehouse.secretRegion',
  SPARKIFY_UI_HOST: 'ui.host',
  SPARKIFY_UI_PORT: 'ui.port',
  SPARKIFY_UI_TOKEN: 'ui.token',
  SPARKIFY_TEMPORAL_WEB_URL: 'ui.temporalWebUrl',
  SPARKIFY_DEV_TEMPORAL_PORT: 'dev.temporalPort',
  SPARKIFY_DEV_UI_PORT: 'dev.uiPort',
  SPARKIFY_DEV_EMR_PORT: 'dev.emrPort',
  SPARKIFY_STATE_DIR: 'dev.stateDir',
};

const SECRET_SETTINGS = new Set(['temporal.apiKey', 'ui.token']);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const [name, key] = path.split('.') as [string, string];
  if (target[name] === undefined) target[name] = {};
  // A section the file got wrong (null, a list, a string) stays wrong: the schema names it.
  const sectionObj = target[name];
  if (isMapping(sectionObj)) sectionObj[key] = value;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional)
    s = s.unwrap() as z.ZodType;
  return s;
}

/** The schema of one setting, without its default or optionality. */
function settingSchema(path: string): z.ZodType {
  const [name, key] = path.split('.') as [string, string];
  const sectionSchema = unwrap((ConfigSchema.shape as Record<string, z.ZodType>)[name]!);
  const leaf =
    sectionSchema instanceof z.ZodObject
      ? (sectionSchema.shape as Record<string, z.ZodType>)[key]
      : undefined;
  if (!leaf) throw new Error(`ENV_SETTINGS names ${path}, which the config schema does not have`);
  return unwrap(leaf);
}

const ENV_FLAGS: Record<string, boolean> = {
  true: true,
  false: false,
  1: true,
  0: false,
  yes: true,
  no: false,
};

/**
 * An environment variable's string as the setting's type: digits only for a number, one of
 * true/false/1/0/yes/no for a flag. Anything else is passed on as the string, for the schema to
 * refuse with the value shown. Returns undefined for an empty variable of a text setting (unset).
 */
function fromEnv(path: string, value: string): unknown {
  const schema = settingSchema(path);
  if (schema instanceof z.ZodNumber) {
    const digits = schema.isInt ? /^[0-9]+$/ : /^[0-9]+(\.[0-9]+)?$/;
    return digits.test(value) ? Number(value) : value;
  }
  if (schema instanceof z.ZodBoolean) return Object.hasOwn(ENV_FLAGS, value) ? ENV_FLAGS[value] : value;
  return value === '' ? undefined : value;
}

function envNameOf(path: string): string | undefined {
  return Object.entries(ENV_SETTINGS).find(([, p]) => p === path)?.[0];
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** YAML file; defaults to $SPARKIFY_CONFIG, then ./sparkify.yaml when it exists. */
  file?: string;
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const raw: Record<string, unknown> = {};
  const file =
    opts.file ?? env.SPARKIFY_CONFIG ?? (existsSync('sparkify.yaml') ? 'sparkify.yaml' : undefined);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(resolve(file), 'utf8');
    } catch (err) {
      throw new ConfigError(`config file ${file}: cannot be read (${(err as Error).message})`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError(`config file ${file}: not valid YAML (${(err as Error).message})`);
    }
    if (!isMapping(parsed)) {
      throw new ConfigError(
        `config file ${file}: expected a mapping of sections (temporal, emr, storage, ...)`,
      );
    }
    for (const secret of SECRET_SETTINGS) {
      const [section, key] = secret.split('.') as [string, string];
      const sectionObj = parsed[section];
      if (isMapping(sectionObj) && sectionObj[key] !== undefined) {
        throw new ConfigError(
          `config file ${file}: ${secret} is a credential and must not be stored in a file; set ${envNameOf(secret)} in the environment instead`,
        );
      }
    }
    Object.assign(raw, parsed);
  }
  for (const [name, path] of Object.entries(ENV_SETTINGS)) {
    const value = env[name];
    if (value === undefined) continue;
    const typed = fromEnv(path, value);
    if (typed !== undefined) setPath(raw, path, typed);
  }
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path.join('.');
      const envName = envNameOf(path);
      const where = envName ? `${path} (env ${envName})` : path || '(root)';
      return `  ${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
  }
  return result.data;
}
