//! The engine: the single owner of case state.
//!
//! It holds the configuration (territory, taxonomy, calendar), a cache of every open case
//! and the dedup index, and a store. Requests are executed in batches: every request of a
//! batch is decided against the cached state (pure core functions), the resulting log
//! entries and projections are written in ONE store transaction (group commit), and only
//! then does the cache take the new state. If the commit fails, the cache is untouched and
//! each request is retried alone, so one bad request cannot fail its neighbours.
//!
//! Architecture Invariant: only the engine writes cases. Everything else submits
//! [`Request`]s (directly, or through [`crate::runloop::EngineHandle`]).
//! Architecture Invariant: the engine never reads the clock; every request carries `now`.

use crate::store::{
    event_kind, Batch, CaseEvent, CaseWrite, Fence, IdKind, Lease, LeaseRound, Store, StoreError,
};
use cityos_core::case::{
    apply_entry, Case, CaseId, Change, Channel, LogEntry, RegionCodes, Report, ReportId, State,
};
use cityos_core::classify::similar::{estimate_jaccard, Signature};
use cityos_core::dedup::{DedupIndex, Entry};
use cityos_core::territory::{Territory, TerritoryError};
use cityos_core::time::{local_date, Millis};
use cityos_core::workflow::{self, Action, Actor, Command, Ctx, NewReport, WorkflowError};
use cityos_core::{escalation, Taxonomy, WorkCalendar};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Longest report text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Territory(#[from] TerritoryError),
    #[error("case {0} does not exist")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the engine has stopped")]
    Stopped,
    /// Several nodes: the request's partition is held by another node (or by none at the
    /// moment, during a takeover).
    #[error("partition {partition} is not held by this node")]
    NotOwner { partition: String },
}

impl EngineError {
    /// Errors caused by the request (the caller can fix them), as opposed to the system.
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            EngineError::Store(_) | EngineError::Stopped | EngineError::NotOwner { .. }
        )
    }
}

/// How case state is cut into partitions, each owned by one node at a time (issue 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// One partition per sub-district (street), plus [`NO_SUBDISTRICT`] (the default).
    Subdistrict,
    /// The whole district is one partition: one node works, the others stand by.
    District,
}

/// The partition of cases without a sub-district.
pub const NO_SUBDISTRICT: &str = "-";
/// The one partition of [`Partitioning::District`].
pub const WHOLE_DISTRICT: &str = "district";
/// A lease without cases: its holder runs the background jobs (alerts, sensing and
/// scenario rounds, the welfare check, data quality, the monthly report), so they run on
/// one node at a time and move, like any partition, when it stops.
pub const SINGLETON: &str = "*singleton*";

impl Partitioning {
    pub fn parse(s: &str) -> Result<Partitioning, String> {
        match s {
            "subdistrict" => Ok(Partitioning::Subdistrict),
            "district" => Ok(Partitioning::District),
            other => Err(format!(
                "unknown partitioning {other:?}: use \"subdistrict\" (the default) or \"district\""
            )),
        }
    }

    /// The partition of a place (or of a case, by its regions).
    pub fn of(&self, r: &RegionCodes) -> String {
        match self {
            Partitioning::Subdistrict => r
                .subdistrict
                .clone()
                .unwrap_or_else(|| NO_SUBDISTRICT.to_string()),
            Partitioning::District => WHOLE_DISTRICT.to_string(),
        }
    }

    /// Every partition of a territory.
    pub fn all(&self, t: &Territory) -> Vec<String> {
        match self {
            Partitioning::Subdistrict => {
                let mut v: Vec<String> = t
                    .regions()
                    .filter(|(_, r)| r.level == cityos_core::Level::Subdistrict)
                    .map(|(_, r)| r.code.clone())
                    .collect();
                v.push(NO_SUBDISTRICT.to_string());
                v.sort();
                v
            }
            Partitioning::District => vec![WHOLE_DISTRICT.to_string()],
        }
    }
}

/// What a node holds: its name, how cases are partitioned and the partitions it holds
/// with the lease epoch of each.
struct Ownership {
    node: String,
    by: Partitioning,
    held: HashMap<String, i64>,
}

/// What a lease round changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeaseChange {
    /// Partitions taken (with their open cases loaded), at their epoch.
    pub gained: Vec<(String, i64)>,
    /// Partitions lost (expired, taken over or given back): their cases were dropped.
    pub lost: Vec<String>,
    /// Every partition held now.
    pub held: Vec<(String, i64)>,
}

/// Ids the engine hands out: `[next, end)`. Counters (SQLite) are one endless block;
/// with shared ids (PostgreSQL) each block is reserved from a sequence for this engine.
#[derive(Debug, Clone, Copy)]
struct Block {
    next: i64,
    end: i64,
}

fn kind_index(k: IdKind) -> usize {
    match k {
        IdKind::Case => 0,
        IdKind::Report => 1,
        IdKind::Event => 2,
    }
}

/// Configuration that the engine does not derive from taxonomy or territory.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Case numbers start with this, e.g. "XH".
    pub number_prefix: String,
    /// Reports from trusted channels (inspector, sensor, data, staff) are filed and
    /// dispatched by the system without waiting for an officer.
    pub auto_dispatch_trusted: bool,
    /// Same complaint again (同一诉求): joining an open case by the similarity of the text.
    pub text_join: TextJoin,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            number_prefix: "XH".into(),
            auto_dispatch_trusted: true,
            text_join: TextJoin::default(),
        }
    }
}

/// When a citizen's (or staff's) report that no category dedup or correlation rule took
/// joins an open case by its text (issue 14): the most similar open case of any category
/// whose latest report is within `radius_m` and `window_ms`, if the estimated Jaccard
/// similarity of the two texts' signatures ([`cityos_core::classify::similar`]) reaches
/// `threshold`. `radius_m <= 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextJoin {
    pub radius_m: f64,
    pub window_ms: Millis,
    /// 0.5 by measurement: no generated pair of different complaints at one place reaches
    /// it, about three quarters of generated paraphrases do (BENCHMARKS.md). For a report
    /// and a case of the same category, or when either is in the triage category (待分拨:
    /// no category chosen yet).
    pub threshold: f64,
    /// For two different chosen categories: the reporter (or the model) said they are
    /// different problems, and texts full of the same set phrases ("影响居民生活，请尽快处
    /// 理") reach 0.5–0.7 across categories; only a near-verbatim repeat joins.
    pub cross_threshold: f64,
}

/// The category of a report filed without one (待分拨, issue 14's contract).
const TRIAGE: &str = "triage";

/// The text index's cells (~110 m): it holds every category under one key, so a 300 m
/// lookup scans 7 × 7 small cells instead of 3 × 3 of the dedup index's ~500 m.
const TEXT_CELL_DEG: f64 = 0.001;

impl Default for TextJoin {
    fn default() -> Self {
        TextJoin {
            radius_m: 300.0,
            window_ms: 30 * cityos_core::time::DAY,
            threshold: 0.5,
            cross_threshold: 0.8,
        }
    }
}

/// The answer to a report: the case it became or joined, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeOutcome {
    pub report_id: ReportId,
    pub case: Case,
    pub merged: bool,
    pub reason: String,
}

