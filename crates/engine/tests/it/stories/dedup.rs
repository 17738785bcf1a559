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
