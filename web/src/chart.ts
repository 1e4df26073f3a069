// A hashrate chart drawn as SVG by hand: an area under a line, the peak and
// the time span as labels, and a tooltip per bucket.

import type { HashrateSeries } from './api';
import { h, svg } from './dom';
import { hashrate, hashrateText, rate } from './format';

const W = 720;
const H = 180;
const PAD = { left: 8, right: 8, top: 22, bottom: 20 };

/** The series as a chart; shows a note instead when it has no shares. */
export function hashrateChart(series: HashrateSeries, testid: string): HTMLElement {
  const pts = series.points;
  const total = pts.reduce((n, p) => n + p.shares, 0);
  if (pts.length === 0 || total === 0) {
    return h('p', { class: 'muted', 'data-testid': testid }, 'No shares in the last 24 hours.');
  }
  // Display only: hashrates become floats here, never in accounting.
  const values = pts.map(rate);
  const peakIndex = values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
  const max = values[peakIndex];
  const top = max || 1;
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (i: number) => PAD.left + (pts.length === 1 ? iw / 2 : (i * iw) / (pts.length - 1));
  const y = (v: number) => PAD.top + ih - (v / top) * ih;
  const line = values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const area = `${line} L${x(pts.length - 1).toFixed(1)},${PAD.top + ih} L${x(0).toFixed(1)},${PAD.top + ih} Z`;
  const label = (unix: number) => new Date(unix * 1000).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
  const text = (content: string, attrs: Record<string, string | number>) => {
    const t = svg('text', { class: 'axis', ...attrs });
    t.textContent = content;
    return t;
  };
  const hits = pts.map((p, i) => {
    const r = svg('rect', {
      x: (x(i) - iw / pts.length / 2).toFixed(1),
      y: PAD.top,
      width: Math.max(1, iw / pts.length).toFixed(1),
      height: ih,
      class: 'hit',
    });
    const title = svg('title');
    title.textContent = `${label(p.startUnix)}: ${hashrate(p)} (${p.shares} shares)`;
    r.appendChild(title);
    return r;
  });
  const chart = svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Hashrate, peak ${hashrateText(max)}` },
    svg('line', { x1: PAD.left, x2: W - PAD.right, y1: PAD.top + ih, y2: PAD.top + ih, class: 'base' }),
    svg('path', { d: area, class: 'area' }),
    svg('path', { d: line, class: 'line' }),
    svg('circle', { cx: x(peakIndex).toFixed(1), cy: y(max).toFixed(1), r: 3, class: 'peak' }),
    text(`peak ${hashrateText(max)}`, { x: PAD.left, y: 14 }),
    text(label(series.fromUnix), { x: PAD.left, y: H - 4 }),
    text(label(series.toUnix), { x: W - PAD.right, y: H - 4, 'text-anchor': 'end' }),
    ...hits,
  );
  return h('figure', { class: 'chart-wrap', 'data-testid': testid }, chart, h('figcaption', { class: 'muted' }, `Last 24 h, ${series.bucketSecs / 60}-minute buckets`));
}
