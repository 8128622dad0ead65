import { WorkflowFailedError, type Client, type WorkflowExecutionInfo } from '@temporalio/client';
import { z } from 'zod';
import {
  addDays,
  DayRangeSchema,
  graph,
  monthRange,
  MonthSchema,
  selectAssets,
  type DayRange,
} from '../assets';
import { UNPARTITIONED } from '../lake/manifests';
import { backfillProgressQuery, progressQuery } from '../workflows';
import type { BackfillProgress } from '../workflows/backfill';
import {
  SA_ASSETS,
  SA_FAILED_ASSETS,
  SA_PARTITION_END,
  SA_PARTITION_START,
  SA_RUN_KIND,
} from '../workflows/search-attributes';
import type { MaterializeResult } from '../workflows/types';

/**
 * What the page shows of Temporal: runs and backfills (listed by workflow type and search
 * attributes, their progress from the workflows' own queries), which partitions a running
 * materialization covers, and links into the Temporal Web UI.
 */

export class TemporalLinks {
  constructor(
    readonly base: string,
    readonly namespace: string,
  ) {}

  private get root(): string {
    return `${this.base.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(this.namespace)}`;
  }

  workflow(workflowId: string, runId?: string): string {
    return `${this.root}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${encodeURIComponent(runId)}/history` : ''}`;
  }

  search(query: string): string {
    return `${this.root}/workflows?query=${encodeURIComponent(query)}`;
  }
}

/** The visibility query for every run that built (or tried) a partition's month of an asset. */
export function partitionQuery(asset: string, partition: string): string {
  return partition === UNPARTITIONED
    ? `SparkifyAssets = '${asset}'`
    : `SparkifyAssets = '${asset}' AND SparkifyMonths = '${partition.slice(0, 7)}'`;
}

/**
 * A client made on first use; a failed connection is remembered for `retryMs`, so a page drawn
 * while Temporal is down answers at once (the lake views still work) instead of each request
 * waiting for a connect timeout. Every call goes through `use`, so that `close` can stop the
 * client's retries (`connect` is given the condition), cancel the calls in flight and wait for
 * them before it closes the connection: a retry timed before the close would otherwise meet a
 * closed channel and throw where nothing can catch it (`sparkify dev` exited 1 when a stop met
 * the page's first request).
 */
export class TemporalAccess {
  private client?: Promise<Client>;
  private failure?: { at: number; message: string };
  private closing = false;
  /** The calls in flight, each with its own signal (the client adds a listener per request). */
  private readonly inFlight = new Map<Promise<unknown>, AbortController>();

  constructor(
    private readonly connect: (retryWhile: () => boolean) => Promise<Client>,
    private readonly retryMs = 5_000,
    private readonly closeWaitMs = 10_000,
  ) {}

  /** Runs `fn` with the client, cancelled by `close`; TemporalUnavailable when there is none. */
  async use<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const client = await this.get();
    if (this.closing) throw new TemporalUnavailable('the page is stopping');
    const abort = new AbortController();
    const call = client.connection.withAbortSignal(abort.signal, () => fn(client));
    this.inFlight.set(call, abort);
    try {
      return await call;
    } finally {
      this.inFlight.delete(call);
    }
  }

  private async get(): Promise<Client> {
    if (this.closing) throw new TemporalUnavailable('the page is stopping');
    if (this.failure && Date.now() - this.failure.at < this.retryMs)
      throw new TemporalUnavailable(this.failure.message);
    this.client ??= this.connect(() => !this.closing);
    try {
      return await this.client;
    } catch (err) {
      this.client = undefined;
      this.failure = { at: Date.now(), message: err instanceof Error ? err.message : String(err) };
      throw new TemporalUnavailable(this.failure.message, { cause: err });
    }
  }

  /** Stops retries, cancels the calls in flight and waits for them (a timed retry still runs), then closes. */
  async close(): Promise<void> {
    this.closing = true;
    const client = await this.client?.catch(() => undefined);
    for (const abort of this.inFlight.values()) abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight.keys()]),
      new Promise((res) => (timer = setTimeout(res, this.closeWaitMs))),
    ]);
    clearTimeout(timer);
    await client?.connection.close();
  }
}

/** No client: Temporal cannot be reached (or the page is stopping). */
export class TemporalUnavailable extends Error {
  override name = 'TemporalUnavailable';
}

export interface RunRow {
  workflowId: string;
  runId: string;
  type: string;
  /** RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, CONTINUED_AS_NEW, TIMED_OUT … */
  status: string;
  startTime: string;
  closeTime: string | null;
  runKind: string | null;
  assets: string[];
  failedAssets: string[];
  /** The days it covers, both included (for people). */
  first: string | null;
  last: string | null;
  /** The backfill a materialization belongs to. */
  parent: string | null;
  url: string;
  progress?: RunProgress;
  progressError?: string;
  /** A failed run: why, as its failure says (each failed or skipped asset and its reason). */
  failure?: string;
}

export interface RunProgress {
  /** Assets (a materialization) or partitions (a backfill) finished, failed ones included. */
  finished: number;
  total: number;
  unit: 'assets' | 'partitions';
  running: string[];
  failed: Record<string, string>;
  /** A materialization: each asset's status. */
  assets?: { asset: string; status: string; reason?: string }[];
}

const BackfillMemoSchema = z.object({ from: MonthSchema, to: MonthSchema });

/** The days a run covers: from its memo (the range it was given), else its search attributes. */
function rangeOf(info: WorkflowExecutionInfo): DayRange | null {
  const memo = info.memo ?? {};
  const range = DayRangeSchema.safeParse(memo.range);
  if (range.success) return range.data;
  const months = BackfillMemoSchema.safeParse(memo);
  if (months.success) return { start: `${months.data.from}-01`, end: monthRange(months.data.to).end };
  const start = info.typedSearchAttributes.get(SA_PARTITION_START);
  const end = info.typedSearchAttributes.get(SA_PARTITION_END);
  const parsed = DayRangeSchema.safeParse({ start, end });
  return parsed.success ? parsed.data : null;
}

/** Its assets: the search attribute the workflow sets, else (before its first task) its memo's selection. */
function assetsOf(info: WorkflowExecutionInfo): string[] {
  const fromSa = info.typedSearchAttributes.get(SA_ASSETS);
  if (fromSa && fromSa.length > 0) return fromSa;
  const selection = info.memo?.selection;
  if (typeof selection !== 'string') return [];
  try {
    return selectAssets(graph, selection);
  } catch {
    return [];
  }
}

function rowOf(info: WorkflowExecutionInfo, links: TemporalLinks): RunRow {
  const range = rangeOf(info);
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    type: info.type,
    status: info.status.name,
    startTime: info.startTime.toISOString(),
    closeTime: info.closeTime?.toISOString() ?? null,
    runKind: info.typedSearchAttributes.get(SA_RUN_KIND) ?? null,
    assets: assetsOf(info),
    failedAssets: info.typedSearchAttributes.get(SA_FAILED_ASSETS) ?? [],
    first: range?.start ?? null,
    last: range ? addDays(range.end, -1) : null,
    parent: info.parentExecution?.workflowId ?? null,
    url: links.workflow(info.workflowId, info.runId),
  };
}

async function listInfos(client: Client, query: string, limit: number): Promise<WorkflowExecutionInfo[]> {
  const out: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
    out.push(info);
    if (out.length >= limit) break;
  }
  return out;
}

const RUN_TYPES = `(WorkflowType = 'materialize' OR WorkflowType = 'backfill')`;

function materializeProgress(r: MaterializeResult): RunProgress {
  const done = ['materialized', 'up_to_date', 'filtered', 'failed', 'skipped'];
  return {
    finished: r.assets.filter((a) => done.includes(a.status)).length,
    total: r.assets.length,
    unit: 'assets',
    running: r.assets.filter((a) => a.status === 'running' || a.status === 'waiting').map((a) => a.asset),
    failed: Object.fromEntries(
      r.assets.filter((a) => a.status === 'failed').map((a) => [a.asset, a.reason ?? 'failed']),
    ),
    assets: r.assets.map((a) => ({
      asset: a.asset,
      status: a.status,
      ...(a.reason ? { reason: a.reason } : {}),
    })),
  };
}

function backfillProgress(p: BackfillProgress): RunProgress {
  return {
    finished: p.done + Object.keys(p.failed).length,
    total: p.total,
    unit: 'partitions',
    running: p.running,
    failed: p.failed,
  };
}

/**
 * Recent runs and backfills, newest first; running ones with their progress, asked of the
 * workflow by its query (bounded by `queryTimeoutMs`: a query needs a worker to answer).
 */
export async function listRuns(
  client: Client,
  links: TemporalLinks,
  opts: { limit?: number; running?: boolean; queryTimeoutMs?: number; maxQueries?: number } = {},
): Promise<RunRow[]> {
  const query = opts.running ? `${RUN_TYPES} AND ExecutionStatus = 'Running'` : RUN_TYPES;
  const infos = await listInfos(client, query, opts.limit ?? 50);
  const rows = infos.map((i) => rowOf(i, links)).sort((a, b) => (a.startTime < b.startTime ? 1 : -1));
  const live = rows.filter((r) => r.status === 'RUNNING').slice(0, opts.maxQueries ?? 20);
  await Promise.all([
    withFailures(client, rows, opts),
    ...live.map(async (row) => {
      try {
        const handle = client.workflow.getHandle(row.workflowId, row.runId);
        const deadline = Date.now() + (opts.queryTimeoutMs ?? 3_000);
        row.progress =
          row.type === 'backfill'
            ? backfillProgress(
                await client.connection.withDeadline(deadline, () => handle.query(backfillProgressQuery)),
              )
            : materializeProgress(
                await client.connection.withDeadline(deadline, () => handle.query(progressQuery)),
              );
      } catch (err) {
        row.progressError = err instanceof Error ? err.message : String(err);
      }
    }),
  ]);
  return rows;
}

// A closed run's failure never changes: asked of Temporal once per run, not on every refresh.
const failures = new Map<string, string>();
const MAX_FAILURES_KEPT = 1000;

/** Sets `failure` on the failed rows (the first `maxQueries`), each read once per run. */
async function withFailures(
  client: Client,
  rows: RunRow[],
  opts: { queryTimeoutMs?: number; maxQueries?: number },
): Promise<void> {
  const failed = rows.filter((r) => r.status === 'FAILED').slice(0, opts.maxQueries ?? 20);
  await Promise.all(
    failed.map(async (row) => {
      const failure = await failureOf(client, row, opts.queryTimeoutMs ?? 3_000);
      if (failure !== undefined) row.failure = failure;
    }),
  );
}

/** The failure a closed run ended with (its close event), or undefined when it cannot be read now. */
async function failureOf(client: Client, row: RunRow, timeoutMs: number): Promise<string | undefined> {
  const known = failures.get(row.runId);
  if (known !== undefined) return known;
  try {
    const handle = client.workflow.getHandle(row.workflowId, row.runId, { followRuns: false });
    await client.connection.withDeadline(Date.now() + timeoutMs, () => handle.result());
    return undefined; // not failed after all
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) return undefined; // unreachable now: try next time
    const message = err.cause?.message ?? err.message;
    if (failures.size >= MAX_FAILURES_KEPT) failures.delete(failures.keys().next().value!);
    failures.set(row.runId, message);
    return message;
  }
}

export interface RunningCover {
  workflowId: string;
  assets: string[];
  range: DayRange | null;
}

/** Running materializations, and what they cover: a partition they cover is "running". */
export async function runningMaterializations(client: Client, limit = 1000): Promise<RunningCover[]> {
  const infos = await listInfos(
    client,
    `WorkflowType = 'materialize' AND ExecutionStatus = 'Running'`,
    limit,
  );
  return infos.map((i) => ({ workflowId: i.workflowId, assets: assetsOf(i), range: rangeOf(i) }));
}

/** Whether a running materialization covers a partition (unpartitioned: any run of the asset). */
export function covers(run: RunningCover, asset: string, partition: string): boolean {
  if (!run.assets.includes(asset)) return false;
  if (partition === UNPARTITIONED) return true;
  return run.range !== null && run.range.start <= partition && partition < run.range.end;
}

/** Runs that covered a partition, newest first (visibility: the asset and the month, then the range). */
export async function runsOfPartition(
  client: Client,
  links: TemporalLinks,
  asset: string,
  partition: string,
  limit = 20,
): Promise<RunRow[]> {
  const infos = await listInfos(client, partitionQuery(asset, partition), limit * 3);
  const rows = infos
    .map((i) => rowOf(i, links))
    .filter(
      (r) =>
        partition === UNPARTITIONED || (r.first !== null && r.first <= partition && partition <= r.last!),
    )
    .sort((a, b) => (a.startTime < b.startTime ? 1 : -1))
    .slice(0, limit);
  await withFailures(client, rows, {});
  return rows;
}