/// The answer to a transition: the case after it, and a case the transition opened
/// (split) if any.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionOutcome {
    pub case: Case,
    pub opened: Option<Box<Case>>,
}

/// An escalation that fired during a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub case: CaseId,
    pub number: String,
    pub rung: u32,
    pub to: String,
    pub at: Millis,
}

#[derive(Debug, Clone)]
pub enum Request {
    Report(NewReport),
    Transition {
        case: CaseId,
        command: Command,
        now: Millis,
    },
    /// Fire every escalation due at `now`.
    Tick {
        now: Millis,
    },
    /// A request with an idempotency key: if it succeeds, its answer is recorded in the
    /// same transaction as its writes, so a retry after a crash finds either both or
    /// neither.
    Keyed {
        request: Box<Request>,
        key: IdempotencyKey,
    },
}

/// Renders the answer a keyed request records: (HTTP status, body).
pub type RenderAnswer = Arc<dyn Fn(&Response) -> (i64, String) + Send + Sync>;

/// What a keyed request records: the key, the request's fingerprint, and how to render
/// the answer a retry will get.
#[derive(Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
    pub created_at: Millis,
    /// The answer as the caller will send it: (status, body).
    pub render: RenderAnswer,
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyKey")
            .field("key", &self.key)
            .field("request_hash", &self.request_hash)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Answers are moved once, from the engine thread to the caller; their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Response {
    Intake(IntakeOutcome),
    Transition(TransitionOutcome),
    Tick(Vec<Escalation>),
}

/// A case being changed within the current batch.
struct Staged {
    case: Case,
    prev_version: Option<u64>,
    entries: Vec<LogEntry>,
    tasks_changed: bool,
    /// Filled by `prepare`: the serialised case and log entries, and their event numbers.
    body: String,
    log_bodies: Vec<String>,
    gseqs: Vec<i64>,
    /// The case's statistics key when it was read (`None` for a new case).
    prev_count: Option<crate::query::CountKey>,
}

#[derive(Default)]
struct Work {
    staged: HashMap<CaseId, Staged>,
    order: Vec<CaseId>,
    reports: Vec<Report>,
    report_moves: Vec<(ReportId, CaseId)>,
    idempotency: Vec<crate::store::IdempotentAnswer>,
    /// The cases the request being decided staged or touched (see [`Engine::add`]).
    last_touched: Vec<CaseId>,
}

/// A decided batch on its way to the store: the writes, the original requests (for a
/// retry) and the answers to send once the writes are durable.
pub struct Prepared {
    pub seq: u64,
    work: Work,
    /// Several nodes: the leases the batch was decided under.
    fence: Option<Fence>,
    pub requests: Vec<Request>,
    pub answers: Vec<Result<Response, EngineError>>,
}

impl Prepared {
    /// Does the batch write anything?
    pub fn writes(&self) -> bool {
        !(self.work.order.is_empty()
            && self.work.reports.is_empty()
            && self.work.idempotency.is_empty())
    }

    /// The cases this batch changed (or created) in the engine's cache.
    pub fn touched(&self) -> &[CaseId] {
        &self.work.order
    }

    /// Writes the batch in one transaction.
    pub fn commit(&self, store: &mut dyn Store) -> Result<(), StoreError> {
        store.commit(&[self.batch()])
    }

    /// Writes several batches, in order, in one transaction.
    pub fn commit_all(all: &[&Prepared], store: &mut dyn Store) -> Result<(), StoreError> {
        let batches: Vec<Batch<'_>> = all.iter().map(|p| p.batch()).collect();
        store.commit(&batches)
    }

    /// What the batch writes.
    fn batch(&self) -> Batch<'_> {
        let w = &self.work;
        Batch {
            cases: w
                .order
                .iter()
                .map(|id| {
                    let s = &w.staged[id];
                    CaseWrite {
                        case: &s.case,
                        prev_version: s.prev_version,
                        entries: &s.entries,
                        tasks_changed: s.tasks_changed,
                        case_body: &s.body,
                        log_bodies: &s.log_bodies,
                        gseqs: &s.gseqs,
                        prev_count: s.prev_count.clone(),
                    }
                })
                .collect(),
            reports: &w.reports,
            report_moves: &w.report_moves,
            idempotency: &w.idempotency,
            fence: self.fence.as_ref(),
        }
    }
}

/// What the text join knows of an open case: its title's signature, its category (the
/// threshold depends on it) and its number (for the log).
struct TextEntry {
    signature: Signature,
    category: String,
    number: String,
    /// As indexed (the index entry is refreshed when it changes).
    last_report_at: Millis,
}

pub struct Engine {
    store: Box<dyn Store>,
    territory: Arc<Territory>,
    tax: Arc<Taxonomy>,
    cal: Arc<WorkCalendar>,
    config: EngineConfig,
    open: HashMap<CaseId, Case>,
    dedup: DedupIndex,
    /// Open cases whose text can be joined (citizen and staff cases, not
    /// suspended), all under key 0, and their signatures (of the case title: the first
    /// report's first TITLE_CHARS characters, so a restart rebuilds the same signature
    /// without reading the reports).
    text_index: DedupIndex,
    signatures: HashMap<CaseId, TextEntry>,
    /// Case, report and event ids (see [`Block`]).
    ids: [Block; 3],
    /// Ids come from the store's sequences (several nodes), not from counters.
    shared_ids: bool,
    /// Several nodes: the partitions this engine holds (`None`: it owns everything).
    owner: Option<Ownership>,
    /// Cases that left the open states in batches not yet known to be durable.
    recent: HashMap<CaseId, (u64, Case)>,
    /// Reports of batches not yet known to be durable.
    recent_reports: HashMap<ReportId, (u64, Report)>,
    batch_seq: u64,
    /// Last global event number assigned.
    last_event: i64,
    /// Events of batches not yet committed, by batch.
    pending_events: std::collections::VecDeque<(u64, Vec<CaseEvent>)>,
    sink: Option<Box<dyn Fn(Vec<CaseEvent>) + Send + Sync>>,
    /// Escalation timers: (due, case) for every open case with an escalation ahead.
    timers: BTreeSet<(Millis, CaseId)>,
    timer_of: HashMap<CaseId, Millis>,
    /// A commit failed and the reload did too: refuse work until a reload succeeds.
    broken: bool,
    /// Reloads of every open case (at start they are not counted) and of single cases
    /// after failed commits.
    full_reloads: u64,
    partial_reloads: u64,
}

impl Engine {
    /// Loads every open case from the store and builds the dedup index.
    pub fn open(
        mut store: Box<dyn Store>,
        territory: Arc<Territory>,
        tax: Arc<Taxonomy>,
        cal: Arc<WorkCalendar>,
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let (max_case, max_report) = store.max_ids()?;
        let max_event = store.max_event()?;
        let open: HashMap<CaseId, Case> = store
            .load_open_cases()?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut e = Engine {
            store,
            territory,
            tax,
            cal,
            config,
            open,
            dedup: DedupIndex::new(),
            text_index: DedupIndex::with_cell(TEXT_CELL_DEG),
            signatures: HashMap::new(),
            ids: [Block { next: 0, end: 0 }; 3],
            shared_ids: false,
            owner: None,
            recent: HashMap::new(),
            recent_reports: HashMap::new(),
            batch_seq: 0,
            last_event: 0,
            pending_events: std::collections::VecDeque::new(),
            sink: None,
            timers: BTreeSet::new(),
            timer_of: HashMap::new(),
            broken: false,
            full_reloads: 0,
            partial_reloads: 0,
        };
        e.shared_ids = e.store.shared_ids();
        e.last_event = max_event;
        e.reset_counters(max_case, max_report, max_event);
        e.rebuild_indexes();
        Ok(e)
    }

