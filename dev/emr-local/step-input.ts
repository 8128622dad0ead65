import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DayRangeSchema, daysIn } from '../../assets';
import { logDayKey } from '../../lake/fingerprints';
import { applicationArgs } from './command';

/**
 * How many bytes of log_data a Sparkify step will read, from its own arguments (docs/contracts.md:
 * `--raw`, `--start`, `--end`) and the sizes of those days' files: what the local EMR picks its
 * driver's JIT by. Undefined when it cannot tell without reading a remote store (an `s3://` raw
 * root) or the step is not one of ours; the local EMR then starts the driver as for a small step.
 */
export function stepLogBytes(sparkSubmitArgs: readonly string[]): number | undefined {
  const app = applicationArgs(sparkSubmitArgs);
  const value = (flag: string) => {
    const i = app.indexOf(flag);
    return i >= 0 ? app[i + 1] : undefined;
  };
  const root = localRoot(value('--raw'));
  // Validated before they become file paths; a step this cannot read is left to the job to refuse.
  const range = DayRangeSchema.safeParse({ start: value('--start'), end: value('--end') });
  if (root === undefined || !range.success) return undefined;
  let bytes = 0;
  for (const day of daysIn(range.data)) {
    try {
      bytes += fs.statSync(path.join(root, logDayKey(day))).size;
    } catch {
      // no file for that day: nothing to read
    }
  }
  return bytes;
}

/** The local directory a raw root names, or undefined for a remote one. */
function localRoot(uri: string | undefined): string | undefined {
  if (uri === undefined || uri === '') return undefined;
  if (uri.startsWith('file:')) {
    try {
      return fileURLToPath(uri);
    } catch {
      return undefined;
    }
  }
  return path.isAbsolute(uri) ? uri : undefined;
}
