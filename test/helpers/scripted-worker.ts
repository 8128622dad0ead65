// A worker process with scripted steps (see scripted.ts), configured from the environment, so a
// test can kill it with SIGKILL and start another in its place.
import { openLake } from '../../lake/store';
import { loadConfig } from '../../config/config';
import { createWorker } from '../../worker/worker';
import { scriptedActivities } from './scripted';

async function main(): Promise<void> {
  const config = loadConfig();
  const worker = await createWorker({
    config,
    activities: scriptedActivities(config, openLake(config.storage.lake), {
      durationMs: Number(process.env.SCRIPTED_STEP_MS ?? 1000),
      ledger: process.env.SCRIPTED_LEDGER,
      events: process.env.SCRIPTED_EVENTS,
    }),
  });
  await worker.run();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
