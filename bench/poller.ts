/**
 * How hard the real EMR step activity polls, with its default settings, against EMR's
 * DescribeStep quota (a bucket refilling at 0.5 requests/s, shared by the whole account).
 * The step runs on the local EMR, so requests go over HTTP through the real SDK client.
 */
import { EMRClient } from '@aws-sdk/client-emr';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createEmrStepActivities, type SparkStepResult } from '../activities/emr-step';
import { startLocalEmr } from '../dev/emr-local';
import { BenchResult, Scratch, row } from './lib';

/** EMR's DescribeStep refill rate, per minute. */
const QUOTA_PER_MIN = 0.5 * 60;

export interface PollerBenchOptions {
  stepSeconds: number;
}

export async function pollerBench(
  o: PollerBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const stateDir = scratch.dir('poller/emr-state');
  const emr = await startLocalEmr({ stateDir, port: 0, allowedCommands: ['node'] });
  const client = new EMRClient({
    endpoint: emr.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  // Client-side timestamps give the gaps between polls; the server's own count confirms the total.
  const sent: { command: string; at: number }[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push({ command: String(context.commandName), at: Date.now() });
      return next(args);
    },
    { step: 'initialize', name: 'benchCountRequests' },
  );

  try {
    log(`poller: a ${o.stepSeconds} s step on the local EMR (state in ${stateDir})`);
    const { runSparkStep } = createEmrStepActivities({ emr: client });
    const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
    const t0 = Date.now();
    const res: SparkStepResult = await env.run(runSparkStep, {
      clusterId: emr.clusterId,
      stepName: 'bench/poller',
      args: ['node', '-e', `setTimeout(() => {}, ${Math.round(o.stepSeconds * 1000)})`],
      // no `poll`: the defaults are what is being measured
    });
    const returnedAt = Date.now();
    const activitySeconds = (returnedAt - t0) / 1000;

    const describes = sent.filter((s) => s.command === 'DescribeStepCommand').map((s) => s.at);
    const gaps = describes.slice(1).map((t, i) => (t - describes[i]!) / 1000);
    const perMin = describes.length / (activitySeconds / 60);
    const stats = (await (await fetch(`${emr.endpoint}/_local/stats`)).json()) as {
      calls?: Record<string, number>;
    };
    const serverDescribes = stats.calls?.DescribeStep;
    const stepStart = res.startedAt ? Date.parse(res.startedAt) : NaN;
    const stepEnd = res.endedAt ? Date.parse(res.endedAt) : NaN;
    const detectSeconds = Number.isFinite(stepEnd) ? (returnedAt - stepEnd) / 1000 : null;
    const minGap = gaps.length ? Math.min(...gaps) : null;

    return {
      name: 'poller',
      title: 'EMR step poller: DescribeStep rate vs. the 0.5 req/s quota',
      params: { stepSeconds: o.stepSeconds, poll: 'default (5 s → 60 s, jittered)' },
      rows: [
        row('DescribeStep calls for one step', describes.length, 'calls'),
        row(
          'DescribeStep mean rate (calls ÷ activity time)',
          perMin,
          'req/min',
          { label: 'EMR quota 0.5 req/s', value: QUOTA_PER_MIN },
          'lower',
        ),
        row(
          'DescribeStep most calls in any 60 s window',
          maxInWindow(describes, 60_000),
          'req/min',
          { label: 'EMR quota 0.5 req/s', value: QUOTA_PER_MIN },
          'lower',
        ),
        row(
          'shortest gap between DescribeStep calls',
          minGap,
          's',
          { label: 'quota refill interval', value: 2 },
          'higher',
        ),
        row('steps that can poll at once within the quota', QUOTA_PER_MIN / perMin, 'steps'),
        row(
          'step run time (EMR timeline)',
          Number.isFinite(stepStart) ? (stepEnd - stepStart) / 1000 : null,
          's',
        ),
        row('activity time', activitySeconds, 's'),
        row('completion noticed after the step ended', detectSeconds, 's'),
      ],
      notes: [
        `gaps between DescribeStep calls: ${gaps.map((g) => g.toFixed(1)).join(', ')} s`,
        `all requests from the poller's client: ${summarize(sent.map((s) => s.command))}; ` +
          `the local EMR counted ${serverDescribes ?? '?'} DescribeStep (AddJobFlowSteps goes through a retry-less client)`,
        'the jitter is random, so counts vary by one or two between runs; longer steps poll less per minute (backoff up to 60 s)',
      ],
    };
  } finally {
    client.destroy();
    await emr.close({ killSteps: true });
  }
}

function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

function summarize(names: string[]): string {
  const counts = new Map<string, number>();
  for (const n of names)
    counts.set(n.replace(/Command$/, ''), (counts.get(n.replace(/Command$/, '')) ?? 0) + 1);
  return [...counts].map(([k, v]) => `${k}×${v}`).join(', ');
}
