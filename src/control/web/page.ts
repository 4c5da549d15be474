// The web view's page: one self-contained HTML document (inline style and script, no
// external fetches, no build step). It reads /api/crawl every 2 s (and /api/ring when a new
// crawl finished), /api/local every 3 s and /api/history every 10 s, and draws the ring on
// one canvas; it revalidates (If-None-Match) what the server tags, so an unchanged ring or
// history costs a 304. Counts are mirrored in the DOM (data-nodes, data-links, data-stat) for tests
// and scripts.
export const PAGE = String.raw`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Brunet overlay</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#1a202c;background:#f7fafc}
header{padding:8px 14px;background:#2d3748;color:#fff;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0}
main{display:flex;gap:12px;padding:12px;flex-wrap:wrap}
#left{flex:1 1 560px;min-width:320px;max-width:900px}
#right{flex:1 1 380px;min-width:320px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 10px;margin-bottom:10px}
h2{font-size:13px;margin:0 0 6px;text-transform:uppercase;color:#4a5568}
canvas#ring{width:100%;aspect-ratio:1;display:block;cursor:crosshair}
table{border-collapse:collapse;width:100%}th{text-align:left;font-weight:500;color:#4a5568;padding-right:8px;white-space:nowrap;vertical-align:top}
td{word-break:break-all}.mono{font-family:ui-monospace,monospace;font-size:12px}
#legend span{display:inline-block;margin-right:12px}#legend i{display:inline-block;width:22px;height:0;border-top:2px solid;vertical-align:middle;margin-right:4px}
#tip{position:fixed;pointer-events:none;background:#1a202cee;color:#fff;padding:4px 8px;border-radius:4px;font-size:12px;display:none;max-width:420px}
#error{color:#c53030}progress{width:160px}button{font:inherit}
canvas#history{width:100%;height:220px;display:block}
</style></head><body>
<header><h1>Brunet overlay</h1><span id="summary">no crawl yet</span>
<progress id="crawl-progress" value="0" max="1"></progress><span id="crawl-status">starting</span>
<button id="crawl-now" type="button">Crawl now</button><span id="error" role="alert"></span></header>
<main><div id="left">
<section><canvas id="ring" width="800" height="800" data-nodes="0" data-links="0" data-generation="0" aria-label="ring of nodes by address"></canvas>
<div id="legend"></div>
<label>Node <select id="node-select"><option value="-1">(select a node)</option></select></label></section>
<section><h2>History (last hour)</h2><canvas id="history" width="800" height="220"></canvas><div id="history-now" class="mono"></div></section>
</div><div id="right">
<section><h2>Selected node</h2><div id="details">Hover over or click a node.</div></section>
<section><h2>Crawl statistics</h2><table id="stats"></table></section>
<section><h2>This node</h2><div id="local">loading</div></section>
</div></main><div id="tip"></div>
<script>
'use strict';
var STYLE = { near: ['#2b6cb0', 1.6, []], shortcut: ['#dd6b20', 0.7, []], ondemand: ['#38a169', 1.3, [6, 3]], relay: ['#c53030', 1.3, [2, 3]], other: ['#a0aec0', 0.6, [1, 2]] };
var ring = null, gen = -1, sel = -1, hov = -1, pts = [], vpnIps = {}, localAddr = '';
function $(id) { return document.getElementById(id); }
function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
// 'no-cache': the browser keeps what carries an ETag and revalidates it (If-None-Match; 304 while unchanged).
function getJson(u) { return fetch(u, { cache: 'no-cache' }).then(function (r) { if (!r.ok) throw new Error(u + ': HTTP ' + r.status); return r.json(); }); }
function fail(e) { $('error').textContent = 'control API: ' + e.message; }
function ok() { $('error').textContent = ''; }
function rows(o) {
  return '<table>' + Object.keys(o).map(function (k) {
    var v = o[k];
    if (Array.isArray(v)) v = v.length ? v.map(esc).join('<br>') : '-';
    else if (v && typeof v === 'object') v = esc(JSON.stringify(v));
    else v = esc(v === null || v === undefined ? '-' : v);
    return '<tr><th>' + esc(k) + '</th><td class="mono">' + v + '</td></tr>';
  }).join('') + '</table>';
}

// ---- the ring ----
var cv = $('ring'), cx = cv.getContext('2d');
function layout() {
  var W = cv.width, R = W / 2 - 24;
  pts = (ring ? ring.nodes : []).map(function (n) {
    var a = n.pos * 2 * Math.PI - Math.PI / 2;
    return [W / 2 + R * Math.cos(a), W / 2 + R * Math.sin(a)];
  });
}
function curve(a, b) {
  var W = cv.width / 2, p = pts[a], q = pts[b], mx = (p[0] + q[0]) / 2, my = (p[1] + q[1]) / 2;
  cx.moveTo(p[0], p[1]); cx.quadraticCurveTo(W + (mx - W) * 0.6, W + (my - W) * 0.6, q[0], q[1]);
}
function draw() {
  var W = cv.width; cx.clearRect(0, 0, W, W);
  cx.strokeStyle = '#e2e8f0'; cx.lineWidth = 1; cx.setLineDash([]);
  cx.beginPath(); cx.arc(W / 2, W / 2, W / 2 - 24, 0, 2 * Math.PI); cx.stroke();
  if (!ring) return;
  var kinds = ring.linkKinds;
  kinds.forEach(function (k, ki) {
    var s = STYLE[k]; cx.strokeStyle = s[0]; cx.lineWidth = s[1]; cx.setLineDash(s[2]); cx.globalAlpha = ring.nodes.length > 200 ? 0.35 : 0.8;
    cx.beginPath();
    ring.links.forEach(function (l) { if (l[2] === ki) curve(l[0], l[1]); });
    cx.stroke();
  });
  cx.globalAlpha = 1; cx.setLineDash([]);
  var focus = sel >= 0 ? sel : hov;
  if (focus >= 0) {
    cx.strokeStyle = '#1a202c'; cx.lineWidth = 2; cx.beginPath();
    ring.links.forEach(function (l) { if (l[0] === focus || l[1] === focus) curve(l[0], l[1]); });
    cx.stroke();
  }
  var r = ring.nodes.length > 300 ? 2.2 : 4.5;
  ring.nodes.forEach(function (n, i) {
    var p = pts[i], local = n.address === localAddr;
    cx.fillStyle = local ? '#38a169' : n.info.state === 'connected' ? '#2d3748' : '#dd6b20';
    cx.beginPath(); cx.arc(p[0], p[1], local ? r * 1.8 : r, 0, 2 * Math.PI); cx.fill();
    if (i === sel || i === hov) { cx.strokeStyle = '#e53e3e'; cx.lineWidth = 2; cx.beginPath(); cx.arc(p[0], p[1], r + 4, 0, 2 * Math.PI); cx.stroke(); }
  });
}
function nodeAt(ev) {
  var b = cv.getBoundingClientRect(), k = cv.width / b.width, x = (ev.clientX - b.left) * k, y = (ev.clientY - b.top) * k;
  var best = -1, bd = 12 * k * 12 * k;
  pts.forEach(function (p, i) { var d = (p[0] - x) * (p[0] - x) + (p[1] - y) * (p[1] - y); if (d < bd) { bd = d; best = i; } });
  return best;
}
function linkCounts(i) {
  var c = {};
  ring.links.forEach(function (l) { if (l[0] === i || l[1] === i) { var k = ring.linkKinds[l[2]]; c[k] = (c[k] || 0) + 1; } });
  return c;
}
function nodeView(i) {
  var n = ring.nodes[i], f = n.info;
  var o = { address: n.address, 'vpn ip': vpnIps[n.address] || '-', type: f.type, state: f.state, namespace: f.namespace, TAs: n.tas,
    'edges udp/tcp/relay': (f.udp || 0) + ' / ' + (f.tcp || 0) + ' / ' + (f.tunnel || 0), connections: f.cons, 'links drawn': linkCounts(i),
    'security associations': f.sas, 'wrapped edges': f.wedges, 'size estimate': f.size_estimate, 'local ips': f.localips || [], 'nat views': f.natviews || [] };
  var nb = f.neighbors || {};
  ['left', 'left2', 'right', 'right2', 'shortcut'].forEach(function (k) { if (nb[k]) o[k] = nb[k]; });
  return o;
}
function select(i) {
  sel = i; $('node-select').value = String(i);
  $('details').innerHTML = i >= 0 && ring ? rows(nodeView(i)) : 'Hover over or click a node.';
  $('details').setAttribute('data-address', i >= 0 && ring ? ring.nodes[i].address : '');
  draw();
}
cv.addEventListener('mousemove', function (ev) {
  var i = nodeAt(ev), tip = $('tip');
  if (i !== hov) { hov = i; draw(); }
  if (i < 0) { tip.style.display = 'none'; return; }
  var n = ring.nodes[i];
  tip.innerHTML = esc(n.address) + '<br>' + esc(n.info.state) + ', ' + esc(n.info.cons) + ' connections' + (vpnIps[n.address] ? ', VPN ' + esc(vpnIps[n.address]) : '');
  tip.style.left = ev.clientX + 14 + 'px'; tip.style.top = ev.clientY + 10 + 'px'; tip.style.display = 'block';
});
cv.addEventListener('mouseleave', function () { hov = -1; $('tip').style.display = 'none'; draw(); });
cv.addEventListener('click', function (ev) { select(nodeAt(ev)); });
$('node-select').addEventListener('change', function () { select(Number(this.value)); });
function onRing() {
  var prev = sel >= 0 && ring ? ring.nodes[sel] && ring.nodes[sel].address : null;
  layout();
  cv.setAttribute('data-nodes', ring.nodes.length); cv.setAttribute('data-links', ring.links.length); cv.setAttribute('data-generation', ring.generation);
  $('legend').innerHTML = '<b data-count="nodes">' + ring.nodes.length + '</b> nodes, <b data-count="links">' + ring.links.length + '</b> links: ' +
    ring.linkKinds.map(function (k) { return '<span data-kind="' + k + '"><i style="border-color:' + STYLE[k][0] + ';border-top-style:' + (STYLE[k][2].length ? 'dashed' : 'solid') + '"></i>' + k + ' <b>' + ring.linkCounts[k] + '</b></span>'; }).join('');
  var s = $('node-select'), opts = ['<option value="-1">(select a node)</option>'];
  ring.nodes.forEach(function (n, i) { opts.push('<option value="' + i + '">' + esc(n.address) + '</option>'); });
  s.innerHTML = opts.join('');
  var j = -1; if (prev) ring.nodes.forEach(function (n, i) { if (n.address === prev) j = i; });
  select(j);
  var st = ring.stats || {};
  $('summary').textContent = ring.nodes.length + ' nodes, consistency ' + (st.Consistency === undefined ? '-' : Number(st.Consistency).toFixed(3)) + (ring.complete ? '' : ' (partial crawl)');
  $('stats').innerHTML = Object.keys(st).map(function (k) { return '<tr data-stat="' + esc(k) + '"><th>' + esc(k) + '</th><td class="mono">' + esc(st[k]) + '</td></tr>'; }).join('');
}
function pollCrawl() {
  getJson('/api/crawl').then(function (p) {
    ok();
    var bar = $('crawl-progress'); bar.max = Math.max(1, p.found + p.pending); bar.value = p.running ? p.found : bar.max;
    var ago = p.finishedAt ? Math.round((p.now - p.finishedAt) / 1000) + ' s ago' : 'never';
    $('crawl-status').textContent = p.running ? 'crawling: ' + p.found + ' found, ' + p.pending + ' pending' :
      'last crawl ' + ago + (p.stats ? ', took ' + p.stats['Crawl took'] + ' s' : '') + (p.finishedAt && !p.complete ? ' (incomplete)' : '');
    $('crawl-status').setAttribute('data-running', p.running ? '1' : '0');
    if (p.generation > 0 && p.generation !== gen) return getJson('/api/ring').then(function (r) { ring = r; gen = r.generation; onRing(); });
  }).catch(fail).then(function () { setTimeout(pollCrawl, 2000); });
}
$('crawl-now').addEventListener('click', function () { getJson('/api/crawl?now=1').catch(fail); });

// ---- the local node ----
function pollLocal() {
  getJson('/api/local').then(function (l) {
    localAddr = l.address || '';
    var v = l.vpn, ips = {};
    if (v && v.peers) v.peers.forEach(function (p) { if (p.uid && (p.ip4 || p.ip)) ips[p.uid] = p.ip4 || p.ip; });
    if (v && v.local_state && (v.local_state.ip4 || v.local_state.ip)) ips[localAddr] = v.local_state.ip4 || v.local_state.ip;
    vpnIps = ips;
    var c = l.connections || {}, h = '';
    h += rows({ address: l.address, 'nodes in process': l.processNodes, state: l.info && l.info.state, TAs: l.tas || [],
      connections: c.total, 'by type': c.byType, 'by edge': c.byKind, 'size estimate': l.info && l.info.size_estimate });
    if (l.dht) h += '<h2>DHT</h2>' + rows({ 'entries held': l.dht.entries, registrations: l.dht.registrations + ' (' + l.dht.registrationsOk + ' ok)', client: l.dht.client, server: l.dht.server });
    h += '<h2>Secure sessions</h2>' + (l.secure ? rows(l.secure) : 'security off');
    h += '<h2>NAT views</h2>' + (l.nat && l.nat.length ? rows({ 'seen as': l.nat.map(function (n) { return n.ta + ' (' + n.ageS + ' s)'; }) }) : 'none reported');
    h += '<h2>Relay</h2>' + (l.relay ? rows({ 'relay edges': l.relay.edges, 'frames relayed': l.relay.relayed, 'bytes relayed': l.relay.relayedBytes, 'cap drops': l.relay.capDrops, upgrades: l.relay.upgrades,
      'relayed connections': l.relay.relayedConnections.map(function (r) { return r.address + ' via ' + (r.via.join(', ') || '?'); }) }) : 'relay off');
    if (v) {
      h += '<h2>VPN</h2>';
      if (v.peers) h += '<table id="vpn-peers"><tr><th>peer</th><th>ip</th><th>path</th><th>rtt</th></tr>' + v.peers.map(function (p) {
        return '<tr><td class="mono">' + esc(p.uid) + '</td><td>' + esc(p.ip4 || p.ip || '-') + '</td><td>' + esc(p.path || p.status) + (p.via && p.via.length ? ' via ' + esc(p.via.join(', ')) : '') + '</td><td>' + (p.rttMs != null ? esc(p.rttMs) + ' ms' : '-') + '</td></tr>';
      }).join('') + '</table>';
      else h += rows(v);
    }
    h += '<h2>Process</h2>' + rows({ 'rss MiB': l.process ? (l.process.rssBytes / 1048576).toFixed(1) : '-', 'uptime s': l.process && l.process.uptimeS });
    $('local').innerHTML = h;
    if (ring && sel < 0) draw();
  }).catch(fail).then(function () { setTimeout(pollLocal, 3000); });
}

// ---- history ----
var hv = $('history'), hx = hv.getContext('2d');
var SERIES = [['connections', 'connections', '#2b6cb0'], ['messagesPerSec', 'messages/s', '#dd6b20'], ['putsPerSec', 'DHT puts/s', '#38a169'], ['getsPerSec', 'DHT gets/s', '#805ad5']];
function pollHistory() {
  getJson('/api/history').then(function (h) {
    var s = h.samples, W = hv.width, H = hv.height, rowH = H / SERIES.length, t1 = s.length ? s[s.length - 1].t : 0, t0 = t1 - 3600e3;
    hx.clearRect(0, 0, W, H); hx.font = '11px system-ui';
    SERIES.forEach(function (d, i) {
      var top = i * rowH, max = 1;
      s.forEach(function (p) { max = Math.max(max, p[d[0]]); });
      hx.strokeStyle = '#edf2f7'; hx.beginPath(); hx.moveTo(0, top + rowH - 2); hx.lineTo(W, top + rowH - 2); hx.stroke();
      hx.strokeStyle = d[2]; hx.lineWidth = 1.5; hx.beginPath();
      s.forEach(function (p, j) { var x = (p.t - t0) / 3600e3 * W, y = top + rowH - 3 - (p[d[0]] / max) * (rowH - 16); if (j) hx.lineTo(x, y); else hx.moveTo(x, y); });
      hx.stroke();
      hx.fillStyle = '#4a5568'; hx.fillText(d[1] + ': ' + (s.length ? s[s.length - 1][d[0]] + ' (max ' + max + ')' : 'no sample yet'), 4, top + 11);
    });
    $('history-now').textContent = s.length + ' samples every ' + h.periodMs / 1000 + ' s';
    $('history-now').setAttribute('data-samples', s.length);
  }).catch(fail).then(function () { setTimeout(pollHistory, 10000); });
}
function fit() { var w = Math.min(1600, Math.round(cv.getBoundingClientRect().width * (window.devicePixelRatio || 1))); if (w > 0 && w !== cv.width) { cv.width = cv.height = w; layout(); draw(); } }
window.addEventListener('resize', fit);
window.ringView = { positionOf: function (address) {
  if (!ring) return null;
  for (var i = 0; i < ring.nodes.length; i++) if (ring.nodes[i].address === address) {
    var b = cv.getBoundingClientRect(), k = b.width / cv.width;
    return { x: b.left + pts[i][0] * k, y: b.top + pts[i][1] * k };
  }
  return null;
} };
fit(); pollCrawl(); pollLocal(); pollHistory();
</script></body></html>
`;
