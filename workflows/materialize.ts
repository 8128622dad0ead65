import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  blockedBy,
  describeRange,
  graph,
  monthsOf,
  planSteps,
  selectAssets,
  stepLease,
  type DayRange,
  type StepPlan,
} from '../assets';
import { leaseGrantedSignal, releaseLeaseSignal } from './lease';
import { materializeDetails, stepSummary } from './summaries';
import {
  SA_ASSETS,
  SA_FAILED_ASSETS,
  SA_MONTHS,
  SA_PARTITION_END,
  SA_PARTITION_START,
  SA_RUN_KIND,
} from './search-attributes';
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
      nonRetryableErrorTypes: [
        'DataCheckFailed',
        'InvalidJobArguments',
        'InvalidStepInput',
        'JobFailedPermanently',
      ],
    },
  });

/** A lease is held for the whole of a step (lookup, every range, bookkeeping); this bounds it. */
const LEASE_TTL_MS = 26 * 3_600_000;

function failureOf(err: unknown): { reason: string; logFile?: string; stepId?: string; stagingUri?: string } {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const detail = (cause.details?.[0] ?? {}) as { logFile?: string; stepId?: string; stagingUri?: string };
    return {
      reason: cause.message,
      logFile: detail.logFile,
      stepId: detail.stepId,
      stagingUri: detail.stagingUri,
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

/** One line per asset that did not materialize: what a person reads first. */
export function failureSummary(result: MaterializeResult): string {
  const bad = result.assets.filter((a) => a.status === 'failed' || a.status === 'skipped');
  return bad.map((a) => `${a.asset} ${a.status}: ${a.reason ?? 'no reason given'}`).join('; ');
}

/**
 * Materializes a selection of assets for a range of UTC days: steps in dependency order,
 * independent steps in parallel up to a bound; a failed step skips what depends on it while
 * unrelated steps go on. Each step holds the lease on what it writes, then builds only the
 * partitions that are not up to date (or those `only` asks for). A run with any asset failed or
 * skipped ends as a failed workflow, its per-asset results in the failure's details.
 * Deterministic: every decision comes from the input, activity results and signals.
 */
export async function materialize(rawInput: MaterializeInput): Promise<MaterializeResult> {
  const { input, selected } = validateInput(rawInput);
  const { workflowId, runId, firstExecutionRunId } = workflowInfo();
  const steps = planSteps(graph, selected);
  const spark = sparkActivities(input.stepHeartbeatTimeoutMs);

  upsertSearchAttributes([
    { key: SA_ASSETS, value: selected },
    { key: SA_MONTHS, value: monthsOf(input.range) },
    { key: SA_PARTITION_START, value: input.range.start },
    { key: SA_PARTITION_END, value: input.range.end },
    { key: SA_RUN_KIND, value: input.runKind },
  ]);
  upsertMemo({ selection: input.selection, assets: selected, range: input.range, only: input.only });

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
      ok: assets.every((r) => ['materialized', 'up_to_date', 'filtered'].includes(r.status)),
    };
  };
  setHandler(progressQuery, snapshot);
  const granted = new Set<string>();
  setHandler(leaseGrantedSignal, ({ requestId }) => void granted.add(requestId));

  // Pinned once per run: a retry after a deploy runs the code this run started with.
  code ??= await bookkeeping.publishSparkCode.executeWithOptions({ summary: 'publish the Spark code' }, []);
  const pinned = code;

  // The Web UI shows this table on the run's page, current at every change of status.
  const showDetails = () => setCurrentDetails(materializeDetails(snapshot()));
  const setStatus = (assets: readonly string[], patch: Partial<AssetResult>) => {
    for (const a of assets) results.set(a, { ...results.get(a)!, ...patch });
    showDetails();
  };
  showDetails();

  /** Runs `fn` holding the step's lease: serialised with every other run writing the same state. */
  const withLease = async (step: StepPlan, fn: () => Promise<void>): Promise<void> => {
    const { key, wholeTable } = stepLease(graph, step.key);
    const range: DayRange | null = wholeTable ? null : input.range;
    const requestId = `${workflowId}/${runId}/${step.key}`;
    const label = `${step.key} ${range ? describeRange(range) : 'whole table'} (${workflowId})`;
    const { leaseWorkflowId, heldBy } = await bookkeeping.requestLease.executeWithOptions(
      { summary: `lease ${step.key} ${range ? describeRange(range) : '(whole table)'}` },
      [{ key, requestId, holder: { workflowId, runId }, range, ttlMs: LEASE_TTL_MS, label }],
    );
    try {
      if (!granted.has(requestId)) {
        setStatus(step.assets, {
          status: 'waiting',
          reason: heldBy.length > 0 ? `waiting for ${heldBy.join(', ')}` : 'waiting for its lease',
        });
        await condition(() => granted.has(requestId));
      }
      setStatus(step.assets, { status: 'running', reason: undefined });
      await fn();
    } finally {
      await CancellationScope.nonCancellable(async () => {
        try {
          await getExternalWorkflowHandle(leaseWorkflowId).signal(releaseLeaseSignal, { requestId });
        } catch {
          // The lease workflow released it already (its holder check, or its time ran out).
        }
      });
    }
  };

  const runStep = async (step: StepPlan): Promise<void> => {
    const which = {
      workflowId,
      runKind: input.runKind,
      stepKey: step.key,
      assets: [...step.assets],
      code: pinned,
    };
    try {
      await withLease(step, async () => {
        // Decided only now, holding the lease: another run may have just built these partitions.
        const prepared = await bookkeeping.prepareStep.executeWithOptions(
          { summary: `what ${step.key} must build in ${describeRange(input.range)}` },
          [
            {
              stepKey: step.key,
              assets: [...step.assets],
              range: input.range,
              codeVersion: pinned.hash,
              only: input.only,
            },
          ],
        );
        if (prepared.runRanges.length === 0) {
          const fresh = input.only === 'outdated' || input.only === 'all';
          setStatus(step.assets, {
            status: fresh ? 'up_to_date' : 'filtered',
            upToDate: prepared.untouched,
            reason: fresh
              ? 'unchanged since its last materialization (same code, inputs and upstream data)'
              : `no partition is ${input.only}`,
          });
          return;
        }
        setStatus(step.assets, {
          ranges: prepared.runRanges,
          upToDate: prepared.untouched,
          reason: prepared.reasons.join('; ') || undefined,
        });
        for (const range of prepared.runRanges) {
          try {
            const partitioned = step.partitioning === 'daily';
            const outcome = await spark.runStep.executeWithOptions(
              { summary: stepSummary(step.key, partitioned ? range : null) },
              [
                {
                  stepKey: step.key,
                  assets: [...step.assets],
                  range,
                  code: pinned,
                  runTag: `${workflowId}/${firstExecutionRunId}`,
                },
              ],
            );
            setStatus(step.assets, { stepId: outcome.stepId });
            const recorded = await bookkeeping.recordMaterialization.executeWithOptions(
              {
                summary: `record ${step.assets.join(', ')} ${partitioned ? describeRange(range) : ''}`.trim(),
              },
              [
                {
                  ...which,
                  range,
                  outcome,
                  prepared: { inputs: prepared.inputs, upstream: prepared.upstream },
                },
              ],
            );
            for (const r of recorded) {
              const before = results.get(r.asset)!;
              results.set(r.asset, {
                ...r,
                ranges: before.ranges,
                upToDate: before.upToDate,
                rows: (before.status === 'materialized' ? (before.rows ?? 0) : 0) + (r.rows ?? 0),
                reason: before.reason,
              });
            }
          } catch (err) {
            if (isCancellation(err)) throw err;
            const failure = failureOf(err);
            setStatus(step.assets, { status: 'failed', ...failure });
            await bookkeeping.recordFailure.executeWithOptions(
              { summary: `record the failure of ${step.assets.join(', ')}` },
              [{ ...which, range, ...failure }],
            );
            return;
          }
        }
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      setStatus(step.assets, { status: 'failed', ...failureOf(err) });
    }
  };

  const finished = (s: StepPlan) =>
    s.assets.every((a) =>
      ['materialized', 'up_to_date', 'filtered', 'failed', 'skipped'].includes(results.get(a)!.status),
    );
  const succeeded = (key: string) =>
    steps
      .find((s) => s.key === key)!
      .assets.every((a) => ['materialized', 'up_to_date', 'filtered'].includes(results.get(a)!.status));

  const running = new Map<string, Promise<void>>();
  const started = new Set<string>();
  for (;;) {
    for (const step of steps) {
      if (started.has(step.key) || !step.deps.every((d) => finished(steps.find((s) => s.key === d)!)))
        continue;
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
  showDetails();
  const result = snapshot();
  if (!result.ok) {
    const failed = result.assets.filter((a) => a.status === 'failed' || a.status === 'skipped');
    upsertSearchAttributes([{ key: SA_FAILED_ASSETS, value: failed.map((a) => a.asset) }]);
    // Failed, not Completed: the Web UI shows it red and ExecutionStatus = 'Failed' finds it.
    throw ApplicationFailure.create({
      type: 'MaterializationFailed',
      message: failureSummary(result),
      nonRetryable: true,
      details: [result],
    });
  }
  return result;
}
