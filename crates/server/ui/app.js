// cityos — shared by every page: the two languages, the signed-in user, API calls with
// problem messages in the user's language, per-role navigation, small helpers.
// Text from people (reports, notes, names) is only ever set with textContent.
"use strict";

const I18N = {
  zh: {
    // One language at a time (issue 21): states, task states, channels, actors, machine log notes, units.
    st_reported: "待立案", st_filed: "待派遣", st_rejected: "不予立案", st_merged: "已合并", st_dispatched: "待签收", st_acknowledged: "已签收", st_in_progress: "处置中", st_handled: "待核查", st_rework: "返工", st_verified: "待结案", st_closed: "已结案", st_evaluated: "已评价", st_returned: "已退单", st_suspended: "挂账",
    ts_dispatched: "待签收", ts_acknowledged: "已签收", ts_in_progress: "处置中", ts_handled: "已处置", ts_returned: "已退单",
    ch_citizen: "市民", ch_inspector: "巡查", ch_sensor: "感知设备", ch_data: "数据", ch_staff: "工作人员", ch_open311: "市民（Open311）", ch_hotline: "热线",
    actor_system: "系统", actor_intake: "{channel}上报", actor_live: "实时演示 · {who}", actor_staff: "工作人员", actor_officer: "值班员", actor_inspector: "网格巡查员",
    n_withheld: "（备注不在大屏显示）", n_new_case: "新案件", n_routed: "派至 {depts}", n_smart: "智能分拨：{reason}", n_auto_trusted: "自动处理：可信渠道",
    n_merged: "合并：同类「{cat}」，距最近上报 {m} 米（{h} 小时前）；合并范围 {r} 米、{w} 小时",
    n_absorbed: "并入案件 {number} 的上报", n_split: "由案件 {number} 拆分（{who}）", n_escalated: "自 {since} 超期：升级至 {to}（第 {rung} 级）",
    "n_已签收": "已签收", "n_现场核查已处置": "现场核查已处置", "n_实时演示": "实时演示",
    domain_all: "全部领域", region_all: "全区", district_name: "徐汇区",
    map_keys: "键盘：方向键移动地图，+ / − 缩放，回车选定十字准星处的位置。", map_cluster: "{n} 件案件，按回车放大", map_find: "按地名查找（街道、居委、地铁站、地标、道路）", map_found: "已定位：{name}", map_not_found: "未找到该地名", near_place: "{name}附近",
    gps_denied: "未获得定位权限：请在地图上点选，或按地名查找。", gps_unavailable: "无法获取位置：请在地图上点选，或按地名查找。", gps_timeout: "定位超时：请在地图上点选，或按地名查找。", gps_none: "此浏览器不支持定位：请在地图上点选，或按地名查找。",
    d_routing: "派单规则的选择与依据", d_reason: "{role}：{name} — {line} 条线，{level}", d_returned: "{name} 已退单。", d_next: "推荐下一候选：{name}。", lvl_district: "区级", lvl_subdistrict: "街道级", lvl_community: "居委级", lvl_grid: "网格",
    feed_pause: "暂停", feed_resume: "继续", feed_summary_btn: "朗读摘要", feed_held: "暂停中：{n} 条新动态待显示", feed_summary: "实时动态共 {n} 条，暂停待显示 {held} 条。", feed_latest: "最新：",
    firing_alerts: "触发中的告警", vs_up: "较昨日同期 ▲ {n}", vs_down: "较昨日同期 ▼ {n}", vs_same: "与昨日同期持平", vs_up_sr: "比昨日同期增加 {n}", vs_down_sr: "比昨日同期减少 {n}", u_pp: "个百分点",
    storage_full: "手机存储空间已满：这条上报没有保存，请删除一些照片或联网后再提交（表单内容仍在）。", storage_failed: "无法保存到本机：", signout_drops_queue: "还有离线待发送的上报。退出后，这部手机上的待发送内容将被删除。确定退出？",
    ar_district_officer: "区城运中心值班长", ar_subdistrict_officer: "街道城运中心", ar_handler: "处置人员", ar_inspector: "网格监督员", ar_analyst: "分析人员", ar_admin: "系统管理员", ar_citizen: "市民", ar_system: "系统",
    lc_min5: "5 分钟", lc_min10: "10 分钟", lc_min15: "15 分钟",
    u_cases: "件", u_times: "次", expected_done: "预计完成", step_due: "本环节时限", photos: "照片（可选，最多 9 张）", photos_n: "已选 {n} 张照片", photo_failed: "照片未能上传：", speak_step: "朗读第 {n} 步", speak_status: "朗读进度",
    elder_mode: "长辈版", read_aloud: "朗读", copy_number: "复制编号", follow_link: "查看进度", copied: "已复制",
    f_to_file: "待立案 / 待派遣", f_working: "处置中", f_to_verify: "待核查", f_to_close: "待结案", f_closed: "已结案", f_overdue_only: "仅超期",
    brand: "城运 cityos", signin: "登录", signout: "退出", username: "用户名", password: "密码",
    lang: "English", nav_centre: "指挥中心", nav_cases: "案件", nav_inbox: "待办", nav_vitals: "体征",
    nav_inspector: "巡查", nav_citizen: "市民", skip: "跳到正文", wall: "大屏模式",
    centre: "指挥中心", today_new: "今日新增", today_closed: "已结案（今日）", on_time: "按时处置率",
    overdue: "超期", escalations: "升级", open_cases: "在办案件", live_feed: "实时动态",
    hot_topics: "热点问题", ht_hint: "近 7 天市民诉求按文本与地点聚类，按条数排序", ht_count: "条诉求", ht_cases: "件案件",
    ht_last: "最近", ht_none: "近 7 天暂无热点问题", ht_samples: "案件",
    vital_signs: "城运体征", map: "地图", zoom_in: "放大", zoom_out: "缩小", reset: "复位",
    level_subdistrict: "街道", level_community: "居委", level_grid: "网格",
    d_safety: "大平安", d_construction: "大建管", d_market: "大市场", d_livelihood: "大民生",
    l_normal: "正常", l_blue: "蓝色", l_yellow: "黄色", l_orange: "橙色", l_red: "红色",
    cases: "案件", filters: "筛选", state: "状态", domain: "领域", region: "区域", text: "关键词",
    search: "查询", number: "编号", title: "标题", priority: "优先级", due: "时限", more: "更多",
    all: "全部", inbox: "我的待办", none: "暂无", loading: "加载中…",
    case_page: "案件详情", timeline: "处置过程", tasks: "任务与部门", deadlines: "时限",
    reporters: "上报人", photos: "照片", actions: "可执行操作", note: "说明", time_left: "剩余时间",
    overdue_by: "已超期", do_action: "执行", done: "已完成",
    a_file: "立案", a_reject: "不予立案", a_dispatch: "派遣", a_acknowledge: "签收", a_start: "开始处置",
    a_handle: "处置反馈", a_return: "退单", a_request_postponement: "申请延期",
    a_grant_postponement: "同意延期", a_refuse_postponement: "不同意延期", a_verify: "核查通过",
    a_reject_verification: "核查不通过", a_close: "结案", a_evaluate: "评价", a_suspend: "挂账",
    a_resume: "恢复", a_reopen: "重新立案", a_split: "拆分", a_note: "备注", a_tick: "清单完成",
    a_report: "新上报", a_escalate: "超期升级", a_merge_report: "合并上报", a_absorb: "并案", a_merge: "合并",
    extra_hours: "延期时长（小时）", score: "满意度（1–5）", report_id: "要拆出的上报编号",
    vitals: "城运体征", history: "历史曲线", thresholds: "阈值", alerts: "告警", silences: "静默",
    firing: "触发中", pending: "待定", silence_it: "静默", reason: "原因", duration: "时长",
    end_silence: "结束静默", silenced: "已静默", inhibited: "已抑制",
    inspector: "巡查上报", report: "上报问题", category: "问题类别", photo: "照片", locate_me: "获取我的位置",
    position: "位置", describe: "问题描述", send: "提交", my_verifications: "待我核查",
    verify_ok: "核查通过", verify_bad: "核查不通过", offline_queue: "离线待发送",
    offline: "当前离线：上报会保存在本机，联网后自动发送。", queued: "已保存，联网后发送",
    sent: "已提交", citizen: "市民服务", citizen_intro: "发现城市问题？三步上报：选类别、点地图定位、描述问题。",
    pick_on_map: "在地图上点选位置", address: "地址（可选）", contact: "联系电话（可选）",
    your_number: "您的案件编号", follow: "查询进度", follow_hint: "输入案件编号查看进度",
    rate: "评价处置结果", comment: "留言（可选）", thanks: "感谢您的评价",
    deadline: "预计完成", status: "当前状态", need_category: "请选择问题类别", need_place: "请在地图上点选位置",
    unsure_category: "不确定类别，直接描述", unsure_hint: "请在描述中写明问题和地点（如小区、路名），系统将转相关部门或人工分拨",
    need_text: "请描述问题", need_photo: "请拍照或选择照片", need_number: "请输入案件编号",
    no_access: "此账号无权访问该页面", signed_in_as: "当前用户",
    stage_waiting: "待派遣", stage_working: "处置中", stage_checking: "待核查/待结案", stage_overdue: "黑边：超期",
    network: "网络不可用", no_report_token: "只有报告人可以评价（请在提交问题的浏览器中评价）",
    nav_catalogue: "数据目录",
    catalogue: "数据目录", cat_search: "查找数据", cat_q: "关键词", cat_kind: "类型", cat_find: "查找", kind_all: "全部", kind_dataset: "数据集", kind_indicator: "体征指标", kind_device_feed: "设备数据", kind_export: "对外输出", cat_entries: "目录", cat_name: "名称", cat_level: "敏感级别", cat_fresh: "更新", cat_quality: "数据质量", cat_schema: "字段与敏感级别", cat_column: "字段", cat_type: "类型", cat_lineage: "数据血缘（谁在使用）", cat_rows: "数据预览（按授权脱敏）", cat_show_rows: "查看数据", cat_ask: "申请共享授权", cat_ask_cols: "申请的字段", cat_purpose: "用途", cat_until: "有效期至", cat_unmask: "需要查看未脱敏的个人信息", cat_ask_submit: "提交申请", cat_grants: "共享授权", cat_consumer: "使用方", cat_asked: "申请已提交，等待数据所有方审批", lv_public: "公开", lv_internal: "内部", lv_sensitive: "敏感", lv_sensitive_personal: "个人敏感", lv_restricted: "受限", q_ok: "正常", q_stale: "未按时更新", q_incomplete: "不完整", q_stale_incomplete: "过期且不完整", q_missing: "未导入", g_requested: "待审批", g_approved: "已授权", g_refused: "已拒绝", g_revoked: "已撤销", g_expired: "已过期", g_approve: "批准", g_refuse: "拒绝", g_revoke: "撤销", g_reason: "原因", ln_indicators: "体征指标", ln_scenarios: "应用场景", ln_alert_rules: "预警规则", ln_alarm_rules: "设备告警规则", ln_reads: "读取", rows_basis: "依据", b_owner: "数据所有方", b_oversight: "监督（个人信息已脱敏）", b_grant: "共享授权", rows_total: "共", every: "更新频率", imported_at: "最近导入", row_count: "行数",
    nav_scenarios: "场景", scenarios: "应用场景", packs: "场景包", pack: "场景包", pack_status: "状态",
    s_enabled: "启用", s_disabled: "停用", enable: "启用", disable: "停用", owner: "责任部门", version: "版本",
    origin: "来源", o_embedded: "内置", o_directory: "目录文件", o_reload: "在线重载", loaded_at: "加载时间",
    refused_problems: "上次重载被拒绝的问题", playbook: "处置预案", lead: "牵头部门", joint: "联勤联动部门",
    notify: "通知", cap: "CAP 预警", cap_none: "不发布", cap_from: "起发布级别", stand_down: "解除条件",
    stand_down_after: "条件持续消失后解除", step_deadlines: "各环节时限", checklist: "处置清单",
    reload: "重载场景包", pack_text: "场景包文本（TOML）", reload_hint: "修改后须提升版本号；有误的场景包会被拒绝，当前版本继续运行。",
    reload_submit: "校验并重载", reloaded: "已重载", audit: "变更记录", actor: "操作人", action: "操作",
    result: "结果", ok: "成功", refused: "被拒绝", au_enable: "启用", au_disable: "停用", au_reload: "重载",
    hits: "最近命中", hit_count: "命中次数", last_hit: "最近命中",
    k_hit: "命中", k_repeat: "重复", k_stand_down: "解除",
    scenario: "场景", go_to_line: "跳到该行", at: "时间",
    seconds: "秒", minutes: "分钟", hours: "小时", tick: "完成", ticked_by: "完成人", done_at: "完成于",
    hits_map: "命中地图", p_urgent: "紧急", p_high: "高", p_normal: "一般", p_low: "低",
    u_m: "分钟", u_h: "小时", u_d: "天", u_wh: "工作小时", u_wd: "工作日",
    nav_evaluation: "考核", evaluation: "考核评价", ev_query: "考核周期与范围", ev_period: "考核周期", ev_period_hint: "如 2026-11（月）、2026-W45（周）、2026-Q4（季度）、2026-11-05（日）、2026-11-01..2026-11-15（自定义）", ev_dimension: "考核对象", ev_dim_department: "部门", ev_dim_subdistrict: "街道", ev_dim_community: "社区", ev_dim_category: "类别", ev_dim_domain: "领域", ev_show: "查看", ev_xlsx: "导出 Excel", ev_csv: "导出 CSV", ev_html: "打印版", ev_lists: "红黑榜", ev_red: "红榜", ev_black: "黑榜", ev_ranking: "排名", ev_trend: "趋势", ev_explain: "得分说明", ev_measure: "指标", ev_kind: "计分", ev_value: "数值", ev_samples: "样本", ev_points: "得分", ev_note: "说明", ev_drill: "背后的案件", ev_drill_hint: "点击指标数值查看计入的每一件案件。", ev_saved: "月度报告", ev_definitions: "指标定义", ev_none: "暂无", ev_rank: "排名", ev_unit: "单位", ev_class: "类别组", ev_score: "得分", ev_list: "榜单", ev_all: "全部", ev_other: "其他", ev_cases: "案件数", ev_cases_n: "件", ev_weight: "权重", ev_deduction: "扣分", ev_yes: "计为是", ev_no: "计为否",
    nav_canteen: "食堂", nav_meals: "助餐", nav_triage: "待分拨", triage: "待分拨", triage_queue: "待分拨诉求", triage_keys: "键盘：j / k 或 ↑ / ↓ 切换诉求；Enter 或 1 采纳首选建议，2 / 3 采纳其他建议；c 选择其他类别。", triage_empty: "待分拨诉求已全部分拨", pick_category: "选择类别", find_category: "查找类别", do_classify: "分拨", cancel: "取消", classified: "已分拨", suggestions: "模型建议", no_suggestion: "无模型建议", other_category: "其他类别…", places_named: "文中地点", urgency_cues: "紧急线索", model_reason: "建议依据", a_classify: "分拨",
    nav_lifecircle: "生活圈", lifecircle: "15分钟社区生活圈", lc_method: "步行时间算法", lc_type: "服务类型", lc_ring: "步行圈（分钟）", lc_map: "覆盖地图（网格）", lc_click: "点击地图查看所在社区的生活圈卡片，并作为备选设施位置。", lc_approx: "社区与网格边界为近似生成", lc_summary: "全区覆盖（人口占比）", lc_target: "目标圈", lc_facilities: "设施数", lc_card: "社区生活圈卡片", lc_card_hint: "在地图上点击一个位置，或在缺口列表中选择社区。", lc_gaps: "缺口社区", lc_gaps_hint: "未达到所选步行圈的社区（过半居民不可达），按缺口人口排序。", lc_whatif: "选址推演", lc_cand_hint: "点击地图放置一处所选类型的备选设施。", lc_try: "评估备选设施", lc_k: "推荐个数", lc_suggest: "推荐最佳选址", lc_l_quick: "{r} 分钟内", lc_l_ok: "{r} 分钟内（所选圈）", lc_l_beyond: "超出 {r} 分钟、15 分钟内", lc_l_none: "15 分钟内无", lc_l_facility: "设施", lc_l_candidate: "备选/推荐位置", lc_over15: "15 分钟内无", lc_site: "推荐位置", lc_candidate: "备选设施", lc_share: "{type}：{ring} 分钟步行可达人口 {share}（{n} 人）", lc_without: "{n} 人不可达（可达 {share}）", lc_more_gaps: "另有 {n} 个社区", lc_people: "估算人口 {n} 人", lc_met: "达标", lc_missing: "缺", lc_nearest: "最近设施", lc_missing_list: "缺少", lc_cand_at: "备选{type}位置", lc_gainers: "新增可达", lc_people_unit: "人",
    lc_upload: "导入设施", lc_upload_hint: "CSV 表头 id,type,name,lon,lat（可加 hours）或 GeoJSON；任何一行有误则整批拒绝并逐行说明。", lc_upload_name: "名称", lc_upload_name_hint: "小写字母、数字、_ 或 -，同名则替换", lc_upload_file: "文件", lc_upload_submit: "导入", lc_upload_need: "请填写名称（小写字母、数字、_ 或 -）并选择文件", lc_uploaded: "已导入 {n} 处设施，覆盖已重新计算",
    nav_assistance: "精准救助", nav_assistcounts: "救助统计",
  },
  en: {
    // One language at a time (issue 21): states, task states, channels, actors, machine log notes, units.
    st_reported: "Reported", st_filed: "Filed, to dispatch", st_rejected: "Rejected", st_merged: "Merged", st_dispatched: "Dispatched", st_acknowledged: "Acknowledged", st_in_progress: "In progress", st_handled: "Handled, to verify", st_rework: "Rework", st_verified: "Verified, to close", st_closed: "Closed", st_evaluated: "Evaluated", st_returned: "Returned", st_suspended: "Suspended",
    ts_dispatched: "Dispatched", ts_acknowledged: "Acknowledged", ts_in_progress: "In progress", ts_handled: "Handled", ts_returned: "Returned",
    ch_citizen: "Citizen", ch_inspector: "Inspector", ch_sensor: "Sensor", ch_data: "Data", ch_staff: "Staff", ch_open311: "Citizen (Open311)", ch_hotline: "Hotline",
    actor_system: "System", actor_intake: "{channel} intake", actor_live: "Live demo · {who}", actor_staff: "Staff", actor_officer: "Duty officer", actor_inspector: "Grid inspector",
    n_withheld: "(note not shown on the wall)", n_new_case: "New case", n_routed: "routed to {depts}", n_smart: "suggested category: {reason}", n_auto_trusted: "Automatic: trusted channel",
    n_merged: "Merged: same category “{cat}”, {m} m from the latest report ({h} h ago); merge radius {r} m, window {w} h",
    n_absorbed: "Took over the reports of case {number}", n_split: "Split from case {number} ({who})", n_escalated: "Overdue since {since}: escalated to {to} (rung {rung})",
    "n_已签收": "Acknowledged", "n_现场核查已处置": "Checked on site: handled", "n_实时演示": "Live demo",
    domain_all: "All domains", region_all: "Whole district", district_name: "Xuhui District",
    map_keys: "Keyboard: arrows move the map, + / − zoom, Enter picks the point under the cross-hair.", map_cluster: "{n} cases; press Enter to zoom in", map_find: "Find by name (sub-district, community, metro station, landmark, road)", map_found: "Placed at {name}", map_not_found: "No place of that name", near_place: "near {name}",
    gps_denied: "Location permission refused: pick the place on the map or find it by name.", gps_unavailable: "The position is not available: pick the place on the map or find it by name.", gps_timeout: "Locating took too long: pick the place on the map or find it by name.", gps_none: "This browser cannot locate: pick the place on the map or find it by name.",
    d_routing: "What routing would choose, and why", d_reason: "{role}: {name} — the {line} line, {level}", d_returned: "{name} returned the case.", d_next: "Next candidate: {name}.", lvl_district: "district level", lvl_subdistrict: "sub-district level", lvl_community: "community level", lvl_grid: "grid",
    feed_pause: "Pause", feed_resume: "Resume", feed_summary_btn: "Read a summary", feed_held: "Paused: {n} new events waiting", feed_summary: "{n} events in the feed, {held} held while paused.", feed_latest: "Latest:",
    firing_alerts: "Firing alerts", vs_up: "▲ {n} on yesterday by this time", vs_down: "▼ {n} on yesterday by this time", vs_same: "as many as yesterday by this time", vs_up_sr: "up {n} on yesterday by this time", vs_down_sr: "down {n} on yesterday by this time", u_pp: "percentage points",
    storage_full: "The phone's storage is full: this report was not saved. Free some space or send it when online (the form keeps its content).", storage_failed: "Could not save on this phone:", signout_drops_queue: "Some reports are still waiting to be sent. Signing out deletes them from this phone. Sign out anyway?",
    ar_district_officer: "District duty officer", ar_subdistrict_officer: "Sub-district centre", ar_handler: "Handler", ar_inspector: "Grid inspector", ar_analyst: "Analyst", ar_admin: "Administrator", ar_citizen: "Citizen", ar_system: "System",
    lc_min5: "5 min", lc_min10: "10 min", lc_min15: "15 min",
    u_cases: "cases", u_times: "times", expected_done: "Expected to be done by", step_due: "This step due by", photos: "Photos (optional, up to 9)", photos_n: "{n} photos chosen", photo_failed: "A photo could not be sent:", speak_step: "Read step {n} aloud", speak_status: "Read the progress aloud",
    elder_mode: "Larger text", read_aloud: "Read aloud", copy_number: "Copy the number", follow_link: "Follow its progress", copied: "Copied",
    f_to_file: "To file or dispatch", f_working: "Being handled", f_to_verify: "To verify", f_to_close: "To close", f_closed: "Closed", f_overdue_only: "Overdue only",
    brand: "cityos", signin: "Sign in", signout: "Sign out", username: "Username", password: "Password",
    lang: "中文", nav_centre: "Command centre", nav_cases: "Cases", nav_inbox: "Inbox", nav_vitals: "Vital signs",
    nav_inspector: "Inspector", nav_citizen: "Citizens", skip: "Skip to content", wall: "Wall mode",
    centre: "Command centre", today_new: "New today", today_closed: "Closed today", on_time: "On-time rate",
    overdue: "Overdue", escalations: "Escalations", open_cases: "Open cases", live_feed: "Live feed",
    hot_topics: "Hot topics", ht_hint: "Citizens' messages of the last 7 days clustered by text and place, most first", ht_count: "messages", ht_cases: "cases",
    ht_last: "last", ht_none: "No hot topics in the last 7 days", ht_samples: "Cases",
    vital_signs: "Vital signs", map: "Map", zoom_in: "Zoom in", zoom_out: "Zoom out", reset: "Reset",
    level_subdistrict: "Sub-districts", level_community: "Communities", level_grid: "Grids",
    d_safety: "Safety", d_construction: "Construction", d_market: "Market", d_livelihood: "Livelihood",
    l_normal: "Normal", l_blue: "Blue", l_yellow: "Yellow", l_orange: "Orange", l_red: "Red",
    cases: "Cases", filters: "Filters", state: "State", domain: "Domain", region: "Region", text: "Text",
    search: "Search", number: "Number", title: "Title", priority: "Priority", due: "Due", more: "More",
    all: "All", inbox: "My inbox", none: "Nothing here", loading: "Loading…",
    case_page: "Case", timeline: "Timeline", tasks: "Tasks and departments", deadlines: "Deadlines",
    reporters: "Reporters", photos: "Photos", actions: "Actions you can take", note: "Note", time_left: "Time left",
    overdue_by: "Overdue by", do_action: "Do it", done: "Done",
    a_file: "File", a_reject: "Reject", a_dispatch: "Dispatch", a_acknowledge: "Acknowledge", a_start: "Start",
    a_handle: "Report handled", a_return: "Return", a_request_postponement: "Request postponement",
    a_grant_postponement: "Grant postponement", a_refuse_postponement: "Refuse postponement", a_verify: "Verify",
    a_reject_verification: "Reject verification", a_close: "Close", a_evaluate: "Evaluate", a_suspend: "Suspend",
    a_resume: "Resume", a_reopen: "Reopen", a_split: "Split", a_note: "Note", a_tick: "Checklist item done",
    a_report: "New report", a_escalate: "Escalated", a_merge_report: "Report merged", a_absorb: "Absorbed", a_merge: "Merged",
    extra_hours: "Extra time (hours)", score: "Satisfaction (1–5)", report_id: "Report id to split out",
    vitals: "Vital signs", history: "History", thresholds: "Thresholds", alerts: "Alerts", silences: "Silences",
    firing: "Firing", pending: "Pending", silence_it: "Silence", reason: "Reason", duration: "Duration",
    end_silence: "End silence", silenced: "Silenced", inhibited: "Inhibited",
    inspector: "Inspector report", report: "Report a problem", category: "Category", photo: "Photo", locate_me: "Use my position",
    position: "Position", describe: "What is wrong", send: "Send", my_verifications: "Awaiting my verification",
    verify_ok: "Verified", verify_bad: "Not fixed", offline_queue: "Waiting to send",
    offline: "Offline: reports are kept on this phone and sent when the network is back.", queued: "Saved; will send when online",
    sent: "Sent", citizen: "Citizen service", citizen_intro: "Seen a problem in the city? Three steps: pick a category, tap the map, describe it.",
    pick_on_map: "Tap the map to place it", address: "Address (optional)", contact: "Phone (optional)",
    your_number: "Your case number", follow: "Follow", follow_hint: "Enter a case number to see its progress",
    rate: "Rate the result", comment: "Comment (optional)", thanks: "Thank you for your rating",
    deadline: "Expected by", status: "Status", need_category: "Choose a category", need_place: "Tap the map to place the problem",
    unsure_category: "Not sure — just describe it", unsure_hint: "Say what and where (estate, road) in the description; it goes to the right department or to a person who sorts it",
    need_text: "Describe the problem", need_photo: "Take or choose a photo", need_number: "Enter a case number",
    no_access: "This account may not open this page", signed_in_as: "Signed in as",
    stage_waiting: "To dispatch", stage_working: "Being handled", stage_checking: "To verify / close", stage_overdue: "Black edge: overdue",
    network: "No network", no_report_token: "Only the reporter may rate (from the browser the report was sent from)",
    nav_catalogue: "Data catalogue",
    catalogue: "Data catalogue", cat_search: "Find data", cat_q: "Search", cat_kind: "Kind", cat_find: "Find", kind_all: "All", kind_dataset: "Dataset", kind_indicator: "Indicator", kind_device_feed: "Device feed", kind_export: "Export", cat_entries: "Catalogue", cat_name: "Name", cat_level: "Sensitivity", cat_fresh: "Updated", cat_quality: "Data quality", cat_schema: "Columns and sensitivity", cat_column: "Column", cat_type: "Type", cat_lineage: "Lineage (who reads it)", cat_rows: "Rows (masked as your grants say)", cat_show_rows: "Show rows", cat_ask: "Ask for a grant", cat_ask_cols: "Columns", cat_purpose: "Purpose", cat_until: "Until", cat_unmask: "Personal data unmasked", cat_ask_submit: "Send the request", cat_grants: "Grants", cat_consumer: "Consumer", cat_asked: "Requested; waiting for the owner's decision", lv_public: "Public", lv_internal: "Internal", lv_sensitive: "Sensitive", lv_sensitive_personal: "Personal", lv_restricted: "Restricted", q_ok: "OK", q_stale: "Stale", q_incomplete: "Incomplete", q_stale_incomplete: "Stale and incomplete", q_missing: "Never imported", g_requested: "Requested", g_approved: "Approved", g_refused: "Refused", g_revoked: "Revoked", g_expired: "Expired", g_approve: "Approve", g_refuse: "Refuse", g_revoke: "Revoke", g_reason: "Reason", ln_indicators: "Indicators", ln_scenarios: "Scenario packs", ln_alert_rules: "Alert rules", ln_alarm_rules: "Alarm rules", ln_reads: "Reads", rows_basis: "Basis", b_owner: "Owner", b_oversight: "Oversight (personal data masked)", b_grant: "Grant", rows_total: "Total", every: "Expected every", imported_at: "Last import", row_count: "Rows",
    nav_scenarios: "Scenarios", scenarios: "Scenario packs", packs: "Packs", pack: "Pack", pack_status: "Status",
    s_enabled: "Enabled", s_disabled: "Disabled", enable: "Enable", disable: "Disable", owner: "Owner", version: "Version",
    origin: "Origin", o_embedded: "Built in", o_directory: "Directory file", o_reload: "Reloaded online", loaded_at: "Loaded at",
    refused_problems: "Problems of the last refused reload", playbook: "Playbook", lead: "Lead", joint: "Joint responders",
    notify: "Notify", cap: "CAP warning", cap_none: "Not published", cap_from: "from level", stand_down: "Stand-down",
    stand_down_after: "after the condition stays clear for", step_deadlines: "Deadlines per step", checklist: "Checklist",
    reload: "Reload the pack", pack_text: "Pack text (TOML)", reload_hint: "Raise the version when changing it; a faulty pack is refused and the running version stays.",
    reload_submit: "Check and reload", reloaded: "Reloaded", audit: "Audit trail", actor: "Actor", action: "Action",
    result: "Result", ok: "OK", refused: "Refused", au_enable: "Enable", au_disable: "Disable", au_reload: "Reload",
    hits: "Last hits", hit_count: "Hits", last_hit: "Last hit",
    k_hit: "Hit", k_repeat: "Repeat", k_stand_down: "Stand-down",
    scenario: "Scenario", go_to_line: "Go to the line", at: "Time",
    seconds: "s", minutes: "min", hours: "h", tick: "Done", ticked_by: "Done by", done_at: "Done at",
    hits_map: "Map of hits", p_urgent: "Urgent", p_high: "High", p_normal: "Normal", p_low: "Low",
    u_m: "min", u_h: "h", u_d: "days", u_wh: "working hours", u_wd: "working days",
    nav_evaluation: "Evaluation", evaluation: "Performance evaluation", ev_query: "Period and units", ev_period: "Period", ev_period_hint: "e.g. 2026-11 (month), 2026-W45 (week), 2026-Q4 (quarter), 2026-11-05 (day), 2026-11-01..2026-11-15 (custom)", ev_dimension: "Units", ev_dim_department: "Departments", ev_dim_subdistrict: "Sub-districts", ev_dim_community: "Communities", ev_dim_category: "Categories", ev_dim_domain: "Domains", ev_show: "Show", ev_xlsx: "Export Excel", ev_csv: "Export CSV", ev_html: "Print version", ev_lists: "Red and black lists", ev_red: "Red list", ev_black: "Black list", ev_ranking: "Ranking", ev_trend: "Trend", ev_explain: "How the score is made", ev_measure: "Measure", ev_kind: "Scoring", ev_value: "Value", ev_samples: "Samples", ev_points: "Points", ev_note: "Note", ev_drill: "Cases behind it", ev_drill_hint: "Click a figure to list every case it counts.", ev_saved: "Monthly reports", ev_definitions: "Definitions of the measures", ev_none: "None", ev_rank: "Rank", ev_unit: "Unit", ev_class: "Class", ev_score: "Score", ev_list: "List", ev_all: "All", ev_other: "Other", ev_cases: "Cases", ev_cases_n: "cases", ev_weight: "Weight", ev_deduction: "Deduction", ev_yes: "counted yes", ev_no: "counted no",
    nav_canteen: "Canteen", nav_meals: "Meals", nav_triage: "Triage", triage: "Triage", triage_queue: "Reports awaiting a category", triage_keys: "Keys: j / k or ↑ / ↓ move between reports; Enter or 1 takes the first suggestion, 2 / 3 the others; c picks another category.", triage_empty: "Every report has its category", pick_category: "Pick a category", find_category: "Find a category", do_classify: "Classify", cancel: "Cancel", classified: "Classified", suggestions: "Model suggestions", no_suggestion: "No model suggestion", other_category: "Other category…", places_named: "Places named", urgency_cues: "Urgency cues", model_reason: "Why", a_classify: "Classify",
    nav_lifecircle: "Life circle", lifecircle: "15-minute community life circle", lc_method: "Walking time", lc_type: "Service", lc_ring: "Walk (minutes)", lc_map: "Coverage map (grids)", lc_click: "Click the map for the community's life-circle card; it also places a candidate facility.", lc_approx: "community and grid boundaries are generated approximations", lc_summary: "District coverage (share of residents)", lc_target: "Target", lc_facilities: "Facilities", lc_card: "Community life-circle card", lc_card_hint: "Click a place on the map or pick a community from the gaps.", lc_gaps: "Communities with gaps", lc_gaps_hint: "Communities where most residents do not reach the service within the chosen walk, most people without it first.", lc_whatif: "Siting what-if", lc_cand_hint: "Click the map to place a candidate facility of the chosen service.", lc_try: "Assess the candidate", lc_k: "How many", lc_suggest: "Suggest the best places", lc_l_quick: "within {r} min", lc_l_ok: "within {r} min (chosen walk)", lc_l_beyond: "beyond {r} min but within 15", lc_l_none: "none within 15 min", lc_l_facility: "Facility", lc_l_candidate: "Candidate or suggested place", lc_over15: "none within 15 min", lc_site: "Suggested place", lc_candidate: "Candidate facility", lc_share: "{type} within a {ring}-minute walk for {share} of residents ({n} people)", lc_without: "{n} people without it ({share} reach it)", lc_more_gaps: "and {n} more communities", lc_people: "about {n} residents (estimate)", lc_met: "met", lc_missing: "missing", lc_nearest: "Nearest", lc_missing_list: "Missing", lc_cand_at: "Candidate {type} at", lc_gainers: "newly reaching it", lc_people_unit: "people",
    lc_upload: "Import facilities", lc_upload_hint: "CSV with the header id,type,name,lon,lat (and optionally hours) or GeoJSON; any bad row refuses the whole list, each row named.", lc_upload_name: "Name", lc_upload_name_hint: "lower-case letters, digits, _ or -; the same name replaces", lc_upload_file: "File", lc_upload_submit: "Import", lc_upload_need: "Give a name (lower-case letters, digits, _ or -) and choose a file", lc_uploaded: "{n} facilities imported; coverage recomputed",
    nav_assistance: "Assistance", nav_assistcounts: "Assistance counts",
  },
};

