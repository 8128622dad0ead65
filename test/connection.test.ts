/**
 * With Temporal unreachable, the client and the worker fail with one message that names the
 * address and namespace tried and what to do.
 */
import { connectClient, TemporalConnectionError } from '../client/temporal';
import { loadConfig } from '../config/config';
import { createWorker } from '../worker/worker';
import { freePort } from './helpers/ports';

const WHAT_TO_DO =
  '— is the server running? `npm run sparkify -- dev` starts one locally; set SPARKIFY_TEMPORAL_ADDRESS for another';

async function unreachable() {
  // A port that nothing listens on.
  const address = `127.0.0.1:${await freePort()}`;
  return loadConfig({
    file: '/dev/null',
    env: {
      SPARKIFY_TEMPORAL_ADDRESS: address,
      SPARKIFY_TEMPORAL_NAMESPACE: 'lake-test',
      SPARKIFY_TEMPORAL_CONNECT_TIMEOUT_MS: '300',
    },
  });
}

test('the client names the address, the namespace, how long it tried and what to do', async () => {
  const config = await unreachable();
  const failure = connectClient(config);
  await expect(failure).rejects.toBeInstanceOf(TemporalConnectionError);
  await expect(failure).rejects.toThrow(
    `cannot reach Temporal at ${config.temporal.address} (namespace lake-test): Failed to connect before the deadline (0.3 s) ${WHAT_TO_DO}`,
  );
});

test('the worker names the address, the namespace and what to do', async () => {
  const config = await unreachable();
  const failure = createWorker({ config });
  await expect(failure).rejects.toBeInstanceOf(TemporalConnectionError);
  await expect(failure).rejects.toThrow(
    new RegExp(
      `^cannot reach Temporal at ${config.temporal.address.replace(/\./g, '\\.')} \\(namespace lake-test\\): .*Connection refused.* — is the server running\\?`,
    ),
  );
});
