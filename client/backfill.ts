import { WorkflowIdConflictPolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import { describeRange, graph, monthRange, selectAssets } from '../assets';
import { runDetails, runSummary } from '../workflows/summaries';
import type { Config } from '../config/config';
import { emrCallsOf, type BackfillPlan } from '../lake/plan';
import { backfill, backfillProgressQuery, type BackfillInput } from '../workflows';
import type { BackfillProgress } from '../workflows/backfill';
import { filterTag, selectionTag } from './runs';
import { follow } from './watch';

export function backfillWorkflowId(input: {
  selection: string;
  from: string;
  to: string;
  per?: string;
  only?: BackfillInput['only'];
}): string {
  return (
    `backfill-${selectionTag(input.selection)}-${input.from}..${input.to}` +
    `${input.per === 'day' ? '-per-day' : ''}${filterTag(input.only ?? 'outdated')}`
  );
}

export async function startBackfill(
  client: Client,
  config: Config,
  input: BackfillInput,
): Promise<WorkflowHandle<typeof backfill>> {
  const assets = selectAssets(graph, input.selection);
  const range = { start: `${input.from}-01`, end: monthRange(input.to).end };
  return client.workflow.start(backfill, {
    taskQueue: config.temporal.taskQueue,
    workflowId: backfillWorkflowId(input),
    args: [
      {
        maxParallelSteps: config.concurrency.steps,
        stepHeartbeatTimeoutMs: config.emr.stepHeartbeatTimeoutMs,
        fuse: config.emr.fuseSteps,
        ...input,
      },
    ],
    // An identical backfill already running is joined, not started twice.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    memo: { selection: input.selection, from: input.from, to: input.to },
    staticSummary: runSummary(assets, range, 'backfill'),
    staticDetails:
      `${runDetails({ selection: input.selection, assets, range, only: input.only, lake: config.storage.lake })}\n` +
      `| chunks | one materialization per ${input.per ?? 'month'}, ${input.concurrency ?? 2} at once |`,
  });
}

export function renderBackfill(p: BackfillProgress): string {
  const finished = p.done + Object.keys(p.failed).length;
  const planned = p.total;
  const width = 30;
  const filled = planned === 0 ? width : Math.round((finished / planned) * width);
  const lines = [
    `${p.workflowId}  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${finished}/${planned} partitions` +
      (p.skippedByFilter ? ` (${p.skippedByFilter} ${p.per}s with nothing to build, left out)` : ''),
    `  done ${p.done}, failed ${Object.keys(p.failed).length}, running ${p.running.length}, pending ${p.pending}, workflow runs ${p.runs}`,
  ];
  if (p.running.length) lines.push(`  running: ${p.running.join(', ')}`);
  for (const [partition, reason] of Object.entries(p.failed)) lines.push(`  failed ${partition}: ${reason}`);
  return lines.join('\n');
}

/**
 * The plan as a person reads it: partition states per asset, what each chunk will build, and
 * the EMR API calls that takes (DescribeStep estimated from the last durations, when known).
 */
export function renderPlan(
  plan: BackfillPlan,
  opts: { poll: { initialMs: number; maxMs: number }; durations: Record<string, number> },
): string {
  const lines: string[] = [];
  const only =
    plan.only === 'outdated'
      ? 'what is not up to date (missing, failed or stale)'
      : plan.only === 'all'
        ? 'everything (--force)'
        : `only ${plan.only} partitions`;
  lines.push(`Plan for ${plan.selected.join(', ')} — builds ${only}; code ${plan.codeVersion}`);
  lines.push('');
  lines.push('Partitions now:');
  const width = Math.max(10, ...plan.selected.map((a) => a.length));
  for (const asset of plan.selected) {
    const s = plan.states[asset] ?? {};
    const parts = (['materialized', 'stale', 'failed', 'missing'] as const)
      .filter((k) => (s[k] ?? 0) > 0)
      .map((k) => `${s[k]} ${k}`);
    lines.push(`  ${asset.padEnd(width)} ${parts.join(', ') || 'none'}`);
  }
  const calls = { listSteps: 0, addJobFlowSteps: 0, describeStep: 0, describeUnknown: 0, steps: 0 };
  const count = (step: string, ranges: number) => {
    for (let i = 0; i < ranges; i++) {
      const c = emrCallsOf(opts.durations[step], opts.poll);
      calls.steps++;
      calls.listSteps += c.listSteps;
      calls.addJobFlowSteps += c.addJobFlowSteps;
      if (c.describeStep === null) calls.describeUnknown++;
      else calls.describeStep += c.describeStep;
    }
  };
  lines.push('');
  lines.push('Steps:');
  if (plan.unpartitioned) {
    for (const s of plan.unpartitioned.steps) {
      lines.push(`  first, once: ${s.step} (${s.assets.join(', ')}), whole tables`);
      count(s.step, 1);
    }
  }
  for (const chunk of plan.serial) {
    for (const st of chunk.steps) {
      lines.push(
        `  ${chunk.partition}, one month at a time (it rewrites a whole table): ${st.step} ${st.ranges.map(describeRange).join(', ')}`,
      );
      count(st.step, st.ranges.length);
    }
  }
  for (const chunk of plan.chunks) {
    const parts = chunk.steps.map((s) => {
      const definite = s.ranges.map(describeRange).join(', ');
      const maybe = s.conditional.map(describeRange).join(', ');
      count(s.step, s.ranges.length);
      return `${s.step} ${[definite, maybe ? `if upstream changes: ${maybe}` : ''].filter(Boolean).join('; ')}`;
    });
    lines.push(`  ${chunk.partition}: ${parts.join(' | ')}`);
  }
  if (!plan.unpartitioned && plan.serial.length === 0 && plan.chunks.length === 0)
    lines.push('  nothing to build: every partition is up to date');
  if (plan.skippedChunks > 0) lines.push(`  (${plan.skippedChunks} chunks have nothing to build)`);
  if (plan.detail.length > 0) {
    lines.push('');
    lines.push('Why:');
    for (const d of plan.detail.slice(0, 30))
      lines.push(`  ${d.asset} ${d.partition} ${d.state}: ${d.reason ?? ''}`);
    if (plan.detailTotal > 30) lines.push(`  … and ${plan.detailTotal - 30} more (--json has them)`);
  }
  lines.push('');
  const describe =
    calls.describeUnknown > 0
      ? `${calls.describeStep}+ (no past duration for ${calls.describeUnknown} of them)`
      : `~${calls.describeStep}`;
  lines.push(
    `EMR API calls (steps whose days are all up to date when they get there make none): ` +
      `AddJobFlowSteps ${calls.addJobFlowSteps}, ListSteps ${calls.listSteps}, DescribeStep ${describe}` +
      ` (conditional steps not counted)`,
  );
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
