import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { QueryDefinition } from '@temporalio/common';
import logUpdate from 'log-update';
import { progressQuery, type materialize } from '../workflows';
import type { MaterializeResult } from '../workflows/types';
import { renderRun } from './render';

/**
 * Waits for a workflow's result, redrawing its progress from a query while it runs (only on
 * a terminal; piped output gets the final result alone).
 */
export async function follow<R, P>(
  handle: WorkflowHandle,
  opts: {
    query: QueryDefinition<P, []>;
    render: (progress: P) => string;
    live: boolean;
    intervalMs?: number;
  },
): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let drawing: Promise<void> | undefined;
  if (opts.live) {
    const draw = async () => {
      try {
        const progress = await handle.query(opts.query);
        if (!stopped) logUpdate(opts.render(progress));
      } catch {
        // Not answerable yet (first workflow task, or between continue-as-new runs): next tick.
      }
      if (!stopped) {
        timer = setTimeout(() => {
          drawing = draw();
        }, opts.intervalMs ?? 1000);
      }
    };
    drawing = draw();
  }
  try {
    return (await handle.result()) as R;
  } catch (err) {
    // A run that failed carries its result in the failure's details: show it like any result.
    const carried = carriedResult<R>(err);
    if (carried !== undefined) return carried;
    throw err;
  } finally {
    stopped = true;
    if (timer) clearTimeout(timer);
    // A query still in flight ends before the caller may close the connection under it.
    await drawing;
    if (opts.live) logUpdate.clear();
  }
}

export function watchRun(
  handle: WorkflowHandle<typeof materialize>,
  opts: { live: boolean; intervalMs?: number },
): Promise<MaterializeResult> {
  return follow<MaterializeResult, MaterializeResult>(handle, {
    query: progressQuery,
    render: renderRun,
    ...opts,
  });
}

/** The result a failed materialize or backfill put in its failure's details, if it did. */
export function carriedResult<R>(err: unknown): R | undefined {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  if (
    cause instanceof ApplicationFailure &&
    ['MaterializationFailed', 'BackfillFailed'].includes(cause.type ?? '')
  ) {
    return cause.details?.[0] as R | undefined;
  }
  return undefined;
}
