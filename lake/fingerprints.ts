import { createHash } from 'node:crypto';
import { DECLARATION, type AssetSpec } from '../assets';
import type { Lake } from './store';

/**
 * Fingerprints of the raw inputs, taken before a step reads them: a partition whose inputs'
 * fingerprints changed since it was built is stale. From listings only (key, size, ETag), so
 * taking one never reads the data.
 */

export interface InputFingerprints {
  /** The whole of song_data. */
  song_data?: string;
  /** One per day of log_data asked for; `absent` when the day has no file. */
  log_data?: Record<string, string>;
}

export const ABSENT = 'absent';

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export async function songDataFingerprint(raw: Lake): Promise<string> {
  const objects = await raw.list('song_data/');
  const hash = createHash('sha256');
  for (const o of objects) hash.update(`${o.key}\t${o.size}\t${o.etag}\n`);
  return hash.digest('hex').slice(0, 16);
}

export function logDayKey(day: string): string {
  return `log_data/${day.slice(0, 4)}/${day.slice(5, 7)}/${day}-events.json`;
}

/** One listing per month touched. */
export async function logDayFingerprints(
  raw: Lake,
  days: readonly string[],
): Promise<Record<string, string>> {
  const months = [...new Set(days.map((d) => d.slice(0, 7)))];
  const byKey = new Map<string, string>();
  await Promise.all(
    months.map(async (m) => {
      for (const o of await raw.list(`log_data/${m.slice(0, 4)}/${m.slice(5, 7)}/`)) {
        byKey.set(o.key, digest(`${o.size}\t${o.etag}`));
      }
    }),
  );
  return Object.fromEntries(days.map((d) => [d, byKey.get(logDayKey(d)) ?? ABSENT]));
}

/** The fingerprints of whatever the given assets read, for the given days. */
export async function fingerprintsFor(
  raw: Lake,
  specs: readonly AssetSpec[],
  days: readonly string[],
): Promise<InputFingerprints> {
  const inputs = new Set(specs.flatMap((s) => s.inputs));
  const out: InputFingerprints = {};
  if (inputs.has('song_data')) out.song_data = await songDataFingerprint(raw);
  if (inputs.has('log_data') && days.length > 0) out.log_data = await logDayFingerprints(raw, days);
  return out;
}

/** What one partition of an asset read: a daily input's fingerprint of that day, a whole input's. */
export function inputsOfPartition(
  spec: AssetSpec,
  partition: string,
  fingerprints: InputFingerprints,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const input of spec.inputs) {
    const daily = DECLARATION.inputs[input]?.partitioning === 'daily';
    const value = daily
      ? (fingerprints[input as 'log_data']?.[partition] ?? undefined)
      : (fingerprints[input as 'song_data'] ?? undefined);
    if (value !== undefined) out[input] = value;
  }
  return out;
}
