// The overview: the asset graph, each asset drawn with its state, and a table of the same.
import {
  api,
  assetHref,
  badge,
  el,
  fmtRows,
  fmtTime,
  header,
  notice,
  painted,
  showError,
  svg,
} from './common.js';

header('overview');
const main = document.getElementById('main');

const NODE = { w: 270, h: 92, gapX: 90, gapY: 24, pad: 16 };

function summary(a) {
  const parts = ['failed', 'stale', 'missing', 'running']
    .filter((s) => a.counts[s] > 0)
    .map((s) => `${a.counts[s]} ${s}`);
  if (a.partitioning === 'daily') parts.unshift(`${a.counts.materialized}/${a.partitions} days`);
  return parts.length ? `${a.state} · ${parts.join(', ')}` : a.state;
}

function drawGraph(target, assets, edges) {
  const columns = new Map();
  for (const a of assets) columns.set(a.depth, [...(columns.get(a.depth) ?? []), a]);
  const pos = new Map();
  let height = 0;
  for (const [depth, col] of columns) {
    col.forEach((a, i) => {
      const x = NODE.pad + depth * (NODE.w + NODE.gapX);
      const y = NODE.pad + i * (NODE.h + NODE.gapY);
      pos.set(a.key, { x, y });
      height = Math.max(height, y + NODE.h + NODE.pad);
    });
  }
  const width = NODE.pad * 2 + columns.size * NODE.w + (columns.size - 1) * NODE.gapX;
  target.setAttribute('viewBox', `0 0 ${width} ${height}`);
  target.setAttribute('width', String(width));
  target.append(
    svg(
      'defs',
      {},
      svg(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 10,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: 'auto',
        },
        svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }),
      ),
    ),
  );
  for (const [from, to] of edges) {
    const a = pos.get(from);
    const b = pos.get(to);
    const x1 = a.x + NODE.w;
    const y1 = a.y + NODE.h / 2;
    const x2 = b.x;
    const y2 = b.y + NODE.h / 2;
    const mid = (x1 + x2) / 2;
    target.append(
      svg('path', {
        class: 'edge',
        d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
        'marker-end': 'url(#arrow)',
      }),
    );
  }
  for (const a of assets) {
    const { x, y } = pos.get(a.key);
    const rows = a.rows === null ? 'no rows yet' : `${fmtRows(a.rows)} rows`;
    const last = a.lastMaterialization
      ? `materialized ${fmtTime(a.lastMaterialization)}`
      : 'never materialized';
    const node = svg(
      'g',
      { class: 'node', 'data-asset': a.key, transform: `translate(${x},${y})` },
      svg('title', {}, `${a.key}: ${a.description}`),
      svg('rect', { width: NODE.w, height: NODE.h, rx: 8, class: `s-${a.state}` }),
      svg('text', { x: 12, y: 22, class: 'title' }, a.key),
      svg(
        'text',
        { x: NODE.w - 12, y: 22, 'text-anchor': 'end' },
        a.partitioning === 'daily' ? 'daily' : 'whole table',
      ),
      svg('text', { x: 12, y: 42, class: `state` }, summary(a)),
      svg('text', { x: 12, y: 60 }, last),
      svg('text', { x: 12, y: 78 }, `${rows}${a.counts.stale > 0 ? ` · ${a.counts.stale} stale` : ''}`),
    );
    node.addEventListener('click', () => (location.href = assetHref(a.key)));
    target.append(node);
  }
}

function drawTable(table, assets) {
  table.append(
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ['asset', 'partitioned', 'state'].map((h) => el('th', {}, h)),
        ['materialized', 'failed', 'stale', 'missing', 'running'].map((h) => el('th', { class: 'num' }, h)),
        el('th', {}, 'last run'),
        el('th', {}, 'last materialization'),
        el('th', { class: 'num' }, 'rows (table)'),
        el('th', {}, 'not up to date, e.g.'),
      ),
    ),
  );
  const body = el('tbody');
  for (const a of assets) {
    body.append(
      el(
        'tr',
        { 'data-asset': a.key },
        el('td', {}, el('a', { href: assetHref(a.key) }, a.key)),
        el('td', {}, a.partitioning),
        el('td', {}, badge(a.state)),
        ['materialized', 'failed', 'stale', 'missing', 'running'].map((s) =>
          el('td', { class: 'num' }, a.counts[s]),
        ),
        el('td', {}, a.lastRun ? [badge(a.lastRun.status), ' ', fmtTime(a.lastRun.at)] : 'never'),
        el('td', {}, fmtTime(a.lastMaterialization) || 'never'),
        el('td', { class: 'num' }, fmtRows(a.rows)),
        el('td', { class: 'reason' }, a.reasons.join('\n')),
      ),
    );
  }
  table.append(body);
}

try {
  const o = await api('/overview');
  if (o.runningError)
    notice(main, `Temporal could not be reached, so running partitions are not shown: ${o.runningError}`);
  if (!o.first && o.assets.every((a) => a.lastRun === null)) {
    notice(main, 'Nothing has been materialized in this lake yet: start a materialization on the Runs page.');
  }
  drawGraph(document.getElementById('graph'), o.assets, o.edges);
  drawTable(document.getElementById('assets'), o.assets);
  document.getElementById('meta').textContent =
    `Days ${o.first ?? '–'} → ${o.last ?? '–'} (both included). Staleness against code ${o.codeVersion}` +
    (o.inputsCheckedAt ? `, raw inputs listed ${fmtTime(o.inputsCheckedAt)}.` : '.');
} catch (err) {
  showError(main, err);
}
painted();
