import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AddJobFlowStepsCommand,
  CancelStepsCommand,
  DescribeStepCommand,
  EMRClient,
  EMRServiceException,
  InvalidRequestException,
  ListStepsCommand,
  type Step,
  type StepState,
  type StepSummary,
} from '@aws-sdk/client-emr';
import { ActivityCancellationDetails, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import {
  buildSparkSubmitArgs,
  createEmrStepActivities,
  parseExitCode,
  permanentFailureCause,
  withoutSdkRetries,
  type EmrStepDeps,
  type SparkStepInput,
} from '../activities/emr-step';
import type { JobReport } from '../lake/report';

/** A report as the job writes it (report_version 2), with what a test sets on top. */
function jobReport(over: Partial<JobReport>): JobReport {
  return {
    report_version: 2,
    status: 'succeeded',
    published: false,
    staging: null,
    spark_version: '3.5.6',
    started_at: '2026-11-27T22:00:05Z',
    finished_at: '2026-11-27T22:00:45Z',
    duration_s: 40,
    args: {
      assets: ['songplays'],
      raw: 's3://raw',
      lake: 's3://lake',
      start: '2018-11-05',
      end: '2018-11-06',
    },
    quarantine: { rows: 0, by_reason: {}, location: null },
    assets: {},
    failed_checks: [],
    warnings: [],
    error: null,
    ...over,
  };
}

jest.setTimeout(30_000);

const CLUSTER = 'j-TESTCLUSTER';
const NAME = 'sparkify/songs/2018-11-01_2018-12-01/0123456789abcdef';
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const T0 = new Date('2026-11-27T22:00:00Z');

const ARGS = buildSparkSubmitArgs({
  runPy: 's3://code/abc/run.py',
  pyFiles: 's3://code/abc/sparkify_jobs.zip',
  jobArgs: [
    '--assets',
    'songs',
    '--raw',
    's3://raw',
    '--lake',
    's3://lake',
    '--report',
    's3://lake/_reports/r.json',
  ],
});

const INPUT: SparkStepInput = {
  clusterId: CLUSTER,
  stepName: NAME,
  args: ARGS,
  reportUri: 's3://lake/_reports/r.json',
  poll: { initialMs: 1, maxMs: 4 },
};

function step(
  state: StepState,
  id = 's-1',
  extra: Partial<NonNullable<Step['Status']>> = {},
): { Step: Step } {
  return {
    Step: {
      Id: id,
      Name: NAME,
      ActionOnFailure: 'CONTINUE',
      Status: {
        State: state,
        Timeline: {
          CreationDateTime: T0,
          StartDateTime: state === 'PENDING' ? undefined : T0,
          EndDateTime: undefined,
        },
        ...extra,
      },
    },
  };
}

function summary(id: string, state: StepState, name = NAME): StepSummary {
  return { Id: id, Name: name, Status: { State: state } };
}

const throttling = (): EMRServiceException =>
  new EMRServiceException({
    name: 'ThrottlingException',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message: 'Rate exceeded',
  });

const networkError = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

const quietLogger = new DefaultLogger('ERROR');

interface Harness {
  env: MockActivityEnvironment;
  heartbeats: unknown[];
  run(
    input?: SparkStepInput,
  ): Promise<Awaited<ReturnType<ReturnType<typeof createEmrStepActivities>['runSparkStep']>>>;
}

/**
 * `attempt`: a first attempt (the default) has no predecessor and submits without looking; a later
 * one (a retry whose predecessor's heartbeat was lost) looks for the step by name first.
 */
function harness(
  opts: { heartbeatDetails?: unknown; deps?: Partial<EmrStepDeps>; attempt?: number } = {},
): Harness {
  const emr = new EMRClient({ region: 'us-east-1', credentials: CREDENTIALS });
  const emrNoRetry = new EMRClient({ region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
  const { runSparkStep } = createEmrStepActivities({ emr, emrNoRetry, cancelWaitMs: 2_000, ...opts.deps });
  // Scheduled now, as a real attempt is: the step lookups do not page past it.
  const scheduled = { scheduledTimestampMs: Date.now(), currentAttemptScheduledTimestampMs: Date.now() };
  const env = new MockActivityEnvironment(
    opts.heartbeatDetails === undefined
      ? { ...scheduled, attempt: opts.attempt ?? 1 }
      : { ...scheduled, heartbeatDetails: opts.heartbeatDetails, attempt: opts.attempt ?? 2 },
    { logger: quietLogger },
  );
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => heartbeats.push(d));
  return { env, heartbeats, run: (input = INPUT) => env.run(runSparkStep, input) };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

describe('buildSparkSubmitArgs', () => {
  test('follows the contract: command-runner spark-submit, cluster mode, UTC, py-files, run.py, job args', () => {
    expect(ARGS).toEqual([
      'spark-submit',
      '--deploy-mode',
      'cluster',
      '--conf',
      'spark.sql.session.timeZone=UTC',
      '--py-files',
      's3://code/abc/sparkify_jobs.zip',
      's3://code/abc/run.py',
      '--assets',
      'songs',
      '--raw',
      's3://raw',
      '--lake',
      's3://lake',
      '--report',
      's3://lake/_reports/r.json',
    ]);
  });

  test('extra conf is sorted after the time zone; a non-UTC time zone is refused', () => {
    const args = buildSparkSubmitArgs({
      runPy: 'r.py',
      pyFiles: 'z.zip',
      jobArgs: [],
      conf: { 'spark.z': '1', 'spark.a': '2', 'spark.sql.session.timeZone': 'UTC' },
    });
    expect(args.slice(3, 9)).toEqual([
      '--conf',
      'spark.sql.session.timeZone=UTC',
      '--conf',
      'spark.a=2',
      '--conf',
      'spark.z=1',
    ]);
    expect(() =>
      buildSparkSubmitArgs({
        runPy: 'r',
        pyFiles: 'z',
        jobArgs: [],
        conf: { 'spark.sql.session.timeZone': 'PST' },
      }),
    ).toThrow(/UTC/);
    expect(() =>
      buildSparkSubmitArgs({ runPy: 'r', pyFiles: 'z', jobArgs: [], conf: { 'a b': 'x' } }),
    ).toThrow(/key/);
  });
});

test('parseExitCode reads the usual phrasings', () => {
  expect(parseExitCode('error: argument --start: bad date (exit code 2)')).toBe(2);
  expect(parseExitCode('Command exited with return code 3')).toBe(3);
  expect(parseExitCode('Process exited with status 1')).toBe(1);
  expect(parseExitCode('exitCode=137')).toBe(137);
  expect(parseExitCode('Unknown Error.')).toBeUndefined();
});

describe('runSparkStep (mocked EMR)', () => {
  let emr: AwsClientStub<EMRClient>;
  beforeEach(() => {
    emr = mockClient(EMRClient);
    emr.on(ListStepsCommand).resolves({ Steps: [] });
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-1'] });
  });
  afterEach(() => emr.restore());

  test('submits a new step, polls PENDING → RUNNING → COMPLETED, heartbeating the step id', async () => {
    emr
      .on(DescribeStepCommand)
      .resolvesOnce(step('PENDING'))
      .resolvesOnce(step('RUNNING'))
      .resolvesOnce(step('RUNNING'))
      .resolves(
        step('COMPLETED', 's-1', {
          Timeline: { StartDateTime: T0, EndDateTime: new Date(T0.getTime() + 41_000) },
        }),
      );
    const h = harness();
    const result = await h.run();
    expect(result).toEqual({
      stepId: 's-1',
      adopted: false,
      state: 'COMPLETED',
      startedAt: '2026-11-27T22:00:00.000Z',
      endedAt: '2026-11-27T22:00:41.000Z',
    });
    const add = emr.commandCalls(AddJobFlowStepsCommand);
    expect(add).toHaveLength(1);
    expect(add[0]!.args[0].input).toEqual({
      JobFlowId: CLUSTER,
      Steps: [
        { Name: NAME, ActionOnFailure: 'CONTINUE', HadoopJarStep: { Jar: 'command-runner.jar', Args: ARGS } },
      ],
    });
    expect(emr.commandCalls(DescribeStepCommand)).toHaveLength(4);
    expect(emr.commandCalls(DescribeStepCommand)[0]!.args[0].input).toEqual({
      ClusterId: CLUSTER,
      StepId: 's-1',
    });
    // The step id is recorded before the first poll, so a crash right after submit loses nothing.
    expect(h.heartbeats.find((d) => d !== undefined)).toEqual({ stepId: 's-1' });
    expect(h.heartbeats).toContainEqual({ stepId: 's-1', state: 'RUNNING' });
    expect(h.heartbeats).toContainEqual({ stepId: 's-1', state: 'COMPLETED' });
  });

  test('FAILED with FailureDetails: retryable EmrStepFailed carrying reason, message and log file', async () => {
    emr
      .on(DescribeStepCommand)
      .resolvesOnce(step('RUNNING'))
      .resolves(
        step('FAILED', 's-1', {
          FailureDetails: {
            Reason: 'Container killed by YARN for exceeding memory limits',
            Message: 'ExecutorLostFailure (executor 3 exited caused by one of the running tasks)',
            LogFile: 's3://logs/j-TESTCLUSTER/steps/s-1/stderr.gz',
          },
        }),
      );
    const readReport = jest.fn(async () => null);
    const err = await failureOf(harness({ deps: { readReport } }).run());
    expect(err.type).toBe('EmrStepFailed');
    expect(err.nonRetryable).toBe(false);
    expect(err.message).toContain('s-1');
    expect(err.message).toContain('Container killed by YARN');
    // The log tail stays in the details: the message says why and where to look.
    expect(err.message).not.toContain('ExecutorLostFailure');
    expect(err.message).toContain('s3://logs/j-TESTCLUSTER/steps/s-1/stderr.gz');
    expect(err.details).toEqual([
      {
        stepId: 's-1',
        stepName: NAME,
        state: 'FAILED',
        reason: 'Container killed by YARN for exceeding memory limits',
        message: 'ExecutorLostFailure (executor 3 exited caused by one of the running tasks)',
        logFile: 's3://logs/j-TESTCLUSTER/steps/s-1/stderr.gz',
      },
    ]);
    expect(readReport).toHaveBeenCalledWith(INPUT.reportUri);
  });

  test("FAILED with a check_failed report: non-retryable DataCheckFailed, the job's explanation first", async () => {
    emr.on(DescribeStepCommand).resolves(
      step('FAILED', 's-1', {
        FailureDetails: {
          Reason: 'Step failed with exit code 3',
          Message: 'message optional\nroot\n |-- songplay_id: string (nullable = true)',
          LogFile: 's3://logs/x',
        },
      }),
    );
    const report = jobReport({
      status: 'check_failed',
      staging: 's3://lake/_staging/run-1',
      failed_checks: [
        {
          asset: 'songplays',
          name: 'songplays.user_id in users',
          passed: false,
          blocking: true,
          failing_count: 73,
          sample: [1, 2],
          message: 'users table missing at s3://lake/users: materialize users for these days first',
        },
      ],
    });
    const err = await failureOf(harness({ deps: { readReport: async () => report } }).run());
    expect(err.type).toBe('DataCheckFailed');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toBe(
      'users table missing at s3://lake/users: materialize users for these days first ' +
        '(songplays.user_id in users: 73 failing rows, e.g. 1, 2) — EMR step s-1 FAILED, log s3://logs/x; ' +
        'staged output kept at s3://lake/_staging/run-1',
    );
    expect(err.details?.[0]).toMatchObject({
      stepId: 's-1',
      state: 'FAILED',
      failedChecks: ['songplays.user_id in users'],
      stagingUri: 's3://lake/_staging/run-1',
    });
  });

  test('FAILED with a report naming a cause no retry can heal: non-retryable, the root cause first', async () => {
    emr
      .on(DescribeStepCommand)
      .resolves(
        step('FAILED', 's-1', { FailureDetails: { Reason: 'Unknown Error.', LogFile: 's3://logs/x' } }),
      );
    const report = jobReport({
      status: 'failed',
      error: {
        type: 'java.io.IOException',
        message: 'Mkdirs failed to create file:/lake/_staging/r/songplays',
        retryable: false,
      },
    });
    const err = await failureOf(harness({ deps: { readReport: async () => report } }).run());
    expect(err.type).toBe('JobFailedPermanently');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toBe(
      'Mkdirs failed to create file:/lake/_staging/r/songplays (java.io.IOException) — EMR step s-1 FAILED, log s3://logs/x',
    );
    // A cause that may heal (a lost node) stays retryable, with the same shape of message.
    const transient = jobReport({
      status: 'failed',
      error: { type: 'org.apache.spark.SparkException', message: 'Executor lost', retryable: true },
    });
    const again = await failureOf(harness({ deps: { readReport: async () => transient } }).run());
    expect(again.type).toBe('EmrStepFailed');
    expect(again.nonRetryable).toBe(false);
  });

  test('a report older than the step is stale and does not classify it', async () => {
    emr
      .on(DescribeStepCommand)
      .resolves(step('FAILED', 's-1', { FailureDetails: { Reason: 'Unknown Error.' } }));
    const stale = jobReport({ status: 'check_failed', started_at: '2026-11-20T00:00:00Z' });
    const err = await failureOf(harness({ deps: { readReport: async () => stale } }).run());
    expect(err.type).toBe('EmrStepFailed');
    expect(err.nonRetryable).toBe(false);
  });

  test('exit code 2 (invalid arguments) is non-retryable InvalidJobArguments', async () => {
    emr.on(DescribeStepCommand).resolves(
      step('FAILED', 's-1', {
        FailureDetails: { Reason: 'run.py: error: argument --start: expected YYYY-MM-DD (exit code 2)' },
      }),
    );
    const err = await failureOf(harness().run());
    expect(err.type).toBe('InvalidJobArguments');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain('--start');
  });

  test('a step cancelled by someone else is a retryable EmrStepCancelled', async () => {
    emr.on(DescribeStepCommand).resolves(step('CANCELLED'));
    const err = await failureOf(harness().run());
    expect(err.type).toBe('EmrStepCancelled');
    expect(err.nonRetryable).toBe(false);
  });

  test('ThrottlingException on DescribeStep is ridden out', async () => {
    emr
      .on(DescribeStepCommand)
      .resolvesOnce(step('RUNNING'))
      .rejectsOnce(throttling())
      .rejectsOnce(throttling())
      .resolves(step('COMPLETED'));
    const result = await harness().run();
    expect(result.state).toBe('COMPLETED');
    expect(emr.commandCalls(DescribeStepCommand)).toHaveLength(4);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
  });

  test('throttling longer than the outage tolerance ends the attempt retryably (the step is left to the next attempt)', async () => {
    emr.on(DescribeStepCommand).rejects(throttling());
    const err = await failureOf(harness({ deps: { outageToleranceMs: 100 } }).run());
    expect(err.type).toBe('EmrUnavailable');
    expect(err.nonRetryable).toBe(false);
    expect(err.message).toMatch(
      /^DescribeStep s-1 kept failing for \d+ s \(\d+ tries\), last: ThrottlingException/,
    );
    expect(emr.commandCalls(DescribeStepCommand).length).toBeGreaterThan(3);
    expect(emr.commandCalls(CancelStepsCommand)).toHaveLength(0);
  });

  test('cancellation while RUNNING cancels that step on EMR, waits for CANCELLED, ends cancelled', async () => {
    let cancelSent = false;
    emr.on(DescribeStepCommand).callsFake(() => step(cancelSent ? 'CANCELLED' : 'RUNNING', 's-7'));
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-7'] });
    emr.on(CancelStepsCommand).callsFake(() => {
      cancelSent = true;
      return { CancelStepsInfoList: [{ StepId: 's-7', Status: 'SUBMITTED' }] };
    });
    const h = harness();
    h.env.on('heartbeat', (d: { state?: string }) => {
      if (d?.state === 'RUNNING' && !cancelSent) h.env.cancel();
    });
    await expect(h.run()).rejects.toBeInstanceOf(CancelledFailure);
    const cancels = emr.commandCalls(CancelStepsCommand);
    expect(cancels).toHaveLength(1);
    expect(cancels[0]!.args[0].input).toEqual({
      ClusterId: CLUSTER,
      StepIds: ['s-7'],
      StepCancellationOption: 'SEND_INTERRUPT',
    });
    // It looked again after CancelSteps, until the step had stopped.
    const lastDescribe = await emr.commandCalls(DescribeStepCommand).at(-1)!.returnValue;
    expect(lastDescribe).toEqual(step('CANCELLED', 's-7'));
  });

  test('a worker shutdown aborts the attempt but leaves the EMR step running for the next one', async () => {
    emr.on(DescribeStepCommand).resolves(step('RUNNING'));
    const h = harness();
    h.env.once('heartbeat', () =>
      setTimeout(
        () => h.env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true })),
        5,
      ),
    );
    await expect(h.run()).rejects.toBeInstanceOf(CancelledFailure);
    expect(emr.commandCalls(CancelStepsCommand)).toHaveLength(0);
  });

  test.each(['PENDING', 'RUNNING', 'COMPLETED'] as const)(
    'a step already under the name (%s) is adopted; nothing is submitted',
    async (state) => {
      emr.on(ListStepsCommand).resolves({
        Steps: [summary('s-other', 'RUNNING', 'sparkify/other'), summary('s-old', state)],
      });
      emr.on(DescribeStepCommand).resolvesOnce(step(state, 's-old')).resolves(step('COMPLETED', 's-old'));
      const h = harness({ attempt: 2 });
      const result = await h.run();
      expect(result).toMatchObject({ stepId: 's-old', adopted: true, state: 'COMPLETED' });
      expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(0);
      expect(h.heartbeats.find((d) => d !== undefined)).toEqual({ stepId: 's-old' });
      // The lookup asks only for steps worth adopting and matches the name itself.
      expect(emr.commandCalls(ListStepsCommand)[0]!.args[0].input).toEqual({
        ClusterId: CLUSTER,
        StepStates: ['PENDING', 'CANCEL_PENDING', 'RUNNING', 'COMPLETED'],
        Marker: undefined,
      });
    },
  );

  test('only a FAILED step under the name: this is a real retry, a new step is added', async () => {
    // Even if EMR ignored the state filter, a failed namesake must not be adopted.
    emr
      .on(ListStepsCommand)
      .resolves({ Steps: [summary('s-failed', 'FAILED'), summary('s-int', 'INTERRUPTED')] });
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-new'] });
    emr.on(DescribeStepCommand).resolves(step('COMPLETED', 's-new'));
    const result = await harness({ attempt: 2 }).run();
    expect(result).toMatchObject({ stepId: 's-new', adopted: false });
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
  });

  test('heartbeat details from an earlier attempt resume that step without ListSteps or AddJobFlowSteps', async () => {
    emr.on(DescribeStepCommand).resolvesOnce(step('RUNNING', 's-9')).resolves(step('COMPLETED', 's-9'));
    const h = harness({ heartbeatDetails: { stepId: 's-9', state: 'RUNNING' } });
    const result = await h.run();
    expect(result).toMatchObject({ stepId: 's-9', adopted: true });
    expect(emr.commandCalls(ListStepsCommand)).toHaveLength(0);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(0);
  });

  test("the previous attempt's step failed retryably: a new step is submitted", async () => {
    emr
      .on(DescribeStepCommand, { StepId: 's-9' })
      .resolves(step('FAILED', 's-9', { FailureDetails: { Reason: 'lost node' } }));
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-10'] });
    emr.on(DescribeStepCommand, { StepId: 's-10' }).resolves(step('COMPLETED', 's-10'));
    const result = await harness({ heartbeatDetails: { stepId: 's-9' } }).run();
    expect(result).toMatchObject({ stepId: 's-10', adopted: false });
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
  });

  test("the previous attempt's step failed a data check it never reported: reported now, nothing resubmitted", async () => {
    emr
      .on(DescribeStepCommand)
      .resolves(step('FAILED', 's-9', { FailureDetails: { Reason: 'exit code 3' } }));
    const report = jobReport({ status: 'check_failed', started_at: '2000-01-01T00:00:00Z' });
    const err = await failureOf(
      harness({ heartbeatDetails: { stepId: 's-9' }, deps: { readReport: async () => report } }).run(),
    );
    expect(err.type).toBe('DataCheckFailed');
    expect(err.nonRetryable).toBe(true);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(0);
  });

  test('a heartbeated step id EMR does not know falls back to the name lookup', async () => {
    emr
      .on(DescribeStepCommand, { StepId: 's-gone' })
      .rejects(
        new InvalidRequestException({ $metadata: { httpStatusCode: 400 }, message: 'Step id not found' }),
      );
    emr.on(DescribeStepCommand, { StepId: 's-1' }).resolves(step('COMPLETED'));
    const result = await harness({ heartbeatDetails: { stepId: 's-gone' } }).run();
    expect(result).toMatchObject({ stepId: 's-1', adopted: false });
    // One lookup before submitting, one check for a namesake submitted meanwhile after it.
    expect(emr.commandCalls(ListStepsCommand).map((c) => c.args[0].input.StepStates)).toEqual([
      ['PENDING', 'CANCEL_PENDING', 'RUNNING', 'COMPLETED'],
      ['PENDING', 'RUNNING', 'COMPLETED'],
    ]);
  });

  test('ListSteps paging: the step is found on page 2 via Marker', async () => {
    emr.on(ListStepsCommand).callsFake((input: { Marker?: string }) =>
      input.Marker === 'page-2'
        ? { Steps: [summary('s-2', 'RUNNING')] }
        : {
            Steps: Array.from({ length: 50 }, (_, i) =>
              summary(`s-x${i}`, 'COMPLETED', `sparkify/other/${i}`),
            ),
            Marker: 'page-2',
          },
    );
    emr.on(DescribeStepCommand).resolves(step('COMPLETED', 's-2'));
    const result = await harness({ attempt: 2 }).run();
    expect(result).toMatchObject({ stepId: 's-2', adopted: true });
    expect(emr.commandCalls(ListStepsCommand).map((c) => c.args[0].input.Marker)).toEqual([
      undefined,
      'page-2',
    ]);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(0);
  });

  test("the lookup before submitting stops at steps older than the activity's first attempt, not at the start of the cluster's history", async () => {
    const old = new Date(Date.now() - 3_600_000);
    emr.on(ListStepsCommand).callsFake((input: { Marker?: string }) => ({
      Steps: Array.from({ length: 50 }, (_, i) => ({
        ...summary(`s-old${input.Marker ?? ''}${i}`, 'COMPLETED', `sparkify/other/${i}`),
        Status: { State: 'COMPLETED' as const, Timeline: { CreationDateTime: old } },
      })),
      // Endless, as a long-lived cluster's history looks from here (bounded in case of a bug).
      Marker:
        (input.Marker ?? 'page-1') === 'page-9'
          ? undefined
          : `page-${Number((input.Marker ?? 'page-1').split('-')[1]) + 1}`,
    }));
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-new'] });
    emr.on(DescribeStepCommand).resolves(step('COMPLETED', 's-new'));
    const result = await harness({ attempt: 2 }).run();
    expect(result).toMatchObject({ stepId: 's-new', adopted: false });
    // One page for the lookup, one for the check after the submit: an hour-old history is not read.
    expect(emr.commandCalls(ListStepsCommand).length).toBeLessThanOrEqual(2);
  });

  test('AddJobFlowSteps failing ambiguously is sent once, then resolved by looking again', async () => {
    emr.on(AddJobFlowStepsCommand).rejects(networkError());
    const err = await failureOf(harness().run());
    expect(err.type).toBe('EmrSubmitAmbiguous');
    expect(err.nonRetryable).toBe(false);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
    // One lookup before submitting, more after the ambiguous failure.
    expect(emr.commandCalls(ListStepsCommand).length).toBeGreaterThanOrEqual(2);
    // The submit went through the no-retry client.
    const client = emr.commandCalls(AddJobFlowStepsCommand)[0]!.thisValue as EMRClient;
    expect(await client.config.maxAttempts()).toBe(1);
  });

  test('AddJobFlowSteps failing ambiguously after EMR did add the step: the step is adopted', async () => {
    let added = false;
    emr.on(AddJobFlowStepsCommand).callsFake(() => {
      added = true;
      throw networkError();
    });
    emr.on(ListStepsCommand).callsFake(() => ({ Steps: added ? [summary('s-landed', 'PENDING')] : [] }));
    emr.on(DescribeStepCommand).resolves(step('COMPLETED', 's-landed'));
    const result = await harness().run();
    expect(result).toMatchObject({ stepId: 's-landed', adopted: true });
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
  });

  test('cancelled before the step id is known: the step that landed is found by name and cancelled', async () => {
    let added = false;
    const h = harness();
    emr.on(AddJobFlowStepsCommand).callsFake(() => {
      added = true;
      h.env.cancel();
      throw networkError();
    });
    emr.on(ListStepsCommand).callsFake(() => ({ Steps: added ? [summary('s-landed', 'PENDING')] : [] }));
    emr
      .on(CancelStepsCommand)
      .resolves({ CancelStepsInfoList: [{ StepId: 's-landed', Status: 'SUBMITTED' }] });
    emr.on(DescribeStepCommand).resolves(step('CANCELLED', 's-landed'));
    await expect(h.run()).rejects.toBeInstanceOf(CancelledFailure);
    expect(emr.commandCalls(CancelStepsCommand).map((c) => c.args[0].input.StepIds)).toEqual([['s-landed']]);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
  });

  test('a throttled AddJobFlowSteps was refused outright, so it is sent again', async () => {
    emr
      .on(AddJobFlowStepsCommand)
      .rejectsOnce(throttling())
      .resolves({ StepIds: ['s-1'] });
    emr.on(DescribeStepCommand).resolves(step('COMPLETED'));
    const result = await harness().run();
    expect(result).toMatchObject({ stepId: 's-1', adopted: false });
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(2);
  });

  test('EMR refusing the request (terminated cluster) is non-retryable, with no lookup loop', async () => {
    emr.on(AddJobFlowStepsCommand).rejects(
      new InvalidRequestException({
        $metadata: { httpStatusCode: 400 },
        message: 'A job flow that is terminated may not be modified.',
      }),
    );
    const err = await failureOf(harness().run());
    expect(err.type).toBe('EmrRequestRejected');
    expect(err.nonRetryable).toBe(true);
    // A first attempt does not look before submitting, and a refusal ends it there.
    expect(emr.commandCalls(ListStepsCommand)).toHaveLength(0);
  });

  test('invalid input fails fast and non-retryably', async () => {
    const err = await failureOf(harness().run({ ...INPUT, stepName: 'x'.repeat(257) }));
    expect(err.type).toBe('InvalidStepInput');
    expect(err.nonRetryable).toBe(true);
    expect(emr.calls()).toHaveLength(0);
  });
});

