// What every page shares: the JSON API, the header, a small DOM builder and formatting.
// Data from the API reaches the page through textContent (el) or escape(), never as markup.

export async function api(path, options = {}) {
  const res = await fetch(`/api${path}`, {
    ...options,
    headers: { 'content-type': 'application/json', ...(options.headers ?? {}) },
    credentials: 'same-origin',
  });
  const body = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

export function post(path, body) {
  return api(path, { method: 'POST', body: JSON.stringify(body) });
}

/** el('a', { href, class: 'x' }, 'text', child) — children are text or nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs))
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const STATES = ['materialized', 'failed', 'stale', 'missing', 'running'];
export function badge(state) {
  return el('span', { class: `badge ${state}` }, String(state).toLowerCase().replace(/_/g, ' '));
}

const PAGES = [
  ['Overview', '/', 'overview'],
  ['Partition health', '/health.html', 'health'],
  ['Runs & backfills', '/runs.html', 'runs'],
];

/** A run's status (runs listed from Temporal), and why it failed when it did. */
export function runStatus(r) {
  const why = r.failure
    ? el('div', { class: 'reason failure' }, r.failure)
    : r.failedAssets.length
      ? el('div', { class: 'muted' }, `failed: ${r.failedAssets.join(', ')}`)
      : null;
  return [badge(r.status), why];
}

export function header(active) {
  const nav = el(
    'nav',
    {},
    PAGES.map(([label, href, key]) => el('a', { href, class: key === active ? 'active' : undefined }, label)),
  );
  const where = el('span', { class: 'where' });
  document.body.prepend(el('header', {}, el('h1', {}, 'Sparkify Lake'), nav, where));
  api('/config')
    .then((c) => (where.textContent = `lake ${c.lake}`))
    .catch(() => undefined);
}

export function showError(where, err) {
  where.prepend(el('div', { class: 'banner error' }, String(err instanceof Error ? err.message : err)));
}

export function notice(where, text) {
  where.prepend(el('div', { class: 'banner' }, text));
}

export function fmtRows(n) {
  return n === null || n === undefined ? '' : Number(n).toLocaleString('en-US');
}

/** ISO time as UTC, to the second: what the manifests record. */
export function fmtTime(iso) {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z` : '';
}

export function fmtDuration(s) {
  if (s === null || s === undefined) return '';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function fmtUsd(x) {
  if (x === null || x === undefined) return '';
  return x < 0.01 ? `$${x.toFixed(4)}` : `$${x.toFixed(2)}`;
}

/** A day range both ends included, as people read it. */
export function fmtDays(first, last) {
  if (!first) return '';
  return first === last ? first : `${first} → ${last}`;
}

export function params() {
  return new URLSearchParams(location.search);
}

export function partitionHref(asset, partition) {
  return `/partition.html?asset=${encodeURIComponent(asset)}&partition=${encodeURIComponent(partition)}`;
}

export function assetHref(asset) {
  return `/asset.html?asset=${encodeURIComponent(asset)}`;
}

/** Marks the page as drawn once the browser has painted it (tests and the bench wait for it). */
export function painted(name = 'ready') {
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      document.body.dataset[name] = String(Math.round(performance.now()));
    }),
  );
}
