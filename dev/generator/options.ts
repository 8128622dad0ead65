/** The generator's options: raw CLI strings in, validated and typed options out. */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export interface GeneratorOptions {
  out: string;
  days: number;
  users: number;
  songs: number;
  seed: number;
  /** First UTC day, YYYY-MM-DD. */
  start: string;
  eventsPerDay: number;
  /** Share of plays that are of a song in song_data (title, artist and length match). */
  matchShare: number;
  /** Replace the generated data already in `out` instead of refusing. */
  force: boolean;
}

export const DEFAULTS = { start: '2018-11-01', eventsPerDay: 2000, matchShare: 0.3, force: false } as const;

/** What the generator writes into `out`; --force removes exactly these. */
export const OUTPUTS = ['song_data', 'log_data', '_generator.json'] as const;

function integer(flag: string, min: number, max: number) {
  const what =
    min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
  return z
    .union([z.string(), z.number()])
    .transform((v) => String(v).trim())
    .refine((v) => /^\d+$/.test(v), `${flag} must be ${what}`)
    .transform(Number)
    .refine((n) => Number.isSafeInteger(n) && n >= min, `${flag} must be ${what}`)
    .refine((n) => n <= max, `${flag} must be at most ${max}`);
}

function isUtcDay(v: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) return false;
  const d = new Date(`${v}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === v;
}

export const optionsSchema = z
  .object({
    out: z.string({ error: '--out is required' }).trim().min(1, '--out is required'),
    days: integer('--days', 1, 3660),
    users: integer('--users', 1, 5_000_000),
    songs: integer('--songs', 1, 2_000_000),
    seed: integer('--seed', 0, Number.MAX_SAFE_INTEGER),
    start: z.string().default(DEFAULTS.start).refine(isUtcDay, '--start must be a date YYYY-MM-DD'),
    eventsPerDay: integer('--events-per-day', 1, 50_000_000).default(DEFAULTS.eventsPerDay),
    matchShare: z
      .union([z.string(), z.number()])
      .default(DEFAULTS.matchShare)
      .transform((v) => (typeof v === 'number' ? v : /^\s*\d*\.?\d+\s*$/.test(v) ? Number(v) : NaN))
      .refine((n) => n >= 0 && n <= 1, '--match-share must be a number between 0 and 1'),
    force: z.boolean().default(DEFAULTS.force),
  })
  .strict();

export type RawOptions = z.input<typeof optionsSchema>;

export class OptionsError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'OptionsError';
  }
}

/**
 * Validates everything before anything is written, including the output directory: data left
 * from another run would silently change the counts in _generator.json.
 */
export function parseOptions(raw: RawOptions): GeneratorOptions {
  const parsed = optionsSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) =>
      i.code === 'unrecognized_keys' ? `unknown option(s): ${i.keys.join(', ')}` : i.message,
    );
    throw new OptionsError([...new Set(problems)]);
  }
  const o = parsed.data;
  const out = path.resolve(o.out);
  if (fs.existsSync(out)) {
    if (!fs.statSync(out).isDirectory())
      throw new OptionsError([`--out ${o.out} exists and is not a directory`]);
    const clash = OUTPUTS.filter((name) => fs.existsSync(path.join(out, name)));
    if (clash.length > 0 && !o.force) {
      throw new OptionsError([
        `--out ${o.out} already holds generated data (${clash.join(', ')}); pass --force to replace it`,
      ]);
    }
  }
  return { ...o, out };
}
