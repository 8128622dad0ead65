#!/usr/bin/env node
'use strict';
// A stand-in for spark-submit that does no Spark work: it reads the job's arguments as
// spark/run.py would, writes a well-formed report (report_version 2) for the assets it was asked
// for, and exits 0. The orchestration benchmark runs the local EMR with it, so what it measures
// is Temporal, the local EMR and the bookkeeping, not Spark. Plain CommonJS: starts in ~40 ms.
const fs = require('node:fs');
const path = require('node:path');
const { fileURLToPath } = require('node:url');

const args = process.argv.slice(2);
const value = (flag) => {
  const i = args.lastIndexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const assets = (value('--assets') || '').split(',').filter(Boolean);
const start = value('--start');
const end = value('--end');
const report = value('--report');
if (!report || assets.length === 0) {
  process.stderr.write('noop-spark-submit: --assets and --report are required\n');
  process.exit(2);
}
const days = [];
if (start && end) {
  for (
    let d = new Date(`${start}T00:00:00Z`);
    d < new Date(`${end}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + 1)
  ) {
    days.push(d.toISOString().slice(0, 10));
  }
}
const declaration = require('../assets/assets.json');
const daily = new Set(declaration.assets.filter((a) => a.partitioning === 'daily').map((a) => a.key));
const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const doc = {
  report_version: 2,
  status: 'succeeded',
  published: true,
  staging: null,
  spark_version: 'noop',
  started_at: now,
  finished_at: now,
  duration_s: 0,
  args: {
    assets,
    raw: value('--raw') || '',
    lake: value('--lake') || '',
    start: start || null,
    end: end || null,
  },
  quarantine: { rows: 0, by_reason: {}, location: null },
  assets: Object.fromEntries(
    assets.map((a) => [
      a,
      {
        rows: 0,
        rows_per_day: daily.has(a) ? Object.fromEntries(days.map((d) => [d, 0])) : null,
        table_rows: daily.has(a) ? null : 0,
        data_version: daily.has(a) ? null : '0000000000000000',
        data_versions: daily.has(a) ? Object.fromEntries(days.map((d) => [d, '0000000000000000'])) : null,
        quarantined: {},
        quarantine: { rows: 0, location: null },
        duplicates_dropped: 0,
        input_files: 0,
        duration_s: 0,
        checks: [],
        details: {},
        published: true,
        not_published: null,
        error: null,
      },
    ]),
  ),
  failed_checks: [],
  warnings: [],
  error: null,
};
const file = report.startsWith('file:') ? fileURLToPath(report) : report;
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, `${JSON.stringify(doc)}\n`);
