import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import declared from './jdbc.json';

/**
 * The PostgreSQL JDBC driver the warehouse load runs with (`spark-submit --jars`), as
 * warehouse/jdbc.json pins it. scripts/setup-jdbc caches it in the user cache dir (like the
 * Temporal CLI); the Dockerfile downloads it into the image; the code bundle ships it to EMR.
 */
export const JdbcDriverSchema = z.object({
  group: z.string().min(1),
  artifact: z.string().regex(/^[a-z0-9.-]+$/),
  version: z.string().regex(/^\d+\.\d+\.\d+$/),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export const JDBC_DRIVER = JdbcDriverSchema.parse(declared);
export const JDBC_JAR_NAME = `${JDBC_DRIVER.artifact}-${JDBC_DRIVER.version}.jar`;

/** Where the jar is: $SPARKIFY_JDBC_JAR, else the cache dir scripts/setup-jdbc fills. */
export function jdbcJarPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPARKIFY_JDBC_JAR) return resolve(env.SPARKIFY_JDBC_JAR);
  const cache =
    env.SPARKIFY_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'sparkify-lake');
  return resolve(cache, 'jars', JDBC_JAR_NAME);
}

/** The jar's path, or an error that says how to get it. */
export async function jdbcJar(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const jar = jdbcJarPath(env);
  try {
    await access(jar);
  } catch {
    throw new Error(
      `the PostgreSQL JDBC driver is not at ${jar}: run scripts/setup (it caches ${JDBC_JAR_NAME} from Maven Central) or set SPARKIFY_JDBC_JAR`,
    );
  }
  return jar;
}
