import { z } from 'zod';

/**
 * The asset graph, declared as data. Everything else — order, the steps of a run, selection,
 * status — is derived from this list (see derive.ts), so an asset is added here and nowhere else.
 */

export const ASSET_KEY_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
export const AssetKeySchema = z
  .string()
  .regex(ASSET_KEY_PATTERN, 'an asset key is lower-case letters, digits and _ (starting with a letter)');

export const AssetSpecSchema = z
  .object({
    key: AssetKeySchema,
    description: z.string().min(1),
    deps: z.array(AssetKeySchema),
    /** daily: one partition per UTC day; unpartitioned: rebuilt as a whole from its source. */
    partitioning: z.enum(['daily', 'unpartitioned']),
    /** The raw source the producing job reads; used for change detection and status. */
    source: z.enum(['song_data', 'log_data']),
    /**
     * The Spark step that produces the asset. Assets naming the same step are produced together
     * by one spark-submit (a multi-asset), e.g. songs and artists from one read of song_data.
     */
    step: AssetKeySchema,
  })
  .strict();

export type AssetSpec = z.infer<typeof AssetSpecSchema>;
export type AssetKey = string;

export const ASSETS: readonly AssetSpec[] = [
  {
    key: 'songs',
    description: 'One row per song from song_data, partitioned by year and artist_id',
    deps: [],
    partitioning: 'unpartitioned',
    source: 'song_data',
    step: 'song_tables',
  },
  {
    key: 'artists',
    description: 'One row per artist from song_data',
    deps: [],
    partitioning: 'unpartitioned',
    source: 'song_data',
    step: 'song_tables',
  },
  {
    key: 'users',
    description: "One row per user, level from the user's latest play",
    deps: [],
    partitioning: 'daily',
    source: 'log_data',
    step: 'users',
  },
  {
    key: 'time',
    description: 'One row per distinct play timestamp, partitioned by year, month, day',
    deps: [],
    partitioning: 'daily',
    source: 'log_data',
    step: 'time',
  },
  {
    key: 'songplays',
    description: 'NextSong events matched to songs and artists, partitioned by year, month, day',
    // users: the job checks that every play's user exists in users.
    deps: ['songs', 'artists', 'users'],
    partitioning: 'daily',
    source: 'log_data',
    step: 'songplays',
  },
];
