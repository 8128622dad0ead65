import { z } from 'zod';
import { DayRangeSchema, type DayRange } from '../assets/partitions';

/** Shapes that cross the workflow boundary. zod validates them where they enter. */

export const RunKindSchema = z.enum(['manual', 'schedule', 'backfill']);
export type RunKind = z.infer<typeof RunKindSchema>;

export const CodeVersionSchema = z
  .object({
    hash: z.string().regex(/^[0-9a-f]{16}$/),
    runPy: z.string().min(1),
    pyFiles: z.string().min(1),
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
    /** Skip song_data-derived assets whose input has not changed since their last materialization. */
    skipUnchanged: z.boolean().default(false),
    /** How long a step activity may go without a heartbeat before another worker takes over. */
    stepHeartbeatTimeoutMs: z.number().int().min(1000).default(120_000),
  })
  .strict();
export type MaterializeInput = z.input<typeof MaterializeInputSchema>;

export type AssetStatus = 'pending' | 'running' | 'materialized' | 'up_to_date' | 'failed' | 'skipped';

export interface AssetResult {
  asset: string;
  status: AssetStatus;
  step: string;
  /** Why it failed or was skipped. */
  reason?: string;
  logFile?: string;
  stepId?: string;
  rows?: number;
  rowsPerDay?: Record<string, number> | null;
  quarantined?: Record<string, number>;
  durationS?: number;
  codeVersion?: string;
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
  /** song_data fingerprint seen before the step ran (for change detection). */
  sourceFingerprint?: string;
}

export interface RecordFailureInput extends StepRecordBase {
  reason: string;
  logFile?: string;
  stepId?: string;
}

export interface UpToDateCheck {
  assets: string[];
}

export interface UpToDateAnswer {
  fingerprint: string;
  /** Assets whose last successful materialization saw the same fingerprint. */
  upToDate: string[];
}

export type PartitionState = 'materialized' | 'failed' | 'missing' | 'stale';

export interface PartitionStatesInput {
  assets: string[];
  /** Backfill partitions: months (YYYY-MM) or days (YYYY-MM-DD). */
  partitions: string[];
}

/** The activities the workflows call; activities/index.ts implements them. */
export interface SparkifyActivities {
  publishSparkCode(): Promise<CodeVersion>;
  runStep(input: RunStepInput): Promise<RunStepOutcome>;
  recordMaterialization(input: RecordInput): Promise<AssetResult[]>;
  recordFailure(input: RecordFailureInput): Promise<void>;
  checkSongDataUnchanged(input: UpToDateCheck): Promise<UpToDateAnswer>;
  /** The state of each backfill partition, from the manifests: the worst of its cells. */
  partitionStates(input: PartitionStatesInput): Promise<Record<string, PartitionState>>;
}
