// 食堂工作台 — canteen and delivery staff: what to cook by dish, the proxy-order desk for
// elders who phone in or walk up, the day's rounds (the driverless vehicle's stops in
// order, departure, each handover or "nobody answered", which opens a welfare check), and
// the day's summary with subsidies by source. Names are masked here; addresses show only
// on the delivery rounds.
"use strict";
(async function () {
  const CT = {
    zh: { register_elder: "登记助餐老人（社区工作人员）", title: "食堂工作台", which: "食堂与日期", canteen: "食堂", date: "日期", meal: "餐次", lunch: "午餐", breakfast: "早餐",
      kitchen: "备餐（按菜品）", kitchen_caption: "截止后按此份数备餐", dish: "菜品", portions: "份数", diets: "饮食要求",
      desk: "代客下单（电话、到店）", find_elder: "助餐编号、手机尾号4位或姓名", find: "查找", round: "取餐方式", pickup: "到店取餐",
      staff: "送餐上门", driverless: "无人车（11:00）", place: "下单", usual: "老样子", order_for: "为 {n} 下单", rounds: "送餐批次",
      summary: "当日汇总", depart: "出发", departed: "已出发 {t}", handed: "已送达", picked: "已取餐", nobody: "无人应答", not_departed: "未出发",
      closed: "已截止", open: "接单中", cutoff: "截止 {t}", total: "共 {n} 份 / 容量 {c}", none: "无", no_match: "没有找到",
      s_orders: "订单", s_portions: "份数", s_served: "已送达/取餐", s_missed: "无人应答", s_cancelled: "已取消", s_paid: "老人自付（元）",
      s_subsidy: "补贴（元）", s_refunded: "退款（元）", ordered: "已下单：{t}", balance: "余额 {y} 元", stop: "第{n}站", welfare: "已转居委会上门探访（{c}）",
      coverage: "各社区助餐覆盖（当日）", coverage_caption: "民生体征按街道和全区汇总；此处细到社区", community: "社区", registered: "登记老人", served_elders: "已用餐老人", late: "超时送达", all: "合计",
      d_low_salt: "少盐", d_soft: "软烂", d_diabetic: "控糖", d_halal: "清真", d_vegetarian: "素食" },
    en: { register_elder: "Register an elder for meals (community workers)", title: "Canteen desk", which: "Canteen and day", canteen: "Canteen", date: "Date", meal: "Meal", lunch: "Lunch", breakfast: "Breakfast",
      kitchen: "To cook (by dish)", kitchen_caption: "Cook these portions after the cut-off", dish: "Dish", portions: "Portions", diets: "Diets",
      desk: "Proxy orders (phone, walk-up)", find_elder: "Elder number, last 4 phone digits or name", find: "Find", round: "How", pickup: "Pick-up",
      staff: "Staff delivery", driverless: "Driverless (11:00)", place: "Place order", usual: "Usual", order_for: "Order for {n}", rounds: "Delivery rounds",
      summary: "The day's summary", depart: "Depart", departed: "Departed {t}", handed: "Handed over", picked: "Picked up", nobody: "Nobody answered", not_departed: "Not departed",
      closed: "closed", open: "open", cutoff: "cut-off {t}", total: "{n} portions / capacity {c}", none: "none", no_match: "No match",
      s_orders: "Orders", s_portions: "Portions", s_served: "Served", s_missed: "Nobody answered", s_cancelled: "Cancelled", s_paid: "Paid by elders (yuan)",
      s_subsidy: "Subsidies (yuan)", s_refunded: "Refunds (yuan)", ordered: "Ordered: {t}", balance: "balance {y} yuan", stop: "Stop {n}", welfare: "Welfare check sent to the residents' committee ({c})" ,
      coverage: "Meal coverage per community (the day)", coverage_caption: "The vital signs sum these per sub-district and for the district; here by community", community: "Community", registered: "Registered elders", served_elders: "Elders served", late: "Delivered late", all: "Total",
      d_low_salt: "low salt", d_soft: "soft", d_diabetic: "diabetic-friendly", d_halal: "halal", d_vegetarian: "vegetarian" },
  };
  const c = (k, vars) => { let s = CT[lang()][k] || CT.zh[k] || k; for (const [a, b] of Object.entries(vars || {})) s = s.replace("{" + a + "}", b); return s; };
  const $ = (id) => document.getElementById(id);
  const yuan = (fen) => (fen / 100).toFixed(2);
  if (!frame("canteen", true)) return;
  document.querySelectorAll("[data-c]").forEach((e) => { e.textContent = c(e.dataset.c); });
  const mine = (await api("/api/v1/meals/my-canteens")).canteens;
  for (const x of mine) $("canteen").append(el("option", { value: x.id, text: x.id + " " + x.name, "data-name": true }));
  $("date").value = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
  const sel = () => ({ canteen: $("canteen").value, date: $("date").value, meal: $("meal").value });
  let deskElder = null;
  let deskKey = null;

  async function kitchen() {
    const s = sel();
    const k = await api(`/api/v1/meals/canteens/${encodeURIComponent(s.canteen)}/kitchen?date=${s.date}&meal=${s.meal}`);
    $("k-info").textContent = c("total", { n: k.portions, c: k.capacity }) + " · " + c("cutoff", { t: fmtTime(k.cutoff) }) + " · " + (k.closed ? c("closed") : c("open"));
    const tb = $("k-rows");
    tb.textContent = "";
    for (const d of k.dishes) tb.append(el("tr", {}, el("td", { text: d.name }), el("td", { text: String(d.portions) }), el("td", { text: d.diets.map((x) => CT[lang()]["d_" + x] || x).join(lang() === "zh" ? "、" : ", ") || c("none") })));
  }

  async function rounds() {
    const s = sel();
    const r = await api(`/api/v1/meals/canteens/${encodeURIComponent(s.canteen)}/rounds?date=${s.date}`);
    const box = $("rounds");
    box.textContent = "";
    for (const round of r.rounds) {
      const h = el("h3", {}, c(round.round) + " · " + (round.departed_at ? c("departed", { t: fmtTime(round.departed_at) }) : (round.round === "pickup" ? "" : c("not_departed"))));
      box.append(h);
      if (round.round !== "pickup" && !round.departed_at && round.stops.length) {
        box.append(el("button", { type: "button", class: "secondary", "data-depart": round.round, text: c("depart"), onclick: async () => {
          try { await api(`/api/v1/meals/canteens/${encodeURIComponent(s.canteen)}/rounds/${round.round}/depart`, { body: { date: s.date } }); await refresh(); } catch (e) { say($("r-msg"), e.message); }
        } }));
      }
      const ol = el("ol", { class: "plain" });
      for (const st of round.stops) {
        const li = el("li", { "data-order": st.order }, el("span", { text: c("stop", { n: st.stop }) + " · " + st.elder + " " + (st.name || "") + (st.address ? " · " + st.address : "") + " · " + st.dishes.join("、") + " · " + st.state }));
        const can = (round.round === "pickup" && st.state === "placed") || st.state === "out_for_delivery";
        if (can) {
          li.append(" ", el("button", { type: "button", class: "secondary", "data-hand": "yes", text: round.round === "pickup" ? c("picked") : c("handed"), onclick: () => hand(st.order, true) }));
          if (round.round !== "pickup") li.append(" ", el("button", { type: "button", class: "secondary", "data-hand": "no", text: c("nobody"), onclick: () => hand(st.order, false) }));
        }
        ol.append(li);
      }
      box.append(ol);
    }
  }

  async function hand(order, handed) {
    try {
      const o = await api(`/api/v1/meals/orders/${encodeURIComponent(order)}/handover`, { body: { handed } });
      if (!handed) say($("r-msg"), c("welfare", { c: o.id }), true);
      await refresh();
    } catch (e) { say($("r-msg"), e.message); }
  }

  async function summary() {
    const s = sel();
    const v = await api(`/api/v1/meals/summary?date=${s.date}&canteen=${encodeURIComponent(s.canteen)}`);
    const dl = $("summary");
    dl.textContent = "";
    const t = v.total;
    for (const [k, val] of [["s_orders", t.orders], ["s_portions", t.portions], ["s_served", t.served], ["s_missed", t.not_handed_over], ["s_cancelled", t.cancelled], ["s_paid", yuan(t.paid_fen)], ["s_subsidy", yuan(t.subsidy_fen)], ["s_refunded", yuan(t.refunded_fen)]]) {
      dl.append(el("dt", { text: c(k) }), el("dd", { text: String(val) }));
    }
    for (const [src, fen] of Object.entries(t.subsidy_by_source || {})) dl.append(el("dt", { text: c("s_subsidy") + " · " + src }), el("dd", { text: yuan(fen) }));
  }

  async function coverage() {
    const v = await api(`/api/v1/meals/coverage?date=${sel().date}`);
    const tb = $("cov-rows");
    tb.textContent = "";
    const row = (name, r, head) => el("tr", {}, el(head ? "th" : "td", head ? { scope: "row", text: name } : { text: name }), ...[r.registered, r.served, r.late, r.not_handed_over].map((n) => el("td", { text: String(n) })));
    for (const r of v.communities) tb.append(row(lang() === "en" ? r.name_en : r.name, r));
    tb.append(row(c("all"), v.total, true));
  }

  async function refresh() {
    if (!$("canteen").value) return;
    try { await Promise.all([kitchen(), rounds(), summary(), coverage()]); say($("msg"), ""); } catch (e) { say($("msg"), e.message); }
  }

  $("find").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = await api("/api/v1/meals/elders?q=" + encodeURIComponent($("q").value.trim()));
    const ul = $("found");
    ul.textContent = "";
    if (!v.elders.length) ul.append(el("li", { text: c("no_match") }));
    for (const e of v.elders) {
      const li = el("li", {}, el("span", { text: e.id + " " + e.name + " " + e.phone + " · " + c("balance", { y: yuan(e.balance_fen) }) + " " }));
      if (e.usual) li.append(el("button", { type: "button", class: "secondary", text: c("usual"), onclick: () => place(e, { usual: true }) }));
      li.append(" ", el("button", { type: "button", class: "secondary", text: c("place"), onclick: () => deskFor(e) }));
      ul.append(li);
    }
  });

  async function deskFor(e) {
    deskElder = e;
    deskKey = newKey();
    const s = sel();
    const menu = await api(`/api/v1/meals/canteens/${encodeURIComponent(s.canteen)}/menu?date=${s.date}`, { anonymous: true });
    const meal = (menu.meals || []).find((x) => x.meal === s.meal);
    $("dish").textContent = "";
    for (const d of meal ? meal.dishes : []) $("dish").append(el("option", { value: d.id, text: d.name + " " + yuan(d.price_fen) }));
    $("h-desk-order").textContent = c("order_for", { n: e.id + " " + e.name });
    $("desk-order").hidden = false;
    $("dish").focus();
  }

  async function place(e, body) {
    try {
      const s = sel();
      const o = await api("/api/v1/meals/orders", { body: Object.assign({ elder: e.id, key: deskKey || newKey() }, body.usual ? { usual: true } : Object.assign({ canteen: s.canteen, date: s.date, meal: s.meal }, body)) });
      say($("desk-msg"), c("ordered", { t: lang() === "en" ? o.say_en : o.say_zh }), true);
      deskKey = null;
      $("desk-order").hidden = true;
      await refresh();
    } catch (err) { say($("desk-msg"), err.message); }
  }

  $("desk-order").addEventListener("submit", (ev) => { ev.preventDefault(); place(deskElder, { lines: [{ dish: $("dish").value, qty: 1 }], round: $("round").value }); });
  for (const id of ["canteen", "date", "meal"]) $(id).addEventListener("change", refresh);
  await refresh();
})();
