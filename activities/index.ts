import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { EMRClient } from '@aws-sdk/client-emr';
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { WithStartWorkflowOperation } from '@temporalio/client';
import {
  ASSET_KEY_PATTERN,
  contiguousRanges,
  DayRangeSchema,
  daysIn,
  graph,
  type AssetSpec,
} from '../assets';
import type { Config } from '../config/config';
import { inputsOfPartition } from '../lake/fingerprints';
import { matchesFilter, upstreamPartition, upstreamVersions, versionFromManifest } from '../lake/freshness';
import { partitionsOf, writeRun, UNPARTITIONED, type RunRecord } from '../lake/manifests';
import { indexRuns, type RecordedRun } from '../lake/partition-index';
import { planBackfill } from '../lake/plan';
import { explainAsset, parseJobReport } from '../lake/report';
import { readLakeStatus } from '../lake/status';
import { openLake, s3ClientFor, type Lake } from '../lake/store';
import { acquireLeaseUpdate, releaseLeaseSignal, type lease } from '../workflows/lease';
import type {
  AssetResult,
  CodeVersion,
  LeaseRequestInput,
  PreparedStep,
  PrepareStepInput,
  RecordFailureInput,
  RecordInput,
  RunStepInput,
  RunStepOutcome,
  SparkifyActivities,
} from '../workflows/types';
import { warehouseJobArgs } from '../warehouse/connection';
import { projectBundle, publishSparkCode } from './code-bundle';
import { buildSparkSubmitArgs, createEmrStepActivities } from './emr-step';

export interface ActivityDeps {
  emr: EMRClient;
  /** For AddJobFlowSteps: SDK retries off, so a retried request can never add a second step. */
  emrNoRetry: EMRClient;
  lake: Lake;
  raw: Lake;
  codeRoot: Lake;
  sparkDir: string;
  now: () => Date;
  /** The Temporal client lease requests go through; the worker's own by default. */
  temporalClient?: () => import('@temporalio/client').Client;
  /**
   * Test seam: the HadoopJarStep args a step runs instead of `spark-submit …`, so tests of the
   * real workflow, worker and local EMR can run a cheap command (one the local EMR allows).
   */
  stepArgs?: (step: { input: RunStepInput; reportUri: string; sparkSubmitArgs: string[] }) => string[];
}

/** The local EMR on loopback ignores request signatures; there is nothing to authenticate to. */
function isLoopback(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  const host = new URL(endpoint).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

function emrClient(config: Config, maxAttempts?: number): EMRClient {
  return new EMRClient({
    region: config.emr.region,
    ...(config.emr.endpoint ? { endpoint: config.emr.endpoint } : {}),
    // Not a credential: placeholders so the SDK can sign requests to the local EMR, which
    // ignores signatures. Real EMR always goes through the default credential chain.
    ...(isLoopback(config.emr.endpoint)
      ? {
          credentials: { accessKeyId: 'sparkify-local-emr', secretAccessKey: 'not-checked-by-the-local-emr' },
        }
      : {}),
    ...(maxAttempts ? { maxAttempts } : {}),
  });
}

export function defaultActivityDeps(config: Config): ActivityDeps {
  const s3 = s3ClientFor({ region: config.emr.region, endpoint: config.s3.endpoint });
  const open = (uri: string) => openLake(uri, { s3 });
  return {
    emr: emrClient(config),
    emrNoRetry: emrClient(config, 1),
    lake: open(config.storage.lake),
    raw: open(config.storage.raw),
    codeRoot: open(config.storage.code),
    sparkDir: resolve(__dirname, '../spark'),
    now: () => new Date(),
  };
}

const STEP_NAME_MAX = 256;

function validateStepInput(input: RunStepInput): void {
  const problems: string[] = [];
  // A fused unit's key joins its steps' keys with `+` (assets/derive.ts fuseSteps).
  if (!input.stepKey.split('+').every((k) => ASSET_KEY_PATTERN.test(k)))
    problems.push(`step key "${input.stepKey}"`);
  for (const a of input.assets) if (!graph.specs.has(a)) problems.push(`asset "${a}" is not in the graph`);
  if (!DayRangeSchema.safeParse(input.range).success) problems.push(`range ${JSON.stringify(input.range)}`);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(`invalid step input: ${problems.join('; ')}`, 'InvalidStepInput');
  }
}

/** A short stable digest: EMR step names and report keys must be bounded and key-safe. */
function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/**
 * Heartbeats while `fn` runs, so the workflow's heartbeat timeout detects a lost worker quickly
 * even for activities (listings, manifest writes) that have no natural progress points.
 */
