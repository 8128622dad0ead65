import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config/config';
import { cacheDir } from './cache-dir';
import declared from './s3a-jars.json';

/**
 * Spark on S3 off EMR. On EMR, `s3://` is EMRFS, installed on every node: steps ship no connector.
 * The local EMR plays the cluster, so it is the one that has the S3A connector (hadoop-aws and the
 * AWS SDK bundle, cached by scripts/setup-s3a) on its drivers' classpath, and the S3A settings in
 * its spark-defaults, with `s3://` served by S3A as EMR serves it by EMRFS; the steps stay exactly
 * what EMR runs. The jobs themselves read `s3://` as `s3a://` off EMR (spark/sparkify_jobs/args.py
 * to_hadoop_uri).
 */
const JarSchema = z.object({
  group: z.string().min(1),
  artifact: z.string().regex(/^[a-z0-9.-]+$/),
  version: z.string().regex(/^\d+\.\d+\.\d+$/),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export const S3A_JARS = z.object({ jars: z.array(JarSchema).min(1) }).parse(declared).jars;

/** The Hadoop release hadoop-aws is built for; pyspark's own Hadoop client must be the same. */
export const S3A_HADOOP_VERSION = S3A_JARS.find((j) => j.artifact === 'hadoop-aws')!.version;

/**
 * The AWS credentials S3A uses: the SDK's default chain (environment, system properties, web
 * identity, `~/.aws` profiles, container and instance roles), as the orchestrator's own S3 client
 * does. Never keys in a setting, a file or an argument.
 */
export const S3A_CREDENTIALS_PROVIDER = 'com.amazonaws.auth.DefaultAWSCredentialsProviderChain';

/** Where scripts/setup-s3a caches each jar. */
export function s3aJarPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  return S3A_JARS.map((j) => path.resolve(cacheDir(env), 'jars', `${j.artifact}-${j.version}.jar`));
}

/**
 * The S3A settings of a local cluster's spark-defaults, from the configuration: an S3-compatible
 * endpoint (`s3.endpoint`, e.g. moto or MinIO) is addressed path-style; without one, S3A talks to
 * AWS. Credentials come from the default chain ({@link S3A_CREDENTIALS_PROVIDER}).
 */
export function s3aSparkDefaults(opts: { endpoint?: string }): Record<string, string> {
  return {
    // s3:// is S3A here, as it is EMRFS on EMR: spark-submit fetches `s3://<code>/run.py`, the
    // zip and the jars itself, and a job may be handed s3:// URIs (it reads them as s3a:// anyway).
    'spark.hadoop.fs.s3.impl': 'org.apache.hadoop.fs.s3a.S3AFileSystem',
    'spark.hadoop.fs.AbstractFileSystem.s3.impl': 'org.apache.hadoop.fs.s3a.S3A',
    'spark.hadoop.fs.s3a.aws.credentials.provider': S3A_CREDENTIALS_PROVIDER,
    ...(opts.endpoint
      ? {
          'spark.hadoop.fs.s3a.endpoint': opts.endpoint,
          'spark.hadoop.fs.s3a.path.style.access': 'true',
        }
      : {}),
  };
}

/** pyspark's Hadoop client version (`hadoop-client-api-<v>.jar` beside spark-submit's venv), if found. */
export function sparkHadoopVersion(sparkSubmit: string): string | undefined {
  const lib = path.resolve(path.dirname(sparkSubmit), '..', 'lib');
  let pythons: string[];
  try {
    pythons = readdirSync(lib).filter((n) => n.startsWith('python'));
  } catch {
    return undefined;
  }
  for (const python of pythons) {
    const jars = path.join(lib, python, 'site-packages', 'pyspark', 'jars');
    if (!existsSync(jars)) continue;
    for (const name of readdirSync(jars)) {
      const m = /^hadoop-client-api-(\d+\.\d+\.\d+)\.jar$/.exec(name);
      if (m) return m[1];
    }
  }
  return undefined;
}

export interface S3aSupport {
  /** For startLocalEmr: the connector on the drivers' classpath. */
  classPath: string[];
  /** For startLocalEmr: the S3A settings, as EMR keeps them in the cluster's configuration. */
  sparkDefaults: Record<string, string>;
}

/**
 * What a local EMR needs to run steps that read and write S3: the cached connector and the S3A
 * settings. Fails, saying what to do, when the jars are not cached or do not match pyspark's Hadoop.
 */
export function s3aSupport(
  opts: { endpoint?: string; sparkSubmit?: string; env?: NodeJS.ProcessEnv } = {},
): S3aSupport {
  const jars = s3aJarPaths(opts.env);
  const missing = jars.filter((j) => !existsSync(j));
  if (missing.length > 0) {
    throw new Error(
      `the S3A connector is not cached (${missing.join(', ')}): run scripts/setup (scripts/setup-s3a fetches it from Maven Central)`,
    );
  }
  const hadoop = opts.sparkSubmit ? sparkHadoopVersion(opts.sparkSubmit) : undefined;
  if (hadoop !== undefined && hadoop !== S3A_HADOOP_VERSION) {
    throw new Error(
      `pyspark runs Hadoop ${hadoop} but dev/emr-local/s3a-jars.json pins hadoop-aws ${S3A_HADOOP_VERSION}: pin the hadoop-aws of pyspark's Hadoop and the AWS SDK bundle it was built against`,
    );
  }
  return { classPath: jars, sparkDefaults: s3aSparkDefaults({ endpoint: opts.endpoint }) };
}

/** Whether a configuration keeps anything on S3 (or names an S3 endpoint): then the steps need S3A. */
export function usesS3(config: Pick<Config, 'storage' | 's3'>): boolean {
  const { raw, lake, code } = config.storage;
  return config.s3.endpoint !== undefined || [raw, lake, code].some((uri) => /^s3a?:\/\//.test(uri));
}
