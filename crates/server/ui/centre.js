// 指挥中心: today's figures, the map (density per region + the most urgent cases as
// markers, both aggregated by the server), the four domains' vital signs, the live feed.
"use strict";
(async function () {
  const u = frame("centre", true);
  if (!u) return;
  const wallBtn = document.getElementById("wall");
  // The wall is a public-ish screen: officers' free-text notes are left out of the feed
  // and case titles out of the markers (redrawn when the mode changes).
  let onWall = () => {};
  const setWall = (on) => { document.body.classList.toggle("wall", on); document.documentElement.classList.toggle("wall", on); wallBtn.setAttribute("aria-pressed", on ? "true" : "false"); localStorage.setItem("cityos.wall", on ? "1" : ""); onWall(); };
  setWall(new URLSearchParams(location.search).has("wall") || localStorage.getItem("cityos.wall") === "1");
  wallBtn.addEventListener("click", () => setWall(!document.body.classList.contains("wall")));

  const legend = document.getElementById("legend");
  for (const [p, c] of Object.entries(PRIORITY_COLOUR)) {
    const i = el("i"); i.style.background = c;
    legend.append(el("span", {}, i, priorityName(p)));
  }
  legend.append(el("span", { text: "■ " + t("stage_waiting") }), el("span", { text: "● " + t("stage_working") }), el("span", { text: "○ " + t("stage_checking") }), el("span", { text: t("stage_overdue") }));
  const levelNote = document.getElementById("level");
  const map = new CityMap(document.getElementById("map"), {
    onLevel: (level) => { levelNote.textContent = t("level_" + level); refreshMap(); },
  });
  document.getElementById("zin").addEventListener("click", () => map.zoom(2));
  document.getElementById("zout").addEventListener("click", () => map.zoom(0.5));
  document.getElementById("zreset").addEventListener("click", () => map.reset());

  async function refreshMap() {
    try {
      const m = await api("/api/v1/map?level=" + (map.level || "subdistrict"));
      map.shade(m.counts);
      map.markers(m.markers, (c) => { location.href = "/ui/case.html?id=" + c.id; });
      figures(m);
    } catch (e) { levelNote.textContent = e.message; }
  }

  let lastMap = null;
  async function figures(m) {
    if (m) lastMap = m;
    const s = await api("/api/v1/stats");
    // The change against yesterday up to the same time of day.
    const now = Date.now(), mid = new Date(); mid.setHours(0, 0, 0, 0);
    let before = null;
    try {
      const y = await api("/api/v1/stats?" + new URLSearchParams({ from: new Date(mid.getTime() - 86400e3).toISOString(), to: new Date(now - 86400e3).toISOString() }));
      before = y.total;
    } catch (_) { before = null; }
    redraw(document.getElementById("figures"), (box) => {
      // Each figure with its unit, and the change against yesterday up to this time of day
      // where the server can tell it (new reports, closures, escalations).
      // The trend shows ▲/▼ and the difference; a screen reader hears it in words.
      const f = (k, v, unit, cls, trend) => box.append(el("div", { class: "figure", "data-key": k },
        el("div", { class: "v " + (cls || "") }, String(v), unit ? el("span", { class: "u", text: unit }) : null),
        el("div", { class: "k", text: t(k) }), trend ? el("div", { class: "trend" }, el("span", { "aria-hidden": "true", text: trend[0] }), el("span", { class: "sr-only", text: trend[1] })) : null));
      const vs = (now, then, fmt, unit) => {
        if (then == null || now == null) return null;
        const n = (fmt || fmtCount)(Math.abs(now - then)) + (unit ? " " + unit : "");
        if (now === then) return [t("vs_same"), t("vs_same")];
        const up = now > then;
        return [tf(up ? "vs_up" : "vs_down", { n }), tf(up ? "vs_up_sr" : "vs_down_sr", { n })];
      };
      // Rates differ by percentage points (one decimal).
      const pts = (d) => (Math.round(d * 1000) / 10).toLocaleString(locale(), { maximumFractionDigits: 1 });
      const unit = t("u_cases");
      const today = lastMap && lastMap.today, yest = (lastMap && lastMap.yesterday) || {};
      // Against yesterday's sample, today's standing figures by the same computation
      // (the map's today: whole district, every category), not the numbers shown.
      const r3 = (x) => x == null ? null : Math.round(x * 1000) / 1000;
      const rate = today ? r3(today.on_time_rate) : null;
      const rateThen = r3(yest.on_time_rate);
      f("today_new", fmtCount(s.today_intake), unit, "", vs(s.today_intake, before));
      if (today) f("today_closed", fmtCount(today.closed), unit, "", vs(today.closed, yest.closed));
      f("on_time", fmtRate(s.on_time_rate), "", "", today ? vs(rate, rateThen, pts, t("u_pp")) : null);
      f("overdue", fmtCount(s.overdue), unit, s.overdue > 0 ? "overdue" : "", today ? vs(today.overdue, yest.overdue) : null);
      if (today) f("escalations", fmtCount(today.escalations), t("u_times"), "", vs(today.escalations, yest.escalations));
      f("open_cases", lastMap ? fmtCount(lastMap.open) : "—", unit, "", today ? vs(today.open, yest.open) : null);
    });
  }

  // Firing alerts (the wall shows them beside the vital signs).
  async function alerts() {
    const a = await api("/api/v1/alerts?state=firing");
    redraw(document.getElementById("alerts"), (ul) => {
      for (const x of a.alerts.slice(0, 8)) {
        ul.append(el("li", {}, levelBadge(x.level), " ", el("a", { href: "/ui/vitals.html", text: lang() === "en" ? x.name_en : x.name_zh }),
          " · " + (lang() === "en" ? (REGION_EN[x.region] || x.region_name) : x.region_name)));
      }
      if (!a.alerts.length) ul.append(el("li", { class: "hint", text: t("none") }));
    });
  }

  // The wall's title bar: the date and a clock, once a second.
  const clock = document.getElementById("clock");
  const tickClock = () => {
    clock.textContent = new Date().toLocaleString(locale(), { year: "numeric", month: "long", day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  };
  tickClock();
  setInterval(tickClock, 1000);

  async function tiles() {
    const v = await api("/api/v1/indicators");
    const order = ["normal", "blue", "yellow", "orange", "red"];
    redraw(document.getElementById("tiles"), (box) => { for (const d of ["safety", "construction", "market", "livelihood"]) {
      const inds = v.indicators.filter((i) => i.domain === d);
      const worst = inds.reduce((w, i) => (order.indexOf(i.level) > order.indexOf(w) ? i.level : w), "normal");
      const warn = inds.filter((i) => i.level !== "normal").sort((a, b) => order.indexOf(b.level) - order.indexOf(a.level));
      const ul = el("ul");
      for (const i of warn.slice(0, 4)) ul.append(el("li", {}, levelBadge(i.level), " ", lang() === "en" ? i.name_en : i.name_zh, " ", fmtValue(i.value, i.unit)));
      if (!warn.length) ul.append(el("li", { class: "hint", text: t("l_normal") + " · " + inds.length }));
      const tile = el("a", { class: "tile lvl-" + worst, href: "/ui/vitals.html?domain=" + d }, el("div", { class: "name" }, t("d_" + d), " ", levelBadge(worst)), ul);
      box.append(tile);
    } });
  }

  // The live feed: the last 50 events in scope at once (the stream starts 50 back), each
  // in words (time, category, place, who did what); pause holds new ones back (WCAG
  // 2.2.2) and shows how many wait; the screen reader hears a summary only on request.
  const feed = document.getElementById("feed");
  const held = [];
  let paused = false;
  const pauseBtn = document.getElementById("feed-pause");
  const feedNote = document.getElementById("feed-held");
  function show(li) {
    feed.prepend(li);
    while (feed.children.length > 50) feed.lastChild.remove();
  }
  function push(li) {
    if (paused) { held.push(li); feedNote.textContent = tf("feed_held", { n: held.length }); return; }
    show(li);
  }
  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.setAttribute("aria-pressed", paused ? "true" : "false");
    pauseBtn.textContent = t(paused ? "feed_resume" : "feed_pause");
    if (!paused) { for (const li of held.splice(0)) show(li); feedNote.textContent = ""; }
  });
  document.getElementById("feed-summary").addEventListener("click", () => {
    const items = [...feed.children];
    const first = items[0];
    document.getElementById("feed-said").textContent = tf("feed_summary", { n: items.length, held: held.length }) +
      (first ? " " + t("feed_latest") + " " + first.textContent : "");
  });
  function addFeed(text, at, href) {
    push(el("li", {}, el("time", { text: fmtTime(at || new Date().toISOString()) }), href ? el("a", { href, text }) : el("span", { text })));
  }
  const CATS = {};
  const catsLoaded = api("/api/v1/categories", { anonymous: true }).then((v) => { for (const c of v.categories) CATS[c.code] = c; }).catch(() => {});
  const regionOf = (code) => (code ? regionName({ code, name_zh: (REGION_ZH[code] || code) }) : "");

  await Promise.all([map.init("subdistrict"), loadDepartments(), catsLoaded]);
  tiles().catch(() => {});
  const es = new EventSource("/api/v1/events/stream?recent=50"); // the session cookie signs it in
  const isWall = () => document.body.classList.contains("wall");
  // On the wall a person's account name is not shown either: staff stand for themselves.
  const who = (id) => { const n = actorName(id); return isWall() && n === id ? t("actor_staff") : n; };
  const whatOf = (e) => who(e.actor) + " " + tEnum("a_", e.action) + (e.note ? "：" + noteText(e.note, { free: !isWall() }) : "");
  onWall = () => {
    // The items shown and those held back by the pause.
    const items = [...document.querySelectorAll("#feed .what"), ...held.flatMap((li) => [...li.querySelectorAll(".what")])];
    for (const w of items) if (w.cityosEvent) w.textContent = whatOf(w.cityosEvent);
    refreshMap();
  };
  const onCase = (ev) => {
    const e = JSON.parse(ev.data);
    const c = CATS[e.category];
    const what = el("span", { class: "what", text: whatOf(e) });
    what.cityosEvent = e;
    push(el("li", {},
      el("time", { datetime: e.at, text: fmtTime(e.at || new Date().toISOString()) }), " ",
      el("a", { href: "/ui/case.html?id=" + e.case_id, text: e.number }),
      " · " + (c ? (lang() === "en" ? c.name_en : c.name_zh) : e.category) + " · " + regionOf(e.subdistrict) + " · ",
      what));
  };
  for (const k of ["created", "transitioned", "merged", "escalated"]) es.addEventListener(k, onCase);
  es.onmessage = onCase;
  for (const k of ["alert_fired", "alert_level_changed", "alert_resolved", "level_changed"]) {
    es.addEventListener(k, (ev) => {
      const e = JSON.parse(ev.data);
      const name = lang() === "en" ? (e.name_en || e.indicator) : (e.name_zh || e.indicator);
      addFeed("【" + t("l_" + (e.to || e.level)) + "】" + (lang() === "en" ? (REGION_EN[e.region] || e.region_name || e.region || "") : (e.region_name || e.region || "")) + " " + name, e.at, "/ui/vitals.html");
      if (k !== "level_changed") tiles().catch(() => {});
    });
  }
  // A scenario pack's hit, repeat or stand-down: the pack (to its page), the place, the
  // kind and the case it opened or was noted on.
  es.addEventListener("scenario", (ev) => {
    let h;
    try { h = JSON.parse(ev.data); } catch (_) { return; }
    const name = (lang() === "en" ? h.name_en : h.name_zh) || h.pack;
    const kind = t("k_" + h.kind) !== "k_" + h.kind ? t("k_" + h.kind) : h.kind;
    const li = el("li", { class: "scenario" }, el("time", { text: fmtTime(h.at || new Date().toISOString()) }),
      h.level ? levelBadge(h.level) : null, " ",
      el("a", { href: "/ui/scenarios.html?pack=" + encodeURIComponent(h.pack), text: "【" + t("scenario") + "】" + name }),
      " · " + (h.place || "") + " · " + kind,
      h.case ? el("span", {}, " · ", el("a", { href: "/ui/case.html?id=" + encodeURIComponent(h.case), text: h.case })) : null);
    push(li);
  });
  alerts().catch(() => {});
  const refresh = () => { refreshMap(); tiles().catch(() => {}); alerts().catch(() => {}); };
  window.cityosRefresh = refresh; // the browser test refreshes without waiting 15 s
  setInterval(refresh, 15000);

  // 热点问题: the last week's messages clustered by the server (officers and analysts; the
  // panel goes away for a role that may not see them). Labels come masked.
  const topicsPanel = document.getElementById("topics-panel");
  async function topics() {
    let v;
    try { v = await api("/api/v1/hot-topics?days=7&limit=10"); } catch (e) {
      if (e.status === 403 || e.status === 401) { topicsPanel.hidden = true; return; }
      throw e;
    }
    const box = document.getElementById("topics");
    box.textContent = "";
    if (!v.topics.length) { box.append(el("li", { class: "hint", text: t("ht_none") })); return; }
    for (const x of v.topics) {
      const places = x.places.map((p) => regionName(p) + " " + fmtCount(p.count)).join(lang() === "en" ? ", " : "、");
      const samples = el("span", { class: "samples" }, t("ht_samples") + ": ");
      x.samples.forEach((n, i) => {
        if (i) samples.append(" ");
        samples.append(el("a", { href: "/ui/case.html?id=" + encodeURIComponent(n), text: n }));
      });
      box.append(el("li", {},
        el("div", { class: "topic-head" }, el("strong", { class: "count", text: String(x.count) }), " " + t("ht_count") + " · ", el("span", { class: "label", text: x.label })),
        el("div", { class: "hint" }, (lang() === "en" ? x.category : (x.category_name_zh || x.category)) + " · " + x.cases + " " + t("ht_cases") + " · " + places + " · " + t("ht_last") + " ", el("time", { datetime: x.last_seen, text: fmtTime(x.last_seen) })),
        samples));
    }
  }
  topics().catch(() => {});
  setInterval(() => { topics().catch(() => {}); }, 60000);
})();
