import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { REPO_ROOT } from '../repo';
import { StepEngine, type StepRecord } from './engine';
import {
  EmrError,
  epochSeconds,
  invalidRequest,
  isAction,
  LIST_PAGE_SIZE,
  parseRequest,
  type Action,
  type ClusterState,
  type Request,
} from './protocol';

const MAX_BODY_BYTES = 1024 * 1024;
const JSON_11 = 'application/x-amz-json-1.1';
/**
 * Node closes an idle keep-alive socket after 5 s by default, while the AWS SDKs' agents keep idle
 * sockets for reuse with no idle limit of their own: a request written on a socket the server is
 * just closing fails with ECONNRESET (a demo hit it on AddJobFlowSteps).
 * 65 s is the usual setting for Node behind an AWS load balancer (idle timeout 60 s) and is above
 * the longest DescribeStep poll interval (60 s), so a polling client finds its socket open; a
 * client idle longer still meets the same race, only far more rarely. headersTimeout must stay
 * above keepAliveTimeout.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
export const HEADERS_TIMEOUT_MS = 66_000;
/** The account id in the cluster's ARN; the local EMR has no account. */
const LOCAL_ACCOUNT = '000000000000';

export interface LocalEmrOptions {
  /** Interface to bind; loopback by default because the API is unauthenticated. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  stateDir: string;
  clusterId?: string;
  /** The region in the cluster's ARN. */
  region?: string;
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
  /**
   * Start spark-submit drivers from a class-data-sharing archive, dumped by the first Spark step
   * (see class-data.ts); about two seconds off each step's start. Default on.
   */
  classDataSharing?: boolean;
  /**
   * Where the archives are kept. Default: `cds` in the machine's Sparkify cache
   * (SPARKIFY_CACHE_DIR, else ~/.cache/sparkify-lake), so every local EMR here (the demo's, each
   * test's, each bench lake's) maps the one the first of them dumped.
   */
  classDataDir?: string;
  /** One line per request on stderr. */
  verbose?: boolean;
  /**
   * Extra environment of every step, on top of the server's own (e.g. PGPASSWORD for the
   * warehouse load): how a secret reaches a step without being one of its arguments.
   */
  stepEnv?: Record<string, string>;
  /**
   * Jars the cluster puts on every Spark driver's classpath, as EMR installs its connectors on its
   * nodes: e.g. the S3A connector (`...s3aSupport()` from ./s3a gives this and sparkDefaults).
   */
  classPath?: string[];
  /** Spark settings of every spark-submit step (the cluster's spark-defaults); a step's own --conf wins. */
  sparkDefaults?: Record<string, string>;
}

export interface LocalEmr {
  endpoint: string;
  clusterId: string;
  stateDir: string;
  /** Stops the server; step processes keep running unless `killSteps` is set. */
  close(opts?: { killSteps?: boolean }): Promise<void>;
  /**
   * SIGKILLs the running steps' process groups and their runners at once, synchronously, for an
   * `exit` handler or a hurried stop; the server itself goes with the process.
   */
  killStepsSync(): void;
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
      classDataSharing: opts.classDataSharing ?? true,
      ...(opts.classDataDir ? { classDataDir: opts.classDataDir } : {}),
      stepEnv: opts.stepEnv ?? {},
      classPath: opts.classPath ?? [],
      sparkDefaults: opts.sparkDefaults ?? {},
    });
  } catch (err) {
    releaseLock();
    throw err;
  }
  const logUri = pathToFileURL(path.join(stateDir, 'logs') + path.sep).href;
  const calls: Record<string, number> = {};

  const api = new EmrApi(engine, { clusterId, region: opts.region ?? 'us-east-1', stepConcurrency, logUri });
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

  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;

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
    killStepsSync() {
      engine.killActiveStepsSync();
    },
  };
}