async function withHeartbeats<T>(fn: () => Promise<T>): Promise<T> {
  // Local activities cannot heartbeat: the workflow task they run in is kept alive instead.
  const heartbeats = (() => {
    try {
      return !Context.current().info.isLocal;
    } catch {
      return false;
    }
  })();
  if (!heartbeats) return fn();
  heartbeat();
  const timer = setInterval(() => heartbeat(), 5_000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

/** Wraps every bookkeeping activity in heartbeats; runStep heartbeats on its own. */
function heartbeating(activities: SparkifyActivities): SparkifyActivities {
  const wrapped = { ...activities } as Record<string, unknown>;
  for (const [name, fn] of Object.entries(activities)) {
    if (name === 'runStep') continue;
    wrapped[name] = (...args: unknown[]) =>
      withHeartbeats(() => (fn as (...a: unknown[]) => Promise<unknown>)(...args));
  }
  return wrapped as unknown as SparkifyActivities;
}

export function createActivities(config: Config, overrides: Partial<ActivityDeps> = {}): SparkifyActivities {
  return heartbeating(createRawActivities(config, overrides));
}

/** The workflow id of the lake's lease workflow: one per lake, holding every step's leases. */
export function leaseWorkflowId(lakeUri: string): string {
  return `sparkify-leases-${digest(lakeUri).slice(0, 8)}`;
}

function createRawActivities(config: Config, overrides: Partial<ActivityDeps>): SparkifyActivities {
  const deps: ActivityDeps = { ...defaultActivityDeps(config), ...overrides };
  const { lake, raw, codeRoot } = deps;
  const temporal = deps.temporalClient ?? (() => Context.current().client);

  /** One call starts the lake's lease workflow if need be and learns whether the request is granted. */
  const askForLease = async (request: LeaseRequestInput) => {
    const workflowId = leaseWorkflowId(lake.uri);
    const answer = await temporal().workflow.executeUpdateWithStart(acquireLeaseUpdate, {
      args: [request],
      startWorkflowOperation: new WithStartWorkflowOperation<typeof lease>('lease', {
        workflowId,
        taskQueue: config.temporal.taskQueue,
        args: [{}],
        workflowIdConflictPolicy: 'USE_EXISTING',
        staticSummary: `leases on what the steps write · ${lake.uri}`,
        staticDetails:
          'Grants leases on what steps write, first come, first served: a whole-table claim excludes ' +
          'every other claim on that step, a day-range claim only overlapping ones. Query `leaseState` ' +
          'for who holds what.',
      }),
    });
    return { leaseWorkflowId: workflowId, ...answer };
  };

  /** Reports are written under the lake root; a URI elsewhere is not ours to read. */
  const readLakeText = async (uri: string): Promise<string | null> =>
    uri.startsWith(lake.uri) ? lake.readText(uri.slice(lake.uri.length).replace(/^\/+/, '')) : null;

  const emrSteps = createEmrStepActivities({
    emr: deps.emr,
    emrNoRetry: deps.emrNoRetry,
    outageToleranceMs: config.emr.outageToleranceMs,
    readReport: async (uri: string) => {
      const text = await readLakeText(uri);
      return text === null ? null : JSON.parse(text);
    },
  });

  /** A manifest write, remembered for the partition index (updated once per asset-year, after). */
  const recordRun = async (recorded: RecordedRun[], asset: string, partition: string, run: RunRecord) => {
    await writeRun(lake, asset, partition, run);
    recorded.push({ asset, partition, run });
  };

  const reportKey = (input: { stepKey: string; range: { start: string; end: string } }, runTag: string) =>
    `_reports/${input.stepKey}/${input.range.start}_${input.range.end}/${digest(runTag)}.json`;

  /** Which of a step's partitions need building (by `only`), and what the build will read. */
  const prepare = async (input: PrepareStepInput): Promise<PreparedStep> => {
    const specs = input.assets.map((a) => graph.specs.get(a)!);
    const partitioning = specs[0]!.partitioning;
    const days = partitioning === 'daily' ? daysIn(input.range) : [];
    const { cells, inputs, manifests } = await readLakeStatus(lake, raw, {
      assets: input.assets,
      days,
      codeVersion: input.codeVersion,
    });
    const states: PreparedStep['states'] = {};
    for (const c of cells) states[c.state] = (states[c.state] ?? 0) + 1;
    const chosen = cells.filter((c) => matchesFilter(c.state, input.only));
    const partitions = [...new Set(chosen.map((c) => c.partition))];
    const runRanges =
      partitions.length === 0 ? [] : partitioning === 'daily' ? contiguousRanges(partitions) : [input.range];
    const versionOf = (asset: string, partition: string) =>
      versionFromManifest(manifests.get(asset)?.get(partition));
    const upstream: PreparedStep['upstream'] = {};
    for (const spec of specs) {
      if (spec.deps.length === 0) continue;
      upstream[spec.key] = Object.fromEntries(
        partitionsOf(spec.partitioning, input.range).map((p) => [p, upstreamVersions(spec, p, versionOf)]),
      );
    }
    const reasons = [
      ...new Set(
        chosen
          .filter((c) => c.reason)
          .map((c) => `${c.asset}${c.partition === UNPARTITIONED ? '' : `/${c.partition}`}: ${c.reason}`),
      ),
    ].slice(0, 5);
    const partitionCount = partitioning === 'daily' ? days.length : 1;
    return {
      runRanges,
      states,
      untouched: partitionCount - partitions.length,
      reasons,
      inputs,
      upstream,
    };
  };

  return {
    async publishSparkCode(): Promise<CodeVersion> {
      const bundle = await projectBundle(deps.sparkDir);
      const published = await publishSparkCode(codeRoot, bundle);
      return {
        hash: published.hash,
        runPy: published.runPy,
        pyFiles: published.pyFiles,
        ...(published.jars ? { jars: published.jars } : {}),
      };
    },

    prepareStep: (input) => prepare(input),

    async prepareSteps(inputs) {
      const out: PreparedStep[] = [];
      for (const input of inputs) out.push(await prepare(input));
      return out;
    },

    async runStep(input: RunStepInput): Promise<RunStepOutcome> {
      validateStepInput(input);
      const reportUri = lake.uriOf(reportKey(input, input.runTag));
      const jobArgs = ['--assets', input.assets.join(','), '--raw', raw.uri, '--lake', lake.uri];
      if (input.assets.some((a) => graph.specs.get(a)!.partitioning === 'daily')) {
        jobArgs.push('--start', input.range.start, '--end', input.range.end);
      }
      jobArgs.push('--report', reportUri);
      if (input.assets.some((a) => graph.specs.get(a)!.writes.some((w) => w.store === 'warehouse'))) {
        jobArgs.push(...warehouseJobArgs(config));
      }
      // Readable first, unique last: the name is how a later attempt finds this step again.
      const stepName = `sparkify/${input.stepKey}/${input.range.start}_${input.range.end}/${digest(input.runTag)}`;
      if (stepName.length > STEP_NAME_MAX)
        throw ApplicationFailure.nonRetryable('step name too long', 'InvalidStepInput');
      const sparkSubmitArgs = buildSparkSubmitArgs({
        runPy: input.code.runPy,
        pyFiles: input.code.pyFiles,
        jobArgs,
        jars: input.code.jars,
      });
      const result = await emrSteps.runSparkStep({
        clusterId: config.emr.clusterId,
        stepName,
        args: deps.stepArgs ? deps.stepArgs({ input, reportUri, sparkSubmitArgs }) : sparkSubmitArgs,
        reportUri,
        poll: { initialMs: config.emr.pollInitialMs, maxMs: config.emr.pollMaxMs },
      });
      return {
        stepId: result.stepId,
        adopted: result.adopted,
        reportUri,
        logFile: result.logFile,
        startedAt: result.startedAt,
        endedAt: result.endedAt,
      };
    },

    async recordMaterialization(input: RecordInput): Promise<AssetResult[]> {
      const text = await readLakeText(input.outcome.reportUri);
      if (text === null)
        throw new Error(`the step finished but wrote no report at ${input.outcome.reportUri}`);
      const report = parseJobReport(text, input.outcome.reportUri);
      const at = deps.now().toISOString();
      const where = input.failure?.reason.includes(' — ')
        ? input.failure.reason.slice(input.failure.reason.indexOf(' — '))
        : ` — EMR step ${input.outcome.stepId}`;
      /**
       * The upstream versions a partition read: taken before the step for upstreams built
       * elsewhere; for one built (and published) by this same step — a fused unit — the version
       * it was just given, which is the one the job read.
       */
      const upstreamRead = (spec: AssetSpec, partition: string): Record<string, string> => {
        const out = { ...(input.prepared.upstream[spec.key]?.[partition] ?? {}) };
        for (const dep of spec.deps) {
          const built = report.assets[dep];
          if (!built?.published) continue;
          const depPartition = upstreamPartition(graph.specs.get(dep)!, partition);
          const version =
            depPartition === UNPARTITIONED ? built.data_version : built.data_versions?.[depPartition];
          if (version) out[dep] = version;
        }
        return out;
      };
      const results: AssetResult[] = [];
      const recorded: RecordedRun[] = [];
      for (const asset of input.assets) {
        const assetReport = report.assets[asset];
        const spec = graph.specs.get(asset)!;
        const partitions = partitionsOf(spec.partitioning, input.range);
        const base = {
          at,
          workflowId: input.workflowId,
          runKind: input.runKind,
          step: input.stepKey,
          stepId: input.outcome.stepId,
          codeVersion: input.code.hash,
          range: input.range,
          reportUri: input.outcome.reportUri,
          startedAt: input.outcome.startedAt,
          endedAt: input.outcome.endedAt,
        };
        if (!assetReport?.published) {
          // Per asset: the job published what passed; this one did not, and says why.
          const reason = `${explainAsset(report, asset)}${where}`;
          const stagingUri = report.staging ?? undefined;
          for (const partition of partitions) {
            await recordRun(recorded, asset, partition, {
              ...base,
              status: 'failed',
              reason,
              logFile: input.failure?.logFile ?? input.outcome.logFile,
              stagingUri,
            });
          }
          results.push({
            asset,
            status: 'failed',
            step: input.stepKey,
            stepId: input.outcome.stepId,
            reason,
            logFile: input.failure?.logFile ?? input.outcome.logFile,
            stagingUri,
            codeVersion: input.code.hash,
          });
          continue;
        }
        const mine = report.warnings
          .filter((w) => w.asset === asset)
          .map((w) => `${w.name}: ${w.message ?? `${w.failing_count} failing`}`);
        for (const partition of partitions) {
          const daily = partition !== UNPARTITIONED;
          await recordRun(recorded, asset, partition, {
            ...base,
            status: 'materialized',
            rows: daily ? (assetReport.rows_per_day?.[partition] ?? 0) : assetReport.rows,
            tableRows: assetReport.table_rows,
            quarantined: assetReport.quarantined,
            dataVersion:
              (daily ? assetReport.data_versions?.[partition] : assetReport.data_version) ?? undefined,
            inputs: inputsOfPartition(spec, partition, input.prepared.inputs),
            upstream: upstreamRead(spec, partition),
            ...(mine.length > 0 ? { warnings: mine } : {}),
          });
        }
        results.push({
          asset,
          status: 'materialized',
          step: input.stepKey,
          stepId: input.outcome.stepId,
          rows: assetReport.rows,
          rowsPerDay: assetReport.rows_per_day,
          quarantined: assetReport.quarantined,
          durationS: assetReport.duration_s,
          codeVersion: input.code.hash,
          ...(mine.length > 0 ? { warnings: mine } : {}),
        });
      }
      await indexRuns(lake, recorded);
      return results;
    },

    async recordFailure(input: RecordFailureInput): Promise<void> {
      const at = deps.now().toISOString();
      const recorded: RecordedRun[] = [];
      for (const asset of input.assets) {
        for (const partition of partitionsOf(graph.specs.get(asset)!.partitioning, input.range)) {
          await recordRun(recorded, asset, partition, {
            status: 'failed',
            at,
            workflowId: input.workflowId,
            runKind: input.runKind,
            step: input.stepKey,
            stepId: input.stepId,
            codeVersion: input.code.hash,
            range: input.range,
            reason: input.reason,
            logFile: input.logFile,
            stagingUri: input.stagingUri,
          });
        }
      }
      await indexRuns(lake, recorded);
    },

    async requestLease(request) {
      return askForLease(request);
    },

    async tryRequestLease({ request, answerWithinMs }) {
      // A local activity holds its run's workflow task while it waits, and the lease workflow
      // needs a workflow task of its own to answer: past the deadline the run stops waiting here
      // and asks again by a regular activity (the same request id is the same request).
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), answerWithinMs);
      try {
        return await temporal().withAbortSignal(abort.signal, () => askForLease(request));
      } catch (err) {
        if (abort.signal.aborted) return null;
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },

    async releaseLease({ leaseWorkflowId, requestId }) {
      try {
        await temporal().workflow.getHandle(leaseWorkflowId).signal(releaseLeaseSignal, { requestId });
      } catch (err) {
        // The lease workflow released it already (its holder check, or its time ran out) and ended.
        if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
      }
    },

    async closedWorkflows({ holders }) {
      const client = temporal();
      const closed: string[] = [];
      for (const h of holders) {
        try {
          const d = await client.workflow.getHandle(h.workflowId, h.runId).describe();
          if (d.status.name !== 'RUNNING') closed.push(`${h.workflowId}/${h.runId}`);
        } catch (err) {
          if ((err as Error).name === 'WorkflowNotFoundError') closed.push(`${h.workflowId}/${h.runId}`);
          else throw err;
        }
      }
      return closed;
    },

    async planBackfill(input) {
      return planBackfill(lake, raw, input);
    },
  };
}