/// Problem codes from the API, in both languages (the server's detail is the fallback):
/// exactly the server's table of problems (crates/server/src/http/problems.rs; a test
/// holds the two together).
const PROBLEMS = {
  zh: {
    invalid_parameter: "查询条件有误",
    invalid_json: "提交内容不是有效的 JSON",
    unreadable_body: "无法读取提交内容",
    control_character: "输入包含控制字符",
    invalid_idempotency_key: "幂等键无效",
    empty_photo: "照片为空",
    malformed_photo: "照片文件已损坏",
    invalid_media_url: "照片地址无效",
    unknown_media: "照片不存在",
    invalid_dataset: "数据集格式有误",
    missing_token: "请先登录",
    invalid_token: "登录已失效，请重新登录",
    expired_token: "登录已过期，请重新登录",
    bad_credentials: "用户名或密码错误",
    forbidden: "无权执行此操作",
    not_your_task: "本部门没有此案件的任务",
    csrf_check_failed: "请求来源无效，请刷新页面",
    not_found: "未找到",
    no_such_endpoint: "接口不存在",
    unknown_scenario: "应用场景不存在",
    transition_not_allowed: "当前状态不允许此操作",
    version_conflict: "案件已被他人更新，请刷新后重试",
    not_external: "该指标不接受外部数据",
    scenario_version_unchanged: "场景包版本号未变更",
    payload_too_large: "文件太大",
    unsupported_media_type: "不支持的文件类型",
    invalid_body: "输入有误",
    invalid_argument: "输入有误",
    invalid_action: "该操作的输入有误",
    value_out_of_range: "数值超出合理范围",
    unknown_category: "未知的问题类别",
    category_not_public: "该类别不接受市民上报",
    unknown_department: "未知部门",
    no_route: "找不到负责部门",
    outside_territory: "该位置不在本辖区内",
    invalid_point: "位置无效",
    evidence_required: "核查需要至少一张现场照片",
    invalid_scenario_pack: "场景包有误",
    idempotency_key_reused: "幂等键已用于另一个请求",
    too_many_attempts: "登录失败次数过多，请稍后再试",
    too_many_requests: "请求过于频繁，请稍后再试",
    internal: "系统内部错误",
    busy: "系统繁忙，请稍后再试",
    unavailable: "服务暂不可用",
    store_unavailable: "数据库暂不可用，请稍后再试",
    store_timeout: "查询耗时过长，请缩小范围或稍后再试",
    outcome_unknown: "请求已转交负责节点，但未收到结果，请先查看是否已生效",
    partly_applied: "请求只完成了一部分，其余部分由其他节点负责，请勿整体重发",
    insufficient_storage: "存储空间不足",
    unknown_service_type: "未知的生活圈服务类型",
    invalid_facility: "设施数据有误",
    too_many_candidates: "备选设施过多",
    invalid_network: "步行网络有误",
    meal_after_cutoff: "这一餐的订餐时间已经过了，请订下一餐",
    meal_sold_out: "这一餐已经订满了，请换一个食堂或订下一餐",
    meal_balance_low: "账户里的钱不够这一餐，请家人或工作人员帮忙充值",
    dish_not_on_menu: "这道菜这一餐没有，请从当天的菜单里选",
    meal_cancel_closed: "厨房已经开始做这一餐了，要取消请打电话给食堂",
    no_usual_meal: "还没有“老样子”，先点一次餐，以后一下就能订",
    no_delivery: "这一餐不能送到您家，可以选择到店取餐",
    impossible_age: "出生日期好像不对，请再核对一下",
    under_meal_age: "助餐服务面向60岁及以上的老人",
    unknown_dataset: "数据集不存在",
    unknown_grant: "授权申请不存在",
    no_grant: "没有该数据集的有效授权",
    unknown_columns: "数据集没有这些列或未获授权",
    grant_expired: "授权期限已过",
    grant_overlaps: "已有重叠的授权或申请",
    grant_not_pending: "该授权当前状态不允许此操作",
    invalid_period: "考核周期格式有误",
    period_reversed: "考核周期的结束早于开始",
    period_in_future: "考核周期尚未开始",
    device_exists: "设备编号已登记",
  },
  en: {
    invalid_parameter: "Invalid filter",
    invalid_json: "The body is not valid JSON",
    unreadable_body: "The request could not be read",
    control_character: "The input contains control characters",
    invalid_idempotency_key: "Invalid idempotency key",
    empty_photo: "The photo is empty",
    malformed_photo: "The photo file is damaged",
    invalid_media_url: "Invalid photo address",
    unknown_media: "The photo does not exist",
    invalid_dataset: "The dataset cannot be read",
    missing_token: "Please sign in",
    invalid_token: "Your session has ended; sign in again",
    expired_token: "Your session has expired; sign in again",
    bad_credentials: "Wrong username or password",
    forbidden: "You may not do this",
    not_your_task: "Your department has no task on this case",
    csrf_check_failed: "The request did not come from this site; reload the page",
    not_found: "Not found",
    no_such_endpoint: "No such endpoint",
    unknown_scenario: "No such scenario pack",
    transition_not_allowed: "Not allowed in the case's current state",
    version_conflict: "Someone changed the case meanwhile; reload and try again",
    not_external: "This indicator takes no outside values",
    scenario_version_unchanged: "The pack's version must change",
    payload_too_large: "File too large",
    unsupported_media_type: "Unsupported file type",
    invalid_body: "Invalid input",
    invalid_argument: "Invalid input",
    invalid_action: "The action's input does not fit",
    value_out_of_range: "The value is outside the plausible range",
    unknown_category: "Unknown category",
    category_not_public: "Citizens cannot report in this category",
    unknown_department: "Unknown department",
    no_route: "No department is responsible",
    outside_territory: "That place is outside the district",
    invalid_point: "Invalid position",
    evidence_required: "Verification needs at least one photo from the site",
    invalid_scenario_pack: "The scenario pack is refused",
    idempotency_key_reused: "The idempotency key was used for another request",
    too_many_attempts: "Too many failed sign-ins; try again later",
    too_many_requests: "Too many requests; try again later",
    internal: "Internal error",
    busy: "Busy; try again shortly",
    unavailable: "Service unavailable",
    store_unavailable: "The database is unavailable; try again shortly",
    store_timeout: "The request took too long; narrow it or try again later",
    outcome_unknown: "Passed on to the node in charge, but its answer was lost; check before sending again",
    partly_applied: "Only part of the request was applied; another node is in charge of the rest — do not resend it whole",
    insufficient_storage: "No storage space left",
    unknown_service_type: "Unknown life-circle service type",
    invalid_facility: "The facilities are refused",
    too_many_candidates: "Too many candidate facilities",
    invalid_network: "The walking network is refused",
    meal_after_cutoff: "Ordering for this meal has closed; please order the next meal",
    meal_sold_out: "This meal is fully booked; please choose another canteen or the next meal",
    meal_balance_low: "The balance is not enough for this meal; ask family or staff to top it up",
    dish_not_on_menu: "That dish is not on this meal's menu; please choose from the day's menu",
    meal_cancel_closed: "The kitchen has started this meal; to cancel please call the canteen",
    no_usual_meal: "No usual meal yet; order once and next time it is one tap",
    no_delivery: "This meal cannot be delivered to you; please choose pick-up",
    impossible_age: "The date of birth does not look right; please check it",
    under_meal_age: "The meal service is for people of 60 and over",
    unknown_dataset: "No such dataset",
    unknown_grant: "No such grant",
    no_grant: "No grant in force for this dataset",
    unknown_columns: "Unknown or ungranted columns",
    grant_expired: "The grant's end date has passed",
    grant_overlaps: "A grant or request already covers these columns",
    grant_not_pending: "The grant's state does not allow this",
    invalid_period: "The period is not a day, week, month, quarter or range",
    period_reversed: "The period ends before it starts",
    period_in_future: "The period has not started yet",
    device_exists: "A device with this id is already registered",
  },
};

