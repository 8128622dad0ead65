import { daysIn, monthRange, type AssetSpec } from '../assets';
import { logDayFingerprints, songDataFingerprint, type InputFingerprints } from '../lake/fingerprints';
import type { Lake } from '../lake/store';

/**
 * The raw inputs' fingerprints the page's staleness needs, from listings (one per month of
 * log_data, one of song_data). A view of ten years would otherwise list 120 months of raw data
 * each time it is drawn, so listings are kept and, once older than `ttlMs`, refreshed in the
 * background while views go on using the last one (stale-while-revalidate): a view waits for a
 * listing only when it has none at all. So a changed raw input shows as stale on the page at most
 * `ttlMs` plus one listing later; the page says when the inputs it used were listed.
 */

interface Entry<T> {
  /** When the value in hand was listed. */
  at: number;
  value: Promise<T>;
  refreshing: boolean;
}

export class InputFingerprintCache {
  private readonly months = new Map<string, Entry<Record<string, string>>>();
  private readonly songData = new Map<string, Entry<string>>();

  constructor(
    private readonly raw: Lake,
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(
    specs: readonly AssetSpec[],
    days: readonly string[],
  ): Promise<{ inputs: InputFingerprints; checkedAt: string | null }> {
    const needs = new Set(specs.flatMap((s) => s.inputs));
    const inputs: InputFingerprints = {};
    const used: Entry<unknown>[] = [];
    if (needs.has('song_data')) {
      const entry = this.entry(this.songData, 'all', () => songDataFingerprint(this.raw));
      used.push(entry);
      inputs.song_data = await entry.value;
    }
    if (needs.has('log_data') && days.length > 0) {
      const months = [...new Set(days.map((d) => d.slice(0, 7)))];
      const perMonth = await Promise.all(
        months.map((m) => {
          const entry = this.entry(this.months, m, () => logDayFingerprints(this.raw, daysIn(monthRange(m))));
          used.push(entry);
          return entry.value;
        }),
      );
      inputs.log_data = Object.assign({}, ...perMonth) as Record<string, string>;
    }
    const oldest = Math.min(...used.map((e) => e.at));
    return { inputs, checkedAt: Number.isFinite(oldest) ? new Date(oldest).toISOString() : null };
  }

  private entry<T>(map: Map<string, Entry<T>>, key: string, list: () => Promise<T>): Entry<T> {
    const found = map.get(key);
    if (!found) {
      const entry: Entry<T> = { at: this.now(), value: list(), refreshing: false };
      // A failed listing is not kept: the next view tries again.
      entry.value.catch(() => map.get(key) === entry && map.delete(key));
      map.set(key, entry);
      return entry;
    }
    if (this.now() - found.at >= this.ttlMs && !found.refreshing) {
      found.refreshing = true;
      const at = this.now();
      list().then(
        (value) => map.set(key, { at, value: Promise.resolve(value), refreshing: false }),
        () => (found.refreshing = false),
      );
    }
    return found;
  }
}
