// 精准救助 — the assistance adviser's page (社区救助顾问): the households the livelihood
// data pool found for policies they do not receive, masked; one household's explanation
// (members by position, relation and age; each condition with the facts, their source and
// import); its personal data opened only with a stated purpose (audited); the visit's
// outcome recorded.
"use strict";
(async function () {
  const AT = {
    zh: { title: "精准救助 · 政策找人", intro: "数据池发现的可能符合政策但尚未享受的家庭。列表中的个人信息已脱敏；查看姓名、证件号与住址须说明用途，每次查看都会记入审计。",
      list: "待上门核实的家庭", show: "显示", open_only: "待核实", closed_only: "已记录结果", all: "全部", export: "导出（脱敏）", caption: "按困难程度排序",
      number: "案件号", policies: "政策", where: "社区", hardship: "困难程度", head: "户主（脱敏）", due: "上门期限", outcome: "结果",
      members: "家庭成员（按位置、关系、年龄）", why: "为什么找到这户", open_personal: "查看个人信息", purpose: "查看目的（必填，4–200 字，记入审计）",
      open_btn: "说明用途并查看", pos: "位置", name: "姓名", id_number: "证件号", address: "住址", visit: "记录上门结果", reason: "原因（不符合时必填）",
      note: "备注", record: "记录并结案", o_enrolled: "已纳入救助", o_not_eligible: "经核实不符合", o_declined: "本人拒绝", o_unreachable: "无法联系",
      h_high: "高", h_medium: "中", h_low: "低", household: "住户", score: "困难分", none: "暂无", holds: "成立", not_holds: "不成立", rule_out: "排除条件",
      source: "来源", separated: "人户分离的成员", conflict: "来源不一致", member: "成员{n}", age: "{a}岁", audited: "已记入审计（第 {n} 条）", masked: "你的角色只能看到脱敏信息", lapsed: "查看期限已过（个案已办结或住户已迁出本街道），仅显示脱敏信息",
      recorded: "已记录：{o}", pending: "待核实", open: "打开", r_head: "户主", r_spouse: "配偶", r_child: "子女", r_parent: "父母", r_grandchild: "孙辈", r_other: "其他" },
    en: { title: "Precision assistance · the policy finds the person", intro: "Households the data pool found that may qualify for a policy they do not receive. Personal data is masked in the list; opening names, ID numbers and addresses needs a stated purpose, and every view is audited.",
      list: "Households to visit", show: "Show", open_only: "To visit", closed_only: "Visited", all: "All", export: "Export (masked)", caption: "Hardest first",
      number: "Case", policies: "Policies", where: "Community", hardship: "Hardship", head: "Head (masked)", due: "Visit by", outcome: "Outcome",
      members: "Members (by position, relation, age)", why: "Why this household", open_personal: "Open personal data", purpose: "Purpose (required, 4–200 characters, audited)",
      open_btn: "State purpose and open", pos: "Position", name: "Name", id_number: "ID number", address: "Address", visit: "Record the home visit", reason: "Reason (required when not eligible)",
      note: "Note", record: "Record and close", o_enrolled: "Enrolled", o_not_eligible: "Not eligible", o_declined: "Declined", o_unreachable: "Could not reach",
      h_high: "high", h_medium: "medium", h_low: "low", household: "Household", score: "Score", none: "none", holds: "holds", not_holds: "does not hold", rule_out: "Would rule it out",
      source: "Source", separated: "Members registered elsewhere (人户分离)", conflict: "Sources disagree", member: "member {n}", age: "{a} years", audited: "Written to the audit trail (entry {n})", masked: "Your role sees masked values only", lapsed: "The view has lapsed (the case is closed or the household moved away): masked values only",
      recorded: "Recorded: {o}", pending: "to visit", open: "Open", r_head: "head", r_spouse: "spouse", r_child: "child", r_parent: "parent", r_grandchild: "grandchild", r_other: "other" },
  };
  const a = (k, vars) => { let s = AT[lang()][k] || AT.zh[k] || k; for (const [x, y] of Object.entries(vars || {})) s = s.replace("{" + x + "}", y); return s; };
  const $ = (id) => document.getElementById(id);
  if (!frame("assistance", true)) return;
  document.querySelectorAll("[data-a]").forEach((e) => { e.textContent = a(e.dataset.a); });
  let current = null;

  const memberText = (m) => m ? a("member", { n: m.index + 1 }) + (m.relation ? "（" + a("r_" + m.relation) + "）" : "") + (m.age !== null && m.age !== undefined ? " " + a("age", { a: m.age }) : "") : a("household");

  async function load() {
    const open = $("open").value;
    try {
      const v = await api("/api/v1/assistance/cases" + (open ? "?open=" + open : ""));
      const tb = $("rows");
      tb.textContent = "";
      for (const c of v.cases) {
        const btn = el("button", { type: "button", class: "secondary", text: c.number, "aria-label": a("open") + " " + c.number, onclick: () => show(c.number) });
        tb.append(el("tr", {}, el("td", {}, btn), el("td", { text: (lang() === "zh" ? c.policy_names : c.policies).join("、") }),
          el("td", { text: c.subdistrict_name + " " + c.community_name }), el("td", { text: a("h_" + c.hardship) + " · " + c.score }),
          el("td", { text: (c.head_name || "") + " " + (c.address || "") }), el("td", { text: fmtTime(c.visit_by) }),
          el("td", { text: c.outcome ? (lang() === "zh" ? c.outcome_zh : c.outcome) : a("pending") })));
      }
      say($("msg"), v.cases.length ? "" : a("none"), true);
    } catch (e) { say($("msg"), e.message); }
  }

  async function show(number) {
    current = number;
    const c = await api("/api/v1/assistance/cases/" + encodeURIComponent(number));
    $("detail").hidden = false;
    $("h-detail").textContent = a("household") + " " + c.household + " · " + c.number;
    const f = $("facts");
    f.textContent = "";
    const fact = (k, v) => { f.append(el("dt", { text: a(k) }), el("dd", { text: v })); };
    fact("policies", (lang() === "zh" ? c.policy_names : c.policies).join("、"));
    fact("where", c.subdistrict_name + " " + c.community_name);
    fact("hardship", a("h_" + c.hardship) + " · " + a("score") + " " + c.score);
    fact("due", fmtTime(c.visit_by));
    if (c.visit) fact("outcome", (lang() === "zh" ? c.visit.outcome_zh : c.visit.outcome) + (c.visit.reason ? "（" + c.visit.reason + "）" : ""));
    const ul = $("members");
    ul.textContent = "";
    for (const m of c.member_list) ul.append(el("li", { text: a("member", { n: m.position }) + (m.relation ? "（" + a("r_" + m.relation) + "）" : "") + (m.age !== null ? " " + a("age", { a: m.age }) : "") }));
    const why = $("why");
    why.textContent = "";
    for (const x of c.explanations) {
      why.append(el("h4", { text: x.name + " (" + x.policy + ")" }));
      const list = el("ul", { class: "plain" });
      for (const cl of x.when) {
        const facts = cl.facts.map((q) => memberText(q.member) + " " + q.title + " = " + q.value + (q.source ? " · " + a("source") + "：" + q.source_title + "（" + q.owner + "，" + q.import + "）" : "")).join("；");
        list.append(el("li", { text: (cl.holds ? "✔ " : "✘ ") + cl.text + " — " + (cl.holds ? a("holds") : a("not_holds")) + (facts ? "：" + facts : "") }));
      }
      why.append(list);
      if (x.rule_out.length) {
        why.append(el("p", { class: "hint", text: a("rule_out") + "：" + x.rule_out.map((r) => r.text + "（" + (r.holds ? a("holds") : a("not_holds")) + "）").join("；") }));
      }
      if (x.separated.length) why.append(el("p", { text: a("separated") + "：" + x.separated.map(memberText).join("、") }));
      if (x.conflicts.length) why.append(el("p", { text: a("conflict") + "：" + x.conflicts.map((k) => memberText(k.member) + " " + k.field + " " + k.kept.value + "（" + k.kept.source + "）≠ " + k.overruled.map((o) => o.value + "（" + o.source + "）").join("、")).join("；") }));
    }
    $("open-form").hidden = !c.may_open;
    $("visit-form").hidden = !c.may_open || !!c.visit;
    $("personal-wrap").hidden = true;
    say($("open-msg"), c.may_open ? "" : a("masked"));
    say($("visit-msg"), "");
    $("h-detail").focus && $("detail").scrollIntoView();
  }

  $("open-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const v = await api("/api/v1/assistance/cases/" + encodeURIComponent(current) + "/personal?purpose=" + encodeURIComponent($("purpose").value));
      const tb = $("personal");
      tb.textContent = "";
      for (const m of v.members) tb.append(el("tr", {}, el("td", { text: String(m.position) }), el("td", { text: m.name }), el("td", { text: m.id_number }), el("td", { text: m.address })));
      $("personal-wrap").hidden = false;
      say($("open-msg"), v.lapsed ? a("lapsed") : v.masked ? a("masked") : a("audited", { n: v.audit_seq }), true);
    } catch (err) { say($("open-msg"), err.message); }
  });

  $("visit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const v = await api("/api/v1/assistance/cases/" + encodeURIComponent(current) + "/visit", { body: { outcome: $("outcome").value, reason: $("reason").value, note: $("note").value } });
      say($("visit-msg"), a("recorded", { o: lang() === "zh" ? v.outcome_zh : v.outcome }), true);
      $("visit-form").hidden = true;
      await load();
    } catch (err) { say($("visit-msg"), err.message); }
  });

  $("open").addEventListener("change", load);
  await load();
})();
