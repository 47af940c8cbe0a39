// The browser side of report.html: draws the charts as SVG (one path per series, log-scale toggle per
// chart, resumed segments and stops marked) and drives the sample-grid slider. It is inlined into the
// page with Function.prototype.toString, so it must be self-contained: no imports, no outer names.
/// <reference lib="dom" />

export interface ClientChart {
  id: string;
  title: string;
  series: { name: string; points: [number, number][] }[];
}

export interface ClientData {
  charts: ClientChart[];
  /** steps where a resumed segment starts */
  resumes: number[];
  /** steps where the run stopped on NaN/Inf */
  stops: { step: number; message: string }[];
  grids: { label: string; src: string }[];
  total: number;
}

export function reportClient(data: ClientData): void {
  const NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
  const W = 520;
  const H = 260;
  const M = { l: 58, r: 12, t: 12, b: 30 };
  const el = (tag: string, attrs: Record<string, string | number>, parent?: Element): SVGElement => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  };
  const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : Number(v.toPrecision(3)).toString());

  const draw = (chart: ClientChart, svg: SVGSVGElement, log: boolean) => {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const all = chart.series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v) && (!log || v > 0));
    const xs = all.map(([x]) => x);
    const tr = (v: number) => (log ? Math.log10(v) : v);
    const ys = all.map(([, v]) => tr(v));
    const x0 = Math.min(0, ...xs);
    const x1 = Math.max(data.total, ...xs, x0 + 1);
    let y0 = ys.length ? Math.min(...ys) : 0;
    let y1 = ys.length ? Math.max(...ys) : 1;
    if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
    const px = (x: number) => M.l + ((x - x0) / (x1 - x0)) * (W - M.l - M.r);
    const py = (y: number) => H - M.b - ((tr(y) - y0) / (y1 - y0)) * (H - M.t - M.b);
    el('rect', { x: M.l, y: M.t, width: W - M.l - M.r, height: H - M.t - M.b, fill: '#fff', stroke: '#ccc' }, svg);
    for (let i = 0; i <= 4; i++) {
      const yv = y0 + ((y1 - y0) * i) / 4;
      const y = H - M.b - ((H - M.t - M.b) * i) / 4;
      el('line', { x1: M.l, x2: W - M.r, y1: y, y2: y, stroke: '#eee' }, svg);
      const t = el('text', { x: M.l - 4, y: y + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#555' }, svg);
      t.textContent = fmt(log ? 10 ** yv : yv);
      const xv = x0 + ((x1 - x0) * i) / 4;
      const tx = el('text', { x: px(xv), y: H - M.b + 14, 'text-anchor': 'middle', 'font-size': 10, fill: '#555' }, svg);
      tx.textContent = String(Math.round(xv));
    }
    const xl = el('text', { x: (M.l + W - M.r) / 2, y: H - 4, 'text-anchor': 'middle', 'font-size': 10, fill: '#333' }, svg);
    xl.textContent = 'step';
    for (const r of data.resumes) {
      const l = el('line', { x1: px(r), x2: px(r), y1: M.t, y2: H - M.b, stroke: '#888', 'stroke-dasharray': '4 3', 'data-resume': r }, svg);
      el('title', {}, l).textContent = `resumed at step ${r}`;
    }
    for (const s of data.stops) {
      const l = el('line', { x1: px(s.step), x2: px(s.step), y1: M.t, y2: H - M.b, stroke: '#d00', 'stroke-width': 2, 'data-stop': s.step }, svg);
      el('title', {}, l).textContent = s.message;
    }
    chart.series.forEach((s, i) => {
      const pts = s.points.filter(([, v]) => Number.isFinite(v) && (!log || v > 0));
      const d = pts.map(([x, v], k) => `${k ? 'L' : 'M'}${px(x).toFixed(1)},${py(v).toFixed(1)}`).join('');
      el('path', { d: d || 'M0,0', fill: 'none', stroke: COLORS[i % COLORS.length]!, 'stroke-width': 1.4, 'data-series': s.name, 'data-points': s.points.length }, svg);
      if (pts.length === 1) el('circle', { cx: px(pts[0]![0]), cy: py(pts[0]![1]), r: 3, fill: COLORS[i % COLORS.length]! }, svg);
    });
  };

  const holder = document.getElementById('charts')!;
  for (const chart of data.charts) {
    const box = document.createElement('figure');
    box.className = 'chart';
    box.dataset.chart = chart.id;
    const head = document.createElement('figcaption');
    const title = document.createElement('span');
    title.textContent = chart.title;
    const label = document.createElement('label');
    const toggle = document.createElement('input');
    toggle.type = 'checkbox';
    toggle.className = 'log-toggle';
    label.append(toggle, ' log scale');
    head.append(title, label);
    const svg = document.createElementNS(NS, 'svg') as SVGSVGElement;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('width', String(W));
    svg.setAttribute('height', String(H));
    const legend = document.createElement('div');
    legend.className = 'legend';
    chart.series.forEach((s, i) => {
      const item = document.createElement('span');
      item.style.color = COLORS[i % COLORS.length]!;
      const last = s.points.at(-1);
      item.textContent = `${s.name}${last ? ` = ${fmt(last[1])}` : ''}`;
      legend.appendChild(item);
    });
    box.append(head, svg, legend);
    holder.appendChild(box);
    draw(chart, svg, false);
    toggle.addEventListener('change', () => draw(chart, svg, toggle.checked));
  }

  const slider = document.getElementById('grid-slider') as HTMLInputElement | null;
  const img = document.getElementById('grid-image') as HTMLImageElement | null;
  const caption = document.getElementById('grid-caption');
  if (slider && img && data.grids.length) {
    const show = () => {
      const g = data.grids[Number(slider.value)]!;
      img.src = g.src;
      img.dataset.label = g.label;
      if (caption) caption.textContent = g.label;
    };
    slider.addEventListener('input', show);
    show();
  }
}
