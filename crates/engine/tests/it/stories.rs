//! Store stories: the same bodies against SQLite and PostgreSQL.

use super::backend::{config, Backend};
use crate::story;
use cityos_core::case::{replay, Channel, State};
use cityos_core::rng::Rng;
use cityos_core::time::{local, Date, Millis, HOUR, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport, WorkflowError};
use cityos_core::{Level, Role};
use cityos_engine::engine::{Engine, EngineError, Request, Response};
use cityos_engine::store::{Batch, Counts, StoreError};
use cityos_engine::Store;

fn t0() -> Millis {
    local(Date::new(2026, 11, 25).unwrap(), 10, 0)
}

/// A point inside the n-th grid of 天平路.
fn spot(n: usize) -> [f64; 2] {
    let c = config();
    let t = &c.territory;
    let sub = t.by_code("310104003").unwrap();
    let grid = t
        .regions()
        .filter(|(id, r)| r.level == Level::Grid && t.is_within(*id, sub))
        .nth(n)
        .unwrap()
        .0;
    t.interior_point(grid)
}

fn report(category: &str, p: [f64; 2], channel: Channel, at: Millis) -> NewReport {
    NewReport {
        channel,
        category: category.into(),
        lon: p[0],
        lat: p[1],
        text: format!("{category} 测试上报"),
        contact: Some("13800000000".into()),
        at,
        media: Vec::new(),
    }
}

fn officer() -> Actor {
    Actor {
        id: "zhang".into(),
        role: Role::SubdistrictOfficer,
        department: None,
        scope: Some("310104003".into()),
    }
}

fn handler(dept: &str) -> Actor {
    Actor {
        id: format!("h-{dept}"),
        role: Role::Handler,
        department: Some(dept.into()),
        scope: None,
    }
}

fn inspector() -> Actor {
    Actor {
        id: "li".into(),
        role: Role::Inspector,
        department: None,
        scope: None,
    }
}

fn cmd(action: Action, actor: Actor) -> Command {
    let mut c = Command::new(action, actor);
    c.note = "说明".into();
    c
}

/// The maintained counts agree with counting the cases themselves.
pub fn assert_counts(store: &mut dyn Store) {
    use cityos_engine::query::CaseQuery;
    let norm = |mut s: cityos_engine::query::Stats| {
        s.by_state.sort();
        s.by_domain.sort();
        s.by_subdistrict.sort();
        s.by_department.sort();
        s
    };
    let fast = norm(store.stats(&CaseQuery::default(), 0).unwrap());
    let slow = norm(
        store
            .stats(
                &CaseQuery {
                    created_from: Some(i64::MIN + 1),
                    ..Default::default()
                },
                0,
            )
            .unwrap(),
    );
    assert_eq!(fast, slow, "case_counts drifted from the cases");
}

/// Every stored case equals the replay of its stored log (and the counts agree).
fn assert_replay(store: &mut dyn Store) -> usize {
    assert_counts(store);
    let cases = store.load_all_cases().unwrap();
    for c in &cases {
        let log = store.load_log(c.id).unwrap();
        assert_eq!(log.len() as u64, c.version, "case {}", c.number);
        assert_eq!(
            replay(&log).unwrap(),
            *c,
            "case {} differs from its log",
            c.number
        );
    }
    cases.len()
}