function lang() { return localStorage.getItem("cityos.lang") === "en" ? "en" : "zh"; }
function t(key) { return (I18N[lang()][key]) || I18N.zh[key] || key; }

/// Applies the language to every element marked with data-i18n (text), data-i18n-ph
/// (placeholder) and data-i18n-label (aria-label).
function applyI18n(root) {
  const r = root || document;
  document.documentElement.lang = lang() === "en" ? "en" : "zh-CN";
  r.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  r.querySelectorAll("[data-i18n-ph]").forEach((e) => { e.placeholder = t(e.dataset.i18nPh); });
  r.querySelectorAll("[data-i18n-label]").forEach((e) => { e.setAttribute("aria-label", t(e.dataset.i18nLabel)); });
}

// The session itself is an HttpOnly cookie the script never sees (so an injected script
// cannot steal it); only the signed-in user's name and role are kept here, for the menus.
function user() {
  try { return JSON.parse(localStorage.getItem("cityos.user") || "null"); } catch (_) { return null; }
}
/// Signing out by the button (a click) also empties the inspector's offline queue on this
/// phone — after asking, when reports are still waiting — so the next person to use a shared
/// phone finds nothing of the last one's. An expired session (401) keeps the queue: the
/// same inspector signs in again and it is sent.
async function signOut(ev) {
  if (ev && ev.type === "click") {
    const q = document.getElementById("queue");
    if (q && !q.hidden && !confirm(t("signout_drops_queue"))) return;
    try { indexedDB.deleteDatabase("cityos-inspector"); } catch (_) { /* no IndexedDB: nothing kept */ }
  }
  localStorage.removeItem("cityos.user");
  try { await fetch("/api/v1/auth/logout", { method: "POST", headers: { "x-requested-with": "cityos" } }); } catch (_) { /* offline: the cookie expires */ }
  location.href = "/ui/login.html";
}

