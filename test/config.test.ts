/**
 * The config schema takes values of the right type only: no coercion of null, lists, mappings or
 * booleans into numbers, and in the environment numbers are digits and flags are words.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, ENV_SETTINGS, loadConfig, type Config } from '../config/config';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sparkify-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** loadConfig from this YAML (as an object, or as text) and environment, never ./sparkify.yaml. */
function load(yaml: unknown = {}, env: Record<string, string> = {}): Config {
  const file = join(dir, `config-${files++}.yaml`);
  writeFileSync(file, typeof yaml === 'string' ? yaml : stringify(yaml));
  return loadConfig({ file, env });
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

const HOUR = 'schedule.hour (env SPARKIFY_SCHEDULE_HOUR): expected a whole number from 0 to 23, got';
const STEPS = 'concurrency.steps (env SPARKIFY_STEP_CONCURRENCY): expected a whole number from 1 to 64, got';
const PORT =
  'dev.temporalPort (env SPARKIFY_DEV_TEMPORAL_PORT): expected a whole number from 1 to 65535, got';
const TLS =
  'temporal.tls (env SPARKIFY_TEMPORAL_TLS): expected true or false (in the environment also 1/0, yes/no), got';

describe('refused in the YAML file, with the setting and its variable named', () => {
  test.each<[string, string, string]>([
    ['schedule:\n  hour: null\n', HOUR, 'null'],
    ['schedule:\n  hour: ~\n', HOUR, 'null'],
    ['schedule:\n  hour: []\n', HOUR, 'a list'],
    ['schedule:\n  hour: [3]\n', HOUR, 'a list'],
    ['schedule:\n  hour: {}\n', HOUR, 'a mapping'],
    ['schedule:\n  hour: ""\n', HOUR, '""'],
    ['schedule:\n  hour: "2"\n', HOUR, '"2"'],
    ['schedule:\n  hour: 2.5\n', HOUR, '2.5'],
    ['schedule:\n  hour: 24\n', HOUR, '24'],
    ['schedule:\n  hour: -1\n', HOUR, '-1'],
    ['schedule:\n  hour: true\n', HOUR, 'true'],
    ['schedule:\n  hour: .inf\n', HOUR, 'Infinity'],
    ['concurrency:\n  steps: true\n', STEPS, 'true'],
    ['concurrency:\n  steps: null\n', STEPS, 'null'],
    ['concurrency:\n  steps: 0\n', STEPS, '0'],
    ['dev:\n  temporalPort: true\n', PORT, 'true'],
    ['dev:\n  temporalPort: [7233]\n', PORT, 'a list'],
    ['dev:\n  temporalPort: 70000\n', PORT, '70000'],
    [
      'emr:\n  pollInitialMs: {ms: 5}\n',
      'emr.pollInitialMs (env SPARKIFY_EMR_POLL_INITIAL_MS): expected a whole number of at least 10, got',
      'a mapping',
    ],
    ['temporal:\n  tls: null\n', TLS, 'null'],
    ['temporal:\n  tls: "yes"\n', TLS, '"yes"'],
    ['temporal:\n  tls: yes\n', TLS, '"yes"'],
    ['temporal:\n  tls: 1\n', TLS, '1'],
    ['temporal:\n  tls: [true]\n', TLS, 'a list'],
    [
      'temporal:\n  address: null\n',
      'temporal.address (env SPARKIFY_TEMPORAL_ADDRESS): expected a non-empty string, got',
      'null',
    ],
    [
      'temporal:\n  namespace: [a, b]\n',
      'temporal.namespace (env SPARKIFY_TEMPORAL_NAMESPACE): expected a non-empty string, got',
      'a list',
    ],
    [
      'temporal:\n  tlsCaPath: {path: ca.pem}\n',
      'temporal.tlsCaPath (env SPARKIFY_TEMPORAL_TLS_CA): expected a string, got',
      'a mapping',
    ],
    [
      'schedule:\n  overlap: null\n',
      'schedule.overlap (env SPARKIFY_SCHEDULE_OVERLAP): expected one of SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, ALLOW_ALL, got',
      'null',
    ],
    [
      'storage:\n  lake: [a]\n',
      'storage.lake (env SPARKIFY_LAKE_URI): expected a local path, file:///abs/path, or s3://bucket/prefix, got',
      'a list',
    ],
    [
      'emr:\n  endpoint: 8990\n',
      'emr.endpoint (env SPARKIFY_EMR_ENDPOINT): expected a URL such as https://host:port, got',
      '8990',
    ],
    [
      'emr:\n  clusterId: null\n',
      'emr.clusterId (env SPARKIFY_EMR_CLUSTER_ID): expected an EMR cluster id such as j-1ABCDEF2GHIJK, got',
      'null',
    ],
    ['emr: [a]\n', 'emr: expected a mapping of settings, got', 'a list'],
    ['emr: null\n', 'emr: expected a mapping of settings, got', 'null'],
  ])('%j', (yaml, message, got) => {
    expect(refusal(() => load(yaml))).toContain(`${message} ${got}`);
  });

  test('unknown keys, in a section or at the top', () => {
    expect(refusal(() => load({ schedule: { hours: 3 } }))).toMatch(/schedule: Unrecognized key: "hours"/);
    expect(refusal(() => load({ sheduler: {} }))).toMatch(/\(root\): Unrecognized key: "sheduler"/);
  });

  test('every problem is listed, not only the first', () => {
    const message = refusal(() => load({ schedule: { hour: null, minute: [] }, dev: { uiPort: true } }));
    expect(message).toContain(`${HOUR} null`);
    expect(message).toContain(
      'schedule.minute (env SPARKIFY_SCHEDULE_MINUTE): expected a whole number from 0 to 59, got a list',
    );
    expect(message).toContain(
      'dev.uiPort (env SPARKIFY_DEV_UI_PORT): expected a whole number from 1 to 65535, got true',
    );
  });

  test('a wrong section with an environment override is refused, not a crash', () => {
    expect(refusal(() => load('schedule: daily\n', { SPARKIFY_SCHEDULE_HOUR: '3' }))).toContain(
      'schedule: expected a mapping of settings, got "daily"',
    );
    expect(refusal(() => load('schedule: null\n', { SPARKIFY_SCHEDULE_HOUR: '3' }))).toContain(
      'schedule: expected a mapping of settings, got null',
    );
  });
});

describe('refused in the environment', () => {
  test.each<[string, string, string]>([
    ['SPARKIFY_SCHEDULE_HOUR', '2.5', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '0x10', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', ' 2', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '2 ', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', 'true', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '-1', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '+2', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '1e1', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', 'null', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '[]', HOUR],
    ['SPARKIFY_SCHEDULE_HOUR', '24', HOUR],
    ['SPARKIFY_STEP_CONCURRENCY', 'true', STEPS],
    ['SPARKIFY_STEP_CONCURRENCY', '0', STEPS],
    ['SPARKIFY_DEV_TEMPORAL_PORT', 'true', PORT],
    ['SPARKIFY_DEV_TEMPORAL_PORT', '65536', PORT],
    ['SPARKIFY_TEMPORAL_TLS', 'maybe', TLS],
    ['SPARKIFY_TEMPORAL_TLS', 'TRUE', TLS],
    ['SPARKIFY_TEMPORAL_TLS', '', TLS],
    ['SPARKIFY_TEMPORAL_TLS', '2', TLS],
    [
      'SPARKIFY_TEMPORAL_CONNECT_TIMEOUT_MS',
      '50',
      'temporal.connectTimeoutMs (env SPARKIFY_TEMPORAL_CONNECT_TIMEOUT_MS): expected a whole number of at least 100, got',
    ],
    [
      'SPARKIFY_SCHEDULE_OVERLAP',
      'buffer_one',
      'schedule.overlap (env SPARKIFY_SCHEDULE_OVERLAP): expected one of SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, ALLOW_ALL, got',
    ],
  ])('%s=%j', (name, value, message) => {
    // Digits reach a number setting as a number (refused for its range); the rest as the string.
    const numeric = message.includes('whole number') && /^[0-9]+$/.test(value);
    const shown = numeric ? value : JSON.stringify(value);
    expect(refusal(() => load({}, { [name]: value }))).toContain(`${message} ${shown}`);
  });
});

describe('accepted', () => {
  test('nothing set: the defaults', () => {
    expect(load('')).toEqual({
      temporal: {
        address: '127.0.0.1:7233',
        namespace: 'default',
        taskQueue: 'sparkify-lake',
        connectTimeoutMs: 10_000,
        tls: false,
      },
      emr: {
        clusterId: 'j-SPARKIFYLOCAL',
        region: 'us-east-1',
        pollInitialMs: 10_000,
        pollMaxMs: 60_000,
        stepHeartbeatTimeoutMs: 120_000,
        fuseSteps: 'daily',
        outageToleranceMs: 43_200_000,
        instanceHourUsd: 0.24,
        instanceCount: 3,
      },
      s3: {},
      storage: { raw: '.sparkify/raw', lake: '.sparkify/lake', code: '.sparkify/code' },
      concurrency: { steps: 2, months: 2 },
      schedule: {
        id: 'sparkify-daily',
        hour: 2,
        minute: 0,
        selection: '*',
        overlap: 'BUFFER_ONE',
        catchupWindowDays: 7,
      },
      warehouse: { host: '127.0.0.1', port: 5433, database: 'sparkify', user: 'sparkify', ssl: false },
      ui: { host: '127.0.0.1', port: 8240 },
      dev: { temporalPort: 7233, uiPort: 8233, emrPort: 8990, stateDir: '.sparkify' },
    });
  });

  test('a price is a decimal (YAML number, or digits with a fraction in the environment)', () => {
    expect(load('emr:\n  instanceHourUsd: 0.192\n').emr.instanceHourUsd).toBe(0.192);
    expect(load({}, { SPARKIFY_EMR_INSTANCE_HOUR_USD: '1.5' }).emr.instanceHourUsd).toBe(1.5);
    expect(load({}, { SPARKIFY_EMR_INSTANCE_HOUR_USD: '2' }).emr.instanceHourUsd).toBe(2);
    for (const value of ['1e1', '.5', '-1', '1,5', '']) {
      expect(refusal(() => load({}, { SPARKIFY_EMR_INSTANCE_HOUR_USD: value }))).toContain(
        `emr.instanceHourUsd (env SPARKIFY_EMR_INSTANCE_HOUR_USD): expected a number of at least 0, got ${JSON.stringify(value)}`,
      );
    }
    // Whole-number settings still take digits only.
    expect(refusal(() => load({}, { SPARKIFY_EMR_INSTANCE_COUNT: '2.5' }))).toContain(
      'emr.instanceCount (env SPARKIFY_EMR_INSTANCE_COUNT): expected a whole number of at least 1, got "2.5"',
    );
  });

  test('the page token comes from the environment only, and a refusal never repeats it', () => {
    expect(load({}, { SPARKIFY_UI_TOKEN: 'a-long-enough-token' }).ui.token).toBe('a-long-enough-token');
    expect(refusal(() => load({ ui: { token: 'a-long-enough-token' } }))).toContain(
      'ui.token is a credential and must not be stored in a file; set SPARKIFY_UI_TOKEN in the environment instead',
    );
    const short = refusal(() => load({}, { SPARKIFY_UI_TOKEN: 'tooshort' }));
    expect(short).toContain('ui.token (env SPARKIFY_UI_TOKEN): expected a token of at least 16 characters');
    expect(short).not.toContain('tooshort');
  });

  test('YAML numbers and booleans', () => {
    const c = load(
      'schedule:\n  hour: 0\n  minute: 59\n  catchupWindowDays: 0\nconcurrency:\n  steps: 64\n  months: 2.0\n' +
        'dev:\n  temporalPort: 1\n  uiPort: 65535\ntemporal:\n  tls: true\n',
    );
    expect(c.schedule).toMatchObject({ hour: 0, minute: 59, catchupWindowDays: 0 });
    expect(c.concurrency).toEqual({ steps: 64, months: 2 });
    expect(c.dev).toMatchObject({ temporalPort: 1, uiPort: 65535 });
    expect(c.temporal.tls).toBe(true);
    expect(load({ temporal: { tls: false } }).temporal.tls).toBe(false);
  });

  test.each([
    ['SPARKIFY_WAREHOUSE_PORT', '5432', (c: Config) => c.warehouse.port, 5432],
    ['SPARKIFY_WAREHOUSE_SSL', 'yes', (c: Config) => c.warehouse.ssl, true],
    [
      'SPARKIFY_WAREHOUSE_SECRET_ID',
      'sparkify/warehouse',
      (c: Config) => c.warehouse.secretId,
      'sparkify/warehouse',
    ],
    ['SPARKIFY_SCHEDULE_HOUR', '23', (c: Config) => c.schedule.hour, 23],
    ['SPARKIFY_SCHEDULE_HOUR', '0', (c: Config) => c.schedule.hour, 0],
    ['SPARKIFY_SCHEDULE_HOUR', '07', (c: Config) => c.schedule.hour, 7],
    ['SPARKIFY_STEP_CONCURRENCY', '2', (c: Config) => c.concurrency.steps, 2],
    ['SPARKIFY_DEV_TEMPORAL_PORT', '17233', (c: Config) => c.dev.temporalPort, 17233],
    ['SPARKIFY_EMR_HEARTBEAT_TIMEOUT_MS', '1000', (c: Config) => c.emr.stepHeartbeatTimeoutMs, 1000],
    ['SPARKIFY_EMR_OUTAGE_TOLERANCE_MS', '60000', (c: Config) => c.emr.outageToleranceMs, 60_000],
    ['SPARKIFY_TEMPORAL_CONNECT_TIMEOUT_MS', '500', (c: Config) => c.temporal.connectTimeoutMs, 500],
    ['SPARKIFY_TEMPORAL_TLS', 'true', (c: Config) => c.temporal.tls, true],
    ['SPARKIFY_TEMPORAL_TLS', '1', (c: Config) => c.temporal.tls, true],
    ['SPARKIFY_TEMPORAL_TLS', 'yes', (c: Config) => c.temporal.tls, true],
    ['SPARKIFY_TEMPORAL_TLS', 'false', (c: Config) => c.temporal.tls, false],
    ['SPARKIFY_TEMPORAL_TLS', '0', (c: Config) => c.temporal.tls, false],
    ['SPARKIFY_TEMPORAL_TLS', 'no', (c: Config) => c.temporal.tls, false],
    // Text settings keep their strings, digits included.
    ['SPARKIFY_TEMPORAL_NAMESPACE', '2', (c: Config) => c.temporal.namespace, '2'],
    ['SPARKIFY_SCHEDULE_SELECTION', 'true', (c: Config) => c.schedule.selection, 'true'],
    // An empty text variable is unset.
    ['SPARKIFY_EMR_ENDPOINT', '', (c: Config) => c.emr.endpoint, undefined],
    ['SPARKIFY_TEMPORAL_ADDRESS', '', (c: Config) => c.temporal.address, '127.0.0.1:7233'],
  ] as const)('%s=%j', (name, value, get, expected) => {
    expect(get(load({}, { [name]: value }))).toBe(expected);
  });

  test('the environment wins over the file', () => {
    const c = load(
      { schedule: { hour: 5 }, temporal: { tls: true } },
      {
        SPARKIFY_SCHEDULE_HOUR: '6',
        SPARKIFY_TEMPORAL_TLS: 'no',
      },
    );
    expect(c.schedule.hour).toBe(6);
    expect(c.temporal.tls).toBe(false);
  });

  test('every environment variable names a setting of the schema', () => {
    for (const name of Object.keys(ENV_SETTINGS)) {
      // A value of some type reaches the schema: refused or not, it is never an unknown setting.
      expect(() => {
        try {
          load({}, { [name]: '1' });
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
      }).not.toThrow();
    }
  });
});
