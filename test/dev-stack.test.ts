import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { AddJobFlowStepsCommand, EMRClient } from '@aws-sdk/client-emr';

import { freePorts } from './helpers/ports';

// `sparkify dev` as a user runs it: a real process in its own process group (as a terminal's
// foreground job is), stopped by signals the way a terminal, a service manager or a crash does.

const REPO = path.resolve(__dirname, '..');

interface Dev {
  child: ChildProcess;
  stateDir: string;
  ports: { temporal: number; ui: number; emr: number };
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Dev[] = [];
const tmpDirs: string[] = [];

afterEach(() => {
  // A failed test must not leave a stack behind for the next one.
  for (const dev of started.splice(0)) {
    signalGroup(dev.child.pid!, 'SIGKILL');
    for (const pid of processesUnder(dev.stateDir)) signalGroup(pid, 'SIGKILL', pid);
  }
});

afterAll(() => {
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function startDev(args: string[] = [], ports?: Dev['ports']): Promise<Dev> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-stack-test-'));
  // Enterable by others: the embedded PostgreSQL runs as another user when the tests run as root.
  fs.chmodSync(stateDir, 0o755);
  tmpDirs.push(stateDir);
  const [temporal, ui, emr] = ports ? [ports.temporal, ports.ui, ports.emr] : await freePorts(3);
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'client/main.ts', 'dev', ...args], {
    cwd: REPO,
    detached: true, // its own process group, which the test signals as a terminal would
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      SPARKIFY_STATE_DIR: stateDir,
      SPARKIFY_DEV_TEMPORAL_PORT: String(temporal),
      SPARKIFY_DEV_UI_PORT: String(ui),
      SPARKIFY_DEV_EMR_PORT: String(emr),
    },
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const dev = {
    child,
    stateDir,
    ports: { temporal: temporal!, ui: ui!, emr: emr! },
    output: () => output,
    exited,
  };
  started.push(dev);
  return dev;
}

async function waitForOutput(dev: Dev, text: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!dev.output().includes(text)) {
    if (dev.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`sparkify dev never printed "${text}"; output:\n${dev.output()}`);
    }
    await sleep(100);
  }
}

/** The process exits within `ms`; its exit code and how long it took. */
async function exitWithin(dev: Dev, ms: number, since: number) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  const result = await Promise.race([dev.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') throw new Error(`sparkify dev still running after ${ms} ms:\n${dev.output()}`);
  return { ...result, seconds: (Date.now() - since) / 1000 };
}

/** Every port free again, and no process left that belongs to the stack's state directory. */
async function expectNothingLeft(dev: Dev, ports: number[], timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = [];
    for (const port of ports) if (!(await portFree(port))) busy.push(port);
    const left = processesUnder(dev.stateDir).map((pid) => `${pid} ${cmdline(pid)}`);
    if (busy.length === 0 && left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`ports in use: ${busy.join(', ') || '-'}; processes left: ${left.join('; ') || '-'}`);
    }
    await sleep(100);
  }
}

