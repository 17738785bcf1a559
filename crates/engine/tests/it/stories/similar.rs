//! Store stories — same complaint again (同一诉求, issue 14): a citizen's report whose text
//! is like an open case's nearby joins it, whatever the two categories; a different
//! complaint at the same place, the same text far away, or a sensor's report do not; the
//! signatures are rebuilt at restart; staff split a wrong join back out.

use super::*;

fn said(category: &str, p: [f64; 2], channel: Channel, at: Millis, text: &str) -> NewReport {
    NewReport {
        text: text.into(),
        ..report(category, p, channel, at)
    }
}

story!(same_complaint_joins_by_text);
fn same_complaint_joins_by_text(b: &Backend) {
    let mut e = b.engine();
    let p = spot(2);
    let near = [p[0] + 0.0004, p[1]]; // ≈ 38 m east: beyond the category dedup of triage (0 m)
    let first = e
        .submit(said(
            "manhole_cover_missing",
            p,
            Channel::Citizen,
            t0(),
            "小区门口的井盖不见了很危险",
        ))
        .unwrap();
    assert!(!first.merged);
    // The same complaint in other words, filed without a category (the 待分拨 triage
    // category), joins the routed case as a second reporter.
    let again = e
        .submit(said(
            "triage",
            near,
            Channel::Citizen,
            t0() + HOUR,
            "小区门口井盖没了，很危险",
        ))
        .unwrap();
    assert!(again.merged, "{}", again.reason);
    assert_eq!(again.case.id, first.case.id);
    assert_eq!(again.case.reports.len(), 2);
    assert_eq!(again.case.category, "manhole_cover_missing");
    assert!(
        again.reason.starts_with("同一诉求：文本相似度 0."),
        "{}",
        again.reason
    );
    assert!(
        again.reason.contains(&first.case.number),
        "{}",
        again.reason
    );
    assert!(again.reason.contains("相距 38 m"), "{}", again.reason);
    let log = e.log(first.case.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, "merge_report");
    assert_eq!(last.note, again.reason);
    // A different complaint at the same place: a case of its own.
    let other = e
        .submit(said(
            "triage",
            near,
            Channel::Citizen,
            t0() + HOUR,
            "小区门口的垃圾堆了好几天没人清理",
        ))
        .unwrap();
    assert!(!other.merged, "{}", other.reason);
    // The same words 2 km away: another cover.
    let far = e
        .submit(said(
            "triage",
            spot(40),
            Channel::Citizen,
            t0() + HOUR,
            "小区门口井盖没了，很危险",
        ))
        .unwrap();
    assert!(!far.merged, "{}", far.reason);
    // A sensor's report never joins by text.
    let sensor = e
        .submit(said(
            "streetlight_fault",
            near,
            Channel::Sensor,
            t0() + HOUR,
            "小区门口的井盖不见了很危险",
        ))
        .unwrap();
    assert!(!sensor.merged, "{}", sensor.reason);
    // And vice versa: a routed report joins an open triage case by its text.
    let q = spot(10);
    let triaged = e
        .submit(said(
            "triage",
            q,
            Channel::Citizen,
            t0(),
            "学校后门路灯坏了晚上一片漆黑",
        ))
        .unwrap();
    let routed = e
        .submit(said(
            "streetlight_fault",
            [q[0], q[1] + 0.0005],
            Channel::Citizen,
            t0() + 2 * HOUR,
            "学校后门的路灯坏了，晚上一片漆黑",
        ))
        .unwrap();
    assert!(routed.merged, "{}", routed.reason);
    assert_eq!(routed.case.id, triaged.case.id);
    // Two different chosen categories in the same set phrases: different problems (the
    // bar is 0.8 then); a verbatim repeat under another category still joins.
    let g = spot(20);
    let garbage = e
        .submit(said(
            "exposed_garbage",
            g,
            Channel::Citizen,
            t0(),
            "天平路社区附近发现暴露垃圾，影响居民生活，请尽快处理。",
        ))
        .unwrap();
    let parking = e
        .submit(said(
            "illegal_parking",
            [g[0] + 0.0004, g[1]],
            Channel::Citizen,
            t0() + HOUR,
            "天平路社区附近发现违章停车，影响居民生活，请尽快处理。",
        ))
        .unwrap();
    assert!(!parking.merged, "{}", parking.reason);
    let verbatim = e
        .submit(said(
            "street_vending",
            [g[0], g[1] + 0.0004],
            Channel::Citizen,
            t0() + HOUR,
            "天平路社区附近发现暴露垃圾，影响居民生活，请尽快处理。",
        ))
        .unwrap();
    assert!(verbatim.merged, "{}", verbatim.reason);
    assert_eq!(verbatim.case.id, garbage.case.id);
    assert!(verbatim.reason.contains("阈值 0.80"), "{}", verbatim.reason);
    // After a restart the signatures are rebuilt: a repeat still joins.
    drop(e);
    let mut e = b.engine();
    let third = e
        .submit(said(
            "triage",
            [p[0], p[1] + 0.0003],
            Channel::Citizen,
            t0() + 5 * HOUR,
            "小区门口的井盖没有了，太危险了",
        ))
        .unwrap();
    assert!(third.merged, "{}", third.reason);
    assert_eq!(third.case.id, first.case.id);
    assert_eq!(third.case.reports.len(), 3);
    // Staff split the text join back out: the report opens a case of its own category.
    let out = e
        .transition(
            first.case.id,
            cmd(
                Action::Split {
                    report: again.report_id,
                },
                officer(),
            ),
            t0() + 6 * HOUR,
        )
        .unwrap();
    assert_eq!(out.case.reports, vec![first.report_id, third.report_id]);
    let opened = out.opened.unwrap();
    assert_eq!(opened.reports, vec![again.report_id]);
    assert_eq!(opened.category, "triage");
    assert_eq!(
        e.store()
            .load_report(again.report_id)
            .unwrap()
            .unwrap()
            .case_id,
        opened.id
    );
    // The hot topics' read: citizen and staff reports of the window, newest first, with
    // their case numbers; the sensor's is not among them.
    let recent: Vec<_> = e
        .store()
        .recent_reports(t0() + HOUR, 100)
        .unwrap()
        .into_iter()
        .filter(|(r, _)| r.id != parking.report_id && r.id != verbatim.report_id)
        .collect();
    let ids: Vec<i64> = recent.iter().map(|(r, _)| r.id).collect();
    assert_eq!(
        ids,
        vec![
            third.report_id,
            routed.report_id,
            far.report_id,
            other.report_id,
            again.report_id
        ]
    );
    assert_eq!(recent[0].1, first.case.number);
    assert_eq!(recent[4].1, opened.number, "the split moved it");
    assert!(recent.iter().all(|(r, _)| r.id != sensor.report_id));
    assert_eq!(e.store().recent_reports(t0() + HOUR, 2).unwrap().len(), 2);
    assert_replay(e.store());
}
