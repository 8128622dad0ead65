import type { WorkflowHandle } from '@temporalio/client';
import logUpdate from 'log-update';
import { progressQuery, type materialize } from '../workflows';
import type { MaterializeResult } from '../workflows/types';
import { renderRun } from './render';

/**
 * Waits for a materialization, redrawing its per-asset table from the workflow's progress
 * query while it runs (only on a terminal; piped output gets the final table alone).
 */
export async function watchRun(
  handle: WorkflowHandle<typeof materialize>,
  opts: { live: boolean; intervalMs?: number },
): Promise<MaterializeResult> {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  if (opts.live) {
    const draw = async () => {
      try {
        const progress = await handle.query(progressQuery);
        if (!stopped) logUpdate(renderRun(progress));
      } catch {
        // The first workflow task may not have run yet; the next tick draws.
      }
      if (!stopped) timer = setTimeout(draw, opts.intervalMs ?? 1000);
    };
    void draw();
  }
  try {
    return await handle.result();
  } finally {
    stopped = true;
    if (timer) clearTimeout(timer);
    if (opts.live) logUpdate.clear();
  }
}
