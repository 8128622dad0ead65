import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import {
  ApplicationFailure,
  CancelledFailure,
  heartbeat,
  sleep as activitySleep,
} from '@temporalio/activity';
import { createActivities } from '../../activities';
import { openLake, type Lake } from '../../lake/store';
import type { JobReport } from '../../lake/report';
import { daysIn, graph } from '../../assets';
import type { Config } from '../../config/config';
import type { CodeVersion, RunStepInput, SparkifyActivities } from '../../workflows/types';

export const FAKE_CODE: CodeVersion = {
  hash: 'feedfacecafe0001',
  runPy: 'file:///code/run.py',
  pyFiles: 'file:///code/sparkify_jobs.zip',
};

export interface StepScript {
  durationMs?: number;
  /** Steps (by `<stepKey>@<range start>`) that fail for good. */
  fail?: string[];
  /**
   * Assets (by `<asset>@<range start>`) whose blocking check fails: the job publishes the other
   * assets of the step and reports this one, like the real job (a DataCheckFailed with the
   * report's location).
   */
  failChecks?: string[];
  /**
   * A file standing in for EMR: a step that completed is recorded there, and a later attempt
   * adopts it instead of running it again — the property the real EMR activity provides.
   */
  ledger?: string;
  /** A file that records when steps start, end and are cancelled (with epoch ms). */
  events?: string;
  /** The code version publishSparkCode returns (default FAKE_CODE). */
  code?: CodeVersion;
  /** Mixed into every data version: a different salt is different data. */
  dataSalt?: string;
  /** Rows the step reports for an asset's day (default 10), e.g. to draw a realistic page. */
  rows?: (asset: string, day: string) => number;
}

export const stepLabel = (i: Pick<RunStepInput, 'stepKey' | 'range'>) => `${i.stepKey}@${i.range.start}`;

function version(...parts: string[]): string {
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 16);
}

/** A well-formed job report (report_version 2) for a step that built `input`'s assets. */
export function scriptedReport(
  input: RunStepInput,
  salt = '',
  rowsOf: (asset: string, day: string) => number = () => 10,
): JobReport {
  const days = daysIn(input.range);
  const now = new Date().toISOString();
  const assets = Object.fromEntries(
    input.assets.map((a) => {
      const daily = graph.specs.get(a)!.partitioning === 'daily';
      const perDay = Object.fromEntries(days.map((d) => [d, rowsOf(a, d)]));
      const whole = rowsOf(a, input.range.start);
      return [
        a,
        {
          rows: daily ? Object.values(perDay).reduce((x, y) => x + y, 0) : whole,
          rows_per_day: daily ? perDay : null,
          table_rows: daily ? null : whole,
          data_version: daily ? null : version(a, salt),
          data_versions: daily ? Object.fromEntries(days.map((d) => [d, version(a, d, salt)])) : null,
          quarantined: {},
          quarantine: { rows: 0, location: null },
          duplicates_dropped: 0,
          input_files: 1,
          duration_s: 0.01,
          checks: [],
          details: {},
          published: true,
          not_published: null,
          error: null,
        },
      ];
    }),
  );
  return {
    report_version: 2,
    status: 'succeeded',
    published: true,
    staging: null,
    spark_version: 'scripted',
    started_at: now,
    finished_at: now,
    duration_s: 0.01,
    args: { assets: input.assets, raw: '', lake: '', start: input.range.start, end: input.range.end },
    quarantine: { rows: 0, by_reason: {}, location: null },
    assets,
    failed_checks: [],
    warnings: [],
    error: null,
  };
}

/**
 * The real activities (leases, manifests, freshness, plans) with the Spark step replaced by a
 * scripted one that writes a well-formed job report, so workflows can be tested in seconds
 * without Spark.
 */
export function scriptedActivities(config: Config, lake: Lake, script: StepScript = {}): SparkifyActivities {
  const real = createActivities(config, { lake, raw: openLake(config.storage.raw) });
  const event = (what: string, label: string) => {
    if (script.events) appendFileSync(script.events, `${what} ${label} ${Date.now()}\n`);
  };
  return {
    ...real,
    async publishSparkCode() {
      return script.code ?? FAKE_CODE;
    },
    async runStep(input) {
      const label = stepLabel(input);
      const done =
        script.ledger && existsSync(script.ledger) ? readFileSync(script.ledger, 'utf8').split('\n') : [];
      const reportKey = `_reports/${input.stepKey}/${input.range.start}_${input.range.end}/${input.runTag.replace(/[^A-Za-z0-9-]/g, '_')}.json`;
      if (done.includes(label))
        return { stepId: `s-${label}`, adopted: true, reportUri: lake.uriOf(reportKey) };
      const startedAt = new Date().toISOString();
      const end = Date.now() + (script.durationMs ?? 50);
      event('started', label);
      try {
        while (Date.now() < end) {
          heartbeat();
          await activitySleep(Math.min(200, Math.max(1, end - Date.now())));
        }
      } catch (err) {
        // Where the real activity sends CancelSteps to EMR.
        if (err instanceof CancelledFailure) event('cancelled', label);
        throw err;
      }
      event('ended', label);
      if (script.fail?.includes(label)) {
        throw ApplicationFailure.create({
          type: 'EmrStepFailed',
          message: `scripted failure of ${label} — EMR step s-${label} FAILED, log file:///logs/${label}/stderr`,
          nonRetryable: true,
          details: [{ stepId: `s-${label}`, logFile: `file:///logs/${label}/stderr` }],
        });
      }
      const failing = input.assets.filter((a) => script.failChecks?.includes(`${a}@${input.range.start}`));
      if (failing.length > 0) {
        const report = scriptedReport(input, script.dataSalt);
        report.status = 'check_failed';
        report.published = false;
        report.staging = `file:///lake/_staging/${label}`;
        for (const a of failing) {
          const check = {
            name: `${a}.user_id in users`,
            passed: false,
            blocking: true,
            failing_count: 73,
            sample: [3, 9],
            message: 'users table missing: materialize users for these days first',
          };
          report.assets[a] = {
            ...report.assets[a]!,
            published: false,
            not_published: 'its checks failed',
            checks: [check],
          };
          report.failed_checks.push({ asset: a, ...check });
        }
        await lake.write(reportKey, JSON.stringify(report));
        throw ApplicationFailure.create({
          type: 'DataCheckFailed',
          message: `users table missing: materialize users for these days first (${failing[0]}.user_id in users: 73 failing rows, e.g. 3, 9) — EMR step s-${label} FAILED, log file:///logs/${label}/stderr; staged output kept at file:///lake/_staging/${label}`,
          nonRetryable: true,
          details: [
            {
              stepId: `s-${label}`,
              logFile: `file:///logs/${label}/stderr`,
              stagingUri: `file:///lake/_staging/${label}`,
              reportUri: lake.uriOf(reportKey),
            },
          ],
        });
      }
      await lake.write(reportKey, JSON.stringify(scriptedReport(input, script.dataSalt, script.rows)));
      if (script.ledger) appendFileSync(script.ledger, `${label}\n`);
      // The EMR step's own start and end, as the real activity reports them (durations, cost).
      const endedAt = new Date().toISOString();
      return { stepId: `s-${label}`, adopted: false, reportUri: lake.uriOf(reportKey), startedAt, endedAt };
    },
  };
}
