// 案件详情: the case's state with a live countdown, the actions this user may take now
// (from the server), the timeline, tasks, deadlines, reporters, photos and a small map.
"use strict";
(async function () {
  const u = frame("cases", true);
  if (!u) return;
  const id = new URLSearchParams(location.search).get("id");
  const msg = document.getElementById("msg");
  const map = new CityMap(document.getElementById("map"));
  let data = null, due = null;
  await Promise.all([map.init("subdistrict"), loadDepartments()]);

  // Fields an action asks for, beyond the note and photos.
  const FIELDS = {
    reject: [["reason", "reason", "text", true]], return: [["reason", "reason", "text", true]],
    suspend: [["reason", "reason", "text", true]], reopen: [["reason", "reason", "text", true]],
    request_postponement: [["extra", "extra_hours", "text", true], ["reason", "reason", "text", true]],
    evaluate: [["score", "score", "number", true], ["comment", "comment", "text", false]],
    split: [["report", "report_id", "number", true]],
    classify: [["category", "category", "text", true]],
  };
  const PHOTO = ["handle", "verify", "reject_verification", "note"];

  function tick() {
    const c = document.getElementById("countdown");
    if (!due) { c.textContent = "—"; return; }
    const left = new Date(due) - Date.now();
    c.textContent = left < 0 ? t("overdue_by") + " " + fmtDuration(-left) : fmtDuration(left);
    c.className = "countdown" + (left < 0 ? " overdue" : "");
  }
  setInterval(tick, 1000);

  async function load() {
    try { data = await api("/api/v1/cases/" + encodeURIComponent(id)); }
    catch (e) { say(msg, e.message); return; }
    const c = data.case;
    document.title = c.number + " · cityos";
    document.getElementById("title").textContent = c.number + " " + c.title;
    const dl = document.getElementById("summary");
    dl.textContent = "";
    const row = (k, v) => dl.append(el("dt", { text: t(k) }), el("dd", {}, v));
    row("state", el("strong", { text: stateName(c.state) }));
    row("category", document.createTextNode(lang() === "en" && c.category_name_en ? c.category_name_en : c.category_name));
    row("priority", el("span", { class: "badge p-" + c.priority, text: priorityName(c.priority) }));
    row("region", document.createTextNode([c.subdistrict, c.community, c.grid].filter(Boolean).map(regionName).join(" / ")));
    due = c.due; tick();
    const acts = document.getElementById("actions");
    acts.textContent = "";
    // Ticking a checklist item names its role and item: done from the checklist below.
    for (const a of data.actions.filter((x) => x !== "tick")) acts.append(el("button", { type: "button", class: "secondary", "data-action": a, text: t("a_" + a), onclick: () => openAction(a) }));
    if (!acts.childElementCount) acts.append(el("p", { class: "hint", text: t("none") }));
    const tl = document.getElementById("timeline");
    tl.textContent = "";
    for (const e of data.log) {
      const li = el("li", {}, el("time", { class: "hint", text: fmtTime(e.at) }), " ",
        el("span", { class: "what", text: tEnum("a_", e.action) }), " · ", el("span", { class: "who", text: staffName(e) }),
        e.note ? el("div", { class: "note", text: noteText(e.note) }) : null);
      for (const a of e.attachments || []) li.append(el("div", { class: "photos" }, el("img", { src: a, alt: t("photo") + " " + e.seq })));
      tl.append(li);
    }
    const tasks = document.getElementById("tasks");
    tasks.textContent = "";
    for (const x of c.tasks) tasks.append(el("li", { text: (x.lead ? "★ " : "") + (DEPTS[x.department] ? deptName(x.department) : x.department_name) + " · " + tEnum("ts_", x.state) }));
    const dls = document.getElementById("deadlines");
    dls.textContent = "";
    for (const d of c.deadlines) dls.append(el("li", { class: d.on_time === false ? "overdue" : "", text: (lang() === "en" ? tEnum("a_", d.step) : d.step_zh) + " " + fmtTime(d.due) + (d.met ? " ✔" : "") }));
    const reps = document.getElementById("reports");
    reps.textContent = "";
    for (const r of data.reports) reps.append(el("li", {}, el("span", { class: "badge", text: tEnum("ch_", r.channel) }), " ", el("time", { class: "hint", text: fmtTime(r.at) }), " ", el("span", { text: r.text }), r.contact ? el("span", { class: "hint", text: " · " + r.contact }) : null));
    const photos = document.getElementById("photos");
    photos.textContent = "";
    (c.media || []).forEach((m, i) => photos.append(el("a", { href: m }, el("img", { src: m, alt: t("photo") + " " + (i + 1) }))));
    checklist(c);
    map.markers([{ lon: c.lon, lat: c.lat, priority: c.priority, number: c.number, title: c.title, state: c.state }]);
    map.centreOn(c.lon, c.lat, 6);
  }

  // The playbook's checklist of a case a scenario pack opened: per role, each item done
  // (when, by whom) or to do; the roles that work cases (district and sub-district
  // officers, handlers, inspectors) tick items off while it is being worked — exactly
  // when the server offers this user the `tick` action now.
  let lines = null; // line code → the district department of that line (for role names)
  // Staff by their display name (Chinese pages), or in English by their department, else
  // their role; machines and departments by the dictionary.
  function staffName(e) {
    if (!e.actor_name) return actorName(e.actor);
    if (lang() !== "en") return e.actor_name;
    return e.actor_department && DEPTS[e.actor_department] ? deptName(e.actor_department) : tEnum("ar_", e.role);
  }
  function roleName(role) {
    const d = lines && lines[role];
    return d ? (lang() === "en" ? d.name_en : d.name_zh) : role;
  }
  function checklist(c) {
    if (c.playbook && !lines) {
      lines = {};
      api("/api/v1/departments").then((v) => {
        for (const d of v.departments || []) if (d.level === "district" && !lines[d.line]) lines[d.line] = d;
        checklist(data.case);
      }).catch(() => {});
    }
    const panel = document.getElementById("checklist-panel");
    const pb = c.playbook;
    panel.hidden = !pb;
    if (!pb) return;
    const of = document.getElementById("playbook-of");
    of.textContent = "";
    of.append(t("scenario") + " ", (ROLE_PAGES[u.role] || []).includes("scenarios")
      ? el("a", { href: "/ui/scenarios.html?pack=" + encodeURIComponent(pb.scenario), text: pb.scenario })
      : pb.scenario, " · " + t("version") + " " + pb.version);
    const box = document.getElementById("checklist");
    box.textContent = "";
    const mayTick = (data.actions || []).includes("tick");
    (pb.checklist || []).forEach((group, g) => {
      const ul = el("ul", { class: "checklist" });
      for (const it of group.items || []) {
        const done = !!it.done_at;
        const li = el("li", { class: done ? "done" : null },
          el("span", { class: "box", "aria-hidden": "true", text: done ? "☑" : "☐" }), " ",
          el("span", { class: "sr-only", text: done ? t("done") + ": " : "" }),
          el("span", { text: it.text }));
        if (done) li.append(el("div", { class: "hint" }, t("done_at") + " ", el("time", { datetime: it.done_at, text: fmtTime(it.done_at) }), " · " + t("ticked_by") + " " + (it.done_by || "—")));
        else if (mayTick) {
          li.append(" ", el("button", { type: "button", class: "secondary", "data-tick": g + "-" + it.item, "aria-label": t("tick") + ": " + it.text,
            text: t("tick"), onclick: (ev) => tickItem(ev.currentTarget, group.role, it.item) }));
        }
        ul.append(li);
      }
      box.append(el("h3", { text: roleName(group.role) }), ul);
    });
  }

  async function tickItem(btn, role, item) {
    const m = document.getElementById("c-msg");
    btn.disabled = true;
    m.textContent = "";
    try {
      await api("/api/v1/cases/" + data.case.id + "/transitions", { body: { action: "tick", role, item }, headers: { "idempotency-key": newKey() } });
      await load();
      say(msg, t("a_tick") + " · " + t("done"), true);
      focusResult(document.getElementById("h-checklist"));
    } catch (e) { say(m, e.message); btn.disabled = false; }
  }

  let current = null;
  function openAction(a) {
    current = a;
    const form = document.getElementById("action-form");
    form.hidden = false;
    document.getElementById("action-title").textContent = t("a_" + a);
    const box = document.getElementById("action-fields");
    box.textContent = "";
    for (const [name, label, type, required] of FIELDS[a] || []) {
      box.append(el("label", { for: "f-" + name, text: t(label) }), el("input", { id: "f-" + name, name, type, required, min: type === "number" && name === "score" ? "1" : null, max: name === "score" ? "5" : null }));
    }
    document.getElementById("a-photo").parentElement.hidden = false;
    document.getElementById("a-msg").textContent = "";
    routing = null;
    if (a === "dispatch") { dispatchChoice(box).then(() => document.getElementById("d-lead").focus()).catch((e) => { say(document.getElementById("a-msg"), e.message); form.querySelector("textarea").focus(); }); return; }
    form.querySelector("input, textarea").focus();
  }

  // 派遣 with a choice: what routing would choose and why, the department that returned
  // the case (if one did) and the next candidate instead; the officer picks the lead and
  // adds or removes joint departments (联勤联动).
  let routing = null;
  const levelName = (l) => t("lvl_" + l);
  async function dispatchChoice(box) {
    routing = await api("/api/v1/cases/" + data.case.id + "/routing");
    const name = (d) => (lang() === "en" ? d.name_en || d.name_zh : d.name_zh);
    const byCode = {};
    for (const d of routing.choices) byCode[d.department] = d;
    for (const d of routing.routing) byCode[d.department] = byCode[d.department] || d;
    const why = el("ul", { class: "plain", id: "routing-why" });
    for (const d of routing.routing) {
      // The reason from its parts, in the page's language (the server's text is Chinese).
      const text = tf("d_reason", { role: d.lead ? t("lead") : t("joint"), name: name(d), line: d.line, level: levelName(d.level) });
      why.append(el("li", { text: (d.lead ? "★ " : "") + text }));
    }
    if (routing.problem) why.append(el("li", { class: "error", text: routing.problem }));
    box.append(el("div", { class: "routing" }, el("h4", { id: "routing-h", text: t("d_routing") }), why));
    for (const r of routing.returned) {
      const next = routing.suggested.find((x) => x.why === "next_up");
      box.append(el("p", { class: "error", id: "routing-returned", text: tf("d_returned", { name: byCode[r] ? name(byCode[r]) : r }) +
        (next ? " " + tf("d_next", { name: byCode[next.department] ? name(byCode[next.department]) : next.department }) : "") }));
    }
    const lead = (routing.suggested.find((x) => x.lead) || {}).department;
    const sel = el("select", { id: "d-lead", required: true });
    for (const d of routing.choices) sel.append(el("option", { value: d.department, text: name(d) + " · " + levelName(d.level) }));
    if (lead) sel.value = lead;
    box.append(el("label", { for: "d-lead", text: t("lead") }), sel);
    const joint = routing.suggested.filter((x) => !x.lead).map((x) => x.department);
    const fs = el("fieldset", { class: "joint", id: "d-joint" }, el("legend", { text: t("joint") }));
    for (const d of routing.choices) {
      const id = "dj-" + d.department;
      fs.append(el("div", {}, el("input", { type: "checkbox", id, value: d.department, checked: joint.includes(d.department) }), " ",
        el("label", { for: id, class: "inline", text: name(d) + " · " + levelName(d.level) })));
    }
    box.append(fs);
  }

  /// The departments the officer chose, or [] when that is exactly routing's choice (the
  /// server then routes, and its reasons go into the log).
  function chosenDepartments() {
    const lead = document.getElementById("d-lead").value;
    const joint = [...document.querySelectorAll("#d-joint input:checked")].map((i) => i.value).filter((d) => d !== lead);
    const r = routing.routing;
    const same = !routing.returned.length && r.length && r[0].department === lead &&
      joint.length === r.length - 1 && joint.every((d) => r.some((x) => x.department === d && !x.lead));
    if (same) return [];
    return [{ department: lead, lead: true }].concat(joint.map((d) => ({ department: d, lead: false })));
  }

  document.getElementById("action-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const m = document.getElementById("a-msg");
    const body = { action: current, note: document.getElementById("a-note").value, version: data.case.version };
    for (const [name, label, type, required] of FIELDS[current] || []) {
      const v = document.getElementById("f-" + name).value.trim();
      if (required && !v) { say(m, t(label)); document.getElementById("f-" + name).focus(); return; }
      if (v) body[name] = type === "number" ? Number(v) : v;
    }
    if (current === "dispatch" && routing) body.departments = chosenDepartments();
    const file = document.getElementById("a-photo").files[0];
    if (current === "verify" && u.role === "inspector" && !file) { say(m, t("need_photo")); return; }
    const btn = document.getElementById("a-submit");
    btn.disabled = true;
    try {
      if (file) {
        const up = await api("/api/v1/media", { body: file, headers: { "content-type": file.type || "image/jpeg" } });
        body.attachments = [up.media_url];
      }
      await api("/api/v1/cases/" + data.case.id + "/transitions", { body, headers: { "idempotency-key": newKey() } });
      say(m, t("done"), true);
      document.getElementById("action-form").hidden = true;
      document.getElementById("a-note").value = "";
      await load();
      say(msg, t("a_" + current) + " · " + t("done"), true);
      focusResult(msg); // the result; the actions now offered follow it
    } catch (e) { say(m, e.message); focusResult(m); }
    finally { btn.disabled = false; }
  });
  await load();
})();
