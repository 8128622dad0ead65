/**
 * The song catalog (what song_data holds) and the pool of songs that are played but are not in
 * it. The real log mostly plays songs missing from song_data, so the ETL's match is rare and
 * easy to get wrong; the pool carries deliberate near misses to catch a loose join.
 */
import { floatString, logString, pyString } from './json';
import { Rng, Zipf } from './prng';
import { ADJECTIVES, MIXES, NOUNS, PLACES, PREPOSITIONS, VERBS } from './vocab';
import { FEMALE_NAMES, LAST_NAMES, MALE_NAMES } from './vocab';

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export interface ArtistRow {
  latitude: number | null;
  longitude: number | null;
  location: string;
}

export interface Song {
  trackId: string;
  songId: string;
  artistId: string;
  artistName: string;
  row: ArtistRow;
  title: string;
  /** Seconds with 5 decimals, never integral (see floatString). */
  duration: number;
  year: number;
}

/** A playable song as the log spells it, pre-escaped once so the hot loop only concatenates. */
export interface Playable {
  artistJson: string;
  songJson: string;
  lengthText: string;
  lengthMs: number;
}

export interface Catalog {
  songs: Song[];
  artists: number;
  /** Artists whose song files disagree on location/coordinates (exercise the dedup rule). */
  artistsWithVariantRows: number;
  /** Catalog songs in popularity order: index 0 is the most played. */
  byPopularity: Playable[];
  /** Songs outside the catalog, in popularity order. */
  pool: Playable[];
}

function randomId(rng: Rng, prefix: string, n: number, taken: Set<string>): string {
  for (;;) {
    let id = prefix;
    for (let i = 0; i < n; i++) id += ID_CHARS[rng.int(ID_CHARS.length)];
    if (!taken.has(id)) {
      taken.add(id);
      return id;
    }
  }
}

/** k/1e5 for an integer k that is not a multiple of 1e5, so both JSON writers agree on it. */
function fiveDecimals(rng: Rng, lo: number, hi: number): number {
  let k = rng.range(Math.round(lo * 1e5), Math.round(hi * 1e5));
  if (k % 100000 === 0) k += 1;
  return k / 1e5;
}

/** x moved by `units` × 1e-5, in integer arithmetic so no float noise reaches the file. */
function shifted(x: number, units: number): number {
  let k = Math.round(x * 1e5) + units;
  if (k % 100000 === 0) k += 1;
  return k / 1e5;
}

function coordinate(rng: Rng, max: number): number {
  // Python switches to exponent notation below 1e-4, JS below 1e-6: stay clear of both.
  for (;;) {
    const x = fiveDecimals(rng, -max, max);
    if (Math.abs(x) >= 0.01) return x;
  }
}

function duration(rng: Rng): number {
  // Most tracks 2–6 minutes, a tail of short interludes and long pieces.
  const r = rng.next();
  if (r < 0.05) return fiveDecimals(rng, 20, 120);
  if (r < 0.92) return fiveDecimals(rng, 120, 360);
  return fiveDecimals(rng, 360, 900);
}

function artistName(rng: Rng): string {
  const r = rng.next();
  if (r < 0.25) return `The ${rng.pick(ADJECTIVES)} ${rng.pick(NOUNS)}s`;
  if (r < 0.5) {
    const first = rng.chance(0.5) ? rng.pick(FEMALE_NAMES) : rng.pick(MALE_NAMES);
    return `${first} ${rng.pick(LAST_NAMES)}`;
  }
  if (r < 0.7) return `${rng.pick(ADJECTIVES)} ${rng.pick(NOUNS)}`;
  if (r < 0.8) return `DJ ${rng.pick(NOUNS)}`;
  if (r < 0.9) return `${rng.pick(NOUNS)} & The ${rng.pick(NOUNS)}s`;
  // Collaborations are spelled with slashes in the real data, which the log escapes as "\/".
  return `${rng.pick(MALE_NAMES)} ${rng.pick(LAST_NAMES)} / ${rng.pick(FEMALE_NAMES)} ${rng.pick(LAST_NAMES)}`;
}

