/**
 * Error classification and backoff for AWS calls made from activities.
 *
 * The SDK's own retries cover short blips; these helpers cover what the SDK cannot decide for
 * us: whether a failed call may have taken effect (AddJobFlowSteps has no idempotency token) and
 * how to wait out throttling on a shared account quota without failing a long-running activity.
 */

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

function asAws(err: unknown): AwsLikeError {
  return typeof err === 'object' && err !== null ? (err as AwsLikeError) : {};
}

const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
  'LimitExceededException',
]);

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * A network error code named in a message. Errors that cross a realm boundary (a `vm` context, as
 * under jest) are no longer `instanceof Error`, and the SDK then wraps them as text only: "AWS SDK
 * error wrapper for Error: connect ECONNREFUSED 127.0.0.1:8990", with no code left to read.
 */
const NETWORK_CODE_IN_TEXT = new RegExp(`\\b(?:${[...NETWORK_CODES].join('|')})\\b`);

const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'AbortError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalFailure',
  'InternalServerError',
  'InternalServerException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
]);

export function httpStatusOf(err: unknown): number | undefined {
  return asAws(err).$metadata?.httpStatusCode;
}

export function isThrottlingError(err: unknown): boolean {
  const e = asAws(err);
  if (e.$retryable?.throttling) return true;
  if (e.name && THROTTLING_NAMES.has(e.name)) return true;
  if (e.code && THROTTLING_NAMES.has(e.code)) return true;
  return httpStatusOf(err) === 429;
}

/** A failure that happened below the API (no HTTP response) or that the service calls its own fault. */
export function isTransientError(err: unknown): boolean {
  const e = asAws(err);
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  if (e.name && (TRANSIENT_NAMES.has(e.name) || NETWORK_CODES.has(e.name))) return true;
  const status = httpStatusOf(err);
  if (status !== undefined && status >= 500) return true;
  if (e.cause !== undefined && e.cause !== err && isTransientError(e.cause)) return true;
  // A bare Error with no HTTP status at all never reached the service, or we never heard back.
  return (
    status === undefined &&
    e.$fault === undefined &&
    (/socket|network|timed? ?out|hang up/i.test(e.message ?? '') ||
      NETWORK_CODE_IN_TEXT.test(e.message ?? ''))
  );
}

export function isRetryableAwsError(err: unknown): boolean {
  return isThrottlingError(err) || isTransientError(err);
}

/**
 * True when a failed mutating call might still have been applied by the service: we never got an
 * HTTP response, or got a 5xx. A 4xx (including throttling) means the request was refused.
 */
export function isAmbiguousFailure(err: unknown): boolean {
  const status = httpStatusOf(err);
  if (status !== undefined) return status >= 500;
  return !(asAws(err).$fault === 'client');
}

export function errorName(err: unknown): string {
  const e = asAws(err);
  return e.name ?? e.code ?? 'Error';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Exponential backoff with full jitter, floored at `minMs` so that a poll never comes sooner than
 * the configured minimum (full jitter from zero would occasionally hammer a rate-limited API).
 */
export function jitteredBackoff(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  if (ceiling <= minMs) return Math.max(0, minMs);
  return Math.round(minMs + random() * (ceiling - minMs));
}

/** setTimeout that rejects with the signal's reason when the signal aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
