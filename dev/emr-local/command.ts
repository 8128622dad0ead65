import path from 'node:path';

export interface CommandOptions extends ClusterSpark {
  sparkSubmit: string;
  master: string;
  allowedCommands: readonly string[];
}

/**
 * What the cluster itself gives every Spark step, as EMR does with what it installs on its nodes
 * and keeps in spark-defaults.conf: a step never names these, and its own options override them.
 */
export interface ClusterSpark {
  /** Jars on the drivers' (and executors') classpath, e.g. the S3A connector (./s3a.ts). */
  classPath?: readonly string[];
  /** Spark settings, e.g. `spark.hadoop.fs.s3a.endpoint`. */
  sparkDefaults?: Readonly<Record<string, string>>;
}

/** JVM choices for one step's driver. */
export interface StepJvm {
  /** Extra options, e.g. its class-data-sharing archive. */
  driverJavaOptions?: string;
  /** Bytes of input the step will read, when known: a large one gets the JVM's defaults. */
  inputBytes?: number;
}

export type Translation = { ok: true; command: string; args: string[] } | { ok: false; reason: string };

const UNSUPPORTED =
  'local EMR runs only command-runner.jar steps whose first argument is spark-submit' +
  ' (or a command allowed by allowedCommands)';

// spark-submit options that take no value; every other `--option` consumes the next argument.
const SPARK_FLAGS = new Set(['--verbose', '-v', '--help', '-h', '--version', '--supervise', '--usage-error']);

/**
 * Maps an EMR step (command-runner.jar + Args) onto a local command. Local mode cannot run the
 * driver "in the cluster", so `--deploy-mode cluster` goes and a local master is added; only the
 * spark-submit options are touched, never the application's own arguments.
 */
export function translateStep(
  jar: string,
  args: readonly string[],
  opts: CommandOptions,
  jvm: StepJvm = {},
): Translation {
  if (path.basename(jar) !== 'command-runner.jar') {
    return { ok: false, reason: `${UNSUPPORTED}; got jar ${jar}` };
  }
  const [first, ...rest] = args;
  if (first === undefined || first === '') {
    return { ok: false, reason: `${UNSUPPORTED}; command-runner.jar got no command` };
  }
  if (!opts.allowedCommands.includes(first)) {
    return { ok: false, reason: `${UNSUPPORTED}; got command ${first}` };
  }
  if (first !== 'spark-submit') return { ok: true, command: first, args: rest };
  return {
    ok: true,
    command: opts.sparkSubmit,
    args: translateSparkSubmitArgs(rest, opts.master, jvm, opts),
  };
}

/** spark-submit's own options and where the application (its resource, then its arguments) starts. */
function splitSparkSubmitArgs(args: readonly string[]): {
  options: string[];
  app: number;
  hasMaster: boolean;
} {
  const options: string[] = [];
  let hasMaster = false;
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('-')) break; // the application resource: the rest belongs to the app
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const takesValue = eq < 0 && !SPARK_FLAGS.has(name);
    const value = takesValue ? args[i + 1] : eq > 0 ? arg.slice(eq + 1) : undefined;
    if (takesValue) i++;
    if (name === '--deploy-mode' && value === 'cluster') continue;
    if (name === '--master') hasMaster = true;
    options.push(arg);
    if (takesValue && value !== undefined) options.push(value);
  }
  return { options, app: i, hasMaster };
}

/** The application's own arguments (after its resource) in spark-submit arguments. */
export function applicationArgs(args: readonly string[]): readonly string[] {
  return args.slice(splitSparkSubmitArgs(args).app + 1);
}

export function translateSparkSubmitArgs(
  args: readonly string[],
  master: string,
  jvm: StepJvm = {},
  cluster: ClusterSpark = {},
): string[] {
  const { options, app, hasMaster } = splitSparkSubmitArgs(args);
  return [
    ...(hasMaster ? [] : ['--master', master]),
    ...localConf(jvm),
    ...clusterConf(cluster),
    ...options,
    ...args.slice(app),
  ];
}

