import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generate, runCli, type GeneratorSummary } from '../dev/generator/main';

const REPO = path.resolve(__dirname, '..');

const SONG_KEYS = [
  'num_songs', 'artist_id', 'artist_latitude', 'artist_longitude', 'artist_location', 'artist_name',
  'song_id', 'title', 'duration', 'year',
]; // prettier-ignore
const LOG_KEYS = [
  'artist', 'auth', 'firstName', 'gender', 'itemInSession', 'lastName', 'length', 'level', 'location',
  'method', 'page', 'registration', 'sessionId', 'song', 'status', 'ts', 'userAgent', 'userId',
]; // prettier-ignore
const USER_FIELDS = ['firstName', 'gender', 'lastName', 'location', 'registration', 'userAgent'] as const;

interface SongFile {
  artist_id: string;
  artist_latitude: number | null;
  artist_longitude: number | null;
  artist_location: string;
  artist_name: string;
  song_id: string;
  title: string;
  duration: number;
  year: number;
}

interface Event {
  artist: string | null;
  auth: string;
  firstName: string | null;
  gender: string | null;
  itemInSession: number;
  lastName: string | null;
  length: number | null;
  level: string;
  location: string | null;
  method: string;
  page: string;
  registration: number | null;
  sessionId: number;
  song: string | null;
  status: number;
  ts: number;
  userAgent: string | null;
  userId: string;
  /** Not in the data: the UTC day of the file the event came from. */
  fileDay: string;
  line: string;
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p).split(path.sep).join('/'));
    }
  };
  walk(root);
  return out.sort();
}

function treeHash(root: string): string {
  const h = createHash('sha256');
  for (const f of listFiles(root))
    h.update(f)
      .update('\0')
      .update(fs.readFileSync(path.join(root, f)))
      .update('\0');
  return h.digest('hex');
}

const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Events per sessionId, in file order (which is ts order, across midnight too). */
function bySession(): Map<number, Event[]> {
  const m = new Map<number, Event[]>();
  for (const e of events) {
    const xs = m.get(e.sessionId);
    if (xs) xs.push(e);
    else m.set(e.sessionId, [e]);
  }
  return m;
}

let tmp: string;
let dir: string;
let summary: GeneratorSummary;
let songs: SongFile[];
let events: Event[];
const OPTIONS = { days: 4, users: 60, songs: 80, seed: 11, start: '2018-11-29', eventsPerDay: 3000 };

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkify-generator-'));
  dir = path.join(tmp, 'a');
  summary = generate({ ...OPTIONS, out: dir }).summary;
  songs = listFiles(path.join(dir, 'song_data')).map(
    (f) => JSON.parse(fs.readFileSync(path.join(dir, 'song_data', f), 'utf8')) as SongFile,
  );
  events = [];
  for (const f of listFiles(path.join(dir, 'log_data'))) {
    const fileDay = path.basename(f).slice(0, 10);
    for (const line of fs.readFileSync(path.join(dir, 'log_data', f), 'utf8').split('\n')) {
      events.push({ ...(JSON.parse(line) as Omit<Event, 'fileDay' | 'line'>), fileDay, line });
    }
  }
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('determinism', () => {
  test('the same seed writes the same bytes, another seed different ones', () => {
    const again = path.join(tmp, 'again');
    const other = path.join(tmp, 'other');
    generate({ ...OPTIONS, out: again });
    generate({ ...OPTIONS, seed: 12, out: other });
    expect(treeHash(again)).toBe(treeHash(dir));
    expect(treeHash(other)).not.toBe(treeHash(dir));
  });
});

