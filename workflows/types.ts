import { z } from 'zod';
import { DayRangeSchema, type DayRange } from '../assets/partitions';
import type { InputFingerprints } from '../lake/fingerprints';
import type { PartitionFilter, PartitionState } from '../lake/freshness';
import type { BackfillPlan } from '../lake/plan';
import type { LeaseAnswer, LeaseHolder, LeaseRequest } from './lease';

/** Shapes that cross the workflow boundary. zod validates them where they enter. */

export const RunKindSchema = z.enum(['manual', 'schedule', 'backfill']);
export type RunKind = z.infer<typeof RunKindSchema>;

/**
 * Which partitions a run acts on. `outdated` (the default): whatever is not up to date — missing,
 * failed or stale; `all` rebuilds everything asked for (`--force`).
 */
export const PartitionFilterSchema = z.enum(['outdated', 'missing', 'failed', 'stale', 'all']);

export const CodeVersionSchema = z
  .object({
    hash: z.string().regex(/^[0-9a-f]{16}$/),
    runPy: z.string().min(1),
    pyFiles: z.string().min(1),
    /** Jars shipped with the code (the warehouse load's JDBC driver), for spark-submit --jars. */
    jars: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type CodeVersion = z.infer<typeof CodeVersionSchema>;

export const MaterializeInputSchema = z
  .object({
    selection: z.string().min(1),
    range: DayRangeSchema,
    runKind: RunKindSchema.default('manual'),
    /** Steps run at once at most; independent steps beyond it wait. */
    maxParallelSteps: z.number().int().min(1).max(64).default(2),
    /** Pinned code, e.g. from a parent backfill, so all its months run the same code. */
    code: CodeVersionSchema.optional(),
    only: PartitionFilterSchema.default('outdated'),
    /** Which steps share one EMR step (see assets/derive.ts fuseSteps). */
    fuse: z.enum(['none', 'daily', 'all']).default('none'),
    /** How long a step activity may go without a heartbeat before another worker takes over. */
    stepHeartbeatTimeoutMs: z.number().int().min(1000).default(120_000),
  })
  .strict();
export type MaterializeInput = z.input<typeof MaterializeInputSchema>;

export type AssetStatus =
  | 'pending'
  /** Waiting for the lease on what its step writes (another run is writing it). */
  | 'waiting'
  | 'running'
  | 'materialized'
  /** Nothing to do: every partition asked for is up to date. */
  | 'up_to_date'
  /** Nothing to do: no partition matched the run's filter (e.g. --only-failed). */
  | 'filtered'
  | 'failed'
  /** Not run because something it depends on did not materialize. */
  | 'skipped';

export interface AssetResult {
  asset: string;
  status: AssetStatus;
  step: string;
  /** Why it failed, was skipped or had nothing to do; the job's own explanation first. */
  reason?: string;
  logFile?: string;
  stepId?: string;
  /** Where the output of a step whose checks failed was kept. */
  stagingUri?: string;
  /** The day ranges this run built (several when the days to rebuild are not contiguous). */
  ranges?: DayRange[];
  /** Partitions asked for that were already up to date (or left out by the filter). */
  upToDate?: number;
  rows?: number;
  rowsPerDay?: Record<string, number> | null;
  quarantined?: Record<string, number>;
  durationS?: number;
  codeVersion?: string;
  /** Non-blocking checks that failed. */
  warnings?: string[];
}

export interface MaterializeResult {
  workflowId: string;
  range: DayRange;
  selection: string;
  codeVersion: string | null;
  assets: AssetResult[];
  ok: boolean;
}

export interface RunStepInput {
  stepKey: string;
  assets: string[];
  range: DayRange;
  code: CodeVersion;
  /** Unique per materialization (workflow id + first run id); makes the EMR step name unique. */
  runTag: string;
}

export interface RunStepOutcome {
  stepId: string;
  adopted: boolean;
  reportUri: string;
  logFile?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface PrepareStepInput {
  stepKey: string;
  assets: string[];
  range: DayRange;
  codeVersion: string;
  only: PartitionFilter;
}

/** What a step must do, decided while holding its lease, and what it will read. */
export interface PreparedStep {
  /** The ranges to build; empty when nothing is to be done. */
  runRanges: DayRange[];
  /** Partitions asked for, by state (of the step's assets). */
  states: Partial<Record<PartitionState, number>>;
  /** Partitions left alone because they are up to date or outside the filter. */
  untouched: number;
  /** A few reasons why partitions are being rebuilt, for people. */
  reasons: string[];
  /** Fingerprints of the raw inputs, taken before the step reads them. */
  inputs: InputFingerprints;
  /** Per partition of the step's assets: the upstream data versions it will read. */
  upstream: Record<string, Record<string, Record<string, string>>>;
}

/** Which step of which run, for the manifests. */
interface StepRecordBase {
  workflowId: string;
  runKind: RunKind;
  stepKey: string;
  assets: string[];
  range: DayRange;
  code: CodeVersion;
}

export interface RecordInput extends StepRecordBase {
  outcome: RunStepOutcome;
  prepared: Pick<PreparedStep, 'inputs' | 'upstream'>;
  /**
   * Set when the EMR step failed but left a report: each asset the report says was published is
   * recorded as materialized, the others as failed, with this as where to look.
   */
  failure?: { reason: string; logFile?: string; stagingUri?: string };
}

export interface RecordFailureInput extends StepRecordBase {
  reason: string;
  logFile?: string;
  stepId?: string;
  stagingUri?: string;
}

export type LeaseRequestInput = LeaseRequest;
export type LeaseResponse = LeaseAnswer & { leaseWorkflowId: string };

export interface PlanBackfillInput {
  selection: string;
  from: string;
  to: string;
  per: 'month' | 'day';
  only: PartitionFilter;
  codeVersion: string;
}

/** The activities the workflows call; activities/index.ts implements them. */
export interface SparkifyActivities {
  publishSparkCode(): Promise<CodeVersion>;
  prepareStep(input: PrepareStepInput): Promise<PreparedStep>;
  /** prepareStep for several steps at once (the steps of a fused unit): one round trip. */
  prepareSteps(inputs: PrepareStepInput[]): Promise<PreparedStep[]>;
  runStep(input: RunStepInput): Promise<RunStepOutcome>;
  recordMaterialization(input: RecordInput): Promise<AssetResult[]>;
  recordFailure(input: RecordFailureInput): Promise<void>;
  /**
   * Asks for leases (starting the lake's lease workflow if needed): granted at once when nothing
   * conflicts, otherwise the `leaseGranted` signal follows.
   */
  requestLease(input: LeaseRequestInput): Promise<LeaseResponse>;
  /**
   * requestLease as a local activity: inside the run's workflow task, a workflow task and an
   * activity task less per step. Null when the lease workflow has not answered within
   * `answerWithinMs`; the run then asks by requestLease.
   */
  tryRequestLease(input: {
    request: LeaseRequestInput;
    answerWithinMs: number;
  }): Promise<LeaseResponse | null>;
  /**
   * Releases a lease (the `releaseLease` signal, sent by the worker's client): run as a local
   * activity, it costs the releasing run no workflow task of its own. Idempotent; a lease workflow
   * that is gone has nothing to release.
   */
  releaseLease(input: { leaseWorkflowId: string; requestId: string }): Promise<void>;
  /** Of the given workflow runs, those that are no longer running (`<workflowId>/<runId>`). */
  closedWorkflows(input: { holders: LeaseHolder[] }): Promise<string[]>;
  planBackfill(input: PlanBackfillInput): Promise<BackfillPlan>;
}
