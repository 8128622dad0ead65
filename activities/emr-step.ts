/**
 * The EMR step lifecycle as one Temporal activity: find-or-submit, poll, classify, cancel.
 *
 * What it guarantees, and why each piece is there:
 * - One step per logical run. AddJobFlowSteps has no idempotency token, so a step is found again
 *   before anything is submitted: first by the step id a previous attempt heartbeated, then by its
 *   (deterministic) name in ListSteps, because heartbeats sent just before a crash can be lost.
 *   The submit itself goes through a client with SDK retries off, and an ambiguous failure (no
 *   response, 5xx) is resolved by looking again, never by sending again.
 * - Another attempt, on any worker, resumes the same step instead of starting a second one.
 * - Polling stays inside EMR's shared per-account quota (DescribeStep refills at 0.5/s): jittered
 *   exponential backoff, and throttling is waited out rather than failing hours of Spark work.
 * - An explicit cancel cancels the EMR step too; a worker shutdown or timeout does not, since the
 *   next attempt will pick the step up again.
 * - Failures are classified so the workflow's retry policy can tell "run it again" (lost node,
 *   OOM) from "running it again cannot help" (a data check failed, bad arguments).
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
  /** Consecutive throttled/transient failures ridden out before an attempt gives up. Default 12. */
  maxConsecutiveErrors?: number;
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

