import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Config } from '../config/config';
import { createActivities, type ActivityDeps } from '../activities';
import { connectTemporal } from '../client/temporal';
import type { SparkifyActivities } from '../workflows/types';
import { prebuiltWorkflowBundle } from './bundle';

export interface StartWorkerOptions {
  config: Config;
  connection?: NativeConnection;
  /**
   * A prebuilt workflow bundle (tests build one and share it). Default: the one `npm run build`
   * wrote beside the compiled code, else workflows/ bundled at start (running from the sources).
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  activityDeps?: Partial<ActivityDeps>;
  /** Replaces the real activities (tests script them). */
  activities?: SparkifyActivities;
}

/** The longest a heartbeat (and so a cancel's answer) waits in the worker: see createWorker. */
export const HEARTBEAT_THROTTLE_MS = 3_000;

export async function createWorker(opts: StartWorkerOptions): Promise<Worker> {
  const { config } = opts;
  const connection =
    opts.connection ?? (await connectTemporal(config, (options) => NativeConnection.connect(options)));
  const workflowBundle = opts.workflowBundle ?? prebuiltWorkflowBundle();
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    activities: opts.activities ?? createActivities(config, opts.activityDeps),
    // Step activities mostly wait on EMR; the bound protects EMR's API quota, not this process.
    maxConcurrentActivityTaskExecutions: Math.max(
      8,
      config.concurrency.steps * config.concurrency.months * 2,
    ),
    // A cancel reaches an activity only in the answer to a heartbeat the worker sends, and the
    // SDK sends at most one per min(0.8 × heartbeat timeout, maxHeartbeatThrottleInterval): with
    // the defaults (60 s, and a 120 s step heartbeat timeout) `temporal workflow cancel` took up
    // to a minute to reach the EMR step. The step activity heartbeats every second (locally; the
    // SDK coalesces), so the throttle is what decides how soon a cancel arrives.
    // The cost: one RecordActivityTaskHeartbeat per running activity per HEARTBEAT_THROTTLE_MS,
    // i.e. ~1,200 an hour for each running step instead of ~60 (bookkeeping activities, which
    // heartbeat every 5 s, send one per 5 s instead of one per 16 s); no EMR calls. On Temporal
    // Cloud every heartbeat that reaches the server is a billable Action.
    // Workflows kept in memory between their tasks. A backfill keeps only `concurrency` children
    // (and the lease workflow) busy at once; the default, sized from the heap, would keep
    // thousands of finished runs' sandboxes. Evicted ones replay from history when needed. 100
    // leaves the workflow thread's 192 MiB heap (process-settings.ts) room to spare.
    maxCachedWorkflows: 100,
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE_MS,
    defaultHeartbeatThrottleInterval: HEARTBEAT_THROTTLE_MS,
  });
}
