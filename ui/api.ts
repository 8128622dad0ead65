import type { Client } from '@temporalio/client';
import { zValidator } from '@hono/zod-validator';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import {
  addDays,
  DaySchema,
  GraphError,
  graph,
  MonthSchema,
  monthsBetween,
  selectAssets,
  type DayRange,
} from '../assets';
import { backfillWorkflowId, renderPlan, startBackfill } from '../client/backfill';
import { startMaterialize } from '../client/runs';
import type { Config } from '../config/config';
import { UNPARTITIONED } from '../lake/manifests';
import { successOf } from '../lake/partition-index';
import { planBackfill } from '../lake/plan';
import { PartitionFilterSchema } from '../workflows/types';
import {
  listRuns,
  partitionQuery,
  runsOfPartition,
  type TemporalAccess,
  TemporalUnavailable,
  type TemporalLinks,
} from './temporal-runs';
import {
  assetMetrics,
  health,
  knownDaySpan,
  knownMonths,
  overview,
  partitionDetail,
  stepSeconds,
  type ViewSources,
} from './views';

/**
 * The JSON API under `/api`: everything the page shows, for scripts too. Every input is checked
 * with zod before anything runs; a refusal is a 400 naming the field.
 */

export interface ApiDeps {
  config: Config;
  sources: ViewSources;
  temporal: TemporalAccess;
  links: TemporalLinks;
}

/** The longest range one request may ask for: bounds the work of a view. */
const MAX_MONTHS = 600;

const AssetKey = z
  .string()
  .refine((k) => graph.specs.has(k), { message: `unknown asset; known: ${graph.order.join(', ')}` });

/**
 * zod runs an object's refinements even when a field failed its own check, so a refinement that
 * walks months must first know both are real months (monthsBetween('2018-13', …) never ends).
 */
const realMonths = (...ms: (string | undefined)[]): boolean =>
  ms.every((m) => m !== undefined && MonthSchema.safeParse(m).success);

