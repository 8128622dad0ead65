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

const uri = z
  .string()
  .min(1)
  .refine((v) => /^(s3a?:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?|file:\/\/\/.*|[^:]*)$/.test(v), {
    message: 'expected a local path, file:///abs/path, or s3://bucket/prefix',
  });

const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(1).max(65535);

export const ConfigSchema = z
  .object({
    temporal: z
      .object({
        address: z.string().min(1).default('127.0.0.1:7233'),
        namespace: z.string().min(1).default('default'),
        taskQueue: z.string().min(1).default('sparkify-lake'),
        tls: flag.default(false),
        tlsServerName: z.string().optional(),
        tlsCaPath: z.string().optional(),
        tlsCertPath: z.string().optional(),
        tlsKeyPath: z.string().optional(),
        apiKey: z.string().optional(),
      })
      .strict()
      .prefault({}),
    emr: z
      .object({
        clusterId: z
          .string()
          .regex(/^j-[A-Z0-9]{1,64}$/, 'an EMR cluster id looks like j-1ABCDEF2GHIJK')
          .default('j-SPARKIFYLOCAL'),
        region: z.string().min(1).default('us-east-1'),
        endpoint: z.url().optional(),
        logUri: z.string().optional(),
        pollInitialMs: z.coerce.number().int().min(10).default(10_000),
        pollMaxMs: z.coerce.number().int().min(10).default(60_000),
        /** A step activity silent this long is retried on another worker, where it re-attaches. */
        stepHeartbeatTimeoutMs: z.coerce.number().int().min(1000).default(120_000),
      })
      .strict()
      .prefault({}),
    s3: z
      .object({
        endpoint: z.url().optional(),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        raw: uri.default('.sparkify/raw'),
        lake: uri.default('.sparkify/lake'),
        code: uri.default('.sparkify/code'),
      })
      .strict()
      .prefault({}),
    concurrency: z
      .object({
        steps: z.coerce.number().int().min(1).max(64).default(2),
        months: z.coerce.number().int().min(1).max(64).default(2),
      })
      .strict()
      .prefault({}),
    schedule: z
      .object({
        id: z.string().min(1).default('sparkify-daily'),
        hour: z.coerce.number().int().min(0).max(23).default(2),
        minute: z.coerce.number().int().min(0).max(59).default(0),
        selection: z.string().min(1).default('*'),
        overlap: z
          .enum(['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'ALLOW_ALL'])
          .default('BUFFER_ONE'),
        catchupWindowDays: z.coerce.number().int().min(0).max(365).default(7),
      })
      .strict()
      .prefault({}),
    dev: z
      .object({
        temporalPort: port.default(7233),
        uiPort: port.default(8233),
        emrPort: port.default(8990),
        stateDir: z.string().default('.sparkify'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;

/** Environment variable → dotted setting path. Documented in the README. */
export const ENV_SETTINGS: Record<string, string> = {
  SPARKIFY_TEMPORAL_ADDRESS: 'temporal.address',
  SPARKIFY_TEMPORAL_NAMESPACE: 'temporal.namespace',
  SPARKIFY_TEMPORAL_TASK_QUEUE: 'temporal.taskQueue',
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
  SPARKIFY_DEV_TEMPORAL_PORT: 'dev.temporalPort',
  SPARKIFY_DEV_UI_PORT: 'dev.uiPort',
  SPARKIFY_DEV_EMR_PORT: 'dev.emrPort',
  SPARKIFY_STATE_DIR: 'dev.stateDir',
};

const SECRET_SETTINGS = new Set(['temporal.apiKey']);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const [section, key] = path.split('.') as [string, string];
  const sectionObj = (target[section] ??= {}) as Record<string, unknown>;
  sectionObj[key] = value;
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
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(
        `config file ${file}: expected a mapping of sections (temporal, emr, storage, ...)`,
      );
    }
    for (const secret of SECRET_SETTINGS) {
      const [section, key] = secret.split('.') as [string, string];
      if ((parsed as Record<string, Record<string, unknown> | undefined>)[section]?.[key] !== undefined) {
        throw new ConfigError(
          `config file ${file}: ${secret} is a credential and must not be stored in a file; set ${envNameOf(secret)} in the environment instead`,
        );
      }
    }
    Object.assign(raw, parsed);
  }
  for (const [name, path] of Object.entries(ENV_SETTINGS)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, path, value);
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
