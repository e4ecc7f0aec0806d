// A small horizontal grouped bar chart in SVG, with a legend and every value written as
// text (series are told apart by their names and order, not by colour alone).

import { h } from './api.js';

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * `categories`: row labels; `series`: [{name, values}] (one value per category);
 * `format`: value → text. Returns an element holding the legend and the chart.
 */
export function barChart({ title, categories, series, format = (v) => String(v) }) {
  const barH = 13;
  const gap = 3;
  const rowH = series.length * (barH + gap) + 10;
  const labelW = 150;
  const valueW = 190;
  const width = 780;
  const plotW = width - labelW - valueW;
  const height = categories.length * rowH + 10;
  const max = Math.max(1e-12, ...series.flatMap((s) => s.values.map((v) => Number(v) || 0)));
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    role: 'img',
    'aria-label': title || '',
  });
  if (title) root.append(svg('title', {}, title));
  categories.forEach((label, row) => {
    const y0 = 5 + row * rowH;
    const name = label.length > 14 ? `${label.slice(0, 14)}…` : label;
    root.append(svg('text', { x: 0, y: y0 + rowH / 2, 'dominant-baseline': 'middle' }, name));
    series.forEach((s, i) => {
      const v = Number(s.values[row]) || 0;
      const y = y0 + i * (barH + gap);
      const w = Math.max(v > 0 ? 1 : 0, (v / max) * plotW);
      const bar = svg('rect', { x: labelW, y, width: w, height: barH, class: `s${i % 2}` });
      bar.append(svg('title', {}, `${label} · ${s.name}: ${format(v)}`));
      root.append(bar);
      root.append(svg('text', { x: labelW + w + 4, y: y + barH - 2 }, `${format(v)} ${s.name}`));
    });
  });
  const legend = h(
    'p',
    { class: 'legend' },
    series.map((s, i) => h('span', {}, h('span', { class: `swatch s${i % 2}`, 'aria-hidden': 'true' }), s.name)),
  );
  return h('div', { class: 'scroll' }, legend, root);
}
