import {
  ApplicationFailure,
  ChildWorkflowFailure,
  continueAsNew,
  defineQuery,
  executeChild,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import {
  addDays,
  downstreamOf,
  graph,
  monthRange,
  monthsBetween,
  MonthSchema,
  selectAssets,
} from '../assets';
import { failureSummary, materialize } from './materialize';
import { backfillDetails, runDetails, runSummary } from './summaries';
import {
  SA_ASSETS,
  SA_FAILED_ASSETS,
  SA_MONTHS,
  SA_PARTITION_END,
  SA_PARTITION_START,
  SA_RUN_KIND,
  materializeAttributes,
} from './search-attributes';
import {
  CodeVersionSchema,
  PartitionFilterSchema,
  type MaterializeResult,
  type SparkifyActivities,
} from './types';

export const BackfillInputSchema = z
  .object({
    selection: z.string().min(1),
    from: MonthSchema,
    to: MonthSchema,
    /** month: one materialization per month (one Spark step per asset covers it); day: one per day. */
    per: z.enum(['month', 'day']).default('month'),
    concurrency: z.number().int().min(1).max(100).default(2),
    /** Which partitions to build: not up to date (default), only missing/failed/stale, or all. */
    only: PartitionFilterSchema.default('outdated'),
    fuse: z.enum(['none', 'daily', 'all']).default('none'),
    maxParallelSteps: z.number().int().min(1).max(64).default(2),
    stepHeartbeatTimeoutMs: z.number().int().min(1000).optional(),
    /** Continue as new once the history reaches this many events (the hard limit is 51,200). */
    historyLimit: z.number().int().min(200).max(40_000).default(5_000),
    /** Carried across continue-as-new; absent on the first run. */
    carried: z
      .object({
        code: CodeVersionSchema,
        total: z.number().int(),
        remaining: z.array(z.string()),
        done: z.array(z.string()),
        failed: z.record(z.string(), z.string()),
        failedAssets: z.array(z.string()),
        skippedByFilter: z.number().int(),
        dailySelection: z.array(z.string()),
        /** Whole-table daily assets (users) built a month at a time, in order, before the chunks. */
        serialSelection: z.array(z.string()),
        serialRemaining: z.array(z.string()),
        /** Months whose serial part finished (done or failed): their chunks may start. */
        serialSettled: z.record(z.string(), z.boolean()),
        runs: z.number().int(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((i) => i.from <= i.to, { message: 'to must not be before from', path: ['to'] });
export type BackfillInput = z.input<typeof BackfillInputSchema>;

export interface BackfillProgress {
  workflowId: string;
  per: 'month' | 'day';
  /** Partitions planned: the unpartitioned part (`all`) if it had work, plus the chunks. */
  total: number;
  /** Chunks left out because nothing in them needed building (or matched --only-…). */
  skippedByFilter: number;
  done: number;
  failed: Record<string, string>;
  running: string[];
  pending: number;
  /** Runs of this workflow so far (continue-as-new starts a new one). */
  runs: number;
}

export const backfillProgressQuery = defineQuery<BackfillProgress>('backfillProgress');

const activities = proxyActivities<SparkifyActivities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

export const UNPARTITIONED_CHUNK = 'all';

function rangeOf(partition: string) {
  return partition.length === 7 ? monthRange(partition) : { start: partition, end: addDays(partition, 1) };
}

/** The per-asset results a failed child carried in its failure, if it got that far. */
function resultOfFailure(err: unknown): MaterializeResult | undefined {
  const cause = err instanceof ChildWorkflowFailure ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.type === 'MaterializationFailed') {
    return cause.details?.[0] as MaterializeResult | undefined;
  }
  return undefined;
}

/**
 * A backfill is one workflow. It plans first (planBackfill: each partition's state), builds the
 * unpartitioned assets once if they need it, then runs a materialization per chunk (month or
 * day) that has something to build, at most `concurrency` at once, each building only what is
 * not up to date. It continues as new well before the history limit, carrying what is left;
 * cancelling it cancels its children and their steps. With any partition failed it ends failed.
 */
export async function backfill(rawInput: BackfillInput): Promise<BackfillProgress> {
  const parsed = BackfillInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw ApplicationFailure.nonRetryable(`invalid backfill input: ${problems}`, 'InvalidInput');
  }
  const input = parsed.data;
  let selected: string[];
  try {
    selected = selectAssets(graph, input.selection);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `invalid backfill input: ${(err as Error).message}`,
      'InvalidInput',
    );
  }
  const { workflowId } = workflowInfo();
  const months = monthsBetween(input.from, input.to);
  const childOptions = (code: z.infer<typeof CodeVersionSchema>) => ({
    runKind: 'backfill' as const,
    code,
    only: input.only,
    fuse: input.fuse,
    maxParallelSteps: input.maxParallelSteps,
    ...(input.stepHeartbeatTimeoutMs ? { stepHeartbeatTimeoutMs: input.stepHeartbeatTimeoutMs } : {}),
  });
  const running = new Set<string>();
  const childMetadata = (
    assets: readonly string[],
    range: { start: string; end: string },
    codeVersion: string,
  ) => {
    // Set at start, so the child need not upsert them: two history events and two visibility
    // writes less per child.
    const attributes = materializeAttributes({
      selection: assets.join(','),
      assets: selectAssets(graph, assets.join(',')),
      range,
      runKind: 'backfill',
      only: input.only,
    });
    return {
      typedSearchAttributes: attributes.searchAttributes,
      memo: attributes.memo,
      staticSummary: runSummary(assets, range, 'backfill'),
      staticDetails: `${runDetails({ selection: assets.join(','), assets, range, only: input.only, codeVersion })}\n\nPart of backfill \`${workflowId}\`.`,
    };
  };

  let carried = input.carried;
  if (carried === undefined) {
    upsertSearchAttributes([
      { key: SA_ASSETS, value: selected },
      { key: SA_MONTHS, value: months },
      { key: SA_PARTITION_START, value: `${input.from}-01` },
      { key: SA_PARTITION_END, value: monthRange(input.to).end },
      { key: SA_RUN_KIND, value: 'backfill' },
    ]);
    upsertMemo({
      selection: input.selection,
      from: input.from,
      to: input.to,
      per: input.per,
      only: input.only,
    });
    // One code version for the whole backfill, however long it runs and whatever gets deployed.
    const code = await activities.publishSparkCode.executeWithOptions(
      { summary: 'publish the Spark code' },
      [],
    );
    const plan = await activities.planBackfill.executeWithOptions(
      { summary: `plan ${input.from}..${input.to} (${input.only})` },
      [
        {
          selection: input.selection,
          from: input.from,
          to: input.to,
          per: input.per,
          only: input.only,
          codeVersion: code.hash,
        },
      ],
    );
    const failed: Record<string, string> = {};
    const failedAssets = new Set<string>();
    const done: string[] = [];
    let dailySelection = selected.filter((a) => graph.specs.get(a)!.partitioning === 'daily');
    if (plan.unpartitioned) {
      // Once for the whole backfill, before any day that reads it.
      const assets = plan.unpartitioned.steps.flatMap((s) => s.assets);
      running.add(UNPARTITIONED_CHUNK);
      setCurrentDetails(
        `Building ${assets.join(', ')} once, before any day that reads them; then ${plan.chunks.length} ${input.per}s (${plan.skippedChunks} with nothing to build left out).`,
      );
      setHandler(backfillProgressQuery, () => ({
        workflowId,
        per: input.per,
        total: plan.chunks.length + 1,
        skippedByFilter: plan.skippedChunks,
        done: 0,
        failed: {},
        running: [UNPARTITIONED_CHUNK],
        pending: plan.chunks.length,
        runs: 1,
      }));
      try {
        await executeChild(materialize, {
          workflowId: `${workflowId}-${UNPARTITIONED_CHUNK}`,
          args: [{ selection: assets.join(','), range: plan.unpartitioned.range, ...childOptions(code) }],
          ...childMetadata(assets, plan.unpartitioned.range, code.hash),
        });
        done.push(UNPARTITIONED_CHUNK);
      } catch (err) {
        if (isCancellation(err)) throw err;
        const result = resultOfFailure(err);
        failed[UNPARTITIONED_CHUNK] = result ? failureSummary(result) : (err as Error).message;
        const broken = result
          ? result.assets.filter((a) => a.status === 'failed').map((a) => a.asset)
          : assets;
        broken.forEach((a) => failedAssets.add(a));
        // What reads a table that could not be built waits for a later backfill.
        const blocked = new Set(broken.flatMap((a) => [...downstreamOf(graph, a)]));
        dailySelection = dailySelection.filter((a) => !blocked.has(a));
      } finally {
        running.delete(UNPARTITIONED_CHUNK);
      }
    }
    const serialSelection = dailySelection.filter((a) =>
      plan.serial.some((c) => c.steps.some((st) => st.assets.includes(a))),
    );
    const chunkSelection = dailySelection.filter((a) => !serialSelection.includes(a));
    const chunks = chunkSelection.length > 0 ? plan.chunks.map((c) => c.partition) : [];
    const serialMonths = serialSelection.length > 0 ? plan.serial.map((c) => c.partition) : [];
    carried = {
      code,
      total: chunks.length + serialMonths.length + (plan.unpartitioned ? 1 : 0),
      remaining: chunks,
      done,
      failed,
      failedAssets: [...failedAssets],
      skippedByFilter: plan.skippedChunks + (plan.chunks.length - chunks.length),
      dailySelection: chunkSelection,
      serialSelection,
      serialRemaining: serialMonths,
      serialSettled: {},
      runs: 1,
    };
  }
  const state = carried;
  const failedAssets = new Set(state.failedAssets);
  const queue = [...state.remaining];
  const serialQueue = [...state.serialRemaining];
  const serialLabel = (month: string) => `${month} ${state.serialSelection.join('+')}`;
  const progress = (): BackfillProgress => ({
    workflowId,
    per: input.per,
    total: state.total,
    skippedByFilter: state.skippedByFilter,
    done: state.done.length,
    failed: state.failed,
    running: [...running],
    pending: queue.length + serialQueue.length,
    runs: state.runs,
  });
  setHandler(backfillProgressQuery, progress);
  const showDetails = () => setCurrentDetails(backfillDetails(progress()));
  showDetails();

  const historyFull = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= input.historyLimit;
  };

  /** Runs one child; records done, or failed with the reason its result carried. */
  const runChild = async (label: string, selection: string[], range: { start: string; end: string }) => {
    try {
      await executeChild(materialize, {
        workflowId: `${workflowId}-${label.replace(/ /g, '-')}`,
        args: [{ selection: selection.join(','), range, ...childOptions(state.code) }],
        ...childMetadata(selection, range, state.code.hash),
      });
      state.done.push(label);
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const result = resultOfFailure(err);
      if (result) {
        state.failed[label] = failureSummary(result);
        result.assets.filter((a) => a.status === 'failed').forEach((a) => failedAssets.add(a.asset));
      } else {
        const cause = err instanceof ChildWorkflowFailure ? (err.cause ?? err) : err;
        state.failed[label] = cause instanceof Error ? cause.message : String(cause);
      }
      return false;
    }
  };

  const monthOf = (partition: string) => partition.slice(0, 7);
  /** A chunk may start once its month's serial part (if it has one) has settled. */
  const ready = (partition: string) => {
    const month = monthOf(partition);
    return !state.serialRemaining.includes(month) || state.serialSettled[month] !== undefined;
  };
  /** Without its month's users, what depends on them waits for a later backfill. */
  const chunkSelection = (partition: string) => {
    if (state.serialSettled[monthOf(partition)] !== false) return state.dailySelection;
    const blocked = new Set(state.serialSelection.flatMap((a) => [...downstreamOf(graph, a)]));
    return state.dailySelection.filter((a) => !blocked.has(a));
  };

  const inFlight = new Map<string, Promise<void>>();
  const launch = (label: string, work: () => Promise<void>) => {
    running.add(label);
    showDetails();
    inFlight.set(
      label,
      work().finally(() => {
        running.delete(label);
        inFlight.delete(label);
        showDetails();
      }),
    );
  };
  let serialRunning = false;
  for (;;) {
    // The serial lane: one month at a time, in order (one users run writes at a time anyway).
    if (!serialRunning && serialQueue.length > 0 && !historyFull()) {
      const month = serialQueue.shift()!;
      serialRunning = true;
      launch(serialLabel(month), async () => {
        const ok = await runChild(serialLabel(month), state.serialSelection, monthRange(month));
        state.serialSettled[month] = ok;
        serialRunning = false;
      });
    }
    // Stop launching when the history is getting long; drain, then continue as new.
    while (inFlight.size < input.concurrency + (serialRunning ? 1 : 0) && !historyFull()) {
      const i = queue.findIndex(ready);
      if (i < 0) break;
      const partition = queue.splice(i, 1)[0]!;
      const selection = chunkSelection(partition);
      if (selection.length === 0) {
        state.failed[partition] =
          `skipped: ${state.serialSelection.join(', ')} of ${monthOf(partition)} failed`;
        continue;
      }
      launch(partition, async () => {
        await runChild(partition, selection, rangeOf(partition));
      });
    }
    if (inFlight.size === 0) break;
    try {
      await Promise.race(inFlight.values());
    } catch (err) {
      // Cancelled: let every running child finish cancelling (and its steps with it) first, so
      // none is left to be terminated when this workflow closes.
      await Promise.allSettled(inFlight.values());
      throw err;
    }
  }

  if (queue.length > 0 || serialQueue.length > 0) {
    await continueAsNew<typeof backfill>({
      ...input,
      carried: {
        ...state,
        remaining: queue,
        serialRemaining: [
          ...state.serialRemaining.filter(
            (m) => serialQueue.includes(m) || state.serialSettled[m] === undefined,
          ),
        ],
        failedAssets: [...failedAssets],
        runs: state.runs + 1,
      },
    });
  }
  const final = progress();
  const failures = Object.entries(final.failed);
  if (failures.length > 0) {
    upsertSearchAttributes([{ key: SA_FAILED_ASSETS, value: [...failedAssets].sort() }]);
    throw ApplicationFailure.create({
      type: 'BackfillFailed',
      message:
        `${failures.length} of ${final.total} partitions failed: ` +
        failures
          .slice(0, 5)
          .map(([p, why]) => `${p}: ${why}`)
          .join('; ') +
        (failures.length > 5 ? '; …' : ''),
      nonRetryable: true,
      details: [final],
    });
  }
  return final;
}
