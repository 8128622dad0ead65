import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { cacheDir } from './cache-dir';
import { ClassDataArchive } from './class-data';
import { describeFailure, translateStep, type CommandOptions } from './command';
import { stepLogBytes } from './step-input';
import {
  MAX_ACTIVE_STEPS,
  MAX_STEP_STRING_CHARS,
  validation,
  type ActionOnFailure,
  type StepConfigInput,
  type StepState,
} from './protocol';

export const LOST_PROCESS_REASON = 'local EMR lost the step process (restarted)';
const RUNNER = path.join(__dirname, 'step-runner.js');
const STATE_VERSION = 1;
const KILL_GRACE_MS = 5_000;
const STDERR_TAIL_BYTES = 64 * 1024;

export interface StepRecord {
  id: string;
  clusterId: string;
  /** Creation order; ties in CreationDateTime are common, so ordering and markers use this. */
  seq: number;
  name: string;
  actionOnFailure: ActionOnFailure;
  jar: string;
  args: string[];
  properties: Record<string, string>;
  mainClass?: string;
  state: StepState;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  stateChangeMessage?: string;
  failure?: { reason: string; message: string; logFile: string };
  runnerPid?: number;
  /** What the runner's command line carries to tell it from a reused pid; the step id if unset. */
  runnerTag?: string;
  /** The command's pid, which is also its process group (the runner starts it detached). */
  pgid?: number;
  exitCode?: number;
  exitSignal?: string;
  cancelSignal?: NodeJS.Signals;
  cancelSignalSent?: NodeJS.Signals;
}

interface PersistedState {
  version: number;
  clusterCreatedAt: number;
  nextSeq: number;
  stats: { addJobFlowSteps: number; stepsByName: Record<string, number> };
  steps: StepRecord[];
}

export interface EngineConfig extends CommandOptions {
  stateDir: string;
  /** Start spark-submit drivers from a class-data-sharing archive (dumped by the first step). */
  classDataSharing?: boolean;
  /** Where the archives are kept (default: `cds` in the machine's Sparkify cache). */
  classDataDir?: string;
  clusterId: string;
  stepConcurrency: number;
  pythonPath: string;
  pollIntervalMs: number;
  /** Added to every step's environment (kept in memory only, never in state.json). */
  stepEnv?: Record<string, string>;
}

export interface CancelInfo {
  StepId: string;
  Status: 'SUBMITTED' | 'FAILED';
  Reason: string;
}

const ACTIVE: ReadonlySet<StepState> = new Set(['RUNNING', 'CANCEL_PENDING']);

/** The step queue of one local cluster, persisted so that it survives a restart of the server. */
export class StepEngine {
  private state: PersistedState;
  private readonly stateFile: string;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Changed since the last save (see save). */
  private dirty = false;
  /** The runner serving this server's steps, started ahead of the first: node's start is paid once. */
  private standby?: { proc: ChildProcess; tag: string };
  /** Exits the standby runner could not write to a step's exit_code, told on its stdout instead. */
  private readonly unrecordedExits = new Map<string, ExitCode & { why: string }>();

  private readonly classData: ClassDataArchive;

  constructor(private readonly cfg: EngineConfig) {
    this.stateFile = path.join(cfg.stateDir, 'state.json');
    fs.mkdirSync(cfg.stateDir, { recursive: true });
    this.state = this.load();
    this.classData = new ClassDataArchive(
      cfg.classDataDir ?? path.join(cacheDir(), 'cds'),
      cfg.sparkSubmit,
      cfg.classDataSharing ?? true,
      cfg.classPath ?? [],
    );
  }

