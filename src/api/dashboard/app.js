// The matrix-drill dashboard: network, jobs with live progress, Proof of Drilling, credit share
// against block share, the chain. Plain ES modules (Preact + htm, uPlot for the chart), fed by
// the REST routes once and then live by the /v1/events Server-Sent Events stream.
import { h, render } from './preact.mjs';
import { useEffect, useReducer, useRef, useState } from './hooks.mjs';
import htm from './htm.mjs';
import uPlot from './uPlot.mjs';

const html = htm.bind(h);
const TOKEN_KEY = 'matrix-drill-token';
const token = () => localStorage.getItem(TOKEN_KEY) || '';

async function api(path) {
  const headers = token() ? { authorization: `Bearer ${token()}` } : {};
  const res = await fetch(path, { headers });
  if (res.status === 401) throw Object.assign(new Error('unauthorized'), { status: 401 });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

const short = (id) => (id && id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id || '');
function num(x) {
  if (x === null || x === undefined) return '—';
  const a = Math.abs(x);
  if (a >= 1e12) return `${(x / 1e12).toFixed(2)} T`;
  if (a >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(x / 1e3).toFixed(1)} k`;
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
const flop = (x) => (Math.abs(x) >= 1e4 ? `${num(x)}FLOP` : `${num(x)} FLOP`);
const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
function ago(ms) {
  if (ms === undefined) return '—';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  return s < 2 ? 'now' : s < 90 ? `${s.toFixed(0)} s ago` : `${(s / 60).toFixed(0)} min ago`;
}
const eta = (ms) => (ms === null || ms === undefined ? '?' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

function reducer(s, a) {
  switch (a.type) {
    case 'load': return { ...s, ...a.data, loaded: true, error: null };
    case 'error': return { ...s, error: a.error };
    case 'progress': {
      const d = a.data;
      const jobs = s.jobs.map((j) => (j.id === d.job ? { ...j, progress: d.progress, rowsDone: d.progress.rowsDone, unitsDone: d.progress.done, units: d.progress.total, rowsPerSecond: d.rowsPerSecond, etaMs: d.etaMs } : j));
      return { ...s, jobs };
    }
    case 'event': return { ...s, log: [a.line, ...s.log].slice(0, 100) };
    default: return s;
  }
}

function Throughput({ samples }) {
  const el = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    if (!el.current) return;
    const opts = {
      width: el.current.clientWidth || 600, height: 180,
      scales: { x: { time: true } },
      axes: [{ stroke: '#7d8a99', grid: { stroke: '#263140' } }, { stroke: '#7d8a99', grid: { stroke: '#263140' }, label: 'rows/s' }],
      series: [{}, { label: 'rows/s', stroke: '#58a6ff', width: 2, fill: 'rgba(88,166,255,0.12)' }],
      legend: { show: false },
    };
    plot.current = new uPlot(opts, [[], []], el.current);
    return () => plot.current.destroy();
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData([samples.map((p) => p[0]), samples.map((p) => p[1])]);
  }, [samples]);
  return html`<div ref=${el} data-testid="throughput"></div>`;
}

function Network({ workers }) {
  const online = workers.filter((w) => w.connected).length;
  return html`<section class="wide"><h2>Network — ${online} of ${workers.length} workers online</h2>
    <table data-testid="workers"><thead><tr><th>worker</th><th>device</th><th class="num">threads</th><th class="num">Device Share</th><th>last seen</th><th class="num">units</th><th class="num">verified credit</th><th class="num">faults</th></tr></thead>
    <tbody>${workers.map((w) => html`<tr data-peer=${w.peer}>
      <td class="mono" title=${w.peer}><span class=${`dot ${w.faults > 0 ? 'badq' : w.connected ? 'on' : 'off'}`}></span>${short(w.peer)}</td>
      <td>${w.device ?? '—'}</td><td class="num">${w.threads ?? '—'}</td><td class="num">${w.score !== undefined ? `${num(w.score)} GFLOP/s` : '—'}</td>
      <td>${w.connected ? 'online' : ago(w.lastSeen)}</td>
      <td class="num" data-field="units" data-value=${w.units}>${w.units}</td>
      <td class="num" data-field="credit" data-value=${w.credit}>${flop(w.credit)}</td>
      <td class="num" data-field="faults" data-value=${w.faults}>${w.faults}</td></tr>`)}</tbody></table></section>`;
}

function Jobs({ jobs }) {
  return html`<section class="wide"><h2>Jobs</h2>
    <table data-testid="jobs"><thead><tr><th>job</th><th>status</th><th>progress</th><th class="num">rows</th><th class="num">rows/s</th><th class="num">ETA</th><th class="num">agreed</th><th class="num">disputed</th><th class="num">audited</th></tr></thead>
    <tbody>${jobs.length === 0 ? html`<tr><td colspan="9" class="muted">no jobs yet</td></tr>` : jobs.map((j) => {
      const frac = j.units ? j.unitsDone / j.units : j.status === 'done' ? 1 : 0;
      const p = j.progress || {};
      return html`<tr data-job=${j.id} data-status=${j.status}>
        <td><b>${j.name}</b> <span class="mono muted">${j.id}</span>${j.partner ? html` <span class="muted">by ${short(j.partner)}</span>` : ''}</td>
        <td><span class=${`pill ${j.status}`}>${j.cancelled ? 'cancelled' : j.status}</span></td>
        <td><div class=${`bar ${j.status}`} title=${`${j.unitsDone}/${j.units} units`}><span style=${{ width: `${(frac * 100).toFixed(1)}%` }}></span></div></td>
        <td class="num" data-field="rows" data-value=${j.rowsDone}>${j.rowsDone} / ${j.rows}</td>
        <td class="num">${num(j.rowsPerSecond)}</td><td class="num">${j.status === 'running' ? eta(j.etaMs) : '—'}</td>
        <td class="num" data-field="agreed" data-value=${p.agreed ?? 0}>${p.agreed ?? 0}</td><td class="num">${p.disputed ?? 0}</td><td class="num">${p.audited ?? 0}</td></tr>`;
    })}</tbody></table></section>`;
}

function Pod({ jobs, workers }) {
  const sum = (k) => jobs.reduce((a, j) => a + ((j.progress && j.progress[k]) || 0), 0);
  const quarantined = jobs.reduce((a, j) => a + (j.report ? j.report.workers.filter((w) => w.quarantined).length : (j.progress && j.progress.quarantined) || 0), 0);
  const faulty = workers.filter((w) => w.faults > 0).length;
  const cards = [
    ['agreed', sum('agreed'), 'good'], ['disputed', sum('disputed'), sum('disputed') ? 'warn' : ''], ['failed', sum('failed'), sum('failed') ? 'bad' : ''],
    ['quarantined', quarantined, quarantined ? 'bad' : ''], ['faulty workers', faulty, faulty ? 'bad' : ''], ['audited', sum('audited'), ''], ['unaudited', sum('unaudited'), ''], ['re-decided', sum('reopened'), ''],
  ];
  return html`<section><h2>Proof of Drilling</h2><div class="cards" data-testid="pod">${cards.map(([k, v, c]) => html`<div class=${`card ${c}`} data-field=${k} data-value=${v}><div class="v">${v}</div><div class="k">${k}</div></div>`)}</div></section>`;
}

function Shares({ credit }) {
  const rows = (credit && credit.workers) || [];
  const total = rows.reduce((a, w) => a + w.credit, 0);
  return html`<section><h2>Credit share vs block share ${credit && credit.source === 'coordinator' ? html`<span class="muted">(no chain: coordinator records)</span>` : ''}</h2>
    <div class="legend muted"><span><i style=${{ background: 'var(--accent)' }}></i>credit / lottery weight</span><span><i style=${{ background: 'var(--accent2)' }}></i>blocks produced</span></div>
    <table class="shares" data-testid="shares"><tbody>${rows.map((w) => {
      const cs = w.weightShare ?? (total ? w.credit / total : 0);
      const bs = w.blockShare ?? 0;
      return html`<tr><td class="mono" title=${w.peer}>${short(w.peer)}${w.banned ? html` <span class="pill failed">banned</span>` : ''}</td>
        <td style=${{ width: '60%' }}><div class="share credit" style=${{ width: `${(cs * 100).toFixed(1)}%` }}></div><div class="share blocks" style=${{ width: `${(bs * 100).toFixed(1)}%` }}></div></td>
        <td class="num">${pct(cs)}<br/><span class="muted">${w.blockShare === null ? '—' : pct(bs)}</span></td></tr>`;
    })}</tbody></table></section>`;
}

function Chain({ chain, blocks }) {
  if (!chain) return html`<section><h2>Chain</h2><p class="muted">This coordinator follows no chain (start it with --genesis).</p></section>`;
  return html`<section><h2>Chain — height ${chain.height}, epoch ${chain.epoch}</h2>
    <div class="cards"><div class="card"><div class="v" data-field="height">${chain.height}</div><div class="k">height</div></div>
      <div class="card"><div class="v">${chain.forks}</div><div class="k">forks settled</div></div><div class="card"><div class="v">${chain.reorgs}</div><div class="k">reorgs</div></div></div>
    <table data-testid="blocks"><thead><tr><th class="num">height</th><th class="num">slot</th><th>block</th><th>producer</th><th class="num">credits</th><th class="num">faults</th></tr></thead>
    <tbody>${blocks.map((b) => html`<tr><td class="num">${b.height}</td><td class="num">${b.slot}</td><td class="mono">${b.hash.slice(0, 10)}</td><td class="mono" title=${b.producer}>${short(b.producer) || 'genesis'}</td><td class="num">${b.credits}</td><td class="num">${b.faults}</td></tr>`)}</tbody></table></section>`;
}

function Events({ log }) {
  return html`<section><h2>Events</h2><div class="events mono">${log.map((l) => html`<div>${l}</div>`)}</div></section>`;
}

function Token({ onSave }) {
  const [v, setV] = useState('');
  return html`<div class="token"><h2>This coordinator needs an API token</h2>
    <p class="muted">Ask its operator for a token from the --api-tokens file; it is kept in this browser only.</p>
    <input type="password" value=${v} onInput=${(e) => setV(e.target.value)} placeholder="token" /> <button onClick=${() => onSave(v)}>use token</button></div>`;
}

function App() {
  const [s, dispatch] = useReducer(reducer, { loaded: false, workers: [], jobs: [], credit: null, chain: null, blocks: [], log: [], error: null });
  const [needToken, setNeedToken] = useState(false);
  const [samples, setSamples] = useState([]);
  const rates = useRef(new Map());

  async function load() {
    try {
      const [w, j, c, b] = await Promise.all([api('/v1/workers'), api('/v1/jobs?limit=50'), api('/v1/credit'), api('/v1/blocks?limit=12')]);
      dispatch({ type: 'load', data: { workers: w.workers, jobs: j.jobs, credit: c, chain: b.chain, blocks: b.blocks } });
      setNeedToken(false);
    } catch (e) {
      if (e.status === 401) setNeedToken(true);
      else dispatch({ type: 'error', error: e.message });
    }
  }

  useEffect(() => {
    void load();
    const url = `/v1/events${token() ? `?access_token=${encodeURIComponent(token())}` : ''}`;
    const es = new EventSource(url);
    let pending = null;
    // Structural events (job ended, worker joined, block) reload the views, at most every 500 ms.
    const reload = () => { if (!pending) pending = setTimeout(() => { pending = null; void load(); }, 500); };
    const line = (t, d) => dispatch({ type: 'event', line: `${new Date().toLocaleTimeString()} ${t} ${d}` });
    es.addEventListener('progress', (m) => { const d = JSON.parse(m.data); rates.current.set(d.job, d.rowsPerSecond); dispatch({ type: 'progress', data: d }); });
    es.addEventListener('job', (m) => { const d = JSON.parse(m.data); line('job', `${d.name} started: ${d.rows} rows, ${d.units} units`); reload(); });
    es.addEventListener('done', (m) => { const d = JSON.parse(m.data); rates.current.delete(d.job); line('done', `${d.job} ${d.status}${d.error ? `: ${d.error}` : ''}`); reload(); });
    es.addEventListener('unit', (m) => { const d = JSON.parse(m.data); if (d.disputed) line('dispute', `${d.job} unit ${d.unit} settled by majority${d.faulty.length ? `; outvoted ${d.faulty.map(short).join(', ')}` : ''}`); });
    es.addEventListener('fault', (m) => { const d = JSON.parse(m.data); line(d.kind, `${short(d.worker)} in ${d.job}: ${d.reason}`); reload(); });
    es.addEventListener('worker', (m) => { const d = JSON.parse(m.data); line('worker', `${short(d.peer)} ${d.connected ? 'connected' : 'left'}`); reload(); });
    es.addEventListener('block', (m) => { const d = JSON.parse(m.data); line('block', `#${d.height} by ${short(d.producer)}: ${d.credits} credit records`); reload(); });
    es.addEventListener('reorg', (m) => { const d = JSON.parse(m.data); line('reorg', `${d.depth} block(s) replaced`); reload(); });
    es.addEventListener('reset', () => reload());
    es.onerror = () => { if (token() === '' ) void load(); };
    const tick = setInterval(() => {
      let total = 0;
      for (const v of rates.current.values()) total += v;
      setSamples((x) => [...x, [Date.now() / 1000, total]].slice(-300));
    }, 1000);
    return () => { es.close(); clearInterval(tick); };
  }, [needToken]);

  if (needToken) return html`<${Token} onSave=${(t) => { localStorage.setItem(TOKEN_KEY, t); setNeedToken(false); }} />`;
  const online = s.workers.filter((w) => w.connected).length;
  return html`<header><h1>matrix-drill</h1>
      <span class="stat">workers <b data-field="online">${online}</b>/${s.workers.length}</span>
      <span class="stat">jobs running <b>${s.jobs.filter((j) => j.status === 'running').length}</b></span>
      <span class="stat">chain height <b>${s.chain ? s.chain.height : '—'}</b></span>
      ${s.error ? html`<span class="stat" style=${{ color: 'var(--bad)' }}>${s.error}</span>` : ''}</header>
    <main data-loaded=${String(s.loaded)}>
      <${Network} workers=${s.workers} />
      <${Jobs} jobs=${s.jobs} />
      <section><h2>Throughput (rows/s)</h2><${Throughput} samples=${samples} /></section>
      <${Pod} jobs=${s.jobs} workers=${s.workers} />
      <${Shares} credit=${s.credit} />
      <${Chain} chain=${s.chain} blocks=${s.blocks} />
      <${Events} log=${s.log} />
    </main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
