import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { blockedBy, graph, monthsOf, planSteps, selectAssets, type StepPlan } from '../assets';
import { SA_ASSETS, SA_MONTHS, SA_PARTITION_END, SA_PARTITION_START, SA_RUN_KIND } from './search-attributes';
import {
  MaterializeInputSchema,
  type AssetResult,
  type CodeVersion,
  type MaterializeInput,
  type MaterializeResult,
  type SparkifyActivities,
} from './types';

export const progressQuery = defineQuery<MaterializeResult>('progress');

// Bookkeeping is short, but may list a large song_data; it heartbeats, so a lost worker is
// noticed in seconds rather than at the end of the timeout.
const bookkeeping = proxyActivities<SparkifyActivities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

// A Spark step can run for hours; liveness comes from heartbeats, not from the overall timeout.
// WAIT_CANCELLATION_COMPLETED lets the activity cancel its EMR step before the workflow moves on.
const sparkActivities = (heartbeatTimeoutMs: number) =>
  proxyActivities<SparkifyActivities>({
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: heartbeatTimeoutMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '15 seconds',
      backoffCoefficient: 2,
      maximumInterval: '10 minutes',
      maximumAttempts: 4,
      nonRetryableErrorTypes: ['DataCheckFailed', 'InvalidJobArguments', 'InvalidStepInput'],
    },
  });

function failureOf(err: unknown): { reason: string; logFile?: string; stepId?: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const detail = (cause.details?.[0] ?? {}) as { logFile?: string; stepId?: string };
    return {
      reason: `${cause.type ?? 'Error'}: ${cause.message}`,
      logFile: detail.logFile,
      stepId: detail.stepId,
    };
  }
  return { reason: cause instanceof Error ? cause.message : String(cause) };
}

/** Bad input fails the run at once (instead of a workflow task retried until a fix). */
function validateInput(rawInput: unknown) {
  const parsed = MaterializeInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw ApplicationFailure.nonRetryable(`invalid materialize input: ${problems}`, 'InvalidInput');
  }
  try {
    return { input: parsed.data, selected: selectAssets(graph, parsed.data.selection) };
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `invalid materialize input: ${(err as Error).message}`,
      'InvalidInput',
    );
  }
}

/**
 * Materializes a selection of assets for a range of UTC days: steps in dependency order,
 * independent steps in parallel up to a bound; a failed step skips what depends on it while
 * unrelated steps go on. Deterministic: every decision comes from the input and activity results.
 */
export async function materialize(rawInput: MaterializeInput): Promise<MaterializeResult> {
  const { input, selected } = validateInput(rawInput);
  const { workflowId, firstExecutionRunId } = workflowInfo();
  const steps = planSteps(graph, selected);
  const spark = sparkActivities(input.stepHeartbeatTimeoutMs);

  upsertSearchAttributes([
    { key: SA_ASSETS, value: selected },
    { key: SA_MONTHS, value: monthsOf(input.range) },
    { key: SA_PARTITION_START, value: input.range.start },
    { key: SA_PARTITION_END, value: input.range.end },
    { key: SA_RUN_KIND, value: input.runKind },
  ]);
  upsertMemo({ selection: input.selection, assets: selected, range: input.range });

  const results = new Map<string, AssetResult>(
    steps.flatMap((s) =>
      s.assets.map((a) => [a, { asset: a, status: 'pending', step: s.key } as AssetResult]),
    ),
  );
  let code: CodeVersion | undefined = input.code;
  const snapshot = (): MaterializeResult => {
    const assets = selected.map((a) => results.get(a)!);
    return {
      workflowId,
      range: input.range,
      selection: input.selection,
      codeVersion: code?.hash ?? null,
      assets,
      ok: assets.every((r) => r.status === 'materialized' || r.status === 'up_to_date'),
    };
  };
  setHandler(progressQuery, snapshot);

  // Pinned once per run: a retry after a deploy runs the code this run started with.
  code ??= await bookkeeping.publishSparkCode();
  const pinned = code;

  const setStatus = (assets: readonly string[], patch: Partial<AssetResult>) => {
    for (const a of assets) results.set(a, { ...results.get(a)!, ...patch });
  };

  const runStep = async (step: StepPlan): Promise<void> => {
    let sourceFingerprint: string | undefined;
    if (graph.specs.get(step.assets[0]!)!.source === 'song_data') {
      // The fingerprint is taken before the step reads song_data, so a change made while it
      // runs is seen by the next run rather than lost.
      const answer = await bookkeeping.checkSongDataUnchanged({ assets: [...step.assets] });
      sourceFingerprint = answer.fingerprint;
      if (input.skipUnchanged && step.assets.every((a) => answer.upToDate.includes(a))) {
        setStatus(step.assets, {
          status: 'up_to_date',
          reason: 'song_data unchanged since the last materialization',
        });
        return;
      }
    }
    setStatus(step.assets, { status: 'running' });
    const which = {
      workflowId,
      runKind: input.runKind,
      stepKey: step.key,
      assets: [...step.assets],
      range: input.range,
      code: pinned,
    };
    try {
      const outcome = await spark.runStep({
        stepKey: step.key,
        assets: [...step.assets],
        range: input.range,
        code: pinned,
        runTag: `${workflowId}/${firstExecutionRunId}`,
      });
      setStatus(step.assets, { stepId: outcome.stepId });
      const recorded = await bookkeeping.recordMaterialization({ ...which, outcome, sourceFingerprint });
      for (const r of recorded) results.set(r.asset, r);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const failure = failureOf(err);
      setStatus(step.assets, { status: 'failed', ...failure });
      await bookkeeping.recordFailure({ ...which, ...failure });
    }
  };

  const done = (s: StepPlan) =>
    s.assets.every((a) =>
      ['materialized', 'up_to_date', 'failed', 'skipped'].includes(results.get(a)!.status),
    );
  const succeeded = (key: string) =>
    steps
      .find((s) => s.key === key)!
      .assets.every((a) => ['materialized', 'up_to_date'].includes(results.get(a)!.status));

  const running = new Map<string, Promise<void>>();
  const started = new Set<string>();
  for (;;) {
    for (const step of steps) {
      if (started.has(step.key) || !step.deps.every((d) => done(steps.find((s) => s.key === d)!))) continue;
      const failedDep = step.deps.find((d) => !succeeded(d));
      if (failedDep !== undefined) {
        started.add(step.key);
        setStatus(step.assets, {
          status: 'skipped',
          reason: `upstream step ${failedDep} did not materialize`,
        });
        continue;
      }
      if (running.size >= input.maxParallelSteps) continue;
      started.add(step.key);
      running.set(
        step.key,
        runStep(step).finally(() => running.delete(step.key)),
      );
    }
    if (running.size === 0) {
      // Nothing left in flight: either every step has been dealt with, or the pass above just
      // skipped some and the next pass resolves what depended on them.
      if (steps.every((s) => started.has(s.key))) break;
      continue;
    }
    await Promise.race(running.values());
  }

  // A failure reported on an asset also names what it blocked, for the reader of the result.
  for (const r of results.values()) {
    if (r.status !== 'failed') continue;
    for (const blocked of blockedBy(graph, r.asset, selected)) {
      const b = results.get(blocked)!;
      if (b.status === 'skipped')
        results.set(blocked, { ...b, reason: `upstream ${r.asset} failed: ${r.reason}` });
    }
  }
  return snapshot();
}
