//! Store stories — the case log: a random walk replays exactly, the log is append-only, committed events are announced and replayable.

use super::*;

story!(random_walk_replays_exactly);
fn random_walk_replays_exactly(b: &Backend) {
    let mut e = b.engine();
    let mut rng = Rng::new(99);
    let cats: Vec<String> = e
        .taxonomy()
        .categories
        .iter()
        .map(|c| c.code.clone())
        .collect();
    let mut now = t0();
    let mut ids = Vec::new();
    for i in 0..120 {
        now += 3 * MINUTE;
        let cat = &cats[rng.below(cats.len() as u64) as usize];
        let ch = [Channel::Citizen, Channel::Inspector, Channel::Sensor][i % 3];
        let o = e
            .submit(report(cat, spot(rng.below(20) as usize), ch, now))
            .unwrap();
        ids.push(o.case.id);
    }
    // Try random actions by plausible actors; most are refused, some apply.
    let actions = [
        Action::File,
        Action::Dispatch {
            departments: vec![],
        },
        Action::Acknowledge,
        Action::Start,
        Action::Handle,
        Action::Verify,
        Action::RejectVerification,
        Action::Close,
        Action::Return {
            reason: "错派".into(),
        },
        Action::Suspend {
            reason: "挂账".into(),
        },
        Action::Resume,
    ];
    let mut applied = 0;
    for _ in 0..3000 {
        now += MINUTE;
        let id = ids[rng.below(ids.len() as u64) as usize];
        let c = e.case(id).unwrap().unwrap();
        let a = actions[rng.below(actions.len() as u64) as usize].clone();
        let actor = match &a {
            Action::Acknowledge | Action::Start | Action::Handle | Action::Return { .. } => {
                match c.tasks.get(rng.below(c.tasks.len().max(1) as u64) as usize) {
                    Some(t) => handler(&t.department),
                    None => continue,
                }
            }
            Action::Verify | Action::RejectVerification => inspector(),
            _ => Actor {
                scope: None,
                ..officer()
            },
        };
        if e.transition(id, cmd(a, actor), now).is_ok() {
            applied += 1;
        }
        if rng.chance(0.02) {
            e.tick(now).unwrap();
        }
    }
    assert!(applied > 300, "{applied} transitions applied");
    let n = assert_replay(e.store());
    assert!(n >= 100);
    // A restarted engine sees the same open cases.
    let open: Vec<_> = {
        let mut v: Vec<_> = e.open_cases().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    };
    let e2 = b.engine();
    let mut open2: Vec<_> = e2.open_cases().cloned().collect();
    open2.sort_by_key(|c| c.id);
    assert_eq!(
        open.iter().map(|c| c.id).collect::<Vec<_>>(),
        open2.iter().map(|c| c.id).collect::<Vec<_>>()
    );
    for (a, b) in open.iter().zip(&open2) {
        assert_eq!(a, b, "case {} differs after restart", a.number);
    }
}

story!(log_is_append_only);
fn log_is_append_only(b: &Backend) {
    let mut e = b.engine();
    e.submit(report("noise", spot(7), Channel::Citizen, t0()))
        .unwrap();
    match b {
        Backend::Sqlite(dir) => {
            let conn =
                cityos_engine::store::sqlite::rusqlite::Connection::open(dir.join("cityos.db"))
                    .unwrap();
            let err = conn
                .execute("UPDATE case_log SET note = 'forged'", [])
                .unwrap_err()
                .to_string();
            assert!(err.contains("append-only"), "{err}");
            let err = conn
                .execute("DELETE FROM case_log", [])
                .unwrap_err()
                .to_string();
            assert!(err.contains("append-only"), "{err}");
        }
        Backend::Postgres { url, schema } => {
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            client
                .batch_execute(&format!("SET search_path TO {schema}"))
                .unwrap();
            for sql in [
                "UPDATE case_log SET note = 'forged'",
                "DELETE FROM case_log",
            ] {
                let err = client.execute(sql, &[]).unwrap_err();
                let msg = err
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_default();
                assert!(msg.contains("append-only"), "{err:?}");
            }
        }
    }
    assert_replay(e.store());
}

story!(committed_events_are_announced_and_replayable);
fn committed_events_are_announced_and_replayable(b: &Backend) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut e = b.engine();
    let s2 = seen.clone();
    e.set_event_sink(move |v| s2.lock().unwrap().extend(v));
    let a = e
        .submit(report("noise", spot(11), Channel::Citizen, t0()))
        .unwrap();
    e.submit(report("noise", spot(11), Channel::Citizen, t0() + MINUTE))
        .unwrap();
    e.submit(report("waterlogging", spot(12), Channel::Sensor, t0()))
        .unwrap();
    e.transition(a.case.id, cmd(Action::File, officer()), t0() + MINUTE)
        .unwrap();
    assert!(e
        .transition(a.case.id, cmd(Action::Close, officer()), t0())
        .is_err());
    let live = seen.lock().unwrap().clone();
    let kinds: Vec<&str> = live.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "merged",
            "created",
            "transitioned",
            "transitioned",
            "transitioned"
        ]
    );
    assert!(live.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    // The store replays exactly what was announced, and resumes after any id.
    let stored = e.store().events_after(0, 100, None, None).unwrap();
    assert_eq!(
        stored.iter().map(|x| x.id).collect::<Vec<_>>(),
        live.iter().map(|x| x.id).collect::<Vec<_>>()
    );
    assert_eq!(stored[0].number, live[0].number);
    let after = e.store().events_after(live[2].id, 100, None, None).unwrap();
    assert_eq!(after.len(), live.len() - 3);
    let elsewhere = e
        .store()
        .events_after(0, 100, Some("310104016"), None)
        .unwrap();
    assert!(elsewhere.is_empty());
    let here = e
        .store()
        .events_after(0, 100, Some("310104003"), None)
        .unwrap();
    assert_eq!(here.len(), live.len());
    // Numbers continue after a restart.
    let last = e.last_event();
    drop(e);
    let mut e = b.engine();
    assert_eq!(e.last_event(), last);
    let o = e
        .submit(report("noise", spot(13), Channel::Citizen, t0()))
        .unwrap();
    let next = e.store().events_after(last, 10, None, None).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].case_id, o.case.id);
    if cityos_engine::ClusterStore::shared_ids(e.store()) {
        // PostgreSQL: a fresh block of the event sequence (several nodes never share a
        // number), so greater, not necessarily the next.
        assert!(next[0].id > last);
    } else {
        assert_eq!(next[0].id, last + 1);
    }
}