/** The EMR actions, each taking the parsed request body and returning the response body. */
class EmrApi {
  constructor(
    private readonly engine: StepEngine,
    private readonly cluster: { clusterId: string; region: string; stepConcurrency: number; logUri: string },
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
      case 'ListInstanceGroups':
        return this.listInstanceGroups(parseRequest(action, body));
      case 'ListBootstrapActions':
        return this.listBootstrapActions(parseRequest(action, body));
      case 'ListClusters':
        return this.listClusters(parseRequest(action, body));
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

  /** One long-running cluster that never terminates: WAITING when idle, RUNNING with a step. */
  private status() {
    const created = epochSeconds(this.engine.clusterCreatedAt);
    const state: ClusterState = this.engine.hasActiveSteps() ? 'RUNNING' : 'WAITING';
    return {
      State: state,
      StateChangeReason: { Message: state === 'WAITING' ? 'Cluster ready to run steps.' : 'Running step' },
      Timeline: { CreationDateTime: created, ReadyDateTime: created },
    };
  }

  private get clusterArn(): string {
    const { region, clusterId } = this.cluster;
    return `arn:aws:elasticmapreduce:${region}:${LOCAL_ACCOUNT}:cluster/${clusterId}`;
  }

  private describeCluster(req: Request<'DescribeCluster'>) {
    this.checkCluster(req.ClusterId);
    return {
      Cluster: {
        Id: this.cluster.clusterId,
        Name: 'sparkify-local',
        Status: this.status(),
        // INSTANCE_GROUP: `aws emr describe-cluster` then merges in ListInstanceGroups.
        InstanceCollectionType: 'INSTANCE_GROUP',
        LogUri: this.cluster.logUri,
        ReleaseLabel: 'emr-7.12.0',
        AutoTerminate: false,
        TerminationProtected: false,
        VisibleToAllUsers: true,
        Applications: [{ Name: 'Spark', Version: '3.5.6' }],
        Tags: [],
        NormalizedInstanceHours: 0,
        MasterPublicDnsName: 'localhost',
        Configurations: [],
        ScaleDownBehavior: 'TERMINATE_AT_TASK_COMPLETION',
        ClusterArn: this.clusterArn,
        StepConcurrencyLevel: this.cluster.stepConcurrency,
        PlacementGroups: [],
      },
    };
  }

  /**
   * A single-node cluster: one MASTER instance group of one instance, which also runs the steps.
   * The instance type is nominal (the steps run on this machine).
   */
  private listInstanceGroups(req: Request<'ListInstanceGroups'>) {
    this.checkCluster(req.ClusterId);
    const created = epochSeconds(this.engine.clusterCreatedAt);
    const master = {
      Id: `ig-${idFrom(`${this.cluster.clusterId}/MASTER`)}`,
      Name: 'Master',
      Market: 'ON_DEMAND',
      InstanceGroupType: 'MASTER',
      InstanceType: 'm5.xlarge',
      RequestedInstanceCount: 1,
      RunningInstanceCount: 1,
      Status: {
        State: 'RUNNING',
        StateChangeReason: { Message: '' },
        Timeline: { CreationDateTime: created, ReadyDateTime: created },
      },
      Configurations: [],
      ConfigurationsVersion: 0,
      LastSuccessfullyAppliedConfigurations: [],
      LastSuccessfullyAppliedConfigurationsVersion: 0,
      EbsBlockDevices: [],
      ShrinkPolicy: {},
    };
    const page = pageOf('ig', [master], req.Marker);
    return { InstanceGroups: page.items, ...page.next };
  }

  private listBootstrapActions(req: Request<'ListBootstrapActions'>) {
    this.checkCluster(req.ClusterId);
    const page = pageOf('ba', [], req.Marker);
    return { BootstrapActions: page.items, ...page.next };
  }

  private listClusters(req: Request<'ListClusters'>) {
    const created = this.engine.clusterCreatedAt;
    const status = this.status();
    const summary = {
      Id: this.cluster.clusterId,
      Name: 'sparkify-local',
      Status: status,
      NormalizedInstanceHours: 0,
      ClusterArn: this.clusterArn,
    };
    const matches =
      (!req.ClusterStates?.length || req.ClusterStates.includes(status.State)) &&
      (req.CreatedAfter === undefined || created >= req.CreatedAfter) &&
      (req.CreatedBefore === undefined || created <= req.CreatedBefore);
    const page = pageOf('cluster', matches ? [summary] : [], req.Marker);
    return { Clusters: page.items, ...page.next };
  }
}

/** EMR-style id characters (13 upper-case letters and digits), stable for a given seed. */
function idFrom(seed: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const bytes = createHash('sha256').update(seed).digest();
  return Array.from(bytes.subarray(0, 13), (b) => alphabet[b % alphabet.length]).join('');
}

/** A page of a short list, 50 at a time as EMR pages; the marker is an opaque offset. */
function pageOf<T>(kind: string, items: readonly T[], marker: string | undefined) {
  let offset = 0;
  if (marker !== undefined) {
    const match = new RegExp(`^${kind}:(\\d+)$`).exec(Buffer.from(marker, 'base64url').toString('utf8'));
    if (!match) throw invalidRequest('Marker is not valid.');
    offset = Number(match[1]);
  }
  const end = offset + LIST_PAGE_SIZE;
  return {
    items: items.slice(offset, end),
    next: end < items.length ? { Marker: Buffer.from(`${kind}:${end}`).toString('base64url') } : {},
  };
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
              // A URI, as on EMR (s3://…/stderr.gz), under the cluster's LogUri.
              LogFile: fileUri(step.failure.logFile),
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

/** The engine records log paths; state files of older servers may hold either form. */
function fileUri(pathOrUri: string): string {
  return pathOrUri.startsWith('file:') ? pathOrUri : pathToFileURL(pathOrUri).href;
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
