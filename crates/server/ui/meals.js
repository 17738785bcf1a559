// 老人助餐 — the elder's page. One thing per screen, big buttons with an icon and a word;
// "my usual" is one tap, any other meal three (新的一餐 → the dish → how to get it); every
// screen is read aloud by its 🔊 button with the browser's own speech synthesis; voice
// input where the browser has it; a family member orders the same way for their elder.
// Nothing moves or times out by itself: screens change only when a button is pressed.
"use strict";
(function () {
  const MT = {
    zh: {
      title: "老人助餐", lang: "English", signin_title: "请先登录", signin_text: "请家人或工作人员帮您登录一次，以后打开就能订餐。",
      signin: "登录", choose_title: "为哪位老人订餐？", usual: "老样子，一下订好", new_meal: "点新的一餐", my_orders: "我的订单",
      switch: "换一位老人", menu_hint: "点一下您想吃的菜", voice: "说出菜名", how_title: "怎么拿饭？", cancel_title: "确定不要这一餐了吗？",
      cancel_yes: "不要了，退钱", cancel_no: "还是要", speak: "读给我听", home: "回到首页", hello: "，您好", for_elder: "为{n}订餐",
      balance: "账户余额 {y} 元", usual_is: "老样子：{d}，{c}，{h}", no_usual: "还没有“老样子”：点一次新的一餐，以后一下就能订。",
      today: "今天", tomorrow: "明天", lunch: "午餐", breakfast: "早餐", closed: "这几天没有可以订的餐了，请联系食堂。",
      pickup: "自己去{p}取", staff: "工作人员送到家", driverless: "无人车11点送到家", done: "订好了！", failed: "没订上",
      cancelled: "已经取消了，{y} 元退回了账户。", no_orders: "还没有订单。", cancel_this: "不要这一餐", yuan: "{y} 元",
      not_registered: "还没有登记助餐，请联系社区居委会或家人帮您登记。", staff_page: "工作人员请打开食堂工作台。", heard: "听到：{t}",
      not_heard: "没听清，请再说一次，或者直接点菜。", wait: "请稍等……",
      new_breakfast: "点早餐", register: "登记一位老人", register_title: "登记助餐老人", register_hint: "社区工作人员或家人填写。带 * 的必须填写。",
      r_name: "老人姓名", r_birth: "出生日期", r_phone: "老人电话", r_address: "住址", r_community: "所在社区（居委会）", r_canteen: "在哪个食堂吃饭",
      r_lone: "独自居住", r_family: "家人姓名", r_fphone: "家人电话", r_submit: "提交登记", r_missing: "请把带 * 的都填上：{f}", r_done: "登记好了：{n}（编号 {id}）。",
      r_age: "按这个出生日期老人有{a}岁，请再核对一下。", r_future: "出生日期在今天之后，请再核对一下。", r_young: "助餐服务面向60岁及以上的老人，这位老人{a}岁。",
    },
    en: {
      title: "Meals for elders", lang: "中文", signin_title: "Please sign in first", signin_text: "Ask family or staff to sign you in once; then the page opens ready to order.",
      signin: "Sign in", choose_title: "Who are you ordering for?", usual: "My usual, in one tap", new_meal: "Order a new meal", my_orders: "My orders",
      switch: "Another elder", menu_hint: "Tap the dish you would like", voice: "Say the dish", how_title: "How do you get it?", cancel_title: "Cancel this meal?",
      cancel_yes: "Yes, cancel and refund", cancel_no: "No, keep it", speak: "Read aloud", home: "Back to start", hello: ", hello", for_elder: "Ordering for {n}",
      balance: "Balance {y} yuan", usual_is: "Usual: {d}, {c}, {h}", no_usual: "No usual meal yet: order a new meal once and next time it is one tap.",
      today: "Today's", tomorrow: "Tomorrow's", lunch: "lunch", breakfast: "breakfast", closed: "No meal can be ordered in the next days; please call the canteen.",
      pickup: "I pick it up at {p}", staff: "Staff bring it home", driverless: "Driverless vehicle at 11:00", done: "Ordered!", failed: "Not ordered",
      cancelled: "Cancelled; {y} yuan is back in the account.", no_orders: "No orders yet.", cancel_this: "Cancel this meal", yuan: "{y} yuan",
      not_registered: "Not registered for meals yet; ask the residents' committee or family to register you.", staff_page: "Staff: please open the canteen desk.", heard: "Heard: {t}",
      not_heard: "Sorry, I did not catch that; say it again or tap the dish.", wait: "One moment…",
      new_breakfast: "Order breakfast", register: "Register an elder", register_title: "Register an elder for meals", register_hint: "For community workers and family. Fields with * are needed.",
      r_name: "Elder's name", r_birth: "Date of birth", r_phone: "Elder's phone", r_address: "Address", r_community: "Community (residents' committee)", r_canteen: "Canteen",
      r_lone: "Lives alone", r_family: "Family member's name", r_fphone: "Family member's phone", r_submit: "Register", r_missing: "Please fill in every field with *: {f}", r_done: "Registered: {n} (number {id}).",
      r_age: "That date of birth makes {a} years; please check it.", r_future: "The date of birth is after today; please check it.", r_young: "The service is for people of 60 and over; this person is {a}.",
    },
  };
  const m = (k, vars) => {
    let s = (MT[lang()][k]) || MT.zh[k] || k;
    for (const [a, b] of Object.entries(vars || {})) s = s.replace("{" + a + "}", b);
    return s;
  };
  const $ = (id) => document.getElementById(id);
  const yuan = (fen) => (fen < 0 ? "-" : "") + Math.floor(Math.abs(fen) / 100) + "." + String(Math.abs(fen) % 100).padStart(2, "0");
  const SCREENS = ["s-signin", "s-choose", "s-home", "s-menu", "s-how", "s-done", "s-orders", "s-cancel", "s-register"];
  let current = "s-signin";
  let elders = [];
  let elder = null;
  let canteens = [];
  let key = null;      // one idempotency key per choice: a double tap is the same order
  let pick = null;     // {canteen, date, meal, dish, name}

  function localize() {
    document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
    document.title = m("title") + " · cityos";
    document.querySelectorAll("[data-m]").forEach((e) => { e.textContent = m(e.dataset.m); });
  }

  function show(id) {
    current = id;
    for (const s of SCREENS) $(s).hidden = s !== id;
    $("home").hidden = ["s-signin", "s-choose", "s-home"].includes(id);
    const h = $(id).querySelector("h1");
    if (h) { h.tabIndex = -1; h.focus(); }
    window.scrollTo(0, 0);
  }

  /// The words on the screen now: its headings and texts, its buttons, its orders.
  function screenText() {
    const s = $(current);
    const parts = [...s.querySelectorAll(".say, button.big, a.big, .orders li")]
      .filter((e) => !e.hidden && e.textContent.trim())
      .map((e) => e.textContent.replace(/\s+/g, " ").trim());
    return parts.join("。 ");
  }

  function speak() {
    const text = screenText();
    if (!("speechSynthesis" in window) || !text) return;
    window.speechSynthesis.cancel();
    // The utterance (a plain object where a browser lacks the constructor: nothing to hear then).
    const u = window.SpeechSynthesisUtterance ? new window.SpeechSynthesisUtterance(text) : { text };
    u.lang = lang() === "en" ? "en-GB" : "zh-CN";
    u.rate = 0.85;
    window.speechSynthesis.speak(u);
  }

  function bigButton(icon, label, sub, onclick, cls) {
    const b = el("button", { type: "button", class: "big " + (cls || ""), onclick },
      el("span", { "aria-hidden": "true", text: icon }), " ",
      el("span", {}, label, sub ? el("small", { text: sub }) : null));
    return b;
  }

  function problemText(e) {
    return (e && e.message) || m("failed");
  }

  async function loadElders() {
    const r = await api("/api/v1/meals/elders");
    elders = r.elders || [];
  }

  function chooseScreen() {
    const box = $("elders");
    box.textContent = "";
    for (const e of elders) box.append(bigButton("👵", e.name, e.relation === "self" ? "" : e.community_name || "", () => { elder = e; home(); }));
    show("s-choose");
  }

  function canteenOf(id) { return canteens.find((c) => c.id === id) || { id, name: id, delivery_area: [], driverless: false }; }

  async function refreshElder() {
    elder = await api("/api/v1/meals/elders/" + encodeURIComponent(elder.id));
  }

  /// The next meal of `meal` still open at a canteen: today's, else the next days'.
  async function openMenu(canteen, meal) {
    for (let d = 0; d < 3; d++) {
      const date = new Date(Date.now() + 8 * 3600e3 + d * 86400e3).toISOString().slice(0, 10);
      const menu = await api("/api/v1/meals/canteens/" + encodeURIComponent(canteen) + "/menu?date=" + date, { anonymous: true });
      const one = (menu.meals || []).find((x) => x.meal === meal && x.open);
      if (one) return { date, day: d, meal: one };
    }
    return null;
  }

  function howText(round, point) {
    if (round === "pickup") return m("pickup", { p: canteenOf(point || elder.canteen).name });
    return m(round);
  }

  /// The home screen; `listed`: the elder was just read whole with the list (no second
  /// round trip before the screen shows — the page is usable sooner on a slow network).
  async function home(listed) {
    key = newKey();
    if (!listed) await refreshElder();
    // The elder's own name is marked (data-name): a name, in no language.
    const who = el("span", { text: elder.name, "data-name": true });
    $("h-home").textContent = "";
    if (elder.relation === "self") $("h-home").append(who, m("hello"));
    else { const [a, b] = m("for_elder", { n: "\u0000" }).split("\u0000"); $("h-home").append(a, who, b || ""); }
    $("balance").textContent = m("balance", { y: yuan(elder.balance_fen) });
    $("switch").hidden = elders.length < 2;
    const u = elder.usual;
    $("usual").hidden = !u;
    if (u) {
      const say = (dish) => m("usual_is", { d: dish, c: u.canteen_name || canteenOf(u.canteen).name, h: howText(u.round, u.point) });
      $("usual-what").textContent = say(u.lines.map((l) => l.dish).join("、"));
      show("s-home");
      // The dishes' names from the menu, once it is in (the screen is usable before).
      const open = await openMenu(u.canteen, u.meal);
      if (open && current === "s-home") $("usual-what").textContent = say(u.lines.map((l) => (open.meal.dishes.find((d) => d.id === l.dish) || { name: l.dish }).name).join("、"));
    } else {
      $("usual-what").textContent = m("no_usual");
      show("s-home");
    }
  }

  function done(ok, title, text) {
    $("h-done").textContent = title;
    $("h-done").className = "say " + (ok ? "ok" : "error");
    $("done-text").textContent = text;
    key = newKey();
    show("s-done");
  }

  async function order(body) {
    try {
      const o = await api("/api/v1/meals/orders", { body: Object.assign({ elder: elder.id, key }, body) });
      done(true, m("done"), lang() === "en" ? o.say_en : o.say_zh);
    } catch (e) {
      done(false, m("failed"), problemText(e));
    }
  }

  async function menuScreen(meal) {
    const box = $("dishes");
    box.textContent = "";
    const open = await openMenu(elder.canteen, meal);
    if (!open) { $("h-menu").textContent = m("closed"); $("menu-hint").hidden = true; show("s-menu"); return; }
    $("menu-hint").hidden = false;
    $("h-menu").textContent = (open.day === 0 ? m("today") : m("tomorrow")) + (lang() === "en" ? " " : "") + m(meal) + (open.day > 1 ? " " + open.date : "");
    for (const d of open.meal.dishes) {
      const tags = (lang() === "en" ? d.tags : d.tags_zh).join(" · ");
      const b = bigButton("🍲", d.name, m("yuan", { y: yuan(d.price_fen) }) + (tags ? " · " + tags : ""), () => howScreen({ canteen: elder.canteen, date: open.date, meal, dish: d.id, name: d.name }), "dish");
      b.dataset.dish = d.id;
      b.dataset.name = d.name;
      box.append(b);
    }
    show("s-menu");
  }

  function howScreen(p) {
    pick = p;
    key = newKey();
    $("how-dish").textContent = p.name;
    const box = $("hows");
    box.textContent = "";
    const c = canteenOf(p.canteen);
    const point = elder.usual && elder.usual.point ? elder.usual.point : p.canteen;
    box.append(bigButton("🚶", m("pickup", { p: canteenOf(point).name }), "", () => order({ canteen: p.canteen, date: p.date, meal: p.meal, lines: [{ dish: p.dish, qty: 1 }], round: "pickup", point }), "how"));
    if ((c.delivery_area || []).includes(elder.subdistrict)) {
      box.append(bigButton("🏠", m("staff"), "", () => order({ canteen: p.canteen, date: p.date, meal: p.meal, lines: [{ dish: p.dish, qty: 1 }], round: "staff" }), "how"));
      if (c.driverless && p.meal === "lunch") box.append(bigButton("🚐", m("driverless"), "", () => order({ canteen: p.canteen, date: p.date, meal: p.meal, lines: [{ dish: p.dish, qty: 1 }], round: "driverless" }), "how"));
    }
    show("s-how");
  }

  async function ordersScreen() {
    await refreshElder();
    const ul = $("orders");
    ul.textContent = "";
    if (!elder.orders.length) ul.append(el("li", { text: m("no_orders") }));
    for (const o of elder.orders) {
      const li = el("li", {}, el("p", { text: lang() === "en" ? o.say_en : o.say_zh }));
      if (o.state === "placed") li.append(bigButton("✖️", m("cancel_this"), "", () => cancelScreen(o), "danger"));
      ul.append(li);
    }
    show("s-orders");
  }

  let cancelling = null;
  function cancelScreen(o) {
    cancelling = o;
    $("cancel-what").textContent = lang() === "en" ? o.say_en : o.say_zh;
    show("s-cancel");
  }

  async function cancelIt() {
    try {
      const o = await api("/api/v1/meals/orders/" + encodeURIComponent(cancelling.id) + "/cancel", { body: {} });
      done(true, m("cancelled", { y: yuan(o.refunded_fen) }), lang() === "en" ? o.say_en : o.say_zh);
    } catch (e) {
      done(false, m("failed"), problemText(e));
    }
  }

  /// The registration form (family members and community workers): the communities the
  /// canteens serve, the canteens; a refusal (an impossible age, a missing field) shown
  /// kindly in the page's language, nothing lost from the form.
  async function registerScreen() {
    $("reg-error").hidden = true;
    show("s-register");
    if (!$("r-community").options.length) {
      const [cs, cm] = await Promise.all([
        canteens.length ? { canteens } : api("/api/v1/meals/canteens", { anonymous: true }),
        api("/api/v1/meals/communities", { anonymous: true }),
      ]);
      canteens = cs.canteens;
      const en = lang() === "en";
      for (const c of cm.communities) $("r-community").append(el("option", { value: c.code, text: (en && c.name_en ? c.name_en : c.name) + " · " + c.subdistrict_name }));
      for (const c of canteens.filter((x) => x.kind === "canteen")) $("r-canteen").append(el("option", { value: c.id, text: c.name }));
    }
  }

  function regError(text) {
    $("reg-error").textContent = text;
    $("reg-error").hidden = false;
    $("reg-error").focus && $("reg-error").scrollIntoView();
  }

  /// Whole years between a date of birth and today (local).
  function ageOf(birth) {
    const [y, mo, d] = birth.split("-").map(Number);
    const now = new Date(Date.now() + 8 * 3600e3);
    let a = now.getUTCFullYear() - y;
    if (now.getUTCMonth() + 1 < mo || (now.getUTCMonth() + 1 === mo && now.getUTCDate() < d)) a -= 1;
    return a;
  }

  async function register() {
    const v = (id) => $(id).value.trim();
    const need = [["r-name", "r_name"], ["r-birth", "r_birth"], ["r-phone", "r_phone"], ["r-address", "r_address"], ["r-community", "r_community"], ["r-canteen", "r_canteen"]];
    const missing = need.filter(([id]) => !v(id));
    for (const [id] of need) $(id).setAttribute("aria-invalid", missing.some(([x]) => x === id) ? "true" : "false");
    if (missing.length) { regError(m("r_missing", { f: missing.map(([, k]) => m(k)).join("、") })); return; }
    // The age checked here first (the server checks it again): a kind word, not a code.
    const birth = v("r-birth");
    if (/^\d{4}-\d{2}-\d{2}$/.test(birth)) {
      const a = ageOf(birth);
      const bad = a < 0 ? m("r_future") : a > 120 ? m("r_age", { a }) : a < 60 ? m("r_young", { a }) : null;
      if (bad) { $("r-birth").setAttribute("aria-invalid", "true"); regError(bad); return; }
    }
    const body = { name: v("r-name"), birth_date: birth, phone: v("r-phone"), address: v("r-address"), community: v("r-community"), canteen: v("r-canteen"), lone: $("r-lone").checked };
    if (v("r-fname") || v("r-fphone")) body.family = [{ name: v("r-fname"), phone: v("r-fphone"), relation: "家人" }];
    try {
      const e = await api("/api/v1/meals/elders", { body });
      const u = user();
      if (u && u.role === "citizen") {
        await loadElders();
        elder = elders.find((x) => x.id === e.id) || elder;
      }
      $("reg").reset();
      done(true, m("r_done", { n: e.name, id: e.id }), "");
    } catch (e) {
      // The server's words are "中文 / English": the page's language only.
      const t = (e && e.detail) || problemText(e);
      const parts = t.split(" / ");
      regError(parts.length === 2 ? (lang() === "en" ? parts[1] : parts[0]) : t);
    }
  }

  /// Voice input where the browser offers it: the dish whose name was heard.
  function voice() {
    const SR = window.SpeechRecognition || window.webkitSpeechRecognition;
    if (!SR) return;
    const r = new SR();
    r.lang = lang() === "en" ? "en-GB" : "zh-CN";
    r.onresult = (ev) => {
      const heard = ev.results[0][0].transcript.replace(/\s+/g, "");
      $("heard").textContent = m("heard", { t: heard });
      const b = [...document.querySelectorAll("#dishes button")].find((x) => heard.includes(x.dataset.name) || x.dataset.name.includes(heard) || [...x.dataset.name].filter((ch) => heard.includes(ch)).length >= 2);
      if (b) b.click(); else $("heard").textContent = m("not_heard");
    };
    r.onerror = () => { $("heard").textContent = m("not_heard"); };
    r.start();
  }

  /// The first screen's data the server put in the page for the signed-in account, once.
  function firstScreen(u) {
    const island = $("meals-first");
    if (!island) return null;
    island.remove();
    try {
      const d = JSON.parse(island.textContent);
      return d && d.account === u.username && Array.isArray(d.canteens) && Array.isArray(d.elders) ? d : null;
    } catch (e) { return null; }
  }

  async function start() {
    localize();
    $("lang").addEventListener("click", () => { localStorage.setItem("cityos.lang", lang() === "en" ? "zh" : "en"); location.reload(); });
    $("speak").addEventListener("click", speak);
    $("home").addEventListener("click", () => (elder ? home() : registerScreen()));
    $("usual").addEventListener("click", () => order({ usual: true }));
    $("new").addEventListener("click", () => menuScreen("lunch"));
    $("new-breakfast").addEventListener("click", () => menuScreen("breakfast"));
    $("to-register").addEventListener("click", () => registerScreen());
    $("reg").addEventListener("submit", (ev) => { ev.preventDefault(); register(); });
    $("mine").addEventListener("click", () => ordersScreen());
    $("switch").addEventListener("click", () => chooseScreen());
    $("cancel-yes").addEventListener("click", () => cancelIt());
    $("cancel-no").addEventListener("click", () => ordersScreen());
    if (window.SpeechRecognition || window.webkitSpeechRecognition) { $("voice").hidden = false; $("voice").addEventListener("click", voice); }
    const u = user();
    if (!u) { show("s-signin"); return; }
    const registers = ["citizen", "subdistrict_officer", "district_officer"].includes(u.role);
    $("to-register").hidden = !registers;
    if (u.role !== "citizen") {
      if (registers && location.hash === "#register") { await registerScreen(); return; }
      $("h-signin").textContent = m("staff_page"); $("go-signin").href = "/ui/canteen.html"; show("s-signin"); return;
    }
    try {
      // The server renders the canteens and this account's elders into the page (no round
      // trip before the first screen); without them (another account signed in since, an
      // old page), both at once: one round trip.
      const first = firstScreen(u);
      if (first) { canteens = first.canteens; elders = first.elders; } else {
        const [cs] = await Promise.all([api("/api/v1/meals/canteens", { anonymous: true }), loadElders()]);
        canteens = cs.canteens;
      }
    } catch (e) {
      $("h-signin").textContent = problemText(e);
      show("s-signin");
      return;
    }
    if (location.hash === "#register") { await registerScreen(); return; }
    if (!elders.length) {
      $("h-signin").textContent = m("not_registered"); $("signin-text").hidden = true; $("go-signin").hidden = true;
      $("s-signin").append($("to-register"));
      show("s-signin"); return;
    }
    if (elders.length === 1) { elder = elders[0]; await home(true); } else chooseScreen();
  }
  start();
})();
