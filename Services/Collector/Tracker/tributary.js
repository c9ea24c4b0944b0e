// Tributary's browser tracker, served by the collector at /tributary.js (docs/tracker.md).
// Page views (also for single-page apps), track, identify; each event gets its messageId
// when it is created, is batched, retried with backoff and kept in localStorage until the
// collector has acknowledged it, so a retry or a later page never loses or doubles it.
(function (w, d) {
"use strict";
var me = d.currentScript;
if (!me || (w.tributary && w.tributary.loaded)) return;
var key = me.getAttribute("data-write-key") || "";
var api = (me.getAttribute("data-api") || new URL(me.src, d.baseURI).origin).replace(/\/+$/, "");
var hashes = me.getAttribute("data-hash") === "true";
var nav = navigator, store = null, pageId = uuid(), prefix = "tributary:" + key + ":";
try { store = w.localStorage; store.setItem(prefix + "t", "1"); store.removeItem(prefix + "t"); } catch (e) { store = null; }
var qKey = prefix + "q:" + pageId, cfgKey = prefix + "cfg", idKey = prefix + "id", userKey = prefix + "user";
var cfg = read(cfgKey), fresh = false, queue = [], sending = false, timer = 0, retryAt = 0, failures = 0, tries = 0, off = false;
var anonymousId = read(idKey) || pageId, userId = read(userKey), lastUrl = here(), referrer = d.referrer;

function read(k) { try { return store && JSON.parse(store.getItem(k)); } catch (e) { return null; } }
function write(k, v) { try { if (store) v == null ? store.removeItem(k) : store.setItem(k, JSON.stringify(v)); } catch (e) {} }
function uuid() {
var c = w.crypto;
if (c.randomUUID) return c.randomUUID();
var b = c.getRandomValues(new Uint8Array(16)), h = "";
b[6] = b[6] & 15 | 64; b[8] = b[8] & 63 | 128;
for (var i = 0; i < 16; i++) h += (b[i] + 256).toString(16).slice(1) + ([3, 5, 7, 9].indexOf(i) >= 0 ? "-" : "");
return h;
}
function here() { var l = d.location; return hashes ? l.href : l.href.split("#")[0]; }
function dnt() { return nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true; }
function limit() { return (cfg && cfg.maxStoredEvents) || 1000; }
// For a visitor who asks not to be tracked, nothing is stored or sent until this page has
// read the site's settings afresh (cached ones may predate the site honouring the request).
function held() { return dnt() && (!fresh || cfg.honorDnt); }
// Unsent events go to this page's own key (two tabs never overwrite each other); a page
// adopts the keys left by earlier pages of the same site when it loads.
function save() { if (held()) return; write(qKey, queue.length ? queue : null); }

function page() {
var l = d.location, q = new URLSearchParams(l.search), c = {};
[["source", "utm_source"], ["medium", "utm_medium"], ["name", "utm_campaign"], ["term", "utm_term"], ["content", "utm_content"]]
.forEach(function (p) { if (q.get(p[1])) c[p[0]] = q.get(p[1]); });
return { p: { url: l.href, path: l.pathname, referrer: referrer, title: d.title, search: l.search }, c: c };
}
function add(type, extra) {
if (off) return null;
var p = page(), e = {
type: type, messageId: uuid(), anonymousId: anonymousId, timestamp: new Date().toISOString(),
context: { page: p.p, userAgent: nav.userAgent, locale: nav.language, library: { name: "tributary.js", version: "1" },
screen: { width: screen.width, height: screen.height } }
};
if (Object.keys(p.c).length) e.context.campaign = p.c;
if (userId) e.userId = userId;
for (var k in extra) e[k] = extra[k];
queue.push(e);
if (queue.length > limit()) queue.splice(0, queue.length - limit());
save();
schedule(queue.length >= ((cfg && cfg.batchSize) || 100) ? 0 : (cfg && cfg.flushIntervalMs) || 500);
return e.messageId;
}
function schedule(ms) {
clearTimeout(timer);
timer = setTimeout(flush, Math.max(ms, retryAt - Date.now(), 0));
}
function body(events) { return JSON.stringify({ batch: events, sentAt: new Date().toISOString(), writeKey: key }); }
function flush() {
if (sending || !cfg || off || !queue.length || held()) return;
if (Date.now() < retryAt) return schedule(0);
var batch = queue.slice(0, cfg.batchSize || 100);
sending = true;
fetch(api + "/v1/batch", { method: "POST", body: body(batch), headers: { "Content-Type": "text/plain" }, credentials: "omit" })
.then(function (r) {
if (r.ok || (r.status >= 400 && r.status < 500 && r.status !== 429 && r.status !== 408)) {
// Acknowledged, or refused for good (a bad event, a revoked key, a refused origin).
failures = 0;
if (!r.ok && w.console) console.warn("tributary: events refused (" + r.status + ")");
done(batch);
} else retry(r.headers.get("Retry-After"));
}, function () { retry(null); })
.then(function () { sending = false; if (queue.length) schedule(0); });
}
function done(batch) {
var sent = {};
batch.forEach(function (e) { sent[e.messageId] = 1; });
queue = queue.filter(function (e) { return !sent[e.messageId]; });
save();
}
function retry(after) {
var s = parseFloat(after), ms = s >= 0 ? s * 1000 : Math.min(cfg.retryMaxMs || 15000, 1000 * Math.pow(2, failures)) * (0.5 + Math.random() / 2);
failures++;
retryAt = Date.now() + ms;
}
// The page is going away (or hidden, and may never come back): hand what is queued to
// the browser. The events stay stored until a later page sees them acknowledged.
function beacon() {
if (!cfg || off || !queue.length || !nav.sendBeacon || held()) return;
for (var i = 0; i < queue.length; i += cfg.batchSize || 100) {
nav.sendBeacon(api + "/v1/batch", new Blob([body(queue.slice(i, i + (cfg.batchSize || 100)))], { type: "text/plain" }));
}
}
function configure(c) {
cfg = c;
off = false;
write(cfgKey, c);
if (c.honorDnt && dnt()) {
off = true; queue = [];
for (var i = store ? store.length - 1 : -1; i >= 0; i--) if (store.key(i).indexOf(prefix) === 0) store.removeItem(store.key(i));
return;
}
if (c.cookies) write(idKey, anonymousId); else { write(idKey, null); write(userKey, null); }
if (store) for (var j = store.length - 1; j >= 0; j--) {
var k = store.key(j);
if (k.indexOf(prefix + "q:") === 0 && k !== qKey) { queue = (read(k) || []).concat(queue); store.removeItem(k); }
}
if (queue.length > limit()) queue.splice(0, queue.length - limit());
save();
schedule(0);
}
function settings() {
fetch(api + "/v1/settings?writeKey=" + encodeURIComponent(key), { credentials: "omit" })
.then(function (r) { if (!r.ok) throw r; return r.json(); })
.then(function (c) { fresh = true; configure(c); }, function () { setTimeout(settings, Math.min(60000, 2000 * ++tries)); });
}
function navigated() {
var u = here();
if (u === lastUrl) return;
referrer = lastUrl;
lastUrl = u;
add("page", { properties: page().p });
}
["pushState", "replaceState"].forEach(function (m) {
var o = history[m];
history[m] = function () { var r = o.apply(this, arguments); navigated(); return r; };
});
w.addEventListener("popstate", navigated);
if (hashes) w.addEventListener("hashchange", navigated);
w.addEventListener("pagehide", beacon);
d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") beacon(); });

var t = {
loaded: true,
page: function (name, props) {
var p = page().p;
for (var k in props) p[k] = props[k];
return add("page", name ? { name: name, properties: p } : { properties: p });
},
track: function (name, props) { return add("track", { event: String(name), properties: props || {} }); },
identify: function (id, traits) {
if (id != null) { userId = String(id); if (cfg && cfg.cookies) write(userKey, userId); }
return add("identify", { traits: traits || {} });
},
flush: flush,
push: function (c) { return t[c[0]] && t[c[0]].apply(t, [].slice.call(c, 1)); }
};
var early = w.tributary;
w.tributary = t;
// The last settings seen work until the collector answers (it may be down right now).
if (cfg) configure(cfg);
settings();
if (early && early.length) [].slice.call(early).forEach(t.push);
t.page();
})(window, document);