function songTitle(rng: Rng): string {
  const r = rng.next();
  let t: string;
  if (r < 0.3) t = `${rng.pick(ADJECTIVES)} ${rng.pick(NOUNS)}`;
  else if (r < 0.5) t = `${rng.pick(VERBS)} ${rng.pick(PREPOSITIONS)} The ${rng.pick(NOUNS)}`;
  else if (r < 0.65) t = rng.pick(NOUNS);
  else if (r < 0.8) t = `${rng.pick(NOUNS)} (${rng.pick(MIXES)})`;
  else if (r < 0.9) t = `${rng.pick(VERBS)} ${rng.pick(ADJECTIVES)}`;
  else if (r < 0.97)
    t = `${rng.pick(ADJECTIVES)} ${rng.pick(NOUNS)} ${rng.pick(PREPOSITIONS)} ${rng.pick(NOUNS)}`;
  else t = `The "${rng.pick(ADJECTIVES)}" ${rng.pick(NOUNS)}`;
  return t;
}

/** A name not in `taken`; falls back to a numbered name once the word space runs thin. */
function uniqueName(rng: Rng, make: (rng: Rng) => string, taken: Set<string>): string {
  for (let attempt = 0; attempt < 20; attempt++) {
    const n = make(rng);
    if (!taken.has(n)) {
      taken.add(n);
      return n;
    }
  }
  const base = make(rng);
  for (let i = 2; ; i++) {
    const n = `${base} ${i}`;
    if (!taken.has(n)) {
      taken.add(n);
      return n;
    }
  }
}

function baseRow(rng: Rng): ArtistRow {
  const r = rng.next();
  if (r < 0.45)
    return { latitude: coordinate(rng, 60), longitude: coordinate(rng, 150), location: rng.pick(PLACES) };
  if (r < 0.6) return { latitude: null, longitude: null, location: rng.pick(PLACES) };
  return { latitude: null, longitude: null, location: '' };
}

/** The same artist as another song file describes it: blanked, or with drifted coordinates. */
function variantRow(rng: Rng, base: ArtistRow): ArtistRow {
  if (base.location === '') return { latitude: null, longitude: null, location: rng.pick(PLACES) };
  if (base.latitude !== null && base.longitude !== null && rng.chance(0.5)) {
    return { latitude: shifted(base.latitude, 1), longitude: base.longitude, location: base.location };
  }
  return { latitude: null, longitude: null, location: '' };
}

function playable(title: string, artist: string, dur: number): Playable {
  return {
    artistJson: logString(artist),
    songJson: logString(title),
    lengthText: floatString(dur),
    lengthMs: Math.round(dur * 1000),
  };
}

/** Track folders as on S3: song_data/A/<2nd>/<3rd>/, fanning out as the catalog grows. */
function folderLetters(songs: number): { second: number; third: number } {
  const width = Math.ceil(Math.sqrt(songs / 20));
  return { second: Math.min(26, Math.max(2, width)), third: Math.min(26, Math.max(3, width)) };
}

