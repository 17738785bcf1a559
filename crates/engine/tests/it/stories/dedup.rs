//! Store stories — duplicates and related reports: automatic merge and split, manual merge moving reports, related reports across channels landing in one case.

use super::*;

story!(duplicates_merge_and_split);
fn duplicates_merge_and_split(b: &Backend) {
    let mut e = b.engine();
    let p = spot(2);
    let first = e
        .submit(report("exposed_garbage", p, Channel::Citizen, t0()))
        .unwrap();
    let near = [p[0] + 0.0001, p[1]]; // ~10 m east
    let second = e
        .submit(report(
            "exposed_garbage",
            near,
            Channel::Citizen,
            t0() + HOUR,
        ))
        .unwrap();
    assert!(second.merged);
    assert_eq!(second.case.id, first.case.id);
    assert_eq!(second.case.reports.len(), 2);
    assert!(second.reason.contains("m from case"), "{}", second.reason);
    // Another category at the same place, or the same category far away: new cases.
    let other = e
        .submit(report(
            "illegal_parking",
            near,
            Channel::Citizen,
            t0() + HOUR,
        ))
        .unwrap();
    assert!(!other.merged);
    let far = e
        .submit(report(
            "exposed_garbage",
            spot(40),
            Channel::Citizen,
            t0() + HOUR,
        ))
        .unwrap();
    assert!(!far.merged);
    // After the window: a new case.
    let window = e
        .taxonomy()
        .category("exposed_garbage")
        .unwrap()
        .dedup_window_ms;
    let late = e
        .submit(report(
            "exposed_garbage",
            p,
            Channel::Citizen,
            t0() + HOUR + window + MINUTE,
        ))
        .unwrap();
    assert!(!late.merged);
    // Staff split the wrongly merged report back out.
    let out = e
        .transition(
            first.case.id,
            cmd(
                Action::Split {
                    report: second.report_id,
                },
                officer(),
            ),
            t0() + 2 * HOUR,
        )
        .unwrap();
    assert_eq!(out.case.reports, vec![first.report_id]);
    let opened = out.opened.unwrap();
    assert_eq!(opened.reports, vec![second.report_id]);
    assert_eq!(
        e.store()
            .load_report(second.report_id)
            .unwrap()
            .unwrap()
            .case_id,
        opened.id
    );
    assert_eq!(e.store().reports_of(first.case.id).unwrap().len(), 1);
    assert!(e.log(opened.id).unwrap()[0]
        .note
        .contains("split from case"));
    assert_replay(e.store());
}

story!(manual_merge_moves_reports);
fn manual_merge_moves_reports(b: &Backend) {
    let mut e = b.engine();
    let a = e
        .submit(report("noise", spot(3), Channel::Citizen, t0()))
        .unwrap();
    let bb = e
        .submit(report("noise", spot(30), Channel::Citizen, t0()))
        .unwrap();
    let out = e
        .transition(
            a.case.id,
            cmd(Action::Merge { into: bb.case.id }, officer()),
            t0() + MINUTE,
        )
        .unwrap();
    assert_eq!(out.case.state, State::Merged);
    let target = e.case(bb.case.id).unwrap().unwrap();
    assert_eq!(target.reports.len(), 2);
    assert_eq!(e.store().reports_of(bb.case.id).unwrap().len(), 2);
    // Merging into a closed or missing case is refused.
    let c = e
        .submit(report("noise", spot(50), Channel::Citizen, t0()))
        .unwrap();
    let err = e
        .transition(
            c.case.id,
            cmd(Action::Merge { into: a.case.id }, officer()),
            t0() + MINUTE,
        )
        .unwrap_err();
    assert!(err.to_string().contains("cannot take over"), "{err}");
    let err = e
        .transition(
            c.case.id,
            cmd(Action::Merge { into: 999_999 }, officer()),
            t0() + MINUTE,
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound(_)), "{err}");
    assert_replay(e.store());
}