describe('layout', () => {
  test('files sit where S3 has them, one log file per UTC day', () => {
    const files = listFiles(dir);
    const logs = files.filter((f) => f.startsWith('log_data/'));
    const songFiles = files.filter((f) => f.startsWith('song_data/'));
    expect(files).toHaveLength(logs.length + songFiles.length + 1);
    expect(files).toContain('_generator.json');
    expect(logs).toEqual([
      'log_data/2018/11/2018-11-29-events.json',
      'log_data/2018/11/2018-11-30-events.json',
      'log_data/2018/12/2018-12-01-events.json',
      'log_data/2018/12/2018-12-02-events.json',
    ]);
    expect(songFiles).toHaveLength(OPTIONS.songs);
    for (const f of songFiles) {
      const m = /^song_data\/([A-Z])\/([A-Z])\/([A-Z])\/(TR([A-Z])([A-Z])([A-Z])[A-Z0-9]{13})\.json$/.exec(f);
      expect(m).not.toBeNull();
      const [, a, b, c, , x, y, z] = m as RegExpExecArray;
      expect([a, b, c]).toEqual([x, y, z]);
    }
    // Like the real data, tracks spread over several folders.
    expect(new Set(songFiles.map((f) => path.dirname(f))).size).toBeGreaterThan(2);
  });

  test('song files are single-line json.dumps objects with the real key order', () => {
    for (const f of listFiles(path.join(dir, 'song_data'))) {
      const text = fs.readFileSync(path.join(dir, 'song_data', f), 'latin1');
      expect(text).not.toMatch(/\n/);
      expect(text).toMatch(/^\{"num_songs": 1, "artist_id": "AR[A-Z0-9]{16}", "artist_latitude": /);
      expect(text).toMatch(/"duration": \d+\.\d+, "year": \d+\}$/);
      expect(/[^\x20-\x7e]/.test(text)).toBe(false);
      const obj = JSON.parse(text) as Record<string, unknown>;
      expect(Object.keys(obj)).toEqual(SONG_KEYS);
      expect(`${obj.song_id}`).toMatch(/^SO[A-Z0-9]{16}$/);
      expect(path.basename(f, '.json')).toMatch(/^TR/);
    }
    expect(new Set(songs.map((s) => s.song_id)).size).toBe(songs.length);
  });

  test('log lines have the sample key set and order, types and spelling', () => {
    // One expect per event would take jest half a minute; collect the offending lines instead.
    const bad = (check: (e: Event) => boolean): string[] =>
      events.filter((e) => !check(e)).map((e) => e.line);
    expect(bad((e) => JSON.stringify(Object.keys(JSON.parse(e.line))) === JSON.stringify(LOG_KEYS))).toEqual(
      [],
    );
    expect(
      bad((e) => typeof e.userId === 'string' && Number.isInteger(e.sessionId) && Number.isInteger(e.ts)),
    ).toEqual([]);
    // eventsim escapes "/" and non-ASCII, and writes registration as a float.
    expect(bad((e) => !/[^\\]\//.test(e.line) && !/[^\x20-\x7e]/.test(e.line))).toEqual([]);
    expect(bad((e) => e.registration === null || /"registration":\d{13}\.0,/.test(e.line))).toEqual([]);
    expect(
      bad((e) => {
        const play = e.page === 'NextSong';
        return (e.length === null) === !play && (e.song === null) === !play && (e.artist === null) === !play;
      }),
    ).toEqual([]);
    const put = /^(NextSong|Login|Logout|Save Settings|Submit Upgrade|Submit Downgrade)$/;
    expect(bad((e) => e.method === (put.test(e.page) ? 'PUT' : 'GET'))).toEqual([]);
    expect(
      bad(
        (e) =>
          e.status === (e.page === 'Error' ? 404 : e.method === 'PUT' && e.page !== 'NextSong' ? 307 : 200),
      ),
    ).toEqual([]);
    for (const f of listFiles(path.join(dir, 'log_data'))) {
      expect(fs.readFileSync(path.join(dir, 'log_data', f), 'utf8')).not.toMatch(/\n$/);
    }
  });

  test("every ts is inside its file's UTC day, and files are in ts order", () => {
    expect(events.filter((e) => utcDay(e.ts) !== e.fileDay).map((e) => e.line)).toEqual([]);
    const unordered = events.filter((e, i) => {
      const prev = events[i - 1];
      return prev !== undefined && prev.fileDay === e.fileDay && e.ts < prev.ts;
    });
    expect(unordered.map((e) => e.line)).toEqual([]);
  });
});

describe('shape', () => {
  test('sessions count itemInSession from 0 with strictly increasing ts and one user', () => {
    const problems: string[] = [];
    let crossMidnight = 0;
    for (const [id, s] of bySession()) {
      if (s.some((e, i) => e.itemInSession !== i)) problems.push(`${id}: itemInSession`);
      if (s.some((e, i) => i > 0 && e.ts <= (s[i - 1] as Event).ts)) problems.push(`${id}: ts`);
      const named = s.filter((e) => e.userId !== '');
      for (const field of [...USER_FIELDS, 'userId'] as const) {
        if (new Set(named.map((e) => e[field])).size > 1) problems.push(`${id}: ${field}`);
      }
      if (new Set(s.map((e) => e.fileDay)).size > 1) crossMidnight++;
    }
    expect(problems).toEqual([]);
    expect(crossMidnight).toBeGreaterThan(0);
    const plays = events.filter((e) => e.page === 'NextSong');
    expect(new Set(plays.map((e) => `${e.sessionId}/${e.itemInSession}`)).size).toBe(plays.length);
    expect(new Set(events.map((e) => e.line)).size).toBe(events.length);
  });

  test('page mix: NextSong dominates and every page appears', () => {
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.page, (counts.get(e.page) ?? 0) + 1);
    const share = (counts.get('NextSong') ?? 0) / events.length;
    expect(share).toBeGreaterThan(0.75);
    expect(share).toBeLessThan(0.9);
    const pages = ['Home', 'Login', 'Logout', 'Settings', 'Save Settings', 'Help', 'About', 'Upgrade'];
    pages.push('Downgrade', 'Submit Upgrade', 'Submit Downgrade', 'Error');
    for (const p of pages) expect(counts.get(p) ?? 0).toBeGreaterThan(0);
    // Roughly the requested volume.
    expect(events.length).toBeGreaterThan(OPTIONS.days * OPTIONS.eventsPerDay * 0.8);
    expect(events.length).toBeLessThan(OPTIONS.days * OPTIONS.eventsPerDay * 1.2);
  });

  test('Guest and Logged Out events carry no user', () => {
    const anonymous = events.filter((e) => e.auth !== 'Logged In');
    expect(new Set(anonymous.map((e) => e.auth))).toEqual(new Set(['Guest', 'Logged Out']));
    const withUser = anonymous.filter(
      (e) => e.userId !== '' || e.page === 'NextSong' || USER_FIELDS.some((f) => e[f] !== null),
    );
    expect(withUser.map((e) => e.line)).toEqual([]);
    const loggedIn = events.filter((e) => e.auth === 'Logged In');
    expect(loggedIn.filter((e) => !/^[1-9]\d*$/.test(e.userId)).map((e) => e.line)).toEqual([]);
  });

  test('levels change through Submit Upgrade / Submit Downgrade, from the next event on', () => {
    const seen = new Set<string>();
    const problems: string[] = [];
    for (const s of bySession().values()) {
      s.forEach((e, i) => {
        const next = s[i + 1];
        if (e.page === 'Submit Upgrade' || e.page === 'Submit Downgrade') {
          seen.add(e.page);
          const [before, after] = e.page === 'Submit Upgrade' ? ['free', 'paid'] : ['paid', 'free'];
          if (e.level !== before || (next && next.level !== after)) problems.push(e.line);
        } else if (next && next.level !== e.level) {
          problems.push(next.line);
        }
      });
    }
    expect(problems).toEqual([]);
    expect(seen.size).toBe(2);
    expect(summary.users_with_both_levels).toBeGreaterThan(0);
  });

  test('catalog: artists with several songs, artists with differing rows, unique (title, artist)', () => {
    const byArtist = new Map<string, SongFile[]>();
    for (const s of songs) byArtist.set(s.artist_id, [...(byArtist.get(s.artist_id) ?? []), s]);
    const multi = [...byArtist.values()].filter((xs) => xs.length > 1);
    expect(multi.length).toBeGreaterThan(0);
    const differing = multi.filter(
      (xs) =>
        new Set(xs.map((s) => JSON.stringify([s.artist_location, s.artist_latitude, s.artist_longitude])))
          .size > 1,
    );
    expect(differing.length).toBeGreaterThan(0);
    expect(differing.length).toBe(summary.artists_with_variant_rows);
    for (const xs of byArtist.values()) expect(new Set(xs.map((s) => s.artist_name)).size).toBe(1);
    expect(new Set(songs.map((s) => `${s.title}\0${s.artist_name}`)).size).toBe(songs.length);
  });

  test('plays: skewed popularity, and near misses a loose join would match', () => {
    const plays = events.filter((e) => e.page === 'NextSong');
    const perSong = new Map<string, number>();
    for (const e of plays)
      perSong.set(`${e.song}\0${e.artist}`, (perSong.get(`${e.song}\0${e.artist}`) ?? 0) + 1);
    const sorted = [...perSong.values()].sort((a, b) => b - a);
    expect(sorted[0] as number).toBeGreaterThan(10 * (sorted[Math.floor(sorted.length / 2)] as number));
    const titles = new Set(songs.map((s) => s.title));
    const exact = new Map(songs.map((s) => [`${s.title}\0${s.artist_name}`, s.duration]));
    const titleOnly = plays.filter(
      (e) => titles.has(e.song as string) && !exact.has(`${e.song}\0${e.artist}`),
    );
    const lengthOff = plays.filter((e) => {
      const d = exact.get(`${e.song}\0${e.artist}`);
      return d !== undefined && Math.abs(d - (e.length as number)) > 1;
    });
    expect(titleOnly.length).toBeGreaterThan(0);
    expect(lengthOff.length).toBeGreaterThan(0);
  });
});

describe('_generator.json', () => {
  test('is what the generator returned', () => {
    expect(JSON.parse(fs.readFileSync(path.join(dir, '_generator.json'), 'utf8'))).toEqual(summary);
  });

  test('every count equals a count recomputed from the files', () => {
    const plays = events.filter((e) => e.page === 'NextSong');
    const days = ['2018-11-29', '2018-11-30', '2018-12-01', '2018-12-02'];
    const perDay = (xs: Event[], key: (e: Event) => string | number): Record<string, number> =>
      Object.fromEntries(days.map((d) => [d, new Set(xs.filter((e) => e.fileDay === d).map(key)).size]));
    const exact = new Map(songs.map((s) => [`${s.title}\0${s.artist_name}`, s.duration]));
    const latest = new Map<string, Event>();
    for (const e of plays) {
      const prev = latest.get(e.userId);
      if (!prev || e.ts > prev.ts) latest.set(e.userId, e);
    }
    const levels = new Map<string, Set<string>>();
    for (const e of plays) levels.set(e.userId, (levels.get(e.userId) ?? new Set()).add(e.level));

    expect(summary.seed).toBe(OPTIONS.seed);
    expect(summary.days).toEqual(days);
    expect(summary.song_files).toBe(songs.length);
    expect(summary.songs).toBe(new Set(songs.map((s) => s.song_id)).size);
    expect(summary.artists).toBe(new Set(songs.map((s) => s.artist_id)).size);
    expect(summary.log_files).toBe(days.length);
    expect(summary.events).toBe(events.length);
    expect(summary.events_per_day).toEqual(perDay(events, (e) => e.line));
    expect(summary.next_song_events).toBe(plays.length);
    expect(summary.songplays).toBe(new Set(plays.map((e) => e.line)).size);
    expect(summary.songplays_per_day).toEqual(perDay(plays, (e) => e.line));
    expect(summary.songplays_with_song_match).toBe(
      plays.filter((e) => {
        const d = exact.get(`${e.song}\0${e.artist}`);
        return d !== undefined && Math.abs(d - (e.length as number)) <= 1;
      }).length,
    );
    expect(summary.users).toBe(new Set(plays.map((e) => e.userId)).size);
    expect(summary.users_latest_level).toEqual(Object.fromEntries([...latest].map(([u, e]) => [u, e.level])));
    expect(summary.paid_users).toBe([...latest.values()].filter((e) => e.level === 'paid').length);
    expect(summary.free_users).toBe([...latest.values()].filter((e) => e.level === 'free').length);
    expect(summary.users_with_both_levels).toBe([...levels.values()].filter((s) => s.size === 2).length);
    expect(summary.users_per_day).toEqual(perDay(plays, (e) => e.userId));
    expect(summary.time_rows).toBe(new Set(plays.map((e) => e.ts)).size);
    expect(summary.time_rows_per_day).toEqual(perDay(plays, (e) => e.ts));
    expect(summary.submit_upgrades).toBe(events.filter((e) => e.page === 'Submit Upgrade').length);
    expect(summary.submit_downgrades).toBe(events.filter((e) => e.page === 'Submit Downgrade').length);
    expect(summary.guest_events).toBe(events.filter((e) => e.auth === 'Guest').length);
    expect(summary.logged_out_events).toBe(events.filter((e) => e.auth === 'Logged Out').length);
    expect(summary.sessions).toBe(new Set(events.map((e) => e.sessionId)).size);
  });
});

describe('options', () => {
  const base = ['--days', '2', '--users', '5', '--songs', '5', '--seed', '1'];
  const run = (args: string[]): { code: number; err: string } => {
    const err: string[] = [];
    const code = runCli(args, { out: () => undefined, err: (l) => err.push(l) });
    return { code, err: err.join('\n') };
  };
  const cases: [string, string[], RegExp][] = [
    ['days zero', ['--days', '0'], /--days must be a positive integer/],
    ['days fractional', ['--days', '1.5'], /--days must be a positive integer/],
    ['users not a number', ['--users', 'many'], /--users must be a positive integer/],
    ['seed negative', ['--seed', '-3'], /--seed must be a non-negative integer/],
    ['start not a date', ['--start', '2018-02-30'], /--start must be a date YYYY-MM-DD/],
    ['match share too big', ['--match-share', '1.5'], /--match-share must be a number between 0 and 1/],
    ['events per day zero', ['--events-per-day', '0'], /--events-per-day must be a positive integer/],
  ];

  test.each(cases)('%s: exit 2, a message naming the option, nothing written', (_name, bad, message) => {
    const out = path.join(tmp, `bad-${bad.join('')}`);
    const args = [...base, '--out', out];
    for (let i = 0; i < bad.length; i += 2) {
      const at = args.indexOf(bad[i] as string);
      if (at >= 0) args[at + 1] = bad[i + 1] as string;
      else args.push(bad[i] as string, bad[i + 1] as string);
    }
    const r = run(args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('missing required options and unknown options are refused', () => {
    const out = path.join(tmp, 'bad-missing');
    expect(run(['--out', out, '--days', '2']).code).toBe(2);
    expect(run([...base, '--out', out, '--bogus', '1']).code).toBe(2);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('existing generated data is only replaced with --force', () => {
    const out = path.join(tmp, 'force');
    expect(run([...base, '--out', out]).code).toBe(0);
    const before = treeHash(out);
    const r = run([...base, '--out', out, '--seed', '2']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/already holds generated data.*--force/);
    expect(treeHash(out)).toBe(before);
    expect(run([...base, '--out', out, '--seed', '2', '--force']).code).toBe(0);
    expect(treeHash(out)).not.toBe(before);
  });
});

describe('CLI', () => {
  const cli = (args: string[]) =>
    spawnSync('npx', ['tsx', 'dev/generator/main.ts', ...args], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
    });

  test('writes the same bytes as the in-process run and prints a summary', () => {
    const out = path.join(tmp, 'cli');
    const inProcess = path.join(tmp, 'cli-in-process');
    const opts = { days: 2, users: 20, songs: 30, seed: 5, start: '2018-11-05', eventsPerDay: 500 };
    const r = cli([
      '--out', out, '--days', '2', '--users', '20', '--songs', '30', '--seed', '5',
      '--start', '2018-11-05', '--events-per-day', '500',
    ]); // prettier-ignore
    expect(r.stderr).toMatch(/^generated \d+ files .* \d+ events .* events\/s\) -> /m);
    expect(r.status).toBe(0);
    generate({ ...opts, out: inProcess });
    expect(treeHash(out)).toBe(treeHash(inProcess));
  });

  test('bad options: exit 2 with the message, nothing written', () => {
    const out = path.join(tmp, 'cli-bad');
    const r = cli(['--out', out, '--days', 'x', '--users', '20', '--songs', '30', '--seed', '5']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--days must be a positive integer/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