/// An error from the API, in the user's language.
class ApiProblem extends Error {
  constructor(status, code, detail, problems) {
    super((PROBLEMS[lang()][code]) || detail || ("HTTP " + status));
    this.status = status; this.code = code; this.detail = detail;
    // Every problem of a submitted document (`line:column: message`), e.g. a refused pack.
    this.problems = Array.isArray(problems) ? problems : [];
  }
}

/// Calls the API; answers the JSON body, or throws an ApiProblem.
async function api(path, opts) {
  const o = opts || {};
  // The custom header is the CSRF check of cookie-authenticated writes (see access.rs);
  // anonymous calls (the citizen page) send no cookie at all.
  const headers = Object.assign({ "x-requested-with": "cityos" }, o.headers || {});
  let body = o.body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
    body = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  let r;
  busy(1);
  try {
    r = await fetch(path, { method: o.method || (body === undefined ? "GET" : "POST"), headers, body, credentials: o.anonymous ? "omit" : "same-origin" });
  } catch (e) {
    busy(-1);
    throw new ApiProblem(0, "network", t("network"));
  }
  let text;
  try { text = await r.text(); } finally { busy(-1); }
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch (_) { v = text; }
  if (!r.ok) {
    if (r.status === 401 && !o.anonymous && user()) { signOut(); }
    throw new ApiProblem(r.status, v && v.code, v && v.detail, v && v.problems);
  }
  return v;
}

