// 市民: report a problem in three steps (category — or "not sure", then the text is read —,
// place on the map or by GPS, what is wrong), get a case number, follow it with its deadline, rate the result. No account:
// the filing answer's report_token, kept in this browser per case number, is the key
// that lets the reporter (and nobody else) rate the result.
"use strict";
(async function () {
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
  const find = document.getElementById("cat-find");
  find.addEventListener("input", () => {
    drawCats(find.value.trim());
    const first = sel.querySelector("optgroup option");
    if (find.value.trim() && first) sel.value = first.value;
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
    window.speechSynthesis.cancel();
    const u = new SpeechSynthesisUtterance(parts.join("。"));
    u.lang = lang() === "en" ? "en-GB" : "zh-CN";
    window.speechSynthesis.speak(u);
  });
  document.getElementById("copy").addEventListener("click", async () => {
    const n = document.getElementById("filed-number").textContent;
    try { await navigator.clipboard.writeText(n); say(document.getElementById("filed-msg"), t("copied"), true); }
    catch (_) { say(document.getElementById("filed-msg"), n, true); }
  });

  // "Not sure": no category; the text is read (and may name the place).
  const UNSURE = "*";
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
      box.append(el("p", {}, el("strong", { text: c.number }), " · ", el("span", { text: c.title })),
        el("p", {}, t("status") + ": ", el("strong", { text: stateName(c.state) })),
        c.due ? el("p", {}, t("deadline") + ": ", el("strong", { text: fmtTime(c.due) })) : null);
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
