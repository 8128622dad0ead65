import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { StepEngine, type StepRecord } from './engine';
import {
  EmrError,
  epochSeconds,
  invalidRequest,
  isAction,
  LIST_PAGE_SIZE,
  parseRequest,
  type Action,
  type Request,
} from './protocol';

const REPO_ROOT = path.resolve(__dirname, '../..');
const MAX_BODY_BYTES = 1024 * 1024;
const JSON_11 = 'application/x-amz-json-1.1';

export interface LocalEmrOptions {
  /** Interface to bind; loopback by default because the API is unauthenticated. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  stateDir: string;
  clusterId?: string;
  stepConcurrency?: number;
  /** Local spark-submit used for `spark-submit` steps. */
  sparkSubmit?: string;
  /** PYSPARK_PYTHON / PYSPARK_DRIVER_PYTHON of every step. */
  pythonPath?: string;
  /** Spark master added when a spark-submit step names none. */
  master?: string;
  /** Commands command-runner.jar may run as Args[0]; tests add cheap ones such as `node`. */
  allowedCommands?: string[];
  /** How often running steps are checked for their exit code. */
  pollIntervalMs?: number;
  /** One line per request on stderr. */
  verbose?: boolean;
  /**
   * Extra environment of every step, on top of the server's own (e.g. PGPASSWORD for the
   * warehouse load): how a secret reaches a step without being one of its arguments.
   */
  stepEnv?: Record<string, string>;
}

export interface LocalEmr {
  endpoint: string;
  clusterId: string;
  stateDir: string;
  /** Stops the server; step processes keep running unless `killSteps` is set. */
  close(opts?: { killSteps?: boolean }): Promise<void>;
}

// Two servers on one state directory would both launch its PENDING steps.
const openStateDirs = new Set<string>();

export async function startLocalEmr(opts: LocalEmrOptions): Promise<LocalEmr> {
  const stateDir = path.resolve(opts.stateDir);
  const clusterId = opts.clusterId ?? 'j-SPARKIFYLOCAL';
  const stepConcurrency = opts.stepConcurrency ?? 1;
  if (!Number.isInteger(stepConcurrency) || stepConcurrency < 1 || stepConcurrency > 256) {
    throw new Error(`stepConcurrency must be an integer in 1..256, got ${stepConcurrency}`);
  }
  const releaseLock = acquireLock(stateDir);
  let engine: StepEngine;
  try {
    engine = new StepEngine({
      stateDir,
      clusterId,
      stepConcurrency,
      sparkSubmit: opts.sparkSubmit ?? path.join(REPO_ROOT, '.venv', 'bin', 'spark-submit'),
      pythonPath: opts.pythonPath ?? path.join(REPO_ROOT, '.venv', 'bin', 'python'),
      master: opts.master ?? 'local[2]',
      allowedCommands: opts.allowedCommands ?? ['spark-submit'],
      pollIntervalMs: opts.pollIntervalMs ?? 200,
      stepEnv: opts.stepEnv ?? {},
    });
  } catch (err) {
    releaseLock();
    throw err;
  }
  const logUri = pathToFileURL(path.join(stateDir, 'logs') + path.sep).href;
  const calls: Record<string, number> = {};

  const api = new EmrApi(engine, { clusterId, stepConcurrency, logUri });
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return;
      sendError(res, err instanceof EmrError ? err : new EmrError('InternalServerError', String(err), 500));
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    if (req.method === 'GET' && url.pathname === '/_local/health') {
      return sendJson(res, 200, { ok: true, clusterId, stateDir }, 'application/json');
    }
    if (req.method === 'GET' && url.pathname === '/_local/stats') {
      return sendJson(res, 200, { ...engine.stats(), calls }, 'application/json');
    }
    const stepMatch = /^\/_local\/steps\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && stepMatch) {
      const step = engine.get(decodeURIComponent(stepMatch[1] as string));
      return step
        ? sendJson(res, 200, { ...step, logDir: engine.stepDir(step.id) }, 'application/json')
        : sendJson(res, 404, { message: 'no such step' }, 'application/json');
    }
    if (req.method !== 'POST' || url.pathname !== '/') {
      return sendError(res, new EmrError('UnknownOperationException', `${req.method} ${url.pathname}`, 404));
    }
    const target = String(req.headers['x-amz-target'] ?? '');
    const action = target.startsWith('ElasticMapReduce.') ? target.slice('ElasticMapReduce.'.length) : '';
    calls[action || target] = (calls[action || target] ?? 0) + 1;
    const body = await readBody(req);
    let response: unknown;
    try {
      if (!isAction(action)) throw new EmrError('UnknownOperationException', `Unknown operation ${target}`);
      let input: unknown;
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch {
        throw new EmrError('SerializationException', 'The request body is not valid JSON.');
      }
      response = api.call(action, input);
    } catch (err) {
      if (opts.verbose) logRequest(action || target, body, err);
      if (err instanceof EmrError) return sendError(res, err);
      throw err;
    }
    if (opts.verbose) logRequest(action, body, undefined, response);
    sendJson(res, 200, response, JSON_11);
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    releaseLock();
    throw err;
  }
  engine.start();
  const address = server.address() as AddressInfo;
  const host = ['0.0.0.0', '::'].includes(address.address) ? '127.0.0.1' : address.address;
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    endpoint,
    clusterId,
    stateDir,
    close(closeOpts = {}) {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        try {
          await engine.stop(closeOpts);
        } finally {
          releaseLock();
        }
      })();
      return closing;
    },
  };
}

