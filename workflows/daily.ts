import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import { addDays, DaySchema, msToDay } from '../assets/partitions';
import { materialize } from './materialize';
import type { MaterializeResult } from './types';

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

export interface DailyInput {
  selection: string;
  fuse?: 'none' | 'daily' | 'all';
  maxParallelSteps?: number;
  stepHeartbeatTimeoutMs?: number;
  /** Only for a manual start outside a schedule; a scheduled run takes its day from the schedule. */
  day?: string;
}

/**
 * What the daily schedule starts: the previous UTC day relative to the schedule's nominal time
 * (not the clock), so a late, caught-up or backfilled run processes the day it stands for.
 * Like every run, it builds only what is not up to date: songs and artists when song_data changed.
 */
export async function daily(input: DailyInput): Promise<MaterializeResult> {
  const nominal = workflowInfo().typedSearchAttributes.get(SCHEDULED_START);
  const day = input.day ?? (nominal ? addDays(msToDay(nominal.getTime()), -1) : undefined);
  if (day === undefined || !DaySchema.safeParse(day).success) {
    throw ApplicationFailure.nonRetryable(
      `daily needs a schedule's nominal time or an explicit valid day (got ${String(day)})`,
      'InvalidInput',
    );
  }
  return materialize({
    selection: input.selection,
    range: { start: day, end: addDays(day, 1) },
    runKind: 'schedule',
    fuse: input.fuse,
    maxParallelSteps: input.maxParallelSteps,
    stepHeartbeatTimeoutMs: input.stepHeartbeatTimeoutMs,
  });
}
