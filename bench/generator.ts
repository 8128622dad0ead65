/**
 * Generator throughput against a naive writer of the very same events. The baseline only
 * serializes and writes (no simulation, no eventsim escaping), so it is the generous side: the
 * ratio understates how much the generator's batched writing saves.
 */
import fs from 'node:fs';
import path from 'node:path';
import { generate } from '../dev/generator/generate';
import { BenchResult, Scratch, row } from './lib';

export interface GeneratorBenchOptions {
  days: number;
  eventsPerDay: number;
  users: number;
  songs: number;
  seed: number;
  start: string;
}

function listLogFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listLogFiles(p));
    else if (e.name.endsWith('-events.json')) out.push(p);
  }
  return out.sort();
}

/** The textbook writer: one JSON.stringify and one appendFileSync (open, write, close) per event. */
function naiveWrite(events: unknown[], file: string): void {
  for (const ev of events) fs.appendFileSync(file, JSON.stringify(ev) + '\n');
}

export async function generatorBench(
  o: GeneratorBenchOptions,
  scratch: Scratch,
  log: (s: string) => void,
): Promise<BenchResult> {
  const out = scratch.dir('generator/raw');
  const naiveDir = scratch.dir('generator/naive');
  log(`generator: ${o.days} days × ${o.eventsPerDay} events/day into ${out}`);
  const gen = generate({
    out,
    start: o.start,
    days: o.days,
    users: o.users,
    songs: o.songs,
    seed: o.seed,
    eventsPerDay: o.eventsPerDay,
  });

  log(`generator: naive baseline into ${naiveDir}`);
  let naiveSeconds = 0;
  let naiveEvents = 0;
  // Parsed one day at a time so the baseline is not charged for holding every event in memory.
  for (const file of listLogFiles(path.join(out, 'log_data'))) {
    const events = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as unknown);
    const t0 = process.hrtime.bigint();
    naiveWrite(events, path.join(naiveDir, path.basename(file)));
    naiveSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
    naiveEvents += events.length;
  }
  if (naiveEvents !== gen.summary.events) {
    throw new Error(`naive baseline wrote ${naiveEvents} events, the generator ${gen.summary.events}`);
  }
  const naiveRate = naiveEvents / naiveSeconds;
  const naiveBytes = fs
    .readdirSync(naiveDir)
    .reduce((n, f) => n + fs.statSync(path.join(naiveDir, f)).size, 0);

  return {
    name: 'generator',
    title: 'Generator throughput vs. a naive per-event writer',
    params: { days: o.days, eventsPerDay: o.eventsPerDay, users: o.users, songs: o.songs, seed: o.seed },
    rows: [
      row(
        'generator, log_data (simulate + write)',
        gen.eventsPerSecond,
        'events/s',
        { label: 'JSON.stringify + appendFileSync per event', value: naiveRate },
        'higher',
      ),
      row(
        'generator, log_data time',
        gen.logSeconds,
        's',
        { label: 'naive write only', value: naiveSeconds },
        'lower',
      ),
      row('generator, whole run (song_data too)', gen.seconds, 's'),
    ],
    notes: [
      `${gen.summary.events.toLocaleString('en-US')} events, ${gen.summary.log_files} log files; ` +
        `generator wrote ${(gen.bytes / 2 ** 20).toFixed(1)} MiB in all, the baseline ${(naiveBytes / 2 ** 20).toFixed(1)} MiB of logs`,
      'the baseline is timed on serialization + writing only (events parsed beforehand, untimed)',
    ],
  };
}
