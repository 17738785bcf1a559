// 应用场景: every scenario pack with its status, owner, version and hits; the chosen
// pack's facts, whole playbook (联勤联动, deadlines, checklist per role, CAP, stand-down),
// audit trail and last hits (list and map, kept current from the live stream). The
// administrator and the district officer may enable, disable and reload a pack (the
// server decides; other roles get no buttons). Pack texts and hits are data: set only
// with textContent.
"use strict";
(async function () {
  const u = frame("scenarios", true);
  if (!u) return;
  const mayChange = ["admin", "district_officer"].includes(u.role);
  const msg = document.getElementById("msg");
  const LEVEL_COLOUR = { red: "#c1121f", orange: "#e85d04", yellow: "#b08800", blue: "#1f5fbf" };
  const HIT_COLOUR = "#6f42c1"; // no level: purple, unlike the levels' colours
  const HITS = 50;
  let chosen = new URLSearchParams(location.search).get("pack");
  let packs = [];
  let hits = [];
  let textOf = null; // the pack whose running text is in the reload form

  // Department, line and category codes in people's words (public lists; codes stay as
  // the fallback, e.g. a checklist role that is not a line).
  const depts = {}, lines = {}, cats = {};
  async function names() {
    const [d, c] = await Promise.all([api("/api/v1/departments"), api("/api/v1/categories")]);
    for (const x of d.departments || []) {
      depts[x.code] = x;
      if (x.level === "district" && !lines[x.line]) lines[x.line] = x;
    }
    for (const x of c.categories || []) cats[x.code] = x;
  }
  const said = (x, code) => (x ? (lang() === "en" ? x.name_en || x.name_zh : x.name_zh || x.name_en) : code);
  const deptName = (code) => said(depts[code], code);
  const lineName = (code) => said(lines[code], code);
  const catName = (code) => said(cats[code], code);

  const nameOf = (p) => (lang() === "en" ? p.name_en || p.name_zh : p.name_zh || p.name_en) || p.name || p.pack;
  const tr = (prefix, key) => (t(prefix + key) !== prefix + key ? t(prefix + key) : key);
  const statusBadge = (s) => el("span", { class: "badge st-" + s, text: tr("s_", s) });

  /// `seconds` as the largest whole unit (5分钟, 2小时), else seconds.
  function fmtSeconds(s) {
    if (s == null) return "—";
    if (s && s % 3600 === 0) return s / 3600 + " " + t("hours");
    if (s && s % 60 === 0) return s / 60 + " " + t("minutes");
    return s + " " + t("seconds");
  }

  /// A time limit as the pack writes it (`5m`, `1h`, `2wh`, `1wd`) in words.
  function fmtLimit(l) {
    const m = /^(\d+(?:\.\d+)?)(m|h|d|wh|wd)$/.exec(String(l));
    return m ? m[1] + " " + t("u_" + m[2]) : String(l);
  }
  const STEPS = ["file", "dispatch", "acknowledge", "handle", "verify", "close"];

  // The map of hits: a diamond per hit, coloured by the hit's level; hollow = stand-down.
  const legend = document.getElementById("legend");
  for (const [lvl, c] of Object.entries(LEVEL_COLOUR)) {
    const i = el("i", { class: "diamond" }); i.style.background = c;
    legend.append(el("span", {}, i, t("l_" + lvl)));
  }
  const plain = el("i", { class: "diamond" }); plain.style.background = HIT_COLOUR;
  const hollow = el("i", { class: "diamond hollow" });
  legend.append(el("span", {}, plain, t("k_hit")), el("span", {}, hollow, t("k_stand_down")));
  const map = new CityMap(document.getElementById("map"));
  document.getElementById("zin").addEventListener("click", () => map.zoom(2));
  document.getElementById("zout").addEventListener("click", () => map.zoom(0.5));
  document.getElementById("zreset").addEventListener("click", () => map.reset());

  // ---- the list of packs ----
  function hitSummary(h) {
    if (!h) return "—";
    return fmtTime(h.at) + " · " + (h.place || "") + " · " + tr("k_", h.kind);
  }

  function renderPacks() {
    const body = document.getElementById("packs");
    // Redrawn by the timer and the stream: the keyboard focus stays on its pack's link.
    const focused = body.contains(document.activeElement) ? document.activeElement.dataset.pack : null;
    body.textContent = "";
    for (const p of packs) {
      const a = el("a", { href: "/ui/scenarios.html?pack=" + encodeURIComponent(p.name), text: nameOf(p), "data-pack": p.name, "aria-current": p.name === chosen ? "true" : null,
        onclick: (ev) => { ev.preventDefault(); choose(p.name, true); } });
      body.append(el("tr", { class: p.name === chosen ? "chosen" : null },
        el("td", {}, a, " ", el("span", { class: "hint code", text: p.name })),
        el("td", {}, statusBadge(p.status)),
        el("td", { text: deptName(p.owner) }),
        el("td", { text: p.version }),
        el("td", { text: p.hits == null ? "—" : String(p.hits) }),
        el("td", { text: hitSummary(p.last_hit) })));
    }
    if (!packs.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "hint", text: t("none") })));
    if (focused) { const again = body.querySelector("a[data-pack='" + CSS.escape(focused) + "']"); if (again) again.focus(); }
  }

  async function listPacks() {
    const v = await api("/api/v1/scenarios");
    packs = v.scenarios || [];
    if (!chosen || !packs.some((p) => p.name === chosen)) chosen = packs.length ? packs[0].name : null;
    renderPacks();
  }

  // ---- one pack ----
  async function showPack() {
    const p = await api("/api/v1/scenarios/" + encodeURIComponent(chosen));
    document.getElementById("detail").hidden = false;
    document.getElementById("h-pack").textContent = nameOf(p);
    const facts = document.getElementById("facts");
    facts.textContent = "";
    const row = (dl, k, v) => dl.append(el("dt", { text: t(k) }), el("dd", {}, v));
    row(facts, "number", document.createTextNode(p.name));
    row(facts, "pack_status", statusBadge(p.status));
    row(facts, "owner", document.createTextNode(deptName(p.owner)));
    row(facts, "version", document.createTextNode(p.version));
    row(facts, "origin", document.createTextNode(tr("o_", p.origin)));
    row(facts, "loaded_at", el("time", { datetime: p.loaded_at, text: fmtTime(p.loaded_at) }));

    const probs = document.getElementById("problems");
    probs.textContent = "";
    if (p.problems && p.problems.length) {
      const ul = el("ul", { class: "problems" });
      for (const x of p.problems) ul.append(el("li", { text: x }));
      probs.append(el("h3", { class: "error", text: t("refused_problems") }), ul);
    }

    const sw = document.getElementById("switch");
    sw.textContent = "";
    if (mayChange) {
      const on = p.status === "enabled";
      sw.append(el("button", { type: "button", id: "toggle", class: on ? "secondary" : null, text: t(on ? "disable" : "enable"),
        onclick: (ev) => toggle(ev.currentTarget, on ? "disable" : "enable") }));
    }

    const b = p.playbook || {};
    const pb = document.getElementById("playbook");
    pb.textContent = "";
    const text = (v) => document.createTextNode(v == null || v === "" ? "—" : String(v));
    const names = (l) => text((l || []).map(lineName).join(lang() === "en" ? "; " : "、"));
    row(pb, "category", text(b.category && catName(b.category)));
    row(pb, "priority", el("span", { class: "badge p-" + b.priority, text: b.priority ? tr("p_", b.priority) : "—" }));
    row(pb, "lead", text(b.lead && lineName(b.lead)));
    row(pb, "joint", names(b.joint));
    row(pb, "notify", names(b.notify));
    row(pb, "cap", b.cap_category
      ? el("span", {}, b.cap_category, b.cap_level ? " · " + t("cap_from") + " " : "", b.cap_level ? levelBadge(b.cap_level) : null)
      : text(t("cap_none")));
    row(pb, "stand_down", text(t("stand_down_after") + " " + fmtSeconds(b.stand_down_after_seconds)));

    const dls = document.getElementById("deadlines");
    dls.textContent = "";
    const steps = Object.entries(b.deadlines || {}).sort((x, y) => STEPS.indexOf(x[0]) - STEPS.indexOf(y[0]));
    for (const [step, limit] of steps) dls.append(el("li", {}, el("strong", { text: tr("a_", step) }), " " + fmtLimit(limit)));
    if (!dls.childElementCount) dls.append(el("li", { class: "hint", text: t("none") }));

    const cl = document.getElementById("checklist");
    cl.textContent = "";
    for (const c of b.checklist || []) {
      const ol = el("ol");
      for (const item of c.items || []) ol.append(el("li", { text: item }));
      cl.append(el("h4", { text: lineName(c.role) }), ol);
    }
    if (!cl.childElementCount) cl.append(el("p", { class: "hint", text: t("none") }));

    const panel = document.getElementById("reload-panel");
    panel.hidden = !mayChange;
    if (mayChange && textOf !== p.name) {
      document.getElementById("r-text").value = p.text || "";
      document.getElementById("r-msg").textContent = "";
      document.getElementById("r-problems").textContent = "";
      textOf = p.name;
    }
  }

  async function toggle(btn, what) {
    btn.disabled = true;
    try {
      await api("/api/v1/scenarios/" + encodeURIComponent(chosen) + "/" + what, { method: "POST" });
      await Promise.all([listPacks(), showPack(), showAudit()]);
      say(msg, t(what) + " · " + t("done"), true);
      const again = document.getElementById("toggle");
      if (again) again.focus();
    } catch (e) { say(msg, e.message); btn.disabled = false; }
  }

  // ---- reload ----
  /// Selects line `line`, from column `col`, of the pack text: where a problem is.
  function goTo(line, col) {
    const ta = document.getElementById("r-text");
    const lines = ta.value.split("\n");
    let at = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) at += lines[i].length + 1;
    const len = (lines[line - 1] || "").length;
    ta.focus();
    ta.setSelectionRange(at + Math.min(Math.max(col - 1, 0), len), at + len);
    // Scroll the line into view: lines × line height.
    ta.scrollTop = Math.max(0, (line - 3) * parseFloat(getComputedStyle(ta).lineHeight || "20"));
  }

  document.getElementById("reload").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const m = document.getElementById("r-msg");
    const list = document.getElementById("r-problems");
    const btn = document.getElementById("r-submit");
    list.textContent = "";
    m.textContent = "";
    btn.disabled = true;
    try {
      const v = await api("/api/v1/scenarios/" + encodeURIComponent(chosen), {
        method: "PUT", body: document.getElementById("r-text").value, headers: { "content-type": "application/toml" },
      });
      textOf = null; // show the running text as the server keeps it
      await Promise.all([listPacks(), showPack()]);
      say(m, t("reloaded") + " · " + t("version") + " " + v.version, true);
    } catch (e) {
      say(m, e.message + (e.status === 409 && e.detail ? " — " + e.detail : ""));
      for (const p of e.problems || []) {
        const at = /^(\d+):(\d+):/.exec(p);
        list.append(el("li", {}, at
          ? el("button", { type: "button", class: "link", title: t("go_to_line"), text: p, onclick: () => goTo(Number(at[1]), Number(at[2])) })
          : el("span", { text: p })));
      }
    } finally {
      btn.disabled = false;
      // A refused reload is audited and its problems are kept with the pack.
      showAudit().catch(() => {});
      listPacks().catch(() => {});
      showPack().catch(() => {});
    }
  });

  // ---- audit trail ----
  async function showAudit() {
    const v = await api("/api/v1/scenarios/" + encodeURIComponent(chosen) + "/audit");
    const body = document.getElementById("audit");
    body.textContent = "";
    for (const a of (v.audit || []).slice().reverse()) {
      const result = el("td", {}, el("span", { class: a.ok ? "ok" : "error", text: t(a.ok ? "ok" : "refused") }));
      if (a.problems && a.problems.length) {
        const ul = el("ul", { class: "problems" });
        for (const x of a.problems) ul.append(el("li", { text: x }));
        result.append(ul);
      }
      body.append(el("tr", {},
        el("td", {}, el("time", { datetime: a.at, text: fmtTime(a.at) })),
        el("td", { text: actorName(a.actor) }),
        el("td", { text: tr("au_", a.action) }),
        el("td", { text: a.version || "—" }),
        result));
    }
    if (!body.childElementCount) body.append(el("tr", {}, el("td", { colspan: "5", class: "hint", text: t("none") })));
  }

  // ---- hits ----
  function renderHits() {
    const ul = document.getElementById("hits");
    ul.textContent = "";
    for (const h of hits) {
      ul.append(el("li", {},
        el("time", { datetime: h.at, text: fmtTime(h.at) }),
        h.level ? levelBadge(h.level) : null, " ",
        el("span", { class: "badge", text: tr("k_", h.kind) }), " ",
        el("strong", { text: h.place || "—" }),
        h.case ? el("span", {}, " · ", el("a", { href: "/ui/case.html?id=" + encodeURIComponent(h.case), text: h.case })) : null,
        h.text ? el("div", { class: "hint", text: h.text }) : null));
    }
    if (!hits.length) ul.append(el("li", { class: "hint", text: t("none") }));
    map.points(hits.map((h) => ({
      lon: h.lon, lat: h.lat, colour: LEVEL_COLOUR[h.level] || HIT_COLOUR, hollow: h.kind === "stand_down", case: h.case,
      title: fmtTime(h.at) + " " + (h.place || "") + " · " + tr("k_", h.kind) + (h.case ? " · " + h.case : ""),
    })), (m) => { if (m.case) location.href = "/ui/case.html?id=" + encodeURIComponent(m.case); });
  }

  async function showHits() {
    const note = document.getElementById("hits-note");
    note.textContent = "";
    try {
      const v = await api("/api/v1/scenarios/hits?pack=" + encodeURIComponent(chosen) + "&limit=" + HITS);
      hits = v.hits || [];
    } catch (e) {
      hits = [];
      note.textContent = e.message;
    }
    renderHits();
  }

  async function choose(name, focus) {
    chosen = name;
    history.replaceState(null, "", "/ui/scenarios.html?pack=" + encodeURIComponent(name));
    renderPacks();
    msg.textContent = "";
    try {
      await Promise.all([showPack(), showAudit(), showHits()]);
      if (focus) { const h = document.getElementById("h-pack"); h.setAttribute("tabindex", "-1"); h.focus(); }
    } catch (e) { say(msg, e.message); }
  }

  // The live stream: a hit counts at once in the list, and shows on the chosen pack's map.
  function onHit(ev) {
    let h;
    try { h = JSON.parse(ev.data); } catch (_) { return; }
    const p = packs.find((x) => x.name === h.pack);
    if (p) { p.hits = (p.hits || 0) + 1; p.last_hit = h; renderPacks(); }
    if (h.pack === chosen) {
      hits = [h].concat(hits.filter((x) => x.seq !== h.seq)).slice(0, HITS);
      renderHits();
    }
  }

  try {
    await Promise.all([map.init("subdistrict"), names().catch(() => {})]);
    await listPacks();
  } catch (e) { say(msg, e.message); return; }
  if (chosen) await choose(chosen, false);
  const es = new EventSource("/api/v1/events/stream"); // the session cookie signs it in
  es.addEventListener("scenario", onHit);
  // Others may switch packs meanwhile: the list (not the form being edited) is refreshed.
  setInterval(() => { listPacks().catch(() => {}); }, 30000);
})();