describe('runSparkStep: failures no retry can heal, without a job report', () => {
  let emr: AwsClientStub<EMRClient>;
  beforeEach(() => {
    emr = mockClient(EMRClient);
    emr.on(ListStepsCommand).resolves({ Steps: [] });
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-1'] });
  });
  afterEach(() => emr.restore());

  const failedWith = (FailureDetails: { Reason?: string; Message?: string; LogFile?: string }) =>
    emr.on(DescribeStepCommand).resolves(step('FAILED', 's-1', { FailureDetails }));

  test.each([
    'Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)',
    'java.nio.file.AccessDeniedException: s3://lake/songs: getFileStatus on s3://lake/songs',
    'PermissionError: [Errno 13] Permission denied: /mnt/lake/_staging',
    'The specified bucket does not exist (Service: Amazon S3; Status Code: 404; Error Code: NoSuchBucket)',
    'User: arn:aws:sts::1:assumed-role/EMR_EC2/i-1 is not authorized to perform: s3:GetObject',
    'pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://raw/log_data/2018/11.',
  ])('a Reason saying %j: non-retryable JobFailedPermanently, the reason first', async (reason) => {
    failedWith({ Reason: reason, Message: 'a long log tail\nwith many lines', LogFile: 's3://logs/x' });
    const err = await failureOf(harness({ deps: { readReport: async () => null } }).run());
    expect(err.type).toBe('JobFailedPermanently');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toBe(`${reason} — EMR step s-1 FAILED, log s3://logs/x`);
    expect(err.details?.[0]).toMatchObject({ stepId: 's-1', state: 'FAILED', reason });
  });

  test("an unspecific Reason: the one line of EMR's Message that says why, never the rest of the log", async () => {
    failedWith({
      Reason: 'Unknown Error.',
      Message: [
        '25/11/27 22:00:01 WARN FileStreamSink: Assume no metadata directory.',
        'Traceback (most recent call last):',
        '  File "run.py", line 40, in main',
        'pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3://raw/song_data.',
        'Shutdown hook called',
      ].join('\n'),
      LogFile: 's3://logs/y',
    });
    const err = await failureOf(harness().run());
    expect(err.type).toBe('JobFailedPermanently');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toBe(
      'pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: ' +
        's3://raw/song_data. — EMR step s-1 FAILED, log s3://logs/y',
    );
    expect(err.message).not.toContain('Traceback');
  });

  test.each([
    [
      'a lost container',
      'Container killed by YARN for exceeding memory limits',
      'AccessDenied in an old retry',
    ],
    ['a bare exit code', 'Step failed with exit code 1', 'ExecutorLostFailure (executor 3 exited)'],
    ['nothing at all', 'Unknown Error.', undefined],
  ])('no report and %s: unknown, so retryable EmrStepFailed', async (_what, reason, message) => {
    failedWith({ Reason: reason, Message: message, LogFile: 's3://logs/z' });
    const err = await failureOf(harness({ deps: { readReport: async () => null } }).run());
    expect(err.type).toBe('EmrStepFailed');
    expect(err.nonRetryable).toBe(false);
    expect(err.message).toBe(`${reason} — EMR step s-1 FAILED, log s3://logs/z`);
  });

  test("the job's report decides over EMR's words: a retryable error in it stays retryable", async () => {
    failedWith({ Reason: 'Access Denied', LogFile: 's3://logs/x' });
    const report = jobReport({
      status: 'failed',
      started_at: new Date().toISOString(),
      error: { type: 'org.apache.spark.SparkException', message: 'Executor lost', retryable: true },
    });
    const err = await failureOf(harness({ deps: { readReport: async () => report } }).run());
    expect(err.type).toBe('EmrStepFailed');
    expect(err.nonRetryable).toBe(false);
    expect(err.message).toBe(
      'Executor lost (org.apache.spark.SparkException) — EMR step s-1 FAILED, log s3://logs/x',
    );
  });

  test('permanentFailureCause keeps one line, bounded', () => {
    expect(
      permanentFailureCause({ Reason: 'Unknown Error.', Message: `x\nAccess Denied ${'a'.repeat(400)}\ny` }),
    ).toHaveLength(300);
    expect(permanentFailureCause({ Reason: 'lost node', Message: 'Access Denied' })).toBeUndefined();
    expect(permanentFailureCause({})).toBeUndefined();
  });
});

