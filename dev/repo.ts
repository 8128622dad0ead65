import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The checkout's root: the nearest directory above `from` with a package.json. The dev harness
 * finds `.venv` and `.tools` from it, so the same code works from the sources (dev/…) and
 * compiled (dist/dev/…, one level deeper).
 */
export function findRepoRoot(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}: not in a checkout`);
  }
}

export const REPO_ROOT = findRepoRoot();