  get clusterCreatedAt(): number {
    return this.state.clusterCreatedAt;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.cfg.pollIntervalMs);
    this.timer.unref();
    this.tick();
    this.prepareStandby();
  }

  stepDir(stepId: string): string {
    return path.join(this.cfg.stateDir, 'logs', this.cfg.clusterId, 'steps', stepId);
  }

  steps(): StepRecord[] {
    return this.state.steps.filter((s) => s.clusterId === this.cfg.clusterId);
  }

  get(stepId: string): StepRecord | undefined {
    return this.state.steps.find((s) => s.id === stepId && s.clusterId === this.cfg.clusterId);
  }

  hasActiveSteps(): boolean {
    return this.steps().some((s) => ACTIVE.has(s.state));
  }

  stats() {
    const byState: Partial<Record<StepState, number>> = {};
    for (const step of this.steps()) byState[step.state] = (byState[step.state] ?? 0) + 1;
    return { ...structuredClone(this.state.stats), steps: { total: this.steps().length, byState } };
  }

  addSteps(configs: readonly StepConfigInput[]): string[] {
    const active = this.steps().filter((s) => s.state === 'PENDING' || ACTIVE.has(s.state)).length;
    if (active + configs.length > MAX_ACTIVE_STEPS) {
      throw validation(
        `Maximum number of active steps(State = 'Running', 'Pending' or 'Cancel_Pending') for cluster exceeded.`,
      );
    }
    for (const config of configs) {
      const action = config.ActionOnFailure ?? 'TERMINATE_CLUSTER';
      if (this.cfg.stepConcurrency > 1 && action !== 'CONTINUE') {
        throw validation(
          `ActionOnFailure ${action} is not supported when StepConcurrencyLevel is greater than 1; use CONTINUE.`,
        );
      }
      const hjs = config.HadoopJarStep;
      const chars = [hjs.Jar, hjs.MainClass ?? '', ...(hjs.Args ?? [])]
        .concat((hjs.Properties ?? []).flatMap((p) => [p.Key ?? '', p.Value ?? '']))
        .reduce((n, s) => n + s.length, 0);
      if (chars > MAX_STEP_STRING_CHARS) {
        throw validation(`The strings of step '${config.Name}' exceed ${MAX_STEP_STRING_CHARS} characters.`);
      }
    }
    const now = Date.now();
    const ids = configs.map((config) => {
      const hjs = config.HadoopJarStep;
      const step: StepRecord = {
        id: this.newStepId(),
        clusterId: this.cfg.clusterId,
        seq: this.state.nextSeq++,
        name: config.Name,
        actionOnFailure: config.ActionOnFailure ?? 'TERMINATE_CLUSTER',
        jar: hjs.Jar,
        args: hjs.Args ?? [],
        properties: Object.fromEntries((hjs.Properties ?? []).map((p) => [p.Key ?? '', p.Value ?? ''])),
        ...(hjs.MainClass !== undefined ? { mainClass: hjs.MainClass } : {}),
        state: 'PENDING',
        createdAt: now,
      };
      this.state.steps.push(step);
      const byName = this.state.stats.stepsByName;
      byName[step.name] = (byName[step.name] ?? 0) + 1;
      return step.id;
    });
    this.state.stats.addJobFlowSteps++;
    // Saved before the answer, with whatever scheduling started: an accepted step survives a crash.
    try {
      this.schedule();
    } finally {
      this.save();
    }
    return ids;
  }

  cancel(stepIds: readonly string[], option: 'SEND_INTERRUPT' | 'TERMINATE_PROCESS'): CancelInfo[] {
    const signal: NodeJS.Signals = option === 'TERMINATE_PROCESS' ? 'SIGKILL' : 'SIGTERM';
    const infos = stepIds.map((stepId): CancelInfo => {
      const step = this.get(stepId);
      if (!step) return { StepId: stepId, Status: 'FAILED', Reason: `Step id '${stepId}' is not valid.` };
      switch (step.state) {
        case 'PENDING':
          this.finish(step, 'CANCELLED', { message: 'Cancelled by the user.' });
          return { StepId: stepId, Status: 'SUBMITTED', Reason: '' };
        case 'RUNNING':
        case 'CANCEL_PENDING':
          // A repeated request may escalate SIGTERM to SIGKILL, never the other way round.
          if (step.state === 'RUNNING' || signal === 'SIGKILL') step.cancelSignal = signal;
          step.state = 'CANCEL_PENDING';
          step.stateChangeMessage ??= 'Cancelled by the user.';
          this.sendCancelSignal(step);
          return { StepId: stepId, Status: 'SUBMITTED', Reason: '' };
        case 'CANCELLED':
          return { StepId: stepId, Status: 'SUBMITTED', Reason: '' };
        default:
          return {
            StepId: stepId,
            Status: 'FAILED',
            Reason: `Step ${stepId} is in state ${step.state} and cannot be cancelled.`,
          };
      }
    });
    try {
      this.schedule();
    } finally {
      this.save();
    }
    return infos;
  }

  /**
   * Stops watching. Step runners are left alone by default so that the next server instance
   * re-attaches them; `killSteps` stops them and records the steps as CANCELLED.
   */
  async stop(opts: { killSteps?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.dropStandby();
    if (this.timer) clearInterval(this.timer);
    if (opts.killSteps) await this.killActiveSteps();
    this.save();
  }

  /** Closing its stdin tells the standby runner there will be no more steps: it exits once its own have ended. */
  private dropStandby(): void {
    this.standby?.proc.stdin?.destroy();
    this.standby?.proc.stdout?.destroy();
    this.standby = undefined;
  }

  /**
   * Kills the active steps at once, synchronously (for `process.on('exit')` and a hurried stop):
   * SIGKILL to each command's process group and to its runner, and the steps recorded CANCELLED.
   */
  killActiveStepsSync(): void {
    this.stopped = true;
    this.dropStandby();
    if (this.timer) clearInterval(this.timer);
    let killed = false;
    for (const step of this.steps().filter((s) => ACTIVE.has(s.state))) {
      this.readPgid(step);
      if (step.pgid) signalGroup(step.pgid, 'SIGKILL');
      if (step.runnerPid && this.runnerAlive(step)) signalPid(step.runnerPid, 'SIGKILL');
      step.stateChangeMessage ??= 'Cancelled because the local EMR server stopped.';
      step.state = 'CANCELLED';
      step.endedAt = Date.now();
      killed = true;
    }
    if (killed || this.dirty) this.save();
  }

  private async killActiveSteps(): Promise<void> {
    const active = () => this.steps().filter((s) => ACTIVE.has(s.state));
    for (const step of active()) {
      // CANCEL_PENDING makes the exit that follows count as a cancellation, not a failure.
      step.state = 'CANCEL_PENDING';
      step.stateChangeMessage ??= 'Cancelled because the local EMR server stopped.';
    }
    const kill = (signal: NodeJS.Signals) => {
      for (const step of active()) {
        this.readPgid(step);
        if (step.pgid) signalGroup(step.pgid, signal);
        // Without a pgid the command may not have started; the runner forwards or exits.
        else if (step.runnerPid && this.runnerAlive(step)) signalPid(step.runnerPid, signal);
      }
    };
    const waitForExit = async (ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        for (const step of active()) this.observe(step, { stopping: true });
        if (active().length === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    kill('SIGTERM');
    await waitForExit(KILL_GRACE_MS);
    kill('SIGKILL');
    await waitForExit(1_000);
    for (const step of active()) this.finish(step, 'CANCELLED', {});
  }

  private newStepId(): string {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    for (;;) {
      let id = 's-';
      for (let i = 0; i < 13; i++) id += alphabet[randomInt(alphabet.length)];
      if (!this.state.steps.some((s) => s.id === id)) return id;
    }
  }

  private tick(): void {
    if (this.stopped) return;
    try {
      for (const step of this.steps()) {
        if (ACTIVE.has(step.state)) this.observe(step);
      }
      this.schedule();
    } finally {
      if (this.dirty) this.save();
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const steps = this.steps();
    let free = this.cfg.stepConcurrency - steps.filter((s) => ACTIVE.has(s.state)).length;
    for (const step of steps.filter((s) => s.state === 'PENDING').sort((a, b) => a.seq - b.seq)) {
      if (free <= 0) break;
      if (this.launch(step)) free--;
    }
  }

  private runnerEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ...this.cfg.stepEnv,
      PYSPARK_PYTHON: this.cfg.pythonPath,
      PYSPARK_DRIVER_PYTHON: this.cfg.pythonPath,
    };
  }

  /**
   * Starts the standby runner if there is none. It serves every step this server launches, so
   * node's start is paid once, not per step; it exits by itself when this server goes and its
   * steps have ended.
   */
  private prepareStandby(): void {
    if (this.stopped || this.standby) return;
    const tag = `standby-${randomBytes(8).toString('hex')}`;
    const proc = spawn(process.execPath, [RUNNER, '--standby', tag], {
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
      env: this.runnerEnv(),
    });
    proc.on('error', () => undefined);
    proc.stdin!.on('error', () => undefined);
    // A line per finished step: observe it now rather than at the next poll.
    let pending = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      pending += chunk;
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        const [id, code, signal, why] = pending.slice(0, end).split('\t');
        pending = pending.slice(end + 1);
        const parsed = Number.parseInt(code ?? '', 10);
        if (id && Number.isInteger(parsed)) {
          this.unrecordedExits.set(id, { code: parsed, signal: signal || null, why: why ?? '' });
        }
      }
      if (!this.stopped) this.tick();
    });
    const standby = { proc, tag };
    proc.once('exit', () => {
      if (this.standby === standby) this.standby = undefined;
      if (!this.stopped) this.tick();
    });
    proc.unref();
    for (const pipe of [proc.stdin, proc.stdout]) (pipe as unknown as { unref?: () => void }).unref?.();
    this.standby = standby;
  }

  /** The standby runner given this step, or (none standing by) a runner started for it alone. */
  private startRunner(step: StepRecord, dir: string): ChildProcess {
    const standby = this.standby;
    if (standby && standby.proc.exitCode === null && standby.proc.pid !== undefined) {
      standby.proc.stdin!.write(`${dir}\t${step.id}\n`);
      step.runnerTag = standby.tag;
      return standby.proc;
    }
    const runner = spawn(process.execPath, [RUNNER, dir, step.id], {
      detached: true,
      stdio: 'ignore',
      env: this.runnerEnv(),
    });
    // Polling alone would do; the exit event only makes short steps finish sooner.
    runner.on('exit', () => {
      if (!this.stopped && ACTIVE.has(step.state)) this.tick();
    });
    runner.on('error', () => undefined); // a failed spawn shows up as a missing runner
    runner.unref();
    return runner;
  }

  /** Starts the step's runner; false when the step failed without starting a process. */
  private launch(step: StepRecord): boolean {
    const dir = this.stepDir(step.id);
    fs.mkdirSync(dir, { recursive: true });
    const spark = step.args[0] === 'spark-submit';
    const translation = translateStep(step.jar, step.args, this.cfg, {
      driverJavaOptions: spark ? this.classData.optionsFor(step.id) : undefined,
      inputBytes: spark ? stepLogBytes(step.args.slice(1)) : undefined,
    });
    if (!translation.ok) {
      fs.appendFileSync(path.join(dir, 'stderr'), `${translation.reason}\n`);
      step.startedAt = Date.now();
      this.finish(step, 'FAILED', {
        failure: {
          reason: translation.reason,
          message: translation.reason,
          logFile: path.join(dir, 'stderr'),
        },
      });
      return false;
    }
    const spec = { command: translation.command, args: translation.args, cwd: dir };
    fs.writeFileSync(path.join(dir, 'command.json'), `${JSON.stringify(spec, null, 2)}\n`);
    const runner = this.startRunner(step, dir);
    step.state = 'RUNNING';
    step.startedAt = Date.now();
    if (runner.pid !== undefined) step.runnerPid = runner.pid;
    this.dirty = true;
    this.prepareStandby();
    return true;
  }

  /** Checks one RUNNING / CANCEL_PENDING step for its exit code or a vanished runner. */
  private observe(step: StepRecord, opts: { stopping?: boolean } = {}): void {
    const dir = this.stepDir(step.id);
    if (this.readPgid(step) && !opts.stopping) this.sendCancelSignal(step);
    // Liveness first, exit code second: the runner writes exit_code before it exits, so a dead
    // runner with no exit_code really lost its command.
    const alive = step.runnerPid !== undefined && this.runnerAlive(step);
    const recorded = readExitCode(dir);
    // Known to this server only: the step's end is kept in its state, not in its directory.
    const told = recorded ? undefined : this.unrecordedExits.get(step.id);
    const exit = recorded ?? told;
    if (exit) {
      this.unrecordedExits.delete(step.id);
      step.exitCode = exit.code;
      if (exit.signal) step.exitSignal = exit.signal;
      const message = told ? `local EMR: ${told.why}` : undefined;
      if (step.state === 'CANCEL_PENDING') this.finish(step, 'CANCELLED', { message });
      else if (exit.code === 0) this.finish(step, 'COMPLETED', { message });
      else {
        const failure = this.failureDetails(step, exit.code, exit.signal);
        // Its stderr says why too, unless that could not be written either.
        if (told && !failure.message.includes(told.why)) failure.message += `\n${message}`;
        this.finish(step, 'FAILED', { failure });
      }
      return;
    }
    if (alive) return;
    // Whatever the runner left behind would run unobserved, so it goes too.
    if (step.pgid) signalGroup(step.pgid, 'SIGKILL');
    const stderr = path.join(dir, 'stderr');
    if (step.state === 'CANCEL_PENDING') {
      this.finish(step, 'CANCELLED', {});
    } else {
      this.finish(step, 'FAILED', {
        failure: { reason: LOST_PROCESS_REASON, message: tail(stderr), logFile: stderr },
      });
    }
  }

  private failureDetails(step: StepRecord, code: number, signal: string | null) {
    const logFile = path.join(this.stepDir(step.id), 'stderr');
    const { reason, message } = describeFailure(tail(logFile), code, signal);
    return { reason, message, logFile };
  }

  private finish(
    step: StepRecord,
    state: 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'INTERRUPTED',
    detail: { message?: string; failure?: StepRecord['failure'] },
  ): void {
    step.state = state;
    step.endedAt = Date.now();
    this.classData.stepEnded(step.id, state === 'COMPLETED');
    if (detail.message) step.stateChangeMessage = detail.message;
    if (detail.failure) step.failure = detail.failure;
    if (state === 'FAILED' && step.actionOnFailure !== 'CONTINUE') {
      // EMR cancels the steps queued behind a failed step unless it says CONTINUE. The local
      // cluster never terminates, so TERMINATE_* behaves like CANCEL_AND_WAIT.
      for (const other of this.steps()) {
        if (other.state === 'PENDING') {
          other.state = 'CANCELLED';
          other.endedAt = step.endedAt;
          other.stateChangeMessage = `Cancelled because step ${step.id} failed.`;
        }
      }
    }
    this.dirty = true;
  }

  private readPgid(step: StepRecord): boolean {
    if (step.pgid) return true;
    try {
      const pid = Number.parseInt(fs.readFileSync(path.join(this.stepDir(step.id), 'pid'), 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0) {
        step.pgid = pid;
        this.dirty = true;
        return true;
      }
    } catch {
      // not started yet
    }
    return false;
  }

  private sendCancelSignal(step: StepRecord): void {
    if (
      step.state !== 'CANCEL_PENDING' ||
      !step.cancelSignal ||
      step.cancelSignalSent === step.cancelSignal
    ) {
      return;
    }
    if (!this.readPgid(step)) return; // sent by observe() once the command has a pid
    signalGroup(step.pgid as number, step.cancelSignal);
    step.cancelSignalSent = step.cancelSignal;
    this.dirty = true;
  }

  private runnerAlive(step: StepRecord): boolean {
    const pid = step.runnerPid as number;
    try {
      // Pids get reused across restarts; the runner's command line names its step.
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(step.runnerTag ?? step.id);
    } catch {
      if (fs.existsSync('/proc/self/cmdline')) return false;
      try {
        process.kill(pid, 0);
        return true;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
  }

  private load(): PersistedState {
    let text: string;
    try {
      text = fs.readFileSync(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return {
        version: STATE_VERSION,
        clusterCreatedAt: Date.now(),
        nextSeq: 1,
        stats: { addJobFlowSteps: 0, stepsByName: {} },
        steps: [],
      };
    }
    const state = JSON.parse(text) as PersistedState;
    if (state.version !== STATE_VERSION) {
      throw new Error(`${this.stateFile}: unsupported state version ${String(state.version)}`);
    }
    return state;
  }

  /**
   * Writes the whole state. Changes made inside one call (a tick, a request) mark it dirty and are
   * written once at the end of that call, not once each: the file holds every step, so a write per
   * change made the server's cost grow with the cluster's history.
   */
  private save(): void {
    this.dirty = false;
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.state));
    fs.renameSync(tmp, this.stateFile);
  }
}

interface ExitCode {
  code: number;
  signal: string | null;
}

function readExitCode(dir: string): ExitCode | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'exit_code'), 'utf8');
  } catch {
    return undefined;
  }
  const [code, signal] = text.split('\n');
  const parsed = Number.parseInt(code ?? '', 10);
  return { code: Number.isInteger(parsed) ? parsed : 1, signal: signal ? signal : null };
}

function tail(file: string): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, STDERR_TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  signalPid(-pgid, signal);
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
