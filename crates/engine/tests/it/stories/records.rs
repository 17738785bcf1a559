//! Store stories — what the store keeps beside cases: accounts and idempotency records, photos stored once by content, datasets replaced by a new import, the rooms' live state (alarm and alert states, silences, case links, open CAP chains), the scenario packs' state and audit trail, the meals room's rows and ledgers (an entry written twice fails its whole transaction), the hash-chained audit trail and the dataset grants, kept across a reopen.

use super::*;

story!(accounts_and_idempotency_records);
fn accounts_and_idempotency_records(b: &Backend) {
    use cityos_engine::store::{IdempotentAnswer, User};
    let mut s = b.store();
    assert_eq!(s.user("zhang").unwrap(), None);
    let mut u = User {
        username: "zhang".into(),
        display_name: "张".into(),
        password_hash: "$argon2id$x".into(),
        role: "district_officer".into(),
        department: None,
        scope: Some("310104".into()),
        created_at: 1,
    };
    s.put_user(&u).unwrap();
    assert_eq!(s.user("zhang").unwrap().as_ref(), Some(&u));
    u.role = "analyst".into();
    s.put_user(&u).unwrap();
    assert_eq!(s.user("zhang").unwrap().unwrap().role, "analyst");
    let a = IdempotentAnswer {
        key: "k1".into(),
        request_hash: "h".into(),
        status: 201,
        body: "{}".into(),
        created_at: 5,
    };
    assert_eq!(s.put_idempotent(&a).unwrap(), None, "first answer stored");
    let again = IdempotentAnswer {
        body: "{\"x\":1}".into(),
        ..a.clone()
    };
    assert_eq!(
        s.put_idempotent(&again).unwrap(),
        Some(a.clone()),
        "the first answer wins"
    );
    assert_eq!(s.idempotent("k1").unwrap(), Some(a));
}

story!(photos_are_stored_once_by_content);
fn photos_are_stored_once_by_content(b: &Backend) {
    use cityos_engine::store::Media;
    let mut s = b.store();
    let m = Media {
        id: "ab12".into(),
        content_type: "image/png".into(),
        bytes: vec![0x89, b'P', b'N', b'G', 0, 1, 2, 255],
        created_at: t0(),
    };
    s.put_media(&m).unwrap();
    // The same photo again is a no-op, not an error.
    s.put_media(&Media {
        created_at: t0() + HOUR,
        ..m.clone()
    })
    .unwrap();
    assert_eq!(s.media("ab12").unwrap(), Some(m));
    assert_eq!(s.media("cd34").unwrap(), None);
}

story!(datasets_are_replaced_by_a_new_import);
fn datasets_are_replaced_by_a_new_import(b: &Backend) {
    use cityos_engine::store::Dataset;
    let mut s = b.store();
    let d = Dataset {
        name: "households".into(),
        owner: "dist-civil-affairs".into(),
        sensitivity: "sensitive".into(),
        columns: r#"["id","elder_alone"]"#.into(),
        rows: r#"[{"id":"H1","elder_alone":"1"}]"#.into(),
        row_count: 1,
        imported_at: t0(),
    };
    s.put_dataset(&d).unwrap();
    let again = Dataset {
        rows: r#"[{"id":"H1","elder_alone":"1"},{"id":"H2","elder_alone":"0"}]"#.into(),
        row_count: 2,
        imported_at: t0() + HOUR,
        ..d.clone()
    };
    s.put_dataset(&again).unwrap();
    assert_eq!(s.datasets().unwrap(), vec![again]);
}

