import { WorkflowIdConflictPolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { selectionTag } from './runs';
import type { Config } from '../config/config';
import { backfill, backfillProgressQuery, type BackfillInput } from '../workflows';
import type { BackfillProgress } from '../workflows/backfill';
import { follow } from './watch';

export function backfillWorkflowId(input: {
  selection: string;
  from: string;
  to: string;
  per?: string;
}): string {
  return `backfill-${selectionTag(input.selection)}-${input.from}..${input.to}${input.per === 'day' ? '-per-day' : ''}`;
}

export async function startBackfill(
  client: Client,
  config: Config,
  input: BackfillInput,
): Promise<WorkflowHandle<typeof backfill>> {
  return client.workflow.start(backfill, {
    taskQueue: config.temporal.taskQueue,
    workflowId: backfillWorkflowId(input),
    args: [
      {
        maxParallelSteps: config.concurrency.steps,
        stepHeartbeatTimeoutMs: config.emr.stepHeartbeatTimeoutMs,
        ...input,
      },
    ],
    // An identical backfill already running is joined, not started twice.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    memo: { selection: input.selection, from: input.from, to: input.to },
  });
}

export function renderBackfill(p: BackfillProgress): string {
  const finished = p.done + Object.keys(p.failed).length;
  const planned = p.total - p.skippedByFilter;
  const width = 30;
  const filled = planned === 0 ? width : Math.round((finished / planned) * width);
  const lines = [
    `${p.workflowId}  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${finished}/${planned} ${p.per}s` +
      (p.skippedByFilter ? ` (${p.skippedByFilter} already done, left out)` : ''),
    `  done ${p.done}, failed ${Object.keys(p.failed).length}, running ${p.running.length}, pending ${p.pending}, workflow runs ${p.runs}`,
  ];
  if (p.running.length) lines.push(`  running: ${p.running.join(', ')}`);
  for (const [partition, reason] of Object.entries(p.failed)) lines.push(`  failed ${partition}: ${reason}`);
  return lines.join('\n');
}

/** Follows a backfill across continue-as-new runs until it ends. */
export function watchBackfill(
  client: Client,
  workflowId: string,
  opts: { live: boolean },
): Promise<BackfillProgress> {
  return follow<BackfillProgress, BackfillProgress>(client.workflow.getHandle<typeof backfill>(workflowId), {
    query: backfillProgressQuery,
    render: renderBackfill,
    ...opts,
  });
}
