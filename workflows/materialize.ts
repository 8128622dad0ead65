import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  type LocalActivityInterfaceFor,
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
  planSteps,
  selectAssets,
  contiguousRanges,
  daysIn,
  fuseSteps,
  stepLease,
  type StepUnit,
} from '../assets';
import { leaseGrantedSignal, releaseLeaseSignal } from './lease';
import { materializeDetails, stepSummary } from './summaries';
import { attributesNotStartedWith, materializeAttributes, SA_FAILED_ASSETS } from './search-attributes';
import {
  MaterializeInputSchema,
  type AssetResult,
  type CodeVersion,
  type MaterializeInput,
  type MaterializeResult,
  type PreparedStep,
  type SparkifyActivities,
} from './types';

export const progressQuery = defineQuery<MaterializeResult>('progress');

/** patched() id: lease releases sent by a local activity instead of a signal from the workflow. */
const RELEASE_BY_LOCAL_ACTIVITY = 'release-lease-by-local-activity';
/** patched() id: leases asked for by a local activity first, and released by one. */
const LEASE_BY_LOCAL_ACTIVITIES = 'lease-by-local-activities';

/**
 * How long a lease request by local activity waits for the lease workflow's answer. The lease
 * workflow needs a workflow task of its own to answer, while the asking runs hold theirs: were
 * every workflow task slot of the worker held by such runs, none would be left for it. Bounded,
 * they give their slots back and ask by a regular activity instead.
 */
const LEASE_ANSWER_WITHIN_MS = 3_000;

// The lease request by regular activity: for runs started before LEASE_BY_LOCAL_ACTIVITIES, and
// when the local request was not answered in time. It heartbeats, so a lost worker is noticed in
// seconds.
const leasing = proxyActivities<Pick<SparkifyActivities, 'requestLease'>>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