story!(full_loop_survives_restart);
fn full_loop_survives_restart(b: &Backend) {
    let mut e = b.engine();
    let o = e
        .submit(report("street_vending", spot(0), Channel::Citizen, t0()))
        .unwrap();
    assert!(!o.merged);
    assert_eq!(o.case.state, State::Reported);
    assert!(o.case.number.starts_with("XH261125"), "{}", o.case.number);
    let id = o.case.id;
    let log = e.log(id).unwrap();
    assert!(log[0].note.contains("routed"), "{}", log[0].note);
    let mut now = t0();
    let mut step = |e: &mut Engine, a: Action, actor: Actor| {
        now += 10 * MINUTE;
        e.transition(id, cmd(a, actor), now).unwrap().case
    };
    step(&mut e, Action::File, officer());
    let c = step(
        &mut e,
        Action::Dispatch {
            departments: vec![],
        },
        officer(),
    );
    let lead = c.lead_task().unwrap().department.clone();
    assert!(
        lead.ends_with("310104003"),
        "street-level unit of 天平路: {lead}"
    );
    step(&mut e, Action::Acknowledge, handler(&lead));
    step(&mut e, Action::Start, handler(&lead));
    step(&mut e, Action::Handle, handler(&lead));
    // Restart in the middle: the engine reloads open cases from the store.
    drop(e);
    let mut e = b.engine();
    let c = e.case(id).unwrap().unwrap();
    assert_eq!(c.state, State::Handled);
    step(&mut e, Action::Verify, inspector());
    step(&mut e, Action::Close, officer());
    let c = step(
        &mut e,
        Action::Evaluate {
            score: 5,
            comment: "很满意".into(),
        },
        Actor {
            id: "citizen".into(),
            role: Role::Citizen,
            department: None,
            scope: None,
        },
    );
    assert_eq!(c.state, State::Evaluated);
    assert_eq!(e.log(id).unwrap().len(), 9);
    assert_eq!(e.open_cases().count(), 0);
    assert_replay(e.store());
    let by_number = e.store().load_case_by_number(&c.number).unwrap().unwrap();
    assert_eq!(by_number, c);
}

story!(trusted_channels_are_dispatched_with_joint_tasks);
fn trusted_channels_are_dispatched_with_joint_tasks(b: &Backend) {
    let mut e = b.engine();
    let o = e
        .submit(report("waterlogging", spot(1), Channel::Sensor, t0()))
        .unwrap();
    assert_eq!(o.case.state, State::Dispatched);
    let cat = e.taxonomy().category("waterlogging").unwrap().clone();
    assert_eq!(
        o.case.tasks.len(),
        1 + cat.assist.len(),
        "one task per line"
    );
    assert_eq!(o.case.tasks.iter().filter(|t| t.lead).count(), 1);
    let log = e.log(o.case.id).unwrap();
    assert_eq!(
        log.iter().map(|l| l.action.as_str()).collect::<Vec<_>>(),
        ["report", "file", "dispatch"]
    );
    // Every task must be handled before the case is.
    let mut now = t0();
    let tasks = o.case.tasks.clone();
    for (i, t) in tasks.iter().enumerate() {
        now += MINUTE;
        e.transition(
            o.case.id,
            cmd(Action::Acknowledge, handler(&t.department)),
            now,
        )
        .unwrap();
        now += MINUTE;
        let c = e
            .transition(o.case.id, cmd(Action::Handle, handler(&t.department)), now)
            .unwrap()
            .case;
        let last = i == tasks.len() - 1;
        assert_eq!(
            c.state == State::Handled,
            last,
            "after {} of {} tasks",
            i + 1,
            tasks.len()
        );
    }
    assert_replay(e.store());
}

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

story!(escalation_fires_once_across_restart);
fn escalation_fires_once_across_restart(b: &Backend) {
    let mut e = b.engine();
    let o = e
        .submit(report("lift_entrapment", spot(6), Channel::Sensor, t0()))
        .unwrap();
    assert_eq!(o.case.state, State::Dispatched);
    let due = o.case.due().unwrap();
    assert_eq!(
        e.next_timer(),
        Some(due),
        "the timer index knows the first escalation"
    );
    assert!(
        e.tick(due - 1).unwrap().is_empty(),
        "not before the deadline"
    );
    drop(e);
    // The server was down across the deadline; after restart the tick fires once.
    let mut e = b.engine();
    assert_eq!(e.next_timer(), Some(due), "timers are rebuilt at start");
    let fired = e.tick(due + MINUTE).unwrap();
    assert_eq!(fired.len(), 1);
    assert!(
        e.next_timer().is_none_or(|t| t > due + MINUTE),
        "no rung is due again"
    );
    assert_eq!(fired[0].rung, 1);
    let c = e.case(o.case.id).unwrap().unwrap();
    assert!(c.overdue);
    assert_eq!(c.escalated_to.as_deref(), Some("dist-ccc"));
    assert!(e.tick(due + 2 * MINUTE).unwrap().is_empty(), "exactly once");
    drop(e);
    let mut e = b.engine();
    assert!(
        e.tick(due + 3 * MINUTE).unwrap().is_empty(),
        "exactly once, even after another restart"
    );
    let log = e.log(o.case.id).unwrap();
    assert_eq!(log.iter().filter(|l| l.action == "escalate").count(), 1);
    assert_replay(e.store());
}

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

