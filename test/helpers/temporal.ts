import { existsSync } from 'node:fs';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { TEMPORAL_CLI } from '../../dev/temporal-server';
import { SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';

/** A real Temporal dev server (the CLI scripts/setup builds), with our search attributes. */
export async function createTemporalEnv(): Promise<TestWorkflowEnvironment> {
  if (!existsSync(TEMPORAL_CLI)) throw new Error(`${TEMPORAL_CLI} is missing: run scripts/setup`);
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: TEMPORAL_CLI },
      searchAttributes: SEARCH_ATTRIBUTES,
      ui: false,
      extraArgs: ['--log-level', 'error'],
    },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Bundling takes seconds; one bundle serves every worker of a test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never,
  });
  return bundle;
}