describe('runSparkStep: EMR API outages are ridden out within the attempt', () => {
  let emr: AwsClientStub<EMRClient>;
  beforeEach(() => {
    emr = mockClient(EMRClient);
    emr.on(ListStepsCommand).resolves({ Steps: [] });
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-1'] });
  });
  afterEach(() => emr.restore());

  const unavailable = (): EMRServiceException =>
    new EMRServiceException({
      name: 'InternalServerError',
      $fault: 'server',
      $metadata: { httpStatusCode: 503 },
      message: 'Service Unavailable',
    });
  const refused = (): Error =>
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8990'), { code: 'ECONNREFUSED' });

  test("far more failures than the old budget of 12, then the step's real end state", async () => {
    let calls = 0;
    emr.on(DescribeStepCommand).callsFake(() => {
      calls += 1;
      if (calls === 1) return step('RUNNING');
      if (calls <= 41) throw [refused, unavailable, throttling][calls % 3]!();
      return step('COMPLETED');
    });
    const h = harness();
    const result = await h.run();
    expect(result).toMatchObject({ stepId: 's-1', adopted: false, state: 'COMPLETED' });
    expect(calls).toBe(42);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(1);
    expect(emr.commandCalls(CancelStepsCommand)).toHaveLength(0);
    // It kept heartbeating the step all along.
    expect(
      h.heartbeats.filter((d) => JSON.stringify(d) === '{"stepId":"s-1","state":"RUNNING"}').length,
    ).toBeGreaterThan(40);
  });

  test('a network error the SDK could only wrap as text (it crossed a realm, as under jest) is transient too', async () => {
    emr
      .on(DescribeStepCommand)
      .rejectsOnce(new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:8990'))
      .resolves(step('COMPLETED'));
    const result = await harness().run();
    expect(result.state).toBe('COMPLETED');
    // The first DescribeStep failed and was tried again; its answer also began the polling.
    expect(emr.commandCalls(DescribeStepCommand)).toHaveLength(2);
  });

  test('the outage clock restarts whenever the API answers', async () => {
    // Down for 60 ms at a time, answering once in between, eight times over: never one outage of
    // 250 ms, but far longer than that in all.
    let phaseStart = Date.now();
    let answers = 0;
    emr.on(DescribeStepCommand).callsFake(() => {
      if (Date.now() - phaseStart < 60) throw refused();
      answers += 1;
      phaseStart = Date.now();
      return step(answers > 8 ? 'COMPLETED' : 'RUNNING');
    });
    const started = Date.now();
    const result = await harness({ deps: { outageToleranceMs: 250 } }).run();
    expect(result.state).toBe('COMPLETED');
    expect(Date.now() - started).toBeGreaterThan(250);
  });

  test('a cancel during an outage still ends the attempt promptly', async () => {
    let calls = 0;
    emr.on(DescribeStepCommand).callsFake(() => {
      calls += 1;
      if (calls === 1) return step('RUNNING');
      throw refused();
    });
    emr.on(CancelStepsCommand).rejects(refused());
    const h = harness({ deps: { cancelWaitMs: 200 } });
    h.env.on('heartbeat', () => {
      if (calls === 10) h.env.cancel();
    });
    const started = Date.now();
    await expect(h.run()).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(emr.commandCalls(CancelStepsCommand).length).toBeGreaterThan(0);
  });
});

/**
 * A small stateful EMR shared by several attempts: steps in creation order, each DescribeStep of a
 * PENDING or RUNNING step moves it along, CancelSteps cancels. `created` sets a step's creation time.
 */
function statefulEmr(
  emr: AwsClientStub<EMRClient>,
  opts: { created?: (n: number) => Date; ids?: string[]; beforeSubmit?: () => Promise<void> } = {},
) {
  const steps: { Id: string; Name: string; State: StepState; created: Date; describes: number }[] = [];
  const summaryOf = (s: (typeof steps)[number]): StepSummary => ({
    Id: s.Id,
    Name: s.Name,
    Status: { State: s.State, Timeline: { CreationDateTime: s.created } },
  });
  emr.on(ListStepsCommand).callsFake((input: { StepStates?: StepState[] }) => ({
    Steps: [...steps]
      .reverse()
      .filter((s) => !input.StepStates || input.StepStates.includes(s.State))
      .map(summaryOf),
  }));
  emr.on(AddJobFlowStepsCommand).callsFake(async (input: { Steps: { Name: string }[] }) => {
    await opts.beforeSubmit?.();
    const n = steps.length;
    const Id = opts.ids?.[n] ?? `s-${n + 1}`;
    steps.push({
      Id,
      Name: input.Steps[0]!.Name,
      State: 'PENDING',
      created: opts.created?.(n) ?? new Date(Date.now() + n),
      describes: 0,
    });
    return { StepIds: [Id] };
  });
  emr.on(DescribeStepCommand).callsFake((input: { StepId: string }) => {
    const s = steps.find((x) => x.Id === input.StepId)!;
    s.describes += 1;
    if (s.State === 'PENDING' && s.describes >= 2) s.State = 'RUNNING';
    else if (s.State === 'RUNNING' && s.describes >= 4) s.State = 'COMPLETED';
    else if (s.State === 'CANCEL_PENDING') s.State = 'CANCELLED';
    return {
      Step: { Id: s.Id, Name: s.Name, Status: { State: s.State, Timeline: { CreationDateTime: s.created } } },
    };
  });
  emr.on(CancelStepsCommand).callsFake((input: { StepIds: string[] }) => {
    for (const id of input.StepIds) {
      const s = steps.find((x) => x.Id === id)!;
      if (s.State === 'PENDING') s.State = 'CANCELLED';
      else if (s.State === 'RUNNING') s.State = 'CANCEL_PENDING';
    }
    return { CancelStepsInfoList: input.StepIds.map((StepId) => ({ StepId, Status: 'SUBMITTED' as const })) };
  });
  return steps;
}

/** Lets AddJobFlowSteps through only once `n` attempts have made their lookup (and seen nothing). */
function afterLookups(emr: AwsClientStub<EMRClient>, n: number): () => Promise<void> {
  return async () => {
    const deadline = Date.now() + 5_000;
    while (emr.commandCalls(ListStepsCommand).length < n && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
  };
}

describe('runSparkStep: two live attempts of one step end on one EMR step', () => {
  let emr: AwsClientStub<EMRClient>;
  beforeEach(() => {
    emr = mockClient(EMRClient);
  });
  afterEach(() => emr.restore());

  test('both submit after seeing no step: the oldest survives, the other is cancelled, both follow it', async () => {
    const steps = statefulEmr(emr, { beforeSubmit: afterLookups(emr, 2) });
    const [a, b] = [harness({ attempt: 2 }), harness({ attempt: 3 })];
    const [ra, rb] = await Promise.all([a.run(), b.run()]);
    // Both really submitted: the race happened.
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(2);
    expect(steps.map((s) => s.State)).toEqual(['COMPLETED', 'CANCELLED']);
    const [winner, loser] = steps;
    expect(ra.stepId).toBe(winner!.Id);
    expect(rb.stepId).toBe(winner!.Id);
    expect([ra.adopted, rb.adopted].sort()).toEqual([false, true]);
    expect(emr.commandCalls(CancelStepsCommand).flatMap((c) => c.args[0].input.StepIds)).toContain(loser!.Id);
    // The winner was never cancelled, and each attempt's last heartbeat names it.
    expect(emr.commandCalls(CancelStepsCommand).flatMap((c) => c.args[0].input.StepIds)).not.toContain(
      winner!.Id,
    );
    for (const h of [a, b]) expect(h.heartbeats.at(-1)).toMatchObject({ stepId: winner!.Id });
  });

  test('same creation time: the smaller step id wins; the attempt that believed its own step won follows it once it is cancelled', async () => {
    const t = new Date();
    let submits = 0;
    // First both look (and see nothing); one submits and checks (its step is alone: it "wins");
    // only then does the other submit, with the same creation time and a smaller id.
    const steps = statefulEmr(emr, {
      created: () => t,
      ids: ['s-B', 's-A'],
      beforeSubmit: async () => {
        submits += 1;
        await afterLookups(emr, submits === 1 ? 2 : 3)();
      },
    });
    const [ra, rb] = await Promise.all([harness({ attempt: 2 }).run(), harness({ attempt: 3 }).run()]);
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(2);
    expect(ra.stepId).toBe('s-A');
    expect(rb.stepId).toBe('s-A');
    expect(Object.fromEntries(steps.map((s) => [s.Id, s.State]))).toEqual({
      's-A': 'COMPLETED',
      's-B': 'CANCELLED',
    });
    expect(emr.commandCalls(CancelStepsCommand).map((c) => c.args[0].input.StepIds)).toEqual([['s-B']]);
  });

  test('an older namesake that already COMPLETED wins over the step just submitted', async () => {
    emr.on(ListStepsCommand).callsFake((input: { StepStates?: StepState[] }) =>
      input.StepStates?.includes('CANCEL_PENDING')
        ? { Steps: [] } // the lookup ran before the other attempt's step was listed
        : {
            Steps: [
              {
                Id: 's-mine',
                Name: NAME,
                Status: { State: 'PENDING', Timeline: { CreationDateTime: new Date() } },
              },
              {
                Id: 's-other',
                Name: NAME,
                Status: { State: 'COMPLETED', Timeline: { CreationDateTime: new Date(Date.now() - 60_000) } },
              },
            ],
          },
    );
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-mine'] });
    emr.on(CancelStepsCommand).resolves({ CancelStepsInfoList: [{ StepId: 's-mine', Status: 'SUBMITTED' }] });
    emr.on(DescribeStepCommand, { StepId: 's-other' }).resolves(step('COMPLETED', 's-other'));
    const h = harness({ attempt: 2 });
    const result = await h.run();
    expect(result).toMatchObject({ stepId: 's-other', adopted: true, state: 'COMPLETED' });
    expect(emr.commandCalls(CancelStepsCommand).map((c) => c.args[0].input.StepIds)).toEqual([['s-mine']]);
    expect(emr.commandCalls(DescribeStepCommand).map((c) => c.args[0].input.StepId)).toEqual(['s-other']);
  });

  /** ListSteps over fixed pages, newest first; page n+1 is asked for with Marker `page-<n+1>`. */
  const pages = (list: StepSummary[][]) =>
    emr.on(ListStepsCommand).callsFake((input: { Marker?: string }) => {
      const n = input.Marker ? Number(input.Marker.split('-')[1]) - 1 : 0;
      return { Steps: list[n] ?? [], ...(n + 1 < list.length ? { Marker: `page-${n + 2}` } : {}) };
    });
  const at = (id: string, state: StepState, created: number, name = NAME): StepSummary => ({
    Id: id,
    Name: name,
    Status: { State: state, Timeline: { CreationDateTime: new Date(created) } },
  });

  test.each([
    ['3 hours ahead', 3 * 3_600_000],
    ['2 hours behind', -2 * 3_600_000],
  ])(
    "a first attempt submits without looking, and its check lists back to its own start by EMR's clock (%s), no further",
    async (_, skew) => {
      const emrNow = Date.now() + skew;
      pages([
        [
          at('s-mine', 'PENDING', emrNow),
          ...Array.from({ length: 49 }, (_, i) =>
            at(`s-x${i}`, 'COMPLETED', emrNow - 500, `sparkify/other/${i}`),
          ),
        ],
        // A namesake from a later attempt of this one, submitted just before ours: it wins.
        [
          at('s-other', 'RUNNING', emrNow - 1_000),
          at('s-y', 'COMPLETED', emrNow - 1_500, 'sparkify/other/y'),
        ],
        // Before this attempt started (by far): the listing ends with this page…
        [at('s-z', 'COMPLETED', emrNow - 3_600_000, 'sparkify/z')],
        // …and never reaches a namesake this old, which would have won.
        [at('s-never', 'RUNNING', emrNow - 7_200_000)],
      ]);
      emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-mine'] });
      emr.on(DescribeStepCommand, { StepId: 's-mine' }).resolves({
        Step: {
          Id: 's-mine',
          Name: NAME,
          Status: { State: 'PENDING', Timeline: { CreationDateTime: new Date(emrNow) } },
        },
      });
      emr.on(DescribeStepCommand, { StepId: 's-other' }).resolves(step('COMPLETED', 's-other'));
      emr
        .on(CancelStepsCommand)
        .resolves({ CancelStepsInfoList: [{ StepId: 's-mine', Status: 'SUBMITTED' }] });
      const result = await harness().run();
      expect(result).toMatchObject({ stepId: 's-other', adopted: true, state: 'COMPLETED' });
      expect(emr.commandCalls(CancelStepsCommand).map((c) => c.args[0].input.StepIds)).toEqual([['s-mine']]);
      // No lookup before the submit (it would ask for CANCEL_PENDING steps too); after it, three
      // pages: the third reaches steps from before the attempt and ends the listing.
      const listed = emr.commandCalls(ListStepsCommand).map((c) => c.args[0].input);
      expect(listed.map((i) => i.StepStates)).toEqual(Array(3).fill(['PENDING', 'RUNNING', 'COMPLETED']));
      expect(listed.map((i) => i.Marker)).toEqual([undefined, 'page-2', 'page-3']);
    },
  );

  test('a first attempt that started long after it was scheduled looks before submitting, as a retry does', async () => {
    emr.on(ListStepsCommand).resolves({ Steps: [summary('s-old', 'RUNNING')] });
    emr.on(DescribeStepCommand).resolves(step('COMPLETED', 's-old'));
    const { runSparkStep } = createEmrStepActivities({
      emr: new EMRClient({ region: 'us-east-1', credentials: CREDENTIALS }),
      cancelWaitMs: 2_000,
    });
    // Scheduled a minute ago with a 20 s heartbeat timeout: a second attempt may be running.
    const env = new MockActivityEnvironment(
      {
        attempt: 1,
        heartbeatTimeoutMs: 20_000,
        currentAttemptScheduledTimestampMs: Date.now() - 60_000,
        scheduledTimestampMs: Date.now() - 60_000,
      },
      { logger: quietLogger },
    );
    const result = await env.run(runSparkStep, INPUT);
    expect(result).toMatchObject({ stepId: 's-old', adopted: true });
    expect(emr.commandCalls(AddJobFlowStepsCommand)).toHaveLength(0);
  });

  test('the check pages back to the lookup and no further', async () => {
    const now = Date.now();
    const other = (i: number, created: number): StepSummary => ({
      Id: `s-x${i}`,
      Name: `sparkify/other/${i}`,
      Status: { State: 'COMPLETED', Timeline: { CreationDateTime: new Date(created) } },
    });
    emr.on(ListStepsCommand).callsFake((input: { StepStates?: StepState[]; Marker?: string }) => {
      if (input.StepStates?.includes('CANCEL_PENDING')) return { Steps: [] };
      if (input.Marker === 'page-2') {
        return {
          Steps: [
            {
              Id: 's-older',
              Name: NAME,
              Status: { State: 'RUNNING', Timeline: { CreationDateTime: new Date(now - 1_000) } },
            },
            other(99, now - 3_600_000),
          ],
          Marker: 'page-3',
        };
      }
      return { Steps: Array.from({ length: 50 }, (_, i) => other(i, now)), Marker: 'page-2' };
    });
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-mine'] });
    emr.on(CancelStepsCommand).resolves({ CancelStepsInfoList: [{ StepId: 's-mine', Status: 'SUBMITTED' }] });
    emr.on(DescribeStepCommand, { StepId: 's-older' }).resolves(step('COMPLETED', 's-older'));
    const result = await harness({ attempt: 2 }).run();
    expect(result).toMatchObject({ stepId: 's-older', adopted: true });
    // s-mine was not listed yet (so it is the newest) and is cancelled; page 3 is never asked for.
    expect(emr.commandCalls(CancelStepsCommand).map((c) => c.args[0].input.StepIds)).toEqual([['s-mine']]);
    expect(emr.commandCalls(ListStepsCommand).map((c) => c.args[0].input.Marker)).toEqual([
      undefined,
      undefined,
      'page-2',
    ]);
  });

  test('an explicit cancel cancels every live step of the name, not only its own', async () => {
    let cancelled = false;
    emr
      .on(ListStepsCommand)
      .callsFake((input: { StepStates?: StepState[] }) =>
        cancelled || input.StepStates?.includes('CANCEL_PENDING')
          ? { Steps: [] }
          : input.StepStates?.includes('COMPLETED')
            ? { Steps: [] }
            : { Steps: [summary('s-racing', 'PENDING'), summary('s-7', 'RUNNING')] },
      );
    emr.on(AddJobFlowStepsCommand).resolves({ StepIds: ['s-7'] });
    emr.on(DescribeStepCommand).callsFake(() => step(cancelled ? 'CANCELLED' : 'RUNNING', 's-7'));
    emr.on(CancelStepsCommand).callsFake(() => {
      cancelled = true;
      return { CancelStepsInfoList: [] };
    });
    const h = harness();
    h.env.on('heartbeat', (d: { state?: string }) => {
      if (d?.state === 'RUNNING' && !cancelled) h.env.cancel();
    });
    await expect(h.run()).rejects.toBeInstanceOf(CancelledFailure);
    expect(emr.commandCalls(CancelStepsCommand).map((c) => c.args[0].input.StepIds)).toEqual([
      ['s-7', 's-racing'],
    ]);
  });
});

/**
 * aws-sdk-client-mock replaces `send`, so SDK retries never run under it. These tests use a
 * real EMRClient against a tiny server speaking EMR's JSON protocol to show what the SDK does on
 * the wire when the connection drops during AddJobFlowSteps.
 */
describe('runSparkStep against a fake EMR endpoint (real SDK, real retries)', () => {
  let server: http.Server;
  let endpoint: string;
  const calls: string[] = [];
  const steps: { Id: string; Name: string; State: StepState }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const action = String(req.headers['x-amz-target'] ?? '').replace('ElasticMapReduce.', '');
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        calls.push(action);
        const reply = (payload: unknown): void => {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify(payload));
        };
        if (action === 'AddJobFlowSteps') {
          // EMR adds the step, then the connection dies before the answer gets back.
          steps.unshift({ Id: `s-${steps.length + 1}`, Name: body.Steps[0].Name, State: 'PENDING' });
          req.socket.destroy();
        } else if (action === 'ListSteps') {
          reply({
            Steps: steps.map((s) => ({ Id: s.Id, Name: s.Name, Status: { State: s.State } })),
          });
        } else if (action === 'DescribeStep') {
          const s = steps.find((x) => x.Id === body.StepId)!;
          s.State = 'COMPLETED';
          reply({
            Step: {
              Id: s.Id,
              Name: s.Name,
              Status: { State: s.State, Timeline: { StartDateTime: 1795816800 } },
            },
          });
        } else {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify({ __type: 'InvalidRequestException', message: `unsupported ${action}` }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    calls.length = 0;
    steps.length = 0;
  });

  test('control: a default client retries the dropped AddJobFlowSteps, adding duplicate steps', async () => {
    const client = new EMRClient({ region: 'us-east-1', endpoint, credentials: CREDENTIALS, maxAttempts: 3 });
    await expect(
      client.send(
        new AddJobFlowStepsCommand({
          JobFlowId: CLUSTER,
          Steps: [{ Name: NAME, HadoopJarStep: { Jar: 'x' } }],
        }),
      ),
    ).rejects.toThrow();
    expect(calls.filter((c) => c === 'AddJobFlowSteps').length).toBeGreaterThan(1);
    expect(steps.length).toBeGreaterThan(1);
    client.destroy();
  });

  test('runSparkStep sends AddJobFlowSteps exactly once and adopts the step that landed', async () => {
    const emr = new EMRClient({ region: 'us-east-1', endpoint, credentials: CREDENTIALS, maxAttempts: 3 });
    // No emrNoRetry given: it is derived from `emr`, keeping endpoint and credentials.
    const { runSparkStep } = createEmrStepActivities({ emr });
    const env = new MockActivityEnvironment({}, { logger: quietLogger });
    const result = await env.run(runSparkStep, INPUT);
    expect(result).toMatchObject({ stepId: 's-1', adopted: true, state: 'COMPLETED' });
    expect(calls.filter((c) => c === 'AddJobFlowSteps')).toHaveLength(1);
    expect(steps).toHaveLength(1);
    expect(calls.filter((c) => c === 'ListSteps').length).toBeGreaterThanOrEqual(2);
    expect(await withoutSdkRetries(emr).config.maxAttempts()).toBe(1);
    emr.destroy();
  });
});
