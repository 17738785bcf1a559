// 考核评价: a period's ranking of departments, sub-districts, communities, categories or
// domains with the red and black lists; a unit's trend and its score explained line by
// line; from any figure a click lists the cases behind it (drill-down). Each measure's
// definition is on its column header (hover) and listed below. Exports link to the API.
"use strict";
(async function () {
  const u = frame("evaluation", true);
  if (!u) return;
  const msg = document.getElementById("msg");
  const period = document.getElementById("period");
  const dimension = document.getElementById("dimension");
  const head = document.getElementById("rank-head");
  const body = document.querySelector("#ranking tbody");
  const SHOWN = ["ack_on_time", "handle_on_time", "close_on_time", "satisfaction", "return_rate", "repeat_rate", "overdue_now", "handle_hours_mean"];
  let defs = {};
  const en = lang() === "en";
  const name = (m) => (en ? m.name_en : m.name_zh);
  // A unit (department or region) by its English name on English pages.
  const unitNm = (r) => (en && r.name_en) || r.name_zh;
  const definition = (m) => (en ? m.definition_en : m.definition_zh);

  const now = new Date();
  const params = new URLSearchParams(location.search);
  period.value = params.get("period") || (now.getFullYear() + "-" + String(now.getMonth() + 1).padStart(2, "0"));
  if (params.get("dimension")) dimension.value = params.get("dimension");
  if (u.role === "handler") { dimension.value = "department"; dimension.disabled = true; }

  function fmt(code, v) {
    if (v === null || v === undefined) return "—";
    const m = defs[code];
    if (m && m.kind === "rate") return (v * 100).toFixed(1) + "%";
    if (m && m.kind === "hours") return v.toFixed(1) + (en ? " h" : " 工时");
    return String(Math.round(v * 10) / 10);
  }

  function exports() {
    const q = "period=" + encodeURIComponent(period.value) + "&dimension=" + encodeURIComponent(dimension.value);
    for (const f of ["xlsx", "csv", "html"]) document.getElementById("x-" + f).href = "/api/v1/evaluation/export?" + q + "&format=" + f;
  }

  function listItems(ol, rows) {
    ol.textContent = "";
    if (!rows.length) { ol.append(el("li", { class: "hint", text: t("ev_none") })); return; }
    for (const r of rows) ol.append(el("li", {}, el("button", { type: "button", class: "ev", text: (r.rank ? "#" + r.rank + " " : "") + ((lang() === "en" && r.name_en) || r.name_zh) + " · " + fmt("score", r.score), onclick: () => unit(r.unit) })));
  }

  async function load() {
    exports();
    say(msg, t("loading"), true);
    let v;
    try {
      v = await api("/api/v1/evaluation?period=" + encodeURIComponent(period.value) + "&dimension=" + encodeURIComponent(dimension.value));
    } catch (e) { say(msg, e.message, false); return; }
    defs = {};
    for (const m of v.measures) defs[m.code] = m;
    const dl = document.getElementById("defs");
    dl.textContent = "";
    for (const m of v.measures) dl.append(el("dt", { text: name(m) }), el("dd", { text: definition(m) }));
    head.textContent = "";
    for (const [k, title] of [["ev_rank", ""], ["ev_unit", ""], ["ev_class", ""], ["ev_score", ""], ["ev_list", ""]]) head.append(el("th", { scope: "col", text: t(k), title }));
    for (const c of SHOWN) head.append(el("th", { scope: "col", title: definition(defs[c]), text: name(defs[c]) }));
    head.append(el("th", { scope: "col", title: definition(defs.received), text: name(defs.received) }));
    body.textContent = "";
    const classes = Object.fromEntries((v.classes || []).map((c) => [c.code, en ? c.name_en : c.name_zh]));
    for (const r of v.units) {
      const tr = el("tr", { class: r.list ? "list-" + r.list : "" });
      tr.append(el("td", { text: r.rank ? String(r.rank) : "—" }));
      tr.append(el("th", { scope: "row" }, el("button", { type: "button", class: "ev", text: unitNm(r), onclick: () => unit(r.unit) })));
      tr.append(el("td", { text: classes[r.class] || (r.class === "all" ? t("ev_all") : r.class === "other" ? t("ev_other") : r.class) }));
      tr.append(el("td", { text: r.score === null ? "—" : r.score.toFixed(2), title: r.unranked || "" }));
      tr.append(el("td", { text: r.list === "red" ? t("ev_red") : r.list === "black" ? t("ev_black") : "" }));
      for (const c of SHOWN.concat(["received"])) {
        const f = r.figures[c];
        tr.append(el("td", {}, el("button", { type: "button", class: "ev", text: fmt(c, f.value), "aria-label": unitNm(r) + " " + name(defs[c]) + " " + fmt(c, f.value), onclick: () => drill(r.unit, c) })));
      }
      body.append(tr);
    }
    document.getElementById("rank-caption").textContent = (en ? v.scheme_en || t("evaluation") : v.scheme) + " · " + v.period + " · " + t("ev_cases") + " " + v.cases;
    listItems(document.getElementById("red"), v.red);
    listItems(document.getElementById("black"), v.black);
    say(msg, v.units.length ? "" : t("ev_none"), true);
  }

  function trendSvg(trend) {
    const NS = "http://www.w3.org/2000/svg";
    const W = 520, H = 150, P = 28;
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", t("ev_trend") + ": " + trend.map((p) => p.period + " " + (p.score === null ? "—" : p.score.toFixed(1))).join(", "));
    svg.setAttribute("class", "trend");
    const x = (i) => P + (W - 2 * P) * i / Math.max(1, trend.length - 1);
    const y = (s) => H - P - (H - 2 * P) * Math.max(0, Math.min(100, s)) / 100;
    const pts = trend.map((p, i) => (p.score === null ? null : x(i) + "," + y(p.score))).filter(Boolean);
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#1a56b0");
    line.setAttribute("stroke-width", "2");
    svg.append(line);
    trend.forEach((p, i) => {
      const lab = document.createElementNS(NS, "text");
      lab.setAttribute("x", x(i)); lab.setAttribute("y", H - 8); lab.setAttribute("text-anchor", "middle"); lab.setAttribute("font-size", "11");
      lab.textContent = p.period;
      svg.append(lab);
      if (p.score !== null) {
        const v = document.createElementNS(NS, "text");
        v.setAttribute("x", x(i)); v.setAttribute("y", y(p.score) - 6); v.setAttribute("text-anchor", "middle"); v.setAttribute("font-size", "11");
        v.textContent = p.score.toFixed(1);
        svg.append(v);
      }
    });
    return svg;
  }

  async function unit(code) {
    let v;
    try {
      v = await api("/api/v1/evaluation?period=" + encodeURIComponent(period.value) + "&unit=" + encodeURIComponent(code));
    } catch (e) { say(msg, e.message, false); return; }
    const panel = document.getElementById("unit-panel");
    panel.hidden = false;
    const h = document.getElementById("h-unit");
    h.textContent = unitNm(v) + " · " + v.period;
    const s = v.score;
    document.getElementById("unit-summary").textContent = t("ev_score") + " " + (s.score === null ? "—" : s.score.toFixed(2)) + (v.rank ? " · " + t("ev_rank") + " " + v.rank : "") + (v.list === "red" ? " · " + t("ev_red") : v.list === "black" ? " · " + t("ev_black") : "") + (s.unranked ? " · " + s.unranked : "");
    const tr = document.getElementById("trend");
    tr.textContent = "";
    tr.append(trendSvg(v.trend));
    const tb = document.querySelector("#lines tbody");
    tb.textContent = "";
    for (const l of s.lines) {
      const row = el("tr");
      row.append(el("th", { scope: "row", title: definition(defs[l.measure] || {}), text: en ? l.name_en : l.name_zh }));
      row.append(el("td", { text: l.kind === "weight" ? t("ev_weight") + " " + l.factor : t("ev_deduction") }));
      row.append(el("td", {}, el("button", { type: "button", class: "ev", text: fmt(l.measure, l.value), "aria-label": (en ? l.name_en : l.name_zh) + " " + fmt(l.measure, l.value) + " — " + t("ev_drill"), onclick: () => drill(code, l.measure) })));
      row.append(el("td", { text: String(l.samples) }));
      row.append(el("td", { text: l.counted ? l.points.toFixed(2) : "—" }));
      row.append(el("td", { text: l.note }));
      tb.append(row);
    }
    document.getElementById("drill").textContent = "";
    h.focus();
  }

  async function drill(code, measure) {
    let v;
    try {
      v = await api("/api/v1/evaluation/cases?period=" + encodeURIComponent(period.value) + "&unit=" + encodeURIComponent(code) + "&measure=" + encodeURIComponent(measure));
    } catch (e) { say(msg, e.message, false); return; }
    const ul = document.getElementById("drill");
    ul.textContent = "";
    document.getElementById("drill-for").textContent = (en ? (defs[measure] || {}).name_en : unitNm(v)) + " · " + code + " · " + v.total + " " + t("ev_cases_n");
    for (const c of v.cases) {
      const counted = (defs[measure] || {}).kind === "rate" ? (c.value > 0.5 ? t("ev_yes") : t("ev_no")) : fmt(measure, c.value);
      ul.append(el("li", {}, el("a", { href: "/ui/case.html?id=" + c.id, text: c.number }), " ", el("span", { class: "hint", text: ((lang() === "en" ? c.category_name_en : c.category_name_zh) || c.category) + " · " + counted })));
    }
    if (!v.cases.length) ul.append(el("li", { class: "hint", text: t("ev_none") }));
    const h = document.getElementById("h-drill");
    if (document.getElementById("unit-panel").hidden) { document.getElementById("unit-panel").hidden = false; }
    h.focus();
  }

  async function saved() {
    try {
      const v = await api("/api/v1/evaluation/reports");
      const ul = document.getElementById("saved");
      ul.textContent = "";
      for (const r of v.reports) {
        const li = el("li", {}, el("span", { text: r.name + " " }));
        for (const [i, f] of ["XLSX", "CSV", "HTML"].entries()) li.append(el("a", { href: r.files[i], text: f }), " ");
        ul.append(li);
      }
      if (!v.reports.length) ul.append(el("li", { class: "hint", text: t("ev_none") }));
      document.getElementById("saved-panel").hidden = false;
    } catch (_) { /* the monthly reports are the district's: others do not see the panel */ }
  }

  document.getElementById("query").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  dimension.addEventListener("change", exports);
  period.addEventListener("input", exports);
  await load();
  if (u.role !== "handler" && u.role !== "subdistrict_officer") saved();
})();
