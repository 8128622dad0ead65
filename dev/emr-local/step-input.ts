import fs from 'node:fs';
import path from 'node:path';
import { DayRangeSchema, daysIn } from '../../assets';
import { logDayKey } from '../../lake/fingerprints';
import { localDirOf } from '../../lake/store';
import { applicationArgs } from './command';

/**
 * How many bytes of log_data a Sparkify step will read, from its own arguments (docs/contracts.md:
 * `--raw`, `--start`, `--end`) and the sizes of those days' files: what the local EMR picks its
 * driver's JVM options by. Undefined when it cannot tell without reading a remote store (an `s3://` raw
 * root) or the step is not one of ours; the local EMR then starts the driver as for a small step.
 */
export function stepLogBytes(sparkSubmitArgs: readonly string[]): number | undefined {
  const app = applicationArgs(sparkSubmitArgs);
  const value = (flag: string) => {
    const i = app.indexOf(flag);
    return i >= 0 ? app[i + 1] : undefined;
  };
  const raw = value('--raw');
  const root = raw ? localDirOf(raw) : undefined;
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
