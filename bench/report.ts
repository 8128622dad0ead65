/**
 * `npm run bench` writes what it measured: a markdown page (docs/benchmarks.md by default) and a
 * JSON file beside it with every figure, the machine, the load before and after each bench, and
 * the exact command.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_ORDER, type BenchResult, type Row } from './lib';

export interface BenchRun {
  argv: string[];
  results: BenchResult[];
  failures: { name: string; error: string }[];
}

function machine() {
  // `java -version` prints to stderr.
  const javaRun = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const java = `${javaRun.stderr ?? ''}${javaRun.stdout ?? ''}`.trim() || 'java: not found';
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    java: java.split('\n')[0],
    platform: `${os.type()} ${os.release()}`,
  };
}

function fmt(v: number | null, unit: string): string {
  if (v === null) return 'n/a';
  if (unit === 'bytes') return `${(v / 2 ** 20).toFixed(0)} MiB`;
  if (unit === '×') return `×${v.toFixed(2)}`;
  return `${v.toLocaleString('en-US', { maximumFractionDigits: v < 10 ? 2 : 1 })} ${unit}`;
}

function line(r: Row): string {
  const base = r.baseline ? `${fmt(r.baseline.value, r.unit)} (${r.baseline.label})` : '';
  const ratio = r.ratio === undefined || r.ratio === null ? '' : `×${r.ratio.toFixed(2)}`;
  return `| ${r.figure} | ${fmt(r.value, r.unit)} | ${base} | ${ratio} |`;
}

/**
 * The sections of an earlier report that this run did not measure: `--only spark` replaces the
 * spark section and keeps the others, each still naming the command that measured it.
 */
function earlierResults(jsonFile: string, measured: readonly BenchResult[]): BenchResult[] {
  let earlier: { command?: string; machine?: { date?: string }; results?: BenchResult[] };
  try {
    earlier = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as typeof earlier;
  } catch {
    return [];
  }
  return (earlier.results ?? [])
    .filter((r) => !measured.some((m) => m.name === r.name))
    .map((r) => ({
      ...r,
      measuredBy: r.measuredBy ?? {
        command: earlier.command ?? 'unknown',
        date: (earlier.machine?.date ?? '').slice(0, 10),
      },
    }));
}

export function writeReport(out: string, run: BenchRun): string[] {
  const m = machine();
  const command = `npm run bench -- ${run.argv.join(' ')}`.trim();
  const jsonFile = out.replace(/\.md$/, '') + '.json';
  const measured = run.results.map((r) => ({ ...r, measuredBy: { command, date: m.date.slice(0, 10) } }));
  const order = (r: BenchResult) => (BENCH_ORDER as readonly string[]).indexOf(r.name);
  const results = [...measured, ...earlierResults(jsonFile, measured)].sort((a, b) => order(a) - order(b));
  const md: string[] = [
    '# Benchmarks',
    '',
    `On ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}, ${m.java}. Every figure beside its baseline, measured in the same run; the two sides alternate; medians of the repetitions. Each section names the command that measured it. The load average before and after each bench says how far to trust its wall times.`,
    '',
  ];
  for (const r of results) {
    md.push(`## ${r.title}`, '');
    md.push(`Measured by \`${r.measuredBy!.command}\` on ${r.measuredBy!.date}.`, '');
    md.push(
      `Parameters: ${Object.entries(r.params)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ')}.`,
      '',
    );
    if (r.skipped) md.push(`**Comparison skipped:** ${r.skipped}`, '');
    if (r.rows.length > 0)
      md.push('| figure | value | baseline | ratio |', '|---|---:|---|---:|', ...r.rows.map(line), '');
    for (const n of r.notes) md.push(`- ${n}`);
    md.push('');
  }
  for (const f of run.failures) md.push(`**${f.name} failed:** ${f.error}`, '');
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, `${md.join('\n').trim()}\n`);
  fs.writeFileSync(jsonFile, `${JSON.stringify({ command, machine: m, ...run, results }, null, 2)}\n`);
  return [out, jsonFile];
}
