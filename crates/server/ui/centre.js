// 指挥中心: today's figures, the map (density per region + the most urgent cases as
// markers, both aggregated by the server), the four domains' vital signs, the live feed.
"use strict";
(async function () {
  const u = frame("centre", true);
  if (!u) return;
  const wallBtn = document.getElementById("wall");
  const setWall = (on) => { document.body.classList.toggle("wall", on); wallBtn.setAttribute("aria-pressed", on ? "true" : "false"); localStorage.setItem("cityos.wall", on ? "1" : ""); };
  setWall(new URLSearchParams(location.search).has("wall") || localStorage.getItem("cityos.wall") === "1");
  wallBtn.addEventListener("click", () => setWall(!document.body.classList.contains("wall")));

  const legend = document.getElementById("legend");
  for (const [p, c] of Object.entries(PRIORITY_COLOUR)) {
    const i = el("i"); i.style.background = c;
    legend.append(el("span", {}, i, p));
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
    redraw(document.getElementById("figures"), (box) => {
      const f = (k, v, cls) => box.append(el("div", { class: "figure" }, el("div", { class: "v " + (cls || ""), text: String(v) }), el("div", { class: "k", text: t(k) })));
      f("today_new", fmtCount(s.today_intake));
      if (lastMap && lastMap.today) f("today_closed", fmtCount(lastMap.today.closed));
      f("on_time", fmtRate(s.on_time_rate));
      f("overdue", fmtCount(s.overdue), s.overdue > 0 ? "overdue" : "");
      if (lastMap && lastMap.today) f("escalations", fmtCount(lastMap.today.escalations));
      f("open_cases", lastMap ? fmtCount(lastMap.open) : "—");
    });
  }

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

  const feed = document.getElementById("feed");
  function addFeed(text, at, href) {
    const li = el("li", {}, el("time", { text: fmtTime(at || new Date().toISOString()) }), href ? el("a", { href, text }) : el("span", { text }));
    feed.prepend(li);
    while (feed.children.length > 80) feed.lastChild.remove();
  }

  await Promise.all([map.init("subdistrict"), loadDepartments()]);
  tiles().catch(() => {});
  const es = new EventSource("/api/v1/events/stream"); // the session cookie signs it in
  const onCase = (ev) => {
    const e = JSON.parse(ev.data);
    addFeed(e.number + " · " + tEnum("a_", e.action) + (e.note ? " · " + noteText(e.note) : ""), e.at, "/ui/case.html?id=" + e.case_id);
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
    feed.prepend(li);
    while (feed.children.length > 80) feed.lastChild.remove();
  });
  const refresh = () => { refreshMap(); tiles().catch(() => {}); };
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
