import { z } from 'zod';
import declaration from './assets.json';

/**
 * The asset graph is declared once, as data, in `assets.json`: this module (TypeScript) and
 * `spark/sparkify_jobs/graph.py` (the Spark jobs) both read that file, so the two languages cannot
 * disagree about which assets exist, how they are partitioned, which step builds them, what they
 * write and which of their checks block publishing. Everything else — order, the steps of a run,
 * leases, selection, status — is derived from it (see derive.ts).
 */

export const ASSET_KEY_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
export const AssetKeySchema = z
  .string()
  .regex(ASSET_KEY_PATTERN, 'an asset key is lower-case letters, digits and _ (starting with a letter)');

/** A lake path relative to the lake root, e.g. `users` or `_state/user_current`. */
const LakePathSchema = z
  .string()
  .regex(/^_?[a-z][a-z0-9_]*(\/_?[a-z][a-z0-9_]*)*$/, 'a lake path like _state/x');

export const CheckSpecSchema = z
  .object({
    /** As the job reports it: `<table>.<column> <property>`. */
    name: z.string().min(1),
    /** A failed blocking check keeps the step's output from being published; others only warn. */
    blocking: z.boolean(),
  })
  .strict();
export type CheckSpec = z.infer<typeof CheckSpecSchema>;

/**
 * Where a write lands: `lake` (a path under the lake root, the default) or `warehouse` (a table of
 * the serving database, see warehouse/). The two are separate namespaces: the lake's `songs` and
 * the warehouse's `songs` are different things with different writers.
 */
export const StoreSchema = z.enum(['lake', 'warehouse']);
export type Store = z.infer<typeof StoreSchema>;

export const WriteSpecSchema = z
  .object({
    store: StoreSchema.default('lake'),
    /** A lake path, or for the warehouse a table name (no `/`). */
    path: LakePathSchema,
    /**
     * table: every run of the asset rewrites the path as a whole (so runs over different days
     * still conflict); partition: a run rewrites only the partitions of its days.
     */
    scope: z.enum(['table', 'partition']),
  })
  .strict()
  .refine((w) => w.store !== 'warehouse' || !w.path.includes('/'), {
    message: 'a warehouse write names a table: lower-case letters, digits and _',
  });
export type WriteSpec = z.infer<typeof WriteSpecSchema>;

export const InputSpecSchema = z
  .object({
    description: z.string().min(1),
    layout: z.string().min(1),
    partitioning: z.enum(['daily', 'unpartitioned']),
  })
  .strict();

export const COLUMN_TYPES = ['string', 'int32', 'int64', 'double', 'timestamp'] as const;

export const TableSpecSchema = z
  .object({
    /** Every column a reader sees, partition columns included, in order. */
    columns: z
      .array(z.object({ name: z.string().regex(/^[a-z][a-z0-9_]*$/), type: z.enum(COLUMN_TYPES) }).strict())
      .min(1),
    /** Columns that are directories (`year=2018/`), not in the files. */
    partitionBy: z.array(z.string()),
  })
  .strict()
  .refine((t) => t.partitionBy.every((p) => t.columns.some((c) => c.name === p)), {
    message: 'every partition column is one of the columns',
  });
export type TableSpec = z.infer<typeof TableSpecSchema>;

export const AssetSpecSchema = z
  .object({
    key: AssetKeySchema,
    description: z.string().min(1),
    deps: z.array(AssetKeySchema),
    /** daily: one partition per UTC day; unpartitioned: rebuilt as a whole from its inputs. */
    partitioning: z.enum(['daily', 'unpartitioned']),
    /**
     * The Spark step that produces the asset. Assets naming the same step are produced together
     * by one spark-submit (a multi-asset), e.g. songs and artists from one read of song_data.
     */
    step: AssetKeySchema,
    /** Raw inputs the step reads; their fingerprints decide staleness. */
    inputs: z.array(z.string().min(1)),
    /** Lake paths written by other assets that the step reads. */
    reads: z.array(LakePathSchema),
    /** Everything the asset's step writes for it, besides reports: lake paths and warehouse tables. */
    writes: z.array(WriteSpecSchema).min(1),
    /**
     * The asset's lake table as readers see it: the contract the Spark jobs write to. Warehouse
     * assets have none (their tables are the migrations').
     */
    table: TableSpecSchema.optional(),
    checks: z.array(CheckSpecSchema),
  })
  .strict();
export type AssetSpec = z.infer<typeof AssetSpecSchema>;
export type AssetKey = string;

export const DeclarationSchema = z
  .object({
    version: z.literal(1),
    partitions: z
      .object({
        daily: z
          .object({
            description: z.string(),
            timezone: z.literal('UTC'),
            first: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
            last: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
          })
          .strict(),
      })
      .strict(),
    /** What each column type means (the Spark jobs and the warehouse map them). */
    types: z.record(z.enum(COLUMN_TYPES), z.string()),
    inputs: z.record(z.string().regex(ASSET_KEY_PATTERN), InputSpecSchema),
    assets: z.array(z.unknown()),
  })
  .strict();
export type Declaration = z.infer<typeof DeclarationSchema>;

/** The declaration as the repository has it; parsed (and the graph checked) in index.ts. */
export const DECLARATION: Declaration = DeclarationSchema.parse(declaration);
export const ASSETS: readonly unknown[] = DECLARATION.assets;
