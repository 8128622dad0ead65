import { readFileSync } from 'node:fs';
import v8 from 'node:v8';

const MiB = 1024 * 1024;

/** The peak resident set (VmHWM) in MiB, from /proc (Linux); undefined elsewhere. */
function peakRssMiB(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface HeapFigures {
  totalMemory: number;
  usedMemory: number;
}

/** The V8 heaps of this process's worker threads (the SDK runs workflows in one), from a diagnostic report. */
function workerThreadHeaps(): HeapFigures[] {
  try {
    const report = process.report?.getReport() as unknown as { workers?: { javascriptHeap?: HeapFigures }[] };
    return (report.workers ?? []).flatMap((w) => (w.javascriptHeap ? [w.javascriptHeap] : []));
  } catch {
    return [];
  }
}

/**
 * One line: the process's resident set split into the main thread's V8 heap, its buffers, the
 * worker threads' heaps (the workflow sandboxes), and the rest (the Rust core, code, malloc).
 */
export function memoryLine(): string {
  const m = process.memoryUsage();
  const h = v8.getHeapStatistics();
  const threads = workerThreadHeaps();
  const hwm = peakRssMiB();
  const f = (bytes: number) => (bytes / MiB).toFixed(0);
  const threadsTotal = threads.reduce((a, t) => a + t.totalMemory, 0);
  const threadsUsed = threads.reduce((a, t) => a + t.usedMemory, 0);
  const other = m.rss - m.heapTotal - m.external - threadsTotal;
  return (
    `sparkify worker memory (MiB): rss ${f(m.rss)}${hwm !== undefined ? ` peak ${hwm.toFixed(0)}` : ''}` +
    ` · heap used ${f(m.heapUsed)} of ${f(m.heapTotal)} (limit ${f(h.heap_size_limit)})` +
    ` · external ${f(m.external)} (array buffers ${f(m.arrayBuffers)})` +
    ` · ${threads.length} worker thread heap${threads.length === 1 ? '' : 's'} used ${f(threadsUsed)} of ${f(threadsTotal)}` +
    ` · other ${f(other)}`
  );
}

/**
 * SPARKIFY_WORKER_MEMORY_LOG_MS: log {@link memoryLine} every that many ms (off when unset or 0),
 * to see what a long backfill's resident set is made of.
 */
export function startMemoryLog(env: NodeJS.ProcessEnv = process.env): (() => void) | undefined {
  const ms = Number(env.SPARKIFY_WORKER_MEMORY_LOG_MS ?? 0);
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  const timer = setInterval(() => console.log(memoryLine()), ms);
  timer.unref();
  return () => clearInterval(timer);
}
