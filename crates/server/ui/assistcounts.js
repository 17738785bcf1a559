// 救助统计 — the analysts' page: households found, cases, open and enrolled by
// sub-district and policy; any cell under 5 households is shown as "<5".
"use strict";
(async function () {
  const ST = {
    zh: { title: "精准救助统计", intro: "按街道和政策汇总的家庭数；不足 5 户的格子不显示（“<5”），以免识别到具体家庭。", counts: "按街道与政策", export: "导出 CSV",
      subdistrict: "街道", policy: "政策", found: "发现家庭", cases: "已派核实", open: "待核实", enrolled: "已纳入", as_of: "数据截至 {d}", none: "暂无数据", all: "全部政策（户）", district: "全区" },
    en: { title: "Precision assistance counts", intro: "Households by sub-district and policy; any cell under 5 households is not shown (\"<5\"), so no household can be singled out.", counts: "By sub-district and policy", export: "Export CSV",
      subdistrict: "Sub-district", policy: "Policy", found: "Found", cases: "Visits sent", open: "To visit", enrolled: "Enrolled", as_of: "Data as of {d}", none: "No data yet", all: "All policies (households)", district: "District" },
  };
  const s = (k, vars) => { let x = ST[lang()][k] || ST.zh[k] || k; for (const [a, b] of Object.entries(vars || {})) x = x.replace("{" + a + "}", b); return x; };
  const $ = (id) => document.getElementById(id);
  if (!frame("assistcounts", true)) return;
  document.querySelectorAll("[data-s]").forEach((e) => { e.textContent = s(e.dataset.s); });
  try {
    const v = await api("/api/v1/assistance/summary");
    $("asof").textContent = v.as_of ? s("as_of", { d: v.as_of }) : "";
    const cell = (n) => (n === null || n === undefined ? "<5" : String(n));
    const tb = $("rows");
    for (const r of v.rows) {
      const pol = v.policies.find((p) => p.code === r.policy);
      const all = r.policy === "*";
      const sub = r.subdistrict === "*" ? s("district") : r.subdistrict_name;
      tb.append(el("tr", { class: all ? "total" : null }, el("td", { text: sub }), el("td", { text: all ? s("all") : pol ? (lang() === "zh" ? pol.name : pol.name_en) : r.policy }),
        el("td", { text: cell(r.found) }), el("td", { text: cell(r.cases) }), el("td", { text: cell(r.open) }), el("td", { text: cell(r.enrolled) })));
    }
    say($("msg"), v.rows.length ? "" : s("none"), true);
  } catch (e) { say($("msg"), e.message); }
})();
