import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import {
  ApplicationFailure,
  CancelledFailure,
  heartbeat,
  sleep as activitySleep,
} from '@temporalio/activity';
import { createActivities } from '../../activities';
import type { Lake } from '../../lake/store';
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
   * A file standing in for EMR: a step that completed is recorded there, and a later attempt
   * adopts it instead of running it again — the property the real EMR activity provides.
   */
  ledger?: string;
  /** A file that records when steps start and when they are cancelled. */
  events?: string;
}

export const stepLabel = (i: Pick<RunStepInput, 'stepKey' | 'range'>) => `${i.stepKey}@${i.range.start}`;

/**
 * The real activities (manifests, change detection, partition states) with the Spark step
 * replaced by a scripted one that writes a well-formed job report, so workflows can be tested
 * in seconds without Spark.
 */
export function scriptedActivities(config: Config, lake: Lake, script: StepScript = {}): SparkifyActivities {
  const real = createActivities(config, { lake });
  return {
    ...real,
    async publishSparkCode() {
      return FAKE_CODE;
    },
    async runStep(input) {
      const label = stepLabel(input);
      const done =
        script.ledger && existsSync(script.ledger) ? readFileSync(script.ledger, 'utf8').split('\n') : [];
      const reportKey = `_reports/${input.stepKey}/${input.range.start}_${input.range.end}/${input.runTag.replace(/[^A-Za-z0-9-]/g, '_')}.json`;
      if (done.includes(label))
        return { stepId: `s-${label}`, adopted: true, reportUri: lake.uriOf(reportKey) };
      const end = Date.now() + (script.durationMs ?? 50);
      if (script.events) appendFileSync(script.events, `started ${label}\n`);
      try {
        while (Date.now() < end) {
          heartbeat();
          await activitySleep(Math.min(200, Math.max(1, end - Date.now())));
        }
      } catch (err) {
        // Where the real activity sends CancelSteps to EMR.
        if (script.events && err instanceof CancelledFailure)
          appendFileSync(script.events, `cancelled ${label}\n`);
        throw err;
      }
      if (script.fail?.includes(label)) {
        // Like a failed data check: retrying would not help, so the run reports it at once.
        throw ApplicationFailure.nonRetryable(`scripted failure of ${label}`, 'DataCheckFailed');
      }
      const days = daysIn(input.range);
      const assets = Object.fromEntries(
        input.assets.map((a) => {
          const daily = graph.specs.get(a)!.partitioning === 'daily';
          return [
            a,
            {
              rows: daily ? days.length * 10 : 10,
              rows_per_day: daily ? Object.fromEntries(days.map((d) => [d, 10])) : null,
              quarantined: {},
              duplicates_dropped: 0,
              input_files: 1,
              duration_s: 0.01,
              checks: [],
            },
          ];
        }),
      );
      await lake.write(
        reportKey,
        JSON.stringify({
          report_version: 1,
          status: 'succeeded',
          spark_version: 'scripted',
          started_at: new Date().toISOString(),
          finished_at: new Date().toISOString(),
          duration_s: 0.01,
          assets,
          failed_checks: [],
        }),
      );
      if (script.ledger) appendFileSync(script.ledger, `${label}\n`);
      return { stepId: `s-${label}`, adopted: false, reportUri: lake.uriOf(reportKey) };
    },
  };
}
