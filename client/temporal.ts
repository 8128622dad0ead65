import { readFileSync } from 'node:fs';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/tls-config';
import type { Config } from '../config/config';

export interface TemporalConnectionOptions {
  address: string;
  tls: TLSConfig | false;
  apiKey?: string;
}

/** Connection options shared by the client and the worker: address, TLS and API key. */
export function temporalConnectionOptions(config: Config): TemporalConnectionOptions {
  const t = config.temporal;
  const read = (path: string | undefined) => (path ? readFileSync(path) : undefined);
  const cert = read(t.tlsCertPath);
  const key = read(t.tlsKeyPath);
  const tlsWanted = t.tls || t.apiKey !== undefined || cert !== undefined;
  return {
    address: t.address,
    tls: tlsWanted
      ? {
          serverNameOverride: t.tlsServerName,
          serverRootCACertificate: read(t.tlsCaPath),
          clientCertPair: cert && key ? { crt: cert, key } : undefined,
        }
      : false,
    apiKey: t.apiKey,
  };
}

const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

/** A connection to Temporal that failed: the address and namespace tried, why, and what to do. */
export class TemporalConnectionError extends Error {
  override name = 'TemporalConnectionError';

  constructor(config: Config, cause: unknown) {
    const t = config.temporal;
    let reason = cause instanceof Error ? cause.message : String(cause);
    // The client's only words when nothing answers; say how long it waited.
    if (/before the deadline/.test(reason)) reason += ` (${t.connectTimeoutMs / 1000} s)`;
    const grpcCode = (cause as { code?: unknown } | null)?.code;
    const refusedCredentials =
      grpcCode === GRPC_PERMISSION_DENIED ||
      grpcCode === GRPC_UNAUTHENTICATED ||
      /unauthenticated|permission.?denied|certificate|handshake|\btls\b/i.test(reason);
    const hint = refusedCredentials
      ? 'check TEMPORAL_API_KEY and the TLS settings (SPARKIFY_TEMPORAL_TLS, _TLS_CA, _TLS_CERT, _TLS_KEY, _TLS_SERVER_NAME)'
      : 'is the server running? `npm run sparkify -- dev` starts one locally; set SPARKIFY_TEMPORAL_ADDRESS for another';
    super(`cannot reach Temporal at ${t.address} (namespace ${t.namespace}): ${reason} — ${hint}`, { cause });
  }
}

/**
 * Connects with the configured address, TLS and API key, through `connect` (the client's
 * Connection or the worker's NativeConnection); a failure becomes a TemporalConnectionError.
 */
export async function connectTemporal<T>(
  config: Config,
  connect: (options: TemporalConnectionOptions) => Promise<T>,
): Promise<T> {
  const options = temporalConnectionOptions(config);
  try {
    return await connect(options);
  } catch (err) {
    throw new TemporalConnectionError(config, err);
  }
}

/**
 * The client's own retry of failed calls, stopped once `retryWhile` says no. A connection that
 * is closed while a retry waits on its timer makes that retry throw out of the timer, where
 * nothing catches it: a long-lived owner (the page) stops the retries, lets the calls in flight
 * end, and only then closes.
 */
export function grpcRetryWhile(retryWhile: () => boolean): ReturnType<typeof makeGrpcRetryInterceptor> {
  const defaults = defaultGrpcRetryOptions();
  return makeGrpcRetryInterceptor({
    delayFunction: defaults.delayFunction,
    retryableDecider: (attempt, status) => retryWhile() && defaults.retryableDecider(attempt, status),
  });
}

export async function connectClient(
  config: Config,
  opts: { retryWhile?: () => boolean } = {},
): Promise<Client> {
  const { retryWhile } = opts;
  const connection = await connectTemporal(config, (options) =>
    Connection.connect({
      ...options,
      connectTimeout: config.temporal.connectTimeoutMs,
      ...(retryWhile ? { interceptors: [grpcRetryWhile(retryWhile)] } : {}),
    }),
  );
  return new Client({ connection, namespace: config.temporal.namespace });
}
