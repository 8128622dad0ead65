import { readFileSync } from 'node:fs';
import { JOB_REPORT_SCHEMA_FILE, renderJobReportSchema } from '../scripts/contracts';

test('docs/job-report.schema.json is the zod schema in lake/report.ts (run `npm run contracts`)', () => {
  // The Python tests validate every report the jobs write against this file; it must not drift.
  expect(readFileSync(JOB_REPORT_SCHEMA_FILE, 'utf8')).toBe(renderJobReportSchema());
});
