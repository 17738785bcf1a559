// 15分钟社区生活圈: coverage of a chosen service within a 5/10/15-minute walk, shaded per
// grid; the facilities of that service as icons; a community's card on click; the gap
// list; and, for the roles that plan, a what-if with a candidate placed on the map and the
// greedy suggestion of the best grid centres. The walking method and the OpenStreetMap
// credit are always shown. Names come from data: set only with textContent.
"use strict";
(async function () {
  const u = frame("lifecircle", true);
  if (!u) return;
  const mayPlan = ["district_officer", "subdistrict_officer", "analyst"].includes(u.role);
  const msg = document.getElementById("msg");
  const typeSel = document.getElementById("lc-type");
  const ringSel = document.getElementById("lc-ring");
  const FILL = { quick: "#1a7f37", ok: "#74c476", beyond: "#f0a202", none: "#d1495b" };
  const FACILITY = "#1f5fbf", CANDIDATE = "#6f42c1";
  let summary = null, coverage = null, candidate = null, suggested = [];
  const nm = (x) => (lang() === "en" ? x.name_en || x.name_zh : x.name_zh || x.name_en) || x.code;
  const typeName = (code) => { const x = summary && summary.types.find((t) => t.code === code); return x ? nm(x) : code; };
  const pct = (v) => (v == null ? "—" : v.toFixed(1) + "%");
  // Sub-district and community names in pinyin on English pages (from the gazetteer).
  const EN_BY_ZH = {};
  if (lang() === "en") {
    try {
      for (const p of (await api("/ui/places.json", { anonymous: true })).places) {
        if (p.name_en) { EN_BY_ZH[p.name] = p.name_en; EN_BY_ZH[p.name + "居委会"] = EN_BY_ZH[p.name + "居委会"] || p.name_en; }
      }
    } catch (_) { /* the Chinese names stay */ }
  }
  const place = (zh) => (lang() === "en" && EN_BY_ZH[zh]) || zh;

  // A map that stays at the grid level at every zoom (coverage is per grid).
  class LifeMap extends CityMap {
    zoom(f) {
      const cx = this.vb[0] + this.vb[2] / 2, cy = this.vb[1] + this.vb[3] / 2;
      this.scale = Math.min(40, Math.max(1, this.scale * f));
      this.vb[2] = this.full[2] / this.scale; this.vb[3] = this.full[3] / this.scale;
      this.vb[0] = cx - this.vb[2] / 2; this.vb[1] = cy - this.vb[3] / 2;
      this.apply();
    }
    reset() { this.scale = 1; this.vb = this.full.slice(); this.apply(); }
  }
  const map = new LifeMap(document.getElementById("map"), { onPick: picked });
  document.getElementById("zin").addEventListener("click", () => map.zoom(1.5));
  document.getElementById("zout").addEventListener("click", () => map.zoom(1 / 1.5));
  document.getElementById("zreset").addEventListener("click", () => map.reset());

  const legend = document.getElementById("legend");
  function drawLegend() {
    legend.textContent = "";
    const ring = ringSel.value;
    const item = (c, text) => { const i = el("i", { class: "swatch" }); i.style.background = c; legend.append(el("span", {}, i, text)); };
    item(FILL.quick, t("lc_l_quick").replace("{r}", Math.min(5, ring)));
    item(FILL.ok, t("lc_l_ok").replace("{r}", ring));
    item(FILL.beyond, t("lc_l_beyond").replace("{r}", ring));
    item(FILL.none, t("lc_l_none"));
    const d = el("i", { class: "diamond" }); d.style.background = FACILITY;
    legend.append(el("span", {}, d, t("lc_l_facility")));
    if (mayPlan) { const c = el("i", { class: "diamond" }); c.style.background = CANDIDATE; legend.append(el("span", {}, c, t("lc_l_candidate"))); }
  }

  function shadeGrids() {
    if (!coverage) return;
    const ring = Number(ringSel.value);
    const by = {};
    for (const g of coverage.grids) by[g.code] = g.minutes;
    for (const p of map.gRegions.children) {
      const m = by[p.dataset.code];
      const c = m == null ? FILL.none : m <= Math.min(5, ring) ? FILL.quick : m <= ring ? FILL.ok : FILL.beyond;
      p.setAttribute("fill", c);
      p.setAttribute("fill-opacity", "0.75");
      const title = p.querySelector("title");
      if (title) title.textContent = title.textContent.replace(/（.*）$/, "") + "（" + (m == null ? t("lc_over15") : m + " " + t("minutes")) + "）";
    }
  }

  let facilities = [];
  function drawPoints() {
    const list = facilities.map((f) => ({ lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1], colour: FACILITY,
      title: (f.properties.name || typeName(f.properties.type)) + " · " + typeName(f.properties.type) }));
    for (const s of suggested) list.push({ lon: s.lon, lat: s.lat, colour: CANDIDATE, hollow: true, title: t("lc_site") + " · " + place(s.community_name_zh) });
    if (candidate) list.push({ lon: candidate[0], lat: candidate[1], colour: CANDIDATE, title: t("lc_candidate") });
    map.points(list);
  }

  async function loadSummary() {
    summary = await api("/api/v1/life-circle");
    document.getElementById("method").textContent = lang() === "en" ? summary.method.en : summary.method.zh;
    document.getElementById("basis").textContent = lang() === "en" ? summary.population_basis.en : summary.population_basis.zh;
    typeSel.textContent = "";
    for (const x of summary.types) typeSel.append(el("option", { value: x.code, text: nm(x) }));
    const tb = document.getElementById("summary");
    tb.textContent = "";
    for (const x of summary.types) {
      tb.append(el("tr", {}, el("th", { scope: "row", text: nm(x) + (x.elders ? " *" : "") }), el("td", { text: x.target + " " + t("minutes") }),
        el("td", { text: String(x.facilities) }), ...x.shares.map((s) => el("td", { text: pct(s) }))));
    }
    const first = summary.types.find((x) => x.code === "pharmacy") || summary.types[0];
    typeSel.value = first.code;
    ringSel.value = String(first.target);
  }

  async function loadCoverage() {
    const ty = typeSel.value, ring = ringSel.value;
    msg.textContent = t("loading");
    try {
      const [c, f] = await Promise.all([
        api("/api/v1/life-circle/coverage?type=" + encodeURIComponent(ty) + "&ring=" + ring),
        api("/api/v1/life-circle/facilities?type=" + encodeURIComponent(ty)),
      ]);
      coverage = c; facilities = f.features; suggested = [];
      msg.textContent = "";
      document.getElementById("share").textContent = t("lc_share").replace("{type}", typeName(ty)).replace("{ring}", ring)
        .replace("{share}", pct(c.share)).replace("{n}", Math.round(c.covered).toLocaleString());
      shadeGrids(); drawPoints(); drawLegend(); gaps();
    } catch (e) { say(msg, e.message); }
  }

  function gaps() {
    const ol = document.getElementById("gaps");
    ol.textContent = "";
    if (!coverage.gaps.length) { ol.append(el("li", { text: t("none") })); return; }
    for (const g of coverage.gaps.slice(0, 30)) {
      // A community the territory gives no pinyin keeps its Chinese name, marked so (a known gap).
      const b = el("button", { type: "button", class: "link", text: place(g.name_zh), "data-untranslated": lang() === "en" && place(g.name_zh) === g.name_zh, onclick: () => card(g.code) });
      ol.append(el("li", {}, b, " — " + t("lc_without").replace("{n}", Math.round(g.people_without).toLocaleString()).replace("{share}", pct(g.share))));
    }
    if (coverage.gaps.length > 30) ol.append(el("li", { class: "hint", text: t("lc_more_gaps").replace("{n}", coverage.gaps.length - 30) }));
  }

  async function card(code) {
    const box = document.getElementById("card");
    try {
      const c = await api("/api/v1/life-circle/communities/" + encodeURIComponent(code));
      document.getElementById("card-none").hidden = true;
      box.textContent = "";
      box.append(el("h3", { text: place(c.name_zh) + " · " + place(c.subdistrict_name_zh) }));
      box.append(el("p", { class: "hint", text: t("lc_people").replace("{n}", Math.round(c.population).toLocaleString()) }));
      const rows = c.lines.map((l) => el("tr", {},
        el("th", { scope: "row", text: lang() === "en" ? l.name_en : l.name_zh }),
        el("td", {}, el("span", { class: "badge " + (l.met ? "lvl-normal" : "lvl-red"), text: (l.met ? t("lc_met") : t("lc_missing")) + " · " + l.target })),
        ...l.shares.map((s) => el("td", { text: pct(s) })),
        el("td", { text: l.nearest ? (l.nearest.name || typeName(l.type)) + " · " + l.nearest.minutes + " " + t("minutes") : t("lc_over15") })));
      const table = el("table", { class: "compact" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("lc_type") }), el("th", { scope: "col", text: t("lc_target") }),
          el("th", { scope: "col", text: "5 " + t("minutes") }), el("th", { scope: "col", text: "10 " + t("minutes") }), el("th", { scope: "col", text: "15 " + t("minutes") }),
          el("th", { scope: "col", text: t("lc_nearest") }))),
        el("tbody", {}, ...rows));
      box.append(el("div", { class: "scroll-x", role: "region", "aria-label": place(c.name_zh) + " · " + t("lc_card"), tabindex: "0" }, table));
      box.append(el("p", {}, t("lc_missing_list") + "：" + (c.missing.length ? c.missing.map(typeName).join("、") : t("none"))));
    } catch (e) { say(msg, e.message); }
  }

  async function picked(lon, lat) {
    try {
      const chain = await api("/api/v1/locate?lon=" + lon + "&lat=" + lat);
      if (chain.community) card(chain.community.code || chain.community);
    } catch (_) { /* outside the district: no card */ }
    if (mayPlan) {
      candidate = [lon, lat];
      document.getElementById("cand-pos").textContent = t("lc_cand_at").replace("{type}", typeName(typeSel.value)) + " " + lon.toFixed(5) + ", " + lat.toFixed(5);
      document.getElementById("try").disabled = false;
      drawPoints();
    }
  }

  const wmsg = document.getElementById("w-msg");
  const wbox = document.getElementById("whatif");
  function showChanges(v) {
    wbox.textContent = "";
    for (const c of v.changes || []) {
      const who = c.communities.slice(0, 5).map((x) => place(x.name_zh) + " +" + Math.round(x.people).toLocaleString()).join("、");
      wbox.append(el("p", {}, el("strong", { text: typeName(c.type) + " · " + c.ring + " " + t("minutes") + "：" }),
        pct(c.share_before) + " → " + pct(c.share_after) + (who ? "（" + t("lc_gainers") + "：" + who + "）" : "")));
    }
    if (v.suggestion) {
      const ol = el("ol");
      for (const s of v.suggestion.sites) {
        ol.append(el("li", { text: place(s.community_name_zh) + "（" + s.grid + "）+" + Math.round(s.people).toLocaleString() + " " + t("lc_people_unit") }));
      }
      wbox.append(el("p", { class: "hint", text: lang() === "en" ? v.suggestion.note_en : v.suggestion.note_zh }), ol);
      suggested = v.suggestion.sites;
      drawPoints();
    }
    wbox.append(el("p", { class: "hint", text: lang() === "en" ? v.method.en : v.method.zh }));
  }
  async function whatIf(body) {
    wmsg.textContent = "";
    try { showChanges(await api("/api/v1/life-circle/whatif", { body })); } catch (e) { say(wmsg, e.message); }
  }
  if (mayPlan) {
    document.getElementById("whatif-panel").hidden = false;
    document.getElementById("try").addEventListener("click", () => {
      if (candidate) whatIf({ candidates: [{ type: typeSel.value, lon: candidate[0], lat: candidate[1] }] });
    });
    document.getElementById("suggest").addEventListener("click", () => {
      whatIf({ suggest: { type: typeSel.value, ring: Number(ringSel.value), k: Number(document.getElementById("k").value) } });
    });
  }

  // The district officer and administrators add facility lists (kept by the server).
  if (["district_officer", "admin"].includes(u.role)) {
    document.getElementById("upload-panel").hidden = false;
    const umsg = document.getElementById("u-msg");
    const uprob = document.getElementById("u-problems");
    document.getElementById("upload").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      uprob.textContent = "";
      const name = document.getElementById("u-name").value.trim();
      const file = document.getElementById("u-file").files[0];
      if (!/^[a-z0-9_-]{1,40}$/.test(name) || !file) { say(umsg, t("lc_upload_need")); return; }
      const ct = /\.csv$/i.test(file.name) ? "text/csv" : "application/geo+json";
      try {
        const v = await api("/api/v1/life-circle/facilities/" + encodeURIComponent(name), { method: "PUT", body: await file.text(), headers: { "content-type": ct } });
        say(umsg, t("lc_uploaded").replace("{n}", v.facilities), true);
        await loadSummary();
        await loadCoverage();
      } catch (e) {
        say(umsg, e.message + (e.detail ? " — " + e.detail : ""));
        for (const p of e.problems) uprob.append(el("li", { text: p }));
      }
    });
  }

  typeSel.addEventListener("change", () => {
    const x = summary.types.find((y) => y.code === typeSel.value);
    if (x) ringSel.value = String(x.target);
    loadCoverage();
  });
  ringSel.addEventListener("change", loadCoverage);
  try {
    await map.init("grid");
    await loadSummary();
    await loadCoverage();
  } catch (e) { say(msg, e.message); }
})();
