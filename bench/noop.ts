/**
 * The no-op spark-submit (noop-spark-submit.sh) and the environment it needs: which assets are
 * daily, from the asset graph, so the shell script does not state it again.
 */
import path from 'node:path';
import { graph } from '../assets';
import { REPO_ROOT } from './lib';

export const NOOP_SPARK_SUBMIT = path.join(REPO_ROOT, 'bench', 'noop-spark-submit.sh');

/** For the local EMR's `stepEnv`. */
export function noopStepEnv(): Record<string, string> {
  const daily = graph.order.filter((k) => graph.specs.get(k)!.partitioning === 'daily');
  return { SPARKIFY_NOOP_DAILY_ASSETS: daily.join(',') };
}
