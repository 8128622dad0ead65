/**
 * Writes a synthetic Sparkify raw zone: song_data in the S3 layout and one event log per UTC day,
 * plus _generator.json with the exact row counts the star schema must end up with.
 *
 * Sessions run concurrently in one discrete-event simulation (a heap keyed by each session's
 * next timestamp), so every day file comes out in ts order like the real one, sessions may
 * cross midnight, and a user never has two sessions at once (which keeps "latest level" exact).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Playable, buildCatalog, songFileText } from './catalog';
import {
  AUTH_NAMES,
  END,
  GUEST,
  GUEST_SHARE,
  LOGGED_IN,
  LOGGED_OUT,
  LOGGED_OUT_START_SHARE,
  NEXT_SONG,
  PAGES,
  SUBMIT_DOWNGRADE,
  SUBMIT_UPGRADE,
  authAfter,
  firstPage,
  meanSessionLength,
  nextPage,
  pageGapMs,
} from './chain';
import { DEFAULTS, GeneratorOptions, OUTPUTS } from './options';
import { Rng, Zipf } from './prng';
import { ANONYMOUS, FREE, PAID, buildUsers } from './users';

const DAY_MS = 86_400_000;
/** Write a day file's text in pieces of about this many characters: few syscalls, bounded memory. */
const FLUSH_AT = 1 << 20;
const LEVELS = ['free', 'paid'] as const;

/** `_generator.json`: what the generator wrote, counted exactly. */
export interface GeneratorSummary {
  generator_version: 1;
  seed: number;
  options: {
    start: string;
    days: number;
    users: number;
    songs: number;
    events_per_day: number;
    match_share: number;
  };
  /** The UTC days written, one log file each. */
  days: string[];
  song_files: number;
  /** Distinct song_id (= rows of songs). */
  songs: number;
  /** Distinct artist_id (= rows of artists). */
  artists: number;
  /** Artists whose song files disagree on location or coordinates. */
  artists_with_variant_rows: number;
  log_files: number;
  events: number;
  events_per_day: Record<string, number>;
  next_song_events: number;
  /** Distinct NextSong events (= rows of songplays); the generator writes no duplicates. */
  songplays: number;
  songplays_per_day: Record<string, number>;
  /** Songplays whose song, artist and length match a song in song_data. */
  songplays_with_song_match: number;
  /** Distinct non-empty userId among NextSong events (= rows of users). */
  users: number;
  /** Each user's level at their latest NextSong (by ts). */
  users_latest_level: Record<string, 'free' | 'paid'>;
  paid_users: number;
  free_users: number;
  /** Users with NextSong events at both levels (a dedup on all columns gives this many extra rows). */
  users_with_both_levels: number;
  /** Distinct users with a NextSong per day (= rows of _state/user_latest per day). */
  users_per_day: Record<string, number>;
  /** Distinct NextSong ts (= rows of time). */
  time_rows: number;
  time_rows_per_day: Record<string, number>;
  submit_upgrades: number;
  submit_downgrades: number;
  guest_events: number;
  logged_out_events: number;
  sessions: number;
}

export interface GenerateResult {
  summary: GeneratorSummary;
  seconds: number;
  /** Time spent on log_data alone (song files are one syscall-bound file each). */
  logSeconds: number;
  /** Events per second of logSeconds. */
  eventsPerSecond: number;
  bytes: number;
  files: number;
}

interface Session {
  id: number;
  /** User index, or -1 for a guest. */
  user: number;
  auth: number;
  page: number;
  item: number;
  ts: number;
}

/** Binary min-heap of sessions by next ts; hand-rolled to avoid comparator calls. */
class SessionHeap {
  private readonly items: Session[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Session | undefined {
    return this.items[0];
  }

  push(s: Session): void {
    const a = this.items;
    let i = a.length;
    a.push(s);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p] as Session;
      if (parent.ts <= s.ts) break;
      a[i] = parent;
      i = p;
    }
    a[i] = s;
  }

  /** Removes the top, then pushes `s` if given (one sift instead of two). */
  replaceTop(s: Session | undefined): void {
    const a = this.items;
    let x = s;
    if (x === undefined) {
      x = a.pop();
      if (x === undefined || a.length === 0) return;
    }
    const n = a.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && (a[r] as Session).ts < (a[l] as Session).ts) c = r;
      const child = a[c] as Session;
      if (child.ts >= x.ts) break;
      a[i] = child;
      i = c;
    }
    a[i] = x;
  }
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function countBits(b: number): number {
  let n = 0;
  while (b) {
    n += b & 1;
    b >>>= 1;
  }
  return n;
}

