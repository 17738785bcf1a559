//! Store stories — idempotency keys: a keyed request's answer is committed in its case's transaction, or not at all.

use super::*;

fn keyed(req: Request, key: &str) -> Request {
    Request::Keyed {
        request: Box::new(req),
        key: cityos_engine::engine::IdempotencyKey {
            key: key.into(),
            request_hash: "h".into(),
            created_at: t0(),
            render: std::sync::Arc::new(|r| match r {
                Response::Intake(o) => (201, format!("{{\"case\":{}}}", o.case.id)),
                _ => (200, "{}".into()),
            }),
        },
    }
}

/// A keyed request's answer is written in the transaction of its case: after a commit
/// (and a "crash": the engine dropped without stopping) both are there; after a failed
/// commit, neither; a refused request records nothing.
fn idempotency_key_is_committed_with_its_case(b: &Backend) {
    let (mut e, fail) = flaky_engine(b);
    let r = |n: usize| Request::Report(report("noise", spot(n), Channel::Citizen, t0()));
    let other = Request::Report(report("street_vending", spot(2), Channel::Citizen, t0()));
    let a = e.execute(vec![keyed(r(1), "k1"), other]);
    let id = match &a[0] {
        Ok(Response::Intake(o)) => o.case.id,
        other => panic!("{other:?}"),
    };
    // The commit of a keyed request that fails leaves neither a case nor a key.
    fail.store(1, std::sync::atomic::Ordering::SeqCst);
    let failed = e.execute(vec![keyed(r(3), "k2")]);
    assert!(failed[0].is_err());
    // A refused request records nothing.
    let refused = e.execute(vec![keyed(
        Request::Report(report("no_such_category", spot(4), Channel::Citizen, t0())),
        "k3",
    )]);
    assert!(refused[0].as_ref().unwrap_err().is_user_error());
    drop(e); // a crash: nothing else runs
    let mut s = b.store();
    let k1 = s
        .idempotent("k1")
        .unwrap()
        .expect("the key was committed with its case");
    assert_eq!(
        (k1.status, k1.body.as_str()),
        (201, format!("{{\"case\":{id}}}").as_str())
    );
    assert!(s.load_case(id).unwrap().is_some());
    assert_eq!(s.idempotent("k2").unwrap(), None);
    assert_eq!(s.idempotent("k3").unwrap(), None);
    assert_eq!(s.counts().unwrap().cases, 2);
    // A second record for a stored key keeps the first answer (another node's retry).
    let mut e = config().engine(s).unwrap();
    let again = e.execute(vec![keyed(
        Request::Report(report("exposed_garbage", spot(5), Channel::Citizen, t0())),
        "k1",
    )]);
    assert!(again[0].is_ok());
    assert_eq!(e.store().idempotent("k1").unwrap().unwrap().body, k1.body);
}

story!(idempotency_key_is_committed_with_its_case);
