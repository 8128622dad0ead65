import { loadConfig } from '../config/config';
import { createWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  const worker = await createWorker({ config });
  console.log(
    `sparkify worker: task queue ${config.temporal.taskQueue} on ${config.temporal.address} (namespace ${config.temporal.namespace})`,
  );
  await worker.run();
}

main().catch((err) => {
  console.error(`sparkify worker: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
