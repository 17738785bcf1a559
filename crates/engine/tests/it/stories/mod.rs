//! Store stories: the same bodies against SQLite and PostgreSQL (the `story!` macro), one
//! file per topic; the helpers they share live here.

mod concurrency;
mod dedup;
mod escalation;
mod evaluation;
mod failures;
mod idempotency;
mod lifecycle;
mod log;
mod records;
mod similar;

use super::backend::{config, Backend};
use crate::story;
use cityos_core::case::{replay, Channel, State};
use cityos_core::rng::Rng;
use cityos_core::time::{local, Date, Millis, HOUR, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport, WorkflowError};
use cityos_core::{Level, Role};
use cityos_engine::engine::{Engine, EngineError, Request, Response};
use cityos_engine::store::{
    AccountStore, CaseStore, DatasetStore, MediaStore, ScenarioStore, SensingStore,
    StoreConnection, VitalsStore,
};
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

/// Eight generated Chinese characters, fixed by the arguments: reports of these stories
/// say different things unless they are meant to be the same (texts alike join by text
/// similarity, issue 14).
fn words(category: &str, p: [f64; 2], at: Millis) -> String {
    let mut r = Rng::new(cityos_core::rng::fnv1a(
        format!("{category}{}{}{at}", p[0], p[1]).as_bytes(),
    ));
    (0..8)
        .map(|_| char::from_u32(0x4E00 + r.below(0x5000) as u32).unwrap())
        .collect()
}