const MonthRangeQuery = z
  .object({ from: MonthSchema.optional(), to: MonthSchema.optional() })
  .strict()
  .refine((q) => (q.from === undefined) === (q.to === undefined), {
    message: 'give both from and to, or neither',
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { message: 'to must not be before from', path: ['to'] })
  .refine(
    (q) => !realMonths(q.from, q.to) || q.from! > q.to! || monthsBetween(q.from!, q.to!).length <= MAX_MONTHS,
    {
      message: `at most ${MAX_MONTHS} months at once`,
      path: ['to'],
    },
  );

const PartitionParams = z
  .object({ asset: AssetKey, partition: z.string() })
  .strict()
  .superRefine((p, ctx) => {
    const spec = graph.specs.get(p.asset);
    if (!spec) return;
    const ok =
      spec.partitioning === 'daily'
        ? DaySchema.safeParse(p.partition).success
        : p.partition === UNPARTITIONED;
    if (!ok) {
      ctx.addIssue({
        code: 'custom',
        path: ['partition'],
        message:
          spec.partitioning === 'daily' ? 'expected a UTC day as YYYY-MM-DD' : `expected ${UNPARTITIONED}`,
      });
    }
  });

const Selection = z
  .string()
  .min(1)
  .max(500)
  .superRefine((s, ctx) => {
    try {
      selectAssets(graph, s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** A materialization: days from `from` to `to`, both included. */
export const MaterializeRequestSchema = z
  .object({
    selection: Selection,
    from: DaySchema,
    to: DaySchema,
    only: PartitionFilterSchema.default('outdated'),
  })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'to must not be before from', path: ['to'] });

/** A backfill: months from `from` to `to`, both included. */
export const BackfillRequestSchema = z
  .object({
    selection: Selection,
    from: MonthSchema,
    to: MonthSchema,
    per: z.enum(['month', 'day']).default('month'),
    only: PartitionFilterSchema.default('outdated'),
    concurrency: z.number().int().min(1).max(100).optional(),
  })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'to must not be before from', path: ['to'] });

const RunsQuery = z
  .object({
    status: z.enum(['running', 'all']).default('all'),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();

/** A refused input as a person reads it: `to: to must not be before from`. */
function refuse(
  result: {
    success: boolean;
    error?: { issues: readonly { path: readonly PropertyKey[]; message: string }[] };
  },
  c: Context,
) {
  if (result.success || !result.error) return undefined;
  const problems = result.error.issues.map(
    (i) => `${i.path.length ? `${i.path.map(String).join('.')}: ` : ''}${i.message}`,
  );
  return c.json({ error: problems.join('; ') }, 400);
}

/** Median EMR step duration per step, from the index: what a plan estimates its polling from. */
async function stepDurations(sources: ViewSources): Promise<Record<string, number>> {
  const index = await sources.index.read(graph.order);
  const byStep = new Map<string, number[]>();
  for (const entries of index.values()) {
    for (const entry of entries.values()) {
      const r = successOf(entry);
      const s = r ? stepSeconds(r) : null;
      if (r && s !== null) byStep.set(r.step, [...(byStep.get(r.step) ?? []), s]);
    }
  }
  return Object.fromEntries(
    [...byStep].map(([step, xs]) => [step, [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!]),
  );
}

export function createApi(deps: ApiDeps): Hono {
  const { config, sources, temporal, links } = deps;
  const api = new Hono();

  api.onError((err, c) => {
    if (err instanceof GraphError) return c.json({ error: err.message }, 400);
    return c.json({ error: err instanceof Error ? err.message : String(err) }, 500);
  });

  api.get('/config', (c) =>
    c.json({
      namespace: config.temporal.namespace,
      temporalWebUrl: links.base,
      lake: sources.lake.uri,
      raw: sources.raw.uri,
      price: sources.price,
      concurrency: config.concurrency,
      assets: graph.order.map((k) => ({ key: k, partitioning: graph.specs.get(k)!.partitioning })),
    }),
  );

  // The launch forms start from the lake's own days: a lake of 2018 data is not run for today.
  // Its own route, not /config's: every page's header reads /config, only the runs page this.
  api.get('/days', async (c) => c.json((await knownDaySpan(sources)) ?? { first: null, last: null }));

  api.get('/overview', async (c) => c.json(await overview(sources)));

  api.get('/health', zValidator('query', MonthRangeQuery, refuse), async (c) => {
    const q = c.req.valid('query');
    const { from, to } = q.from && q.to ? { from: q.from, to: q.to } : await knownMonths(sources);
    if (monthsBetween(from, to).length > MAX_MONTHS) {
      return c.json(
        { error: `the lake spans more than ${MAX_MONTHS} months: ask for a range (from, to)` },
        400,
      );
    }
    return c.json(await health(sources, from, to));
  });

  api.get(
    '/assets/:asset/metrics',
    zValidator('param', z.object({ asset: AssetKey }).strict(), refuse),
    zValidator('query', MonthRangeQuery, refuse),
    async (c) => {
      const { asset } = c.req.valid('param');
      const q = c.req.valid('query');
      return c.json(
        await assetMetrics(sources, asset, q.from && q.to ? { from: q.from, to: q.to } : undefined),
      );
    },
  );

  api.get('/partitions/:asset/:partition', zValidator('param', PartitionParams, refuse), async (c) => {
    const { asset, partition } = c.req.valid('param');
    const detail = await partitionDetail(sources, asset, partition);
    const query = partitionQuery(asset, partition);
    return c.json({
      ...detail,
      temporal: { query, url: links.search(query) },
      runs: detail.runs.map((r) => ({ ...r, workflowUrl: links.workflow(r.workflowId) })),
    });
  });

  // Apart from the partition itself: Temporal may be slow or down, the lake's answer is not.
  api.get('/partitions/:asset/:partition/runs', zValidator('param', PartitionParams, refuse), async (c) => {
    const { asset, partition } = c.req.valid('param');
    return temporalOr503(c, async (client) =>
      c.json({ runs: await runsOfPartition(client, links, asset, partition) }),
    );
  });

  api.get('/runs', zValidator('query', RunsQuery, refuse), async (c) => {
    const q = c.req.valid('query');
    return temporalOr503(c, async (client) =>
      c.json({ runs: await listRuns(client, links, { limit: q.limit, running: q.status === 'running' }) }),
    );
  });

  api.post('/materializations', zValidator('json', MaterializeRequestSchema, refuse), async (c) => {
    const r = c.req.valid('json');
    const range: DayRange = { start: r.from, end: addDays(r.to, 1) };
    return temporalOr503(c, async (client) => {
      const { handle, joined } = await startMaterialize(client, config, {
        selection: r.selection,
        range,
        only: r.only,
      });
      return c.json(
        { workflowId: handle.workflowId, joined, url: links.workflow(handle.workflowId) },
        joined ? 200 : 201,
      );
    });
  });

  api.post('/backfills/plan', zValidator('json', BackfillRequestSchema, refuse), async (c) => {
    const r = c.req.valid('json');
    // The same planning the backfill workflow does first, from the same lake: nothing starts.
    const plan = await planBackfill(sources.lake, sources.raw, {
      selection: r.selection,
      from: r.from,
      to: r.to,
      per: r.per,
      only: r.only,
      codeVersion: await sources.codeVersion(),
    });
    const text = renderPlan(plan, {
      poll: { initialMs: config.emr.pollInitialMs, maxMs: config.emr.pollMaxMs },
      durations: await stepDurations(sources),
    });
    return c.json({ workflowId: backfillWorkflowId(r), plan, text });
  });

  api.post('/backfills', zValidator('json', BackfillRequestSchema, refuse), async (c) => {
    const r = c.req.valid('json');
    return temporalOr503(c, async (client) => {
      const handle = await startBackfill(client, config, {
        selection: r.selection,
        from: r.from,
        to: r.to,
        per: r.per,
        only: r.only,
        concurrency: r.concurrency ?? config.concurrency.months,
      });
      return c.json({ workflowId: handle.workflowId, url: links.workflow(handle.workflowId) }, 201);
    });
  });

  /** `fn` with the client; 503 when Temporal cannot be reached (its own errors pass on). */
  async function temporalOr503(c: Context, fn: (client: Client) => Promise<Response>): Promise<Response> {
    try {
      return await temporal.use(fn);
    } catch (err) {
      if (!(err instanceof TemporalUnavailable)) throw err;
      return c.json({ error: `Temporal: ${err.message}` }, 503);
    }
  }

  return api;
}
