/**
 * Orchestration overhead: Temporal, the local EMR and the bookkeeping with Spark taken out. The
 * local EMR runs every step with a no-op spark-submit (bench/noop-spark-submit.sh) that writes a
 * well-formed report and exits, so what is timed is everything around Spark: leases, planning,
 * submitting and polling steps, manifests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { addDays, daysIn, graph, monthRange } from '../assets';
import { openLake } from '../lake/store';
import { startBackfill } from '../client/backfill';
import { BenchResult, Scratch, row, stats } from './lib';
import { NOOP_SPARK_SUBMIT, noopStepEnv } from './noop';
import { cpuSeconds, peakRss, startBenchStack, stepProcessesCpuSeconds } from './stack';

export interface OrchestrationBenchOptions {
  /** Days of the per-day backfill. */
  backfillDays: number;
  /** Repetitions of the one-day run (median reported). */
  repeat: number;
  concurrency: number;
}

/** Dagster's figures on this kind of machine (see ../shared/notes/facts.md): the anchors. */
const DAGSTER_IN_PROCESS_S = 0.87;
const DAGSTER_CLI_S = 14.3;
const DAGSTER_BACKFILL_RUNS_PER_S = 1;

export async function orchestrationBench(
  o: OrchestrationBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const root = scratch.dir('orchestration');
  const notes: string[] = [];
  const result: BenchResult = {
    name: 'orchestration',
    title: 'Orchestration overhead: Temporal + local EMR + bookkeeping, with a no-op Spark',
    params: { backfillDays: o.backfillDays, repeat: o.repeat, concurrency: o.concurrency },
    rows: [],
    notes,
  };
  const raw = path.join(root, 'raw');
  mkdirSync(path.join(raw, 'song_data/A/B/C'), { recursive: true });
  writeFileSync(path.join(raw, 'song_data/A/B/C/TRA.json'), '{"song_id":"S1"}\n');
  const stack = await startBenchStack(root, {
    sparkSubmit: NOOP_SPARK_SUBMIT,
    stepEnv: noopStepEnv(),
    stepConcurrency: 64,
    pollMs: 20,
    compiled: true,
  });
  try {
    // 1. One day, on a lake where nothing is built yet: the lake's tables, then the whole graph.
    const oneDay = async (label: string, selection: string, first: string) => {
      const lake = stack.lake(label, path.join(root, `lake-${label}`), raw);
      const seconds: number[] = [];
      for (let i = 0; i < o.repeat + 1; i++) {
        const day = addDays(first, i);
        const r = await lake.materialize(selection, { start: day, end: addDays(day, 1) }, 'all');
        if (!r.result.ok) throw new Error(`one-day run ${day} (${selection}) failed`);
        // The first run warms the worker (bundling, connections); it is not counted.
        if (i > 0) seconds.push(r.seconds);
        log(
          `orchestration: ${selection} for ${day}: ${r.seconds.toFixed(2)} s${i === 0 ? ' (warm-up)' : ''}`,
        );
      }
      // Gone before the backfill is measured, so its CPU is not counted among the step processes.
      await new Promise((resolve) => {
        lake.worker.once('exit', resolve);
        lake.worker.kill('SIGTERM');
      });
      return stats(seconds);
    };
    const lakeOnly = await oneDay('lake', '+songplays,time', '2018-11-01');
    const whole = await oneDay('graph', '*', '2018-11-01');
    const dagster = { label: 'Dagster, 3 no-op assets in-process', value: DAGSTER_IN_PROCESS_S };
    result.rows.push(
      row(
        `one day, the lake's 5 assets, start to result (min ${lakeOnly.min.toFixed(2)}, max ${lakeOnly.max.toFixed(2)})`,
        lakeOnly.median,
        's',
        dagster,
        'lower',
      ),
      row(
        `one day, the whole graph (${graph.order.length} assets) (min ${whole.min.toFixed(2)}, max ${whole.max.toFixed(2)})`,
        whole.median,
        's',
        { label: 'Dagster, `dagster asset materialize`', value: DAGSTER_CLI_S },
        'lower',
      ),
    );

    // 2. A per-day backfill of every asset, on a fresh lake.
    const lakeBackfill = path.join(root, 'lake-backfill');
    const lake = stack.lake('backfill', lakeBackfill, raw, {
      SPARKIFY_MONTH_CONCURRENCY: String(o.concurrency),
    });
    const months = Math.ceil(o.backfillDays / 30.5);
    const from = '2016-01';
    const to = addDays(`${from}-01`, o.backfillDays - 1).slice(0, 7);
    // Where the time goes: the CPU each process spends on the backfill (the machine has 2 cores).
    const cpu0 = {
      temporal: cpuSeconds(stack.temporalPid),
      worker: cpuSeconds(lake.worker.pid),
      self: process.cpuUsage(),
      steps: stepProcessesCpuSeconds([stack.temporalPid, ...stack.workerPids()]),
    };
    const t0 = process.hrtime.bigint();
    const handle = await startBackfill(stack.client, lake.config, {
      selection: '*',
      from,
      to,
      per: 'day',
      concurrency: o.concurrency,
    });
    const progress = await handle.result();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const self = process.cpuUsage(cpu0.self);
    const delta = (a: number | null, b: number | null) => (a !== null && b !== null ? a - b : null);
    const cpu = {
      temporal: delta(cpuSeconds(stack.temporalPid), cpu0.temporal),
      worker: delta(cpuSeconds(lake.worker.pid), cpu0.worker),
      emr: (self.user + self.system) / 1e6,
      steps: stepProcessesCpuSeconds([stack.temporalPid, ...stack.workerPids()]) - cpu0.steps,
    };
    const rss = peakRss(lake.worker.pid!);
    const days = daysIn({ start: `${from}-01`, end: monthRange(to).end }).length;
    // Every asset partition the backfill materialized has its manifest.
    const partitions = (await openLake(lakeBackfill).list('_manifests/')).length;
    if (Object.keys(progress.failed).length > 0)
      throw new Error(`the backfill failed: ${JSON.stringify(progress.failed)}`);
    log(`orchestration: backfill of ${days} days (${months} months) in ${s.toFixed(1)} s`);
    result.rows.push(
      row(
        `per-day backfill of ${days} days: asset partitions materialized per second (goal ≥ 30)`,
        partitions / s,
        '/s',
        {
          label: 'Dagster backfill runs/s (dagster#28998)',
          value: DAGSTER_BACKFILL_RUNS_PER_S,
        },
        'higher',
      ),
      row('per-day backfill: day runs completed per second', days / s, '/s'),
      row('worker peak RSS during the backfill (goal ≤ 250 MiB)', rss, 'bytes'),
      row('backfill CPU: Temporal dev server', cpu.temporal, 'CPU s'),
      row('backfill CPU: the worker (workflows, activities, manifests, index)', cpu.worker, 'CPU s'),
      row('backfill CPU: local EMR API and this client', cpu.emr, 'CPU s'),
      row(
        "backfill CPU: step processes (the local EMR's runner, a no-op spark-submit per step)",
        cpu.steps,
        'CPU s',
      ),
      row(
        'backfill CPU per asset partition, all processes',
        [cpu.temporal, cpu.worker, cpu.emr, cpu.steps].every((x) => x !== null)
          ? ((cpu.temporal! + cpu.worker! + cpu.emr + cpu.steps) * 1000) / partitions
          : null,
        'ms',
      ),
    );
    notes.push(
      `the worker is the compiled one the image runs (npm run build: dist/worker/main.js, workflow bundle prebuilt)`,
      `goal: one day of the whole graph ≤ 1 s from start to result; the first run of each selection warms the worker and is not counted`,
      `Dagster anchors (same kind of machine): ${DAGSTER_IN_PROCESS_S} s for three no-op assets in-process, ` +
        `${DAGSTER_CLI_S} s per \`dagster asset materialize\`, ~${DAGSTER_BACKFILL_RUNS_PER_S} backfill run/s launched.`,
    );
    return result;
  } finally {
    await stack.stop();
  }
}
