// One partition: its state and why, its run history (rows, quarantined rows, EMR step, duration,
// cost, log), and where its runs are in the Temporal Web UI.
import { chart } from './charts.js';
import {
  api,
  assetHref,
  badge,
  el,
  fmtDays,
  fmtDuration,
  fmtRows,
  fmtTime,
  fmtUsd,
  header,
  notice,
  painted,
  params,
  partitionHref,
  runStatus,
  showError,
} from './common.js';

header('health');
const main = document.getElementById('main');
const asset = params().get('asset') ?? '';
const partition = params().get('partition') ?? '';
const path = `/partitions/${encodeURIComponent(asset)}/${encodeURIComponent(partition)}`;

function fact(list, name, value) {
  if (value === null || value === undefined || value === '') return;
  list.append(el('dt', {}, name), el('dd', {}, value));
}

// What the state badge means for this partition, in words (the badge alone is the state's name).
const STATE_SENTENCE = {
  materialized: 'up to date',
  failed: 'its latest run failed',
  stale: 'out of date',
  missing: 'not built yet',
};

function drawState(target, p) {
  target.replaceChildren(
    el('p', { id: 'state-line' }, badge(p.state), ' ', el('strong', {}, STATE_SENTENCE[p.state] ?? '')),
    p.reason ? el('p', { class: 'reason', id: 'reason' }, p.reason) : null,
    ...p.running.map((r) => el('p', {}, 'Running now in ', el('code', {}, r.workflowId))),
  );
}

function drawFacts(list, p) {
  const r = p.runs[0];
  if (!r) {
    list.append(el('dt', {}, 'never run'), el('dd', {}, 'no manifest for this partition yet'));
    return;
  }
  fact(list, 'status', badge(r.status));
  fact(list, 'recorded', fmtTime(r.at));
  fact(list, 'rows', fmtRows(r.rows));
  if (r.tableRows !== null) fact(list, 'table rows', fmtRows(r.tableRows));
  fact(
    list,
    'quarantined',
    r.quarantined === null
      ? ''
      : `${fmtRows(r.quarantined)} ${Object.entries(r.quarantinedByReason)
          .map(([k, v]) => `${k}: ${fmtRows(v)}`)
          .join(', ')}`,
  );
  fact(list, 'EMR step', r.stepId ? el('code', {}, r.stepId) : '');
  fact(list, 'step built', `${fmtDays(r.first, r.last)} (both included)`);
  fact(list, 'step duration', fmtDuration(r.durationS));
  if (r.stepCostUsd !== null)
    fact(
      list,
      'cost ≈',
      `${fmtUsd(r.stepCostUsd)} for the step${p.partitioning === 'daily' ? `, ${fmtUsd(r.costUsd)} for this day` : ''}`,
    );
  fact(list, 'log', r.logFile ? el('code', {}, r.logFile) : '');
  fact(list, 'report', r.reportUri ? el('code', {}, r.reportUri) : '');
  fact(list, 'staged output', r.stagingUri ? el('code', {}, r.stagingUri) : '');
  fact(list, 'data version', r.dataVersion ? el('code', {}, r.dataVersion) : '');
  fact(list, 'code version', el('code', {}, r.codeVersion));
  fact(list, 'workflow', el('a', { href: r.workflowUrl, target: '_blank', rel: 'noopener' }, r.workflowId));
  if (r.warnings.length) fact(list, 'warnings', r.warnings.join('; '));
}

function drawHistory(table, p) {
  table.replaceChildren(
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ['recorded', 'status', 'workflow', 'kind', 'step built'].map((h) => el('th', {}, h)),
        ['rows', 'quarantined'].map((h) => el('th', { class: 'num' }, h)),
        el('th', {}, 'EMR step'),
        ['duration', 'cost ≈'].map((h) => el('th', { class: 'num' }, h)),
        el('th', {}, 'log / reason'),
      ),
    ),
    el(
      'tbody',
      {},
      p.runs.map((r) =>
        el(
          'tr',
          {},
          el('td', {}, fmtTime(r.at)),
          el('td', {}, badge(r.status)),
          el('td', {}, el('a', { href: r.workflowUrl, target: '_blank', rel: 'noopener' }, r.workflowId)),
          el('td', {}, r.runKind),
          el('td', {}, fmtDays(r.first, r.last)),
          el('td', { class: 'num' }, fmtRows(r.rows)),
          el('td', { class: 'num' }, fmtRows(r.quarantined)),
          el('td', { class: 'mono' }, r.stepId ?? ''),
          el('td', { class: 'num' }, fmtDuration(r.durationS)),
          el('td', { class: 'num' }, fmtUsd(p.partitioning === 'daily' ? r.costUsd : r.stepCostUsd)),
          el(
            'td',
            { class: 'reason' },
            // A failed step's reason already names its log.
            [r.reason, r.logFile && !(r.reason ?? '').includes(r.logFile) ? `log: ${r.logFile}` : null]
              .filter(Boolean)
              .join('\n'),
          ),
        ),
      ),
    ),
  );
}

