// 体征: every indicator with its value and colour; a chosen one's history as an SVG
// chart with its thresholds; alerts (silence one) and silences (end one).
"use strict";
(async function () {
  const u = frame("vitals", true);
  if (!u) return;
  const q = new URLSearchParams(location.search);
  const dom = document.getElementById("f-domain");
  const reg = document.getElementById("f-region");
  dom.value = q.get("domain") || "";
  const subs = await regions("subdistrict");
  reg.append(el("option", { value: "", text: t("region_all") }));
  for (const f of subs.features) reg.append(el("option", { value: f.properties.code, text: regionName(f.properties) }));
  let chosen = q.get("code");

  async function list() {
    const p = new URLSearchParams();
    if (dom.value) p.set("domain", dom.value);
    if (reg.value) p.set("region", reg.value);
    const v = await api("/api/v1/indicators?" + p);
    redraw(document.getElementById("list"), (box) => { for (const i of v.indicators) {
      const name = lang() === "en" ? i.name_en : i.name_zh;
      box.append(el("button", { type: "button", "data-key": i.code, class: "ind tile lvl-" + i.level, "aria-pressed": chosen === i.code ? "true" : "false", onclick: () => { chosen = i.code; chart(i); list(); } },
        el("div", { text: name }),
        el("div", { class: "v", text: fmtValue(i.value, i.unit) }),
        levelBadge(i.level)));
      if (!chosen) { chosen = i.code; chart(i); }
      else if (chosen === i.code && !document.getElementById("chart").childElementCount) chart(i);
    } });
  }

  async function chart(ind) {
    const svg = document.getElementById("chart");
    const name = lang() === "en" ? ind.name_en : ind.name_zh;
    document.getElementById("chart-title").textContent = name + (unitName(ind.unit) ? " (" + unitName(ind.unit) + ")" : "");
    const p = new URLSearchParams({ step: "1m", from: new Date(Date.now() - 6 * 3600e3).toISOString() });
    if (reg.value) p.set("region", reg.value);
    let h;
    try { h = await api("/api/v1/indicators/" + ind.code + "/history?" + p); }
    catch (e) { document.getElementById("chart-note").textContent = e.message; return; }
    svg.textContent = "";
    const pts = h.points;
    const lines = h.thresholds ? [["blue", h.thresholds.blue], ["yellow", h.thresholds.yellow], ["orange", h.thresholds.orange], ["red", h.thresholds.red]] : [];
    const vals = pts.map((x) => x.max).concat(pts.map((x) => x.min)).concat(lines.map((l) => l[1]));
    const lo = Math.min(0, ...vals), hi = Math.max(1, ...vals);
    const t0 = pts.length ? new Date(pts[0].t).getTime() : Date.now() - 6 * 3600e3, t1 = Date.now();
    const X = (t) => 30 + 360 * (t - t0) / Math.max(1, t1 - t0);
    const Y = (v) => 190 - 180 * (v - lo) / Math.max(1e-9, hi - lo);
    const ns = "http://www.w3.org/2000/svg";
    const mk = (tag, attrs) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
    const colours = { blue: "#1f5fbf", yellow: "#b08800", orange: "#d46b08", red: "#c1121f" };
    for (const [lvl, v] of lines) {
      svg.append(mk("line", { x1: 30, x2: 390, y1: Y(v), y2: Y(v), stroke: colours[lvl], class: "thr" }));
      const tx = mk("text", { x: 392, y: Y(v) + 3 }); tx.textContent = String(v); svg.append(tx);
    }
    const lab = mk("text", { x: 2, y: 12 }); lab.textContent = String(Math.round(hi)); svg.append(lab);
    const lab2 = mk("text", { x: 2, y: 190 }); lab2.textContent = String(Math.round(lo)); svg.append(lab2);
    if (pts.length) {
      const d = pts.map((x, i) => (i ? "L" : "M") + X(new Date(x.t).getTime()).toFixed(1) + " " + Y(x.avg).toFixed(1)).join("");
      svg.append(mk("path", { d, class: "line" }));
      for (const x of pts.slice(-120)) svg.append(mk("circle", { cx: X(new Date(x.t).getTime()).toFixed(1), cy: Y(x.avg).toFixed(1), r: 2.5, fill: "#0b57a4" }));
    }
    document.getElementById("chart-note").textContent = pts.length + " × 1m · " + (h.thresholds ? t("thresholds") + " " + lines.map((l) => t("l_" + l[0]) + " " + l[1]).join(" / ") : "");
  }

  async function alerts() {
    const a = await api("/api/v1/alerts");
    const ul = document.getElementById("alerts");
    ul.textContent = "";
    for (const x of a.alerts) {
      const name = lang() === "en" ? x.name_en : x.name_zh;
      const li = el("li", {}, levelBadge(x.level), " ", el("strong", { text: name }), " · ", lang() === "en" ? (REGION_EN[x.region] || x.region_name) : x.region_name, " · ", t(x.state),
        x.silenced ? el("span", { class: "badge", text: t("silenced") }) : null,
        x.inhibited ? el("span", { class: "badge", text: t("inhibited") }) : null,
        x.case ? el("a", { href: "/ui/case.html?id=" + x.case.id, text: " " + x.case.number }) : null);
      if (["district_officer", "subdistrict_officer", "admin"].includes(u.role) && !x.silenced) {
        li.append(" ", el("button", { type: "button", class: "secondary", text: t("silence_it"), onclick: async () => {
          const reason = prompt(t("reason"));
          if (!reason) return;
          try {
            await api("/api/v1/silences", { body: { rule: x.rule, region: x.region, reason, duration: "2h" } });
            refresh();
          } catch (e) { say(document.getElementById("s-msg"), e.message); }
        } }));
      }
      ul.append(li);
    }
    if (!a.alerts.length) ul.append(el("li", { class: "hint", text: t("none") }));
    const s = await api("/api/v1/silences");
    const sl = document.getElementById("silences");
    sl.textContent = "";
    for (const x of s.silences) {
      sl.append(el("li", {}, el("strong", { text: x.rule }), " · ", x.region_name, " · ", x.owner, " · ", x.reason, " · ", fmtTime(x.ends_at), " ",
        el("button", { type: "button", class: "secondary", text: t("end_silence"), onclick: async () => {
          try { await api("/api/v1/silences/" + x.id, { method: "DELETE" }); refresh(); }
          catch (e) { say(document.getElementById("s-msg"), e.message); }
        } })));
    }
    if (!s.silences.length) sl.append(el("li", { class: "hint", text: t("none") }));
  }

  function refresh() { list().catch(() => {}); alerts().catch(() => {}); }
  window.cityosRefresh = refresh;
  dom.addEventListener("change", () => { chosen = null; refresh(); });
  reg.addEventListener("change", () => { document.getElementById("chart").textContent = ""; refresh(); });
  refresh();
  setInterval(refresh, 15000);
})();