/** In-process callers may leave out what has a default. */
export type GenerateInput = Omit<GeneratorOptions, 'start' | 'eventsPerDay' | 'matchShare' | 'force'> &
  Partial<Pick<GeneratorOptions, 'start' | 'eventsPerDay' | 'matchShare' | 'force'>>;

/**
 * Writes the data set. Replaces whatever the generator's own outputs in `out` hold (stale files
 * would falsify the counts); the CLI refuses to do that without --force. `_generator.json` is
 * written last, so its presence means the data set is complete.
 */
export function generate(input: GenerateInput): GenerateResult {
  const t0 = process.hrtime.bigint();
  const options: GeneratorOptions = { ...DEFAULTS, ...input };
  const out = path.resolve(options.out);
  const startMs = Date.parse(`${options.start}T00:00:00Z`);
  const endMs = startMs + options.days * DAY_MS;
  const days = Array.from({ length: options.days }, (_, d) => utcDay(startMs + d * DAY_MS));

  fs.mkdirSync(out, { recursive: true });
  for (const name of OUTPUTS) fs.rmSync(path.join(out, name), { recursive: true, force: true });

  // --- song_data ---------------------------------------------------------------------------
  const catalog = buildCatalog(options.seed, options.songs);
  let bytes = 0;
  const madeDirs = new Set<string>();
  for (const song of catalog.songs) {
    const id = song.trackId;
    const dir = path.join(out, 'song_data', id.charAt(2), id.charAt(3), id.charAt(4));
    if (!madeDirs.has(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      madeDirs.add(dir);
    }
    const text = songFileText(song);
    fs.writeFileSync(path.join(dir, `${id}.json`), text);
    bytes += Buffer.byteLength(text);
  }

  // --- log_data ----------------------------------------------------------------------------
  const tLogs = process.hrtime.bigint();
  const users = buildUsers(options.seed, options.users, startMs);
  const rng = new Rng(options.seed, 3);
  const U = users.count;
  const level = Uint8Array.from(users.initialLevel);
  const busy = new Uint8Array(U);
  const latestLevel = new Uint8Array(U);
  /** Bit 0: played while free, bit 1: played while paid. */
  const playedLevels = new Uint8Array(U);
  const lastPlayDay = new Int32Array(U).fill(-1);
  const userOrder = rng.shuffle(Array.from({ length: U }, (_, i) => i));
  const userZipf = new Zipf(U, 0.8);
  const songZipf = new Zipf(catalog.byPopularity.length, 1.0);
  const poolZipf = new Zipf(catalog.pool.length, 0.9);

  // Render once what every event of a page repeats.
  const pageText = PAGES.map((p) => `"method":"${p.method}","page":"${p.name}",`);
  const statusText = PAGES.map((p) => `"status":${p.status},"ts":`);
  const authText = AUTH_NAMES.map((a) => `{"artist":null,"auth":"${a}",`);

  // Arrivals: a Poisson process with a daily rhythm, scaled so a day averages --events-per-day.
  const meanLen = meanSessionLength(options.seed);
  const baseRatePerMs = options.eventsPerDay / meanLen / DAY_MS;
  const arrivalGap = (t: number): number => {
    const phase = (2 * Math.PI * ((t - startMs) % DAY_MS)) / DAY_MS;
    const rate = baseRatePerMs * (1 + 0.5 * Math.sin(phase - Math.PI / 2 - 0.8));
    return 1 + Math.floor(rng.exp(1 / rate));
  };

  const heap = new SessionHeap();
  let nextArrival = startMs + arrivalGap(startMs);
  let sessionIds = 0;

  const eventsPerDay: Record<string, number> = {};
  const songplaysPerDay: Record<string, number> = {};
  const timeRowsPerDay: Record<string, number> = {};
  const usersPerDay: Record<string, number> = {};
  let events = 0;
  let nextSongs = 0;
  let matched = 0;
  let submitUpgrades = 0;
  let submitDowngrades = 0;
  let guestEvents = 0;
  let loggedOutEvents = 0;

  // The day file being written.
  let day = -1;
  let dayStart = 0;
  let dayEnd = 0;
  let fd = -1;
  let text = '';
  let firstLine = true;
  let dayEvents = 0;
  let daySongplays = 0;
  let dayTimeRows = 0;
  let dayUsers = 0;
  const tsSeen = new Uint8Array(DAY_MS / 8);

  const flush = (): void => {
    if (text.length === 0) return;
    // Lines are pure ASCII (logString escapes the rest), so latin1 encodes them byte for byte,
    // cheaper than UTF-8. Appending to one string and encoding it at once measured as fast as
    // joining an array or copying bytes into a Buffer by hand, and is the simplest.
    const data = Buffer.from(text, 'latin1');
    text = '';
    for (let done = 0; done < data.length;) done += fs.writeSync(fd, data, done, data.length - done);
    bytes += data.length;
  };
  const closeDay = (): void => {
    if (fd < 0) return;
    flush();
    fs.closeSync(fd);
    fd = -1;
    const name = days[day] as string;
    eventsPerDay[name] = dayEvents;
    songplaysPerDay[name] = daySongplays;
    timeRowsPerDay[name] = dayTimeRows;
    usersPerDay[name] = dayUsers;
  };
  const openDay = (d: number): void => {
    day = d;
    dayStart = startMs + d * DAY_MS;
    dayEnd = dayStart + DAY_MS;
    const name = days[d] as string;
    const dir = path.join(out, 'log_data', name.slice(0, 4), name.slice(5, 7));
    fs.mkdirSync(dir, { recursive: true });
    fd = fs.openSync(path.join(dir, `${name}-events.json`), 'w');
    firstLine = true;
    dayEvents = daySongplays = dayTimeRows = dayUsers = 0;
    tsSeen.fill(0);
  };
  openDay(0);

  const startSession = (ts: number): void => {
    let user = -1;
    if (!rng.chance(GUEST_SHARE)) {
      // Skewed activity; a busy user cannot open a second session, so try a few others.
      for (let attempt = 0; attempt < 8 && user < 0; attempt++) {
        const u = userOrder[userZipf.sample(rng)] as number;
        if (busy[u] === 0) user = u;
      }
    }
    let auth = GUEST;
    if (user >= 0) {
      busy[user] = 1;
      auth = rng.chance(LOGGED_OUT_START_SHARE) ? LOGGED_OUT : LOGGED_IN;
    }
    heap.push({ id: ++sessionIds, user, auth, page: firstPage(rng, auth), item: 0, ts });
  };

  for (;;) {
    const top = heap.peek();
    if (top === undefined || nextArrival <= top.ts) {
      if (nextArrival >= endMs) break;
      startSession(nextArrival);
      nextArrival += arrivalGap(nextArrival);
      continue;
    }
    const s = top;
    const ts = s.ts;
    if (ts >= endMs) break;
    while (ts >= dayEnd) {
      closeDay();
      openDay(day + 1);
    }

    const u = s.user;
    const page = s.page;
    const lvl = u >= 0 ? (level[u] as number) : FREE;
    let line: string;
    let gap: number;
    if (page === NEXT_SONG) {
      // Only Logged In sessions reach NextSong, so u >= 0 here.
      const fromCatalog = rng.next() < options.matchShare;
      const p = fromCatalog
        ? (catalog.byPopularity[songZipf.sample(rng)] as Playable)
        : (catalog.pool[poolZipf.sample(rng)] as Playable);
      if (fromCatalog) matched++;
      line =
        `{"artist":${p.artistJson},"auth":"Logged In",${users.nameGender[u]}"itemInSession":${s.item},` +
        `${users.lastName[u]}"length":${p.lengthText},"level":"${LEVELS[lvl]}",${users.location[u]}` +
        `"method":"PUT","page":"NextSong",${users.registration[u]}"sessionId":${s.id},"song":${p.songJson},` +
        `"status":200,"ts":${ts},${users.agentId[u]}`;
      gap = p.lengthMs;
      nextSongs++;
      daySongplays++;
      const off = ts - dayStart;
      const bit = 1 << (off & 7);
      const byte = off >>> 3;
      if (((tsSeen[byte] as number) & bit) === 0) {
        tsSeen[byte] = (tsSeen[byte] as number) | bit;
        dayTimeRows++;
      }
      latestLevel[u] = lvl;
      playedLevels[u] = (playedLevels[u] as number) | (1 << lvl);
      if (lastPlayDay[u] !== day) {
        lastPlayDay[u] = day;
        dayUsers++;
      }
    } else {
      const named = s.auth === LOGGED_IN;
      line =
        `${authText[s.auth]}${named ? users.nameGender[u] : ANONYMOUS.nameGender}"itemInSession":${s.item},` +
        `${named ? users.lastName[u] : ANONYMOUS.lastName}"length":null,"level":"${LEVELS[lvl]}",` +
        `${named ? users.location[u] : ANONYMOUS.location}${pageText[page]}` +
        `${named ? users.registration[u] : ANONYMOUS.registration}"sessionId":${s.id},"song":null,` +
        `${statusText[page]}${ts},${named ? users.agentId[u] : ANONYMOUS.agentId}`;
      gap = pageGapMs(rng, page);
      if (s.auth === GUEST) guestEvents++;
      else if (s.auth === LOGGED_OUT) loggedOutEvents++;
      // The level changes from the next event on, as in the real log.
      if (page === SUBMIT_UPGRADE) {
        level[u] = PAID;
        submitUpgrades++;
      } else if (page === SUBMIT_DOWNGRADE) {
        level[u] = FREE;
        submitDowngrades++;
      }
    }
    text += firstLine ? line : '\n' + line;
    firstLine = false;
    if (text.length >= FLUSH_AT) flush();
    events++;
    dayEvents++;

    s.auth = authAfter(s.auth, page);
    const next = nextPage(rng, s.auth, page, u >= 0 ? (level[u] as number) : FREE);
    if (next === END) {
      if (u >= 0) busy[u] = 0;
      heap.replaceTop(undefined);
    } else {
      s.page = next;
      s.item++;
      s.ts = ts + gap;
      heap.replaceTop(s);
    }
  }
  // Days after the last event (possible at tiny rates) still get their (empty) file.
  closeDay();
  for (let d = day + 1; d < options.days; d++) {
    openDay(d);
    closeDay();
  }

  const logSeconds = Number(process.hrtime.bigint() - tLogs) / 1e9;

  // --- _generator.json -----------------------------------------------------------------------
  const usersLatestLevel: Record<string, 'free' | 'paid'> = {};
  let paidUsers = 0;
  let playedUsers = 0;
  let bothLevels = 0;
  for (let u = 0; u < U; u++) {
    const mask = playedLevels[u] as number;
    if (mask === 0) continue;
    playedUsers++;
    if (countBits(mask) === 2) bothLevels++;
    const l = latestLevel[u] as number;
    if (l === PAID) paidUsers++;
    usersLatestLevel[users.ids[u] as string] = LEVELS[l] as 'free' | 'paid';
  }
  const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  const summary: GeneratorSummary = {
    generator_version: 1,
    seed: options.seed,
    options: {
      start: options.start,
      days: options.days,
      users: options.users,
      songs: options.songs,
      events_per_day: options.eventsPerDay,
      match_share: options.matchShare,
    },
    days,
    song_files: catalog.songs.length,
    songs: new Set(catalog.songs.map((s) => s.songId)).size,
    artists: new Set(catalog.songs.map((s) => s.artistId)).size,
    artists_with_variant_rows: catalog.artistsWithVariantRows,
    log_files: days.length,
    events,
    events_per_day: eventsPerDay,
    next_song_events: nextSongs,
    songplays: nextSongs,
    songplays_per_day: songplaysPerDay,
    songplays_with_song_match: matched,
    users: playedUsers,
    users_latest_level: usersLatestLevel,
    paid_users: paidUsers,
    free_users: playedUsers - paidUsers,
    users_with_both_levels: bothLevels,
    users_per_day: usersPerDay,
    time_rows: sum(timeRowsPerDay),
    time_rows_per_day: timeRowsPerDay,
    submit_upgrades: submitUpgrades,
    submit_downgrades: submitDowngrades,
    guest_events: guestEvents,
    logged_out_events: loggedOutEvents,
    sessions: sessionIds,
  };
  const summaryText = JSON.stringify(summary, null, 2) + '\n';
  fs.writeFileSync(path.join(out, '_generator.json'), summaryText);
  bytes += Buffer.byteLength(summaryText);

  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    summary,
    seconds,
    logSeconds,
    eventsPerSecond: logSeconds > 0 ? events / logSeconds : events,
    bytes,
    files: catalog.songs.length + days.length + 1,
  };
}
