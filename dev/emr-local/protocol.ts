import { z } from 'zod';

/** An error the SDK turns into an exception named `type` (`__type` in the body). */
export class EmrError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = type;
  }
}

export const invalidRequest = (message: string) => new EmrError('InvalidRequestException', message);
export const validation = (message: string) => new EmrError('ValidationException', message);

export const STEP_STATES = [
  'PENDING',
  'CANCEL_PENDING',
  'RUNNING',
  'COMPLETED',
  'CANCELLED',
  'FAILED',
  'INTERRUPTED',
] as const;
export type StepState = (typeof STEP_STATES)[number];

export const CLUSTER_STATES = [
  'STARTING',
  'BOOTSTRAPPING',
  'RUNNING',
  'WAITING',
  'TERMINATING',
  'TERMINATED',
  'TERMINATED_WITH_ERRORS',
] as const;
export type ClusterState = (typeof CLUSTER_STATES)[number];

export const ACTIONS_ON_FAILURE = [
  'TERMINATE_JOB_FLOW',
  'TERMINATE_CLUSTER',
  'CANCEL_AND_WAIT',
  'CONTINUE',
] as const;
export type ActionOnFailure = (typeof ACTIONS_ON_FAILURE)[number];

// Limits are EMR's documented ones, so code that passes here does not fail on the real service.
export const MAX_ACTIVE_STEPS = 256;
export const MAX_STEP_STRING_CHARS = 10_240;
export const LIST_PAGE_SIZE = 50;
export const MAX_LIST_STEP_IDS = 10;

const clusterId = z.string().min(1).max(256);
const marker = z.string().optional();
/** A timestamp in a request: epoch seconds (what the SDKs send in JSON 1.1), or ISO 8601. */
const timestamp = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value * 1000 : Date.parse(value);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: 'custom', message: `not a timestamp: ${String(value)}` });
    return z.NEVER;
  }
  return ms;
});
const stepId = z.string().min(1).max(256);

const hadoopJarStep = z.object({
  Jar: z.string().min(1).max(10_280),
  Properties: z.array(z.object({ Key: z.string().optional(), Value: z.string().optional() })).optional(),
  MainClass: z.string().max(10_280).optional(),
  Args: z.array(z.string()).optional(),
});

const stepConfig = z.object({
  Name: z.string().min(1).max(256),
  ActionOnFailure: z.enum(ACTIONS_ON_FAILURE).optional(),
  HadoopJarStep: hadoopJarStep,
});
export type StepConfigInput = z.infer<typeof stepConfig>;

export const requestSchemas = {
  AddJobFlowSteps: z.object({
    JobFlowId: clusterId,
    Steps: z.array(stepConfig).min(1).max(MAX_ACTIVE_STEPS),
    ExecutionRoleArn: z.string().optional(),
  }),
  DescribeStep: z.object({ ClusterId: clusterId, StepId: stepId }),
  ListSteps: z.object({
    ClusterId: clusterId,
    StepStates: z.array(z.enum(STEP_STATES)).optional(),
    StepIds: z.array(stepId).max(MAX_LIST_STEP_IDS).optional(),
    Marker: marker,
  }),
  CancelSteps: z.object({
    ClusterId: clusterId,
    StepIds: z.array(stepId).min(1),
    StepCancellationOption: z.enum(['SEND_INTERRUPT', 'TERMINATE_PROCESS']).optional(),
  }),
  DescribeCluster: z.object({ ClusterId: clusterId }),
  // What `aws emr describe-cluster` calls besides DescribeCluster.
  ListInstanceGroups: z.object({ ClusterId: clusterId, Marker: marker }),
  ListBootstrapActions: z.object({ ClusterId: clusterId, Marker: marker }),
  ListClusters: z.object({
    /** Epoch milliseconds after parsing. */
    CreatedAfter: timestamp.optional(),
    CreatedBefore: timestamp.optional(),
    ClusterStates: z.array(z.enum(CLUSTER_STATES)).optional(),
    Marker: marker,
  }),
};
export type Action = keyof typeof requestSchemas;
export type Request<A extends Action> = z.infer<(typeof requestSchemas)[A]>;

export function isAction(name: string): name is Action {
  return Object.prototype.hasOwnProperty.call(requestSchemas, name);
}

export function parseRequest<A extends Action>(action: A, body: unknown): Request<A> {
  const result = requestSchemas[action].safeParse(body);
  if (!result.success) {
    const detail = result.error.issues
      .map((issue) => `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`)
      .join('; ');
    throw validation(`1 validation error detected in ${action}: ${detail}`);
  }
  return result.data as Request<A>;
}

/** EMR's wire format for timestamps in JSON 1.1: epoch seconds, fractions allowed. */
export const epochSeconds = (ms: number) => ms / 1000;
