/**
 * The session model: a Markov chain over pages, eventsim style. A session is in one of three
 * auth states; Logout and Login move it between Logged In and Logged Out (the same user, the
 * same sessionId), Guest sessions never log in.
 */
import { Rng } from './prng';
import { FREE, PAID } from './users';

export const NEXT_SONG = 0;
export const HOME = 1;
export const LOGIN = 2;
export const LOGOUT = 3;
export const SETTINGS = 4;
export const SAVE_SETTINGS = 5;
export const HELP = 6;
export const ABOUT = 7;
export const UPGRADE = 8;
export const DOWNGRADE = 9;
export const SUBMIT_UPGRADE = 10;
export const SUBMIT_DOWNGRADE = 11;
export const ERROR = 12;
export const END = -1;

/** Method and status per page, as the real log pairs them. */
export const PAGES: readonly { name: string; method: 'GET' | 'PUT'; status: number }[] = [
  { name: 'NextSong', method: 'PUT', status: 200 },
  { name: 'Home', method: 'GET', status: 200 },
  { name: 'Login', method: 'PUT', status: 307 },
  { name: 'Logout', method: 'PUT', status: 307 },
  { name: 'Settings', method: 'GET', status: 200 },
  { name: 'Save Settings', method: 'PUT', status: 307 },
  { name: 'Help', method: 'GET', status: 200 },
  { name: 'About', method: 'GET', status: 200 },
  { name: 'Upgrade', method: 'GET', status: 200 },
  { name: 'Downgrade', method: 'GET', status: 200 },
  { name: 'Submit Upgrade', method: 'PUT', status: 307 },
  { name: 'Submit Downgrade', method: 'PUT', status: 307 },
  { name: 'Error', method: 'GET', status: 404 },
];

export const LOGGED_IN = 0;
export const LOGGED_OUT = 1;
export const GUEST = 2;
export const AUTH_NAMES = ['Logged In', 'Logged Out', 'Guest'] as const;

type Weights = [page: number, weight: number][];

/** Where a session goes after showing `page`, given its auth state and level after the event. */
// prettier-ignore
function weights(auth: number, page: number, level: number): Weights {
  // Free users are shown the upgrade page, paid users the downgrade page.
  const plan = level === FREE ? UPGRADE : DOWNGRADE;
  if (auth === GUEST) {
    if (page === HOME) return [[HOME, 0.15], [ABOUT, 0.2], [HELP, 0.15], [ERROR, 0.05], [END, 0.45]];
    return [[HOME, 0.6], [END, 0.4]];
  }
  if (auth === LOGGED_OUT) {
    if (page === LOGOUT) return [[HOME, 0.45], [END, 0.55]];
    if (page === HOME) return [[LOGIN, 0.4], [ABOUT, 0.07], [HELP, 0.03], [END, 0.5]];
    return [[HOME, 0.5], [LOGIN, 0.3], [END, 0.2]];
  }
  switch (page) {
    case NEXT_SONG:
      return [
        [NEXT_SONG, 0.87], [HOME, 0.045], [SETTINGS, 0.006], [HELP, 0.005], [ABOUT, 0.004], [plan, 0.008],
        [ERROR, 0.0015], [LOGOUT, 0.011], [END, 0.05],
      ];
    case HOME:
      return [
        [NEXT_SONG, 0.78], [SETTINGS, 0.03], [HELP, 0.03], [ABOUT, 0.02], [plan, 0.04], [LOGOUT, 0.04],
        [ERROR, 0.005], [END, 0.055],
      ];
    case SETTINGS: return [[SAVE_SETTINGS, 0.35], [HOME, 0.25], [NEXT_SONG, 0.35], [LOGOUT, 0.05]];
    case SAVE_SETTINGS: return [[NEXT_SONG, 0.6], [HOME, 0.4]];
    case HELP:
    case ABOUT: return [[NEXT_SONG, 0.45], [HOME, 0.45], [LOGOUT, 0.05], [END, 0.05]];
    case ERROR: return [[HOME, 0.5], [NEXT_SONG, 0.45], [END, 0.05]];
    case UPGRADE: return [[SUBMIT_UPGRADE, 0.4], [HOME, 0.3], [NEXT_SONG, 0.3]];
    case DOWNGRADE: return [[SUBMIT_DOWNGRADE, 0.12], [HOME, 0.4], [NEXT_SONG, 0.48]];
    // After Login, Submit Upgrade, Submit Downgrade.
    default: return [[HOME, 0.6], [NEXT_SONG, 0.4]];
  }
}

