//! Store stories — failures change nothing: bad input, failed commits (state intact, only what was touched reloaded), PostgreSQL statement time limits.

use super::*;

story!(bad_input_changes_nothing);
fn bad_input_changes_nothing(b: &Backend) {
    let mut e = b.engine();
    let ok = e
        .submit(report("street_vending", spot(4), Channel::Citizen, t0()))
        .unwrap();
    let before: Counts = e.store().counts().unwrap();
    let errs = [
        e.submit(report("no_such_category", spot(4), Channel::Citizen, t0()))
            .unwrap_err()
            .to_string(),
        e.submit(report(
            "street_vending",
            [121.4737, 31.2304],
            Channel::Citizen,
            t0(),
        ))
        .unwrap_err()
        .to_string(),
        e.submit(report(
            "street_vending",
            [f64::NAN, 31.2],
            Channel::Citizen,
            t0(),
        ))
        .unwrap_err()
        .to_string(),
        e.submit(NewReport {
            text: "长".repeat(5000),
            ..report("street_vending", spot(4), Channel::Citizen, t0())
        })
        .unwrap_err()
        .to_string(),
        e.transition(ok.case.id, cmd(Action::Close, officer()), t0())
            .unwrap_err()
            .to_string(),
        e.transition(ok.case.id, cmd(Action::File, inspector()), t0())
            .unwrap_err()
            .to_string(),
        e.transition(424_242, cmd(Action::File, officer()), t0())
            .unwrap_err()
            .to_string(),
        e.transition(
            ok.case.id,
            cmd(Action::Reject { reason: "".into() }, officer()),
            t0(),
        )
        .unwrap_err()
        .to_string(),
    ];
    let expect = [
        "category \"no_such_category\" is not in the taxonomy",
        "lies outside the territory",
        "not a valid WGS-84 position",
        "at most 4000",
        "not allowed while the case is reported",
        "role inspector may not file",
        "case 424242 does not exist",
        "a reason is required",
    ];
    for (got, want) in errs.iter().zip(expect) {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
    }
    assert_eq!(
        e.store().counts().unwrap(),
        before,
        "nothing stored changed"
    );
    assert_eq!(e.case(ok.case.id).unwrap().unwrap(), ok.case);
    // A good request still works afterwards.
    e.transition(ok.case.id, cmd(Action::File, officer()), t0() + MINUTE)
        .unwrap();
    assert_replay(e.store());
}

story!(failed_commits_leave_state_intact);
fn failed_commits_leave_state_intact(b: &Backend) {
    let (mut e, fail) = flaky_engine(b);
    let o = e
        .submit(report("street_vending", spot(8), Channel::Citizen, t0()))
        .unwrap();
    // One failing commit of a single request: an error, and nothing changed.
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let err = e
        .transition(o.case.id, cmd(Action::File, officer()), t0() + MINUTE)
        .unwrap_err();
    assert!(!err.is_user_error(), "{err}");
    assert_eq!(
        e.case(o.case.id).unwrap().unwrap(),
        o.case,
        "the cache kept the committed state"
    );
    let dup = e
        .submit(report(
            "street_vending",
            spot(8),
            Channel::Citizen,
            t0() + 2 * MINUTE,
        ))
        .unwrap();
    assert!(dup.merged, "the dedup index survived the failure");
    // A failing batch is retried request by request: all succeed.
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let answers = e.execute(vec![
        Request::Report(report(
            "noise",
            spot(9),
            Channel::Citizen,
            t0() + 3 * MINUTE,
        )),
        Request::Transition {
            case: o.case.id,
            command: cmd(Action::File, officer()),
            now: t0() + 3 * MINUTE,
        },
        Request::Report(report("no_such_category", spot(9), Channel::Citizen, t0())),
    ]);
    assert!(answers[0].is_ok() && answers[1].is_ok());
    assert!(answers[2].as_ref().unwrap_err().is_user_error());
    drop(e);
    let mut s = b.store();
    assert_replay(s.as_mut());
    assert_eq!(s.counts().unwrap().cases, 2);
}

