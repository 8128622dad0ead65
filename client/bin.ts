#!/usr/bin/env node
// `sparkify` (npm link, npx; on PATH in the image): the compiled CLI, dist/client/bin.js after
// `npm run build`. From a checkout without a build, `npm run sparkify -- <command>` runs the
// TypeScript through tsx.
import { main } from './main';

void main(process.argv);
