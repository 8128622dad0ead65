// One asset: rows over time (per day, or per run for a whole table), and beside it what each
// build took and an estimate of what it cost (EMR step start to end × the cluster's hourly price).
import { chart } from './charts.js';
import {
  api,
  badge,
  el,
  fmtDays,
  fmtDuration,
  fmtRows,
  fmtTime,
  fmtUsd,
  header,
  painted,
  params,
  partitionHref,
  showError,
} from './common.js';

header('overview');
const main = document.getElementById('main');
const asset = params().get('asset') ?? '';

try {
  const config = await api('/config');
  const spec = config.assets.find((a) => a.key === asset);
  const range =
    params().get('from') && params().get('to')
      ? `?from=${params().get('from')}&to=${params().get('to')}`
      : '';
  const m = await api(`/assets/${encodeURIComponent(asset)}/metrics${range}`);
  const daily = m.partitioning === 'daily';
  document.getElementById('title').textContent = `${asset}`;
  document.getElementById('description').textContent =
    `${daily ? 'Daily partitions' : 'A whole table'} (${spec?.partitioning ?? m.partitioning}). ` +
    (daily ? 'Rows of each day as its last successful run wrote them.' : 'Rows of the table after each run.');
  document.getElementById('rows-title').textContent = daily
    ? 'Rows per day (and quarantined input rows)'
    : 'Table rows per run (and quarantined input rows)';
  const labels = m.points.map((p) => (daily ? p.x : fmtTime(p.x).slice(0, 16)));
  document.getElementById('rows').append(
    chart({
      labels,
      series: [
        {
          kind: 'line',
          values: m.points.map((p) => p.rows),
          titles: m.points.map((p) => `${p.x}: ${fmtRows(p.rows)} rows`),
          dotClass: m.points.map((p) => p.status),
        },
        {
          kind: 'line',
          class: 'q',
          values: m.points.map((p) => p.quarantined),
          titles: m.points.map((p) => `${p.x}: ${fmtRows(p.quarantined)} quarantined`),
        },
      ],
    }),
  );
  document.getElementById('cost').append(
    chart({
      labels,
      format: (v) => fmtDuration(v),
      series: [
        {
          kind: 'bar',
          values: m.points.map((p) => p.durationS),
          titles: m.points.map(
            (p) =>
              `${p.x}: EMR step ${p.stepId ?? '?'} ran ${fmtDuration(p.durationS)} for ${fmtDays(p.first, p.last)}, ≈ ${fmtUsd(p.stepCostUsd)}` +
              (daily ? ` (${fmtUsd(p.costUsd)} for this day)` : ''),
          ),
        },
      ],
      empty: 'no step durations recorded yet',
    }),
  );
  document.getElementById('totals').textContent =
    `${m.totals.steps} EMR steps, ${fmtDuration(m.totals.durationS) || '0 s'} in all, ≈ ${fmtUsd(m.totals.costUsd)} ` +
    `(an estimate: step duration × ${m.price.instanceCount} instances × ${fmtUsd(m.price.instanceHourUsd)} per instance-hour; ` +
    `steps running side by side share the cluster, so this is an upper bound). A bar is the step that built the day, shared by every day of its range.`;

  const recent = [...m.points].reverse().slice(0, 62);
  document.getElementById('table-title').textContent = daily
    ? `Partitions (latest ${recent.length} of ${m.points.length})`
    : `Runs (latest ${recent.length})`;
  document.getElementById('points').replaceChildren(
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', {}, daily ? 'day' : 'run at'),
        el('th', {}, 'status'),
        el('th', { class: 'num' }, 'rows'),
        el('th', { class: 'num' }, 'quarantined'),
        el('th', {}, 'EMR step'),
        el('th', {}, 'step built'),
        el('th', { class: 'num' }, 'step duration'),
        el('th', { class: 'num' }, 'step cost ≈'),
        daily ? el('th', { class: 'num' }, 'this day ≈') : null,
      ),
    ),
    el(
      'tbody',
      {},
      recent.map((p) =>
        el(
          'tr',
          {},
          el(
            'td',
            {},
            daily
              ? el('a', { href: partitionHref(asset, p.x) }, p.x)
              : el('a', { href: partitionHref(asset, 'all') }, fmtTime(p.x)),
          ),
          el('td', {}, badge(p.status)),
          el('td', { class: 'num' }, fmtRows(p.rows)),
          el('td', { class: 'num' }, fmtRows(p.quarantined)),
          el('td', { class: 'mono' }, p.stepId ?? ''),
          el('td', {}, fmtDays(p.first, p.last)),
          el('td', { class: 'num' }, fmtDuration(p.durationS)),
          el('td', { class: 'num' }, fmtUsd(p.stepCostUsd)),
          daily ? el('td', { class: 'num' }, fmtUsd(p.costUsd)) : null,
        ),
      ),
    ),
  );
} catch (err) {
  showError(main, err);
}
painted();