export function createEmrStepActivities(deps: EmrStepDeps) {
  const emr = deps.emr;
  const emrNoRetry = deps.emrNoRetry ?? withoutSdkRetries(deps.emr);
  const sleep = deps.sleep ?? abortableSleep;
  const random = deps.random ?? Math.random;
  const cancelWaitMs = deps.cancelWaitMs ?? 30_000;
  const callTimeoutMs = deps.callTimeoutMs ?? 60_000;
  const maxConsecutiveErrors = deps.maxConsecutiveErrors ?? 12;

  async function runSparkStep(input: SparkStepInput): Promise<SparkStepResult> {
    validateInput(input);
    const ctx = Context.current();
    const signal = ctx.cancellationSignal;
    const poll = normalizePoll(input.poll);
    const tracked: { stepId?: string; state?: string } = {};

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

    // Cancellation reaches an activity only through heartbeats, so long waits are cut into
    // pieces with a heartbeat after each (the SDK throttles what actually goes to the server).
    const hbSliceMs = Math.max(1, Math.min(10_000, (ctx.info.heartbeatTimeoutMs ?? Infinity) / 3));
    const wait = async (ms: number): Promise<void> => {
      let left = ms;
      while (left > 0) {
        const slice = Math.min(left, hbSliceMs);
        await sleep(slice, signal);
        left -= slice;
        heartbeat();
      }
    };

    /** Read-only EMR calls: throttling and transient failures are waited out, not thrown. */
    const call = async <T>(
      what: string,
      fn: (abortSignal: AbortSignal) => Promise<T>,
      abortable = true,
    ): Promise<T> => {
      for (let failures = 0; ;) {
        if (abortable && signal.aborted) throw signal.reason;
        const timeout = AbortSignal.timeout(callTimeoutMs);
        try {
          return await fn(abortable ? AbortSignal.any([signal, timeout]) : timeout);
        } catch (err) {
          if (abortable && signal.aborted) throw signal.reason;
          if (!isRetryableAwsError(err)) throw err;
          failures += 1;
          if (failures >= maxConsecutiveErrors) {
            throw new EmrUnavailable(
              `${what} kept failing (${failures} times), last: ${errorName(err)}: ${errorMessage(err)}`,
            );
          }
          const backoff = jitteredBackoff(
            failures + (isThrottlingError(err) ? 1 : 0),
            poll.initialMs,
            poll.maxMs * 2,
            random,
          );
          ctx.log.warn(`${what} failed (${errorName(err)}: ${errorMessage(err)}); retrying in ${backoff} ms`);
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

    /**
     * The newest step carrying our exact name in one of `states`. ListSteps cannot filter by name
     * and lists newest first, so the first hit is the one we want and paging stops there.
     */
    const findByName = async (states: StepState[], abortable = true): Promise<StepSummary | undefined> => {
      let marker: string | undefined;
      do {
        const page = await call(
          'ListSteps',
          (abortSignal) =>
            emr.send(
              new ListStepsCommand({ ClusterId: input.clusterId, StepStates: states, Marker: marker }),
              {
                abortSignal,
              },
            ),
          abortable,
        );
        if (abortable) heartbeat();
        const hit = (page.Steps ?? []).find(
          (s) => s.Name === input.stepName && s.Id && states.includes(s.Status?.State as StepState),
        );
        if (hit) return hit;
        marker = page.Marker || undefined;
      } while (marker);
      return undefined;
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

    const submit = async (): Promise<{ stepId: string; adopted: boolean }> => {
      for (let throttled = 0; ;) {
        // Once AddJobFlowSteps is on the wire we must see its outcome, so it does not listen to the
        // cancellation signal; check it here instead, before anything is sent.
        if (signal.aborted) throw signal.reason;
        try {
          const out = await emrNoRetry.send(
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
          if (isThrottlingError(err) && throttled < maxConsecutiveErrors) {
            // A throttled request was refused outright, so sending it again cannot duplicate.
            throttled += 1;
            await wait(jitteredBackoff(throttled, poll.initialMs, poll.maxMs * 2, random));
            continue;
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
      const found = await findByName(ADOPTABLE_STATES);
      if (found?.Id) return adopt(found.Id, found.Status?.State, 'found by name');
      return submit();
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
            details: [{ ...details, failedChecks, stagingUri: report.staging ?? undefined }],
          });
        }
        if (report?.status === 'failed' && report.error) {
          return ApplicationFailure.create({
            type: report.error.retryable ? 'EmrStepFailed' : 'JobFailedPermanently',
            message: `${explainReport(report)} — ${where}`,
            nonRetryable: !report.error.retryable,
            details: [details],
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
      }
      return ApplicationFailure.create({
        type: state === 'CANCELLED' ? 'EmrStepCancelled' : 'EmrStepFailed',
        message: `${fd.Reason ? `${fd.Reason} — ` : ''}${where}`,
        nonRetryable: false,
        details: [details],
      });
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
      let stepId = tracked.stepId;
      if (!stepId) {
        // Cancelled between submit and the heartbeat that names the step (or during a lookup):
        // the name is the only handle, and only a live step is worth cancelling.
        try {
          stepId = (await findByName(['PENDING', 'RUNNING'], false))?.Id;
        } catch (err) {
          ctx.log.warn(`could not look up ${input.stepName} to cancel it: ${errorMessage(err)}`);
        }
        if (!stepId) return;
      }
      try {
        const out = await call(
          `CancelSteps ${stepId}`,
          (abortSignal) =>
            emr.send(
              new CancelStepsCommand({
                ClusterId: input.clusterId,
                StepIds: [stepId],
                StepCancellationOption: 'SEND_INTERRUPT',
              }),
              { abortSignal },
            ),
          false,
        );
        const info = out.CancelStepsInfoList?.find((i) => i.StepId === stepId);
        if (info?.Status === 'FAILED')
          ctx.log.warn(`EMR would not cancel ${stepId}: ${info.Reason ?? 'no reason given'}`);
      } catch (err) {
        ctx.log.warn(`CancelSteps ${stepId} failed: ${errorMessage(err)}`);
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
        const pause = Math.min(
          jitteredBackoff(i, poll.initialMs, Math.min(poll.maxMs, 5_000), random),
          deadline - Date.now(),
        );
        if (pause > 0) await abortableSleep(pause);
      }
      ctx.log.warn(`EMR step ${stepId} did not reach a final state within ${cancelWaitMs} ms of CancelSteps`);
    };

    try {
      const { stepId, adopted } = await locateOrSubmit();
      for (let n = 0; ; n++) {
        const step = await describe(stepId);
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
