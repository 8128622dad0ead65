import { z } from 'zod';
import { AssetSpecSchema, DECLARATION, type AssetSpec } from './graph';

/** Everything derived from the declared graph. Pure functions: workflow code imports them too. */

export class GraphError extends Error {
  override name = 'GraphError';
}

export interface AssetGraph {
  /** Assets in a topological order (dependencies first; ties keep declaration order). */
  readonly order: readonly string[];
  readonly specs: ReadonlyMap<string, AssetSpec>;
  readonly downstream: ReadonlyMap<string, readonly string[]>;
  /** Lake path (or `warehouse:<table>`) → the asset whose step writes it. */
  readonly writer: ReadonlyMap<string, string>;
}

export function buildGraph(
  declared: readonly unknown[],
  inputs: Readonly<Record<string, unknown>> = DECLARATION.inputs,
): AssetGraph {
  const parsed = z.array(AssetSpecSchema).safeParse(declared);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GraphError(`invalid asset declaration at ${issue?.path.join('.')}: ${issue?.message}`);
  }
  const specs = new Map<string, AssetSpec>();
  for (const spec of parsed.data) {
    if (specs.has(spec.key)) throw new GraphError(`asset "${spec.key}" is declared twice`);
    specs.set(spec.key, spec);
  }
  const downstream = new Map<string, string[]>([...specs.keys()].map((k) => [k, []]));
  for (const spec of specs.values()) {
    for (const dep of spec.deps) {
      if (!specs.has(dep)) throw new GraphError(`asset "${spec.key}" depends on unknown asset "${dep}"`);
      downstream.get(dep)!.push(spec.key);
    }
    for (const input of spec.inputs) {
      if (!(input in inputs)) throw new GraphError(`asset "${spec.key}" reads unknown input "${input}"`);
    }
    const loadsWarehouse = spec.writes.some((w) => w.store === 'warehouse');
    if (!loadsWarehouse && !spec.table) {
      throw new GraphError(
        `asset "${spec.key}" writes a lake table but declares no table (columns and types)`,
      );
    }
    const names = spec.checks.map((c) => c.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new GraphError(`asset "${spec.key}" declares check "${twice}" twice`);
  }
  const stepPartitioning = new Map<string, AssetSpec>();
  for (const spec of specs.values()) {
    const first = stepPartitioning.get(spec.step);
    if (first && first.partitioning !== spec.partitioning) {
      throw new GraphError(
        `step "${spec.step}" produces "${first.key}" (${first.partitioning}) and "${spec.key}" (${spec.partitioning}); assets of one step must share their partitioning`,
      );
    }
    stepPartitioning.set(spec.step, first ?? spec);
  }
  // One writer per path (and per warehouse table): the lease of the step that writes it is what
  // keeps runs apart.
  const writer = new Map<string, string>();
  for (const spec of specs.values()) {
    for (const w of spec.writes) {
      const key = writeKey(w);
      const other = writer.get(key);
      if (other !== undefined) {
        throw new GraphError(
          `"${key}" is written by both "${other}" and "${spec.key}"; a path has one writer`,
        );
      }
      writer.set(key, spec.key);
    }
  }
  const graph: AssetGraph = { order: topologicalOrder(specs), specs, downstream, writer };
  // A path an asset reads must come from something it depends on, or a run could read it half-built.
  for (const spec of specs.values()) {
    const upstream = upstreamOf(graph, spec.key);
    for (const path of spec.reads) {
      const from = writer.get(path);
      if (from === undefined)
        throw new GraphError(`asset "${spec.key}" reads "${path}", which no asset writes`);
      if (from === spec.key || !upstream.has(from)) {
        throw new GraphError(
          `asset "${spec.key}" reads "${path}" (written by "${from}") without depending on it`,
        );
      }
    }
  }
  return graph;
}

/** How a write is keyed among all writes: a lake path as it is, a warehouse table as `warehouse:<table>`. */
export function writeKey(w: { store: 'lake' | 'warehouse'; path: string }): string {
  return w.store === 'lake' ? w.path : `${w.store}:${w.path}`;
}

