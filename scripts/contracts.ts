// Writes the contracts derived from the TypeScript sources of truth, for the other language to
// test against: `npm run contracts`. test/contracts.test.ts fails when a file is out of date.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { jobReportJsonSchema } from '../lake/report';

export const JOB_REPORT_SCHEMA_FILE = resolve(__dirname, '../docs/job-report.schema.json');

export function renderJobReportSchema(): string {
  return `${JSON.stringify(jobReportJsonSchema(), null, 2)}\n`;
}

if (require.main === module) {
  writeFileSync(JOB_REPORT_SCHEMA_FILE, renderJobReportSchema());
  console.log(`wrote ${JOB_REPORT_SCHEMA_FILE}`);
}
