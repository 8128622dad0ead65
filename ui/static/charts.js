// Small SVG charts: points along x in order (days, or run times), values on a linear y axis from 0.
import { svg } from './common.js';

const W = 640;
const H = 220;
const M = { left: 64, right: 12, top: 12, bottom: 34 };

function ticks(max) {
  if (max <= 0) return [0];
  const base = 10 ** Math.floor(Math.log10(max));
  const step =
    [0.1, 0.2, 0.25, 0.5, 1, 2, 5].map((f) => f * base).find((s) => Math.ceil(max / s) <= 5) ?? base * 10;
  const out = [];
  for (let v = 0; out.length === 0 || out.at(-1) < max; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * series: [{ kind: 'line' | 'bar', class, values: (number|null)[], titles?: string[] }]
 * labels: x labels (same length as values); a few are drawn.
 */
export function chart({ labels, series, format = (v) => v.toLocaleString('en-US'), empty = 'no data yet' }) {
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const n = labels.length;
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  if (n === 0 || values.length === 0) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, empty));
    return root;
  }
  const yt = ticks(Math.max(...values));
  const ymax = yt.at(-1) || 1;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const x = (i) => M.left + (n === 1 ? plotW / 2 : (i / (n - 1)) * plotW);
  const y = (v) => M.top + plotH - (v / ymax) * plotH;
  for (const t of yt) {
    root.append(
      svg('line', {
        class: 'axis',
        x1: M.left,
        x2: W - M.right,
        y1: y(t),
        y2: y(t),
        opacity: t === 0 ? 1 : 0.35,
      }),
    );
    root.append(svg('text', { x: M.left - 6, y: y(t) + 4, 'text-anchor': 'end' }, format(t)));
  }
  const shown = n <= 3 ? labels.map((_, i) => i) : [0, Math.floor((n - 1) / 2), n - 1];
  for (const i of shown) {
    const anchor = i === 0 && n > 1 ? 'start' : i === n - 1 && n > 1 ? 'end' : 'middle';
    root.append(svg('text', { x: x(i), y: H - 12, 'text-anchor': anchor }, labels[i]));
  }
  const barW = Math.max(1, Math.min(18, (plotW / n) * 0.8));
  for (const s of series) {
    if (s.kind === 'bar') {
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        root.append(
          svg(
            'rect',
            {
              class: `bar ${s.class ?? ''}`,
              x: x(i) - barW / 2,
              y: y(v),
              width: barW,
              height: Math.max(0.5, y(0) - y(v)),
            },
            s.titles ? svg('title', {}, s.titles[i]) : null,
          ),
        );
      });
      continue;
    }
    let d = '';
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += `${d === '' ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    root.append(svg('path', { class: `line ${s.class ?? ''}`, d }));
    if (n <= 120) {
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        root.append(
          svg(
            'circle',
            { class: `dot ${s.dotClass?.[i] ?? ''}`, cx: x(i), cy: y(v), r: 2.5 },
            s.titles ? svg('title', {}, s.titles[i]) : null,
          ),
        );
      });
    }
  }
  return root;
}