export function buildCatalog(seed: number, songCount: number): Catalog {
  const rng = new Rng(seed, 1);
  const ids = new Set<string>();
  const artistNames = new Set<string>();

  // Fewer artists than songs, and popular artists get several songs (Zipf over artists).
  const artistCount = Math.max(1, Math.ceil(songCount * 0.72));
  const artists = Array.from({ length: artistCount }, () => ({
    id: randomId(rng, 'AR', 16, ids),
    name: uniqueName(rng, artistName, artistNames),
    row: baseRow(rng),
    songs: 0,
  }));
  const artistOf: number[] = [];
  for (let i = 0; i < songCount; i++) artistOf.push(i < artistCount ? i : -1);
  const artistZipf = new Zipf(artistCount, 1.1);
  for (let i = artistCount; i < songCount; i++) artistOf[i] = artistZipf.sample(rng);
  for (const a of artistOf) (artists[a] as { songs: number }).songs++;

  // Which artists disagree with themselves; at least one whenever any artist has two songs.
  const variant = new Uint8Array(artistCount);
  let busiest = 0;
  artists.forEach((a, i) => {
    if (a.songs >= 2 && rng.chance(0.4)) variant[i] = 1;
    if (a.songs > (artists[busiest] as { songs: number }).songs) busiest = i;
  });
  if ((artists[busiest] as { songs: number }).songs >= 2) variant[busiest] = 1;
  const variantUsed = new Uint8Array(artistCount);

  const { second, third } = folderLetters(songCount);
  const titlesByArtist = new Map<number, Set<string>>();
  const songs: Song[] = [];
  for (let i = 0; i < songCount; i++) {
    const a = artistOf[i] as number;
    const artist = artists[a] as (typeof artists)[number];
    let titles = titlesByArtist.get(a);
    if (titles === undefined) {
      titles = new Set();
      titlesByArtist.set(a, titles);
    }
    // (title, artist name) is unique in the catalog, so a play matches at most one song.
    const title = uniqueName(rng, songTitle, titles);
    let row = artist.row;
    if (variant[a] === 1 && variantUsed[a] === 0 && titles.size >= 2) {
      variantUsed[a] = 1;
      row = variantRow(rng, artist.row);
    }
    const folder = 'A' + LETTERS[rng.int(second)] + LETTERS[rng.int(third)];
    songs.push({
      trackId: randomId(rng, 'TR' + folder, 13, ids),
      songId: randomId(rng, 'SO', 16, ids),
      artistId: artist.id,
      artistName: artist.name,
      row,
      title,
      duration: duration(rng),
      year: rng.chance(0.55) ? 0 : rng.range(1958, 2010),
    });
  }

  const byPopularity = rng.shuffle(songs.map((s) => playable(s.title, s.artistName, s.duration)));

  // Songs that are played but not in song_data. Their artists are never catalog artists, so
  // only the deliberate traps share anything with the catalog, and none is within 1 s.
  const poolSize = Math.max(200, songCount * 2);
  const poolArtists: string[] = [];
  const poolArtistNames = new Set(artistNames);
  for (let i = 0; i < Math.max(50, Math.ceil(poolSize / 3)); i++) {
    poolArtists.push(uniqueName(rng, artistName, poolArtistNames));
  }
  const pool: Playable[] = [];
  for (let i = 0; i < poolSize; i++) {
    const r = rng.next();
    const s = rng.pick(songs);
    if (r < 0.05) {
      // Same title (and sometimes the same length) by someone else: a title-only join matches.
      const d = rng.chance(0.5) ? s.duration : duration(rng);
      pool.push(playable(s.title, rng.pick(poolArtists), d));
    } else if (r < 0.08) {
      // Same title and artist, a different cut well outside the 1 s tolerance.
      const sign = rng.chance(0.5) || s.duration < 90 ? 1 : -1;
      pool.push(playable(s.title, s.artistName, shifted(s.duration, sign * rng.range(300000, 6000000))));
    } else {
      pool.push(playable(songTitle(rng), rng.pick(poolArtists), duration(rng)));
    }
  }

  return {
    songs,
    artists: artistCount,
    artistsWithVariantRows: variantUsed.reduce((n, v) => n + v, 0),
    byPopularity,
    pool,
  };
}

/** A song file, byte for byte as Python's json.dumps writes it (no trailing newline). */
export function songFileText(s: Song): string {
  return (
    `{"num_songs": 1, "artist_id": ${pyString(s.artistId)}, ` +
    `"artist_latitude": ${floatString(s.row.latitude)}, "artist_longitude": ${floatString(s.row.longitude)}, ` +
    `"artist_location": ${pyString(s.row.location)}, "artist_name": ${pyString(s.artistName)}, ` +
    `"song_id": ${pyString(s.songId)}, "title": ${pyString(s.title)}, ` +
    `"duration": ${floatString(s.duration)}, "year": ${s.year}}`
  );
}
