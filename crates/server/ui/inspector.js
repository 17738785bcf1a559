// 巡查: an inspector's phone page — report with a photo and the GPS position (or the map,
// its cross-hair or a name), verify the cases awaiting them with a photo. Works offline:
// every submission goes into a queue in IndexedDB (photos as JPEG blobs, shrunk to at most
// 1280 px) and is sent in order, each with its own Idempotency-Key, whenever the network
// is there — so a replay never files twice. A full store is said honestly (the form keeps
// its content); a service worker (sw.js) keeps the page itself available offline.
"use strict";
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/ui/sw.js", { scope: "/ui/" }).catch(() => {});
(async function () {
  const u = frame("inspector", true);
  if (!u) return;
  let pos = null;

  // The queue: one IndexedDB store, items in order of their `seq`, each for its user.
  const dbp = new Promise((resolve, reject) => {
    const r = indexedDB.open("cityos-inspector", 1);
    r.onupgradeneeded = () => r.result.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  async function tx(mode, fn) {
    const db = await dbp;
    return new Promise((resolve, reject) => {
      const x = db.transaction("queue", mode);
      let out;
      const r = fn(x.objectStore("queue"));
      if (r) r.onsuccess = () => { out = r.result; };
      x.oncomplete = () => resolve(out);
      x.onerror = () => reject(x.error);
      x.onabort = () => reject(x.error);
    });
  }
  const queue = async () => ((await tx("readonly", (s) => s.getAll())) || []).filter((i) => i.user === u.username);
  const drop = (seq) => tx("readwrite", (s) => s.delete(seq));

  async function showQueue() {
    const n = (await queue().catch(() => [])).length;
    const box = document.getElementById("queue");
    box.hidden = n === 0;
    box.textContent = t("offline_queue") + ": " + n;
    document.getElementById("offline").hidden = navigator.onLine;
  }

  /// A photo as a JPEG blob no larger than 1280 px on its longer side.
  function shrink(file) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => {
        const k = Math.min(1, 1280 / Math.max(img.width, img.height));
        const c = document.createElement("canvas");
        c.width = Math.round(img.width * k); c.height = Math.round(img.height * k);
        c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
        URL.revokeObjectURL(img.src);
        c.toBlob((b) => (b ? resolve(b) : reject(new Error("photo"))), "image/jpeg", 0.8);
      };
      img.onerror = reject;
      img.src = URL.createObjectURL(file);
    });
  }

  // A queue left in localStorage by an older version of this page moves into IndexedDB.
  async function migrate() {
    const key = "cityos.queue." + u.username;
    let old = [];
    try { old = JSON.parse(localStorage.getItem(key) || "[]"); } catch (_) { old = []; }
    for (const item of old) {
      if (typeof item.photo === "string" && item.photo.startsWith("data:")) {
        const [head, b64] = item.photo.split(",");
        const bin = atob(b64);
        const bytes = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        item.photo = new Blob([bytes], { type: head.slice(5).split(";")[0] });
      }
      await tx("readwrite", (s) => s.add(Object.assign(item, { user: u.username })));
    }
    localStorage.removeItem(key);
  }

  let flushing = false;
  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      for (;;) {
        const q = await queue();
        if (!q.length) break;
        const item = q[0];
        try {
          let media = [];
          if (item.photo) {
            const up = await api("/api/v1/media", { body: item.photo, headers: { "content-type": item.photo.type || "image/jpeg" } });
            media = [up.media_url];
          }
          if (item.kind === "report") {
            await api("/api/v1/reports", { body: Object.assign({}, item.body, { media }), headers: { "idempotency-key": item.key } });
          } else {
            await api("/api/v1/cases/" + item.case + "/transitions", { body: Object.assign({}, item.body, { attachments: media }), headers: { "idempotency-key": item.key } });
          }
          await drop(item.seq);
          say(document.getElementById("msg"), t("sent"), true);
        } catch (e) {
          // The network, the server being busy, or anything unexpected: try again later.
          // Signed out (the session expired), timed out, too many requests: keep it to send
          // after signing in again.
          if (!(e instanceof ApiProblem) || e.code === "network" || e.status >= 500 || e.status === 0
            || [401, 408, 429].includes(e.status)) break;
          // Refused for good (e.g. the case moved on): tell, and drop it.
          say(document.getElementById("msg"), e.message);
          await drop(item.seq);
        }
      }
    } finally {
      flushing = false;
      await showQueue();
      inbox().catch(() => {});
    }
  }

  /// Adds a submission to the queue; false (and said) when the phone's storage is full —
  /// nothing is dropped silently: the form keeps what was typed and chosen.
  async function enqueue(item) {
    try {
      await tx("readwrite", (s) => s.add(Object.assign(item, { user: u.username })));
    } catch (e) {
      say(document.getElementById("msg"), e && e.name === "QuotaExceededError" ? t("storage_full") : t("storage_failed") + " " + (e && e.message || ""));
      focusResult(document.getElementById("msg"));
      return false;
    }
    await showQueue();
    if (navigator.onLine) await flush();
    if ((await queue()).length) say(document.getElementById("msg"), t("queued"), true);
    return true;
  }

  const cats = await api("/api/v1/categories").catch(() => ({ categories: [] }));
  const sel = document.getElementById("category");
  for (const c of cats.categories.filter((c) => c.parent)) sel.append(el("option", { value: c.code, text: (lang() === "en" ? c.name_en : c.name_zh) }));

  // The place: GPS, a tap or the keyboard's cross-hair on the map, or a name.
  const posOut = document.getElementById("pos");
  const setPos = (lon, lat) => { pos = [lon, lat]; showPlace(posOut, lon, lat); };
  const map = new CityMap(document.getElementById("map"), { controls: true, onPick: setPos });
  map.init("subdistrict").then(() => placeSearch(document.getElementById("place"), map)).catch(() => {});
  document.getElementById("locate").addEventListener("click", () => {
    locateMe(posOut, (lon, lat) => { setPos(lon, lat); map.pin(lon, lat); });
  });

  document.getElementById("report").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = document.getElementById("msg");
    const category = sel.value, text = document.getElementById("text").value.trim();
    const file = document.getElementById("photo").files[0];
    if (!category) { say(msg, t("need_category")); sel.focus(); return; }
    if (!pos) { say(msg, t("need_place")); document.getElementById("locate").focus(); return; }
    if (!text) { say(msg, t("need_text")); document.getElementById("text").focus(); return; }
    const photo = file ? await shrink(file) : null;
    if (await enqueue({ kind: "report", key: newKey(), photo, body: { category, lon: pos[0], lat: pos[1], text } })) document.getElementById("report").reset();
  });

  async function inbox() {
    const r = await api("/api/v1/inbox");
    const ul = document.getElementById("verify");
    ul.textContent = "";
    for (const c of r.cases) {
      const file = el("input", { type: "file", accept: "image/*", capture: "environment", id: "p-" + c.id });
      const act = (action) => async () => {
        if (!file.files[0]) { say(document.getElementById("msg"), t("need_photo")); file.focus(); return; }
        await enqueue({ kind: "transition", case: c.id, key: newKey(), photo: await shrink(file.files[0]), body: { action, note: "" } });
      };
      ul.append(el("li", {},
        el("a", { href: "/ui/case.html?id=" + c.id, text: c.number }), " ", el("span", { text: c.title }),
        el("label", { for: "p-" + c.id, text: t("photo") }), file,
        el("button", { type: "button", "data-case": c.id, "data-verify": "verify", text: t("verify_ok"), onclick: act("verify") }),
        el("button", { type: "button", class: "secondary", "data-case": c.id, "data-verify": "reject_verification", text: t("verify_bad"), onclick: act("reject_verification") })));
    }
    if (!r.cases.length) ul.append(el("li", { class: "hint", text: t("none") }));
  }

  window.addEventListener("online", () => { showQueue(); flush(); });
  window.addEventListener("offline", showQueue);
  setInterval(() => { queue().then((q) => { if (q.length) flush(); }).catch(() => {}); }, 5000);
  await migrate().catch(() => {});
  await showQueue();
  flush();
})();
