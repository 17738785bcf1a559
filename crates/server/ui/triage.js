// 待分拨 triage desk: the reports whose text gave no confident category, oldest first.
// Each shows its text, place, urgency cues and the model's suggestions as buttons 1/2/3;
// j/k or the arrow keys move between them, Enter or 1 takes the first suggestion, 2 and 3
// the others, c opens a searchable list of every category. A classified report leaves the
// list, focus moves to the next one, and the status line says so once.
"use strict";
(async function () {
  const u = frame("triage", true);
  if (!u) return;
  const queue = document.getElementById("queue");
  const msg = document.getElementById("msg");
  const more = document.getElementById("more");
  const count = document.getElementById("count");
  const picker = document.getElementById("picker");
  const filter = document.getElementById("pick-filter");
  const list = document.getElementById("pick-list");
  let cursor = null;
  let categories = [];
  let picking = null; // the item the picker is open for

  const nameOf = (c) => (lang() === "en" ? c.name_en : c.name_zh) || c.category || c.code;
  const items = () => Array.from(queue.querySelectorAll("li.triage-item"));
  const current = () => queue.querySelector("li.triage-item[aria-current='true']") || items()[0] || null;

  function select(li, focus) {
    for (const x of items()) x.removeAttribute("aria-current");
    if (!li) return;
    li.setAttribute("aria-current", "true");
    if (focus) { li.focus(); li.scrollIntoView({ block: "nearest" }); }
  }

  function updateCount() {
    const n = items().length;
    count.textContent = n + (cursor ? "+" : "");
    if (!n) say(msg, t("triage_empty"), true);
  }

  function item(c) {
    const s = c.suggestion;
    const place = [c.subdistrict, c.community, c.grid].filter(Boolean).map((r) => r.name_zh).join(" · ");
    const due = c.time_left_ms == null ? "" : (c.time_left_ms < 0 ? t("overdue_by") + " " + fmtDuration(-c.time_left_ms) : fmtDuration(c.time_left_ms));
    const head = "tq-" + c.id;
    const li = el("li", { class: "triage-item", tabindex: "-1", "aria-labelledby": head, "data-id": String(c.id), "data-number": c.number, "data-version": String(c.version) });
    li.append(el("h3", { id: head },
      el("a", { href: "/ui/case.html?id=" + c.id, text: c.number }), " ",
      el("span", { class: "hint", text: fmtTime(c.created_at) }), " ",
      el("span", { class: "badge p-" + c.priority, text: t("p_" + c.priority) })));
    li.append(el("p", { class: "triage-text", text: c.text }));
    const facts = el("dl", { class: "facts" });
    facts.append(el("dt", { text: t("position") }), el("dd", { text: place || "—" }));
    facts.append(el("dt", { text: t("due") }), el("dd", { class: c.overdue ? "overdue" : "", text: due || "—" }));
    if (s && s.places && s.places.length) facts.append(el("dt", { text: t("places_named") }), el("dd", { text: s.places.map((p) => p.word + (p.region_name ? "（" + p.region_name + "）" : "")).join("、") }));
    if (s && s.cues && s.cues.length) {
      const dd = el("dd");
      for (const cue of s.cues) dd.append(el("span", { class: "badge p-high", text: cue }), " ");
      facts.append(el("dt", { text: t("urgency_cues") }), dd);
    }
    if (s && s.reason) facts.append(el("dt", { text: t("model_reason") }), el("dd", { class: "hint", text: s.reason }));
    li.append(facts);
    const acts = el("div", { class: "actions", role: "group", "aria-label": t("suggestions") });
    const top = (s && s.top) || [];
    top.slice(0, 3).forEach((x, i) => {
      acts.append(el("button", { type: "button", "aria-keyshortcuts": String(i + 1) + (i === 0 ? " Enter" : ""), "data-category": x.category,
        onclick: () => classify(li, x.category, nameOf(x)) },
        el("kbd", { text: String(i + 1) }), " ", nameOf(x), " ", el("span", { class: "hint", text: Number(x.score).toFixed(2) })));
    });
    if (!top.length) acts.append(el("span", { class: "hint", text: t("no_suggestion") }));
    acts.append(el("button", { type: "button", class: "secondary", "aria-keyshortcuts": "c", onclick: () => openPicker(li) },
      el("kbd", { text: "c" }), " ", t("other_category")));
    li.append(acts);
    li.addEventListener("focusin", () => select(li, false));
    return li;
  }

  async function load(append) {
    try {
      const p = new URLSearchParams({ limit: "50" });
      if (append && cursor) p.set("cursor", cursor);
      const r = await api("/api/v1/triage?" + p);
      if (!append) queue.textContent = "";
      for (const c of r.cases) queue.append(item(c));
      cursor = r.next_cursor; more.hidden = !cursor;
      if (!current()) return updateCount();
      if (!queue.querySelector("[aria-current='true']")) select(items()[0], false);
      updateCount();
    } catch (e) { say(msg, e.message); }
  }

  async function classify(li, category, name) {
    if (li.dataset.busy) return;
    li.dataset.busy = "1";
    try {
      await api("/api/v1/cases/" + li.dataset.id + "/transitions", {
        body: { action: "classify", category, version: Number(li.dataset.version) },
        headers: { "idempotency-key": newKey() },
      });
      const all = items();
      const i = all.indexOf(li);
      const next = all[i + 1] || all[i - 1] || null;
      li.remove();
      say(msg, t("classified") + " " + li.dataset.number + " → " + name, true);
      closePicker(false);
      if (next) select(next, true);
      else if (cursor) { await load(true); select(items()[0], true); }
      else document.getElementById("h-queue").focus();
      updateCount();
    } catch (e) {
      delete li.dataset.busy;
      say(msg, li.dataset.number + "：" + e.message);
      if (e.code === "version_conflict" || e.status === 404 || e.code === "transition_not_allowed") load(false);
    }
  }

  function fill() {
    const q = filter.value.trim().toLowerCase();
    list.textContent = "";
    for (const c of categories) {
      const label = c.name_zh + " · " + c.name_en + " (" + c.code + ")";
      if (q && !label.toLowerCase().includes(q)) continue;
      list.append(el("option", { value: c.code, text: label }));
    }
    if (list.options.length) list.selectedIndex = 0;
  }

  function openPicker(li) {
    picking = li;
    document.getElementById("picker-for").textContent = li.dataset.number;
    picker.hidden = false;
    filter.value = "";
    document.getElementById("pick-msg").textContent = "";
    fill();
    filter.focus();
  }
  function closePicker(refocus) {
    const li = picking;
    picking = null;
    picker.hidden = true;
    if (refocus && li && li.isConnected) li.focus();
  }

  filter.addEventListener("input", fill);
  filter.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" && list.options.length) { e.preventDefault(); list.focus(); }
  });
  picker.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); closePicker(true); }
    if (e.key === "Enter" && e.target === list) { e.preventDefault(); picker.requestSubmit(); }
  });
  document.getElementById("pick-cancel").addEventListener("click", () => closePicker(true));
  picker.addEventListener("submit", (e) => {
    e.preventDefault();
    const code = list.value;
    if (!code || !picking) { say(document.getElementById("pick-msg"), t("need_category")); return; }
    const c = categories.find((x) => x.code === code);
    classify(picking, code, c ? nameOf(c) : code);
  });

  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || picking) return;
    const tag = (e.target.tagName || "").toLowerCase();
    if (["input", "select", "textarea"].includes(tag)) return;
    const onControl = tag === "button" || tag === "a";
    const li = current();
    if (!li) return;
    const all = items();
    const i = all.indexOf(li);
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); select(all[Math.min(i + 1, all.length - 1)], true); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); select(all[Math.max(i - 1, 0)], true); }
    else if (["1", "2", "3"].includes(e.key) || (e.key === "Enter" && !onControl)) {
      const n = e.key === "Enter" ? 0 : Number(e.key) - 1;
      const b = li.querySelectorAll("button[data-category]")[n];
      if (b) { e.preventDefault(); b.click(); }
    } else if (e.key === "c") { e.preventDefault(); openPicker(li); }
  });
  more.addEventListener("click", () => load(true));

  try {
    categories = (await api("/api/v1/categories")).categories
      .filter((c) => c.code !== "triage")
      .sort((a, b) => a.name_zh.localeCompare(b.name_zh, "zh-CN"));
  } catch (e) { say(msg, e.message); }
  await load(false);
  const first = current();
  if (first) select(first, true);
})();