    /// Sets the id counters after the largest stored ids (counters only: a block
    /// reserved from a sequence stays this engine's, whatever was stored since).
    fn reset_counters(&mut self, max_case: CaseId, max_report: ReportId, max_event: i64) {
        if self.shared_ids {
            return;
        }
        self.ids = [max_case, max_report, max_event].map(|m| Block {
            next: m + 1,
            end: i64::MAX,
        });
    }

    /// The next id of `kind` (not yet used): from the current block, or a new block
    /// reserved from the store's sequence.
    fn peek_id(&mut self, kind: IdKind) -> Result<i64, StoreError> {
        let i = kind_index(kind);
        if self.ids[i].next >= self.ids[i].end {
            let (first, n) = self.store.reserve_ids(kind)?;
            self.ids[i] = Block {
                next: first,
                end: first + n,
            };
        }
        Ok(self.ids[i].next)
    }

    /// The id [`Engine::peek_id`] gave is used.
    fn used(&mut self, kind: IdKind) {
        self.ids[kind_index(kind)].next += 1;
    }

    fn take_id(&mut self, kind: IdKind) -> Result<i64, StoreError> {
        let id = self.peek_id(kind)?;
        self.used(kind);
        Ok(id)
    }

    /// Several nodes: refuses a request whose partition this node does not hold.
    fn check_owner(&self, regions: &RegionCodes) -> Result<(), EngineError> {
        match &self.owner {
            Some(o) => {
                let p = o.by.of(regions);
                if o.held.contains_key(&p) {
                    Ok(())
                } else {
                    Err(EngineError::NotOwner { partition: p })
                }
            }
            None => Ok(()),
        }
    }

    /// The open cases this engine owns: every one, or those of its partitions.
    fn load_held_cases(&mut self) -> Result<Vec<Case>, StoreError> {
        let parts: Vec<String> = match &self.owner {
            None => return self.store.load_open_cases(),
            Some(o) => o.held.keys().cloned().collect(),
        };
        let mut all = Vec::new();
        for p in parts {
            all.extend(self.load_partition(&p)?);
        }
        Ok(all)
    }

    fn load_partition(&mut self, p: &str) -> Result<Vec<Case>, StoreError> {
        if p == SINGLETON {
            return Ok(Vec::new());
        }
        let by = self.owner.as_ref().map_or(Partitioning::District, |o| o.by);
        match by {
            Partitioning::District => self.store.load_open_cases(),
            Partitioning::Subdistrict => self
                .store
                .load_open_cases_of((p != NO_SUBDISTRICT).then_some(p)),
        }
    }

    /// Several nodes (issue 20): from now on this engine owns only the partitions it
    /// holds leases for — none until its first [`Engine::lease_round`]. Drops the cache.
    pub fn join_cluster(&mut self, node: &str, by: Partitioning) {
        self.owner = Some(Ownership {
            node: node.to_string(),
            by,
            held: HashMap::new(),
        });
        self.open.clear();
        self.recent.clear();
        self.rebuild_indexes();
    }

    /// Every partition of the district (several nodes), and [`SINGLETON`].
    pub fn partitions(&self) -> Vec<String> {
        let by = self.owner.as_ref().map_or(Partitioning::District, |o| o.by);
        let mut v = by.all(&self.territory);
        v.push(SINGLETON.to_string());
        v
    }

    /// The partitions held, with their epochs (several nodes), sorted.
    pub fn held(&self) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .owner
            .as_ref()
            .map(|o| o.held.iter().map(|(p, e)| (p.clone(), *e)).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Several nodes: one lease round — renew the leases held, take free or expired
    /// partitions up to this node's share (loading their open cases from the store),
    /// drop the cases of partitions lost. Run it between batches (the run loop's
    /// `with`), every second or so, well inside `ttl_ms`.
    pub fn lease_round(&mut self, address: &str, ttl_ms: i64) -> Result<LeaseChange, EngineError> {
        let Some(o) = &self.owner else {
            return Err(EngineError::Invalid(
                "lease rounds are for engines in a cluster (join_cluster)".into(),
            ));
        };
        let held: Vec<(String, i64)> = o.held.iter().map(|(p, e)| (p.clone(), *e)).collect();
        let node = o.node.clone();
        let parts = self.partitions();
        let now = self.store.lease_round(&LeaseRound {
            node: &node,
            address,
            partitions: &parts,
            held: &held,
            ttl_ms,
        })?;
        self.apply_leases(now)
    }

    /// Several nodes: makes the partitions this engine owns those of `now` — the leases
    /// its node holds, as a lease round on another connection found them (so a busy
    /// engine never delays its own renewals): loads the cases of the partitions gained,
    /// drops those of the partitions lost. Idempotent: the same `now` again changes
    /// nothing.
    pub fn apply_leases(&mut self, now: Vec<Lease>) -> Result<LeaseChange, EngineError> {
        let Some(o) = &self.owner else {
            return Err(EngineError::Invalid(
                "lease rounds are for engines in a cluster (join_cluster)".into(),
            ));
        };
        let held: Vec<(String, i64)> = o.held.iter().map(|(p, e)| (p.clone(), *e)).collect();
        let now: HashMap<String, i64> = now.into_iter().map(|l| (l.partition, l.epoch)).collect();
        let mut change = LeaseChange::default();
        for (p, e) in &held {
            if now.get(p) != Some(e) {
                change.lost.push(p.clone());
            }
        }
        for p in &change.lost {
            self.drop_partition(p);
        }
        let mut gained: Vec<(String, i64)> = now
            .iter()
            .filter(|(p, e)| !held.iter().any(|(hp, he)| hp == *p && he == *e))
            .map(|(p, e)| (p.clone(), *e))
            .collect();
        gained.sort();
        for (p, e) in gained {
            // Held only once its cases are loaded; a failed load leaves the lease to
            // expire (this node or another takes it again, at a higher epoch).
            let cases = self.load_partition(&p)?;
            for c in cases {
                let id = c.id;
                if let Some(cat) = self.tax.category_id(&c.category) {
                    self.dedup.upsert(cat, dedup_entry(&c));
                }
                self.index_text(&c);
                self.open.insert(id, c);
                self.schedule(id);
            }
            if let Some(o) = &mut self.owner {
                o.held.insert(p.clone(), e);
            }
            change.gained.push((p, e));
        }
        change.held = self.held();
        Ok(change)
    }

    /// Forgets a partition's open cases (its lease was lost).
    fn drop_partition(&mut self, p: &str) {
        let Some(o) = &mut self.owner else { return };
        o.held.remove(p);
        let by = o.by;
        let ids: Vec<CaseId> = self
            .open
            .values()
            .filter(|c| by.of(&c.regions) == p)
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.open.remove(&id);
            self.dedup.remove(id);
            self.text_index.remove(id);
            self.signatures.remove(&id);
            self.schedule(id);
        }
        self.recent.retain(|_, (_, c)| by.of(&c.regions) != p);
    }

