// The dev harness: what `sparkify dev` and `sparkify demo` need, and nothing the worker needs.
export { runDemo } from './demo';
export { devDefaults, runDevStack, startDevStack } from './stack';