/// A failed commit reloads only the cases its batch touched, never every open case (a
/// request the store refuses must not cost everyone a reload); the cache still equals
/// the store afterwards.
fn failed_commit_reloads_only_what_it_touched(b: &Backend) {
    use cityos_engine::runloop::RunLoop;
    let (mut e, fail) = flaky_engine(b);
    let cats = ["noise", "street_vending", "exposed_garbage"];
    let reqs: Vec<Request> = (0..30)
        .map(|i| Request::Report(report(cats[i % 3], spot(i), Channel::Citizen, t0())))
        .collect();
    assert!(e.execute(reqs).iter().all(|a| a.is_ok()));
    let open_before: usize = e.open_cases().count();
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let first = e.open_cases().map(|c| c.id).min().unwrap();
    let a = e.execute(vec![
        Request::Transition {
            case: first,
            command: cmd(Action::File, officer()),
            now: t0() + MINUTE,
        },
        Request::Report(report("noise", spot(40), Channel::Citizen, t0() + MINUTE)),
    ]);
    assert!(a.iter().all(|a| a.is_ok()), "{a:?}");
    let (full, partial) = e.reloads();
    assert_eq!(full, 0, "no reload of every open case");
    assert!(partial >= 1);
    assert_eq!(e.open_cases().count(), open_before + 1);
    // The pipelined run loop: a refused commit, then the same.
    let writer = Flaky::over(b, &fail);
    let rl = RunLoop::start_pipelined(e, writer, 64, 16);
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let r = rl.handle.call(Request::Report(report(
        "noise",
        spot(41),
        Channel::Citizen,
        t0() + 2 * MINUTE,
    )));
    assert!(
        r.is_err(),
        "a single request whose commit failed gets the error"
    );
    let r = rl.handle.call(Request::Report(report(
        "noise",
        spot(41),
        Channel::Citizen,
        t0() + 2 * MINUTE,
    )));
    assert!(r.is_ok());
    let (mut e, _) = rl.stop();
    assert_eq!(e.reloads().0, 0, "no reload of every open case");
    let mut cached: Vec<_> = e.open_cases().cloned().collect();
    cached.sort_by_key(|c| c.id);
    assert_eq!(cached, e.store().load_open_cases().unwrap());
    assert_replay(e.store());
}

story!(failed_commit_reloads_only_what_it_touched);

/// PostgreSQL connections carry a name (`application_name`, so an operator can find
/// them) and a statement time limit (10 s unless the URL's `options` set one); a
/// statement past its limit is a `Timeout`, not a generic database error.
#[test]
fn postgres_statements_have_a_time_limit() {
    let Some(b) = Backend::postgres("statement_timeout") else {
        return;
    };
    let Backend::Postgres { url, schema } = &b else {
        unreachable!()
    };
    let setting = |s: &mut dyn Store, name: &str| {
        s.query_groups(&cityos_engine::query::Sql {
            text: format!("SELECT current_setting('{name}'), 0::bigint"),
            params: vec![],
        })
        .unwrap()[0]
            .0
            .clone()
    };
    let mut s = b.store();
    assert_eq!(setting(s.as_mut(), "statement_timeout"), "10s");
    assert_eq!(setting(s.as_mut(), "application_name"), "cityos");
    let sep = if url.contains('?') { '&' } else { '?' };
    let short =
        format!("{url}{sep}options=-c%20statement_timeout%3D1000&application_name=cityos_slow");
    let mut s = cityos_engine::PostgresStore::connect(&short, Some(schema)).unwrap();
    assert_eq!(setting(&mut s, "application_name"), "cityos_slow");
    let slow = s.query_groups(&cityos_engine::query::Sql {
        text: "SELECT 'x', COUNT(*) FROM pg_sleep(4)".into(),
        params: vec![],
    });
    assert!(matches!(slow, Err(StoreError::Timeout(_))), "{slow:?}");
    // The connection is still usable afterwards.
    assert_eq!(setting(&mut s, "statement_timeout"), "1s");
}