fn report(category: &str, p: [f64; 2], channel: Channel, at: Millis) -> NewReport {
    NewReport {
        channel,
        category: category.into(),
        lon: p[0],
        lat: p[1],
        text: format!("{category} 测试上报 {}", words(category, p, at)),
        contact: Some("13800000000".into()),
        at,
        media: Vec::new(),
        priority: None,
        playbook: None,
        suggestion: None,
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

/// A store whose commits can be made to fail, to check that a failed transaction leaves
/// the engine's state as it was and that a batch is retried request by request.
struct Flaky {
    inner: Box<dyn Store>,
    fail: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How many of the coming commits of a [`Flaky`] store fail.
type FailCount = std::sync::Arc<std::sync::atomic::AtomicUsize>;

impl Flaky {
    /// A flaky store over a fresh connection of `b`, failing as `fail` says.
    fn over(b: &Backend, fail: &FailCount) -> Box<Flaky> {
        Box::new(Flaky {
            inner: b.store(),
            fail: fail.clone(),
        })
    }
}

/// An engine on a flaky store of `b`, and its count of commits to fail (none yet).
fn flaky_engine(b: &Backend) -> (Engine, FailCount) {
    let fail = FailCount::default();
    let c = config();
    let e = Engine::open(
        Flaky::over(b, &fail),
        c.territory,
        c.taxonomy,
        c.calendar,
        Default::default(),
    )
    .unwrap();
    (e, fail)
}

impl StoreConnection for Flaky {
    fn backend(&self) -> &'static str {
        self.inner.backend()
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
}

impl CaseStore for Flaky {
    fn query_events(
        &mut self,
        sql: &cityos_engine::query::Sql,
    ) -> Result<Vec<cityos_engine::store::CaseEvent>, StoreError> {
        self.inner.query_events(sql)
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
    fn recent_reports(
        &mut self,
        since: Millis,
        limit: i64,
    ) -> Result<Vec<(cityos_core::Report, String)>, StoreError> {
        self.inner.recent_reports(since, limit)
    }

    fn max_ids(&mut self) -> Result<(i64, i64), StoreError> {
        self.inner.max_ids()
    }

    fn counts(&mut self) -> Result<Counts, StoreError> {
        self.inner.counts()
    }

    fn record_figures(&mut self, s: &cityos_engine::store::FigureSample) -> Result<(), StoreError> {
        self.inner.record_figures(s)
    }

    fn figures_at(
        &mut self,
        at: i64,
        after: i64,
    ) -> Result<Option<cityos_engine::store::FigureSample>, StoreError> {
        self.inner.figures_at(at, after)
    }
}

impl AccountStore for Flaky {
    fn put_user(&mut self, u: &cityos_engine::store::User) -> Result<(), StoreError> {
        self.inner.put_user(u)
    }

    fn user(&mut self, n: &str) -> Result<Option<cityos_engine::store::User>, StoreError> {
        self.inner.user(n)
    }
}

impl DatasetStore for Flaky {
    fn put_dataset(&mut self, d: &cityos_engine::store::Dataset) -> Result<(), StoreError> {
        self.inner.put_dataset(d)
    }

    fn datasets(&mut self) -> Result<Vec<cityos_engine::store::Dataset>, StoreError> {
        self.inner.datasets()
    }

    fn put_rule_case(
        &mut self,
        rule: &str,
        subject: &str,
        case: Option<i64>,
    ) -> Result<(), StoreError> {
        self.inner.put_rule_case(rule, subject, case)
    }

    fn rule_cases(&mut self, rule: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.rule_cases(rule)
    }
}

impl cityos_engine::DeviceStore for Flaky {
    fn put_devices(&mut self, rows: &[cityos_engine::store::DeviceRow]) -> Result<(), StoreError> {
        self.inner.put_devices(rows)
    }

    fn registered_devices(&mut self) -> Result<Vec<cityos_engine::store::DeviceRow>, StoreError> {
        self.inner.registered_devices()
    }
}

impl SensingStore for Flaky {
    fn put_alarm_states(
        &mut self,
        rows: &[cityos_engine::store::AlarmRow],
    ) -> Result<(), StoreError> {
        self.inner.put_alarm_states(rows)
    }

    fn alarm_states(&mut self) -> Result<Vec<cityos_engine::store::AlarmRow>, StoreError> {
        self.inner.alarm_states()
    }

    fn put_alarm_states_fenced(
        &mut self,
        rows: &[cityos_engine::store::AlarmRow],
        mark: Option<&cityos_engine::store::QueueMark>,
        fence: &cityos_engine::store::Fence,
    ) -> Result<(), StoreError> {
        self.inner.put_alarm_states_fenced(rows, mark, fence)
    }

    fn queue_mark(
        &mut self,
        queue: &str,
    ) -> Result<Option<cityos_engine::store::QueueMark>, StoreError> {
        self.inner.queue_mark(queue)
    }
}

impl VitalsStore for Flaky {
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

    fn cap_chains(&mut self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.inner.cap_chains()
    }

    fn put_alert_states(
        &mut self,
        upsert: &[cityos_engine::store::AlertRow],
        delete: &[String],
    ) -> Result<(), StoreError> {
        self.inner.put_alert_states(upsert, delete)
    }

    fn alert_states(&mut self) -> Result<Vec<cityos_engine::store::AlertRow>, StoreError> {
        self.inner.alert_states()
    }

    fn put_silence(&mut self, s: &cityos_engine::store::SilenceRow) -> Result<(), StoreError> {
        self.inner.put_silence(s)
    }

    fn silences(&mut self) -> Result<Vec<cityos_engine::store::SilenceRow>, StoreError> {
        self.inner.silences()
    }

    fn put_alert_case(&mut self, fingerprint: &str, case: i64) -> Result<(), StoreError> {
        self.inner.put_alert_case(fingerprint, case)
    }

    fn alert_cases(&mut self) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.alert_cases()
    }
}

impl MediaStore for Flaky {
    fn put_media(&mut self, m: &cityos_engine::store::Media) -> Result<(), StoreError> {
        self.inner.put_media(m)
    }

    fn media(&mut self, id: &str) -> Result<Option<cityos_engine::store::Media>, StoreError> {
        self.inner.media(id)
    }
}

impl cityos_engine::store::MealStore for Flaky {
    fn record_meals(
        &mut self,
        rows: &[cityos_engine::store::MealRow],
        ledger: &[cityos_engine::store::MealLedgerRow],
    ) -> Result<(), StoreError> {
        self.inner.record_meals(rows, ledger)
    }

    fn record_meals_fenced(
        &mut self,
        rows: &[cityos_engine::store::MealRow],
        ledger: &[cityos_engine::store::MealLedgerRow],
        fence: &cityos_engine::store::Fence,
    ) -> Result<(), StoreError> {
        self.inner.record_meals_fenced(rows, ledger, fence)
    }

    fn meal_rows(&mut self, kind: &str) -> Result<Vec<cityos_engine::store::MealRow>, StoreError> {
        self.inner.meal_rows(kind)
    }

    fn meal_ledger(&mut self) -> Result<Vec<cityos_engine::store::MealLedgerRow>, StoreError> {
        self.inner.meal_ledger()
    }
}

impl cityos_engine::store::AssistanceStore for Flaky {
    fn record_assistance(
        &mut self,
        rows: &[cityos_engine::store::AssistanceRow],
    ) -> Result<(), StoreError> {
        self.inner.record_assistance(rows)
    }

    fn assistance_rows(
        &mut self,
        kind: &str,
    ) -> Result<Vec<cityos_engine::store::AssistanceRow>, StoreError> {
        self.inner.assistance_rows(kind)
    }
}

impl ScenarioStore for Flaky {
    fn record_scenario(
        &mut self,
        pack: Option<&cityos_engine::store::ScenarioPackRow>,
        audit: &cityos_engine::store::ScenarioAuditRow,
    ) -> Result<(), StoreError> {
        self.inner.record_scenario(pack, audit)
    }

    fn scenario_packs(&mut self) -> Result<Vec<cityos_engine::store::ScenarioPackRow>, StoreError> {
        self.inner.scenario_packs()
    }

    fn scenario_audit(
        &mut self,
        pack: &str,
    ) -> Result<Vec<cityos_engine::store::ScenarioAuditRow>, StoreError> {
        self.inner.scenario_audit(pack)
    }
}

impl cityos_engine::LifeCircleStore for Flaky {
    fn put_lifecircle_upload(
        &mut self,
        u: &cityos_engine::store::LifeCircleUpload,
    ) -> Result<(), StoreError> {
        self.inner.put_lifecircle_upload(u)
    }

    fn delete_lifecircle_upload(&mut self, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_lifecircle_upload(name)
    }

    fn lifecircle_uploads(
        &mut self,
    ) -> Result<Vec<cityos_engine::store::LifeCircleUpload>, StoreError> {
        self.inner.lifecircle_uploads()
    }
}

impl cityos_engine::store::ShareStore for Flaky {
    fn append_audit(
        &mut self,
        entries: &[cityos_engine::store::AuditEntry],
    ) -> Result<(), StoreError> {
        self.inner.append_audit(entries)
    }

    fn audit_head(&mut self) -> Result<Option<cityos_engine::store::AuditEntry>, StoreError> {
        self.inner.audit_head()
    }

    fn audit_page(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<cityos_engine::store::AuditEntry>, StoreError> {
        self.inner.audit_page(after, limit)
    }

    fn insert_grant(&mut self, g: &cityos_engine::store::GrantRow) -> Result<i64, StoreError> {
        self.inner.insert_grant(g)
    }

    fn update_grant(&mut self, g: &cityos_engine::store::GrantRow) -> Result<(), StoreError> {
        self.inner.update_grant(g)
    }

    fn grants(&mut self) -> Result<Vec<cityos_engine::store::GrantRow>, StoreError> {
        self.inner.grants()
    }

    fn dataset(&mut self, name: &str) -> Result<Option<cityos_engine::store::Dataset>, StoreError> {
        self.inner.dataset(name)
    }

    fn log_links(
        &mut self,
        after_case: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<cityos_engine::store::LogLink>, StoreError> {
        self.inner.log_links(after_case, after_seq, limit)
    }
}

impl cityos_engine::ClusterStore for Flaky {
    fn shared_ids(&self) -> bool {
        self.inner.shared_ids()
    }
    fn reserve_ids(
        &mut self,
        kind: cityos_engine::store::IdKind,
    ) -> Result<(i64, i64), StoreError> {
        self.inner.reserve_ids(kind)
    }
}

impl cityos_engine::EvaluationStore for Flaky {
    fn cohort_folds(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(i64, Option<String>),
    ) -> Result<(), StoreError> {
        self.inner.cohort_folds(from, to, each)
    }

    fn cohort_logs(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(Vec<cityos_core::case::LogEntry>),
    ) -> Result<(), StoreError> {
        self.inner.cohort_logs(from, to, each)
    }

    fn citizen_cases(
        &mut self,
        from: i64,
        to: i64,
    ) -> Result<Vec<cityos_core::evaluation::measures::RepeatKey>, StoreError> {
        self.inner.citizen_cases(from, to)
    }

    fn cohort_reports(
        &mut self,
        from: i64,
        to: i64,
    ) -> Result<Vec<cityos_core::case::Report>, StoreError> {
        self.inner.cohort_reports(from, to)
    }

    fn put_evaluation_report(&mut self, r: &cityos_engine::SavedReport) -> Result<(), StoreError> {
        self.inner.put_evaluation_report(r)
    }

    fn evaluation_reports(&mut self) -> Result<Vec<cityos_engine::SavedReport>, StoreError> {
        self.inner.evaluation_reports()
    }

    fn evaluation_report(
        &mut self,
        name: &str,
    ) -> Result<Option<cityos_engine::SavedReport>, StoreError> {
        self.inner.evaluation_report(name)
    }
}
