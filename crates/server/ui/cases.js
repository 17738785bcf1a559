// 案件 case desk: filters and a list (keyset pages), or the signed-in role's inbox.
"use strict";
(async function () {
  const u = frame("cases", true);
  if (!u) return;
  const rows = document.getElementById("rows");
  const msg = document.getElementById("msg");
  const more = document.getElementById("more");
  const q = new URLSearchParams(location.search);
  let mode = q.get("inbox") || (["handler", "inspector"].includes(u.role) ? "inbox" : "all");
  let cursor = null;

  const subs = await regions("subdistrict");
  const sel = document.getElementById("f-region");
  for (const f of subs.features) sel.append(el("option", { value: f.properties.code, text: regionName(f.properties) }));
  if (q.get("region")) sel.value = q.get("region");

  function row(c) {
    const due = c.time_left_ms == null ? "" : (c.time_left_ms < 0 ? t("overdue_by") + " " + fmtDuration(-c.time_left_ms) : fmtDuration(c.time_left_ms));
    return el("tr", {},
      el("td", {}, el("a", { href: "/ui/case.html?id=" + c.id, text: c.number })),
      el("td", { text: c.title }),
      el("td", { class: "state", text: stateName(c.state) }),
      el("td", { class: "priority" }, el("span", { class: "badge p-" + c.priority, text: priorityName(c.priority) })),
      el("td", { text: regionName(c.subdistrict) }),
      el("td", { class: c.overdue ? "overdue" : "", text: due }));
  }

  async function load(append) {
    say(msg, t("loading"), true);
    try {
      let list;
      if (mode === "inbox") {
        list = (await api("/api/v1/inbox")).cases;
        more.hidden = true;
      } else {
        const p = new URLSearchParams({ limit: "50", sort: "deadline" });
        for (const [k, id] of [["state", "f-state"], ["domain", "f-domain"], ["region", "f-region"], ["overdue", "f-overdue"], ["q", "f-text"]]) {
          const v = document.getElementById(id).value.trim();
          if (v) p.set(k, v);
        }
        if (append && cursor) p.set("cursor", cursor);
        const r = await api("/api/v1/cases?" + p);
        list = r.cases; cursor = r.next_cursor; more.hidden = !cursor;
      }
      if (!append) rows.textContent = "";
      for (const c of list) rows.append(row(c));
      say(msg, rows.children.length ? "" : t("none"), true);
    } catch (e) { say(msg, e.message); }
  }

  function setMode(m) {
    mode = m;
    document.getElementById("tab-inbox").setAttribute("aria-pressed", m === "inbox" ? "true" : "false");
    document.getElementById("tab-all").setAttribute("aria-pressed", m === "all" ? "true" : "false");
    document.getElementById("filters").hidden = m === "inbox";
    load(false);
  }
  document.getElementById("tab-inbox").addEventListener("click", () => setMode("inbox"));
  document.getElementById("tab-all").addEventListener("click", () => setMode("all"));
  document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  setMode(mode);
})();
