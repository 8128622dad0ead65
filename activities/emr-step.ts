/**
 * The EMR step lifecycle as one Temporal activity: find-or-submit, poll, classify, cancel.
 *
 * What it guarantees, and why each piece is there:
 * - One step per logical run. AddJobFlowSteps has no idempotency token, so a step is found again
 *   before anything is submitted: first by the step id a previous attempt heartbeated, then by its
 *   (deterministic) name in ListSteps, because heartbeats sent just before a crash can be lost. A
 *   first attempt has no predecessor to find and goes straight to the submit.
 *   The submit itself goes through a client with SDK retries off, and an ambiguous failure (no
 *   response, 5xx) is resolved by looking again, never by sending again.
 * - Another attempt, on any worker, resumes the same step instead of starting a second one.
 * - Two attempts alive at once (a stuck old worker and its replacement) end on one step: after
 *   submitting, an attempt lists the steps of its name; where more than one can still be the run's
 *   step, the oldest (creation time, then step id) wins, whichever attempt notices cancels the
 *   others, and an attempt whose own step lost adopts the winner.
 * - Polling stays inside EMR's shared per-account quota (DescribeStep refills at 0.5/s): jittered
 *   exponential backoff, and throttling is waited out rather than failing hours of Spark work.
 * - An EMR API outage (unreachable, 5xx, throttled) is ridden out within the attempt, heartbeating,
 *   for up to `outageToleranceMs`; the step runs on meanwhile and its real end state is reported
 *   when the API answers again. An outage is not a step failure and uses up no retry.
 * - An explicit cancel cancels the EMR step too, within seconds (the wait loops heartbeat every
 *   second; the worker's heartbeat throttle decides how soon the server's answer arrives); a
 *   worker shutdown or timeout does not, since the next attempt will pick the step up again.
 * - Failures are classified so the workflow's retry policy can tell "run it again" (lost node,
 *   OOM, a failure nothing explains) from "running it again cannot help" (a data check failed, bad
 *   arguments, permission denied, a missing bucket or input path).
 */
import {
  AddJobFlowStepsCommand,
  CancelStepsCommand,
  DescribeStepCommand,
  EMRClient,
  ListStepsCommand,
  type Step,
  type StepState,
  type StepSummary,
} from '@aws-sdk/client-emr';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { z } from 'zod';
import { explainReport, JobReportSchema, type JobReport } from '../lake/report';
import {
  abortableSleep,
  errorMessage,
  errorName,
  isAmbiguousFailure,
  isRetryableAwsError,
  isThrottlingError,
  jitteredBackoff,
} from './retry';

export interface SparkStepInput {
  clusterId: string;
  /** Deterministic per logical run (the workflow derives it); how a later attempt finds the step. ≤ 256 chars. */
  stepName: string;
  /** HadoopJarStep.Args for command-runner.jar, as built by {@link buildSparkSubmitArgs}. */
  args: string[];
  /** Where the job writes its report; read when the step fails, to classify the failure. */
  reportUri?: string;
  /** DescribeStep polling bounds; default 5 s → 60 s. */
  poll?: { initialMs: number; maxMs: number };
}

export interface SparkStepResult {
  stepId: string;
  /** true when this attempt did not submit the step (found it by heartbeat or by name). */
  adopted: boolean;
  state: 'COMPLETED';
  startedAt?: string;
  endedAt?: string;
  logFile?: string;
}

/** What a failed step looked like; the `details[0]` of every failure thrown for a finished step. */
export interface EmrStepFailureDetails {
  stepId: string;
  stepName: string;
  state: string;
  reason?: string;
  message?: string;
  logFile?: string;
  exitCode?: number;
  failedChecks?: string[];
  /** Where a step whose checks failed left its output. */
  stagingUri?: string;
  /** The job report that explains the failure, when there was one: it says, per asset, what was published. */
  reportUri?: string;
}

export interface EmrStepDeps {
  /** DescribeStep / ListSteps / CancelSteps; normal SDK retries are fine for these. */
  emr: EMRClient;
  /**
   * AddJobFlowSteps only. Must have SDK retries off (`maxAttempts: 1`): a transparent SDK retry of
   * a request that did reach EMR adds a second step. Derived from `emr` when omitted.
   */
  emrNoRetry?: EMRClient;
  /** Reads the job report at a URI; null when absent. */
  readReport?: (uri: string) => Promise<unknown | null>;
  /** Test seam; must reject with `signal.reason` when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  /** How long a cancelled activity waits for the step to reach CANCELLED. Default 30 s. */
  cancelWaitMs?: number;
  /** Per-request timeout for EMR calls. Default 60 s. */
  callTimeoutMs?: number;
  /**
   * How long an attempt rides out an EMR API that is unreachable, failing (5xx) or throttling,
   * heartbeating and backing off up to the poll maximum, before it gives up retryably
   * (EmrUnavailable). Default 12 h, the step activity's own timeout.
   */
  outageToleranceMs?: number;
}

const DEFAULT_POLL = { initialMs: 5_000, maxMs: 60_000 };
const STEP_NAME_MAX = 256;
/** EMR's limit on all strings of one step's HadoopJarStep together. */
const STEP_ARGS_MAX_CHARS = 10_240;