interface Row {
  pages: Int8Array;
  cdf: Float64Array;
}

function row(ws: Weights): Row {
  const total = ws.reduce((s, [, w]) => s + w, 0);
  const pages = new Int8Array(ws.length);
  const cdf = new Float64Array(ws.length);
  let acc = 0;
  ws.forEach(([p, w], i) => {
    acc += w / total;
    pages[i] = p;
    cdf[i] = acc;
  });
  cdf[ws.length - 1] = 1;
  return { pages, cdf };
}

/** All transition rows, precomputed: index (auth * 2 + level) * PAGES.length + page. */
const TABLE: Row[] = [];
for (let auth = 0; auth < 3; auth++) {
  for (const level of [FREE, PAID]) {
    for (let page = 0; page < PAGES.length; page++) TABLE.push(row(weights(auth, page, level)));
  }
}

export function nextPage(rng: Rng, auth: number, page: number, level: number): number {
  const r = TABLE[(auth * 2 + level) * PAGES.length + page] as Row;
  const u = rng.next();
  let i = 0;
  while (u >= (r.cdf[i] as number)) i++;
  return r.pages[i] as number;
}

/** The auth state after showing `page`. */
export function authAfter(auth: number, page: number): number {
  if (page === LOGOUT) return LOGGED_OUT;
  if (page === LOGIN) return LOGGED_IN;
  return auth;
}

/** How a session opens: most signed in already, some sign in first, a few are guests. */
export function firstPage(rng: Rng, auth: number): number {
  if (auth === GUEST) return rng.chance(0.8) ? HOME : ABOUT;
  if (auth === LOGGED_OUT) return rng.chance(0.5) ? HOME : LOGIN;
  return rng.chance(0.6) ? HOME : NEXT_SONG;
}

export const GUEST_SHARE = 0.02;
export const LOGGED_OUT_START_SHARE = 0.15;

/** Milliseconds until the event after a non-NextSong page (NextSong waits for the song). */
export function pageGapMs(rng: Rng, page: number): number {
  if (page === SUBMIT_UPGRADE || page === SUBMIT_DOWNGRADE || page === LOGIN) return rng.range(1000, 4000);
  if (page === LOGOUT) return 1000 + Math.floor(rng.exp(60_000));
  return 1000 + Math.floor(rng.exp(20_000));
}

/**
 * Mean events per session, measured by running the chain on its own random stream, so the
 * arrival rate hits --events-per-day whatever the transition weights are.
 */
export function meanSessionLength(seed: number): number {
  const rng = new Rng(seed, 9);
  const n = 4000;
  let events = 0;
  for (let s = 0; s < n; s++) {
    let auth = rng.chance(GUEST_SHARE) ? GUEST : rng.chance(LOGGED_OUT_START_SHARE) ? LOGGED_OUT : LOGGED_IN;
    let level = auth === GUEST ? FREE : rng.chance(0.4) ? PAID : FREE;
    let page = firstPage(rng, auth);
    while (page !== END) {
      events++;
      if (page === SUBMIT_UPGRADE) level = PAID;
      if (page === SUBMIT_DOWNGRADE) level = FREE;
      auth = authAfter(auth, page);
      page = nextPage(rng, auth, page, level);
    }
  }
  return events / n;
}