/** The EMR actions, each taking the parsed request body and returning the response body. */
class EmrApi {
  constructor(
    private readonly engine: StepEngine,
    private readonly cluster: { clusterId: string; stepConcurrency: number; logUri: string },
  ) {}

  call(action: Action, body: unknown): unknown {
    switch (action) {
      case 'AddJobFlowSteps':
        return this.addJobFlowSteps(parseRequest(action, body));
      case 'DescribeStep':
        return this.describeStep(parseRequest(action, body));
      case 'ListSteps':
        return this.listSteps(parseRequest(action, body));
      case 'CancelSteps':
        return this.cancelSteps(parseRequest(action, body));
      case 'DescribeCluster':
        return this.describeCluster(parseRequest(action, body));
    }
  }

  private checkCluster(id: string): void {
    if (id !== this.cluster.clusterId) throw invalidRequest(`Cluster id '${id}' is not valid.`);
  }

  private addJobFlowSteps(req: Request<'AddJobFlowSteps'>) {
    this.checkCluster(req.JobFlowId);
    return { StepIds: this.engine.addSteps(req.Steps) };
  }

  private describeStep(req: Request<'DescribeStep'>) {
    this.checkCluster(req.ClusterId);
    const step = this.engine.get(req.StepId);
    if (!step) throw invalidRequest(`Step id '${req.StepId}' is not valid.`);
    return { Step: stepShape(step) };
  }

  private listSteps(req: Request<'ListSteps'>) {
    this.checkCluster(req.ClusterId);
    // The marker is the seq of the last step returned, so steps added while a client pages do
    // not shift the pages it has yet to read.
    let before = Number.POSITIVE_INFINITY;
    if (req.Marker !== undefined) {
      const match = /^seq:(\d+)$/.exec(Buffer.from(req.Marker, 'base64url').toString('utf8'));
      if (!match) throw invalidRequest('Marker is not valid.');
      before = Number(match[1]);
    }
    const states = req.StepStates?.length ? new Set(req.StepStates) : undefined;
    const ids = req.StepIds?.length ? new Set(req.StepIds) : undefined;
    const matching = this.engine
      .steps()
      .filter((s) => s.seq < before && (!states || states.has(s.state)) && (!ids || ids.has(s.id)))
      .sort((a, b) => b.seq - a.seq);
    const page = matching.slice(0, LIST_PAGE_SIZE);
    const last = page[page.length - 1];
    return {
      Steps: page.map(stepShape),
      ...(matching.length > LIST_PAGE_SIZE && last
        ? { Marker: Buffer.from(`seq:${last.seq}`).toString('base64url') }
        : {}),
    };
  }

