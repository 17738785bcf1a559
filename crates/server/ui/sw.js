// cityos — the service worker of the inspector's page: the page, its scripts and
// stylesheet, the sub-district map, the named places and the categories are kept in a
// cache, so the page opens without a network; online, every request goes to the network
// first and refreshes the cache. Nothing else is cached (no case, no personal data).
"use strict";
const CACHE = "cityos-inspector-v1";
const SHELL = ["/ui/inspector.html", "/ui/app.js", "/ui/app.css", "/ui/map.js", "/ui/inspector.js",
  "/ui/places.json", "/api/v1/regions?level=subdistrict", "/api/v1/categories"];
const KEPT = new Set(["/ui/inspector.html", "/ui/app.js", "/ui/app.css", "/ui/map.js", "/ui/inspector.js",
  "/ui/places.json", "/api/v1/regions", "/api/v1/categories"]);

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== self.location.origin || !KEPT.has(url.pathname)) return;
  e.respondWith(fetch(e.request).then((r) => {
    if (r.ok) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(e.request, copy)); }
    return r;
  }).catch(() => caches.match(e.request).then((r) => r || Response.error())));
});
