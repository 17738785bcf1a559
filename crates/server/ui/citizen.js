// 市民: report a problem in three steps (category — or "not sure", then the text is read —,
// place on the map or by GPS, what is wrong), get a case number, follow it with its deadline, rate the result. No account:
// the filing answer's report_token, kept in this browser per case number, is the key
// that lets the reporter (and nobody else) rate the result.
"use strict";
(async function () {
  const UNSURE = "*";
  const TOKENS = "cityos.report_tokens";
  const tokens = () => { try { return JSON.parse(localStorage.getItem(TOKENS) || "{}"); } catch (_) { return {}; } };
  const keepToken = (number, token) => { const m = tokens(); m[number] = token; localStorage.setItem(TOKENS, JSON.stringify(m)); };
  frame("citizen", false);
  let pos = null;
  const posOut = document.getElementById("pos");
  const map = new CityMap(document.getElementById("map"), {
    controls: true,
    onPick: (lon, lat) => { pos = [lon, lat]; showPlace(posOut, lon, lat); },
  });
  await map.init("subdistrict");
  placeSearch(document.getElementById("place"), map);
  const cats = await api("/api/v1/categories", { anonymous: true });
  const sel = document.getElementById("category");
  // Grouped by the parent people recognise (市容环境, 街面秩序, …), and searchable.
  const nm = (c) => (lang() === "en" ? c.name_en : c.name_zh);
  const parents = {};
  for (const c of cats.categories) parents[c.code] = c;
  const groups = new Map();
  for (const c of cats.categories.filter((c) => c.public && c.parent)) {
    if (!groups.has(c.parent)) groups.set(c.parent, []);
    groups.get(c.parent).push(c);
  }
  const drawCats = (filter) => {
    const keep = sel.value;
    for (const g of [...sel.querySelectorAll("optgroup")]) g.remove();
    for (const [parent, list] of groups) {
      const shown = list.filter((c) => !filter || nm(c).includes(filter) || (c.keywords || []).some((k) => k.includes(filter)) || nm(parents[parent] || c).includes(filter));
      if (!shown.length) continue;
      const og = el("optgroup", { label: parents[parent] ? nm(parents[parent]) : parent });
      for (const c of shown) og.append(el("option", { value: c.code, text: nm(c) }));
      sel.append(og);
    }
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  };
  drawCats("");
  // Each group's icon, drawn here (24×24 strokes): what the problem looks like.
  const GLYPH = {
    lamp: "M12 21V8M8 21h8M12 8c0-3 2-5 5-5M14 3h5l-1 3h-3z",
    road: "M7 21 10 3M17 21 14 3M12 6v2M12 11v2M12 16v3",
    tree: "M12 21v-6M12 15c-5 0-7-3-5-6 0-3 3-6 5-6s5 3 5 6c2 3 0 6-5 6z",
    house: "M3 11 12 4l9 7M5 10v10h14V10M10 20v-5h4v5",
    bin: "M5 7h14M9 7V4h6v3M7 7l1 13h8l1-13M10 10v7M14 10v7",
    board: "M4 4h16v9H4zM8 13v8M16 13v8M7 8h10",
    cone: "M12 3 6 19h12zM8.5 12h7M4 21h16",
    alert: "M12 3 2 20h20zM12 9v5M12 17v.5",
    stall: "M3 9l2-5h14l2 5zM3 9c0 2 3 2 3 0 0 2 3 2 3 0 0 2 3 2 3 0 0 2 3 2 3 0 0 2 3 2 3 0M5 11v9h14v-9",
    drop: "M12 3c4 5 6 8 6 11a6 6 0 0 1-12 0c0-3 2-6 6-11z",
    heart: "M12 20S3 14 3 8.5A4.5 4.5 0 0 1 12 6a4.5 4.5 0 0 1 9 2.5C21 14 12 20 12 20z",
    bowl: "M3 11h18a9 9 0 0 1-18 0zM8 7c0-2 2-2 2-4M13 7c0-2 2-2 2-4",
    ask: "M9 9a3 3 0 1 1 4 3c-1 .5-1 1-1 2M12 17v.5M12 21a9 9 0 1 1 0-18 9 9 0 0 1 0 18z",
  };
  const GROUP_GLYPH = {
    comp_public: "lamp", comp_road: "road", comp_greening: "tree", comp_building: "house", comp_appearance: "bin",
    evt_appearance: "bin", evt_advertising: "board", evt_construction: "cone", evt_emergency: "alert",
    evt_safety_hazard: "alert", evt_street_order: "stall", mkt_order: "stall", mkt_food: "bowl",
    liv_environment: "drop", liv_housing: "house", liv_welfare: "heart",
  };
  const byCode = {};
  for (const c of cats.categories) byCode[c.code] = c;
  const glyphOf = (code) => {
    if (code === UNSURE) return GLYPH.ask;
    const c = byCode[code];
    return c ? GLYPH[GROUP_GLYPH[c.parent] || GROUP_GLYPH[c.code]] || "" : "";
  };
  const drawIcon = (svg, code) => {
    svg.textContent = "";
    const d = glyphOf(code);
    if (d) { const p = document.createElementNS("http://www.w3.org/2000/svg", "path"); p.setAttribute("d", d); svg.append(p); }
    svg.dataset.glyph = d ? (code === UNSURE ? "ask" : GROUP_GLYPH[(byCode[code] || {}).parent] || "") : "";
  };
  const icon = document.getElementById("cat-icon");
  sel.addEventListener("change", () => drawIcon(icon, sel.value));
  const find = document.getElementById("cat-find");
  find.addEventListener("input", () => {
    drawCats(find.value.trim());
    const first = sel.querySelector("optgroup option");
    if (find.value.trim() && first) sel.value = first.value;
    drawIcon(icon, sel.value);
  });

  // 长辈版: larger type and bigger targets, remembered in this browser.
  const elderBtn = document.getElementById("elder");
  const setElder = (on) => { document.body.classList.toggle("elder", on); elderBtn.setAttribute("aria-pressed", on ? "true" : "false"); localStorage.setItem("cityos.elder", on ? "1" : ""); };
  setElder(localStorage.getItem("cityos.elder") === "1");
  elderBtn.addEventListener("click", () => setElder(!document.body.classList.contains("elder")));
  // Read aloud with the browser's own voice: the step in focus, or the page's steps.
  document.getElementById("speak").addEventListener("click", () => {
    if (!window.speechSynthesis) return;
    const filed = document.getElementById("filed");
    const parts = !filed.hidden ? [filed.textContent] : [t("citizen_intro"),
      "1. " + t("category") + (sel.value ? "：" + sel.options[sel.selectedIndex].text : ""),
      "2. " + t("pick_on_map") + "：" + posOut.textContent, "3. " + t("describe")];
    speak(parts.join("。"));
  });
  const speak = (text) => {
    if (!window.speechSynthesis) return;
    window.speechSynthesis.cancel();
    const u = new SpeechSynthesisUtterance(text);
    u.lang = lang() === "en" ? "en-GB" : "zh-CN";
    window.speechSynthesis.speak(u);
  };
  // 🔊 beside each step reads that step: its question and what is chosen so far.
  const stepText = (n) => n === "1" ? "1. " + t("category") + (sel.value ? "：" + sel.options[sel.selectedIndex].text : "")
    : n === "2" ? "2. " + t("pick_on_map") + "：" + posOut.textContent
    : "3. " + t("describe") + (document.getElementById("text").value.trim() ? "：" + document.getElementById("text").value.trim() : "");
  for (const b of document.querySelectorAll(".speak-step[data-step]")) {
    b.setAttribute("aria-label", t("speak_step").replace("{n}", b.dataset.step));
    b.addEventListener("click", () => speak(stepText(b.dataset.step)));
  }
  // Photos: each redrawn on a canvas before sending — smaller, and a fresh JPEG carries no
  // EXIF (no camera, no time, no position of the phone) — then stored by the public
  // photo upload (Open311's media.json, type and size checked by the server).
  const photosIn = document.getElementById("photos");
  const photosN = document.getElementById("photos-n");
  photosIn.addEventListener("change", () => {
    photosN.textContent = photosIn.files.length ? t("photos_n").replace("{n}", Math.min(photosIn.files.length, 9)) : "";
  });
  async function clean(file) {
    const img = await createImageBitmap(file);
    const k = Math.min(1, 1600 / Math.max(img.width, img.height));
    const c = document.createElement("canvas");
    c.width = Math.max(1, Math.round(img.width * k));
    c.height = Math.max(1, Math.round(img.height * k));
    c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
    return new Promise((ok) => c.toBlob(ok, "image/jpeg", 0.82));
  }
  async function sendPhotos() {
    const urls = [];
    for (const f of [...photosIn.files].slice(0, 9)) {
      const blob = await clean(f);
      const up = await api("/open311/v2/media.json", { anonymous: true, headers: { "content-type": "image/jpeg" }, body: blob });
      urls.push(up[0].media_url);
    }
    return urls;
  }
  document.getElementById("copy").addEventListener("click", async () => {
    const n = document.getElementById("filed-number").textContent;
    try { await navigator.clipboard.writeText(n); say(document.getElementById("filed-msg"), t("copied"), true); }
    catch (_) { say(document.getElementById("filed-msg"), n, true); }
  });

  // "Not sure": no category; the text is read (and may name the place).
  sel.addEventListener("change", () => { document.getElementById("unsure-hint").hidden = sel.value !== UNSURE; });

  document.getElementById("locate").addEventListener("click", () => {
    locateMe(posOut, (lon, lat) => { pos = [lon, lat]; showPlace(posOut, lon, lat); map.pin(lon, lat); });
  });

  document.getElementById("report").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = document.getElementById("msg");
    const category = sel.value;
    const address = document.getElementById("address").value.trim();
    const text = document.getElementById("text").value.trim();
    const contact = document.getElementById("contact").value.trim();
    if (!category) { say(msg, t("need_category")); sel.focus(); return; }
    const unsure = category === UNSURE;
    if (!pos && !unsure) { say(msg, t("need_place")); document.getElementById("locate").focus(); return; }
    if (!text) { say(msg, t("need_text")); document.getElementById("text").focus(); return; }
    const body = { text: address ? text + "（" + address + "）" : text, contact: contact || null };
    if (!unsure) body.category = category;
    if (pos) { body.lon = pos[0]; body.lat = pos[1]; }
    if (photosIn.files.length) {
      try { body.media = await sendPhotos(); }
      catch (e) { say(msg, t("photo_failed") + " " + (e.message || e)); photosIn.focus(); return; }
    }
    try {
      const r = await api("/api/v1/reports", {
        anonymous: true,
        headers: { "idempotency-key": newKey() },
        body,
      });
      if (r.report_token) keepToken(r.case.number, r.report_token);
      // Without a category the answer says where it went: 已转相关部门 / 待人工分拨.
      say(msg, t("your_number") + ": " + r.case.number + (r.dispatch ? " · " + r.dispatch : ""), true);
      document.getElementById("unsure-hint").hidden = true;
      document.getElementById("number").value = r.case.number;
      document.getElementById("report").reset();
      photosN.textContent = "";
      drawIcon(icon, "");
      const filed = document.getElementById("filed");
      document.getElementById("filed-number").textContent = r.case.number;
      document.getElementById("filed-link").setAttribute("href", "/ui/citizen.html?number=" + encodeURIComponent(r.case.number));
      filed.hidden = false;
      focusResult(filed);
      follow(r.case.number);
    } catch (e) { say(msg, e.message); }
  });

  async function follow(number) {
    const box = document.getElementById("status");
    box.textContent = "";
    const rate = document.getElementById("rate");
    rate.hidden = true;
    try {
      const c = (await api("/api/v1/cases/" + encodeURIComponent(number), { anonymous: true })).case;
      // 预计完成 is when the whole case should be done (the server chains the steps still to
      // come on the working calendar); the current step's own deadline is shown beside it.
      const lines = [
        el("p", {}, el("strong", { text: c.number }), " · ", el("span", { text: c.title })),
        el("p", {}, t("status") + ": ", el("strong", { text: stateName(c.state) })),
        c.expected_done ? el("p", { id: "expected" }, t("expected_done") + ": ", el("strong", { text: fmtTime(c.expected_done) })) : null,
        c.due ? el("p", { id: "step-due" }, t("step_due") + ": ", el("span", { text: fmtTime(c.due) })) : null,
      ];
      const spoken = lines.filter(Boolean).map((p) => p.textContent).join("。");
      box.append(...lines, el("p", {}, el("button", { type: "button", class: "secondary speak-step", id: "speak-status", "aria-label": t("speak_status"), text: "🔊", onclick: () => speak(spoken) })));
      rate.hidden = !c.can_evaluate || !tokens()[c.number];
      if (c.can_evaluate && !tokens()[c.number]) box.append(el("p", { class: "hint", text: t("no_report_token") }));
      rate.dataset.number = c.number;
    } catch (e) { box.append(el("p", { class: "error", role: "alert", text: e.message })); }
  }
  document.getElementById("follow").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = document.getElementById("number").value.trim();
    if (!n) { say(document.getElementById("status"), t("need_number")); return; }
    follow(n);
  });
  document.getElementById("rate").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const m = document.getElementById("r-msg");
    const number = ev.target.dataset.number;
    try {
      await api("/api/v1/cases/" + encodeURIComponent(number) + "/transitions", {
        anonymous: true,
        body: { action: "evaluate", score: Number(document.getElementById("score").value), comment: document.getElementById("comment").value, report_token: tokens()[number] },
      });
      say(m, t("thanks"), true);
      follow(number);
    } catch (e) { say(m, e.message); }
  });
  const q = new URLSearchParams(location.search).get("number");
  if (q) { document.getElementById("number").value = q; follow(q); }
})();
