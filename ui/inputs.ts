import { daysIn, monthRange, type AssetSpec } from '../assets';
import { logDayFingerprints, songDataFingerprint, type InputFingerprints } from '../lake/fingerprints';
import type { Lake } from '../lake/store';

/**
 * The raw inputs' fingerprints the page's staleness needs, from listings (one per month of
 * log_data, one of song_data), kept for `ttlMs`: a view of ten years would otherwise list 120
 * months of raw data each time it is drawn. A raw input that changes shows as stale at most
 * `ttlMs` later; the page says when the inputs were checked.
 */
export class InputFingerprintCache {
  private readonly months = new Map<string, { at: number; value: Promise<Record<string, string>> }>();
  private songData?: { at: number; value: Promise<string> };

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
    let oldest = Infinity;
    if (needs.has('song_data')) {
      const entry = this.fresh(this.songData) ?? { at: this.now(), value: songDataFingerprint(this.raw) };
      this.songData = entry;
      oldest = Math.min(oldest, entry.at);
      inputs.song_data = await this.settle(entry.value, () => (this.songData = undefined));
    }
    if (needs.has('log_data') && days.length > 0) {
      const months = [...new Set(days.map((d) => d.slice(0, 7)))];
      const perMonth = await Promise.all(
        months.map((m) => {
          const entry = this.fresh(this.months.get(m)) ?? {
            at: this.now(),
            value: logDayFingerprints(this.raw, daysIn(monthRange(m))),
          };
          this.months.set(m, entry);
          oldest = Math.min(oldest, entry.at);
          return this.settle(entry.value, () => this.months.delete(m));
        }),
      );
      inputs.log_data = Object.assign({}, ...perMonth) as Record<string, string>;
    }
    return { inputs, checkedAt: Number.isFinite(oldest) ? new Date(oldest).toISOString() : null };
  }

  private fresh<T extends { at: number }>(entry: T | undefined): T | undefined {
    return entry && this.now() - entry.at < this.ttlMs ? entry : undefined;
  }

  /** A failed listing is not kept: the next view tries again. */
  private async settle<T>(value: Promise<T>, forget: () => void): Promise<T> {
    try {
      return await value;
    } catch (err) {
      forget();
      throw err;
    }
  }
}