const LIVE_STATES: ReadonlySet<string> = new Set(['PENDING', 'CANCEL_PENDING', 'RUNNING']);
const FAILED_STATES: ReadonlySet<string> = new Set(['FAILED', 'CANCELLED', 'INTERRUPTED']);
/**
 * Steps under our name worth joining instead of submitting anew. CANCEL_PENDING is included on
 * purpose: it may still be writing, and starting a second writer next to it is worse than waiting
 * for it to end (as CANCELLED, which then fails this attempt retryably).
 */
const ADOPTABLE_STATES: StepState[] = ['PENDING', 'CANCEL_PENDING', 'RUNNING', 'COMPLETED'];
/** Tolerated clock difference between EMR and whatever stamps the report's `started_at`. */
const REPORT_CLOCK_SKEW_MS = 5 * 60_000;
/**
 * Steps under our name that can still be the run's one step once duplicates are settled: the
 * oldest of them wins. CANCEL_PENDING is out: such a step is on its way out, and a live namesake
 * should carry on rather than follow it.
 */
const WINNABLE_STATES: StepState[] = ['PENDING', 'RUNNING', 'COMPLETED'];
/**
 * How far before its own lookup a later attempt looks for namesakes after submitting (and a first
 * attempt, before its start, when EMR gives its step no CreationDateTime to measure from); and
 * before a step's creation when it looks for the step that won against it. The margin covers the
 * clock difference between this worker and EMR, and a listing that lags behind a submit.
 */
const NAMESAKE_WINDOW_MS = 5 * 60_000;
/** CreationDateTime's rounding, and then some: the listing after a submit reaches this much further back. */
const CREATION_TIME_SLACK_MS = 2_000;

/** A first attempt's start and its submit's answer, in this worker's monotonic clock (performance.now()). */
interface Lookback {
  from: number;
  answeredAt: number;
  /** Where to stop listing, in the worker's wall clock, if our step's creation time is unknown. */
  fallback: number;
}
/** The longest wait between heartbeats: cancellation arrives only on a heartbeat's response. */
const HEARTBEAT_EVERY_MS = 1_000;

/**
 * FailureDetails that say running the step again cannot help, when no job report says otherwise:
 * the step (or spark-submit fetching its code) was refused access, or a bucket or input is missing.
 */
const PERMANENT_FAILURES: readonly RegExp[] = [
  /permission denied/i,
  /access ?denied/i,
  /is not authorized to perform/i,
  /no ?such ?bucket/i,
  /the specified bucket does not exist/i,
  /path does not exist/i,
];

export function buildSparkSubmitArgs(p: {
  runPy: string;
  pyFiles: string;
  jobArgs: string[];
  conf?: Record<string, string>;
  /** Jars for the driver and executors' classpath (e.g. the JDBC driver of the warehouse load). */
  jars?: readonly string[];
}): string[] {
  const conf: Record<string, string> = { ...(p.conf ?? {}) };
  const tz = conf['spark.sql.session.timeZone'];
  // Every date in the lake is a UTC day; a session time zone from the cluster default would
  // silently shift partitions, so this is not something a caller may override.
  if (tz !== undefined && tz !== 'UTC') {
    throw new Error(`spark.sql.session.timeZone must be UTC, got ${JSON.stringify(tz)}`);
  }
  conf['spark.sql.session.timeZone'] = 'UTC';
  const args = ['spark-submit', '--deploy-mode', 'cluster'];
  // UTC first (as in the contract), the rest sorted so equal inputs give byte-equal steps.
  const keys = [
    'spark.sql.session.timeZone',
    ...Object.keys(conf)
      .filter((k) => k !== 'spark.sql.session.timeZone')
      .sort(),
  ];
  for (const key of keys) {
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new Error(`invalid Spark conf key ${JSON.stringify(key)}`);
    const value = conf[key]!;
    if (/[\r\n]/.test(value)) throw new Error(`Spark conf ${key} has a line break in its value`);
    args.push('--conf', `${key}=${value}`);
  }
  if (p.jars && p.jars.length > 0) {
    if (p.jars.some((j) => j.includes(','))) throw new Error('a jar URI must not contain a comma');
    args.push('--jars', p.jars.join(','));
  }
  if (p.pyFiles) args.push('--py-files', p.pyFiles);
  args.push(p.runPy, ...p.jobArgs);
  return args;
}

/** Returns an EMR client with the same region, credentials and endpoint as `emr` but no SDK retries. */
export function withoutSdkRetries(emr: EMRClient): EMRClient {
  const c = emr.config;
  return new EMRClient({
    region: c.region,
    credentials: c.credentials,
    ...(c.isCustomEndpoint && c.endpoint ? { endpoint: c.endpoint } : {}),
    useFipsEndpoint: c.useFipsEndpoint,
    useDualstackEndpoint: c.useDualstackEndpoint,
    requestHandler: c.requestHandler,
    logger: c.logger,
    maxAttempts: 1,
  });
}

/** The exit code EMR (or the local EMR) reports in FailureDetails, when it names one. */
export function parseExitCode(text: string): number | undefined {
  const m =
    /\bexit(?:ed)?\s*(?:with\s+)?(?:status|code|return\s+code|value)\s*[:=]?\s*(-?\d{1,3})\b/i.exec(text) ??
    /\b(?:return\s+code|exit_?code|exitCode)\s*[:=]?\s*(-?\d{1,3})\b/i.exec(text);
  return m ? Number.parseInt(m[1]!, 10) : undefined;
}

