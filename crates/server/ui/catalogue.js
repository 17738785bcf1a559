// 数据目录: the data catalogue (datasets, indicators, device feeds, exports) with owner,
// schema and per-column sensitivity, freshness, data quality and lineage; for a dataset
// the rows as the caller's grants give them (masked by the server), a request for a
// grant (departments), and the grants the caller may see with the decisions its role
// may take (the server decides; a refused action shows its problem). Data is set only
// with textContent.
"use strict";
(async function () {
  const u = frame("catalogue", true);
  if (!u) return;
  const msg = document.getElementById("msg");
  const say = (x, zh, en) => (lang() === "en" ? x[en] || x[zh] : x[zh] || x[en]) || x.name;
  const tr = (prefix, key) => (t(prefix + key) !== prefix + key ? t(prefix + key) : key);
  let entries = [];
  let chosen = null;

  async function load() {
    const q = document.getElementById("q").value.trim();
    const kind = document.getElementById("kind").value;
    const p = new URLSearchParams();
    if (q) p.set("q", q);
    if (kind) p.set("kind", kind);
    try {
      entries = (await api("/api/v1/catalogue" + (p.toString() ? "?" + p : ""))).entries || [];
      msg.textContent = "";
    } catch (e) { msg.textContent = e.message; return; }
    const body = document.getElementById("entries");
    body.textContent = "";
    for (const e of entries) {
      const a = el("a", { href: "#", text: say(e, "title_zh", "title_en") || e.name, onclick: (ev) => { ev.preventDefault(); show(e); } });
      const fresh = e.freshness && e.freshness.imported_at ? fmtTime(e.freshness.imported_at) : (e.every || "—");
      const quality = e.quality ? el("span", { class: "badge", text: tr("q_", e.quality.status) }) : "—";
      body.append(el("tr", {},
        el("td", {}, a, el("div", { class: "hint code", text: e.name })),
        el("td", { text: tr("kind_", e.kind) }),
        el("td", { text: e.owner ? say(e.owner, "name_zh", "name_en") || e.owner.code : "" }),
        el("td", {}, el("span", { class: "badge", text: tr("lv_", e.sensitivity) })),
        el("td", { text: fresh }),
        el("td", {}, quality)));
    }
  }

  function show(e) {
    chosen = e;
    document.getElementById("detail").hidden = false;
    document.getElementById("h-entry").textContent = say(e, "title_zh", "title_en") || e.name;
    document.getElementById("desc").textContent = say(e, "description_zh", "description_en") || "";
    const facts = document.getElementById("facts");
    facts.textContent = "";
    const fact = (k, v) => { if (v !== null && v !== undefined && v !== "") facts.append(el("dt", { text: t(k) }), el("dd", { text: String(v) })); };
    fact("owner", e.owner ? say(e.owner, "name_zh", "name_en") || e.owner.code : "");
    fact("cat_level", tr("lv_", e.sensitivity));
    fact("every", e.every);
    if (e.freshness) { fact("imported_at", e.freshness.imported_at ? fmtTime(e.freshness.imported_at) : "—"); fact("row_count", e.freshness.rows); }
    if (e.quality) fact("cat_quality", tr("q_", e.quality.status) + ((e.quality.problems || []).length ? "：" + e.quality.problems.join("；") : ""));
    const schema = document.getElementById("schema");
    schema.textContent = "";
    for (const c of e.schema || []) {
      schema.append(el("tr", {}, el("td", { class: "code", text: c.name }), el("td", { text: c.type || "" }),
        el("td", {}, el("span", { class: "badge", text: tr("lv_", c.sensitivity) }))));
    }
    const lineage = document.getElementById("lineage");
    lineage.textContent = "";
    for (const [k, v] of Object.entries(e.lineage || {})) {
      const items = Array.isArray(v) ? v : (v && typeof v === "object" ? Object.values(v) : []);
      if (items.length) lineage.append(el("li", { text: tr("ln_", k) + "：" + items.join("、") }));
    }
    const isData = e.kind === "dataset" && e.rows_api;
    document.getElementById("rows-panel").hidden = !isData;
    document.getElementById("rows-wrap").hidden = true;
    document.getElementById("rows-msg").textContent = "";
    const ask = document.getElementById("ask");
    const mayAsk = isData && u.department && e.owner && u.department !== e.owner.code;
    ask.hidden = !mayAsk;
    if (mayAsk) {
      const cols = document.getElementById("ask-cols");
      cols.textContent = "";
      (e.schema || []).forEach((c, i) => {
        const id = "ask-col-" + i;
        cols.append(el("label", { for: id }, el("input", { type: "checkbox", id, value: c.name }), " " + c.name + " (" + tr("lv_", c.sensitivity) + ")"), " ");
      });
    }
  }

  async function showRows() {
    const out = document.getElementById("rows-msg");
    out.textContent = "";
    try {
      const v = await api(chosen.rows_api + "?limit=50");
      const head = document.getElementById("rows-head");
      const body = document.getElementById("rows");
      head.textContent = ""; body.textContent = "";
      head.append(el("tr", {}, ...v.columns.map((c) => el("th", { scope: "col", text: c + (v.masked.includes(c) ? " *" : "") }))));
      for (const r of v.rows) body.append(el("tr", {}, ...v.columns.map((c) => el("td", { text: r[c] }))));
      document.getElementById("rows-wrap").hidden = false;
      out.textContent = t("rows_basis") + "：" + tr("b_", v.basis) + " · " + t("rows_total") + " " + v.total;
    } catch (e) { out.textContent = e.message; }
  }

  async function submitAsk(ev) {
    ev.preventDefault();
    const out = document.getElementById("ask-msg");
    const columns = [...document.querySelectorAll("#ask-cols input:checked")].map((i) => i.value);
    try {
      await api("/api/v1/grants", { body: {
        dataset: chosen.name, columns,
        purpose: document.getElementById("ask-purpose").value,
        until: document.getElementById("ask-until").value,
        unmask: document.getElementById("ask-unmask").checked,
      } });
      out.textContent = t("cat_asked");
      loadGrants();
    } catch (e) { out.textContent = e.message; }
  }

  async function loadGrants() {
    let v;
    try { v = await api("/api/v1/grants"); } catch (_) { return; }
    document.getElementById("grants-panel").hidden = false;
    const body = document.getElementById("grants");
    body.textContent = "";
    for (const g of v.grants || []) {
      const acts = el("td");
      const isOwner = u.department && u.department === g.owner;
      const isConsumer = u.department && u.department === g.consumer;
      const may = [];
      if (g.state === "requested" && (isOwner || u.role === "admin")) may.push("approve", "refuse");
      if (g.state === "approved" && (isOwner || isConsumer || u.role === "admin")) may.push("revoke");
      for (const a of may) {
        acts.append(el("button", { type: "button", class: "secondary", text: t("g_" + a), onclick: async () => {
          let reason = "";
          if (a !== "approve") { reason = window.prompt(t("g_reason")) || ""; }
          try { await api("/api/v1/grants/" + g.id + "/" + a, { body: { reason } }); msg.textContent = t("g_" + a) + " #" + g.id; }
          catch (e) { msg.textContent = e.message; }
          loadGrants();
        } }), " ");
      }
      body.append(el("tr", {},
        el("td", { text: String(g.id) }), el("td", { class: "code", text: g.dataset }), el("td", { class: "code", text: g.consumer }),
        el("td", { text: (g.columns || []).join("、") + (g.unmask ? "（" + t("cat_unmask") + "）" : "") }),
        el("td", { text: g.purpose }), el("td", { text: fmtTime(g.until) }),
        el("td", {}, el("span", { class: "badge", text: tr("g_", g.state) })), acts));
    }
  }

  document.getElementById("search").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  document.getElementById("show-rows").addEventListener("click", showRows);
  document.getElementById("ask").addEventListener("submit", submitAsk);
  applyI18n();
  await load();
  await loadGrants();
})();