    /// Rebuilds the dedup index and the escalation timers from the cached open cases.
    fn rebuild_indexes(&mut self) {
        self.dedup = DedupIndex::new();
        self.text_index = DedupIndex::with_cell(TEXT_CELL_DEG);
        self.signatures.clear();
        self.timers.clear();
        self.timer_of.clear();
        let open = std::mem::take(&mut self.open);
        for c in open.values() {
            if let Some(cat) = self.tax.category_id(&c.category) {
                self.dedup.upsert(cat, dedup_entry(c));
            }
            self.index_text(c);
        }
        self.open = open;
        let ids: Vec<CaseId> = self.open.keys().copied().collect();
        for id in ids {
            self.schedule(id);
        }
    }

    /// Keeps a case's place in the text index in step with its state.
    fn index_text(&mut self, c: &Case) {
        let joinable = c.state.is_open()
            && c.state != State::Suspended
            && matches!(c.channel, Channel::Citizen | Channel::Staff);
        if !joinable {
            self.text_index.remove(c.id);
            self.signatures.remove(&c.id);
            return;
        }
        match self.signatures.get_mut(&c.id) {
            // Unchanged (most transitions): nothing to do.
            Some(t) if t.category == c.category && t.last_report_at == c.last_report_at => {
                return;
            }
            Some(t) => {
                if t.category != c.category {
                    t.category = c.category.clone();
                }
                t.last_report_at = c.last_report_at;
            }
            None => {
                self.signatures.insert(
                    c.id,
                    TextEntry {
                        signature: Signature::of(&c.title),
                        category: c.category.clone(),
                        number: c.number.clone(),
                        last_report_at: c.last_report_at,
                    },
                );
            }
        }
        self.text_index.upsert(0, dedup_entry(c));
    }

