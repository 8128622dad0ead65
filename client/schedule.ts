import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsAction,
} from '@temporalio/client';
import type { Config } from '../config/config';
import { graph, selectAssets } from '../assets';
import { daily } from '../workflows';

/**
 * The daily Temporal Schedule. `apply` is idempotent: it creates the schedule or updates the
 * one that exists to the configured settings, so running it twice leaves one schedule.
 */

function desired(config: Config) {
  const s = config.schedule;
  const action: ScheduleOptionsAction = {
    type: 'startWorkflow',
    workflowType: daily,
    // The schedule appends the nominal time, giving ids like sparkify-daily-2026-11-27T02:00:00Z.
    workflowId: s.id,
    taskQueue: config.temporal.taskQueue,
    args: [
      {
        selection: s.selection,
        maxParallelSteps: config.concurrency.steps,
        fuse: config.emr.fuseSteps,
        stepHeartbeatTimeoutMs: config.emr.stepHeartbeatTimeoutMs,
      },
    ],
    memo: { selection: s.selection, kind: 'schedule' },
    staticSummary: `${selectAssets(graph, s.selection).join(', ')} · the UTC day before · schedule`,
    staticDetails: [
      '| | |',
      '|---|---|',
      `| selection | \`${s.selection}\` |`,
      `| days | the UTC day before the schedule's nominal time (${String(s.hour).padStart(2, '0')}:${String(s.minute).padStart(2, '0')} UTC) |`,
      '| builds | what is not up to date |',
      `| lake | \`${config.storage.lake}\` |`,
      `| schedule | \`${s.id}\` |`,
    ].join('\n'),
  };
  return {
    spec: { calendars: [{ hour: s.hour, minute: s.minute }] },
    action,
    policies: {
      overlap: ScheduleOverlapPolicy[s.overlap],
      catchupWindow: s.catchupWindowDays * 86_400_000,
    },
  };
}

export async function applySchedule(client: Client, config: Config): Promise<'created' | 'updated'> {
  const want = desired(config);
  try {
    await client.schedule.create({ scheduleId: config.schedule.id, ...want });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(config.schedule.id).update((previous) => ({
    ...previous,
    spec: want.spec,
    action: want.action,
    policies: { ...previous.policies, ...want.policies },
  }));
  return 'updated';
}

export function describeSchedule(d: ScheduleDescription): Record<string, unknown> {
  const action = d.action.type === 'startWorkflow' ? d.action : undefined;
  return {
    id: d.scheduleId,
    paused: d.state.paused,
    note: d.state.note,
    calendars: d.spec.calendars,
    overlap: d.policies.overlap,
    catchupWindowMs: d.policies.catchupWindow,
    workflowType: action?.workflowType,
    args: action?.args,
    nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.slice(-5).map((a) => ({
      nominal: a.scheduledAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
    })),
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
  };
}
