import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import type { Config } from '../config/config';
import { createActivities, type ActivityDeps } from '../activities';
import { connectTemporal } from '../client/temporal';
import type { SparkifyActivities } from '../workflows/types';

export interface StartWorkerOptions {
  config: Config;
  connection?: NativeConnection;
  /** A prebuilt workflow bundle (tests build one and share it); else workflows/ is bundled. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  activityDeps?: Partial<ActivityDeps>;
  /** Replaces the real activities (tests script them). */
  activities?: SparkifyActivities;
}

export async function createWorker(opts: StartWorkerOptions): Promise<Worker> {
  const { config } = opts;
  const connection =
    opts.connection ?? (await connectTemporal(config, (options) => NativeConnection.connect(options)));
  return Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: require.resolve('../workflows') }),
    activities: opts.activities ?? createActivities(config, opts.activityDeps),
    // Step activities mostly wait on EMR; the bound protects EMR's API quota, not this process.
    maxConcurrentActivityTaskExecutions: Math.max(
      8,
      config.concurrency.steps * config.concurrency.months * 2,
    ),
  });
}