const HeartbeatSchema = z.looseObject({ stepId: z.string().min(1), state: z.string().optional() });

class EmrUnavailable extends Error {}

/** A step of our name, as the duplicate check sees it. */
interface Namesake {
  id: string;
  state: string;
  /** EMR's CreationDateTime in ms; +Infinity when unknown (it then sorts as the newest). */
  created: number;
}

function createdAt(step: StepSummary | Step): number {
  return step.Status?.Timeline?.CreationDateTime?.getTime() ?? Number.POSITIVE_INFINITY;
}

/** Oldest first, ties by step id: every attempt that looks picks the same winner. */
function oldestFirst(a: Namesake, b: Namesake): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A Reason pointing at something passing (a lost node, memory, the network): worth a retry. */
const TRANSIENT_REASON =
  /killed|lost|memory|timed? ?out|throttl|slow ?down|unavailable|connection|interrupted|preempt|decommission/i;
const MAX_CAUSE_CHARS = 300;

/**
 * What in a failed step's FailureDetails says running it again cannot help, for a step that left
 * no job report to say so: the Reason, if it says so; else, unless the Reason points at something
 * passing, the one line of Message (a log excerpt) that does. Undefined when nothing does: a
 * failure nothing explains stays retryable (in cluster deploy mode the job's exit code does not
 * reach the step's state, so a failed step without a report may be anything).
 */