/// Requests in flight (`document.body.dataset.busy`), so a test knows when a page is drawn.
let inFlight = 0;
function busy(d) {
  inFlight = Math.max(0, inFlight + d);
  if (document.body) document.body.dataset.busy = String(inFlight);
}

/// What identifies a focusable element across a redraw: its data-key, id, link or text.
function focusKey(e) {
  return (e.dataset && e.dataset.key) || e.id || (e.getAttribute && e.getAttribute("href")) || (e.tagName + ":" + e.textContent);
}

/// Redraws `box` with `fill(box)` without moving the keyboard focus: if the focus was
/// inside, it goes back to the same item (by `focusKey`), or else to the box itself —
/// never to the page's start. Every periodic refresh draws through this.
function redraw(box, fill) {
  const a = document.activeElement;
  const inside = a && a !== box && box.contains(a);
  const key = inside ? focusKey(a) : null;
  box.textContent = "";
  fill(box);
  if (!inside) return;
  const again = [...box.querySelectorAll("a, button, input, select, textarea, [tabindex]")].find((e) => focusKey(e) === key);
  if (again) { again.focus({ preventScroll: true }); return; }
  if (!box.hasAttribute("tabindex")) box.setAttribute("tabindex", "-1");
  box.focus({ preventScroll: true });
}

