// status.js — the status page: polls /api/status and draws tiles, a throughput chart, a
// verdicts-by-plugin chart and two tables. No library, no network beyond this gateway.
'use strict';

const COLORS = {
  accepted: '#2da44e', refused: '#cf222e', connections: '#0969da',
  continue: '#8c959f', accept: '#2da44e', tempfail: '#bf8700', reject: '#cf222e', discard: '#8250df',
};
const ACTIONS = ['continue', 'accept', 'tempfail', 'reject', 'discard'];

function text(id, value) { document.getElementById(id).textContent = value; }

function fmt(n) {
  if (typeof n !== 'number') return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en');
  return n.toFixed(n < 10 ? 2 : 1);
}

function cell(row, value, numeric) {
  const td = document.createElement('td');
  td.textContent = numeric ? fmt(value) : value;
  if (numeric) td.className = 'num';
  row.appendChild(td);
}

function fillTable(id, rows, columns) {
  const body = document.querySelector('#' + id + ' tbody');
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    for (const [key, numeric] of columns) cell(tr, key(r), numeric);
    body.appendChild(tr);
  }
}

// Line chart of several series sharing the x axis.
function drawLines(canvas, series) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height, pad = 30;
  ctx.clearRect(0, 0, w, h);
  let max = 1, n = 0;
  for (const s of series) { n = Math.max(n, s.values.length); for (const v of s.values) max = Math.max(max, v); }
  ctx.strokeStyle = '#d8dee4'; ctx.fillStyle = '#6a737d'; ctx.font = '11px sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = pad / 2 + (h - pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 4, y); ctx.stroke();
    ctx.fillText(fmt(max * (4 - i) / 4), 2, y + 4);
  }
  if (n < 2) return;
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.beginPath();
    s.values.forEach((v, i) => {
      const x = pad + (w - pad - 4) * i / (n - 1);
      const y = pad / 2 + (h - pad) * (1 - v / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

// One horizontal stacked bar per plugin: its calls by action.
function drawVerdicts(canvas, plugins) {
  const rowH = 22, labelW = 140;
  canvas.height = Math.max(40, plugins.length * rowH + 10);
  const ctx = canvas.getContext('2d');
  const w = canvas.width;
  ctx.clearRect(0, 0, w, canvas.height);
  ctx.font = '12px sans-serif';
  if (plugins.length === 0) { ctx.fillStyle = '#6a737d'; ctx.fillText('no plugins in the chain', 8, 24); return; }
  plugins.forEach((p, i) => {
    const y = 5 + i * rowH;
    ctx.fillStyle = '#1d2733'; ctx.fillText(p.name, 6, y + 14);
    let x = labelW;
    const total = Math.max(1, p.calls);
    for (const a of ACTIONS) {
      const bw = (w - labelW - 8) * (p[a] || 0) / total;
      ctx.fillStyle = COLORS[a]; ctx.fillRect(x, y + 2, bw, rowH - 6);
      x += bw;
    }
  });
}

function render(s) {
  const t = s.totals;
  text('version', 'version ' + s.version);
  text('updated', 'updated ' + new Date(s.time_ms).toLocaleTimeString());
  text('connections_open', fmt(t.connections_open));
  text('connections', fmt(t.connections));
  text('transactions', fmt(t.transactions));
  text('accepted', fmt(t.transactions_by_outcome.accepted));
  const refused = t.transactions_by_outcome.rejected + t.transactions_by_outcome.tempfail +
    Object.values(t.refusals_by_stage).reduce((a, b) => a + b, 0);
  text('refused', fmt(refused));
  text('backend_errors', fmt(t.backend_errors));
  text('dns_hits', s.dns ? (100 * s.dns.cache_hit_ratio).toFixed(0) + ' %' : '–');
  const last = s.series.accepted.slice(-60).map((v, i) => v + s.series.refused.slice(-60)[i]);
  text('rate', fmt(last.length ? last.reduce((a, b) => a + b, 0) / last.length : 0));
  drawLines(document.getElementById('throughput'), [
    { values: s.series.connections, color: COLORS.connections },
    { values: s.series.refused, color: COLORS.refused },
    { values: s.series.accepted, color: COLORS.accepted },
  ]);
  drawVerdicts(document.getElementById('verdicts'), s.plugins);
  fillTable('plugins', s.plugins, [
    [p => p.name, false], [p => p.calls, true], [p => p.continue, true], [p => p.accept, true],
    [p => p.tempfail, true], [p => p.reject, true], [p => p.discard, true],
    [p => p.failures, true], [p => p.mean_ms, true]]);
  fillTable('refusals', s.refusals, [
    [r => new Date(r.time_ms).toLocaleTimeString(), false], [r => r.session, false],
    [r => r.client, false], [r => r.stage, false], [r => r.reply, false],
    [r => r.plugin, false], [r => r.detail, false]]);
  document.body.dataset.loaded = 'true';
}

async function poll() {
  try {
    const response = await fetch('/api/status', { cache: 'no-store' });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    render(await response.json());
  } catch (e) {
    text('updated', 'cannot reach the gateway: ' + e.message);
  }
}

poll();
setInterval(poll, 2000);
