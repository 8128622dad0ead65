// Runs and backfills: launch a materialization, plan and then launch a backfill, and follow
// every run's progress (the workflows' own queries), each linked to the Temporal Web UI.
import { api, el, fmtDays, fmtTime, header, painted, post, runStatus, showError } from './common.js';

header('runs');
const main = document.getElementById('main');

function fields(form) {
  return Object.fromEntries(new FormData(form).entries());
}

/** The forms start at the lake's last day (its months for a backfill): where a person goes on
 * from or re-runs. An empty lake starts at yesterday, the day a daily schedule runs for. */
function defaults(known) {
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const last = known.last ?? yesterday;
  const m = document.getElementById('materialize');
  m.elements.from.value = last;
  m.elements.to.value = last;
  const b = document.getElementById('backfill');
  b.elements.from.value = (known.first ?? yesterday).slice(0, 7);
  b.elements.to.value = last.slice(0, 7);
}

function setupMaterialize() {
  const form = document.getElementById('materialize');
  const out = document.getElementById('materialize-result');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = fields(form);
    out.replaceChildren('starting …');
    try {
      const r = await post('/materializations', {
        selection: f.selection,
        from: f.from,
        to: f.to,
        only: f.only,
      });
      out.replaceChildren(
        r.joined ? 'Joined the run already going: ' : 'Started ',
        el('a', { href: r.url, target: '_blank', rel: 'noopener', id: 'started-workflow' }, r.workflowId),
        ` (${fmtDays(f.from, f.to)}, both included).`,
      );
      await refresh();
    } catch (err) {
      out.replaceChildren(el('span', { class: 'banner error' }, err.message));
    }
  });
}

function setupBackfill() {
  const form = document.getElementById('backfill');
  const start = document.getElementById('start-backfill');
  const plan = document.getElementById('plan');
  const note = document.getElementById('backfill-note');
  let planned = null;
  const request = () => {
    const f = fields(form);
    return {
      selection: f.selection,
      from: f.from,
      to: f.to,
      per: f.per,
      only: f.only,
      ...(f.concurrency ? { concurrency: Number(f.concurrency) } : {}),
    };
  };
  // A plan belongs to the arguments it was made for: change one and plan again.
  form.addEventListener('input', () => {
    if (planned && JSON.stringify(planned) !== JSON.stringify(request())) {
      start.disabled = true;
      note.textContent = 'The arguments changed since the plan: plan again before starting.';
    }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    start.disabled = true;
    note.textContent = 'planning from the lake …';
    try {
      const req = request();
      const r = await post('/backfills/plan', req);
      plan.hidden = false;
      plan.textContent = r.text;
      planned = req;
      start.disabled = false;
      note.replaceChildren('Starting it runs exactly this plan as ', el('code', {}, r.workflowId), '.');
    } catch (err) {
      plan.hidden = true;
      note.replaceChildren(el('span', { class: 'banner error' }, err.message));
    }
  });
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      const r = await post('/backfills', planned);
      note.replaceChildren(
        'Started (or joined) ',
        el('a', { href: r.url, target: '_blank', rel: 'noopener', id: 'started-backfill' }, r.workflowId),
        '.',
      );
      await refresh();
    } catch (err) {
      note.replaceChildren(el('span', { class: 'banner error' }, err.message));
      start.disabled = false;
    }
  });
}

function progressCell(r) {
  if (r.progressError) return el('span', { class: 'muted' }, `progress not available: ${r.progressError}`);
  if (!r.progress) return '';
  const p = r.progress;
  const bar = el('span', { class: `progress${Object.keys(p.failed).length ? ' failed' : ''}` }, el('span'));
  bar.firstChild.style.width = `${p.total === 0 ? 100 : Math.round((p.finished / p.total) * 100)}%`;
  return el(
    'div',
    {},
    bar,
    `${p.finished}/${p.total} ${p.unit}`,
    p.running.length ? el('div', { class: 'muted' }, `running: ${p.running.join(', ')}`) : null,
    ...Object.entries(p.failed).map(([k, why]) => el('div', { class: 'reason' }, `failed ${k}: ${why}`)),
  );
}

async function refresh() {
  const table = document.getElementById('runs');
  try {
    const { runs } = await api('/runs?limit=60');
    table.replaceChildren(
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ['workflow', 'type', 'status', 'kind', 'assets', 'days', 'started', 'progress'].map((h) =>
            el('th', {}, h),
          ),
        ),
      ),
      el(
        'tbody',
        {},
        runs.length === 0
          ? el('tr', {}, el('td', { colspan: 8, class: 'muted' }, 'no runs yet'))
          : runs.map((r) =>
              el(
                'tr',
                { 'data-workflow': r.workflowId },
                el(
                  'td',
                  {},
                  el('a', { href: r.url, target: '_blank', rel: 'noopener' }, r.workflowId),
                  r.parent ? el('div', { class: 'muted' }, `in ${r.parent}`) : null,
                ),
                el('td', {}, r.type),
                el('td', {}, ...runStatus(r)),
                el('td', {}, r.runKind ?? ''),
                el('td', {}, r.assets.join(', ')),
                el('td', {}, fmtDays(r.first, r.last)),
                el('td', {}, fmtTime(r.startTime)),
                el('td', {}, progressCell(r)),
              ),
            ),
      ),
    );
    document.getElementById('refreshed').textContent =
      `(as of ${fmtTime(new Date().toISOString())}, every 3 s)`;
  } catch (err) {
    table.replaceChildren(el('tr', {}, el('td', { class: 'banner error' }, err.message)));
  }
}

try {
  const config = await api('/config');
  document
    .getElementById('asset-list')
    .replaceChildren(
      ...['*', ...config.assets.map((a) => a.key), ...config.assets.map((a) => `+${a.key}`)].map((v) =>
        el('option', { value: v }),
      ),
    );
  document.getElementById('backfill').elements.concurrency.placeholder = String(config.concurrency.months);
  // Without the lake's days (its index unreadable now) the forms start at yesterday.
  defaults(await api('/days').catch(() => ({ first: null, last: null })));
  setupMaterialize();
  setupBackfill();
  await refresh();
  setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, 3000);
} catch (err) {
  showError(main, err);
}
painted();