/** The cluster's own settings, before the step's options (which win, as on EMR). */
export function clusterConf(cluster: ClusterSpark): string[] {
  const out: string[] = [];
  for (const key of Object.keys(cluster.sparkDefaults ?? {}).sort()) {
    out.push('--conf', `${key}=${cluster.sparkDefaults![key]}`);
  }
  if (cluster.classPath && cluster.classPath.length > 0) {
    if (cluster.classPath.some((j) => j.includes(path.delimiter))) {
      throw new Error(`a classpath entry must not contain ${JSON.stringify(path.delimiter)}`);
    }
    // The launcher puts spark.driver.extraClassPath on the driver JVM's own classpath in client
    // mode: there Hadoop finds S3AFileSystem as EMR's drivers find EMRFS. (Executors run in the
    // driver's JVM on local[N]; the setting is for any other master.)
    const cp = cluster.classPath.join(path.delimiter);
    out.push('--conf', `spark.driver.extraClassPath=${cp}`, '--conf', `spark.executor.extraClassPath=${cp}`);
  }
  return out;
}

/**
 * Settings for one small machine, placed before the step's own options so a step can still
 * override them. They change speed, never results: the driver is the whole cluster here. Below
 * C1_ONLY_BELOW_BYTES of input its JIT stops at C1 and it collects with the serial collector: the
 * optimising compiler's thread would hold one of the two cores for most of a small step and pay
 * back little of it, and G1's threads cost CPU a small heap does not need. A larger step gets
 * the JVM's defaults: the serial collector ran a 1 GiB driver out of heap at 1.3 GB of events
 * (OutOfMemoryError in the songplays write) where G1 did not.
 */
export function localConf(jvm: StepJvm = {}): string[] {
  const small = jvm.inputBytes === undefined || jvm.inputBytes < C1_ONLY_BELOW_BYTES;
  const java = small ? ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'] : [];
  if (jvm.driverJavaOptions) java.push(jvm.driverJavaOptions);
  const javaConf = java.length ? ['--conf', `spark.driver.extraJavaOptions=${java.join(' ')}`] : [];
  return ['--conf', 'spark.ui.enabled=false', ...javaConf];
}

/**
 * Where C1 alone stops paying, measured on this kind of machine: spark/run.py, both sides with the
 * serial collector, alternating, 2 runs each (bench/README.md, seventh round). Wall time, C1 only
 * against both compilers: 31 MB of events 27-29 s against 32 s; 66 MB 35-37 against 35-41;
 * 103 MB 50-52 against 45-48; 273 MB 95-102 against 67-79 (G1 there: 77 s).
 */
export const C1_ONLY_BELOW_BYTES = 80 * 2 ** 20;

/** What a step of unknown or small input gets. */
export const LOCAL_CONF = localConf();

// log4j lines Spark writes to stderr ("25/11/27 22:00:00 INFO SparkContext: ...") drown the
// application's own error output, so they are left out of FailureDetails.
const SPARK_LOG_LINE = /^\d{2}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} (TRACE|DEBUG|INFO|WARN)\b/;
const EXCEPTION_LINE = /^(?:[A-Za-z_][\w$]*\.)*[A-Za-z_][\w$]*(?:Error|Exception|Exit)\b(?::.*)?$/;
const ARGPARSE_LINE = /^\S+: error: /;
export const MAX_FAILURE_MESSAGE = 1024;
const MAX_REASON = 256;

export interface FailureText {
  reason: string;
  message: string;
}

/** EMR-style FailureDetails text from the tail of a step's stderr. */
export function describeFailure(stderrTail: string, exitCode: number, signal: string | null): FailureText {
  const lines = stderrTail
    .split(/\r?\n/)
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== '' && !SPARK_LOG_LINE.test(line));
  let message = '';
  for (let i = lines.length - 1; i >= 0; i--) {
    const next = message === '' ? (lines[i] as string) : `${lines[i]}\n${message}`;
    if (next.length > MAX_FAILURE_MESSAGE) {
      if (message === '') message = (lines[i] as string).slice(-MAX_FAILURE_MESSAGE);
      break;
    }
    message = next;
  }
  const meaningful = [...lines]
    .reverse()
    .map((line) => line.trim())
    .find((line) => EXCEPTION_LINE.test(line) || ARGPARSE_LINE.test(line));
  const fallback = signal
    ? `Step failed: the process was killed by ${signal}`
    : `Step failed with exit code ${exitCode}`;
  // The exit code rides along because the Spark entrypoint's codes mean "retry or not".
  const reason = meaningful
    ? `${truncate(meaningful, MAX_REASON - 24)} (${signal ? `killed by ${signal}` : `exit code ${exitCode}`})`
    : fallback;
  return { reason, message };
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
