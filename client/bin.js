#!/usr/bin/env node
// `sparkify` on PATH (npm link / npx): run the TypeScript CLI through tsx.
require('tsx/cjs');
require('./main.ts').main(process.argv);
