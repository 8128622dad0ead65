import { WorkflowIdConflictPolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { describeRange, graph, selectAssets, type DayRange } from '../assets';
import type { Config } from '../config/config';
import { materialize } from '../workflows';
import { materializeAttributes } from '../workflows/search-attributes';
import { runDetails, runSummary } from '../workflows/summaries';
import type { PartitionFilter } from '../lake/freshness';
import type { MaterializeInput, RunKind } from '../workflows/types';

/**
 * Readable and deterministic: the same selection and range give the same id, so starting an
 * identical materialization while one runs joins it instead of running it twice.
 */
export function materializeWorkflowId(
  selection: string,
  range: DayRange,
  only: PartitionFilter = 'outdated',
): string {
  return `materialize-${selectionTag(selection)}-${describeRange(range)}${filterTag(only)}`;
}

/** Part of a run's id, so a forced run never joins an ordinary one (or the other way round). */
export function filterTag(only: PartitionFilter): string {
  return only === 'outdated' ? '' : only === 'all' ? '-force' : `-only-${only}`;
}

/** The selected assets as a readable id part: `all`, or `songs+songplays`. */
export function selectionTag(selection: string): string {
  const assets = selectAssets(graph, selection);
  return assets.length === graph.order.length ? 'all' : assets.join('+');
}

export interface StartedRun {
  handle: WorkflowHandle<typeof materialize>;
  joined: boolean;
}

export async function startMaterialize(
  client: Client,
  config: Config,
  opts: { selection: string; range: DayRange; runKind?: RunKind; only?: PartitionFilter },
): Promise<StartedRun> {
  const only = opts.only ?? 'outdated';
  const workflowId = materializeWorkflowId(opts.selection, opts.range, only);
  const input: MaterializeInput = {
    selection: opts.selection,
    range: opts.range,
    runKind: opts.runKind ?? 'manual',
    only,
    fuse: config.emr.fuseSteps,
    maxParallelSteps: config.concurrency.steps,
    stepHeartbeatTimeoutMs: config.emr.stepHeartbeatTimeoutMs,
  };
  const joined = await isRunning(client, workflowId);
  const assets = selectAssets(graph, opts.selection);
  const attributes = materializeAttributes({ ...opts, only, runKind: input.runKind ?? 'manual', assets });
  const handle = await client.workflow.start(materialize, {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    // Set at start, so the run need not upsert them (materializeAttributes).
    typedSearchAttributes: attributes.searchAttributes,
    memo: attributes.memo,
    staticSummary: runSummary(assets, opts.range, input.runKind ?? 'manual'),
    staticDetails: runDetails({
      selection: opts.selection,
      assets,
      range: opts.range,
      only,
      lake: config.storage.lake,
    }),
  });
  return { handle, joined };
}

/** Only for telling the user; USE_EXISTING is what actually prevents a second run. */
async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    return d.status.name === 'RUNNING';
  } catch {
    return false;
  }
}
