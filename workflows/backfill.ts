import {
  ApplicationFailure,
  ChildWorkflowFailure,
  continueAsNew,
  defineQuery,
  executeChild,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import { addDays, daysIn, graph, monthRange, monthsBetween, MonthSchema, selectAssets } from '../assets';
import { materialize } from './materialize';
import { SA_ASSETS, SA_MONTHS, SA_PARTITION_END, SA_PARTITION_START, SA_RUN_KIND } from './search-attributes';
import { CodeVersionSchema, type SparkifyActivities } from './types';

export const BackfillInputSchema = z
  .object({
    selection: z.string().min(1),
    from: MonthSchema,
    to: MonthSchema,
    /** month: one materialization per month (one Spark step per asset covers it); day: one per day. */
    per: z.enum(['month', 'day']).default('month'),
    concurrency: z.number().int().min(1).max(100).default(2),
    only: z.enum(['all', 'missing', 'failed']).default('all'),
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
        skippedByFilter: z.number().int(),
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
  total: number;
  /** Partitions left out by --only-missing / --only-failed. */
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

function rangeOf(partition: string) {
  return partition.length === 7 ? monthRange(partition) : { start: partition, end: addDays(partition, 1) };
}

/**
 * A backfill is one workflow: it plans its partitions once, runs a materialization per
 * partition as a child (at most `concurrency` at once), and continues as new well before the
 * history limit, carrying what is left. Cancelling it cancels the children and their steps.
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
    const all = input.per === 'month' ? months : months.flatMap((m) => daysIn(monthRange(m)));
    let remaining = all;
    if (input.only !== 'all') {
      const states = await activities.partitionStates({ assets: selected, partitions: all });
      remaining = all.filter((p) =>
        input.only === 'missing' ? states[p] !== 'materialized' : states[p] === 'failed',
      );
    }
    // One code version for the whole backfill, however long it runs and whatever gets deployed.
    const code = await activities.publishSparkCode();
    carried = {
      code,
      total: all.length,
      remaining,
      done: [],
      failed: {},
      skippedByFilter: all.length - remaining.length,
      runs: 1,
    };
  }
  const state = carried;
  const queue = [...state.remaining];
  const running = new Set<string>();
  const progress = (): BackfillProgress => ({
    workflowId,
    per: input.per,
    total: state.total,
    skippedByFilter: state.skippedByFilter,
    done: state.done.length,
    failed: state.failed,
    running: [...running],
    pending: queue.length,
    runs: state.runs,
  });
  setHandler(backfillProgressQuery, progress);

  const historyFull = () => {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength >= input.historyLimit;
  };

  const runPartition = async (partition: string): Promise<void> => {
    try {
      const result = await executeChild(materialize, {
        workflowId: `${workflowId}-${partition}`,
        args: [
          {
            selection: input.selection,
            range: rangeOf(partition),
            runKind: 'backfill',
            code: state.code,
            maxParallelSteps: input.maxParallelSteps,
            ...(input.stepHeartbeatTimeoutMs ? { stepHeartbeatTimeoutMs: input.stepHeartbeatTimeoutMs } : {}),
          },
        ],
      });
      if (result.ok) state.done.push(partition);
      else {
        const bad = result.assets.filter((a) => a.status === 'failed' || a.status === 'skipped');
        state.failed[partition] = bad
          .map((a) => `${a.asset}: ${a.status}${a.reason ? ` (${a.reason})` : ''}`)
          .join('; ');
      }
    } catch (err) {
      if (isCancellation(err)) throw err;
      const cause = err instanceof ChildWorkflowFailure ? (err.cause ?? err) : err;
      state.failed[partition] = cause instanceof Error ? cause.message : String(cause);
    }
  };

  const inFlight = new Map<string, Promise<void>>();
  while (queue.length > 0 || inFlight.size > 0) {
    // Stop launching when the history is getting long; drain, then continue as new.
    while (queue.length > 0 && inFlight.size < input.concurrency && !historyFull()) {
      const partition = queue.shift()!;
      running.add(partition);
      inFlight.set(
        partition,
        runPartition(partition).finally(() => {
          running.delete(partition);
          inFlight.delete(partition);
        }),
      );
    }
    if (inFlight.size === 0) break;
    await Promise.race(inFlight.values());
  }

  if (queue.length > 0) {
    await continueAsNew<typeof backfill>({
      ...input,
      carried: { ...state, remaining: queue, runs: state.runs + 1 },
    });
  }
  return progress();
}
