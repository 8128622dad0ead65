import { existsSync } from 'node:fs';
import path from 'node:path';

/** The workflow bundle `npm run build` writes beside the compiled workflows (scripts/build.ts). */
export const WORKFLOW_BUNDLE_FILE = 'workflow-bundle.js';

/**
 * The prebuilt workflow bundle when this code is the compiled build (dist/worker/ beside
 * dist/workflows/workflow-bundle.js); undefined when it runs from the sources (tsx), which bundle
 * workflows/ when the worker starts.
 */
export function prebuiltWorkflowBundle(): { codePath: string } | undefined {
  const codePath = path.resolve(__dirname, '../workflows', WORKFLOW_BUNDLE_FILE);
  return existsSync(codePath) ? { codePath } : undefined;
}
