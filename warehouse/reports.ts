import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Client } from 'pg';
import { z } from 'zod';
import type { DayRange } from '../assets/partitions';

/**
 * The analytics: each question is a .sql file in warehouse/reports/ that also runs as it is in
 * psql, over the UTC days [from, to) given as psql variables:
 *
 *     psql -v from=2018-11-01 -v to=2018-12-01 -f warehouse/reports/top_songs.sql
 *
 * Here the same file runs through node-postgres: `:'from'` and `:'to'` become bind parameters
 * (never string-spliced), and every row is validated against the question's schema.
 */

const Count = z.number().int().nonnegative();
const Share = z.number().min(0).max(1).nullable();
const Text = z.string().nullable();

export const QUESTIONS = {
  top_songs: {
    title: 'Top songs by plays',
    row: z.object({ song_id: z.string(), title: Text, artist: Text, plays: Count }),
  },
  top_artists: {
    title: 'Top artists by plays',
    row: z.object({ artist_id: z.string(), name: Text, plays: Count }),
  },
  plays_by_hour: {
    title: 'Plays by hour of day (UTC)',
    row: z.object({ hour: z.number().int().min(0).max(23), plays: Count }),
  },
  plays_by_weekday: {
    title: 'Plays by weekday (UTC)',
    row: z.object({ weekday: z.number().int().min(1).max(7), name: z.string(), plays: Count }),
  },
  level_share: {
    title: 'Free vs paid: plays and users',
    row: z.object({ level: Text, plays: Count, share_of_plays: Share, users: Count, share_of_users: Share }),
  },
  top_users: {
    title: 'Top users by plays',
    row: z.object({
      user_id: z.number().int(),
      first_name: Text,
      last_name: Text,
      level: Text,
      plays: Count,
    }),
  },
  top_locations: {
    title: 'Top locations by plays',
    row: z.object({ location: z.string(), plays: Count }),
  },
  catalogue_share: {
    title: 'Plays whose song is in the catalogue',
    row: z.object({ plays: Count, in_catalogue: Count, share: Share }),
  },
} as const;
export type Question = keyof typeof QUESTIONS;
export const QUESTION_NAMES = Object.keys(QUESTIONS) as Question[];

export type Answers = { [Q in Question]: z.infer<(typeof QUESTIONS)[Q]['row']>[] };

export interface WarehouseReport {
  range: DayRange;
  answers: Answers;
}

export const REPORTS_DIR = resolve(__dirname, 'reports');

/** A report file as node-postgres runs it: psql's `:'from'` and `:'to'` as $1 and $2. */
export function reportQuery(name: Question, dir = REPORTS_DIR): string {
  const sql = readFileSync(resolve(dir, `${name}.sql`), 'utf8');
  const body = sql
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('--'))
    .join('\n');
  const unknown = [...body.matchAll(/:'?([A-Za-z_][A-Za-z0-9_]*)'?/g)]
    .filter((m) => m.index > 0 && body[m.index - 1] !== ':')
    .map((m) => m[1]!)
    .filter((v) => v !== 'from' && v !== 'to');
  if (unknown.length > 0)
    throw new Error(`${name}.sql uses psql variables other than from and to: ${unknown.join(', ')}`);
  return body.replaceAll(":'from'", '$1').replaceAll(":'to'", '$2').trim().replace(/;$/, '');
}

/** Every question over [range.start, range.end), in one read-only transaction (one snapshot). */
export async function runReports(client: Client, range: DayRange): Promise<WarehouseReport> {
  const answers: Record<string, unknown[]> = {};
  await client.query('BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    for (const name of QUESTION_NAMES) {
      const result = await client.query(reportQuery(name), [range.start, range.end]);
      const parsed = z.array(QUESTIONS[name].row).safeParse(result.rows);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new Error(
          `${name}.sql returned an unexpected row: ${issue?.path.join('.')}: ${issue?.message}`,
        );
      }
      answers[name] = parsed.data;
    }
  } finally {
    await client.query('ROLLBACK');
  }
  return { range, answers: answers as Answers };
}
