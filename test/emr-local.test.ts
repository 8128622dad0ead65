import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import {
  AddJobFlowStepsCommand,
  CancelStepsCommand,
  DescribeClusterCommand,
  DescribeStepCommand,
  EMRClient,
  InvalidRequestException,
  ListBootstrapActionsCommand,
  ListClustersCommand,
  ListInstanceGroupsCommand,
  ListStepsCommand,
  TerminateJobFlowsCommand,
  type HadoopJarStepConfig,
  type ListClustersCommandInput,
  type Step,
  type StepState,
} from '@aws-sdk/client-emr';

import { C1_ONLY_BELOW_BYTES, LOCAL_CONF, translateSparkSubmitArgs } from '../dev/emr-local/command';
import { stepLogBytes } from '../dev/emr-local/step-input';
import { LOST_PROCESS_REASON, startLocalEmr, type LocalEmr, type LocalEmrOptions } from '../dev/emr-local';
import { freePort } from './helpers/ports';

const REPO = path.resolve(__dirname, '..');
const TERMINAL: StepState[] = ['COMPLETED', 'FAILED', 'CANCELLED', 'INTERRUPTED'];

const open: { emr: LocalEmr; client: EMRClient }[] = [];
const tmpDirs: string[] = [];

afterEach(async () => {
  for (const { emr, client } of open.splice(0)) {
    client.destroy();
    await emr.close({ killSteps: true });
  }
});

afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'emr-local-test-'));
  tmpDirs.push(dir);
  return dir;
}

async function start(opts: Partial<LocalEmrOptions> = {}) {
  const emr = await startLocalEmr({
    stateDir: opts.stateDir ?? tmpDir(),
    allowedCommands: ['spark-submit', 'node'],
    pollIntervalMs: 50,
    ...opts,
  });
  const client = new EMRClient({
    endpoint: emr.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const handle = { emr, client };
  open.push(handle);
  const closeKeepingSteps = async () => {
    open.splice(open.indexOf(handle), 1);
    client.destroy();
    await emr.close();
  };
  return { emr, client, clusterId: emr.clusterId, closeKeepingSteps };
}

/** A command-runner step running `node -e <script> [args]`, cheap enough to run dozens of. */
function nodeStep(name: string, script: string, ...args: string[]) {
  const HadoopJarStep: HadoopJarStepConfig = {
    Jar: 'command-runner.jar',
    Args: ['node', '-e', script, ...args],
  };
  return { Name: name, ActionOnFailure: 'CONTINUE' as const, HadoopJarStep };
}
const SLEEP_FOREVER = 'setTimeout(() => {}, 120000)';

async function addSteps(client: EMRClient, clusterId: string, steps: ReturnType<typeof nodeStep>[]) {
  const out = await client.send(new AddJobFlowStepsCommand({ JobFlowId: clusterId, Steps: steps }));
  return out.StepIds ?? [];
}

async function describeStep(client: EMRClient, clusterId: string, stepId: string): Promise<Step> {
  const out = await client.send(new DescribeStepCommand({ ClusterId: clusterId, StepId: stepId }));
  return out.Step as Step;
}

async function waitForState(
  client: EMRClient,
  clusterId: string,
  stepId: string,
  states: StepState[],
  timeoutMs = 20_000,
): Promise<Step> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const step = await describeStep(client, clusterId, stepId);
    if (states.includes(step.Status?.State as StepState)) return step;
    if (Date.now() > deadline) {
      throw new Error(`step ${stepId} still ${step.Status?.State}, wanted ${states.join('|')}`);
    }
    await sleep(50);
  }
}

async function localStep(endpoint: string, stepId: string) {
  const res = await fetch(`${endpoint}/_local/steps/${stepId}`);
  return (await res.json()) as { pgid?: number; runnerPid?: number; exitCode?: number; logDir: string };
}