/// A store whose commits can be made to fail, to check that a failed transaction leaves
/// the engine's state as it was and that a batch is retried request by request.
struct Flaky {
    inner: Box<dyn Store>,
    fail: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Store for Flaky {
    fn query_events(
        &mut self,
        sql: &cityos_engine::query::Sql,
    ) -> Result<Vec<cityos_engine::store::CaseEvent>, StoreError> {
        self.inner.query_events(sql)
    }
    fn put_user(&mut self, u: &cityos_engine::store::User) -> Result<(), StoreError> {
        self.inner.put_user(u)
    }
    fn user(&mut self, n: &str) -> Result<Option<cityos_engine::store::User>, StoreError> {
        self.inner.user(n)
    }
    fn put_idempotent(
        &mut self,
        a: &cityos_engine::store::IdempotentAnswer,
    ) -> Result<Option<cityos_engine::store::IdempotentAnswer>, StoreError> {
        self.inner.put_idempotent(a)
    }
    fn idempotent(
        &mut self,
        k: &str,
    ) -> Result<Option<cityos_engine::store::IdempotentAnswer>, StoreError> {
        self.inner.idempotent(k)
    }
    fn put_dataset(&mut self, d: &cityos_engine::store::Dataset) -> Result<(), StoreError> {
        self.inner.put_dataset(d)
    }
    fn datasets(&mut self) -> Result<Vec<cityos_engine::store::Dataset>, StoreError> {
        self.inner.datasets()
    }
    fn put_rollups(&mut self, r: &[cityos_engine::store::Rollup]) -> Result<(), StoreError> {
        self.inner.put_rollups(r)
    }
    fn rollups(
        &mut self,
        indicator: &str,
        region: &str,
        step: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<cityos_engine::store::Rollup>, StoreError> {
        self.inner.rollups(indicator, region, step, from, to)
    }
    fn put_cap(&mut self, m: &cityos_engine::store::CapMessage) -> Result<(), StoreError> {
        self.inner.put_cap(m)
    }
    fn cap_messages(
        &mut self,
        limit: i64,
    ) -> Result<Vec<cityos_engine::store::CapMessage>, StoreError> {
        self.inner.cap_messages(limit)
    }
    fn cap_message(
        &mut self,
        identifier: &str,
    ) -> Result<Option<cityos_engine::store::CapMessage>, StoreError> {
        self.inner.cap_message(identifier)
    }
    fn put_media(&mut self, m: &cityos_engine::store::Media) -> Result<(), StoreError> {
        self.inner.put_media(m)
    }
    fn media(&mut self, id: &str) -> Result<Option<cityos_engine::store::Media>, StoreError> {
        self.inner.media(id)
    }
    fn query_list(
        &mut self,
        sql: &cityos_engine::query::Sql,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        self.inner.query_list(sql)
    }
    fn query_groups(
        &mut self,
        sql: &cityos_engine::query::Sql,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.inner.query_groups(sql)
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn commit(&mut self, batch: &[Batch<'_>]) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return Err(StoreError::Db("disk on fire".into()));
        }
        self.inner.commit(batch)
    }
    fn load_case(&mut self, id: i64) -> Result<Option<cityos_core::Case>, StoreError> {
        self.inner.load_case(id)
    }
    fn load_case_by_number(&mut self, n: &str) -> Result<Option<cityos_core::Case>, StoreError> {
        self.inner.load_case_by_number(n)
    }
    fn load_open_cases(&mut self) -> Result<Vec<cityos_core::Case>, StoreError> {
        self.inner.load_open_cases()
    }
    fn load_all_cases(&mut self) -> Result<Vec<cityos_core::Case>, StoreError> {
        self.inner.load_all_cases()
    }
    fn load_log(&mut self, id: i64) -> Result<Vec<cityos_core::LogEntry>, StoreError> {
        self.inner.load_log(id)
    }
    fn load_report(&mut self, id: i64) -> Result<Option<cityos_core::Report>, StoreError> {
        self.inner.load_report(id)
    }
    fn reports_of(&mut self, c: i64) -> Result<Vec<cityos_core::Report>, StoreError> {
        self.inner.reports_of(c)
    }
    fn max_ids(&mut self) -> Result<(i64, i64), StoreError> {
        self.inner.max_ids()
    }
    fn counts(&mut self) -> Result<Counts, StoreError> {
        self.inner.counts()
    }
}

story!(failed_commits_leave_state_intact);
fn failed_commits_leave_state_intact(b: &Backend) {
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = config();
    let mut e = Engine::open(
        Box::new(Flaky {
            inner: b.store(),
            fail: fail.clone(),
        }),
        c.territory,
        c.taxonomy,
        c.calendar,
        Default::default(),
    )
    .unwrap();
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

story!(pipelined_run_loop_commits_before_answering);
fn pipelined_run_loop_commits_before_answering(b: &Backend) {
    use cityos_engine::runloop::RunLoop;
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = Box::new(Flaky {
        inner: b.store(),
        fail: fail.clone(),
    });
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
    let r = h.call(Request::Transition {
        case: first,
        command: cmd(
            Action::File,
            Actor {
                scope: None,
                ..officer()
            },
        ),
        now: t0() + HOUR,
    });
    assert!(
        r.is_err(),
        "a single request whose commit failed gets the error"
    );
    let again = h
        .call(Request::Transition {
            case: first,
            command: cmd(
                Action::File,
                Actor {
                    scope: None,
                    ..officer()
                },
            ),
            now: t0() + HOUR,
        })
        .unwrap();
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
    assert_eq!(next[0].id, last + 1);
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
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = config();
    let mut e = Engine::open(
        Box::new(Flaky {
            inner: b.store(),
            fail: fail.clone(),
        }),
        c.territory.clone(),
        c.taxonomy.clone(),
        c.calendar.clone(),
        Default::default(),
    )
    .unwrap();
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

/// A failed commit reloads only the cases its batch touched, never every open case (a
/// request the store refuses must not cost everyone a reload); the cache still equals
/// the store afterwards.
fn failed_commit_reloads_only_what_it_touched(b: &Backend) {
    use cityos_engine::runloop::RunLoop;
    let fail = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = config();
    let mut e = Engine::open(
        Box::new(Flaky {
            inner: b.store(),
            fail: fail.clone(),
        }),
        c.territory.clone(),
        c.taxonomy.clone(),
        c.calendar.clone(),
        Default::default(),
    )
    .unwrap();
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
    let writer = Box::new(Flaky {
        inner: b.store(),
        fail: fail.clone(),
    });
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
        format!("{url}{sep}options=-c%20statement_timeout%3D50&application_name=cityos_slow");
    let mut s = cityos_engine::PostgresStore::connect(&short, Some(schema)).unwrap();
    assert_eq!(setting(&mut s, "application_name"), "cityos_slow");
    let slow = s.query_groups(&cityos_engine::query::Sql {
        text: "SELECT 'x', COUNT(*) FROM pg_sleep(0.5)".into(),
        params: vec![],
    });
    assert!(matches!(slow, Err(StoreError::Timeout(_))), "{slow:?}");
    // The connection is still usable afterwards.
    assert_eq!(setting(&mut s, "statement_timeout"), "50ms");
}