/** Kahn's algorithm; on a cycle, names the assets on it. */
function topologicalOrder(specs: ReadonlyMap<string, AssetSpec>): string[] {
  const remaining = new Map([...specs.values()].map((s) => [s.key, new Set(s.deps)]));
  const order: string[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining.entries()].filter(([, deps]) => deps.size === 0).map(([k]) => k);
    if (ready.length === 0) {
      throw new GraphError(`the asset graph has a cycle through: ${findCycle(remaining).join(' -> ')}`);
    }
    for (const key of ready) {
      order.push(key);
      remaining.delete(key);
      for (const deps of remaining.values()) deps.delete(key);
    }
  }
  return order;
}

function findCycle(remaining: Map<string, Set<string>>): string[] {
  const start = remaining.keys().next().value as string;
  const path: string[] = [];
  let node = start;
  while (!path.includes(node)) {
    path.push(node);
    node = [...remaining.get(node)!].find((d) => remaining.has(d))!;
  }
  return [...path.slice(path.indexOf(node)), node];
}

function closure(graph: AssetGraph, start: string, next: (key: string) => readonly string[]): Set<string> {
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length > 0) {
    const key = stack.pop()!;
    if (seen.has(key)) continue;
    seen.add(key);
    stack.push(...next(key));
  }
  return seen;
}

export function upstreamOf(graph: AssetGraph, key: string): Set<string> {
  return closure(graph, key, (k) => graph.specs.get(k)!.deps);
}

export function downstreamOf(graph: AssetGraph, key: string): Set<string> {
  return closure(graph, key, (k) => graph.downstream.get(k)!);
}

const TERM = /^(\+?)([a-z][a-z0-9_]*)(\+?)$/;

/**
 * Dagster-style selection: comma-separated terms, each `*` (all), `name`, `+name` (with
 * everything upstream), `name+` (with everything downstream) or `+name+`.
 * Returns the selected assets in topological order.
 */
export function selectAssets(graph: AssetGraph, selection: string): string[] {
  const terms = selection
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (terms.length === 0) {
    throw new GraphError(
      `empty selection: name assets (e.g. "songplays", "+songplays", "songs+") or "*" for all`,
    );
  }
  const chosen = new Set<string>();
  for (const term of terms) {
    if (term === '*') {
      graph.order.forEach((k) => chosen.add(k));
      continue;
    }
    const match = TERM.exec(term);
    if (!match) {
      throw new GraphError(
        `invalid selection term "${term}": use name, +name, name+, +name+ or *, separated by commas`,
      );
    }
    const [, up, key, down] = match as unknown as [string, string, string, string];
    if (!graph.specs.has(key)) {
      throw new GraphError(`unknown asset "${key}" in selection; known assets: ${graph.order.join(', ')}`);
    }
    chosen.add(key);
    if (up) upstreamOf(graph, key).forEach((k) => chosen.add(k));
    if (down) downstreamOf(graph, key).forEach((k) => chosen.add(k));
  }
  return graph.order.filter((k) => chosen.has(k));
}

export interface StepPlan {
  /** The step key, shared by the assets it produces together. */
  readonly key: string;
  /** Selected assets this step produces, in topological order. */
  readonly assets: readonly string[];
  /** Steps of this run that must succeed first. */
  readonly deps: readonly string[];
  readonly partitioning: AssetSpec['partitioning'];
}

/**
 * The steps that materialize a set of assets, in dependency order. A dependency that is not
 * selected is taken as already materialized; only selected assets constrain the order.
 */
export function planSteps(graph: AssetGraph, assets: readonly string[]): StepPlan[] {
  const selected = new Set(assets);
  const byStep = new Map<string, string[]>();
  for (const key of graph.order) {
    if (!selected.has(key)) continue;
    const step = graph.specs.get(key)!.step;
    byStep.set(step, [...(byStep.get(step) ?? []), key]);
  }
  const stepOf = (key: string) => graph.specs.get(key)!.step;
  return [...byStep.entries()].map(([key, stepAssets]) => {
    const deps = new Set<string>();
    for (const asset of stepAssets) {
      for (const dep of graph.specs.get(asset)!.deps) {
        if (selected.has(dep) && stepOf(dep) !== key) deps.add(stepOf(dep));
      }
    }
    return {
      key,
      assets: stepAssets,
      deps: [...deps],
      partitioning: graph.specs.get(stepAssets[0]!)!.partitioning,
    };
  });
}