function drawNeighbours(target, p) {
  const link = (n) =>
    n.partition === ''
      ? el('a', { href: assetHref(n.asset) }, `${n.asset} (every day)`)
      : el(
          'a',
          { href: partitionHref(n.asset, n.partition) },
          n.partition === 'all' ? n.asset : `${n.asset} ${n.partition}`,
        );
  target.replaceChildren(
    'Reads: ',
    ...(p.upstream.length ? p.upstream.flatMap((n, i) => [i ? ', ' : '', link(n)]) : ['nothing upstream']),
    ' · Read by: ',
    ...(p.downstream.length
      ? p.downstream.flatMap((n, i) => [i ? ', ' : '', link(n)])
      : ['nothing downstream']),
    ' · ',
    el('a', { href: assetHref(p.asset) }, `all of ${p.asset}`),
  );
}

async function drawTemporalRuns(table) {
  try {
    const { runs } = await api(`${path}/runs`);
    table.replaceChildren(
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ['workflow', 'status', 'kind', 'days', 'started'].map((h) => el('th', {}, h)),
        ),
      ),
      el(
        'tbody',
        {},
        runs.length === 0
          ? el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'no runs found by that query'))
          : runs.map((r) =>
              el(
                'tr',
                {},
                el('td', {}, el('a', { href: r.url, target: '_blank', rel: 'noopener' }, r.workflowId)),
                el('td', {}, ...runStatus(r)),
                el('td', {}, r.runKind ?? r.type),
                el('td', {}, fmtDays(r.first, r.last)),
                el('td', {}, fmtTime(r.startTime)),
              ),
            ),
      ),
    );
  } catch (err) {
    table.replaceChildren(el('tr', {}, el('td', { class: 'muted' }, err.message)));
  }
}

try {
  const p = await api(path);
  document.title = `Sparkify Lake — ${asset} ${partition}`;
  document
    .getElementById('title')
    .replaceChildren(
      el('a', { href: assetHref(asset) }, asset),
      ' / ',
      partition === 'all' ? 'whole table' : partition,
    );
  if (p.runningError)
    notice(
      main,
      `Temporal could not be reached, so whether it is running now is not known: ${p.runningError}`,
    );
  drawState(document.getElementById('state'), p);
  drawFacts(document.getElementById('facts'), p);
  const chronological = [...p.runs].reverse();
  document.getElementById('rows').append(
    chart({
      labels: chronological.map((r) => fmtTime(r.at).slice(0, 16)),
      series: [
        {
          kind: 'line',
          values: chronological.map((r) => (r.status === 'materialized' ? r.rows : null)),
          titles: chronological.map((r) => `${fmtTime(r.at)}: ${fmtRows(r.rows)} rows`),
        },
        {
          kind: 'line',
          class: 'q',
          values: chronological.map((r) => (r.status === 'materialized' ? r.quarantined : null)),
          titles: chronological.map((r) => `${fmtTime(r.at)}: ${fmtRows(r.quarantined)} quarantined`),
        },
      ],
      empty: 'no successful run yet',
    }),
  );
  drawHistory(document.getElementById('history'), p);
  document
    .getElementById('temporal')
    .replaceChildren(
      'Every run of this asset for this month, by search attributes: ',
      el(
        'a',
        { href: p.temporal.url, target: '_blank', rel: 'noopener', id: 'temporal-link' },
        el('code', {}, p.temporal.query),
      ),
    );
  drawNeighbours(document.getElementById('neighbours'), p);
  await drawTemporalRuns(document.getElementById('temporal-runs'));
} catch (err) {
  showError(main, err);
}
painted();
