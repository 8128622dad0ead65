// The workflow bundle's entry: every workflow type the worker registers.
export { materialize, progressQuery } from './materialize';
