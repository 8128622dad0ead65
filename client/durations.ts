import { graph } from '../assets';
import { readManifests } from '../lake/manifests';
import type { Lake } from '../lake/store';

/**
 * The median duration, in seconds, of each step's recent successful runs (from the EMR step's
 * own start and end as the manifests recorded them): what a plan estimates its polling from.
 */
export async function recentStepDurations(lake: Lake, perAsset = 50): Promise<Record<string, number>> {
  const byStep = new Map<string, number[]>();
  for (const asset of graph.order) {
    const manifests = [...(await readManifests(lake, asset)).values()].slice(-perAsset);
    for (const m of manifests) {
      const r = m.lastSuccess;
      if (!r?.startedAt || !r.endedAt) continue;
      const s = (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000;
      if (Number.isFinite(s) && s >= 0) byStep.set(r.step, [...(byStep.get(r.step) ?? []), s]);
    }
  }
  const out: Record<string, number> = {};
  for (const [step, values] of byStep) {
    const sorted = [...values].sort((a, b) => a - b);
    out[step] = sorted[Math.floor(sorted.length / 2)]!;
  }
  return out;
}
