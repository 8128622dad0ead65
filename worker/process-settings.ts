/**
 * How the worker's process is started: the image (Dockerfile CMD and ENV), `npm start` and the
 * bench's workers all use these (test/compose.test.ts checks the first two against them), so what
 * the bench measures is what runs.
 *
 * Why (bench orchestration, a per-day backfill of the whole graph over 91 days, with the
 * SPARKIFY_WORKER_MEMORY_LOG_MS log and /proc/<pid>/smaps): without them the worker peaked at
 * 354–384 MiB. What was live was much less: ~40 MiB on the main thread's V8 heap and ~50 on the
 * workflow thread's (the 1.6 MB workflow bundle, about 60% of it zod, and the running
 * workflows). The rest was slack: each of the two V8 heaps with up to 16 MiB semi-spaces and an
 * old generation allowed to grow towards a 4 GiB limit before a full collection (~200 MiB of V8
 * pages at the peak), and glibc's per-thread malloc arenas (~100 MiB: the Rust core's threads and
 * the workflow thread, 64 MiB each reserved, memory freed in one not reused by another). With
 * these: 239 MiB after 91 days (274 after 366, was 481), and the same worker CPU for the 91-day
 * backfill (28.4 s against 26.6–29.1).
 */
export const WORKER_NODE_FLAGS: readonly string[] = [
  '--enable-source-maps',
  // The young generation of each isolate: 2 MiB semi-spaces instead of up to 16. Scavenges get
  // more frequent but stay cheap (the worker's objects are short-lived task payloads). Alone:
  // 354 → 296 MiB.
  '--max-semi-space-size=2',
  // Each isolate's old generation; V8 flags are per process, so the workflow thread (which the
  // SDK starts without resourceLimits) gets it too. It makes V8 collect well before 4 GiB, and
  // leaves the workflow thread ~140 MiB above what the bundle takes for running workflows (about
  // 1 MiB each or less: its heap held ~12 MiB more with a dozen running; worker.ts caches <= 100).
  '--max-old-space-size=192',
];

/**
 * The environment the worker runs with. MALLOC_ARENA_MAX: glibc gives each thread that allocates
 * an arena of its own (up to 8 per core); two keep the Rust core's and the workflow thread's
 * allocations from spreading over a dozen. Measured with the semi-spaces above and a 128 MiB old
 * generation: 260 → 225 MiB. MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ at 128 KiB: glibc
 * otherwise raises both as the process frees large blocks (up to 32 MiB), so freed memory stayed
 * in the heap; the native rest of the resident set ("other" in the memory log) grew 87 → 105 MiB
 * over a 366-day backfill and the peak reached 248–259. With them: 85–87, peak 237, for the same
 * worker CPU.
 */
export const WORKER_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};
