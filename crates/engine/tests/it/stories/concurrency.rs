//! Store stories — concurrency: transitions racing on one case, and the pipelined run loop committing before it answers.

use super::*;

story!(concurrent_transitions_on_one_case);
fn concurrent_transitions_on_one_case(b: &Backend) {
    let mut e = b.engine();
    let o = e
        .submit(report("street_vending", spot(5), Channel::Citizen, t0()))
        .unwrap();
    let id = o.case.id;
    e.transition(id, cmd(Action::File, officer()), t0())
        .unwrap();
    // Two officers dispatch at once, both having read version 2: one wins.
    let v = e.case(id).unwrap().unwrap().version;
    let mk = || {
        let mut c = cmd(
            Action::Dispatch {
                departments: vec![],
            },
            officer(),
        );
        c.expected_version = Some(v);
        Request::Transition {
            case: id,
            command: c,
            now: t0() + MINUTE,
        }
    };
    let answers = e.execute(vec![mk(), mk()]);
    assert!(matches!(answers[0], Ok(Response::Transition(_))));
    assert!(
        matches!(
            answers[1],
            Err(EngineError::Workflow(WorkflowError::VersionConflict { .. }))
        ),
        "{:?}",
        answers[1].as_ref().err()
    );
    // Two engines (two nodes) on one database: the stale one is refused by the store.
    let mut other = b.engine();
    let c = e.case(id).unwrap().unwrap();
    let lead = c.lead_task().unwrap().department.clone();
    e.transition(
        id,
        cmd(Action::Acknowledge, handler(&lead)),
        t0() + 2 * MINUTE,
    )
    .unwrap();
    let stale = other.transition(
        id,
        cmd(
            Action::Return {
                reason: "不是我们的".into(),
            },
            handler(&lead),
        ),
        t0() + 3 * MINUTE,
    );
    match stale {
        Err(EngineError::Store(StoreError::Conflict { case, .. })) => assert_eq!(case, id),
        Err(EngineError::Workflow(
            WorkflowError::NotAllowedInState { .. } | WorkflowError::NotYourTask { .. },
        )) => {}
        other => panic!("stale writer must not win: {other:?}"),
    }
    let stored = e.store().load_case(id).unwrap().unwrap();
    assert_eq!(stored.state, State::Acknowledged);
    assert_replay(e.store());
    assert_replay(other.store());
}

story!(pipelined_run_loop_commits_before_answering);
fn pipelined_run_loop_commits_before_answering(b: &Backend) {
    use cityos_engine::runloop::RunLoop;
    let fail = FailCount::default();
    let writer = Flaky::over(b, &fail);
    let rl = RunLoop::start_pipelined(b.engine(), writer, 1024, 64);
    let h = rl.handle.clone();
    // Many submitters at once: every answer arrives, and each answered case is stored.
    let answers: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|k| {
                let h = h.clone();
                s.spawn(move || {
                    (0..50)
                        .map(|i| {
                            let cat = ["noise", "street_vending", "exposed_garbage"][i % 3];
                            h.call(Request::Report(report(
                                cat,
                                spot(k * 10 + i % 10),
                                Channel::Citizen,
                                t0() + (i as i64) * MINUTE,
                            )))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|j| j.join().unwrap()).collect()
    });
    assert_eq!(answers.len(), 200);
    let mut ids = Vec::new();
    for a in answers {
        match a.unwrap() {
            Response::Intake(o) => ids.push(o.case.id),
            other => panic!("{other:?}"),
        }
    }
    // A failing commit in the pipeline: the batch is retried request by request.
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let first = ids[0];
    let r = h.call(file_unscoped(first, t0() + HOUR));
    assert!(
        r.is_err(),
        "a single request whose commit failed gets the error"
    );
    let again = h.call(file_unscoped(first, t0() + HOUR)).unwrap();
    match again {
        Response::Transition(o) => assert_eq!(o.case.state, State::Filed),
        other => panic!("{other:?}"),
    }
    // A failure while several batches are in flight: later batches are refused by the
    // writer and retried; at most the failing single-request batch sees an error.
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let burst: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|k| {
                let h = h.clone();
                s.spawn(move || {
                    (0..10)
                        .map(|i| {
                            h.call(Request::Report(report(
                                "noise",
                                spot(60 + k * 10 + i),
                                Channel::Citizen,
                                t0() + 2 * HOUR,
                            )))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|j| j.join().unwrap()).collect()
    });
    assert!(burst.iter().filter(|a| a.is_err()).count() <= 1);
    for a in burst.into_iter().flatten() {
        if let Response::Intake(o) = a {
            ids.push(o.case.id);
        }
    }
    let seen = h.with(|e| e.case(1).unwrap().map(|c| c.id)).unwrap();
    assert_eq!(seen, Some(1));
    let (mut engine, stats) = rl.stop();
    assert!(stats.batches >= 1 && stats.requests >= 240);
    let n = assert_replay(engine.store());
    ids.sort();
    ids.dedup();
    assert_eq!(n, ids.len(), "every answered case is stored");
}

/// An officer without a scope files `case` (a request that may file any case).
fn file_unscoped(case: cityos_core::case::CaseId, now: Millis) -> Request {
    Request::Transition {
        case,
        command: cmd(
            Action::File,
            Actor {
                scope: None,
                ..officer()
            },
        ),
        now,
    }
}