    /// Same complaint again: the open case whose text is most like the report's, nearby
    /// (see [`TextJoin`]), with the reason. Citizen and staff reports only.
    fn similar_case(&self, r: &NewReport) -> Option<(CaseId, String)> {
        let tj = self.config.text_join;
        if !matches!(r.channel, Channel::Citizen | Channel::Staff) || tj.radius_m <= 0.0 {
            return None;
        }
        let near = self
            .text_index
            .within(0, r.lon, r.lat, r.at, tj.radius_m, tj.window_ms);
        if near.is_empty() {
            return None;
        }
        let head: String = r.text.chars().take(workflow::TITLE_CHARS).collect();
        let sig = Signature::of(&head);
        type Best<'a> = (f64, f64, &'a TextEntry, cityos_core::dedup::Match);
        let mut best: Option<Best<'_>> = None;
        for m in near {
            let Some(other) = self.signatures.get(&m.case) else {
                continue;
            };
            let s = estimate_jaccard(&sig, &other.signature);
            let need =
                if other.category == r.category || other.category == TRIAGE || r.category == TRIAGE
                {
                    tj.threshold
                } else {
                    tj.cross_threshold
                };
            let better = best.as_ref().is_none_or(|(bs, _, _, bm)| {
                s > *bs || (s == *bs && (m.distance_m, m.case) < (bm.distance_m, bm.case))
            });
            if s >= need && better {
                best = Some((s, need, other, m));
            }
        }
        let (s, need, other, m) = best?;
        let number = &other.number;
        Some((
            m.case,
            format!(
                "同一诉求：文本相似度 {s:.2}（阈值 {need:.2}），相距 {:.0} m（{:.0} m、{:.0} 天内），与 {number} 合并 — same complaint: text similarity {s:.2}, {:.0} m away",
                m.distance_m,
                tj.radius_m,
                tj.window_ms as f64 / cityos_core::time::DAY as f64,
                m.distance_m,
            ),
        ))
    }

    /// (Re)computes when the case's next escalation is due, from the cached state.
    fn schedule(&mut self, id: CaseId) {
        if let Some(at) = self.timer_of.remove(&id) {
            self.timers.remove(&(at, id));
        }
        let next = self
            .open
            .get(&id)
            .and_then(|c| escalation::next_escalation(&self.tax, &self.cal, c));
        if let Some((at, _, _)) = next {
            self.timers.insert((at, id));
            self.timer_of.insert(id, at);
        }
    }

    /// The earliest escalation due among open cases, if any (for a timer service to sleep
    /// until).
    pub fn next_timer(&self) -> Option<Millis> {
        self.timers.first().map(|(at, _)| *at)
    }

    pub fn territory(&self) -> &Arc<Territory> {
        &self.territory
    }
    pub fn taxonomy(&self) -> &Arc<Taxonomy> {
        &self.tax
    }
    pub fn calendar(&self) -> &Arc<WorkCalendar> {
        &self.cal
    }
    pub fn store(&mut self) -> &mut dyn Store {
        self.store.as_mut()
    }
    /// Open cases currently cached.
    pub fn open_cases(&self) -> impl Iterator<Item = &Case> {
        self.open.values()
    }

    /// A case by id: from the cache when open, else from the store.
    pub fn case(&mut self, id: CaseId) -> Result<Option<Case>, EngineError> {
        if let Some(c) = self.open.get(&id) {
            return Ok(Some(c.clone()));
        }
        if let Some((_, c)) = self.recent.get(&id) {
            return Ok(Some(c.clone()));
        }
        Ok(self.store.load_case(id)?)
    }

    pub fn log(&mut self, id: CaseId) -> Result<Vec<LogEntry>, EngineError> {
        Ok(self.store.load_log(id)?)
    }

    /// One report, in its own transaction.
    pub fn submit(&mut self, r: NewReport) -> Result<IntakeOutcome, EngineError> {
        match self.execute(vec![Request::Report(r)]).pop() {
            Some(Ok(Response::Intake(o))) => Ok(o),
            Some(Err(e)) => Err(e),
            _ => unreachable!("a report answers with an intake outcome"),
        }
    }

    /// One transition, in its own transaction.
    pub fn transition(
        &mut self,
        case: CaseId,
        command: Command,
        now: Millis,
    ) -> Result<TransitionOutcome, EngineError> {
        match self
            .execute(vec![Request::Transition { case, command, now }])
            .pop()
        {
            Some(Ok(Response::Transition(o))) => Ok(o),
            Some(Err(e)) => Err(e),
            _ => unreachable!("a transition answers with a transition outcome"),
        }
    }

    /// Fires every escalation due at `now`, in one transaction.
    pub fn tick(&mut self, now: Millis) -> Result<Vec<Escalation>, EngineError> {
        match self.execute(vec![Request::Tick { now }]).pop() {
            Some(Ok(Response::Tick(v))) => Ok(v),
            Some(Err(e)) => Err(e),
            _ => unreachable!("a tick answers with escalations"),
        }
    }

    /// Executes a batch of requests with one commit. Answers come back in request order.
    pub fn execute(&mut self, requests: Vec<Request>) -> Vec<Result<Response, EngineError>> {
        if let Err(e) = self.ensure_healthy() {
            let e = store_error(e);
            return requests
                .iter()
                .map(|_| Err(EngineError::Store(e.clone())))
                .collect();
        }
        let p = self.prepare(requests);
        if !p.writes() {
            return p.answers;
        }
        match p.commit(self.store.as_mut()) {
            Ok(()) => {
                self.committed(p.seq);
                p.answers
            }
            Err(e) => self.recover_failed(vec![(p, Some(e))], |engine, req| {
                engine.execute(vec![req]).pop().expect("one answer")
            }),
        }
    }

    /// After failed commits: reload the committed state and retry each request alone (so
    /// one bad write cannot fail its neighbours). Each batch comes with the error of its
    /// own commit, or `None` if it was never attempted (refused after an earlier failure);
    /// a single request whose own commit failed gets that error. `retry` runs one request
    /// to the end.
    pub fn recover_failed(
        &mut self,
        failed: Vec<(Prepared, Option<StoreError>)>,
        mut retry: impl FnMut(&mut Engine, Request) -> Result<Response, EngineError>,
    ) -> Vec<Result<Response, EngineError>> {
        let mut out = Vec::new();
        let touched: Vec<CaseId> = failed
            .iter()
            .flat_map(|(p, _)| p.touched())
            .copied()
            .collect();
        if let Err(e) = self.reload_cases(&touched) {
            let e = store_error(e);
            for (p, _) in failed {
                out.extend(
                    p.requests
                        .iter()
                        .map(|_| Err(EngineError::Store(e.clone()))),
                );
            }
            return out;
        }
        for (p, err) in failed {
            if let (1, Some(err)) = (p.requests.len(), err) {
                out.push(Err(err.into()));
                continue;
            }
            for req in p.requests {
                out.push(retry(self, req));
            }
        }
        out
    }

    /// Decides a batch against the cached state and applies it to the cache at once
    /// (optimistically: the next batch may be decided while this one is being written).
    /// The caller must commit the result with [`Prepared::commit`] and then report
    /// [`Engine::committed`], or on failure [`Engine::recover_failed`].
    pub fn prepare(&mut self, requests: Vec<Request>) -> Prepared {
        let mut p = self.begin();
        p.answers = requests
            .iter()
            .map(|r| self.run_one(&mut p.work, r))
            .collect();
        p.requests = requests;
        let ids = p.work.order.clone();
        self.settle(&ids, p.seq, &p.work);
        self.seal(&mut p);
        p
    }

    /// An empty batch, to which requests are added one at a time with [`Engine::add`] and
    /// which is [`Engine::seal`]ed before it is committed. A bulk writer (the what-if
    /// replay, the benchmark's fill) uses it to write a case once for many consecutive
    /// requests instead of once per request.
    pub fn begin(&mut self) -> Prepared {
        self.batch_seq += 1;
        Prepared {
            seq: self.batch_seq,
            work: Work::default(),
            fence: None,
            requests: Vec::new(),
            answers: Vec::new(),
        }
    }

    /// Decides one more request into a batch begun with [`Engine::begin`], and settles the
    /// cases it touched in the cache at once (text index, open cases, timers), exactly as
    /// a batch of that request alone would be: the next request added, a tick, or
    /// [`Engine::case`] see what it did. The answer is the request's.
    pub fn add<'p>(
        &mut self,
        p: &'p mut Prepared,
        request: Request,
    ) -> &'p Result<Response, EngineError> {
        p.work.last_touched.clear();
        let answer = self.run_one(&mut p.work, &request);
        // The cases in the order the request first touched them (what `order` would be
        // for a batch of its own).
        let mut ids = std::mem::take(&mut p.work.last_touched);
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        ids.retain(|id| seen.insert(*id));
        self.settle(&ids, p.seq, &p.work);
        p.work.last_touched = ids;
        p.requests.push(request);
        p.answers.push(answer);
        p.answers.last().expect("just pushed")
    }

    /// The cases `ids` of `work` as the cache keeps them: their text entries, open or
    /// recently closed, and their escalation timers.
    fn settle(&mut self, ids: &[CaseId], seq: u64, work: &Work) {
        for id in ids {
            let Some(s) = work.staged.get(id) else {
                continue;
            };
            self.index_text(&s.case);
            let c = &s.case;
            if c.state.is_open() {
                self.open.insert(*id, c.clone());
                self.recent.remove(id);
            } else {
                self.open.remove(id);
                self.recent.insert(*id, (seq, c.clone()));
            }
        }
        for id in ids {
            self.schedule(*id);
        }
    }

    /// Makes a decided batch ready to commit: each staged case and its new log entries
    /// serialised once, event numbers reserved, the live events queued, the leases it
    /// was decided under noted.
    pub fn seal(&mut self, p: &mut Prepared) {
        let seq = p.seq;
        let work = &mut p.work;
        let mut events = Vec::new();
        let mut short: Option<StoreError> = None;
        for id in &work.order {
            let s = work.staged.get_mut(id).expect("staged");
            s.body = crate::store::case_body(&s.case);
            s.log_bodies = s.entries.iter().map(crate::store::log_body).collect();
            s.gseqs = Vec::with_capacity(s.entries.len());
            for e in &s.entries {
                let gseq = match self.take_id(IdKind::Event) {
                    Ok(g) => g,
                    Err(err) => {
                        short.get_or_insert(err);
                        0
                    }
                };
                self.last_event = self.last_event.max(gseq);
                s.gseqs.push(gseq);
                if self.sink.is_some() {
                    events.push(CaseEvent {
                        id: gseq,
                        kind: event_kind(&e.action).to_string(),
                        case_id: s.case.id,
                        number: s.case.number.clone(),
                        category: s.case.category.clone(),
                        priority: s.case.priority.rank() as i64,
                        action: e.action.clone(),
                        from: e.from.map(|x| x.as_str().to_string()),
                        to: e.to.as_str().to_string(),
                        at: e.at,
                        actor: e.actor.clone(),
                        note: e.note.clone(),
                        subdistrict: s.case.regions.subdistrict.clone(),
                        community: s.case.regions.community.clone(),
                        grid: s.case.regions.grid.clone(),
                        department: s.case.lead_task().map(|t| t.department.clone()),
                        lon: s.case.lon,
                        lat: s.case.lat,
                    });
                }
            }
        }
        if let Some(err) = short {
            // No event numbers could be reserved (the database is unreachable): nothing
            // of the batch is written, and the cache, which already took it, is reloaded
            // before the next batch.
            self.broken = true;
            p.answers = p
                .requests
                .iter()
                .map(|_| Err(EngineError::Store(err.clone())))
                .collect();
            p.work = Work::default();
            return;
        }
        if !events.is_empty() {
            self.pending_events.push_back((seq, events));
        }
        p.fence = self.owner.as_ref().map(|o| {
            let mut leases: Vec<(String, i64)> = work
                .order
                .iter()
                .map(|id| {
                    let p = o.by.of(&work.staged[id].case.regions);
                    let epoch = o.held.get(&p).copied().unwrap_or(-1);
                    (p, epoch)
                })
                .collect();
            leases.sort();
            leases.dedup();
            Fence {
                node: o.node.clone(),
                leases,
            }
        });
        for r in &work.reports {
            self.recent_reports.insert(r.id, (seq, r.clone()));
        }
    }

    /// Every batch up to `seq` is durable: the store alone answers for it now.
    pub fn committed(&mut self, seq: u64) {
        self.recent.retain(|_, (s, _)| *s > seq);
        self.recent_reports.retain(|_, (s, _)| *s > seq);
        while self.pending_events.front().is_some_and(|(s, _)| *s <= seq) {
            let (_, events) = self.pending_events.pop_front().expect("checked");
            if let Some(sink) = &self.sink {
                sink(events);
            }
        }
    }

    /// Receives the events of every committed batch, in order (the live event stream).
    pub fn set_event_sink(&mut self, sink: impl Fn(Vec<CaseEvent>) + Send + Sync + 'static) {
        self.sink = Some(Box::new(sink));
    }

    /// The largest event number assigned so far.
    pub fn last_event(&self) -> i64 {
        self.last_event
    }

    /// After failed commits: forgets what the failed batches did and reloads only the
    /// cases they touched from the store (a failed write of one request must not cost a
    /// reload of every open case). Every batch not yet known to be committed must be
    /// among the failed ones (the run loop waits for the writer first). If the store
    /// cannot answer, the engine is marked broken and fully reloads before its next batch.
    pub fn reload_cases(&mut self, ids: &[CaseId]) -> Result<(), EngineError> {
        self.broken = true;
        self.partial_reloads += 1;
        let (max_case, max_report) = self.store.max_ids()?;
        let max_event = self.store.max_event()?;
        let mut fresh = Vec::with_capacity(ids.len());
        for &id in ids {
            fresh.push((id, self.store.load_case(id)?));
        }
        self.recent.clear();
        self.recent_reports.clear();
        self.pending_events.clear();
        self.last_event = max_event;
        self.reset_counters(max_case, max_report, max_event);
        for (id, c) in fresh {
            // Several nodes: only cases of partitions this node holds are kept in memory.
            match c.filter(|c| c.state.is_open() && self.check_owner(&c.regions).is_ok()) {
                Some(c) => {
                    if let Some(cat) = self.tax.category_id(&c.category) {
                        self.dedup.upsert(cat, dedup_entry(&c));
                    }
                    self.index_text(&c);
                    self.open.insert(id, c);
                }
                None => {
                    self.dedup.remove(id);
                    self.text_index.remove(id);
                    self.signatures.remove(&id);
                    self.open.remove(&id);
                }
            }
            self.schedule(id);
        }
        self.broken = false;
        Ok(())
    }

    /// How many times every open case was reloaded, and how many times only the cases of
    /// failed batches were.
    pub fn reloads(&self) -> (u64, u64) {
        (self.full_reloads, self.partial_reloads)
    }

    /// Is the cache in doubt (a reload failed)? The next batch reloads first.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Drops everything cached and reloads the committed state from the store.
    pub fn reload(&mut self) -> Result<(), EngineError> {
        self.broken = true;
        self.full_reloads += 1;
        let (max_case, max_report) = self.store.max_ids()?;
        let open = self.load_held_cases()?;
        self.open = open.into_iter().map(|c| (c.id, c)).collect();
        self.recent.clear();
        self.recent_reports.clear();
        self.pending_events.clear();
        self.last_event = self.store.max_event()?;
        let last_event = self.last_event;
        self.reset_counters(max_case, max_report, last_event);
        self.rebuild_indexes();
        self.broken = false;
        Ok(())
    }

    /// Reloads everything first if a reload failed earlier.
    pub fn ensure_healthy(&mut self) -> Result<(), EngineError> {
        if self.broken {
            self.reload()?;
        }
        Ok(())
    }

    /// Reads a case into the batch's working set.
    fn stage<'w>(&mut self, work: &'w mut Work, id: CaseId) -> Result<&'w mut Staged, EngineError> {
        work.last_touched.push(id);
        if !work.staged.contains_key(&id) {
            let case = self
                .case(id)?
                .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
            self.check_owner(&case.regions)?;
            work.order.push(id);
            work.staged.insert(
                id,
                Staged {
                    prev_version: Some(case.version),
                    prev_count: Some(crate::query::CountKey::of(&case)),
                    case,
                    entries: Vec::new(),
                    tasks_changed: false,
                    body: String::new(),
                    log_bodies: Vec::new(),
                    gseqs: Vec::new(),
                },
            );
        }
        Ok(work.staged.get_mut(&id).expect("just staged"))
    }

    fn run_one(&mut self, work: &mut Work, r: &Request) -> Result<Response, EngineError> {
        match r {
            Request::Report(rep) => self.intake(work, rep).map(Response::Intake),
            Request::Transition { case, command, now } => self
                .run_transition(work, *case, command, *now)
                .map(Response::Transition),
            Request::Tick { now } => self.run_tick(work, *now).map(Response::Tick),
            Request::Keyed { request, key } => {
                let answer = self.run_one(work, request)?;
                let (status, body) = (key.render)(&answer);
                work.idempotency.push(crate::store::IdempotentAnswer {
                    key: key.key.clone(),
                    request_hash: key.request_hash.clone(),
                    status,
                    body,
                    created_at: key.created_at,
                });
                Ok(answer)
            }
        }
    }

    fn regions_of(&self, lon: f64, lat: f64) -> Result<RegionCodes, EngineError> {
        Ok(self.territory.codes(self.territory.locate(lon, lat)?))
    }

    fn validate_report(&self, r: &NewReport) -> Result<(), EngineError> {
        let n = r.text.chars().count();
        if n > MAX_TEXT_CHARS {
            return Err(EngineError::Invalid(format!(
                "report text is {n} characters; at most {MAX_TEXT_CHARS} are accepted"
            )));
        }
        if self.tax.category(&r.category).is_none() {
            return Err(WorkflowError::UnknownCategory(r.category.clone()).into());
        }
        let control = |s: &str| {
            s.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        };
        if control(&r.text) || r.contact.as_deref().is_some_and(control) {
            return Err(EngineError::Invalid(
                "report text and contact may not hold control characters (other than line breaks and tabs)".into(),
            ));
        }
        Ok(())
    }

    /// The open case a report joins, with the reason: the same category within its radius
    /// and window, else a correlated category nearby (the nearest).
    fn existing_case(
        &self,
        r: &NewReport,
        cat: &cityos_core::Category,
        cat_id: cityos_core::taxonomy::CategoryId,
    ) -> Option<(cityos_core::dedup::Match, String)> {
        let hit = self.dedup.find(
            cat_id,
            r.lon,
            r.lat,
            r.at,
            cat.dedup_radius_m,
            cat.dedup_window_ms,
        );
        hit.map(|m| {
            (
                m,
                format!(
                    "merged: same category 「{}」 {:.0} m from case's latest report ({:.1} h ago); radius {:.0} m, window {:.0} h",
                    cat.name_zh,
                    m.distance_m,
                    m.age_ms as f64 / 3.6e6,
                    cat.dedup_radius_m,
                    cat.dedup_window_ms as f64 / 3.6e6
                ),
            )
        })
        .or_else(|| self.correlated_case(r, cat))
    }

    /// Cross-channel correlation: an open case of a related category nearby (e.g. a
    /// sensor's tilt alarm and a citizen's "manhole cover missing"), the nearest.
    fn correlated_case(
        &self,
        r: &NewReport,
        cat: &cityos_core::Category,
    ) -> Option<(cityos_core::dedup::Match, String)> {
        let tax = &self.tax;
        let mut best: Option<(cityos_core::dedup::Match, String)> = None;
        for (other, rule) in tax.correlated(&r.category) {
            let Some(other_id) = tax.category_id(other) else {
                continue;
            };
            if let Some(m) =
                self.dedup
                    .find(other_id, r.lon, r.lat, r.at, rule.radius_m, rule.window_ms)
            {
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| m.distance_m < b.distance_m)
                {
                    let other_name = tax.category(other).map_or(other, |c| c.name_zh.as_str());
                    let reason = format!(
                        "correlated: 「{}」 report joins the 「{other_name}」 case {:.0} m away ({:.1} h ago); correlation rule {} within {:.0} m and {:.0} h",
                        cat.name_zh,
                        m.distance_m,
                        m.age_ms as f64 / 3.6e6,
                        rule.categories.join(" + "),
                        rule.radius_m,
                        rule.window_ms as f64 / 3.6e6
                    );
                    best = Some((m, reason));
                }
            }
        }
        best
    }

    fn intake(&mut self, work: &mut Work, r: &NewReport) -> Result<IntakeOutcome, EngineError> {
        self.validate_report(r)?;
        let regions = self.regions_of(r.lon, r.lat)?;
        self.check_owner(&regions)?;
        let tax = self.tax.clone();
        let cat = tax.category(&r.category).expect("validated");
        let cat_id = self.tax.category_id(&r.category).expect("validated");
        let report_id = self.peek_id(IdKind::Report)?;
        let hit = self
            .existing_case(r, cat, cat_id)
            .map(|(m, reason)| (m.case, reason))
            .or_else(|| self.similar_case(r));
        if let Some((into, reason)) = hit {
            let s = self.stage(work, into)?;
            let changes = workflow::merge_report(&s.case, r, report_id, &tax);
            let case_id = s.case.id;
            push_entry(
                s,
                r.at,
                &Actor::system(),
                "merge_report",
                reason.clone(),
                Vec::new(),
                changes,
            );
            let case = s.case.clone();
            self.used(IdKind::Report);
            work.reports.push(report_from(report_id, case_id, r));
            // The case stays indexed under its own category.
            if let Some(own) = self.tax.category_id(&case.category) {
                self.dedup.upsert(own, dedup_entry(&case));
            }
            self.index_text(&case);
            return Ok(IntakeOutcome {
                report_id,
                case,
                merged: true,
                reason,
            });
        }
        let case = self.open_new_case(work, report_id, r, regions, "new case".into())?;
        self.used(IdKind::Report);
        work.reports.push(report_from(report_id, case.id, r));
        let reason = format!(
            "new case: no open 「{}」 case within {:.0} m and {:.0} h",
            cat.name_zh,
            cat.dedup_radius_m,
            cat.dedup_window_ms as f64 / 3.6e6
        );
        Ok(IntakeOutcome {
            report_id,
            case,
            merged: false,
            reason,
        })
    }

    /// Creates a case for a report (auto-filed and dispatched from trusted channels).
    fn open_new_case(
        &mut self,
        work: &mut Work,
        report_id: ReportId,
        r: &NewReport,
        regions: RegionCodes,
        note: String,
    ) -> Result<Case, EngineError> {
        let id = self.peek_id(IdKind::Case)?;
        let d = local_date(r.at);
        let number = format!(
            "{}{:02}{:02}{:02}{:07}",
            self.config.number_prefix,
            d.year % 100,
            d.month,
            d.day,
            id
        );
        let cx = Ctx {
            tax: &self.tax,
            cal: &self.cal,
            now: r.at,
        };
        let changes = workflow::open_case(id, number, report_id, r, regions, &cx)?;
        self.ids[kind_index(IdKind::Case)].next += 1;
        let mut s = Staged {
            case: match &changes[0] {
                Change::Created { case } => (**case).clone(),
                _ => unreachable!("open_case starts with Created"),
            },
            prev_version: None,
            entries: Vec::new(),
            tasks_changed: false,
            body: String::new(),
            log_bodies: Vec::new(),
            gseqs: Vec::new(),
            prev_count: None,
        };
        // The reasons themselves are in the entry's Route change.
        let mut creation_note = note;
        if let Some(Change::Route { assignments }) = changes.get(1) {
            let depts: Vec<&str> = assignments.iter().map(|a| a.department.as_str()).collect();
            creation_note.push_str("; routed to ");
            creation_note.push_str(&depts.join(", "));
        }
        // A report without a category: say what the text suggested and why (the score).
        if let Some(sg) = &r.suggestion {
            creation_note.push_str("; 智能分拨：");
            creation_note.push_str(&sg.reason);
        }
        let actor = Actor {
            id: format!("{}-intake", r.channel.as_str()),
            ..Actor::system()
        };
        push_entry(
            &mut s,
            r.at,
            &actor,
            "report",
            creation_note,
            Vec::new(),
            changes,
        );
        if self.config.auto_dispatch_trusted && r.channel.is_trusted() {
            // A case awaiting 分拨 is filed but not dispatched: it waits in the triage
            // queue for an officer to pick its category.
            let triage = s.case.category == workflow::TRIAGE;
            for action in [
                Action::File,
                Action::Dispatch {
                    departments: vec![],
                },
            ] {
                if triage && matches!(action, Action::Dispatch { .. }) {
                    continue;
                }
                let cmd = Command::new(action, Actor::system());
                let d = workflow::decide(&s.case, &cmd, &cx)?;
                s.tasks_changed |= d.changes.iter().any(touches_tasks);
                push_entry(
                    &mut s,
                    r.at,
                    &cmd.actor,
                    d.action,
                    "auto: trusted channel".into(),
                    Vec::new(),
                    d.changes,
                );
            }
        }
        let case = s.case.clone();
        work.order.push(id);
        work.last_touched.push(id);
        work.staged.insert(id, s);
        if let Some(cat) = self.tax.category_id(&case.category) {
            self.dedup.upsert(cat, dedup_entry(&case));
        }
        self.index_text(&case);
        Ok(case)
    }

    fn run_transition(
        &mut self,
        work: &mut Work,
        id: CaseId,
        cmd: &Command,
        now: Millis,
    ) -> Result<TransitionOutcome, EngineError> {
        let tax = self.tax.clone();
        let cal = self.cal.clone();
        let cx = Ctx {
            tax: &tax,
            cal: &cal,
            now,
        };
        // Decide on a copy first: nothing is staged unless the command is valid.
        let current = match work.staged.get(&id) {
            Some(s) => s.case.clone(),
            None => self
                .case(id)?
                .ok_or_else(|| EngineError::NotFound(id.to_string()))?,
        };
        let decision = workflow::decide(&current, cmd, &cx)?;
        // Cross-case checks before anything is staged.
        let into_case = match &cmd.action {
            Action::Merge { into } => Some(self.merge_target(work, *into)?),
            _ => None,
        };
        let split_report = match &cmd.action {
            Action::Split { report } => Some(self.report_to_split(work, *report)?),
            _ => None,
        };
        let s = self.stage(work, id)?;
        s.tasks_changed |= decision.changes.iter().any(touches_tasks);
        push_entry(
            s,
            now,
            &cmd.actor,
            decision.action,
            match &decision.note {
                // 分拨's note names the pick and the suggestion, with what staff wrote.
                Some(n)
                    if cityos_core::workflow::is_blank(&cmd.note)
                        || decision.action == "classify" =>
                {
                    n.clone()
                }
                _ => cmd.note.clone(),
            },
            cmd.attachments.clone(),
            decision.changes,
        );
        let mut case = s.case.clone();
        let mut opened = None;
        match self.tax.category_id(&case.category) {
            Some(cat) if case.state.is_open() && case.state != State::Suspended => {
                self.dedup.upsert(cat, dedup_entry(&case))
            }
            _ => self.dedup.remove(id),
        }
        if let Some(target) = into_case {
            self.absorb(work, target.id, &current, &cmd.actor, now)?;
        }
        if let Some(rep) = split_report {
            let note = format!("split from case {} by {}", case.number, cmd.actor.id);
            opened = Some(Box::new(self.split_off(work, rep, note, now)?));
            case = work.staged[&id].case.clone();
        }
        Ok(TransitionOutcome { case, opened })
    }

    /// The case a merge goes into (staged or stored); it must be open.
    fn merge_target(&mut self, work: &Work, into: CaseId) -> Result<Case, EngineError> {
        let target = match work.staged.get(&into) {
            Some(s) => Some(s.case.clone()),
            None => self.case(into)?,
        }
        .ok_or_else(|| EngineError::NotFound(into.to_string()))?;
        if !target.state.is_open() {
            return Err(EngineError::Invalid(format!(
                "case {} is {} and cannot take over other cases",
                target.number, target.state
            )));
        }
        Ok(target)
    }

    /// The report a split takes out: from this batch, the recent ones, or the store.
    fn report_to_split(&mut self, work: &Work, report: ReportId) -> Result<Report, EngineError> {
        work.reports
            .iter()
            .find(|r| r.id == report)
            .cloned()
            .or_else(|| self.recent_reports.get(&report).map(|(_, r)| r.clone()))
            .map(|r| Ok(Some(r)))
            .unwrap_or_else(|| self.store.load_report(report))?
            .ok_or_else(|| EngineError::NotFound(format!("report {report}")))
    }

    /// A merge's other half: `target` takes over the reports of `from`.
    fn absorb(
        &mut self,
        work: &mut Work,
        target: CaseId,
        from: &Case,
        actor: &Actor,
        now: Millis,
    ) -> Result<(), EngineError> {
        let reports = from.reports.clone();
        let t = self.stage(work, target)?;
        let mut changes = Vec::new();
        for r in &reports {
            changes.push(Change::ReportAttached {
                report: *r,
                at: from.last_report_at,
                media: Vec::new(),
            });
        }
        push_entry(
            t,
            now,
            actor,
            "absorb",
            format!("took over the reports of case {}", from.number),
            Vec::new(),
            changes,
        );
        for r in reports {
            work.report_moves.push((r, target));
        }
        Ok(())
    }

    /// A split's other half: the report opens a case of its own (`note` says whence).
    fn split_off(
        &mut self,
        work: &mut Work,
        rep: Report,
        note: String,
        now: Millis,
    ) -> Result<Case, EngineError> {
        let nr = NewReport {
            channel: rep.channel,
            category: rep.category.clone(),
            lon: rep.lon,
            lat: rep.lat,
            text: rep.text.clone(),
            contact: rep.contact.clone(),
            at: now,
            media: Vec::new(),
            priority: None,
            playbook: None,
            suggestion: None,
        };
        let regions = self.regions_of(rep.lon, rep.lat)?;
        let new_case = self.open_new_case(work, rep.id, &nr, regions, note)?;
        work.report_moves.push((rep.id, new_case.id));
        Ok(new_case)
    }

    fn run_tick(&mut self, work: &mut Work, now: Millis) -> Result<Vec<Escalation>, EngineError> {
        let due: Vec<CaseId> = self
            .timers
            .range(..=(now, CaseId::MAX))
            .map(|(_, id)| *id)
            .collect();
        let mut fired = Vec::new();
        for id in due {
            let tax = self.tax.clone();
            let cal = self.cal.clone();
            let cx = Ctx {
                tax: &tax,
                cal: &cal,
                now,
            };
            // Fire every rung that is due (a long outage may have skipped several).
            loop {
                // Several nodes: a case of a partition this node no longer holds is its
                // new owner's to escalate; the others in the tick still go ahead.
                let s = match self.stage(work, id) {
                    Ok(s) => s,
                    Err(EngineError::NotOwner { .. }) => break,
                    Err(e) => return Err(e),
                };
                let Some((at, rung, to)) = escalation::next_escalation(&tax, &cal, &s.case) else {
                    break;
                };
                if at > now {
                    break;
                }
                let cmd = Command::new(Action::Escalate, Actor::system());
                let d = workflow::decide(&s.case, &cmd, &cx)?;
                let note = format!(
                    "overdue since {}: escalated to {to} (rung {rung})",
                    cityos_core::time::format_local(s.case.due().unwrap_or(at))
                );
                push_entry(s, now, &cmd.actor, d.action, note, Vec::new(), d.changes);
                fired.push(Escalation {
                    case: id,
                    number: s.case.number.clone(),
                    rung,
                    to,
                    at,
                });
            }
        }
        Ok(fired)
    }
}