/// After an action: the focus goes to its result (a status line or a heading), which is
/// made focusable for that, so a keyboard or screen-reader user continues from there.
function focusResult(node) {
  if (!node) return;
  if (!node.hasAttribute("tabindex")) node.setAttribute("tabindex", "-1");
  node.focus();
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fmtTime(s) {
  if (!s) return "";
  const d = new Date(s);
  return d.toLocaleString(lang() === "en" ? "en-GB" : "zh-CN", { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}

function fmtDuration(ms) {
  const neg = ms < 0; let s = Math.abs(Math.round(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const p = (n) => String(n).padStart(2, "0");
  const txt = (d ? d + (lang() === "en" ? "d " : "天 ") : "") + p(h) + ":" + p(m) + ":" + p(s);
  return neg ? "-" + txt : txt;
}

/// A value of an enumeration in the user's language: `prefix + value` in the dictionary,
/// else the value itself (never the other language's word).
function tEnum(prefix, v) {
  if (v === null || v === undefined || v === "") return "";
  const k = prefix + v;
  return I18N[lang()][k] || v;
}
function stateName(s) { return tEnum("st_", s); }
function priorityName(p) { return tEnum("p_", p); }
/// `{name}` placeholders filled from `args`.
function tf(key, args) {
  return t(key).replace(/\{(\w+)\}/g, (_, k) => (args && args[k] !== undefined ? String(args[k]) : ""));
}

/// Numbers: counts are whole, money is yuan with two decimals, rates are percentages.
const COUNT_UNITS = new Set(["个", "人", "件", "份", "单", "台", "户", "点", "盏", "起", "次", "辆", "处"]);
const UNITS_EN = { "个": "", "人": "people", "件": "cases", "件/h": "cases/h", "件/日": "cases/day", "份": "portions", "单": "orders",
  "台": "units", "户": "households", "点": "points", "盏": "lamps", "级": "grade", "起": "incidents", "起/h": "incidents/h", "起/百台": "per 100 units", "次": "times", "辆": "vehicles", "处": "places" };
function locale() { return lang() === "en" ? "en-GB" : "zh-CN"; }
function fmtCount(n) { return n === null || n === undefined || !isFinite(n) ? "—" : Math.round(n).toLocaleString(locale()); }
function fmtMoney(yuan) { return yuan === null || yuan === undefined || !isFinite(yuan) ? "—" : "¥" + Number(yuan).toLocaleString(locale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }
/// A share (0–1) as a percentage.
function fmtRate(share) { return share === null || share === undefined || !isFinite(share) ? "—" : (share * 100).toLocaleString(locale(), { maximumFractionDigits: 1 }) + "%"; }
function unitName(u) { return lang() === "en" && Object.prototype.hasOwnProperty.call(UNITS_EN, u) ? UNITS_EN[u] : (u || ""); }
/// An indicator's value with its unit: whole numbers for counts, ¥ for money.
function fmtValue(v, unit) {
  if (v === null || v === undefined || !isFinite(v)) return "—";
  if (unit === "元" || unit === "¥") return fmtMoney(v);
  if (unit === "%") return Number(v).toLocaleString(locale(), { maximumFractionDigits: 1 }) + "%";
  const n = COUNT_UNITS.has(unit) ? fmtCount(v) : Number(v).toLocaleString(locale(), { maximumFractionDigits: 2 });
  const u = unitName(unit);
  if (!u) return n;
  return /^[\u4e00-\u9fff]/.test(u) ? n + u : n + " " + u;
}

/// Region names (`{code, name_zh, name_en}`): English mode shows the pinyin name where the
/// territory has one (map.js fills REGION_EN from the regions it loads).
const REGION_EN = {};
const REGION_ZH = {};
function regionName(r) {
  if (!r) return "";
  if (lang() !== "en") return r.name_zh || r.code || "";
  return r.name_en || REGION_EN[r.code] || r.name_zh || r.code || "";
}

/// Departments by code (loaded once per page, for actor and task names).
let DEPTS = {};
let deptsLoading = null;
function loadDepartments() {
  if (!deptsLoading) {
    deptsLoading = api("/api/v1/departments").then((v) => {
      for (const d of v.departments || []) DEPTS[d.code] = d;
      return DEPTS;
    }).catch(() => DEPTS);
  }
  return deptsLoading;
}
function deptName(code) {
  const d = DEPTS[code];
  if (!d) return code;
  return lang() === "en" ? (d.name_en || d.name_zh) : d.name_zh;
}
/// Who did it, as people call them: the department's name for a department's (or the
/// simulator's) action, "system" for the engine, "citizen intake" for a channel.
function actorName(id) {
  if (!id) return "";
  if (id === "cityos" || id === "system") return t("actor_system");
  let m = /^(\w+)-intake$/.exec(id);
  if (m) return tf("actor_intake", { channel: tEnum("ch_", m[1]) });
  m = /^(?:sim|live)-(.+)$/.exec(id);
  if (m) {
    if (DEPTS[m[1]]) return deptName(m[1]);
    if (m[1] === "officer") return t("actor_officer");
    if (m[1] === "inspector") return t("actor_inspector");
  }
  return DEPTS[id] ? deptName(id) : id;
}
/// A log note in the user's language: the engine's own notes (new case, routing,
/// trusted channel, merges, splits, escalations) are recognised and rendered from the
/// dictionary with their parts; people's notes are shown as written.
/// A log note in words. `free: false` (the wall, a public-ish screen) leaves out free
/// text an officer wrote (names, phone numbers) and says that a note was left out.
function noteText(note, opts) {
  if (!note) return "";
  const withhold = opts && opts.free === false;
  const parts = note.split("; ");
  const out = [];
  for (const p of parts) {
    let m;
    if (p === "new case") out.push(t("n_new_case"));
    else if ((m = /^routed to (.+)$/.exec(p))) out.push(tf("n_routed", { depts: m[1].split(", ").map(deptName).join(lang() === "en" ? ", " : "、") }));
    else if ((m = /^智能分拨：(.*)$/.exec(p))) out.push(tf("n_smart", { reason: m[1] }));
    else if (p === "auto: trusted channel") out.push(t("n_auto_trusted"));
    else if ((m = /^merged: same category 「(.+)」 (\d+) m from case's latest report \(([\d.]+) h ago\)$/.exec(p))) out.push({ cat: m[1], m: m[2], h: m[3] });
    else if ((m = /^radius (\d+) m, window (\d+) h$/.exec(p)) && out.length && typeof out[out.length - 1] === "object") { const o = out.pop(); out.push(tf("n_merged", Object.assign(o, { r: m[1], w: m[2] }))); }
    else if ((m = /^took over the reports of case (\S+)$/.exec(p))) out.push(tf("n_absorbed", { number: m[1] }));
    else if ((m = /^split from case (\S+) by (\S+)$/.exec(p))) out.push(tf("n_split", { number: m[1], who: actorName(m[2]) }));
    else if ((m = /^overdue since (.+): escalated to (\S+) \(rung (\d+)\)$/.exec(p))) out.push(tf("n_escalated", { since: m[1], to: deptName(m[2]), rung: m[3] }));
    else if (I18N[lang()]["n_" + p]) out.push(I18N[lang()]["n_" + p]);
    else if (withhold) { if (!out.includes(t("n_withheld"))) out.push(t("n_withheld")); }
    else out.push(p);
  }
  return out.map((x) => (typeof x === "object" ? JSON.stringify(x) : x)).join(lang() === "en" ? "; " : "；");
}

const ROLE_PAGES = {
  district_officer: ["centre", "triage", "cases", "vitals", "scenarios", "evaluation", "lifecircle", "catalogue", "canteen", "citizen", "assistance", "assistcounts"],
  subdistrict_officer: ["centre", "triage", "cases", "vitals", "scenarios", "evaluation", "lifecircle", "catalogue", "canteen", "citizen", "assistance", "assistcounts"],
  admin: ["centre", "cases", "vitals", "scenarios", "evaluation", "lifecircle", "catalogue", "inspector", "citizen", "assistcounts"],
  analyst: ["centre", "vitals", "cases", "scenarios", "evaluation", "lifecircle", "catalogue", "assistcounts"],
  handler: ["cases", "evaluation", "canteen", "catalogue", "citizen", "assistance", "assistcounts"],
  inspector: ["inspector", "cases", "catalogue", "citizen"],
  citizen: ["citizen", "meals"],
};

function homeFor(role) {
  const pages = ROLE_PAGES[role] || ["citizen"];
  return "/ui/" + pages[0] + ".html";
}

/// The header: brand, the pages this role may open, the user, language and sign-out.
/// `page` is this page's name; `needsRole` sends anonymous callers to sign in.
function frame(page, needsRole) {
  const u = user();
  if (needsRole && !u) { location.href = "/ui/login.html?next=" + encodeURIComponent(location.pathname + location.search); return null; }
  const header = document.querySelector("header.top");
  header.textContent = "";
  header.append(el("a", { class: "skip", href: "#main", "data-i18n": "skip" }));
  header.append(el("span", { class: "brand", "data-i18n": "brand" }));
  const ul = el("ul");
  const pages = u ? (ROLE_PAGES[u.role] || ["citizen"]) : ["citizen"];
  for (const p of pages) {
    const a = el("a", { href: "/ui/" + p + ".html", "data-i18n": "nav_" + p });
    if (p === page) a.setAttribute("aria-current", "page");
    ul.append(el("li", {}, a));
  }
  header.append(el("nav", { "aria-label": "main" }, ul));
  const me = el("div", { class: "me" });
  if (u) me.append(el("span", {}, el("span", { class: "hint", "data-i18n": "signed_in_as" }), " ", el("span", { text: u.display_name || u.username })));
  me.append(el("button", { class: "secondary", type: "button", id: "lang", "data-i18n": "lang", onclick: () => {
    localStorage.setItem("cityos.lang", lang() === "en" ? "zh" : "en"); location.reload();
  } }));
  if (u) me.append(el("button", { class: "secondary", type: "button", "data-i18n": "signout", onclick: signOut }));
  else if (page !== "login") me.append(el("a", { class: "button", href: "/ui/login.html", "data-i18n": "signin" }));
  header.append(me);
  applyI18n();
  if (needsRole && u && !(ROLE_PAGES[u.role] || []).includes(page)) {
    const m = document.getElementById("main");
    m.textContent = "";
    m.append(el("p", { class: "error", role: "alert", text: t("no_access") }));
    return null;
  }
  return u;
}

/// Shows a message in a live region.
function say(node, text, good) {
  node.textContent = text || "";
  node.className = good ? "ok" : "error";
}

function levelBadge(level, text) {
  return el("span", { class: "badge lvl-" + (level || "normal"), text: text || t("l_" + (level || "normal")) });
}

function newKey() {
  const b = new Uint8Array(12); crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
