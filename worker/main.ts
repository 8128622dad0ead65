import { loadConfig } from '../config/config';
import { prebuiltWorkflowBundle } from './bundle';
import { startMemoryLog } from './memory-log';
import { createWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  const bundle = prebuiltWorkflowBundle();
  const worker = await createWorker({ config, ...(bundle ? { workflowBundle: bundle } : {}) });
  console.log(
    `sparkify worker: task queue ${config.temporal.taskQueue} on ${config.temporal.address} (namespace ${config.temporal.namespace}); workflows ${bundle ? `from the prebuilt bundle ${bundle.codePath}` : 'bundled from the sources at start'}`,
  );
  startMemoryLog();
  await worker.run();
}

main().catch((err) => {
  console.error(`sparkify worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
