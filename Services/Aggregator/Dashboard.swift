/// The dashboard page served at `/`: one HTML document with inline style and script, no
/// external scripts or fonts, so it renders offline. It reads the Stats API with the key
/// typed into it (kept in the browser's localStorage).
enum Dashboard {
    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tributary statistics</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
header h1{font-size:18px;margin:0 16px 0 0}
input,select,button{font:inherit;padding:4px 8px;border-radius:4px;border:1px solid #888}
main{padding:20px;max-width:1100px;margin:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card,.panel{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
.card b{display:block;font-size:24px}.card span{color:#667;font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px;margin-top:12px}
table{width:100%;border-collapse:collapse;font-size:14px}td{padding:3px 0;border-bottom:1px solid #eee}
td.n{text-align:right;width:80px}h2{font-size:15px;margin:0 0 8px}
#error{color:#b00020;margin:8px 0}svg{width:100%;height:220px}
</style></head><body>
<header><h1>Tributary</h1>
<label>Site <input id="site" size="12" placeholder="name or id"></label>
<label>Key <input id="key" size="24" type="password" placeholder="read key or admin token"></label>
<select id="range"><option value="day">Today</option><option value="7d">Last 7 days</option>
<option value="30d" selected>Last 30 days</option><option value="month">This month</option>
<option value="12mo">Last 12 months</option></select>
<button id="go">Show</button><span id="live"></span></header>
<main><div id="error"></div>
<div class="cards" id="cards"></div>
<div class="panel" style="margin-top:12px"><h2>Visitors and pageviews</h2><svg id="chart" viewBox="0 0 1000 220" preserveAspectRatio="none"></svg></div>
<div class="grid" id="tables"></div></main>
<script>
const $ = id => document.getElementById(id);
$('site').value = localStorage.getItem('tributary.site') || '';
$('key').value = localStorage.getItem('tributary.key') || '';
async function q(body) {
  const r = await fetch('/api/v2/query', {method: 'POST', headers: {'Content-Type': 'application/json',
    'Authorization': 'Bearer ' + $('key').value}, body: JSON.stringify(Object.assign({site_id: $('site').value}, body))});
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || r.status);
  return j.results;
}
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
function chart(rows) {
  const svg = $('chart'); if (!rows.length) { svg.innerHTML = ''; return; }
  const max = Math.max(1, ...rows.map(r => Math.max(r.metrics[0], r.metrics[1])));
  const x = i => rows.length == 1 ? 500 : i * 1000 / (rows.length - 1), y = v => 210 - v * 200 / max;
  const line = (k, color) => '<polyline fill="none" stroke="' + color + '" stroke-width="2" points="' +
    rows.map((r, i) => x(i) + ',' + y(r.metrics[k])).join(' ') + '"/>';
  svg.innerHTML = line(1, '#9bb0d6') + line(0, '#2f5cc4');
}
function table(title, rows) {
  return '<div class="panel"><h2>' + esc(title) + '</h2><table>' + rows.map(r =>
    '<tr><td>' + esc(r.dimensions[0]) + '</td><td class="n">' + r.metrics[0] + '</td></tr>').join('') + '</table></div>';
}
async function show() {
  localStorage.setItem('tributary.site', $('site').value); localStorage.setItem('tributary.key', $('key').value);
  const range = $('range').value; $('error').textContent = '';
  try {
    const [t] = await q({metrics: ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration'], date_range: range});
    const names = ['Unique visitors', 'Visits', 'Pageviews', 'Views per visit', 'Bounce rate %', 'Visit duration s'];
    $('cards').innerHTML = t.metrics.map((v, i) => '<div class="card"><span>' + names[i] + '</span><b>' + v + '</b></div>').join('');
    chart(await q({metrics: ['visitors', 'pageviews'], date_range: range, dimensions: [range == 'day' ? 'time:hour' : 'time:day']}));
    const top = [['Top pages', 'event:page'], ['Sources', 'visit:source'], ['Countries', 'visit:country'],
                 ['Entry pages', 'visit:entry_page'], ['Browsers', 'visit:browser'], ['Devices', 'visit:device']];
    const parts = await Promise.all(top.map(([, d]) => q({metrics: ['visitors'], date_range: range, dimensions: [d], pagination: {limit: 10}})));
    $('tables').innerHTML = parts.map((rows, i) => table(top[i][0], rows)).join('');
    const r = await fetch('/api/v1/stats/realtime/visitors?site_id=' + encodeURIComponent($('site').value),
                          {headers: {'Authorization': 'Bearer ' + $('key').value}});
    $('live').textContent = r.ok ? (await r.text()) + ' current visitors' : '';
  } catch (e) { $('error').textContent = e.message; }
}
$('go').onclick = show;
if ($('site').value && $('key').value) show();
</script></body></html>
"""#
}