story!(room_state_is_kept_across_a_reopen);
fn room_state_is_kept_across_a_reopen(b: &Backend) {
    use cityos_engine::store::{AlarmRow, AlertRow, CapMessage, SilenceRow};
    let mut s = b.store();
    assert!(s.alarm_states().unwrap().is_empty());
    let firing = AlarmRow {
        device: "WL-001".into(),
        rule: "underpass_water_high".into(),
        state: "firing".into(),
        since: t0(),
        case_id: Some(7),
    };
    let pending = AlarmRow {
        device: "WL-002".into(),
        state: "pending".into(),
        case_id: None,
        ..firing.clone()
    };
    s.put_alarm_states(&[firing.clone(), pending.clone()])
        .unwrap();
    let cleared = AlarmRow {
        state: "normal".into(),
        since: 0,
        ..firing.clone()
    };
    s.put_alarm_states(std::slice::from_ref(&cleared)).unwrap();

    let alert = AlertRow {
        fingerprint: "crowding_wukang@310104".into(),
        rule: "crowding_wukang".into(),
        region: "310104".into(),
        state: "firing".into(),
        since: t0(),
        level: "orange".into(),
        value: Some(1700.0),
        told: true,
    };
    let gone = AlertRow {
        fingerprint: "heat@310104".into(),
        rule: "heat".into(),
        state: "pending".into(),
        value: None,
        told: false,
        ..alert.clone()
    };
    s.put_alert_states(&[alert.clone(), gone.clone()], &[])
        .unwrap();
    s.put_alert_states(&[], std::slice::from_ref(&gone.fingerprint))
        .unwrap();
    let silence = SilenceRow {
        id: 3,
        rule: "crowding_wukang".into(),
        region: "310104".into(),
        owner: "zhang".into(),
        reason: "演练".into(),
        ends_at: t0() + HOUR,
    };
    s.put_silence(&silence).unwrap();
    // Ended early: only its end moves.
    s.put_silence(&SilenceRow {
        ends_at: t0() + 1,
        owner: "someone else".into(),
        ..silence.clone()
    })
    .unwrap();
    s.put_alert_case(&alert.fingerprint, 7).unwrap();
    s.put_rule_case("lone_elder_water", "H-001", Some(9))
        .unwrap();
    s.put_rule_case("lone_elder_water", "H-002", Some(10))
        .unwrap();
    s.put_rule_case("lone_elder_water", "H-002", None).unwrap();
    // CAP chains: one cancelled (closed), one still open with two messages.
    let cap = |id: &str, fp: &str, kind: &str, sent: i64| CapMessage {
        identifier: id.into(),
        fingerprint: fp.into(),
        msg_type: kind.into(),
        sent,
        headline: "h".into(),
        xml: "<alert/>".into(),
    };
    for m in [
        cap("a1", "x@1", "Alert", t0()),
        cap("a2", "x@1", "Cancel", t0() + 1),
        cap("b1", "y@1", "Alert", t0() + 2),
        cap("b2", "y@1", "Update", t0() + 3),
        cap("a3", "x@1", "Alert", t0() + 4),
    ] {
        s.put_cap(&m).unwrap();
    }
    drop(s);

    let mut s = b.store();
    assert_eq!(s.alarm_states().unwrap(), vec![cleared, pending]);
    assert_eq!(s.alert_states().unwrap(), vec![alert.clone()]);
    assert_eq!(
        s.silences().unwrap(),
        vec![SilenceRow {
            ends_at: t0() + 1,
            ..silence
        }]
    );
    assert_eq!(
        s.alert_cases().unwrap(),
        vec![(alert.fingerprint.clone(), 7)]
    );
    assert_eq!(
        s.rule_cases("lone_elder_water").unwrap(),
        vec![("H-001".to_string(), 9)]
    );
    assert!(s.rule_cases("other").unwrap().is_empty());
    assert_eq!(
        s.cap_chains().unwrap(),
        vec![
            ("x@1".to_string(), "a3".to_string(), t0() + 4),
            ("y@1".to_string(), "b1".to_string(), t0() + 2),
            ("y@1".to_string(), "b2".to_string(), t0() + 3),
        ]
    );
}

