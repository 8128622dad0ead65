// Partition health: an asset × day heatmap, months as rows, one cell per day. Thousands of cells,
// so the grid is one string of markup (classes only: no data from the API goes into it as
// markup) and one delegated handler each for hover and click.
import {
  api,
  badge,
  el,
  escape,
  fmtTime,
  header,
  notice,
  painted,
  params,
  partitionHref,
  showError,
} from './common.js';

header('health');
const main = document.getElementById('main');
const tip = document.getElementById('tip');

const NAME = { m: 'materialized', f: 'failed', s: 'stale', x: 'missing', r: 'running' };

function legend() {
  document
    .getElementById('legend')
    .replaceChildren(
      ...Object.entries(NAME).map(([code, name]) =>
        el(
          'span',
          {},
          el('i', { class: code }),
          name === 'stale' ? 'stale (code, input or upstream data changed)' : name,
        ),
      ),
    );
}

function drawHeatmap(target, h) {
  let html = '<div class="row days"><span class="label"></span>';
  for (let d = 1; d <= 31; d++) html += `<i>${d % 5 === 0 || d === 1 ? d : ''}</i>`;
  html += '</div>';
  h.months.forEach((m, mi) => {
    html += '<div class="month">';
    h.daily.forEach((asset, ai) => {
      const month = ai === 0 ? m.month : '';
      html += `<div class="row" data-m="${mi}" data-a="${ai}"><span class="label"><b>${month}</b>${escape(asset)}</span>`;
      const cells = m.cells[asset];
      for (let d = 0; d < cells.length; d++) html += `<i class="${cells[d]}"></i>`;
      html += '</div>';
    });
    html += '</div>';
  });
  target.innerHTML = html;

  const cellAt = (node) => {
    if (node.tagName !== 'I') return null;
    const row = node.parentElement;
    if (!row || row.dataset.m === undefined) return null;
    const m = h.months[Number(row.dataset.m)];
    const asset = h.daily[Number(row.dataset.a)];
    const d = Array.prototype.indexOf.call(row.children, node) - 1;
    const day = `${m.month}-${String(d + 1).padStart(2, '0')}`;
    const code = m.cells[asset][d];
    const why = m.why[asset][d];
    return { asset, day, state: NAME[code], reason: why >= 0 ? h.reasons[why] : null };
  };
  target.addEventListener('mouseover', (e) => {
    const cell = cellAt(e.target);
    if (!cell) return;
    tip.textContent = `${cell.asset} ${cell.day} — ${cell.state}${cell.reason ? `: ${cell.reason}` : ''}`;
    tip.style.display = 'block';
  });
  target.addEventListener('mousemove', (e) => {
    tip.style.left = `${Math.min(e.clientX + 14, window.innerWidth - 540)}px`;
    tip.style.top = `${e.clientY + 14}px`;
  });
  target.addEventListener('mouseleave', () => (tip.style.display = 'none'));
  target.addEventListener('click', (e) => {
    const cell = cellAt(e.target);
    if (cell) location.href = partitionHref(cell.asset, cell.day);
  });
}

function drawTables(target, h) {
  target.replaceChildren(
    ...h.tables.map((t) =>
      el(
        'a',
        { href: partitionHref(t.asset, 'all'), title: t.reason ?? t.state, 'data-asset': t.asset },
        el('strong', {}, t.asset),
        ' ',
        badge(t.state),
      ),
    ),
  );
}

function drawCounts(table, h) {
  const states = ['materialized', 'failed', 'stale', 'missing', 'running'];
  table.replaceChildren(
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', {}, 'asset'),
        states.map((s) => el('th', { class: 'num' }, s)),
      ),
    ),
    el(
      'tbody',
      {},
      Object.entries(h.counts).map(([asset, c]) =>
        el(
          'tr',
          {},
          el('td', {}, asset),
          states.map((s) => el('td', { class: 'num' }, c[s])),
        ),
      ),
    ),
  );
}

legend();
const form = document.getElementById('range');
form.addEventListener('submit', (e) => {
  e.preventDefault();
  const data = new FormData(form);
  location.search = `?from=${data.get('from')}&to=${data.get('to')}`;
});

try {
  const p = params();
  const query =
    p.get('from') && p.get('to')
      ? `?from=${encodeURIComponent(p.get('from'))}&to=${encodeURIComponent(p.get('to'))}`
      : '';
  const h = await api(`/health${query}`);
  form.elements.from.value = h.from;
  form.elements.to.value = h.to;
  if (h.runningError)
    notice(main, `Temporal could not be reached, so running partitions are not shown: ${h.runningError}`);
  drawTables(document.getElementById('tables'), h);
  drawHeatmap(document.getElementById('heatmap'), h);
  drawCounts(document.getElementById('counts'), h);
  const cells = h.months.reduce((n, m) => n + m.days * h.daily.length, 0);
  document.getElementById('summary').textContent =
    `${h.months.length} months, ${cells.toLocaleString('en-US')} daily partitions`;
  document.getElementById('meta').textContent =
    `Staleness against code ${h.codeVersion}` +
    (h.inputsCheckedAt ? `; raw inputs listed ${fmtTime(h.inputsCheckedAt)}.` : '.');
} catch (err) {
  showError(main, err);
}
painted();