async function stats(endpoint: string) {
  const res = await fetch(`${endpoint}/_local/stats`);
  return (await res.json()) as { addJobFlowSteps: number; stepsByName: Record<string, number> };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('spark-submit translation', () => {
  it('drops cluster deploy mode and adds a local master, leaving application arguments alone', () => {
    expect(
      translateSparkSubmitArgs(
        ['--deploy-mode', 'cluster', '--conf', 'a=b', '--verbose', 'run.py', '--deploy-mode', 'cluster'],
        'local[2]',
      ),
    ).toEqual([
      '--master',
      'local[2]',
      ...LOCAL_CONF,
      '--conf',
      'a=b',
      '--verbose',
      'run.py',
      '--deploy-mode',
      'cluster',
    ]);
    expect(
      translateSparkSubmitArgs(['--deploy-mode=cluster', '--master', 'local[4]', 'x.py'], 'local[2]'),
    ).toEqual([...LOCAL_CONF, '--master', 'local[4]', 'x.py']);
    expect(translateSparkSubmitArgs(['--deploy-mode', 'client', 'x.py'], 'local[1]')).toEqual([
      '--master',
      'local[1]',
      ...LOCAL_CONF,
      '--deploy-mode',
      'client',
      'x.py',
    ]);
  });
});

/** A raw root with one log file per given day, each of the given size (sparse: no data written). */
function rawWithLogs(sizes: Record<string, number>): string {
  const root = tmpDir();
  for (const [day, size] of Object.entries(sizes)) {
    const file = path.join(root, 'log_data', day.slice(0, 4), day.slice(5, 7), `${day}-events.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.closeSync(fs.openSync(file, 'w'));
    fs.truncateSync(file, size);
  }
  return root;
}

/** spark-submit arguments as the worker builds them for a step of daily assets. */
function sparkifyArgs(raw: string, start: string, end: string): string[] {
  return [
    '--deploy-mode',
    'cluster',
    '--py-files',
    's3://code/sparkify_jobs.zip',
    's3://code/run.py',
    '--assets',
    'users,time,songplays',
    '--raw',
    raw,
    '--lake',
    's3://lake',
    '--start',
    start,
    '--end',
    end,
    '--report',
    's3://lake/_reports/r.json',
  ];
}

describe("the driver's JVM follows the step's input", () => {
  it("sums the sizes of the step's days of log_data, for a local raw root only", () => {
    const raw = rawWithLogs({ '2018-11-01': 1000, '2018-11-02': 2345, '2018-11-03': 5 });
    // End exclusive; a day without a file adds nothing.
    expect(stepLogBytes(sparkifyArgs(`file://${raw}`, '2018-10-31', '2018-11-03'))).toBe(3345);
    expect(stepLogBytes(sparkifyArgs(raw, '2018-11-01', '2018-11-04'))).toBe(3350);
    // What it cannot tell without reading a remote store, or from arguments that are not a range.
    expect(stepLogBytes(sparkifyArgs('s3://raw', '2018-11-01', '2018-11-04'))).toBeUndefined();
    expect(stepLogBytes(sparkifyArgs(raw, '2018-11-01/../..', '2018-11-04'))).toBeUndefined();
    expect(stepLogBytes(sparkifyArgs(raw, '2018-11-04', '2018-11-01'))).toBeUndefined();
    expect(stepLogBytes(['s3://code/run.py', '--assets', 'songs', '--raw', raw])).toBeUndefined();
  });

  it("starts a small step with C1 only and the serial collector, a large one with the JVM's defaults", async () => {
    const small = rawWithLogs({ '2018-11-01': 1000 });
    const large = rawWithLogs({
      '2018-11-01': C1_ONLY_BELOW_BYTES / 2,
      '2018-11-02': C1_ONLY_BELOW_BYTES / 2,
    });
    const stateDir = tmpDir();
    // The command only has to exist: what is checked is how the local EMR started it.
    const { client, clusterId } = await start({
      stateDir,
      sparkSubmit: '/bin/true',
      classDataSharing: false,
      allowedCommands: ['spark-submit'],
    });
    const step = (name: string, raw: string) => ({
      Name: name,
      ActionOnFailure: 'CONTINUE' as const,
      HadoopJarStep: {
        Jar: 'command-runner.jar',
        Args: ['spark-submit', ...sparkifyArgs(`file://${raw}`, '2018-11-01', '2018-11-03')],
      },
    });
    const ids = await addSteps(client, clusterId, [
      step('sparkify/small', small),
      step('sparkify/large', large),
      step('sparkify/remote', 's3://raw'),
    ]);
    const javaOptions = async (id: string) => {
      expect((await waitForState(client, clusterId, id, TERMINAL)).Status?.State).toBe('COMPLETED');
      const file = path.join(stateDir, 'logs', clusterId, 'steps', id, 'command.json');
      const { args } = JSON.parse(fs.readFileSync(file, 'utf8')) as { args: string[] };
      return args.find((a) => a.startsWith('spark.driver.extraJavaOptions='));
    };
    const [smallStep, largeStep, remoteStep] = ids as [string, string, string];
    expect(await javaOptions(smallStep)).toBe(
      'spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC',
    );
    expect(await javaOptions(largeStep)).toBeUndefined();
    expect(await javaOptions(remoteStep)).toBe(
      'spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1 -XX:+UseSerialGC',
    );
  });
});