// Bookkeeping (what to build, manifests, the partition index) reads and writes a few lake
// objects and waits on nothing else: as local activities they run inside the workflow task,
// which saves two server round trips and a workflow task per call, several per step. A lost
// worker is noticed by the workflow task's timeout, and the call runs again on another.
const bookkeeping = proxyLocalActivities<SparkifyActivities>({
  startToCloseTimeout: '15 minutes',
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

interface StepFailure {
  reason: string;
  logFile?: string;
  stepId?: string;
  stagingUri?: string;
  /** The job's report, when the step left one: it says per asset what was published. */
  reportUri?: string;
}

/**
 * Local activities one at a time, each started when the one before has finished. On replay the
 * SDK hands back the results of local activities that were running at once in one activation,
 * in the order of their markers, whatever activations they came back in when the history was
 * written; runs that continue from such results at once can then issue their next commands in
 * another order than they did, and the replay fails (a lease request and a prepare of one step,
 * the lease request of another step still out, did). One at a time, a replay sees each result
 * alone, as the run did. They take milliseconds; the runs' steps still run side by side.
 */
function oneAtATime<A>(activities: LocalActivityInterfaceFor<A>): LocalActivityInterfaceFor<A> {
  type Activity = ((...args: unknown[]) => Promise<unknown>) & {
    executeWithOptions(options: unknown, args: unknown[]): Promise<unknown>;
  };
  let previous: Promise<unknown> = Promise.resolve();
  const inTurn = (call: () => Promise<unknown>) => {
    const result = previous.then(call);
    previous = result.catch(() => undefined);
    return result;
  };
  return new Proxy(activities, {
    get(target, name) {
      const activity = Reflect.get(target, name) as Activity;
      return Object.assign((...args: unknown[]) => inTurn(() => activity(...args)), {
        executeWithOptions: (options: unknown, args: unknown[]) =>
          inTurn(() => activity.executeWithOptions(options, args)),
      });
    },
  });
}

function failureOf(err: unknown): StepFailure {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const detail = (cause.details?.[0] ?? {}) as Omit<StepFailure, 'reason'>;
    return {
      reason: cause.message,
      logFile: detail.logFile,
      stepId: detail.stepId,
      stagingUri: detail.stagingUri,
      reportUri: detail.reportUri,
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
  // Decided once, in the run's first workflow task: one marker (and one search attribute upsert
  // the SDK adds to it) per run, whatever number of steps it has.
  const leaseByLocalActivities = patched(LEASE_BY_LOCAL_ACTIVITIES);
  // Every bookkeeping call of a new run goes through the queue; older runs keep calling at once.
  const book = leaseByLocalActivities ? oneAtATime(bookkeeping) : bookkeeping;
  const { workflowId, runId, firstExecutionRunId } = workflowInfo();
  const steps = planSteps(graph, selected);
  const units = fuseSteps(steps, input.fuse, graph);
  const spark = sparkActivities(input.stepHeartbeatTimeoutMs);

  const missing = attributesNotStartedWith(
    materializeAttributes({ ...input, assets: selected }),
    workflowInfo(),
  );
  if (missing.searchAttributes.length > 0) upsertSearchAttributes(missing.searchAttributes);
  if (missing.memo) upsertMemo(missing.memo);

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
  const releases: Promise<void>[] = [];
  setHandler(leaseGrantedSignal, ({ requestId }) => void granted.add(requestId));

  // Pinned once per run: a retry after a deploy runs the code this run started with.
  code ??= await book.publishSparkCode.executeWithOptions({ summary: 'publish the Spark code' }, []);
  const pinned = code;

  // The Web UI shows this table on the run's page, current at every change of status.
  const showDetails = () => setCurrentDetails(materializeDetails(snapshot()));
  const setStatus = (assets: readonly string[], patch: Partial<AssetResult>) => {
    for (const a of assets) results.set(a, { ...results.get(a)!, ...patch });
    showDetails();
  };
  showDetails();

  /**
   * Runs `fn` holding the leases of the unit's steps: serialised with every other run writing the
   * same state. One request claims them all; the lease workflow grants all or nothing, so two
   * runs needing the same leases can never each hold one and wait for the other.
   */
  const withLeases = async (unit: StepUnit, fn: () => Promise<void>): Promise<void> => {
    const claims = unit.steps.map((step) => {
      const { key, wholeTable } = stepLease(graph, step.key);
      return { key, range: wholeTable ? null : input.range };
    });
    const what = claims
      .map((c) => `${c.key} ${c.range ? describeRange(c.range) : '(whole table)'}`)
      .join(', ');
    const requestId = `${workflowId}/${runId}/${unit.key}`;
    const request = {
      requestId,
      holder: { workflowId, runId },
      claims,
      ttlMs: LEASE_TTL_MS,
      label: `${what} (${workflowId})`,
    };
    const answer =
      (leaseByLocalActivities
        ? await book.tryRequestLease.executeWithOptions({ summary: `lease ${what}` }, [
            { request, answerWithinMs: LEASE_ANSWER_WITHIN_MS },
          ])
        : null) ?? (await leasing.requestLease.executeWithOptions({ summary: `lease ${what}` }, [request]));
    const { leaseWorkflowId, heldBy } = answer;
    if (answer.granted) granted.add(requestId);
    const assets = unit.steps.flatMap((s) => s.assets);
    try {
      if (!granted.has(requestId)) {
        setStatus(assets, {
          status: 'waiting',
          reason: heldBy.length > 0 ? `waiting for ${heldBy.join(', ')}` : 'waiting for its lease',
        });
        await condition(() => granted.has(requestId));
      }
      setStatus(assets, { status: 'running', reason: undefined });
      await fn();
    } finally {
      // Sent now, awaited before the run ends: what depends on this unit need not wait for the
      // lease workflow's acknowledgement. Sent by a local activity: a signal from the workflow
      // itself costs the run a workflow task per unit (runs started before keep the signal).
      releases.push(
        CancellationScope.nonCancellable(async () => {
          if (leaseByLocalActivities || patched(RELEASE_BY_LOCAL_ACTIVITY)) {
            await book.releaseLease.executeWithOptions({ summary: `release ${what}` }, [
              { leaseWorkflowId, requestId },
            ]);
            return;
          }
          try {
            await getExternalWorkflowHandle(leaseWorkflowId).signal(releaseLeaseSignal, { requestId });
          } catch {
            // The lease workflow released it already (its holder check, or its time ran out).
          }
        }),
      );
    }
  };

  /** What each step of a unit must build, decided while holding the leases. */
  const prepareUnit = async (unit: StepUnit) => {
    const answers = await book.prepareSteps.executeWithOptions(
      { summary: `what ${unit.key} must build in ${describeRange(input.range)}` },
      [
        unit.steps.map((step) => ({
          stepKey: step.key,
          assets: [...step.assets],
          range: input.range,
          codeVersion: pinned.hash,
          only: input.only,
        })),
      ],
    );
    const prepared = new Map(unit.steps.map((step, i) => [step.key, answers[i]!]));
    // Within a fused unit a downstream step is prepared before its upstream is rebuilt, so it
    // also builds whatever its upstream in the unit builds: they share one spark-submit, the
    // extra days cost little, and nothing is left stale behind the run.
    const days = new Map<string, Set<string>>();
    for (const step of unit.steps) {
      const need = new Set(
        prepared
          .get(step.key)!
          .runRanges.flatMap((r) => (step.partitioning === 'daily' ? daysIn(r) : ['all'])),
      );
      for (const dep of step.deps) {
        const upstream = days.get(dep);
        if (!upstream || upstream.size === 0) continue;
        if (upstream.has('all'))
          daysIn(input.range).forEach((d) => need.add(step.partitioning === 'daily' ? d : 'all'));
        else upstream.forEach((d) => need.add(step.partitioning === 'daily' ? d : 'all'));
      }
      days.set(step.key, need);
    }
    return { prepared, days };
  };

  const runUnit = async (unit: StepUnit): Promise<void> => {
    const unitAssets = unit.steps.flatMap((s) => s.assets);
    const which = { workflowId, runKind: input.runKind, stepKey: unit.key, code: pinned };
    try {
      await withLeases(unit, async () => {
        const { prepared, days } = await prepareUnit(unit);
        const working = unit.steps.filter((s) => days.get(s.key)!.size > 0);
        for (const step of unit.steps.filter((s) => !working.includes(s))) {
          const fresh = input.only === 'outdated' || input.only === 'all';
          setStatus(step.assets, {
            status: fresh ? 'up_to_date' : 'filtered',
            upToDate: prepared.get(step.key)!.untouched,
            reason: fresh
              ? 'unchanged since its last materialization (same code, inputs and upstream data)'
              : `no partition is ${input.only}`,
          });
        }
        if (working.length === 0) return;
        for (const step of working) {
          const p = prepared.get(step.key)!;
          const ranges = step.partitioning === 'daily' ? contiguousRanges([...days.get(step.key)!]) : [];
          setStatus(step.assets, {
            ranges,
            upToDate: p.untouched,
            reason: p.reasons.join('; ') || undefined,
          });
        }
        const dailyDays = working
          .filter((s) => s.partitioning === 'daily')
          .flatMap((s) => [...days.get(s.key)!]);
        // One EMR step per run of consecutive days (the unpartitioned assets ride on the first);
        // a unit of unpartitioned steps alone runs once.
        const ranges = dailyDays.length > 0 ? contiguousRanges(dailyDays) : [input.range];
        const merged = {
          inputs: Object.assign(
            {},
            ...working.map((s) => prepared.get(s.key)!.inputs),
          ) as PreparedStep['inputs'],
          upstream: Object.assign(
            {},
            ...working.map((s) => prepared.get(s.key)!.upstream),
          ) as PreparedStep['upstream'],
        };
        const logDays = working.flatMap((s) => Object.entries(prepared.get(s.key)!.inputs.log_data ?? {}));
        if (logDays.length > 0) merged.inputs = { ...merged.inputs, log_data: Object.fromEntries(logDays) };
        for (const [i, range] of ranges.entries()) {
          const assets = working
            .filter((s) => (s.partitioning === 'daily' ? days.get(s.key)!.size > 0 : i === 0))
            .flatMap((s) => s.assets);
          const partitioned = working.some((s) => s.partitioning === 'daily');
          try {
            const outcome = await spark.runStep.executeWithOptions(
              { summary: stepSummary(unit.key, partitioned ? range : null) },
              [
                {
                  stepKey: unit.key,
                  assets,
                  range,
                  code: pinned,
                  runTag: `${workflowId}/${firstExecutionRunId}`,
                },
              ],
            );
            setStatus(assets, { stepId: outcome.stepId });
            const recorded = await book.recordMaterialization.executeWithOptions(
              { summary: `record ${assets.join(', ')} ${partitioned ? describeRange(range) : ''}`.trim() },
              [{ ...which, assets, range, outcome, prepared: merged }],
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
            showDetails();
          } catch (err) {
            if (isCancellation(err)) throw err;
            const { reportUri, ...failure } = failureOf(err);
            const { stepId } = failure;
            if (reportUri && stepId) {
              // The job reported per asset: what passed its checks was published and is recorded
              // as materialized; the rest as failed, each with its own reason.
              const recorded = await book.recordMaterialization.executeWithOptions(
                { summary: `record ${assets.join(', ')} (step failed)` },
                [
                  {
                    ...which,
                    assets,
                    range,
                    outcome: {
                      stepId,
                      adopted: false,
                      reportUri,
                      logFile: failure.logFile,
                    },
                    prepared: merged,
                    failure,
                  },
                ],
              );
              for (const r of recorded) results.set(r.asset, { ...results.get(r.asset)!, ...r });
              showDetails();
              if (recorded.some((r) => r.status === 'failed')) return;
              continue;
            }
            setStatus(assets, { status: 'failed', ...failure });
            await book.recordFailure.executeWithOptions(
              { summary: `record the failure of ${assets.join(', ')}` },
              [{ ...which, assets, range, ...failure }],
            );
            return;
          }
        }
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      setStatus(unitAssets, { status: 'failed', ...failureOf(err) });
    }
  };

  const finished = (u: StepUnit) =>
    u.steps.every((s) =>
      s.assets.every((a) =>
        ['materialized', 'up_to_date', 'filtered', 'failed', 'skipped'].includes(results.get(a)!.status),
      ),
    );
  const succeeded = (key: string) =>
    units
      .find((u) => u.key === key)!
      .steps.every((s) =>
        s.assets.every((a) => ['materialized', 'up_to_date', 'filtered'].includes(results.get(a)!.status)),
      );

  const running = new Map<string, Promise<void>>();
  const started = new Set<string>();
  try {
    for (;;) {
      for (const unit of units) {
        if (started.has(unit.key) || !unit.deps.every((d) => finished(units.find((u) => u.key === d)!)))
          continue;
        const failedDep = unit.deps.find((d) => !succeeded(d));
        if (failedDep !== undefined) {
          started.add(unit.key);
          setStatus(
            unit.steps.flatMap((s) => s.assets),
            { status: 'skipped', reason: `upstream step ${failedDep} did not materialize` },
          );
          continue;
        }
        if (running.size >= input.maxParallelSteps) continue;
        started.add(unit.key);
        running.set(
          unit.key,
          runUnit(unit).finally(() => running.delete(unit.key)),
        );
      }
      if (running.size === 0) {
        // Nothing left in flight: either every unit has been dealt with, or the pass above just
        // skipped some and the next pass resolves what depended on them.
        if (units.every((u) => started.has(u.key))) break;
        continue;
      }
      await Promise.race(running.values());
    }
  } finally {
    await CancellationScope.nonCancellable(() => Promise.all(releases));
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