/**
 * What runs as one EMR step. `none`: each declared step alone. `daily`: the daily steps of a run
 * together (one spark-submit, one JVM; each asset keeps its own checks, manifest and status),
 * unpartitioned steps alone. `all`: everything the run builds in one. Fusing saves a JVM and a
 * cluster round trip per step, which dominates small daily runs; the lease of every fused step
 * is held while the fused step runs.
 */
export type FuseMode = 'none' | 'daily' | 'all';

export interface StepUnit {
  /** The fused steps' keys joined by `+`, e.g. `users+time+songplays`; a lone step's key. */
  readonly key: string;
  readonly steps: readonly StepPlan[];
  /** Units that must succeed first. */
  readonly deps: readonly string[];
}

export function fuseSteps(steps: readonly StepPlan[], mode: FuseMode, graph?: AssetGraph): StepUnit[] {
  // A job writes to one store: steps loading the warehouse are fused only with each other.
  const store = (s: StepPlan) =>
    graph && s.assets.some((a) => graph.specs.get(a)!.writes.some((w) => w.store === 'warehouse'))
      ? 'warehouse'
      : 'lake';
  const byStore = (xs: readonly StepPlan[]) =>
    (['lake', 'warehouse'] as const).map((st) => xs.filter((s) => store(s) === st));
  const groups: StepPlan[][] =
    mode === 'none'
      ? steps.map((s) => [s])
      : mode === 'all'
        ? byStore(steps)
        : [
            ...steps.filter((s) => s.partitioning === 'unpartitioned').map((s) => [s]),
            ...byStore(steps.filter((s) => s.partitioning === 'daily')),
          ];
  const units = groups
    .filter((g) => g.length > 0)
    .map((g) => ({ key: g.map((s) => s.key).join('+'), steps: g }));
  const unitOf = new Map(units.flatMap((u) => u.steps.map((s) => [s.key, u.key] as const)));
  return units.map((u) => ({
    ...u,
    deps: [...new Set(u.steps.flatMap((s) => s.deps.map((d) => unitOf.get(d)!)))].filter((d) => d !== u.key),
  }));
}

/** The assets that cannot run because `failed` did not materialize, among `selected`. */
export function blockedBy(graph: AssetGraph, failed: string, selected: readonly string[]): string[] {
  const below = downstreamOf(graph, failed);
  return selected.filter((k) => k !== failed && below.has(k));
}

/**
 * What a step holds while it writes: a lease named after the step, over the whole table when any
 * of its assets rewrites something as a whole (an unpartitioned table, users' state), else over
 * the days it writes. Two runs whose leases overlap never run that step side by side.
 */
export interface StepLease {
  key: string;
  wholeTable: boolean;
}

export function stepLease(graph: AssetGraph, stepKey: string): StepLease {
  const assets = [...graph.specs.values()].filter((s) => s.step === stepKey);
  if (assets.length === 0) throw new GraphError(`unknown step "${stepKey}"`);
  const wholeTable = assets.some(
    (s) => s.partitioning === 'unpartitioned' || s.writes.some((w) => w.scope === 'table'),
  );
  return { key: stepKey, wholeTable };
}

/** The steps of the graph, in the order of their first asset. */
export function allSteps(graph: AssetGraph): string[] {
  return [...new Set(graph.order.map((k) => graph.specs.get(k)!.step))];
}

export function toMermaid(graph: AssetGraph): string {
  const lines = ['graph LR'];
  for (const key of graph.order) {
    const spec = graph.specs.get(key)!;
    lines.push(`  ${key}["${key}<br/><small>${spec.partitioning}, step ${spec.step}</small>"]`);
  }
  for (const key of graph.order) {
    for (const dep of graph.specs.get(key)!.deps) lines.push(`  ${dep} --> ${key}`);
  }
  return lines.join('\n');
}
