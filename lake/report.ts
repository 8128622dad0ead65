import { z } from 'zod';

/**
 * The Spark job's report, stated once: this zod schema is the contract. `npm run contracts`
 * writes it as JSON Schema to docs/job-report.schema.json, which the Python tests validate every
 * report the jobs write against (and a jest test keeps the file equal to this schema).
 */

const Count = z.number().int().nonnegative();
const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const DataVersion = z.string().regex(/^[0-9a-f]{16}$/);

export const CheckResultSchema = z
  .object({
    name: z.string().min(1),
    passed: z.boolean(),
    /** From the asset declaration: a failed blocking check keeps the output from being published. */
    blocking: z.boolean(),
    failing_count: Count,
    sample: z.array(z.unknown()),
    /** The job's own explanation when the count alone does not say what to do. */
    message: z.string().optional(),
  })
  .strict();
export type CheckResult = z.infer<typeof CheckResultSchema>;

export const JobErrorSchema = z
  .object({
    /** The root cause's type, e.g. java.nio.file.AccessDeniedException. */
    type: z.string().min(1),
    /** The root cause's message, one paragraph, no stack trace. */
    message: z.string(),
    /** false when running the step again cannot help (permission denied, a path missing, bad config). */
    retryable: z.boolean(),
  })
  .strict();
export type JobError = z.infer<typeof JobErrorSchema>;

export const AssetReportSchema = z
  .object({
    /**
     * Rows this run wrote: the sum of rows_per_day for a daily table; the table's size for an
     * asset that rewrites a whole table (unpartitioned ones, users).
     */
    rows: Count,
    /**
     * Daily assets: rows of each day partition the run wrote (0 for a day without any); for users,
     * the users who played that day (its `_state/user_latest` partition).
     */
    rows_per_day: z.record(Day, Count).nullable(),
    /** The table's size after the run, where the job knows it without another pass; else null. */
    table_rows: Count.nullable(),
    /** Unpartitioned assets: a digest of the table's content (same rows, same version). */
    data_version: DataVersion.nullable(),
    /** Daily assets: a digest of each day partition's content. */
    data_versions: z.record(Day, DataVersion).nullable(),
    quarantined: z.record(z.string(), Count),
    quarantine: z.object({ rows: Count, location: z.string().nullable() }).strict(),
    duplicates_dropped: Count,
    input_files: Count,
    duration_s: z.number().nonnegative(),
    checks: z.array(CheckResultSchema),
    /**
     * Asset-specific facts (users: state_mode, state_days_read, users_recomputed; warehouse
     * assets: inserted, updated, deleted, kept_referenced, rows the load's transaction changed).
     */
    details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    /**
     * Whether this asset's output is where readers look. Decided per asset: one whose blocking
     * checks passed is published even when another asset of the same step failed, unless it
     * depends on that one.
     */
    published: z.boolean(),
    /** Why it was not published (its checks, its error, or an upstream of the same step). */
    not_published: z.string().nullable(),
    /** The root cause, when building this asset broke. */
    error: JobErrorSchema.nullable(),
  })
  .strict();
export type AssetReport = z.infer<typeof AssetReportSchema>;

export const FailedCheckSchema = CheckResultSchema.extend({ asset: z.string().min(1) }).strict();
export type FailedCheck = z.infer<typeof FailedCheckSchema>;

export const JobReportSchema = z
  .object({
    report_version: z.literal(2),
    status: z.enum(['succeeded', 'check_failed', 'failed']),
    /** true when every asset was published (see each asset's `published`). */
    published: z.boolean(),
    /** Where the output was staged; kept for inspection when it was not published. */
    staging: z.string().nullable(),
    spark_version: z.string().nullable(),
    started_at: z.string(),
    finished_at: z.string(),
    duration_s: z.number().nonnegative(),
    args: z
      .object({
        assets: z.array(z.string()),
        raw: z.string(),
        lake: z.string(),
        start: Day.nullable(),
        end: Day.nullable(),
      })
      .strict(),
    quarantine: z
      .object({ rows: Count, by_reason: z.record(z.string(), Count), location: z.string().nullable() })
      .strict(),
    assets: z.record(z.string(), AssetReportSchema),
    /** Blocking checks that failed: why nothing was published. */
    failed_checks: z.array(FailedCheckSchema),
    /** Non-blocking checks that failed: published anyway, with a warning. */
    warnings: z.array(FailedCheckSchema),
    error: JobErrorSchema.nullable(),
  })
  .strict();
export type JobReport = z.infer<typeof JobReportSchema>;

export function parseJobReport(text: string, where: string): JobReport {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`job report at ${where} is not JSON`);
  }
  const parsed = JobReportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `job report at ${where} does not match report_version 2: ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  return parsed.data;
}

/** The JSON Schema the Python side is tested against. */
export function jobReportJsonSchema(): Record<string, unknown> {
  return {
    $comment:
      'Generated from lake/report.ts by `npm run contracts`; edit the zod schema there, not this file.',
    ...z.toJSONSchema(JobReportSchema, { target: 'draft-2020-12' }),
  };
}

/**
 * The explanation a person needs first, from the report: each failed blocking check's own message
 * (or its name) with how many rows failed, else the job's root-cause error.
 */
export function explainReport(report: JobReport): string | null {
  if (report.failed_checks.length > 0) {
    return report.failed_checks
      .map((c) => {
        const rows = `${c.failing_count.toLocaleString('en-US')} failing row${c.failing_count === 1 ? '' : 's'}`;
        const sample = c.sample.length > 0 ? `, e.g. ${c.sample.slice(0, 3).map(String).join(', ')}` : '';
        return c.message ? `${c.message} (${c.name}: ${rows}${sample})` : `${c.name}: ${rows}${sample}`;
      })
      .join('; ');
  }
  if (report.error) return `${report.error.message} (${report.error.type})`;
  return null;
}

/** Why one asset of a step was not published: its own checks or error first, else the reason the job gave. */
export function explainAsset(report: JobReport, asset: string): string {
  const a = report.assets[asset];
  if (!a) return `the job report has no entry for ${asset}`;
  const mine = report.failed_checks.filter((c) => c.asset === asset);
  if (mine.length > 0) return explainReport({ ...report, failed_checks: mine, error: null })!;
  if (a.error) return `${a.error.message} (${a.error.type})`;
  return `not published: ${a.not_published ?? 'no reason given'}`;
}
