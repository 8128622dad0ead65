// The workflow bundle's entry: every workflow type the worker registers.
export { materialize, progressQuery } from './materialize';
export { daily } from './daily';
export { backfill, backfillProgressQuery, type BackfillInput } from './backfill';
export { lease, leaseStateQuery } from './lease';
