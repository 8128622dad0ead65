/**
 * With Temporal unreachable, the client and the worker fail with one message that names the
 * address and namespace tried and what to do.
 */
import { Client, Connection } from '@temporalio/client';
import { connectClient, grpcRetryWhile, TemporalConnectionError } from '../client/temporal';
import { loadConfig } from '../config/config';
import { TemporalAccess, TemporalUnavailable } from '../ui/temporal-runs';
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

test('the page closing while a Temporal call is being retried cancels it and nothing throws later', async () => {
  // Nothing listens: each attempt fails UNAVAILABLE and the client's interceptor retries it from a
  // timer. A retry that met a closed channel used to throw out of that timer (exit code 1).
  const address = `127.0.0.1:${await freePort()}`;
  const access = new TemporalAccess(
    async (retryWhile) =>
      new Client({ connection: Connection.lazy({ address, interceptors: [grpcRetryWhile(retryWhile)] }) }),
  );
  const uncaught: unknown[] = [];
  const record = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', record);
  try {
    const call = access.use((client) => client.workflowService.getSystemInfo({}));
    call.catch(() => undefined);
    await new Promise((res) => setTimeout(res, 250)); // a few attempts in: the next one is timed
    await access.close();
    await expect(call).rejects.toThrow();
    await new Promise((res) => setTimeout(res, 1_500)); // past the retry that was timed
    expect(uncaught).toEqual([]);
    await expect(access.use(async () => 'after close')).rejects.toBeInstanceOf(TemporalUnavailable);
  } finally {
    process.off('uncaughtException', record);
  }
});