/// The store error inside an engine error (its kind decides the HTTP answer).
fn store_error(e: EngineError) -> StoreError {
    match e {
        EngineError::Store(s) => s,
        other => StoreError::Db(other.to_string()),
    }
}

fn touches_tasks(c: &Change) -> bool {
    matches!(
        c,
        Change::TaskAdded { .. } | Change::TaskState { .. } | Change::TasksCleared
    )
}

fn dedup_entry(c: &Case) -> Entry {
    Entry {
        case: c.id,
        lon: c.lon,
        lat: c.lat,
        last_report_at: c.last_report_at,
    }
}

fn report_from(id: ReportId, case_id: CaseId, r: &NewReport) -> Report {
    Report {
        id,
        case_id,
        channel: r.channel,
        category: r.category.clone(),
        lon: r.lon,
        lat: r.lat,
        text: r.text.clone(),
        contact: r.contact.clone(),
        at: r.at,
    }
}

/// Appends a log entry to a staged case and applies it.
fn push_entry(
    s: &mut Staged,
    at: Millis,
    actor: &Actor,
    action: &str,
    note: String,
    attachments: Vec<String>,
    changes: Vec<Change>,
) {
    let from = if s.case.version == 0 && s.entries.is_empty() && s.prev_version.is_none() {
        None
    } else {
        Some(s.case.state)
    };
    let entry = LogEntry {
        case_id: s.case.id,
        seq: s.case.version + 1,
        at,
        actor: actor.id.clone(),
        role: actor.role,
        action: action.to_string(),
        from,
        to: State::Reported, // set after applying
        note,
        attachments,
        changes,
    };
    let mut entry = entry;
    apply_entry(&mut s.case, &entry);
    entry.to = s.case.state;
    s.entries.push(entry);
}