story!(related_reports_across_channels_land_in_one_case);
fn related_reports_across_channels_land_in_one_case(b: &Backend) {
    let mut e = b.engine();
    let p = spot(11);
    // A manhole cover's tilt sensor fires.
    let alarm = e
        .submit(report("manhole_cover_tilt_alarm", p, Channel::Sensor, t0()))
        .unwrap();
    assert!(!alarm.merged);
    // A citizen reports the missing cover 20 m away an hour later: the same incident.
    let near = [p[0] + 0.0002, p[1]];
    let citizen = e
        .submit(report(
            "manhole_cover_missing",
            near,
            Channel::Citizen,
            t0() + HOUR,
        ))
        .unwrap();
    assert!(citizen.merged, "{}", citizen.reason);
    assert_eq!(citizen.case.id, alarm.case.id);
    assert!(
        citizen.reason.starts_with("correlated:"),
        "{}",
        citizen.reason
    );
    assert!(citizen.reason.contains("50 m"), "{}", citizen.reason);
    assert_eq!(
        citizen.case.category, "manhole_cover_tilt_alarm",
        "the case keeps its category"
    );
    // An inspector's report of a damaged cover joins it too; every source is on the case.
    let inspector = e
        .submit(report(
            "manhole_cover_damage",
            near,
            Channel::Inspector,
            t0() + 2 * HOUR,
        ))
        .unwrap();
    assert_eq!(inspector.case.id, alarm.case.id);
    assert_eq!(inspector.case.reports.len(), 3);
    let log = e.store().load_log(alarm.case.id).unwrap();
    assert_eq!(
        log.iter()
            .filter(|l| l.note.starts_with("correlated:"))
            .count(),
        2
    );
    // A wrong merge is split back out into a case of the report's own category.
    let split = e
        .transition(
            alarm.case.id,
            Command::new(
                Action::Split {
                    report: inspector.report_id,
                },
                officer(),
            ),
            t0() + 3 * HOUR,
        )
        .unwrap();
    let opened = split.opened.expect("a new case");
    assert_eq!(opened.category, "manhole_cover_damage");
    assert_eq!(split.case.reports.len(), 2);
    // Too far (≈ 200 m), or an unrelated category: a case of its own.
    let far = e
        .submit(report(
            "manhole_cover_missing",
            [p[0] + 0.002, p[1]],
            Channel::Citizen,
            t0() + HOUR,
        ))
        .unwrap();
    assert!(!far.merged);
    let other = e
        .submit(report(
            "street_vending",
            near,
            Channel::Citizen,
            t0() + HOUR,
        ))
        .unwrap();
    assert_ne!(other.case.id, alarm.case.id);
}

story!(a_triage_case_classified_moves_to_its_category);
/// 分拨: a case filed as `triage` and classified by staff is listed, counted and found as
/// a duplicate under its new category (the row's columns and the dedup index follow).
fn a_triage_case_classified_moves_to_its_category(b: &Backend) {
    use cityos_engine::query::CaseQuery;
    let mut e = b.engine();
    let p = spot(3);
    let first = e
        .submit(report("triage", p, Channel::Citizen, t0()))
        .unwrap();
    assert_eq!(first.case.category, "triage");
    let near = [p[0] + 0.0001, p[1]];
    // No place dedup in triage: another text report nearby is its own case.
    let other = e
        .submit(report("triage", near, Channel::Citizen, t0() + MINUTE))
        .unwrap();
    assert!(!other.merged);
    let by = |e: &mut Engine, cat: &str| -> Vec<i64> {
        let q = CaseQuery {
            categories: vec![cat.into()],
            now: t0(),
            limit: 50,
            ..Default::default()
        };
        let mut ids: Vec<i64> = e
            .store()
            .list_cases(&q)
            .unwrap()
            .cases
            .iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(by(&mut e, "triage"), vec![first.case.id, other.case.id]);
    // A trusted channel's report awaiting 分拨 is filed, not dispatched: it waits too.
    let inspected = e
        .submit(report("triage", spot(6), Channel::Inspector, t0()))
        .unwrap();
    assert_eq!(inspected.case.state, State::Filed);
    assert!(inspected.case.tasks.is_empty());
    assert!(inspected
        .case
        .deadline(cityos_core::Step::Dispatch)
        .is_some());
    let out = e
        .transition(
            first.case.id,
            cmd(
                Action::Classify {
                    category: "exposed_garbage".into(),
                },
                officer(),
            ),
            t0() + 10 * MINUTE,
        )
        .unwrap();
    assert_eq!(out.case.category, "exposed_garbage");
    let domain = e
        .taxonomy()
        .category("exposed_garbage")
        .unwrap()
        .domain
        .as_str();
    assert_eq!(out.case.domain.as_str(), domain);
    assert_eq!(by(&mut e, "triage"), vec![other.case.id, inspected.case.id]);
    assert_eq!(by(&mut e, "exposed_garbage"), vec![first.case.id]);
    let stored = e.store().load_all_cases().unwrap();
    let c = stored.iter().find(|c| c.id == first.case.id).unwrap();
    assert_eq!(c.category, "exposed_garbage");
    let log = e.log(first.case.id).unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, "classify");
    assert!(
        last.note.starts_with("分拨：待分拨诉求 → "),
        "{}",
        last.note
    );
    assert!(
        last.note.ends_with("；说明"),
        "staff's words kept: {}",
        last.note
    );
    // The dedup index re-keyed the case: a garbage report next to it joins it.
    let dup = e
        .submit(report(
            "exposed_garbage",
            near,
            Channel::Citizen,
            t0() + 20 * MINUTE,
        ))
        .unwrap();
    assert!(dup.merged, "{}", dup.reason);
    assert_eq!(dup.case.id, first.case.id);
    // And after a restart (the index rebuilt from the stored cases).
    drop(e);
    let mut e = b.engine();
    let again = e
        .submit(report(
            "exposed_garbage",
            p,
            Channel::Citizen,
            t0() + 30 * MINUTE,
        ))
        .unwrap();
    assert_eq!(again.case.id, first.case.id);
    assert_replay(e.store());
}
