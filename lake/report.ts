import { z } from 'zod';

/** The Spark job's report (docs/contracts.md §2), validated where it enters TypeScript. */

const Check = z.object({
  name: z.string(),
  passed: z.boolean(),
  failing_count: z.number().int().nonnegative(),
  sample: z.array(z.unknown()),
});

const AssetReport = z.object({
  rows: z.number().int().nonnegative(),
  rows_per_day: z.record(z.string(), z.number().int().nonnegative()).nullable(),
  quarantined: z.record(z.string(), z.number().int().nonnegative()).default({}),
  duplicates_dropped: z.number().int().nonnegative().default(0),
  input_files: z.number().int().nonnegative(),
  duration_s: z.number().nonnegative(),
  checks: z.array(Check),
});

export const JobReportSchema = z.object({
  report_version: z.literal(1),
  status: z.enum(['succeeded', 'check_failed', 'failed']),
  spark_version: z.string(),
  started_at: z.string(),
  finished_at: z.string(),
  duration_s: z.number().nonnegative(),
  assets: z.record(z.string(), AssetReport),
  failed_checks: z.array(z.unknown()),
});
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
      `job report at ${where} does not match report_version 1: ${issue?.path.join('.')}: ${issue?.message}`,
    );
  }
  return parsed.data;
}