describe('local EMR through the AWS SDK', () => {
  it('runs steps PENDING -> RUNNING -> COMPLETED, one at a time at concurrency 1', async () => {
    const { emr, client, clusterId } = await start();
    const [first, second] = await addSteps(client, clusterId, [
      nodeStep('sparkify/first', 'console.log("hello from step"); setTimeout(() => {}, 1000)'),
      nodeStep('sparkify/second', 'process.exit(0)'),
    ]);
    expect(first).toMatch(/^s-[A-Z0-9]{13}$/);
    expect(second).toMatch(/^s-[A-Z0-9]{13}$/);
    expect(first).not.toEqual(second);

    const running = await waitForState(client, clusterId, first as string, ['RUNNING']);
    expect(running.Status?.Timeline?.StartDateTime).toBeInstanceOf(Date);
    expect(running.Config).toMatchObject({
      Jar: 'command-runner.jar',
      Args: ['node', '-e', expect.any(String)],
    });
    const waiting = await describeStep(client, clusterId, second as string);
    expect(waiting.Status?.State).toBe('PENDING');
    expect(waiting.Status?.Timeline?.CreationDateTime).toBeInstanceOf(Date);
    expect(waiting.Status?.Timeline?.StartDateTime).toBeUndefined();
    const cluster = await client.send(new DescribeClusterCommand({ ClusterId: clusterId }));
    expect(cluster.Cluster).toMatchObject({
      Id: clusterId,
      Name: 'sparkify-local',
      Status: { State: 'RUNNING' },
      StepConcurrencyLevel: 1,
      ReleaseLabel: 'emr-7.12.0',
      Applications: [{ Name: 'Spark', Version: '3.5.6' }],
    });
    expect(cluster.Cluster?.LogUri).toMatch(/^file:\/\/\/.*\/logs\/$/);

    const done = await waitForState(client, clusterId, second as string, TERMINAL);
    expect(done.Status?.State).toBe('COMPLETED');
    const firstDone = await describeStep(client, clusterId, first as string);
    expect(firstDone.Status?.State).toBe('COMPLETED');
    expect(firstDone.Status?.FailureDetails).toBeUndefined();
    expect(firstDone.Status?.Timeline?.EndDateTime!.getTime()).toBeLessThanOrEqual(
      done.Status!.Timeline!.StartDateTime!.getTime(),
    );
    const logDir = path.join(emr.stateDir, 'logs', clusterId, 'steps', first as string);
    expect(fs.readFileSync(path.join(logDir, 'stdout'), 'utf8')).toBe('hello from step\n');
    expect((await localStep(emr.endpoint, first as string)).exitCode).toBe(0);
    const idle = await client.send(new DescribeClusterCommand({ ClusterId: clusterId }));
    expect(idle.Cluster?.Status?.State).toBe('WAITING');
  });

  it('runs steps side by side at a higher step concurrency', async () => {
    const { client, clusterId } = await start({ stepConcurrency: 2 });
    const ids = await addSteps(client, clusterId, [
      nodeStep('a', SLEEP_FOREVER),
      nodeStep('b', SLEEP_FOREVER),
      nodeStep('c', SLEEP_FOREVER),
    ]);
    await waitForState(client, clusterId, ids[0] as string, ['RUNNING']);
    await waitForState(client, clusterId, ids[1] as string, ['RUNNING']);
    expect((await describeStep(client, clusterId, ids[2] as string)).Status?.State).toBe('PENDING');
    await expect(
      client.send(
        new AddJobFlowStepsCommand({
          JobFlowId: clusterId,
          Steps: [{ ...nodeStep('d', ''), ActionOnFailure: 'CANCEL_AND_WAIT' }],
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('fails a step with FailureDetails taken from its stderr', async () => {
    const { client, clusterId } = await start();
    const script = [
      'console.error("Traceback (most recent call last):");',
      'console.error("  File \\"run.py\\", line 1, in <module>");',
      'console.error("ValueError: no such table songs");',
      'console.error("25/11/27 22:00:00 INFO ShutdownHookManager: Shutdown hook called");',
      'process.exit(3);',
    ].join('\n');
    const [pyError, bare, badJar, badCommand] = await addSteps(client, clusterId, [
      nodeStep('python-error', script),
      nodeStep('bare-exit', 'process.exit(7)'),
      { Name: 'jar', ActionOnFailure: 'CONTINUE', HadoopJarStep: { Jar: 's3://bucket/app.jar', Args: [] } },
      {
        Name: 'bash',
        ActionOnFailure: 'CONTINUE',
        HadoopJarStep: { Jar: 'command-runner.jar', Args: ['bash', '-c', 'echo hi'] },
      },
    ]);

    const failed = await waitForState(client, clusterId, pyError as string, TERMINAL);
    expect(failed.Status?.State).toBe('FAILED');
    const details = failed.Status?.FailureDetails;
    expect(details?.Reason).toBe('ValueError: no such table songs (exit code 3)');
    expect(details?.Message).toContain('Traceback (most recent call last):');
    expect(details?.Message).toMatch(/ValueError: no such table songs$/);
    expect(details?.Message).not.toContain('ShutdownHookManager');
    expect(details?.Message!.length).toBeLessThanOrEqual(1024);
    expect(details?.LogFile).toMatch(/^file:\/\/\/.*\/stderr$/);
    expect(fs.readFileSync(fileURLToPath(details?.LogFile as string), 'utf8')).toContain('ValueError');
    expect(failed.Status?.Timeline?.EndDateTime).toBeInstanceOf(Date);

    const bareFailed = await waitForState(client, clusterId, bare as string, TERMINAL);
    expect(bareFailed.Status?.FailureDetails?.Reason).toBe('Step failed with exit code 7');
    expect(fs.existsSync(fileURLToPath(bareFailed.Status?.FailureDetails?.LogFile as string))).toBe(true);

    for (const id of [badJar, badCommand]) {
      const unsupported = await waitForState(client, clusterId, id as string, TERMINAL);
      expect(unsupported.Status?.State).toBe('FAILED');
      expect(unsupported.Status?.FailureDetails?.Reason).toMatch(/only command-runner\.jar.*spark-submit/);
    }
  });

  it('cancels the steps queued behind a failed CANCEL_AND_WAIT step', async () => {
    const { client, clusterId } = await start();
    const [bad, queued] = await addSteps(client, clusterId, [
      { ...nodeStep('bad', 'process.exit(1)'), ActionOnFailure: 'CANCEL_AND_WAIT' as never },
      nodeStep('queued', 'process.exit(0)'),
    ]);
    expect((await waitForState(client, clusterId, bad as string, TERMINAL)).Status?.State).toBe('FAILED');
    expect((await waitForState(client, clusterId, queued as string, TERMINAL)).Status?.State).toBe(
      'CANCELLED',
    );
  });

  it('lists steps newest first, 50 a page with Marker, filtered by state and id', async () => {
    const { client, clusterId } = await start();
    const added: string[] = [];
    added.push(...(await addSteps(client, clusterId, [nodeStep('blocker', SLEEP_FOREVER)])));
    for (let batch = 0; batch < 3; batch++) {
      const steps = Array.from({ length: 18 }, (_, i) => nodeStep(`queued-${batch}-${i}`, 'process.exit(0)'));
      added.push(...(await addSteps(client, clusterId, steps)));
    }
    expect(added).toHaveLength(55);
    expect(new Set(added).size).toBe(55);
    await waitForState(client, clusterId, added[0] as string, ['RUNNING']);

    const first = await client.send(new ListStepsCommand({ ClusterId: clusterId }));
    expect(first.Steps).toHaveLength(50);
    expect(first.Marker).toBeDefined();
    const second = await client.send(new ListStepsCommand({ ClusterId: clusterId, Marker: first.Marker }));
    expect(second.Steps).toHaveLength(5);
    expect(second.Marker).toBeUndefined();
    const listed = [...first.Steps!, ...second.Steps!].map((s) => s.Id);
    expect(listed).toEqual([...added].reverse());
    expect(first.Steps![0]).toMatchObject({
      Name: 'queued-2-17',
      ActionOnFailure: 'CONTINUE',
      Status: { State: 'PENDING' },
      Config: { Jar: 'command-runner.jar' },
    });

    const running = await client.send(
      new ListStepsCommand({ ClusterId: clusterId, StepStates: ['RUNNING'] }),
    );
    expect(running.Steps?.map((s) => s.Id)).toEqual([added[0]]);
    const pending = await client.send(
      new ListStepsCommand({ ClusterId: clusterId, StepStates: ['PENDING', 'COMPLETED'] }),
    );
    expect(pending.Steps).toHaveLength(50);
    expect(pending.Steps?.every((s) => s.Status?.State === 'PENDING')).toBe(true);
    const byId = await client.send(
      new ListStepsCommand({ ClusterId: clusterId, StepIds: [added[3] as string, added[1] as string] }),
    );
    expect(byId.Steps?.map((s) => s.Id)).toEqual([added[3], added[1]]);

    await expect(
      client.send(new ListStepsCommand({ ClusterId: clusterId, Marker: 'nonsense' })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
  });

  it('cancels PENDING steps at once and RUNNING steps by signalling their process group', async () => {
    const { emr, client, clusterId } = await start();
    const [running, pending, stubborn] = await addSteps(client, clusterId, [
      nodeStep('running', SLEEP_FOREVER),
      nodeStep('pending', 'process.exit(0)'),
      nodeStep('stubborn', `process.on('SIGTERM', () => {}); console.log('ready'); ${SLEEP_FOREVER}`),
    ]);
    await waitForState(client, clusterId, running as string, ['RUNNING']);
    await waitFor(
      'the step command pid',
      async () => !!(await localStep(emr.endpoint, running as string)).pgid,
    );
    const { pgid } = await localStep(emr.endpoint, running as string);

    const pendingOut = await client.send(
      new CancelStepsCommand({ ClusterId: clusterId, StepIds: [pending as string] }),
    );
    expect(pendingOut.CancelStepsInfoList).toEqual([{ StepId: pending, Status: 'SUBMITTED', Reason: '' }]);
    expect((await describeStep(client, clusterId, pending as string)).Status?.State).toBe('CANCELLED');

    const runningOut = await client.send(
      new CancelStepsCommand({ ClusterId: clusterId, StepIds: [running as string] }),
    );
    expect(runningOut.CancelStepsInfoList?.[0]?.Status).toBe('SUBMITTED');
    const cancelled = await waitForState(client, clusterId, running as string, TERMINAL);
    expect(cancelled.Status?.State).toBe('CANCELLED');
    expect(cancelled.Status?.Timeline?.EndDateTime).toBeInstanceOf(Date);
    expect(alive(pgid as number)).toBe(false);

    // Idempotent, and a finished step cannot be cancelled.
    const again = await client.send(
      new CancelStepsCommand({ ClusterId: clusterId, StepIds: [running as string, 's-DOESNOTEXIST1'] }),
    );
    expect(again.CancelStepsInfoList?.map((i) => i.Status)).toEqual(['SUBMITTED', 'FAILED']);

    // The stubborn step ignores SIGTERM: SEND_INTERRUPT leaves it CANCEL_PENDING, TERMINATE_PROCESS ends it.
    await waitForState(client, clusterId, stubborn as string, ['RUNNING']);
    await waitFor('the stubborn step to ignore SIGTERM', async () => {
      const stdout = path.join((await localStep(emr.endpoint, stubborn as string)).logDir, 'stdout');
      return fs.existsSync(stdout) && fs.readFileSync(stdout, 'utf8').includes('ready');
    });
    await client.send(new CancelStepsCommand({ ClusterId: clusterId, StepIds: [stubborn as string] }));
    await sleep(500);
    expect((await describeStep(client, clusterId, stubborn as string)).Status?.State).toBe('CANCEL_PENDING');
    await client.send(
      new CancelStepsCommand({
        ClusterId: clusterId,
        StepIds: [stubborn as string],
        StepCancellationOption: 'TERMINATE_PROCESS',
      }),
    );
    expect((await waitForState(client, clusterId, stubborn as string, TERMINAL)).Status?.State).toBe(
      'CANCELLED',
    );
  });

  it('surfaces EMR errors as SDK exceptions with the right names', async () => {
    const { emr, client, clusterId } = await start();
    await expect(
      client.send(new AddJobFlowStepsCommand({ JobFlowId: 'j-NOSUCHCLUSTER', Steps: [nodeStep('x', '')] })),
    ).rejects.toBeInstanceOf(InvalidRequestException);
    await expect(
      client.send(new DescribeStepCommand({ ClusterId: clusterId, StepId: 's-NOSUCHSTEP' })),
    ).rejects.toMatchObject({
      name: 'InvalidRequestException',
      message: expect.stringContaining('s-NOSUCHSTEP'),
    });
    await expect(client.send(new DescribeClusterCommand({ ClusterId: 'j-OTHER' }))).rejects.toMatchObject({
      name: 'InvalidRequestException',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(
      client.send(new TerminateJobFlowsCommand({ JobFlowIds: [clusterId] })),
    ).rejects.toMatchObject({ name: 'UnknownOperationException' });
    await expect(
      client.send(new AddJobFlowStepsCommand({ JobFlowId: clusterId, Steps: [] })),
    ).rejects.toMatchObject({ name: 'ValidationException' });

    const raw = await fetch(emr.endpoint, {
      method: 'POST',
      headers: {
        'X-Amz-Target': 'ElasticMapReduce.DescribeStep',
        'Content-Type': 'application/x-amz-json-1.1',
      },
      body: JSON.stringify({ ClusterId: clusterId }),
    });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({
      __type: 'ValidationException',
      message: expect.stringContaining('StepId'),
    });
  });

  it('re-attaches a step that keeps running across a server restart', async () => {
    const stateDir = tmpDir();
    const marker = path.join(stateDir, 'marker');
    const port = await freePort();
    const first = await start({ stateDir, port });
    expect(first.emr.endpoint).toBe(`http://127.0.0.1:${port}`);
    const [stepId] = await addSteps(first.client, first.clusterId, [
      nodeStep(
        'sparkify/restart',
        'setTimeout(() => require("fs").writeFileSync(process.argv[1], "done"), 1500)',
        marker,
      ),
    ]);
    await waitForState(first.client, first.clusterId, stepId as string, ['RUNNING']);
    const { runnerPid } = await localStep(first.emr.endpoint, stepId as string);
    await first.closeKeepingSteps();
    expect(alive(runnerPid as number)).toBe(true);

    const second = await start({ stateDir });
    const done = await waitForState(second.client, second.clusterId, stepId as string, TERMINAL);
    expect(done.Status?.State).toBe('COMPLETED');
    expect(fs.readFileSync(marker, 'utf8')).toBe('done');
    expect((await localStep(second.emr.endpoint, stepId as string)).exitCode).toBe(0);
    expect(await stats(second.emr.endpoint)).toMatchObject({
      addJobFlowSteps: 1,
      stepsByName: { 'sparkify/restart': 1 },
    });
  });

  it('keeps one runner standing by that serves every step, and lets it go when the server closes', async () => {
    // This process's children waiting as the local EMR's standby runner.
    const standbys = () =>
      fs
        .readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((pid) => {
          try {
            const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
            const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
            const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
            return (
              ppid === process.pid && cmdline.includes('step-runner.js') && cmdline.includes('--standby')
            );
          } catch {
            return false;
          }
        })
        .map(Number);
    const before = new Set(standbys());
    const { emr, client, clusterId, closeKeepingSteps } = await start();
    let runner: number | undefined;
    await waitFor('a standby runner', () => {
      runner = standbys().find((pid) => !before.has(pid));
      return runner !== undefined;
    });
    // Steps one after another and side by side, each with its own exit code and process group.
    const [first] = await addSteps(client, clusterId, [nodeStep('sparkify/standby-1', 'process.exit(0)')]);
    expect((await waitForState(client, clusterId, first as string, TERMINAL)).Status?.State).toBe(
      'COMPLETED',
    );
    const marker = path.join(emr.stateDir, 'marker');
    const [slow, failing] = await addSteps(client, clusterId, [
      nodeStep(
        'sparkify/standby-2',
        'setTimeout(() => require("fs").writeFileSync(process.argv[1], "done"), 5000)',
        marker,
      ),
      nodeStep('sparkify/standby-3', 'process.exit(3)'),
    ]);
    const failed = await waitForState(client, clusterId, failing as string, TERMINAL);
    expect(failed.Status?.State).toBe('FAILED');
    expect((await localStep(emr.endpoint, failing as string)).exitCode).toBe(3);
    const infos = await Promise.all(
      [first, slow, failing].map((id) => localStep(emr.endpoint, id as string)),
    );
    expect(infos.map((i) => i.runnerPid)).toEqual([runner, runner, runner]);
    expect(new Set(infos.map((i) => i.pgid)).size).toBe(3);
    // Closing the server closes its stdin: it takes no more steps, finishes the one it runs, exits.
    await closeKeepingSteps();
    expect(alive(runner!)).toBe(true);
    await waitFor('the standby runner to exit', () => !alive(runner!));
    expect(fs.readFileSync(marker, 'utf8')).toBe('done');
    expect(fs.readFileSync(path.join(infos[1]!.logDir, 'exit_code'), 'utf8')).toBe('0\n');
  });

  it("a step whose exit code cannot be written ends with the code its runner saw; the runner's other steps go on", async () => {
    const { emr, client, clusterId } = await start({ stepConcurrency: 2 });
    // The first step starts the standby runner that serves the next ones.
    const [warm] = await addSteps(client, clusterId, [nodeStep('warm', 'process.exit(0)')]);
    await waitForState(client, clusterId, warm as string, ['COMPLETED']);
    const [slow, blocked] = await addSteps(client, clusterId, [
      nodeStep('slow', 'setTimeout(() => process.exit(0), 2000)'),
      // A step runs in its log directory: a directory where its exit_code goes cannot be replaced.
      nodeStep('blocked', 'require("fs").mkdirSync("exit_code/taken", { recursive: true }); process.exit(3)'),
    ]);
    const failed = await waitForState(client, clusterId, blocked as string, TERMINAL);
    expect(failed.Status?.State).toBe('FAILED');
    expect(failed.Status?.FailureDetails?.Message).toMatch(/cannot write the step's exit_code/);
    const [mine, other] = await Promise.all([
      localStep(emr.endpoint, blocked as string),
      localStep(emr.endpoint, slow as string),
    ]);
    expect(mine.exitCode).toBe(3);
    expect(other.runnerPid).toBe(mine.runnerPid);
    expect(alive(mine.runnerPid as number)).toBe(true);
    const done = await waitForState(client, clusterId, slow as string, TERMINAL);
    expect(done.Status?.State).toBe('COMPLETED');
  });

  it('fails a RUNNING step whose runner died while the server was down, and runs PENDING ones', async () => {
    const stateDir = tmpDir();
    const first = await start({ stateDir });
    const [lost, queued] = await addSteps(first.client, first.clusterId, [
      nodeStep('lost', SLEEP_FOREVER),
      nodeStep('queued', 'process.exit(0)'),
    ]);
    await waitForState(first.client, first.clusterId, lost as string, ['RUNNING']);
    await waitFor(
      'the step command pid',
      async () => !!(await localStep(first.emr.endpoint, lost as string)).pgid,
    );
    const { runnerPid, pgid } = await localStep(first.emr.endpoint, lost as string);
    await first.closeKeepingSteps();
    process.kill(runnerPid as number, 'SIGKILL');
    await waitFor('the runner to die', () => !alive(runnerPid as number));

    const second = await start({ stateDir });
    const failed = await waitForState(second.client, second.clusterId, lost as string, TERMINAL);
    expect(failed.Status?.State).toBe('FAILED');
    expect(failed.Status?.FailureDetails?.Reason).toBe(LOST_PROCESS_REASON);
    // The orphaned command is not left running unobserved.
    await waitFor('the orphaned command to be killed', () => !alive(pgid as number));
    const next = await waitForState(second.client, second.clusterId, queued as string, TERMINAL);
    expect(next.Status?.State).toBe('COMPLETED');
  });

  it('counts AddJobFlowSteps calls and steps by name in /_local/stats, persisted', async () => {
    const stateDir = tmpDir();
    const first = await start({ stateDir });
    const health = await fetch(`${first.emr.endpoint}/_local/health`);
    expect(await health.json()).toMatchObject({ ok: true, clusterId: 'j-SPARKIFYLOCAL' });
    expect(await stats(first.emr.endpoint)).toMatchObject({ addJobFlowSteps: 0, stepsByName: {} });
    await addSteps(first.client, first.clusterId, [nodeStep('sparkify/a', ''), nodeStep('sparkify/b', '')]);
    await addSteps(first.client, first.clusterId, [nodeStep('sparkify/a', '')]);
    expect(await stats(first.emr.endpoint)).toMatchObject({
      addJobFlowSteps: 2,
      stepsByName: { 'sparkify/a': 2, 'sparkify/b': 1 },
    });
    await first.closeKeepingSteps();
    const second = await start({ stateDir });
    expect(await stats(second.emr.endpoint)).toMatchObject({
      addJobFlowSteps: 2,
      stepsByName: { 'sparkify/a': 2, 'sparkify/b': 1 },
    });
  });

  it('refuses a second server on the same state directory', async () => {
    const { emr } = await start();
    await expect(startLocalEmr({ stateDir: emr.stateDir })).rejects.toThrow(/already uses/);
  });

  it('runs a real spark-submit step in local mode', async () => {
    const dir = tmpDir();
    const script = path.join(dir, 'job.py');
    const out = path.join(dir, 'out.txt');
    fs.writeFileSync(
      script,
      [
        'import sys',
        'from pyspark.sql import SparkSession',
        'spark = SparkSession.builder.appName("emr-local-test").getOrCreate()',
        'n = spark.range(3).count()',
        'with open(sys.argv[1], "w") as f:',
        '    f.write(f"{spark.sparkContext.master} {n} {sys.executable}")',
        'spark.stop()',
        '',
      ].join('\n'),
    );
    const stateDir = tmpDir();
    // A directory of its own: the machine's shared one may hold an archive already. In it, the
    // archives of other Sparks: one unused for 31 days, one used yesterday.
    const classDataDir = tmpDir();
    const day = 24 * 3600 * 1000;
    const stale = path.join(classDataDir, 'spark-000000000000.jsa');
    const recent = path.join(classDataDir, 'spark-111111111111.jsa');
    for (const [file, age] of [
      [stale, 31 * day],
      [recent, day],
    ] as const) {
      fs.writeFileSync(file, 'another checkout');
      const at = new Date(Date.now() - age);
      fs.utimesSync(file, at, at);
    }
    const { client, clusterId } = await start({
      stateDir,
      classDataDir,
      master: 'local[1]',
      allowedCommands: ['spark-submit'],
    });
    const sparkStep = (name: string) => ({
      Name: name,
      ActionOnFailure: 'CONTINUE' as const,
      HadoopJarStep: {
        Jar: 'command-runner.jar',
        Args: ['spark-submit', '--deploy-mode', 'cluster', '--conf', 'spark.ui.enabled=false', script, out],
      },
    });
    const [stepId] = await addSteps(client, clusterId, [
      {
        Name: 'sparkify/spark',
        ActionOnFailure: 'CONTINUE',
        HadoopJarStep: {
          Jar: 'command-runner.jar',
          Args: [
            'spark-submit',
            '--deploy-mode',
            'cluster',
            '--conf',
            'spark.ui.enabled=false',
            '--conf',
            'spark.sql.session.timeZone=UTC',
            script,
            out,
          ],
        },
      },
    ]);
    const done = await waitForState(client, clusterId, stepId as string, TERMINAL, 170_000);
    expect(done.Status?.FailureDetails).toBeUndefined();
    expect(done.Status?.State).toBe('COMPLETED');
    expect(fs.readFileSync(out, 'utf8')).toBe(`local[1] 3 ${path.join(REPO, '.venv', 'bin', 'python')}`);
    // The first Spark step dumped a class-data-sharing archive as it exited; the next maps it.
    // Making it deleted the archive nothing had used for 30 days, and only that one.
    const archives = fs.readdirSync(classDataDir).filter((f) => f !== path.basename(recent));
    expect(archives).toEqual([expect.stringMatching(/^spark-[0-9a-f]{12}\.jsa$/)]);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(recent)).toBe(true);
    const [second] = await addSteps(client, clusterId, [sparkStep('sparkify/spark-again')]);
    const again = await waitForState(client, clusterId, second as string, TERMINAL, 170_000);
    expect(again.Status?.State).toBe('COMPLETED');
    const command = JSON.parse(
      fs.readFileSync(
        path.join(stateDir, 'logs', clusterId, 'steps', second as string, 'command.json'),
        'utf8',
      ),
    ) as { args: string[] };
    expect(command.args.join(' ')).toContain(
      `-XX:SharedArchiveFile=${path.join(classDataDir, archives[0]!)}`,
    );
  }, 240_000);
});

describe('local EMR as real clients see it', () => {
  it('answers ListInstanceGroups, ListBootstrapActions and ListClusters as for one long-running cluster', async () => {
    const { emr, client, clusterId } = await start();
    const groups = await client.send(new ListInstanceGroupsCommand({ ClusterId: clusterId }));
    expect(groups.InstanceGroups).toHaveLength(1);
    expect(groups.InstanceGroups?.[0]).toMatchObject({
      Id: expect.stringMatching(/^ig-[A-Z0-9]{13}$/),
      InstanceGroupType: 'MASTER',
      Market: 'ON_DEMAND',
      RequestedInstanceCount: 1,
      RunningInstanceCount: 1,
      Status: { State: 'RUNNING', Timeline: { CreationDateTime: expect.any(Date) } },
    });
    expect(groups.Marker).toBeUndefined();
    const actions = await client.send(new ListBootstrapActionsCommand({ ClusterId: clusterId }));
    expect(actions.BootstrapActions).toEqual([]);
    await expect(client.send(new ListInstanceGroupsCommand({ ClusterId: 'j-OTHER' }))).rejects.toBeInstanceOf(
      InvalidRequestException,
    );

    const described = await client.send(new DescribeClusterCommand({ ClusterId: clusterId }));
    expect(described.Cluster).toMatchObject({
      InstanceCollectionType: 'INSTANCE_GROUP',
      ClusterArn: `arn:aws:elasticmapreduce:us-east-1:000000000000:cluster/${clusterId}`,
      Status: { State: 'WAITING', StateChangeReason: { Message: 'Cluster ready to run steps.' } },
    });
    const created = described.Cluster!.Status!.Timeline!.CreationDateTime!;

    const all = await client.send(new ListClustersCommand({}));
    expect(all.Clusters).toEqual([
      {
        Id: clusterId,
        Name: 'sparkify-local',
        Status: described.Cluster!.Status,
        NormalizedInstanceHours: 0,
        ClusterArn: described.Cluster!.ClusterArn,
      },
    ]);
    expect(all.Marker).toBeUndefined();
    const ids = async (input: ListClustersCommandInput) =>
      (await client.send(new ListClustersCommand(input))).Clusters?.map((c) => c.Id);
    expect(await ids({ ClusterStates: ['WAITING', 'RUNNING'] })).toEqual([clusterId]);
    expect(await ids({ ClusterStates: ['TERMINATED'] })).toEqual([]);
    expect(await ids({ CreatedAfter: new Date(created.getTime() - 60_000) })).toEqual([clusterId]);
    expect(await ids({ CreatedAfter: new Date(created.getTime() + 60_000) })).toEqual([]);
    expect(await ids({ CreatedBefore: new Date(created.getTime() - 60_000) })).toEqual([]);
    expect(
      await ids({ CreatedAfter: new Date(created.getTime() - 1_000), CreatedBefore: new Date() }),
    ).toEqual([clusterId]);
    await expect(client.send(new ListClustersCommand({ Marker: 'nonsense' }))).rejects.toBeInstanceOf(
      InvalidRequestException,
    );

    // Running a step makes the cluster RUNNING, in the list as in DescribeCluster.
    const [stepId] = await addSteps(client, clusterId, [nodeStep('busy', SLEEP_FOREVER)]);
    await waitForState(client, clusterId, stepId as string, ['RUNNING']);
    expect(await ids({ ClusterStates: ['RUNNING'] })).toEqual([clusterId]);
    expect(await ids({ ClusterStates: ['WAITING'] })).toEqual([]);
    expect((await stats(emr.endpoint)).addJobFlowSteps).toBe(1);
  });

  it('serves the AWS CLI: describe-cluster, list-clusters, add-steps, list-steps, describe-step, cancel-steps', async () => {
    const { emr, client, clusterId } = await start();
    const home = tmpDir();
    const cliVersion = (await awsCli(home, ['--version'])).trim();
    expect(cliVersion).toMatch(/^aws-cli\//);
    const v2 = cliVersion.startsWith('aws-cli/2');
    const aws = async (...args: string[]) =>
      JSON.parse(
        await awsCli(home, [
          'emr',
          ...args,
          '--endpoint-url',
          emr.endpoint,
          '--output',
          'json',
          // v2 pages output through `less` by default; v1 never pages and rejects the flag.
          ...(v2 ? ['--no-cli-pager'] : []),
        ]),
      ) as Record<string, unknown>;

    // describe-cluster also calls ListInstanceGroups and ListBootstrapActions and merges them in.
    const { Cluster: cluster } = (await aws('describe-cluster', '--cluster-id', clusterId)) as {
      Cluster: Record<string, unknown> & { LogUri: string };
    };
    expect(cluster).toMatchObject({
      Id: clusterId,
      Status: { State: 'WAITING' },
      ReleaseLabel: 'emr-7.12.0',
      InstanceGroups: [{ InstanceGroupType: 'MASTER', RunningInstanceCount: 1 }],
      BootstrapActions: [],
    });
    expect(cluster.LogUri).toMatch(/^file:\/\/\/.*\/logs\/$/);

    expect(await aws('list-clusters')).toMatchObject({
      Clusters: [{ Id: clusterId, Name: 'sparkify-local' }],
    });
    expect(await aws('list-clusters', '--active')).toMatchObject({ Clusters: [{ Id: clusterId }] });
    expect(await aws('list-clusters', '--created-before', '2000-01-01T00:00:00Z')).toEqual({ Clusters: [] });

    // add-steps first reads the cluster's release label (DescribeCluster), then AddJobFlowSteps.
    const steps = [
      {
        Type: 'CUSTOM_JAR',
        Name: 'cli/fails',
        ActionOnFailure: 'CONTINUE',
        Jar: 'command-runner.jar',
        Args: ['node', '-e', 'console.error("ValueError: from the CLI"); process.exit(3)'],
      },
      {
        Type: 'CUSTOM_JAR',
        Name: 'cli/sleeps',
        ActionOnFailure: 'CONTINUE',
        Jar: 'command-runner.jar',
        Args: ['node', '-e', SLEEP_FOREVER],
      },
    ];
    const added = (await aws('add-steps', '--cluster-id', clusterId, '--steps', JSON.stringify(steps))) as {
      StepIds: string[];
    };
    expect(added.StepIds).toHaveLength(2);
    const [failing, sleeping] = added.StepIds as [string, string];
    await waitForState(client, clusterId, failing, TERMINAL);
    await waitForState(client, clusterId, sleeping, ['RUNNING']);

    const listed = (await aws('list-steps', '--cluster-id', clusterId)) as {
      Steps: { Id: string; Name: string; Status: { State: string } }[];
    };
    expect(listed.Steps.map((s) => [s.Id, s.Name, s.Status.State])).toEqual([
      [sleeping, 'cli/sleeps', 'RUNNING'],
      [failing, 'cli/fails', 'FAILED'],
    ]);

    const { Step: failed } = (await aws(
      'describe-step',
      '--cluster-id',
      clusterId,
      '--step-id',
      failing,
    )) as {
      Step: { Config: unknown; Status: { State: string; FailureDetails: Record<string, string> } };
    };
    expect(failed.Config).toMatchObject({ Jar: 'command-runner.jar', Args: steps[0]!.Args });
    expect(failed.Status.State).toBe('FAILED');
    const details = failed.Status.FailureDetails;
    expect(details.Reason).toBe('ValueError: from the CLI (exit code 3)');
    expect(details.LogFile).toMatch(/^file:\/\/\/.*\/stderr$/);
    expect(details.LogFile!.startsWith(`${cluster.LogUri}${clusterId}/steps/${failing}/`)).toBe(true);
    expect(fs.readFileSync(fileURLToPath(details.LogFile!), 'utf8')).toContain('ValueError: from the CLI');

    expect(await aws('cancel-steps', '--cluster-id', clusterId, '--step-ids', sleeping)).toEqual({
      CancelStepsInfoList: [{ StepId: sleeping, Status: 'SUBMITTED', Reason: '' }],
    });
    expect((await waitForState(client, clusterId, sleeping, TERMINAL)).Status?.State).toBe('CANCELLED');
  }, 60_000);

  it('keeps an idle keep-alive socket open longer than clients reuse it (no ECONNRESET after 6 s)', async () => {
    const { emr, clusterId } = await start();
    // One socket at most: the second call either reuses it or must open a new one.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<net.Socket>();
    agent.on('free', (socket: net.Socket) => sockets.add(socket));
    const client = new EMRClient({
      endpoint: emr.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1, // a reset must fail the test, not be retried away
      requestHandler: { httpAgent: agent },
    });
    try {
      await client.send(new DescribeClusterCommand({ ClusterId: clusterId }));
      // Longer than Node's default keepAliveTimeout (5 s), after which the old server hung up.
      await sleep(6_000);
      await client.send(new ListStepsCommand({ ClusterId: clusterId }));
      expect(sockets.size).toBe(1);
    } finally {
      client.destroy();
      agent.destroy();
    }
  }, 20_000);
});

const AWS_CLI = path.join(REPO, '.venv', 'bin', 'aws');

/**
 * The real AWS CLI (spark/requirements-dev.txt) with placeholder credentials in its environment
 * only; HOME and the config files point at an empty directory, so no profile of this machine's
 * user is read.
 */
async function awsCli(home: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(AWS_CLI, args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      AWS_CONFIG_FILE: path.join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
      AWS_ACCESS_KEY_ID: 'placeholder-access-key-id',
      AWS_SECRET_ACCESS_KEY: 'placeholder-secret-access-key',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    },
    timeout: 30_000,
  });
  return stdout;
}