test('Ctrl-C Ctrl-C stops the dev stack, a running step included, and frees every port', async () => {
  const dev = await startDev();
  await waitForOutput(dev, 'ready; press Ctrl-C to stop');
  expect(dev.output()).toContain(`Web UI http://127.0.0.1:${dev.ports.ui}`);
  expect(processesUnder(dev.stateDir).length).toBeGreaterThan(0); // the temporal server (and its guard)

  // A step running in the local EMR: spark-submit of a script that would run for minutes.
  const script = path.join(dev.stateDir, 'sleep.py');
  fs.writeFileSync(script, 'import time\ntime.sleep(600)\n');
  const endpoint = `http://127.0.0.1:${dev.ports.emr}`;
  const emr = new EMRClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const out = await emr.send(
    new AddJobFlowStepsCommand({
      JobFlowId: 'j-SPARKIFYLOCAL',
      Steps: [
        {
          Name: 'dev-stack-test/sleep',
          ActionOnFailure: 'CONTINUE',
          HadoopJarStep: { Jar: 'command-runner.jar', Args: ['spark-submit', script] },
        },
      ],
    }),
  );
  emr.destroy();
  const stepId = out.StepIds![0]!;
  let pgid: number | undefined;
  const deadline = Date.now() + 20_000;
  while (!pgid) {
    if (Date.now() > deadline) throw new Error('the step never started');
    const res = await fetch(`${endpoint}/_local/steps/${stepId}`);
    pgid = ((await res.json()) as { pgid?: number }).pgid;
    if (!pgid) await sleep(100);
  }
  expect(groupAlive(pgid)).toBe(true);

  const since = Date.now();
  signalGroup(dev.child.pid!, 'SIGINT');
  await sleep(500); // a second key press, not the same one relayed
  signalGroup(dev.child.pid!, 'SIGINT');
  const exit = await exitWithin(dev, 10_000, since);
  expect(dev.output()).toContain('SIGINT again: killing the stack');
  expect(exit.code).toBe(130);
  await expectNothingLeft(dev, [dev.ports.temporal, dev.ports.ui, dev.ports.emr]);
  expect(groupAlive(pgid)).toBe(false);
  const state = JSON.parse(fs.readFileSync(path.join(dev.stateDir, 'emr', 'state.json'), 'utf8')) as {
    steps: { id: string; state: string }[];
  };
  expect(state.steps.find((s) => s.id === stepId)?.state).toBe('CANCELLED');
});

test('one SIGTERM stops the dev stack in order and exits 0', async () => {
  const dev = await startDev(['--headless']);
  await waitForOutput(dev, 'ready; press Ctrl-C to stop');
  const since = Date.now();
  dev.child.kill('SIGTERM'); // the process only, as a service manager sends it
  const exit = await exitWithin(dev, 40_000, since);
  if (exit.code !== 0) console.log(`sparkify dev exited ${exit.code}:\n${dev.output()}`);
  expect(exit).toMatchObject({ code: 0, signal: null });
  expect(dev.output()).toContain('SIGTERM: stopping the stack');
  expect(dev.output()).toContain('stopped');
  await expectNothingLeft(dev, [dev.ports.temporal, dev.ports.emr]);
  console.log(`sparkify dev stopped ${exit.seconds.toFixed(1)} s after SIGTERM`);
});

test('an error while starting (the EMR port taken) exits non-zero, says why, and stops Temporal', async () => {
  const [temporal, ui, emr] = await freePorts(3);
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(emr, '127.0.0.1', resolve));
  try {
    const dev = await startDev(['--headless'], { temporal: temporal!, ui: ui!, emr: emr! });
    const exit = await exitWithin(dev, 60_000, Date.now());
    expect(exit.code).toBe(1);
    expect(dev.output()).toContain(
      `sparkify: the local EMR cannot listen on 127.0.0.1:${emr}: the port is in use (set another with SPARKIFY_DEV_EMR_PORT or dev.emrPort)`,
    );
    expect(dev.output()).toContain(`temporal dev server on 127.0.0.1:${temporal}`); // it had started
    await expectNothingLeft(dev, [temporal!]);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('a crash no handler sees (SIGKILL) still takes the Temporal server down', async () => {
  const dev = await startDev(['--headless']);
  await waitForOutput(dev, 'temporal dev server on');
  dev.child.kill('SIGKILL');
  await exitWithin(dev, 5_000, Date.now());
  await expectNothingLeft(dev, [dev.ports.temporal], 10_000);
});

function processesUnder(stateDir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (cmdline(Number(entry)).includes(stateDir)) pids.push(Number(entry));
  }
  return pids;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals, fallbackPid?: number): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    if (fallbackPid === undefined) return;
    try {
      process.kill(fallbackPid, signal);
    } catch {
      // gone
    }
  }
}

/** Live (not zombie) members of a process group: a killed group's members are reaped late here. */
function groupAlive(pgid: number): boolean {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its closing parenthesis.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