story!(scenario_packs_and_their_audit_are_kept_across_a_reopen);
fn scenario_packs_and_their_audit_are_kept_across_a_reopen(b: &Backend) {
    use cityos_engine::store::{ScenarioAuditRow, ScenarioPackRow};
    let mut s = b.store();
    assert!(s.scenario_packs().unwrap().is_empty());
    let disabled = ScenarioPackRow {
        name: "flooding".into(),
        enabled: false,
        text: None,
        updated_at: t0(),
    };
    let audit = |at: i64, action: &str, ok: bool, problems: &str| ScenarioAuditRow {
        id: 0,
        at,
        actor: "admin".into(),
        pack: "flooding".into(),
        action: action.into(),
        version: "1.0.0".into(),
        ok,
        problems: problems.into(),
    };
    s.record_scenario(Some(&disabled), &audit(t0(), "disable", true, "[]"))
        .unwrap();
    s.record_scenario(None, &audit(t0() + 1, "reload", false, r#"["3:1: bad"]"#))
        .unwrap();
    let reloaded = ScenarioPackRow {
        enabled: true,
        text: Some("code = \"flooding\"".into()),
        updated_at: t0() + 2,
        ..disabled.clone()
    };
    s.record_scenario(Some(&reloaded), &audit(t0() + 2, "reload", true, "[]"))
        .unwrap();
    drop(s);
    let mut s = b.store();
    assert_eq!(s.scenario_packs().unwrap(), vec![reloaded]);
    let trail = s.scenario_audit("flooding").unwrap();
    let got: Vec<(i64, &str, bool, &str)> = trail
        .iter()
        .map(|r| (r.at - t0(), r.action.as_str(), r.ok, r.problems.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (0, "disable", true, "[]"),
            (1, "reload", false, r#"["3:1: bad"]"#),
            (2, "reload", true, "[]"),
        ]
    );
    assert!(trail.windows(2).all(|w| w[0].id < w[1].id));
    assert!(s.scenario_audit("gas_leak").unwrap().is_empty());
}

story!(life_circle_uploads_round_trip);
fn life_circle_uploads_round_trip(b: &Backend) {
    use cityos_engine::store::LifeCircleUpload;
    let mut s = b.store();
    assert!(s.lifecircle_uploads().unwrap().is_empty());
    let csv = LifeCircleUpload {
        name: "own-pharmacies".into(),
        kind: "facilities".into(),
        format: "csv".into(),
        body: "id,type,name,lon,lat\nP-1,pharmacy,\"药房, 一号\",121.43,31.18\n".into(),
        actor: "zhang.district".into(),
        at: 1_700_000_000_000,
    };
    let net = LifeCircleUpload {
        name: "network".into(),
        kind: "network".into(),
        format: "geojson".into(),
        body: r#"{"type":"FeatureCollection","features":[]}"#.into(),
        actor: "admin".into(),
        at: 1_700_000_000_001,
    };
    s.put_lifecircle_upload(&net).unwrap();
    s.put_lifecircle_upload(&csv).unwrap();
    assert_eq!(
        s.lifecircle_uploads().unwrap(),
        vec![net.clone(), csv.clone()]
    );
    // The same name replaces; a reopened store has the same rows.
    let newer = LifeCircleUpload {
        body: "id,type,name,lon,lat\n".into(),
        at: csv.at + 5,
        ..csv.clone()
    };
    s.put_lifecircle_upload(&newer).unwrap();
    drop(s);
    let mut s = b.store();
    assert_eq!(s.lifecircle_uploads().unwrap(), vec![net, newer]);
    assert!(s.delete_lifecircle_upload("network").unwrap());
    assert!(!s.delete_lifecircle_upload("network").unwrap());
    assert_eq!(s.lifecircle_uploads().unwrap().len(), 1);
}

story!(meal_rows_and_ledgers_are_kept_and_never_charged_twice);
fn meal_rows_and_ledgers_are_kept_and_never_charged_twice(b: &Backend) {
    use cityos_engine::store::{MealLedgerRow, MealRow};
    let mut s = b.store();
    let row = |id: &str, body: &str| MealRow {
        kind: "order".into(),
        id: id.into(),
        body: body.into(),
        at: t0(),
    };
    let entry = |seq: i64, amount: i64, reference: &str| MealLedgerRow {
        elder: "E000001".into(),
        seq,
        at: t0() + seq,
        kind: if amount > 0 { "top_up" } else { "payment" }.into(),
        amount,
        reference: reference.into(),
    };
    s.record_meals(&[], &[entry(1, 2_000, "family")]).unwrap();
    s.record_meals(
        &[row("M1", "{\"state\":\"placed\"}")],
        &[entry(2, -533, "M1")],
    )
    .unwrap();
    // The same entry again (a retried checkout): refused, and the order row with it.
    assert!(s
        .record_meals(&[row("M2", "{}")], &[entry(2, -533, "M2")])
        .is_err());
    // An upsert replaces the body.
    s.record_meals(&[row("M1", "{\"state\":\"served\"}")], &[])
        .unwrap();
    drop(s);
    let mut s = b.store();
    let rows = s.meal_rows("order").unwrap();
    assert_eq!(rows.len(), 1, "M2 was rolled back: {rows:?}");
    assert_eq!(rows[0].body, "{\"state\":\"served\"}");
    assert!(s.meal_rows("elder").unwrap().is_empty());
    let ledger = s.meal_ledger().unwrap();
    assert_eq!(
        ledger,
        vec![entry(1, 2_000, "family"), entry(2, -533, "M1")]
    );
    assert_eq!(ledger.iter().map(|e| e.amount).sum::<i64>(), 1_467);
}

story!(the_audit_chain_and_grants_are_kept_and_the_chain_is_append_only);
fn the_audit_chain_and_grants_are_kept_and_the_chain_is_append_only(b: &Backend) {
    use cityos_core::audit::{verify, Entry};
    use cityos_engine::store::GrantRow;
    let mut s = b.store();
    assert_eq!(s.audit_head().unwrap(), None);
    let mut entries: Vec<Entry> = Vec::new();
    for i in 0..5 {
        let prev = entries.last().map(|e| (e.seq, e.hash.as_str()));
        entries.push(Entry::next(
            prev,
            t0() + i,
            "admin",
            "sign_in",
            "admin",
            "{}",
        ));
    }
    s.append_audit(&entries[..2]).unwrap();
    s.append_audit(&entries[2..]).unwrap();
    // The same sequence number twice is refused (the chain has no forks).
    assert!(s.append_audit(&entries[4..]).is_err());
    drop(s);
    let mut s = b.store();
    assert_eq!(s.audit_head().unwrap().as_ref(), entries.last());
    assert_eq!(s.audit_page(0, 100).unwrap(), entries);
    assert_eq!(s.audit_page(3, 1).unwrap(), entries[3..4].to_vec());
    assert_eq!(verify(&s.audit_page(0, 100).unwrap()).unwrap().0, 5);

    let g = GrantRow {
        id: 0,
        dataset: "lone_elder_households".into(),
        consumer: "dist-civil".into(),
        columns: r#"["household","water_m3"]"#.into(),
        purpose: "welfare check".into(),
        until: t0() + 86_400_000,
        unmask: false,
        state: "requested".into(),
        requested_by: "chen.roads".into(),
        requested_at: t0(),
        decided_by: None,
        decided_at: None,
        reason: String::new(),
    };
    let id = s.insert_grant(&g).unwrap();
    let id2 = s.insert_grant(&g).unwrap();
    assert!(id2 > id);
    let approved = GrantRow {
        id,
        state: "approved".into(),
        decided_by: Some("admin".into()),
        decided_at: Some(t0() + 5),
        ..g.clone()
    };
    s.update_grant(&approved).unwrap();
    drop(s);
    let mut s = b.store();
    let all = s.grants().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], approved);
    assert_eq!(all[1], GrantRow { id: id2, ..g });
    assert_eq!(s.dataset("nothing").unwrap(), None);
}