export function permanentFailureCause(fd: { Reason?: string; Message?: string }): string | undefined {
  const says = (text: string): boolean => PERMANENT_FAILURES.some((re) => re.test(text));
  const reason = fd.Reason?.trim();
  if (reason && says(reason)) return reason;
  if (reason && TRANSIENT_REASON.test(reason)) return undefined;
  const line = (fd.Message ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find(says);
  if (line === undefined) return undefined;
  return line.length <= MAX_CAUSE_CHARS ? line : `${line.slice(0, MAX_CAUSE_CHARS - 1)}…`;
}

export function createEmrStepActivities(deps: EmrStepDeps) {
  const emr = deps.emr;
  const emrNoRetry = deps.emrNoRetry ?? withoutSdkRetries(deps.emr);
  const sleep = deps.sleep ?? abortableSleep;
  const random = deps.random ?? Math.random;
  const cancelWaitMs = deps.cancelWaitMs ?? 30_000;
  const callTimeoutMs = deps.callTimeoutMs ?? 60_000;
  const outageToleranceMs = deps.outageToleranceMs ?? 12 * 3_600_000;

  async function runSparkStep(input: SparkStepInput): Promise<SparkStepResult> {
    // This attempt's start, in the worker's monotonic clock: a first attempt's check for namesakes lists back to here.
    const attemptFrom = performance.now();
    validateInput(input);
    const ctx = Context.current();
    const signal = ctx.cancellationSignal;
    const poll = normalizePoll(input.poll);
    const tracked: { stepId?: string; state?: string } = {};
    /** The step as the check after the submit described it: the polling's first answer. */
    let described: Step | undefined;
    /** Since when the EMR API has not answered; undefined while it answers. */
    let outageSince: number | undefined;

    const heartbeat = (): void => {
      if (tracked.stepId) {
        ctx.heartbeat(
          tracked.state ? { stepId: tracked.stepId, state: tracked.state } : { stepId: tracked.stepId },
        );
      } else {
        // Still looking: keep whatever the previous attempt left, so a crash now loses nothing.
        ctx.heartbeat(ctx.info.heartbeatDetails);
      }
    };

    // Cancellation reaches an activity only on a heartbeat's response, and the worker sends at
    // most one heartbeat per throttle interval (see worker/worker.ts). Waits are cut into slices
    // of at most a second with a heartbeat after each, so the server hears from this attempt once
    // per throttle interval whatever the poll interval, and a cancel arrives within about that.
    const hbSliceMs = Math.max(
      1,
      Math.min(HEARTBEAT_EVERY_MS, (ctx.info.heartbeatTimeoutMs ?? Infinity) / 3),
    );
    const wait = async (ms: number): Promise<void> => {
      let left = ms;
      while (left > 0) {
        const slice = Math.min(left, hbSliceMs);
        await sleep(slice, signal);
        left -= slice;
        heartbeat();
      }
    };

    /** A request may take up to callTimeoutMs: keep heartbeating meanwhile. */
    const heartbeatingWhile = async <T>(request: Promise<T>): Promise<T> => {
      const timer = setInterval(heartbeat, hbSliceMs);
      try {
        return await request;
      } finally {
        clearInterval(timer);
      }
    };

    /**
     * EMR calls that may be repeated (reads, and CancelSteps, which is idempotent). Throttling and
     * transient failures (no answer, 5xx) are waited out, not thrown: in the attempt's own work
     * for as long as the API has been down up to `outageToleranceMs`; after a cancel
     * (`abortable` false) for at most `cancelWaitMs` of this call.
     */
    const call = async <T>(
      what: string,
      fn: (abortSignal: AbortSignal) => Promise<T>,
      abortable = true,
    ): Promise<T> => {
      let firstFailure: number | undefined;
      for (let failures = 0; ;) {
        if (abortable && signal.aborted) throw signal.reason;
        const timeout = AbortSignal.timeout(callTimeoutMs);
        try {
          const out = abortable
            ? await heartbeatingWhile(fn(AbortSignal.any([signal, timeout])))
            : await fn(timeout);
          if (abortable && outageSince !== undefined) {
            ctx.log.info(
              `the EMR API answers again after ${Math.round((Date.now() - outageSince) / 1000)} s`,
            );
            outageSince = undefined;
          }
          return out;
        } catch (err) {
          if (abortable && signal.aborted) throw signal.reason;
          if (!isRetryableAwsError(err)) throw err;
          failures += 1;
          const now = Date.now();
          firstFailure ??= now;
          if (abortable) outageSince ??= now;
          const since = abortable ? outageSince! : firstFailure;
          const tolerance = abortable ? outageToleranceMs : cancelWaitMs;
          const down = now - since;
          if (down >= tolerance) {
            throw new EmrUnavailable(
              `${what} kept failing for ${Math.round(down / 1000)} s (${failures} tries), ` +
                `last: ${errorName(err)}: ${errorMessage(err)}`,
            );
          }
          const backoff = Math.max(
            1,
            Math.min(
              jitteredBackoff(
                failures + (isThrottlingError(err) ? 1 : 0),
                poll.initialMs,
                poll.maxMs,
                random,
              ),
              tolerance - down,
            ),
          );
          // 1st, 2nd, 4th, 8th… failure: an hours-long outage logs a few dozen lines, not thousands.
          if ((failures & (failures - 1)) === 0) {
            ctx.log.warn(
              `${what} failed (${errorName(err)}: ${errorMessage(err)}), ${failures} times in ` +
                `${Math.round(down / 1000)} s; retrying in ${backoff} ms`,
            );
          }
          if (abortable) await wait(backoff);
          else await abortableSleep(backoff);
        }
      }
    };

    const describe = async (stepId: string, abortable = true): Promise<Step> => {
      const out = await call(
        `DescribeStep ${stepId}`,
        (abortSignal) =>
          emr.send(new DescribeStepCommand({ ClusterId: input.clusterId, StepId: stepId }), { abortSignal }),
        abortable,
      );
      if (!out.Step?.Status?.State) throw new Error(`DescribeStep ${stepId} returned no step state`);
      return out.Step;
    };

    const listPage = (states: StepState[], marker: string | undefined, abortable: boolean) =>
      call(
        'ListSteps',
        (abortSignal) =>
          emr.send(new ListStepsCommand({ ClusterId: input.clusterId, StepStates: states, Marker: marker }), {
            abortSignal,
          }),
        abortable,
      );

    /**
     * The newest step carrying our exact name in one of `states`. ListSteps cannot filter by name
     * and lists newest first, so the first hit is the one we want and paging stops there.
     */
    const findByName = async (states: StepState[]): Promise<StepSummary | undefined> => {
      // No step of this name can predate the first attempt of this activity (the name is unique
      // to one run's step): paging stops there, not at the start of the cluster's history.
      const notBefore = ctx.info.scheduledTimestampMs - REPORT_CLOCK_SKEW_MS;
      let marker: string | undefined;
      do {
        const page = await listPage(states, marker, true);
        heartbeat();
        const steps = page.Steps ?? [];
        const hit = steps.find(
          (s) => s.Name === input.stepName && s.Id && states.includes(s.Status?.State as StepState),
        );
        if (hit) return hit;
        const last = steps.at(-1);
        marker = last && createdAt(last) < notBefore ? undefined : page.Marker || undefined;
      } while (marker);
      return undefined;
    };

    /**
     * Every step of our name in a winnable state, listing newest first until the listing reaches
     * steps created before `since`.
     */
    const namesakes = async (since: number): Promise<Namesake[]> => {
      const found: Namesake[] = [];
      let marker: string | undefined;
      do {
        const page = await listPage(WINNABLE_STATES, marker, true);
        heartbeat();
        const steps = page.Steps ?? [];
        for (const s of steps) {
          const state = s.Status?.State;
          if (s.Name === input.stepName && s.Id && WINNABLE_STATES.includes(state as StepState)) {
            found.push({ id: s.Id, state: state!, created: createdAt(s) });
          }
        }
        const last = steps.at(-1);
        marker = last && createdAt(last) < since ? undefined : page.Marker || undefined;
      } while (marker);
      return found;
    };

    const adopt = (
      stepId: string,
      state: string | undefined,
      how: string,
    ): { stepId: string; adopted: boolean } => {
      tracked.stepId = stepId;
      tracked.state = state;
      ctx.heartbeat({ stepId });
      ctx.log.info(`adopted EMR step ${stepId} (${input.stepName}, ${state ?? 'state unknown'}) ${how}`);
      return { stepId, adopted: true };
    };

    /** Cancels steps that lost the duplicate check; failing to is logged, the others will try too. */
    const cancelDuplicates = async (stepIds: string[]): Promise<void> => {
      try {
        const out = await call(`CancelSteps ${stepIds.join(', ')}`, (abortSignal) =>
          emr.send(
            new CancelStepsCommand({
              ClusterId: input.clusterId,
              StepIds: stepIds,
              StepCancellationOption: 'SEND_INTERRUPT',
            }),
            { abortSignal },
          ),
        );
        for (const info of out.CancelStepsInfoList ?? []) {
          if (info.Status === 'FAILED')
            ctx.log.warn(
              `EMR would not cancel duplicate ${info.StepId}: ${info.Reason ?? 'no reason given'}`,
            );
        }
      } catch (err) {
        if (signal.aborted || err instanceof EmrUnavailable) throw err;
        ctx.log.warn(`could not cancel duplicate steps ${stepIds.join(', ')}: ${errorMessage(err)}`);
      }
    };

    /**
     * Where, in EMR's clock, a first attempt's check after its submit may stop listing: the
     * attempt's start. It is measured back from our own step's CreationDateTime by the time this
     * worker measured from its start to the submit's answer, so no clock difference between this
     * worker and EMR enters it, and the listing covers seconds, not the minutes a guessed clock
     * skew would: on a busy cluster those minutes were dozens of ListSteps pages per step, against
     * EMR's API quota. (A later attempt lists back further: see locateOrSubmit.)
     */
    const namesakeWindowStart = async (mine: string, lookback: Lookback): Promise<number> => {
      const step = await describe(mine);
      tracked.state = step.Status!.State!;
      described = step;
      const created = createdAt(step);
      if (!Number.isFinite(created)) return lookback.fallback;
      return created - (lookback.answeredAt - lookback.from) - CREATION_TIME_SLACK_MS;
    };

    /**
     * After a submit, another attempt of this activity (a stuck worker and its replacement) may
     * have submitted too. Of the steps of our name that can still be the run's step, the oldest
     * wins (creation time, then step id: the same answer for every attempt that looks, and a step
     * created later can never beat one created earlier). Live losers are cancelled by whichever
     * attempt sees them first (CancelSteps is idempotent); an attempt whose own step lost adopts
     * the winner.
     */
    const settle = async (
      mine: string,
      lookback: number | Lookback,
      mineAdopted: boolean,
    ): Promise<{ stepId: string; adopted: boolean }> => {
      const all = await namesakes(
        typeof lookback === 'number' ? lookback : await namesakeWindowStart(mine, lookback),
      );
      // Not listed yet: then it is newer than every step that was.
      if (!all.some((s) => s.id === mine))
        all.push({ id: mine, state: tracked.state ?? 'PENDING', created: Number.POSITIVE_INFINITY });
      all.sort(oldestFirst);
      const winner = all[0]!;
      const losers = all.filter((s) => s.id !== winner.id && LIVE_STATES.has(s.state)).map((s) => s.id);
      if (losers.length > 0) {
        ctx.log.warn(
          `${all.length} steps are named ${input.stepName} (another attempt submitted too): keeping the ` +
            `oldest, ${winner.id}, and cancelling ${losers.join(', ')}`,
        );
        await cancelDuplicates(losers);
      }
      if (winner.id === mine) return { stepId: mine, adopted: mineAdopted };
      return adopt(winner.id, winner.state, `instead of its own ${mine}: the oldest step of this name wins`);
    };

    const submit = async (): Promise<{ stepId: string; adopted: boolean }> => {
      let throttledSince: number | undefined;
      for (let throttled = 0; ;) {
        // Once AddJobFlowSteps is on the wire we must see its outcome, so it does not listen to the
        // cancellation signal; check it here instead, before anything is sent.
        if (signal.aborted) throw signal.reason;
        try {
          const out = await heartbeatingWhile(
            emrNoRetry.send(
              new AddJobFlowStepsCommand({
                JobFlowId: input.clusterId,
                Steps: [
                  {
                    Name: input.stepName,
                    ActionOnFailure: 'CONTINUE',
                    HadoopJarStep: { Jar: 'command-runner.jar', Args: input.args },
                  },
                ],
              }),
              { abortSignal: AbortSignal.timeout(callTimeoutMs) },
            ),
          );
          const stepId = out.StepIds?.[0];
          if (!stepId)
            throw Object.assign(new Error('AddJobFlowSteps answered without a step id'), {
              $fault: 'server',
            });
          tracked.stepId = stepId;
          tracked.state = 'PENDING';
          ctx.heartbeat({ stepId });
          ctx.log.info(`submitted EMR step ${stepId} (${input.stepName})`);
          return { stepId, adopted: false };
        } catch (err) {
          if (isThrottlingError(err)) {
            // A throttled request was refused outright, so sending it again cannot duplicate.
            throttledSince ??= Date.now();
            if (Date.now() - throttledSince < outageToleranceMs) {
              throttled += 1;
              await wait(jitteredBackoff(throttled, poll.initialMs, poll.maxMs, random));
              continue;
            }
            throw new EmrUnavailable(
              `AddJobFlowSteps stayed throttled for ${Math.round((Date.now() - throttledSince) / 1000)} s`,
            );
          }
          if (isAmbiguousFailure(err)) return resolveAmbiguousSubmit(err);
          const name = errorName(err);
          if (name === 'ValidationException' || name === 'InvalidRequestException') {
            throw ApplicationFailure.create({
              type: 'EmrRequestRejected',
              message: `EMR refused step ${input.stepName} on ${input.clusterId}: ${errorMessage(err)}`,
              nonRetryable: true,
              cause: err instanceof Error ? err : undefined,
            });
          }
          throw err;
        }
      }
    };

    /** The submit may or may not have landed: look (a few times, as it may still be in flight), never resend. */
    const resolveAmbiguousSubmit = async (err: unknown): Promise<{ stepId: string; adopted: boolean }> => {
      ctx.log.warn(
        `AddJobFlowSteps for ${input.stepName} failed ambiguously (${errorName(err)}: ${errorMessage(err)})`,
      );
      for (let i = 0; i < 3; i++) {
        await wait(jitteredBackoff(i, poll.initialMs, poll.maxMs, random));
        const found = await findByName(ADOPTABLE_STATES);
        if (found?.Id) return adopt(found.Id, found.Status?.State, 'after an ambiguous submit');
      }
      throw ApplicationFailure.create({
        type: 'EmrSubmitAmbiguous',
        message:
          `AddJobFlowSteps for ${input.stepName} failed without a definite answer (${errorName(err)}: ` +
          `${errorMessage(err)}) and no step of that name is visible; the next attempt looks again before submitting`,
        nonRetryable: false,
        cause: err instanceof Error ? err : undefined,
      });
    };

    /** A heartbeated step id EMR no longer knows (cluster replaced between attempts) is ignored. */
    const describeRemembered = async (stepId: string): Promise<Step | undefined> => {
      try {
        return await describe(stepId);
      } catch (err) {
        if (errorName(err) !== 'InvalidRequestException') throw err;
        ctx.log.warn(
          `step ${stepId} from the previous attempt is unknown to ${input.clusterId}: ${errorMessage(err)}`,
        );
        return undefined;
      }
    };

    const locateOrSubmit = async (): Promise<{ stepId: string; adopted: boolean }> => {
      const hb = HeartbeatSchema.safeParse(ctx.info.heartbeatDetails);
      // A first attempt that began long after it was scheduled (a queue, or a stall before this code
      // ran, during which its heartbeat timeout could let a second attempt start) looks first,
      // as later ones do. Half the heartbeat timeout leaves room for a clock difference between
      // this worker and the Temporal server.
      const firstAttempt =
        ctx.info.attempt === 1 &&
        !hb.success &&
        Date.now() - ctx.info.currentAttemptScheduledTimestampMs <
          (ctx.info.heartbeatTimeoutMs ?? 60_000) / 2;
      const step = hb.success ? await describeRemembered(hb.data.stepId) : undefined;
      if (step) {
        const state = step.Status!.State!;
        if (!FAILED_STATES.has(state))
          return adopt(step.Id ?? hb.data!.stepId, state, 'from the previous attempt');
        // The previous attempt's step failed. A retryable failure is why we are here: submit
        // afresh. A non-retryable one means that attempt died before it could report it: report it.
        const failure = await classifyFailure(step);
        if (failure.nonRetryable) throw failure;
        ctx.log.info(`the previous attempt's step ${step.Id} ended ${state}; submitting a new one`);
      }
      if (firstAttempt) {
        // A first attempt has nothing to find: the step name is this run's own, and another
        // attempt of this activity only starts once this one timed out, so any namesake is newer
        // than this attempt's start, where the check after the submit lists back to.
        const submitted = await submit();
        const answeredAt = performance.now();
        const fallback = Date.now() - (answeredAt - attemptFrom) - NAMESAKE_WINDOW_MS;
        return settle(submitted.stepId, { from: attemptFrom, answeredAt, fallback }, submitted.adopted);
      }
      const lookupStartedAt = Date.now();
      const found = await findByName(ADOPTABLE_STATES);
      if (found?.Id) return adopt(found.Id, found.Status?.State, 'found by name');
      // Any namesake older than this lookup would have been found by it, had it been listed yet:
      // the check after the submit lists back to (well before) here and no further. The margin
      // covers the clock difference between this worker and EMR, and a namesake a lagging listing
      // did not show the lookup.
      const submitted = await submit();
      return settle(submitted.stepId, lookupStartedAt - NAMESAKE_WINDOW_MS, submitted.adopted);
    };

    /**
     * Our step is being cancelled, and not by this attempt: if that is because another attempt
     * found it a duplicate, the step that won is the one to follow.
     */
    const winnerOtherThan = async (step: Step, stepId: string): Promise<Namesake | undefined> => {
      const since = Math.min(createdAt(step), Date.now()) - NAMESAKE_WINDOW_MS;
      return (await namesakes(since)).filter((s) => s.id !== stepId).sort(oldestFirst)[0];
    };

    const readFreshReport = async (step: Step): Promise<JobReport | null> => {
      if (!input.reportUri || !deps.readReport) return null;
      let raw: unknown;
      try {
        raw = await deps.readReport(input.reportUri);
      } catch (err) {
        ctx.log.warn(`could not read the job report ${input.reportUri}: ${errorMessage(err)}`);
        return null;
      }
      const parsed = JobReportSchema.safeParse(raw);
      if (!parsed.success) {
        if (raw !== null)
          ctx.log.warn(`the job report ${input.reportUri} does not match the contract; ignored`);
        return null;
      }
      // The report path is reused across attempts; a report older than this step is from an
      // earlier run and says nothing about why this one failed.
      const stepStart = step.Status?.Timeline?.StartDateTime ?? step.Status?.Timeline?.CreationDateTime;
      const reportStart = parsed.data.started_at ? Date.parse(parsed.data.started_at) : NaN;
      if (
        stepStart &&
        Number.isFinite(reportStart) &&
        reportStart < stepStart.getTime() - REPORT_CLOCK_SKEW_MS
      ) {
        ctx.log.warn(`ignoring stale report ${input.reportUri} (started ${parsed.data.started_at})`);
        return null;
      }
      return parsed.data;
    };

    const classifyFailure = async (step: Step): Promise<ApplicationFailure> => {
      const status = step.Status!;
      const state = status.State!;
      const fd = status.FailureDetails ?? {};
      const stepId = step.Id ?? tracked.stepId ?? '?';
      // Reason first: Message is often a log tail that can quote executors' exit codes too.
      const exitCode = parseExitCode(fd.Reason ?? '') ?? parseExitCode(fd.Message ?? '');
      const details: EmrStepFailureDetails = {
        stepId,
        stepName: input.stepName,
        state,
        reason: fd.Reason,
        message: fd.Message,
        logFile: fd.LogFile,
        ...(exitCode !== undefined ? { exitCode } : {}),
      };
      // Where to look, after the explanation; the log tail itself stays in the details.
      const where = `EMR step ${stepId} ${state}${fd.LogFile ? `, log ${fd.LogFile}` : ''}`;

      if (state === 'FAILED') {
        // The job's own report says why, whatever exit code reached EMR (in cluster deploy mode
        // the driver's exit code does not reach the step's state at all).
        const report = await readFreshReport(step);
        if (report?.status === 'check_failed') {
          const failedChecks = report.failed_checks.map((c) => c.name);
          const kept = report.staging ? `; staged output kept at ${report.staging}` : '';
          return ApplicationFailure.create({
            type: 'DataCheckFailed',
            message: `${explainReport(report)} — ${where}${kept}`,
            nonRetryable: true,
            details: [
              {
                ...details,
                failedChecks,
                stagingUri: report.staging ?? undefined,
                reportUri: input.reportUri,
              },
            ],
          });
        }
        if (report?.status === 'failed' && report.error) {
          return ApplicationFailure.create({
            type: report.error.retryable ? 'EmrStepFailed' : 'JobFailedPermanently',
            message: `${explainReport(report)} — ${where}`,
            nonRetryable: !report.error.retryable,
            details: [{ ...details, reportUri: input.reportUri }],
          });
        }
        // No usable report: the contract's exit codes (3: a check failed, 2: bad arguments).
        if (!report && exitCode === 3) {
          return ApplicationFailure.create({
            type: 'DataCheckFailed',
            message: `data checks failed (no readable report) — ${where}`,
            nonRetryable: true,
            details: [{ ...details, failedChecks: [] }],
          });
        }
        if (!report && exitCode === 2) {
          return ApplicationFailure.create({
            type: 'InvalidJobArguments',
            message: `the Spark job rejected its arguments${fd.Reason ? `: ${fd.Reason}` : ''} — ${where}`,
            nonRetryable: true,
            details: [details],
          });
        }
        // Nothing from the job decided it: EMR's own words may still say no retry can heal it
        // (typically spark-submit refused access to the code, or a bucket or input missing).
        const cause = permanentFailureCause(fd);
        if (cause !== undefined) {
          return ApplicationFailure.create({
            type: 'JobFailedPermanently',
            message: `${cause} — ${where}`,
            nonRetryable: true,
            details: [details],
          });
        }
      }
      return ApplicationFailure.create({
        type: state === 'CANCELLED' ? 'EmrStepCancelled' : 'EmrStepFailed',
        message: `${fd.Reason ? `${fd.Reason} — ` : ''}${where}`,
        nonRetryable: false,
        details: [details],
      });
    };

    /** Ids of the PENDING or RUNNING steps of our name (at most 256 such steps: a few pages). */
    const liveNamesakes = async (): Promise<string[]> => {
      const ids: string[] = [];
      let marker: string | undefined;
      do {
        const page = await listPage(['PENDING', 'RUNNING'], marker, false);
        for (const s of page.Steps ?? []) {
          if (s.Name === input.stepName && s.Id && LIVE_STATES.has(s.Status?.State ?? '')) ids.push(s.Id);
        }
        marker = page.Marker || undefined;
      } while (marker);
      return ids;
    };

    /**
     * Only an explicit cancel request stops the EMR step. A worker shutdown, heartbeat timeout or
     * pause also aborts this attempt, but the step should live on for the next attempt to adopt.
     */
    const onCancelled = async (): Promise<void> => {
      const details = ctx.cancellationDetails;
      const reason = signal.reason instanceof CancelledFailure ? signal.reason.message : undefined;
      const requested = details ? details.cancelRequested : reason === 'CANCELLED';
      if (!requested) {
        if (tracked.stepId)
          ctx.log.info(
            `attempt interrupted (${reason ?? 'aborted'}); leaving step ${tracked.stepId} running`,
          );
        return;
      }
      // The name is unique to this logical run, so every live step carrying it is this run's: the
      // one tracked, and any a racing attempt submitted that the duplicate check has not settled
      // yet (or that was submitted just before this cancel, before its id was heartbeated).
      const stepIds = tracked.stepId ? [tracked.stepId] : [];
      try {
        for (const id of await liveNamesakes()) if (!stepIds.includes(id)) stepIds.push(id);
      } catch (err) {
        ctx.log.warn(`could not look up ${input.stepName} to cancel it: ${errorMessage(err)}`);
      }
      const stepId = stepIds[0];
      if (!stepId) return;
      try {
        const out = await call(
          `CancelSteps ${stepIds.join(', ')}`,
          (abortSignal) =>
            emr.send(
              new CancelStepsCommand({
                ClusterId: input.clusterId,
                StepIds: stepIds,
                StepCancellationOption: 'SEND_INTERRUPT',
              }),
              { abortSignal },
            ),
          false,
        );
        for (const info of out.CancelStepsInfoList ?? []) {
          if (info.Status === 'FAILED')
            ctx.log.warn(`EMR would not cancel ${info.StepId}: ${info.Reason ?? 'no reason given'}`);
        }
      } catch (err) {
        ctx.log.warn(`CancelSteps ${stepIds.join(', ')} failed: ${errorMessage(err)}`);
        return;
      }
      // CancelSteps is asynchronous; wait (bounded) so that "cancelled" in Temporal means the
      // step has stopped writing, as far as EMR will tell us in that time.
      const deadline = Date.now() + cancelWaitMs;
      for (let i = 0; Date.now() < deadline; i++) {
        try {
          const state = (await describe(stepId, false)).Status!.State!;
          if (!LIVE_STATES.has(state)) {
            ctx.log.info(`EMR step ${stepId} is ${state} after cancellation`);
            return;
          }
        } catch (err) {
          ctx.log.warn(`DescribeStep ${stepId} after cancel failed: ${errorMessage(err)}`);
        }
        // Seconds, not the poll interval: the workflow waits on this (WAIT_CANCELLATION_COMPLETED).
        const pause = Math.min(
          jitteredBackoff(i, Math.min(poll.initialMs, 1_000), Math.min(poll.maxMs, 5_000), random),
          deadline - Date.now(),
        );
        if (pause > 0) await abortableSleep(pause);
      }
      ctx.log.warn(`EMR step ${stepId} did not reach a final state within ${cancelWaitMs} ms of CancelSteps`);
    };

    try {
      let { stepId, adopted } = await locateOrSubmit();
      const cancelledUnderUs = new Set<string>();
      for (let n = 0; ; n++) {
        const step = n === 0 && described?.Id === stepId ? described : await describe(stepId);
        const status = step.Status!;
        tracked.state = status.State!;
        heartbeat();
        if (status.State === 'COMPLETED') {
          return {
            stepId,
            adopted,
            state: 'COMPLETED',
            startedAt: status.Timeline?.StartDateTime?.toISOString(),
            endedAt: status.Timeline?.EndDateTime?.toISOString(),
            ...(status.FailureDetails?.LogFile ? { logFile: status.FailureDetails.LogFile } : {}),
          };
        }
        if (
          (status.State === 'CANCEL_PENDING' || status.State === 'CANCELLED') &&
          !cancelledUnderUs.has(stepId)
        ) {
          cancelledUnderUs.add(stepId);
          const winner = await winnerOtherThan(step, stepId);
          if (winner) {
            ({ stepId, adopted } = adopt(
              winner.id,
              winner.state,
              `as its step ${stepId} is being cancelled`,
            ));
            continue;
          }
        }
        if (FAILED_STATES.has(status.State!)) throw await classifyFailure(step);
        await wait(jitteredBackoff(n, poll.initialMs, poll.maxMs, random));
      }
    } catch (err) {
      if (signal.aborted) {
        await onCancelled();
        throw signal.reason instanceof Error ? signal.reason : err;
      }
      if (err instanceof EmrUnavailable) {
        // The step (if any) keeps running; the next attempt resumes it from the heartbeat.
        throw ApplicationFailure.create({
          type: 'EmrUnavailable',
          message: err.message,
          nonRetryable: false,
        });
      }
      throw err;
    }
  }

  return { runSparkStep };
}

function normalizePoll(poll: SparkStepInput['poll']): { initialMs: number; maxMs: number } {
  const p = poll ?? DEFAULT_POLL;
  const initialMs = Math.max(1, Math.floor(p.initialMs));
  return { initialMs, maxMs: Math.max(initialMs, Math.floor(p.maxMs)) };
}

function validateInput(input: SparkStepInput): void {
  const problems: string[] = [];
  if (!input.clusterId) problems.push('clusterId is empty');
  if (!input.stepName) problems.push('stepName is empty');
  if (input.stepName && input.stepName.length > STEP_NAME_MAX) {
    problems.push(`stepName is ${input.stepName.length} chars (max ${STEP_NAME_MAX})`);
  }
  if (!Array.isArray(input.args) || input.args.length === 0) problems.push('args is empty');
  const total = (input.args ?? []).reduce((n, a) => n + a.length, 0) + 'command-runner.jar'.length;
  if (total > STEP_ARGS_MAX_CHARS)
    problems.push(`args total ${total} chars (EMR allows ${STEP_ARGS_MAX_CHARS})`);
  if (problems.length > 0) {
    throw ApplicationFailure.create({
      type: 'InvalidStepInput',
      message: `invalid EMR step input: ${problems.join('; ')}`,
      nonRetryable: true,
    });
  }
}
