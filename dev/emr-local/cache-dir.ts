import { homedir } from 'node:os';
import path from 'node:path';

/** The machine's Sparkify cache (scripts/setup's jars, the Temporal CLI, class-data archives). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.SPARKIFY_CACHE_DIR ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'sparkify-lake')
  );
}