  private cancelSteps(req: Request<'CancelSteps'>) {
    this.checkCluster(req.ClusterId);
    return {
      CancelStepsInfoList: this.engine.cancel(req.StepIds, req.StepCancellationOption ?? 'SEND_INTERRUPT'),
    };
  }

  private describeCluster(req: Request<'DescribeCluster'>) {
    this.checkCluster(req.ClusterId);
    const created = epochSeconds(this.engine.clusterCreatedAt);
    return {
      Cluster: {
        Id: this.cluster.clusterId,
        Name: 'sparkify-local',
        Status: {
          State: this.engine.hasActiveSteps() ? 'RUNNING' : 'WAITING',
          StateChangeReason: {},
          Timeline: { CreationDateTime: created, ReadyDateTime: created },
        },
        LogUri: this.cluster.logUri,
        StepConcurrencyLevel: this.cluster.stepConcurrency,
        ReleaseLabel: 'emr-7.12.0',
        Applications: [{ Name: 'Spark', Version: '3.5.6' }],
        AutoTerminate: false,
        TerminationProtected: false,
        VisibleToAllUsers: true,
        NormalizedInstanceHours: 0,
        MasterPublicDnsName: 'localhost',
        Tags: [],
      },
    };
  }
}

/** A step as DescribeStep (Step) and ListSteps (StepSummary) return it; the two share a shape. */
function stepShape(step: StepRecord) {
  return {
    Id: step.id,
    Name: step.name,
    Config: {
      Jar: step.jar,
      Properties: step.properties,
      ...(step.mainClass !== undefined ? { MainClass: step.mainClass } : {}),
      Args: step.args,
    },
    ActionOnFailure: step.actionOnFailure,
    Status: {
      State: step.state,
      StateChangeReason: step.stateChangeMessage ? { Message: step.stateChangeMessage } : {},
      ...(step.failure
        ? {
            FailureDetails: {
              Reason: step.failure.reason,
              Message: step.failure.message,
              LogFile: step.failure.logFile,
            },
          }
        : {}),
      Timeline: {
        CreationDateTime: epochSeconds(step.createdAt),
        ...(step.startedAt !== undefined ? { StartDateTime: epochSeconds(step.startedAt) } : {}),
        ...(step.endedAt !== undefined ? { EndDateTime: epochSeconds(step.endedAt) } : {}),
      },
    },
  };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) reject(new EmrError('ValidationException', 'Request body too large.'));
      else resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, contentType: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(text);
}

function sendError(res: http.ServerResponse, err: EmrError): void {
  res.setHeader('x-amzn-ErrorType', err.type);
  sendJson(res, err.status, { __type: err.type, message: err.message }, JSON_11);
}

function logRequest(action: string, body: Buffer, err?: unknown, response?: unknown): void {
  let stepId = '';
  try {
    const input = JSON.parse(body.toString('utf8') || '{}') as { StepId?: string; StepIds?: string[] };
    const out = response as { StepIds?: string[] } | undefined;
    stepId = input.StepId ?? (input.StepIds ?? out?.StepIds ?? []).join(',');
  } catch {
    // unparseable bodies are logged without ids
  }
  const outcome = err ? ` -> ${err instanceof Error ? err.name : 'error'}` : '';
  process.stderr.write(`local-emr ${action}${stepId ? ` ${stepId}` : ''}${outcome}\n`);
}

/** A pid file guarding the state directory against a second server in another process. */
function acquireLock(stateDir: string): () => void {
  if (openStateDirs.has(stateDir)) throw new Error(`a local EMR server already uses ${stateDir}`);
  fs.mkdirSync(stateDir, { recursive: true });
  const lockFile = path.join(stateDir, 'server.pid');
  try {
    const pid = Number.parseInt(fs.readFileSync(lockFile, 'utf8'), 10);
    if (pid !== process.pid && pidAlive(pid)) {
      throw new Error(`a local EMR server (pid ${pid}) already uses ${stateDir}`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.writeFileSync(lockFile, `${process.pid}\n`);
  openStateDirs.add(stateDir);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    openStateDirs.delete(stateDir);
    fs.rmSync(lockFile, { force: true });
  };
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
