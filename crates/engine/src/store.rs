//! Stores behind one trait: SQLite (the embedded default) and PostgreSQL (shared by
//! several nodes). One [`Batch`] is one transaction: case rows, their new log entries,
//! new reports and task rows land together or not at all.
//!
//! The SQL is shared where the two agree (`$n` placeholders in order, i64 milliseconds,
//! TEXT JSON bodies); each backend has its own migrations folder.
//!
//! Architecture Invariant: the log table is append-only (enforced by triggers in both
//! backends); a case row is updated only if its stored `version` is the one the writer
//! read (optimistic concurrency, so several writers cannot lose each other's work).

mod batch;
pub mod postgres;
pub mod sqlite;

use crate::query::{self, CaseQuery, Cursor, Page, Sql, Stats};

/// A committed change to a case, as the live event stream announces it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseEvent {
    /// Global, increasing event number (the stream's `id`).
    pub id: i64,
    /// created | merged | transitioned | escalated
    pub kind: String,
    pub case_id: CaseId,
    pub number: String,
    pub category: String,
    pub priority: i64,
    pub action: String,
    pub from: Option<String>,
    pub to: String,
    pub at: i64,
    pub actor: String,
    pub note: String,
    pub subdistrict: Option<String>,
    pub community: Option<String>,
    pub grid: Option<String>,
    /// The lead department, if dispatched.
    pub department: Option<String>,
    /// Where the case is (WGS84).
    pub lon: f64,
    pub lat: f64,
}

/// The kind of event a log action is.
pub fn event_kind(action: &str) -> &'static str {
    match action {
        "report" => "created",
        "merge_report" | "absorb" | "merge" => "merged",
        "escalate" => "escalated",
        _ => "transitioned",
    }
}

/// A result row of either backend, read by column position.
pub(crate) trait RowRead {
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn float(&self, i: usize) -> Result<f64, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn opt_float(&self, i: usize) -> Result<Option<f64>, StoreError>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError>;
    /// A flag stored as an integer (0 is false).
    fn bool(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.int(i)? != 0)
    }
}

/// Builds an event from the columns `query::events_after` selects, in order.
pub(crate) fn event_row(r: &dyn RowRead) -> Result<CaseEvent, StoreError> {
    let action = r.text(5)?;
    Ok(CaseEvent {
        id: r.int(0)?,
        kind: event_kind(&action).to_string(),
        case_id: r.int(1)?,
        number: r.text(2)?,
        category: r.text(3)?,
        priority: r.int(4)?,
        action,
        from: r.opt_text(6)?,
        to: r.text(7)?,
        at: r.int(8)?,
        actor: r.text(9)?,
        note: r.text(10)?,
        subdistrict: r.opt_text(11)?,
        community: r.opt_text(12)?,
        grid: r.opt_text(13)?,
        department: r.opt_text(14)?,
        lon: r.float(15)?,
        lat: r.float(16)?,
    })
}
use cityos_core::case::{Case, CaseId, LogEntry, Report, ReportId};
use cityos_core::taxonomy::Step;
use cityos_core::time::Millis;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(String),
    /// The database cannot be reached (connection lost, reconnecting): try again later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database has no room left (disk full): writes fail, reads still work.
    #[error("the database is out of storage: {0}")]
    Full(String),
    /// A statement ran past its time limit and was cancelled.
    #[error("the database cancelled a statement that ran too long: {0}")]
    Timeout(String),
    #[error("case {case} was changed by someone else (expected version {expected})")]
    Conflict { case: CaseId, expected: u64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The batch was decided under a partition lease this node no longer holds (it
    /// expired, or another node took the partition over): nothing was written.
    #[error("partition {partition} is no longer held by this node at epoch {epoch}; nothing was written")]
    Fenced { partition: String, epoch: i64 },
}

/// A case to write: its new projection, the version it had when read (`None` for a new
/// case) and the log entries that took it there.
#[derive(Debug, Clone)]
pub struct CaseWrite<'a> {
    pub case: &'a Case,
    pub prev_version: Option<u64>,
    pub entries: &'a [LogEntry],
    pub tasks_changed: bool,
    /// The serialised forms, prepared by the caller (the engine thread), so that the
    /// writer only binds them: `case_body(case)` and `log_body(entry)` for each entry.
    pub case_body: &'a str,
    pub log_bodies: &'a [String],
    /// The global event number of each entry.
    pub gseqs: &'a [i64],
    /// The case's key in `case_counts` before this write (`None` for a new case).
    pub prev_count: Option<query::CountKey>,
}

/// Everything one transaction writes.
#[derive(Debug, Clone, Default)]
pub struct Batch<'a> {
    pub cases: Vec<CaseWrite<'a>>,
    pub reports: &'a [Report],
    /// Reports that moved to another case (merge of cases, split).
    pub report_moves: &'a [(ReportId, CaseId)],
    /// First answers of keyed requests, written with the cases they created or changed
    /// (a key that is already stored keeps its first answer).
    pub idempotency: &'a [IdempotentAnswer],
    /// Several nodes: the partition leases the batch was decided under; the transaction
    /// writes only if the node still holds each of them at that epoch.
    pub fence: Option<&'a Fence>,
}

/// The leases a batch was decided under: the node and (partition, epoch) of every case
/// it writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fence {
    pub node: String,
    pub leases: Vec<(String, i64)>,
}

/// Which ids a block is reserved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Case,
    Report,
    Event,
}

/// A partition's lease as the database holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub partition: String,
    pub owner: String,
    /// The owner's advertised address (where requests for the partition go).
    pub address: String,
    pub epoch: i64,
    /// Milliseconds left (negative: expired), by the database's clock.
    pub remaining_ms: i64,
}

/// One lease round of a node: renew what it holds, then take free or expired partitions
/// until it holds its share (the partitions over the live nodes, rounded up), giving one
/// back when it holds more than its share.
#[derive(Debug, Clone)]
pub struct LeaseRound<'a> {
    pub node: &'a str,
    pub address: &'a str,
    /// Every partition of the district.
    pub partitions: &'a [String],
    /// What the node believes it holds: (partition, epoch).
    pub held: &'a [(String, i64)],
    pub ttl_ms: i64,
}

/// Several nodes on one database (issue 20): ids from sequences and the partition
/// leases. SQLite (one process owns the file) keeps the defaults: the engine's counters,
/// no leases.
pub trait ClusterStore: Send {
    /// Do ids come from the database's sequences (reserved in blocks) rather than from
    /// the engine's counters?
    fn shared_ids(&self) -> bool {
        false
    }
    /// Reserves the next block of ids of `kind` for this engine alone: (first, count).
    fn reserve_ids(&mut self, _kind: IdKind) -> Result<(i64, i64), StoreError> {
        Err(StoreError::Db("this store has no id sequences".into()))
    }
    /// Runs one lease round (see [`LeaseRound`]) in one transaction; the leases the node
    /// holds afterwards.
    fn lease_round(&mut self, _round: &LeaseRound<'_>) -> Result<Vec<Lease>, StoreError> {
        Err(StoreError::Db(
            "several nodes need a PostgreSQL database (this store has no leases)".into(),
        ))
    }
    /// Every partition's lease (who to send a partition's requests to).
    fn leases(&mut self) -> Result<Vec<Lease>, StoreError> {
        Ok(Vec::new())
    }
    /// Several nodes: the cluster's settings (`settings`: the partitioning, a fingerprint
    /// of the token key) are recorded by the first node; a node joining while others
    /// are live (seen within `ttl_ms`) with other settings gets `Ok(Err(theirs))`. With no
    /// other node live the record is replaced (the cluster is being set up anew).
    fn join_settings(
        &mut self,
        _node: &str,
        _settings: &str,
        _ttl_ms: i64,
    ) -> Result<Result<(), String>, StoreError> {
        Ok(Ok(()))
    }
    /// The open cases of one sub-district (`Some`) or of none (`None`: cases without a
    /// sub-district), in id order: a partition taken over.
    fn load_open_cases_of(&mut self, _subdistrict: Option<&str>) -> Result<Vec<Case>, StoreError> {
        Err(StoreError::Db("this store has no partitions".into()))
    }
    /// The database's clock (milliseconds since the epoch), by which leases expire;
    /// `None`: a store without leases. A joining node measures its own clock's skew
    /// against it.
    fn database_now_ms(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
}

impl Batch<'_> {
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
            && self.reports.is_empty()
            && self.report_moves.is_empty()
            && self.idempotency.is_empty()
    }
}

/// The command centre's headline figures at a moment (whole district), kept per
/// 5-minute bucket so the centre can compare with the same time yesterday.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FigureSample {
    pub bucket: Millis,
    pub at: Millis,
    pub open: i64,
    pub overdue: i64,
    pub handled: i64,
    pub on_time: i64,
}

pub(crate) const INSERT_FIGURES: &str = "INSERT INTO figure_samples (bucket, at, open_cases, overdue, handled, on_time) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (bucket) DO NOTHING";
pub(crate) const SELECT_FIGURES: &str = "SELECT bucket, at, open_cases, overdue, handled, on_time FROM figure_samples WHERE bucket <= $1 AND bucket > $2 ORDER BY bucket DESC LIMIT 1";
pub(crate) const PRUNE_FIGURES: &str = "DELETE FROM figure_samples WHERE bucket < $1";
/// How long figure samples are kept (the centre compares with yesterday; a week and a
/// day leaves room for a same-day-last-week comparison).
pub const FIGURES_KEPT: Millis = 8 * 24 * 60 * 60 * 1000;

/// Assembles a sample from the columns of `SELECT_FIGURES`.
pub(crate) fn figures_row(r: &dyn RowRead) -> Result<FigureSample, StoreError> {
    Ok(FigureSample {
        bucket: r.int(0)?,
        at: r.int(1)?,
        open: r.int(2)?,
        overdue: r.int(3)?,
        handled: r.int(4)?,
        on_time: r.int(5)?,
    })
}

/// Counts over stored cases (for summaries and health checks).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub cases: i64,
    pub log_entries: i64,
    pub reports: i64,
}

/// An account (a person who signs in).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub username: String,
    pub display_name: String,
    /// PHC string (argon2id).
    pub password_hash: String,
    pub role: String,
    pub department: Option<String>,
    pub scope: Option<String>,
    pub created_at: i64,
}

/// An imported dataset of the data end.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub name: String,
    /// The department that owns it.
    pub owner: String,
    /// public, internal, sensitive or secret.
    pub sensitivity: String,
    /// The column names, as a JSON array.
    pub columns: String,
    /// The rows, as a JSON array of objects.
    pub rows: String,
    pub row_count: i64,
    pub imported_at: i64,
}

pub(crate) const UPSERT_DATASET: &str = "INSERT INTO datasets (name, owner, sensitivity, columns, rows, row_count, imported_at) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, sensitivity = excluded.sensitivity, columns = excluded.columns, rows = excluded.rows, row_count = excluded.row_count, imported_at = excluded.imported_at";
pub(crate) const SELECT_DATASETS: &str = "SELECT name, owner, sensitivity, columns, rows, row_count, imported_at FROM datasets ORDER BY name";

/// One indicator's values in one region over one bucket of time.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub indicator: String,
    pub region: String,
    /// The bucket's length in seconds (60 or 3600).
    pub step: i64,
    /// The bucket's start (ms).
    pub bucket: i64,
    pub n: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    pub last_at: i64,
}

/// Adding a rollup to a stored one merges them (counts and sums add, the newer last wins).
pub(crate) const UPSERT_ROLLUP: &str = "INSERT INTO indicator_rollups (indicator, region, step, bucket, n, sum, min, max, last, last_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (indicator, region, step, bucket) DO UPDATE SET n = indicator_rollups.n + excluded.n, sum = indicator_rollups.sum + excluded.sum, min = CASE WHEN excluded.min < indicator_rollups.min THEN excluded.min ELSE indicator_rollups.min END, max = CASE WHEN excluded.max > indicator_rollups.max THEN excluded.max ELSE indicator_rollups.max END, last = CASE WHEN excluded.last_at >= indicator_rollups.last_at THEN excluded.last ELSE indicator_rollups.last END, last_at = CASE WHEN excluded.last_at >= indicator_rollups.last_at THEN excluded.last_at ELSE indicator_rollups.last_at END";
pub(crate) const SELECT_ROLLUPS: &str = "SELECT indicator, region, step, bucket, n, sum, min, max, last, last_at FROM indicator_rollups WHERE indicator = $1 AND region = $2 AND step = $3 AND bucket >= $4 AND bucket < $5 ORDER BY bucket";

/// A published CAP public warning.
#[derive(Debug, Clone, PartialEq)]
pub struct CapMessage {
    pub identifier: String,
    /// The alert it speaks of (rule@region).
    pub fingerprint: String,
    /// Alert, Update or Cancel.
    pub msg_type: String,
    pub sent: i64,
    pub headline: String,
    pub xml: String,
}

pub(crate) const INSERT_CAP: &str = "INSERT INTO cap_messages (identifier, fingerprint, msg_type, sent, headline, xml) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (identifier) DO NOTHING";
pub(crate) const SELECT_CAP_RECENT: &str = "SELECT identifier, fingerprint, msg_type, sent, headline, xml FROM cap_messages ORDER BY sent DESC, identifier DESC LIMIT $1";
pub(crate) const SELECT_CAP_ONE: &str = "SELECT identifier, fingerprint, msg_type, sent, headline, xml FROM cap_messages WHERE identifier = $1";

/// One (device, rule) sensing alarm as of its last transition (written on transitions,
/// never per reading).
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    pub device: String,
    pub rule: String,
    /// `normal`, `pending` or `firing`.
    pub state: String,
    pub since: i64,
    /// The case its firing filed.
    pub case_id: Option<CaseId>,
}

pub(crate) const UPSERT_ALARM: &str = "INSERT INTO alarm_states (device, rule, state, since, case_id) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (device, rule) DO UPDATE SET state = excluded.state, since = excluded.since, case_id = excluded.case_id";
pub(crate) const SELECT_ALARMS: &str =
    "SELECT device, rule, state, since, case_id FROM alarm_states ORDER BY device, rule";
pub(crate) const UPSERT_QUEUE_MARK: &str = "INSERT INTO queue_marks (queue, seq, above) VALUES ($1,$2,$3) ON CONFLICT (queue) DO UPDATE SET seq = excluded.seq, above = excluded.above";
pub(crate) const SELECT_QUEUE_MARK: &str = "SELECT seq, above FROM queue_marks WHERE queue = $1";

/// A device of the runtime registry (issue 22), as last registered or changed.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    pub id: String,
    pub kind: String,
    pub lon: f64,
    pub lat: f64,
    pub owner: Option<String>,
    /// Separated by `;`.
    pub tags: String,
    /// `active` or `retired`.
    pub status: String,
    pub actor: String,
    pub at: i64,
}

pub(crate) const UPSERT_DEVICE: &str = "INSERT INTO device_registry (id, kind, lon, lat, owner, tags, status, actor, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, lon = excluded.lon, lat = excluded.lat, owner = excluded.owner, tags = excluded.tags, status = excluded.status, actor = excluded.actor, at = excluded.at";
pub(crate) const SELECT_DEVICES: &str =
    "SELECT id, kind, lon, lat, owner, tags, status, actor, at FROM device_registry ORDER BY at, id";

/// One alert (rule@region) pending or firing.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub fingerprint: String,
    pub rule: String,
    pub region: String,
    /// `pending` or `firing`.
    pub state: String,
    pub since: i64,
    pub level: String,
    /// The last value (`None` when there was none: NaN).
    pub value: Option<f64>,
    /// Its firing was told.
    pub told: bool,
}

pub(crate) const UPSERT_ALERT: &str = "INSERT INTO alert_states (fingerprint, rule, region, state, since, level, value, told) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (fingerprint) DO UPDATE SET rule = excluded.rule, region = excluded.region, state = excluded.state, since = excluded.since, level = excluded.level, value = excluded.value, told = excluded.told";
pub(crate) const DELETE_ALERT: &str = "DELETE FROM alert_states WHERE fingerprint = $1";
pub(crate) const SELECT_ALERTS: &str = "SELECT fingerprint, rule, region, state, since, level, value, told FROM alert_states ORDER BY fingerprint";

/// A silence of an alert rule in a region (and inside it).
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    pub id: i64,
    pub rule: String,
    pub region: String,
    pub owner: String,
    pub reason: String,
    pub ends_at: i64,
}

/// A silence is created once; afterwards only its end moves (expired early).
pub(crate) const UPSERT_SILENCE: &str = "INSERT INTO silences (id, rule, region, owner, reason, ends_at) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (id) DO UPDATE SET ends_at = excluded.ends_at";
pub(crate) const SELECT_SILENCES: &str =
    "SELECT id, rule, region, owner, reason, ends_at FROM silences ORDER BY id";

pub(crate) const UPSERT_ALERT_CASE: &str = "INSERT INTO alert_cases (fingerprint, case_id) VALUES ($1,$2) ON CONFLICT (fingerprint) DO UPDATE SET case_id = excluded.case_id";
pub(crate) const SELECT_ALERT_CASES: &str =
    "SELECT fingerprint, case_id FROM alert_cases ORDER BY fingerprint";
/// Each alert's CAP chain still open: the messages after its last Cancel, oldest first.
pub(crate) const SELECT_CAP_CHAINS: &str = "SELECT m.fingerprint, m.identifier, m.sent FROM cap_messages m WHERE m.msg_type <> 'Cancel' AND NOT EXISTS (SELECT 1 FROM cap_messages c WHERE c.fingerprint = m.fingerprint AND c.msg_type = 'Cancel' AND c.sent >= m.sent) ORDER BY m.fingerprint, m.sent, m.identifier";

pub(crate) const UPSERT_RULE_CASE: &str = "INSERT INTO data_rule_cases (rule, subject, case_id) VALUES ($1,$2,$3) ON CONFLICT (rule, subject) DO UPDATE SET case_id = excluded.case_id";
pub(crate) const DELETE_RULE_CASE: &str =
    "DELETE FROM data_rule_cases WHERE rule = $1 AND subject = $2";
pub(crate) const SELECT_RULE_CASES: &str =
    "SELECT subject, case_id FROM data_rule_cases WHERE rule = $1 ORDER BY subject";

/// A scenario pack's state as an administrator left it: enabled or not, and the text a
/// reload put in force (`None`: the pack as shipped or read from the scenarios directory).
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioPackRow {
    pub name: String,
    pub enabled: bool,
    pub text: Option<String>,
    pub updated_at: i64,
}

/// One entry of a scenario pack's audit trail (`id` is given by the store).
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioAuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub pack: String,
    /// `enable`, `disable` or `reload`.
    pub action: String,
    /// The version in force after the change (a refused reload: the version offered).
    pub version: String,
    pub ok: bool,
    /// JSON array of the problems (`"line:column: message"`), `[]` when none.
    pub problems: String,
}

pub(crate) const UPSERT_SCENARIO_PACK: &str = "INSERT INTO scenario_packs (name, enabled, text, updated_at) VALUES ($1,$2,$3,$4) ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled, text = excluded.text, updated_at = excluded.updated_at";
pub(crate) const SELECT_SCENARIO_PACKS: &str =
    "SELECT name, enabled, text, updated_at FROM scenario_packs ORDER BY name";
pub(crate) const INSERT_SCENARIO_AUDIT: &str = "INSERT INTO scenario_audit (at, actor, pack, action, version, ok, problems) VALUES ($1,$2,$3,$4,$5,$6,$7)";
pub(crate) const SELECT_SCENARIO_AUDIT: &str = "SELECT id, at, actor, pack, action, version, ok, problems FROM scenario_audit WHERE pack = $1 ORDER BY id";
pub(crate) const UPSERT_MEAL_ROW: &str = "INSERT INTO meal_rows (kind, id, body, at) VALUES ($1,$2,$3,$4) ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, at = excluded.at";
pub(crate) const SELECT_MEAL_ROWS: &str =
    "SELECT kind, id, body, at FROM meal_rows WHERE kind = $1 ORDER BY id";
pub(crate) const INSERT_MEAL_LEDGER: &str =
    "INSERT INTO meal_ledger (elder, seq, at, kind, amount, reference) VALUES ($1,$2,$3,$4,$5,$6)";
pub(crate) const SELECT_MEAL_LEDGER: &str =
    "SELECT elder, seq, at, kind, amount, reference FROM meal_ledger ORDER BY elder, seq";

/// A life-circle upload: a facility list (`kind` = "facilities", `format` = "csv" or
/// "geojson") or the walking network (`kind` = "network", name "network").
#[derive(Debug, Clone, PartialEq)]
pub struct LifeCircleUpload {
    pub name: String,
    pub kind: String,
    pub format: String,
    pub body: String,
    pub actor: String,
    pub at: i64,
}

pub(crate) const UPSERT_LIFECIRCLE_UPLOAD: &str = "INSERT INTO lifecircle_uploads (name, kind, format, body, actor, at) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, format = excluded.format, body = excluded.body, actor = excluded.actor, at = excluded.at";
pub(crate) const DELETE_LIFECIRCLE_UPLOAD: &str = "DELETE FROM lifecircle_uploads WHERE name = $1";
pub(crate) const SELECT_LIFECIRCLE_UPLOADS: &str =
    "SELECT name, kind, format, body, actor, at FROM lifecircle_uploads ORDER BY name";

pub use cityos_core::audit::Entry as AuditEntry;

/// A grant: a consumer's access to columns of a dataset (`id` is given by the store).
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRow {
    pub id: i64,
    pub dataset: String,
    /// The consuming department's code, or a machine's name (`machine:NAME`).
    pub consumer: String,
    /// JSON array of the column names granted.
    pub columns: String,
    pub purpose: String,
    /// The grant ends at this time (ms).
    pub until: i64,
    /// Personal columns are shown unmasked (else masked).
    pub unmask: bool,
    /// `requested`, `approved`, `refused` or `revoked`.
    pub state: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    /// The owner's reason for a refusal or revocation ("" when none).
    pub reason: String,
}

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)";
pub(crate) const SELECT_AUDIT_HEAD: &str = "SELECT seq, at, actor, action, subject, detail, prev, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
pub(crate) const SELECT_AUDIT_PAGE: &str = "SELECT seq, at, actor, action, subject, detail, prev, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";
pub(crate) const INSERT_GRANT: &str = "INSERT INTO grants (dataset, consumer, columns, purpose, until, unmask, state, requested_by, requested_at, decided_by, decided_at, reason) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING id";
pub(crate) const UPDATE_GRANT: &str = "UPDATE grants SET dataset = $1, consumer = $2, columns = $3, purpose = $4, until = $5, unmask = $6, state = $7, requested_by = $8, requested_at = $9, decided_by = $10, decided_at = $11, reason = $12 WHERE id = $13";
pub(crate) const SELECT_GRANTS: &str = "SELECT id, dataset, consumer, columns, purpose, until, unmask, state, requested_by, requested_at, decided_by, decided_at, reason FROM grants ORDER BY id";
pub(crate) const SELECT_DATASET: &str = "SELECT name, owner, sensitivity, columns, rows, row_count, imported_at FROM datasets WHERE name = $1";

/// An uploaded photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// Hex digest of the bytes (the same photo uploaded twice is stored once).
    pub id: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub created_at: i64,
}

pub(crate) const INSERT_MEDIA: &str = "INSERT INTO media (id, content_type, bytes, created_at) VALUES ($1,$2,$3,$4) ON CONFLICT (id) DO NOTHING";
pub(crate) const SELECT_MEDIA: &str =
    "SELECT id, content_type, bytes, created_at FROM media WHERE id = $1";

/// The stored first answer to an idempotent request.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentAnswer {
    pub key: String,
    pub request_hash: String,
    pub status: i64,
    pub body: String,
    pub created_at: i64,
}

/// The connection itself: which backend, whether it is usable, raw queries (list and
/// grouping rows) and, for tests, a size cap.
pub trait StoreConnection: Send {
    /// Is the connection believed usable, without a round trip (`/healthz`)? A store that
    /// lost its connection says no until it has reconnected.
    fn healthy(&self) -> bool {
        true
    }
    /// A round trip to the database (`/readyz`).
    fn ping(&mut self) -> Result<(), StoreError> {
        self.query_groups(&Sql {
            text: "SELECT 'ping', COUNT(*) FROM schema_migrations".into(),
            params: vec![],
        })
        .map(|_| ())
    }
    /// Caps the database's size in pages (`None` lifts the cap) where the backend can
    /// (SQLite's `max_page_count`): how tests make the disk "full".
    fn limit_pages(&mut self, _pages: Option<u64>) -> Result<(), StoreError> {
        Ok(())
    }
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Runs a list query: rows of (id, sort key, body).
    fn query_list(&mut self, sql: &Sql) -> Result<Vec<(i64, i64, String)>, StoreError>;

    /// Runs a grouping query: rows of (group, count, optional sum).
    fn query_groups(&mut self, sql: &Sql) -> Result<Vec<(String, i64, i64)>, StoreError>;
}

/// Cases: the engine's batched commits and reloads, the case reads and queries (lists,
/// statistics, map counts, events) and the idempotency records committed with them.
pub trait CaseStore: StoreConnection {
    /// Runs an event query (see `query::events_after`).
    fn query_events(&mut self, sql: &Sql) -> Result<Vec<CaseEvent>, StoreError>;
    /// The largest global event number stored (0 when none).
    fn max_event(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .query_groups(&Sql {
                text: "SELECT 'max', COALESCE(MAX(gseq), 0) FROM case_log".into(),
                params: vec![],
            })?
            .first()
            .map_or(0, |r| r.1))
    }
    /// Committed events after `after`, in order, optionally only those of cases in a
    /// region (any level) or with a task of a department.
    fn events_after(
        &mut self,
        after: i64,
        limit: usize,
        region: Option<&str>,
        department: Option<&str>,
    ) -> Result<Vec<CaseEvent>, StoreError> {
        self.query_events(&query::events_after(after, limit, region, department))
    }
    /// Stores the first answer for a key; returns the stored one if the key was taken.
    fn put_idempotent(
        &mut self,
        a: &IdempotentAnswer,
    ) -> Result<Option<IdempotentAnswer>, StoreError>;
    fn idempotent(&mut self, key: &str) -> Result<Option<IdempotentAnswer>, StoreError>;

    /// One page of cases matching `q`, in its order.
    fn list_cases(&mut self, q: &CaseQuery) -> Result<Page, StoreError> {
        let busy = match &q.department {
            Some(d) => {
                let n = self.query_groups(&query::department_probe(d))?;
                n.first().map_or(0, |r| r.1) >= query::DEPARTMENT_PROBE
            }
            None => false,
        };
        let planned;
        let q = if busy {
            planned = CaseQuery {
                department_busy: true,
                ..q.clone()
            };
            &planned
        } else {
            q
        };
        let mut rows = self.query_list(&query::list(q))?;
        let limit = q.limit.clamp(1, 1000);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last()
                .map(|(id, key, _)| Cursor { key: *key, id: *id })
        } else {
            None
        };
        let cases = rows
            .iter()
            .map(|(_, _, b)| parse_case(b))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { cases, next })
    }
    /// Counts over the cases matching `q`; `today_from` starts "today's intake". Reads the
    /// maintained counts when the filters allow (see `query::counts_eligible`).
    fn stats(&mut self, q: &CaseQuery, today_from: i64) -> Result<Stats, StoreError> {
        let fast = query::counts_eligible(q);
        let group = |s: &mut Self, col: &str| -> Result<Vec<(String, i64)>, StoreError> {
            let sql = if fast {
                query::counts_by(q, col)
            } else {
                query::count_by(q, col)
            };
            Ok(s.query_groups(&sql)?
                .into_iter()
                .filter(|r| r.1 != 0)
                .map(|(k, n, _)| (k, n))
                .collect())
        };
        let by_state = group(self, "state")?;
        let by_domain = group(self, "domain")?;
        let by_subdistrict = group(self, "subdistrict")?;
        let by_department: Vec<(String, i64, i64)> = self
            .query_groups(&if fast {
                query::counts_on_time(q)
            } else {
                query::on_time_by_department(q)
            })?
            .into_iter()
            .filter(|r| r.1 != 0)
            .collect();
        let overdue = self
            .query_groups(&query::count_marked_overdue(q))?
            .first()
            .map_or(0, |r| r.1);
        let today_q = CaseQuery {
            created_from: Some(q.created_from.map_or(today_from, |f| f.max(today_from))),
            ..q.clone()
        };
        let today_intake = self
            .query_groups(&query::count_all(&today_q))?
            .first()
            .map_or(0, |r| r.1);
        let (handled, handled_on_time) = by_department
            .iter()
            .fold((0, 0), |(h, o), r| (h + r.1, o + r.2));
        Ok(Stats {
            total: by_state.iter().map(|r| r.1).sum(),
            by_state,
            by_domain,
            by_subdistrict,
            by_department,
            overdue,
            today_intake,
            handled,
            handled_on_time,
        })
    }
    /// Cases matching `q` counted per region at one level (`subdistrict`, `community` or
    /// `grid`): the map's density, aggregated in the store.
    fn counts_by_region(
        &mut self,
        q: &CaseQuery,
        level: cityos_core::Level,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let col = match level {
            cityos_core::Level::Subdistrict => "subdistrict",
            cityos_core::Level::Community => "community",
            cityos_core::Level::Grid => "grid",
            _ => "district",
        };
        Ok(self
            .query_groups(&query::count_by(q, col))?
            .into_iter()
            .filter(|r| !r.0.is_empty() && r.1 != 0)
            .map(|(k, n, _)| (k, n))
            .collect())
    }
    /// Log entries per action since `from` (today's closures, escalations…): the first
    /// event at or after `from` is found by a binary search over the event numbers
    /// (indexed, and assigned in commit order), then only the events after it are read.
    fn actions_since(&mut self, from: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let one =
            |s: &mut Self, text: &str, p: Vec<query::Param>| -> Result<Option<i64>, StoreError> {
                Ok(s.query_groups(&query::Sql {
                    text: text.into(),
                    params: p,
                })?
                .first()
                .map(|r| r.1))
            };
        let max = one(
            self,
            "SELECT 'max', COALESCE(MAX(gseq), 0) FROM case_log",
            vec![],
        )?
        .unwrap_or(0);
        let (mut lo, mut hi) = (1i64, max + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = one(
                self,
                "SELECT 'at', at FROM case_log WHERE gseq >= $1 ORDER BY gseq LIMIT 1",
                vec![query::Param::Int(mid)],
            )?;
            match at {
                Some(t) if t < from => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(self
            .query_groups(&query::Sql {
                text: "SELECT action, COUNT(*) FROM case_log WHERE gseq >= $1 GROUP BY action"
                    .into(),
                params: vec![query::Param::Int(lo)],
            })?
            .into_iter()
            .map(|(k, n, _)| (k, n))
            .collect())
    }
    /// Writes the batches, in order, in one transaction (all or nothing).
    fn commit(&mut self, batches: &[Batch<'_>]) -> Result<(), StoreError>;
    fn load_case(&mut self, id: CaseId) -> Result<Option<Case>, StoreError>;
    fn load_case_by_number(&mut self, number: &str) -> Result<Option<Case>, StoreError>;
    /// Every case that is still open (not closed, evaluated, rejected or merged).
    fn load_open_cases(&mut self) -> Result<Vec<Case>, StoreError>;
    /// Every case, in id order (replay checks, summaries of small runs).
    fn load_all_cases(&mut self) -> Result<Vec<Case>, StoreError>;
    fn load_log(&mut self, id: CaseId) -> Result<Vec<LogEntry>, StoreError>;
    fn load_report(&mut self, id: ReportId) -> Result<Option<Report>, StoreError>;
    fn reports_of(&mut self, case: CaseId) -> Result<Vec<Report>, StoreError>;
    /// The citizen and staff reports filed at `since` or later, newest first, at most
    /// `limit`, each with its case's number (the hot topics, issue 14).
    fn recent_reports(
        &mut self,
        since: Millis,
        limit: i64,
    ) -> Result<Vec<(Report, String)>, StoreError>;
    /// The largest case id and report id stored (0 when empty).
    fn max_ids(&mut self) -> Result<(CaseId, ReportId), StoreError>;
    fn counts(&mut self) -> Result<Counts, StoreError>;
    /// Records a sample of the centre's headline figures (one per `bucket`: a sample
    /// already there is kept), and deletes the samples whose bucket is more than
    /// [`FIGURES_KEPT`] older than this one.
    fn record_figures(&mut self, s: &FigureSample) -> Result<(), StoreError>;
    /// The newest sample whose bucket starts at or before `at` and after `after` (none
    /// when there is none); by bucket, the table's key.
    fn figures_at(&mut self, at: Millis, after: Millis)
        -> Result<Option<FigureSample>, StoreError>;
}

/// Accounts (people and their roles).
pub trait AccountStore: Send {
    /// Creates or replaces an account.
    fn put_user(&mut self, u: &User) -> Result<(), StoreError>;
    fn user(&mut self, username: &str) -> Result<Option<User>, StoreError>;
}

/// The data catalogue: imported datasets, and the open cases the data rules raised.
pub trait DatasetStore: Send {
    /// Creates or replaces a dataset (a new import of the same name replaces the rows).
    fn put_dataset(&mut self, d: &Dataset) -> Result<(), StoreError>;
    /// Every dataset, by name.
    fn datasets(&mut self) -> Result<Vec<Dataset>, StoreError>;
    /// Links (or with `None` unlinks) the open case data rule `rule` raised for `subject`.
    fn put_rule_case(
        &mut self,
        rule: &str,
        subject: &str,
        case: Option<CaseId>,
    ) -> Result<(), StoreError>;
    /// The subjects with an open case of data rule `rule`, and their cases.
    fn rule_cases(&mut self, rule: &str) -> Result<Vec<(String, CaseId)>, StoreError>;
}

/// The sensing end: each (device, rule) alarm's state, as of its last transition.
pub trait SensingStore: Send {
    /// Upserts alarm states, in one transaction.
    fn put_alarm_states(&mut self, rows: &[AlarmRow]) -> Result<(), StoreError>;
    fn alarm_states(&mut self) -> Result<Vec<AlarmRow>, StoreError>;
    /// Several nodes: upserts alarm states and a work queue's mark (which of its messages
    /// were applied) in one transaction, written only while the fence's leases are held
    /// (else [`StoreError::Fenced`], nothing written: the mark's one writer is the
    /// lease's holder, which replaces it whole). A store without leases has no work queue.
    fn put_alarm_states_fenced(
        &mut self,
        _rows: &[AlarmRow],
        _mark: Option<&QueueMark>,
        _fence: &Fence,
    ) -> Result<(), StoreError> {
        Err(StoreError::Db(
            "several nodes need a PostgreSQL database (this store has no leases)".into(),
        ))
    }
    /// A work queue's mark (`None`: nothing applied yet).
    fn queue_mark(&mut self, _queue: &str) -> Result<Option<QueueMark>, StoreError> {
        Ok(None)
    }
}

/// Which of a work queue's messages were applied (several nodes: the readings queue's
/// stream sequences), written with the state those messages changed.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueMark {
    /// The queue, named so that a queue made anew (its numbering started again) has
    /// a mark of its own.
    pub queue: String,
    /// Every message up to this sequence was applied.
    pub seq: i64,
    /// Those applied beyond `seq`, as ranges `a-b` (or `a`), comma-separated.
    pub above: String,
}

/// The runtime device registry (issue 22): devices registered, changed or retired
/// through the API, over the configuration's seed.
pub trait DeviceStore: Send {
    /// Upserts devices by id, in one transaction.
    fn put_devices(&mut self, rows: &[DeviceRow]) -> Result<(), StoreError>;
    /// Every stored device, oldest change first.
    fn registered_devices(&mut self) -> Result<Vec<DeviceRow>, StoreError>;
}

/// Vital signs: indicator rollups and the published CAP messages.
pub trait VitalsStore: Send {
    /// Merges rollups into the stored ones, in one transaction.
    fn put_rollups(&mut self, r: &[Rollup]) -> Result<(), StoreError>;
    /// One indicator's rollups in a region at a step, `from <= bucket < to`, oldest first.
    fn rollups(
        &mut self,
        indicator: &str,
        region: &str,
        step: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<Rollup>, StoreError>;
    /// Keeps a published CAP message (the same identifier twice is kept once).
    fn put_cap(&mut self, m: &CapMessage) -> Result<(), StoreError>;
    /// The newest CAP messages first.
    fn cap_messages(&mut self, limit: i64) -> Result<Vec<CapMessage>, StoreError>;
    fn cap_message(&mut self, identifier: &str) -> Result<Option<CapMessage>, StoreError>;
    /// Each alert's open CAP chain (messages after its last Cancel): (fingerprint,
    /// identifier, sent), by fingerprint, oldest first.
    fn cap_chains(&mut self) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// Upserts the alerts that changed and deletes those that ended, in one transaction.
    fn put_alert_states(
        &mut self,
        upsert: &[AlertRow],
        delete: &[String],
    ) -> Result<(), StoreError>;
    /// Every alert pending or firing.
    fn alert_states(&mut self) -> Result<Vec<AlertRow>, StoreError>;
    /// Creates a silence, or moves its end.
    fn put_silence(&mut self, s: &SilenceRow) -> Result<(), StoreError>;
    /// Every silence ever made (ended ones too), by id.
    fn silences(&mut self) -> Result<Vec<SilenceRow>, StoreError>;
    /// Links an alert to the case it filed.
    fn put_alert_case(&mut self, fingerprint: &str, case: CaseId) -> Result<(), StoreError>;
    fn alert_cases(&mut self) -> Result<Vec<(String, CaseId)>, StoreError>;
}

/// Scenario packs: each pack's state as an administrator left it, and the audit trail.
pub trait ScenarioStore: Send {
    /// Writes a change: the pack's new state (when it changed) and its audit entry, in
    /// one transaction.
    fn record_scenario(
        &mut self,
        pack: Option<&ScenarioPackRow>,
        audit: &ScenarioAuditRow,
    ) -> Result<(), StoreError>;
    /// Every pack's stored state, by name.
    fn scenario_packs(&mut self) -> Result<Vec<ScenarioPackRow>, StoreError>;
    /// A pack's audit trail, oldest first.
    fn scenario_audit(&mut self, pack: &str) -> Result<Vec<ScenarioAuditRow>, StoreError>;
}

/// The life circle's uploads: facility lists and the walking network, kept as sent.
pub trait LifeCircleStore: Send {
    /// Writes an upload (replacing one of the same name).
    fn put_lifecircle_upload(&mut self, u: &LifeCircleUpload) -> Result<(), StoreError>;
    /// Removes an upload; whether there was one.
    fn delete_lifecircle_upload(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Every upload, by name.
    fn lifecircle_uploads(&mut self) -> Result<Vec<LifeCircleUpload>, StoreError>;
}

/// A row of the meals room (为老助餐): a canteen, a day's menu, an elder, an account link
/// or an order — its JSON body by kind and id (`meal_rows`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealRow {
    pub kind: String,
    pub id: String,
    pub body: String,
    pub at: i64,
}

/// One entry of an elder's meal account (`meal_ledger`, append-only): signed fen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealLedgerRow {
    pub elder: String,
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub amount: i64,
    pub reference: String,
}

/// The meals room: its rows and the elders' ledgers.
pub trait MealStore: Send {
    /// Upserts rows and appends ledger entries in one transaction. An entry whose
    /// (elder, seq) is already stored fails the whole write (nothing is charged twice).
    fn record_meals(
        &mut self,
        rows: &[MealRow],
        ledger: &[MealLedgerRow],
    ) -> Result<(), StoreError>;
    /// Every row of a kind, by id.
    /// Several nodes: [`MealStore::record_meals`] written only while the fence's leases
    /// are held (else [`StoreError::Fenced`], nothing written) — the book is kept by the
    /// holder of the singleton lease alone. A store without leases has no other node.
    fn record_meals_fenced(
        &mut self,
        _rows: &[MealRow],
        _ledger: &[MealLedgerRow],
        _fence: &Fence,
    ) -> Result<(), StoreError> {
        Err(StoreError::Db(
            "several nodes need a PostgreSQL database (this store has no leases)".into(),
        ))
    }
    fn meal_rows(&mut self, kind: &str) -> Result<Vec<MealRow>, StoreError>;
    /// Every ledger entry, by elder and seq.
    fn meal_ledger(&mut self) -> Result<Vec<MealLedgerRow>, StoreError>;
}

/// A row of the precision-assistance room (精准救助): its JSON body by kind and id
/// (`assistance_rows`; same shape as a meals row).
pub type AssistanceRow = MealRow;

/// 精准救助 (issue 15): the room's pseudonymised imports, the membership source's
/// personal columns, its cases and what was raised when.
pub trait AssistanceStore: Send {
    /// Upserts rows in one transaction.
    fn record_assistance(&mut self, rows: &[AssistanceRow]) -> Result<(), StoreError>;
    /// Every row of a kind, by id.
    fn assistance_rows(&mut self, kind: &str) -> Result<Vec<AssistanceRow>, StoreError>;
}

pub(crate) const UPSERT_ASSISTANCE_ROW: &str = "INSERT INTO assistance_rows (kind, id, body, at) VALUES ($1,$2,$3,$4) ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, at = excluded.at";
pub(crate) const SELECT_ASSISTANCE_ROWS: &str =
    "SELECT kind, id, body, at FROM assistance_rows WHERE kind = $1 ORDER BY id";

/// Data sharing: the hash-chained audit trail (append-only) and the dataset grants.
pub trait ShareStore: Send {
    /// Appends entries (already chained by the writer), in one transaction.
    fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// The last entry, if any.
    fn audit_head(&mut self) -> Result<Option<AuditEntry>, StoreError>;
    /// Up to `limit` entries after `after`, in order.
    fn audit_page(&mut self, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;
    /// Stores a new grant; its id.
    fn insert_grant(&mut self, g: &GrantRow) -> Result<i64, StoreError>;
    /// Rewrites a grant (its state, decision) by id.
    fn update_grant(&mut self, g: &GrantRow) -> Result<(), StoreError>;
    /// Every grant, by id.
    fn grants(&mut self) -> Result<Vec<GrantRow>, StoreError>;
    /// One dataset with its rows.
    fn dataset(&mut self, name: &str) -> Result<Option<Dataset>, StoreError>;
    /// Case log entries after (case, seq) in (case, seq) order, for verifying their
    /// chains: (case, seq, body, chain).
    fn log_links(
        &mut self,
        after_case: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<LogLink>, StoreError>;
}

/// A case log entry as its chain covers it: (case, seq, its stored columns joined by
/// `audit::log_fields`, chain — `None` for entries written before migration 17).
pub type LogLink = (i64, i64, String, Option<String>);

/// Photos, stored by content.
pub trait MediaStore: Send {
    /// Stores a photo (a no-op when the same bytes are already stored).
    fn put_media(&mut self, m: &Media) -> Result<(), StoreError>;
    fn media(&mut self, id: &str) -> Result<Option<Media>, StoreError>;
}

/// Evaluation (考核评价, issue 17): the period's case logs, the citizen cases the repeat
/// measure compares, and the saved monthly reports.
pub trait EvaluationStore: Send {
    /// The logs of the cases created in `[from, to)`, one call of `each` per case (its
    /// entries in order), cases in creation order (the order of the creation index, so
    /// SQLite walks it and each case's log without sorting the rows).
    fn cohort_logs(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(Vec<LogEntry>),
    ) -> Result<(), StoreError>;
    /// The cases created in `[from, to)` in creation order, each with its stored
    /// evaluation fold (`case_facts`, JSON of `cityos_core::evaluation::CaseFold`;
    /// `None` for a case stored before the folds were kept).
    fn cohort_folds(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(CaseId, Option<String>),
    ) -> Result<(), StoreError>;
    /// Citizen cases created in `[from, to)`: (id, category, lon, lat, created_at).
    fn citizen_cases(
        &mut self,
        from: i64,
        to: i64,
    ) -> Result<Vec<cityos_core::evaluation::measures::RepeatKey>, StoreError>;
    /// The reports of the cases created in `[from, to)`, oldest first (the what-if
    /// replay's input).
    fn cohort_reports(&mut self, from: i64, to: i64) -> Result<Vec<Report>, StoreError>;
    /// Saves (or replaces) a report by name.
    fn put_evaluation_report(&mut self, r: &SavedReport) -> Result<(), StoreError>;
    /// The saved reports, newest first, without their files.
    fn evaluation_reports(&mut self) -> Result<Vec<SavedReport>, StoreError>;
    /// One saved report with its files.
    fn evaluation_report(&mut self, name: &str) -> Result<Option<SavedReport>, StoreError>;
}

/// A saved evaluation report (the scheduled monthly report): its files as generated.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedReport {
    /// The period it covers, e.g. `2026-11`; also its name.
    pub name: String,
    pub created_at: i64,
    pub xlsx: Vec<u8>,
    pub csv: String,
    pub html: String,
}

pub(crate) const SELECT_COHORT_LOGS: &str = "SELECT l.case_id, l.seq, l.at, l.actor, l.role, l.action, l.from_state, l.to_state, l.note, l.body FROM cases c JOIN case_log l ON l.case_id = c.id WHERE c.created_at >= $1 AND c.created_at < $2 ORDER BY c.created_at, c.id, l.seq";
pub(crate) const SELECT_COHORT_FOLDS: &str = "SELECT c.id, f.fold FROM cases c LEFT JOIN case_facts f ON f.case_id = c.id WHERE c.created_at >= $1 AND c.created_at < $2 ORDER BY c.created_at, c.id";
pub(crate) const SELECT_FOLD: &str = "SELECT fold FROM case_facts WHERE case_id = $1";
pub(crate) const UPSERT_FOLD: &str = "INSERT INTO case_facts (case_id, created_at, fold) VALUES ($1,$2,$3) ON CONFLICT (case_id) DO UPDATE SET fold = excluded.fold";
pub(crate) const SELECT_COHORT_REPORTS: &str = "SELECT r.id, r.case_id, r.channel, r.category, r.lon, r.lat, r.text, r.contact, r.at FROM cases c JOIN reports r ON r.case_id = c.id WHERE c.created_at >= $1 AND c.created_at < $2 ORDER BY r.at, r.id";
pub(crate) const SELECT_CITIZEN_CASES: &str = "SELECT id, category, lon, lat, created_at FROM cases WHERE created_at >= $1 AND created_at < $2 AND channel = 'citizen'";
pub(crate) const UPSERT_EVALUATION_REPORT: &str = "INSERT INTO evaluation_reports (name, created_at, xlsx, csv, html) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at, xlsx = excluded.xlsx, csv = excluded.csv, html = excluded.html";
pub(crate) const SELECT_EVALUATION_REPORTS: &str =
    "SELECT name, created_at FROM evaluation_reports ORDER BY name DESC";
pub(crate) const SELECT_EVALUATION_REPORT: &str =
    "SELECT name, created_at, xlsx, csv, html FROM evaluation_reports WHERE name = $1";

/// Groups log rows (in case, seq order) into one call per case.
pub(crate) fn each_case(
    rows: impl IntoIterator<Item = Result<LogEntry, StoreError>>,
    each: &mut dyn FnMut(Vec<LogEntry>),
) -> Result<(), StoreError> {
    let mut cur: Vec<LogEntry> = Vec::new();
    for r in rows {
        let e = r?;
        if cur.first().is_some_and(|f| f.case_id != e.case_id) {
            each(std::mem::take(&mut cur));
        }
        cur.push(e);
    }
    if !cur.is_empty() {
        each(cur);
    }
    Ok(())
}

/// Assembles a citizen case of `SELECT_CITIZEN_CASES`.
pub(crate) fn repeat_row(
    r: &dyn RowRead,
) -> Result<cityos_core::evaluation::measures::RepeatKey, StoreError> {
    Ok((r.int(0)?, r.text(1)?, r.float(2)?, r.float(3)?, r.int(4)?))
}

/// Assembles a saved report of `SELECT_EVALUATION_REPORT` (or, with two columns, its
/// name and time only).
pub(crate) fn saved_report_row(r: &dyn RowRead, whole: bool) -> Result<SavedReport, StoreError> {
    Ok(SavedReport {
        name: r.text(0)?,
        created_at: r.int(1)?,
        xlsx: if whole { r.bytes(2)? } else { Vec::new() },
        csv: if whole { r.text(3)? } else { String::new() },
        html: if whole { r.text(4)? } else { String::new() },
    })
}

/// The parameters of `UPSERT_EVALUATION_REPORT`.
pub(crate) fn saved_report_args(x: &SavedReport) -> [Arg<'_>; 5] {
    [
        Arg::Text(&x.name),
        Arg::Int(x.created_at),
        Arg::Bytes(&x.xlsx),
        Arg::Text(&x.csv),
        Arg::Text(&x.html),
    ]
}

/// Everything a store does: the union of the parts, implemented for every type that
/// implements them all. Callers that need only one part name that part's trait.
pub trait Store:
    StoreConnection
    + CaseStore
    + AccountStore
    + DatasetStore
    + SensingStore
    + VitalsStore
    + MediaStore
    + ScenarioStore
    + LifeCircleStore
    + MealStore
    + ShareStore
    + EvaluationStore
    + AssistanceStore
    + ClusterStore
    + DeviceStore
{
}

impl<T> Store for T where
    T: StoreConnection
        + CaseStore
        + AccountStore
        + DatasetStore
        + SensingStore
        + VitalsStore
        + MediaStore
        + ScenarioStore
        + LifeCircleStore
        + MealStore
        + ShareStore
        + EvaluationStore
        + AssistanceStore
        + ClusterStore
        + DeviceStore
        + ?Sized
{
}

pub(crate) const OPEN_STATES: &str =
    "('reported','filed','dispatched','acknowledged','in_progress','handled','rework','verified','returned','suspended')";

/// The JSON stored in a case row's `body` column.
pub fn case_body(c: &Case) -> String {
    serde_json::to_string(c).expect("a case always serialises")
}

pub(crate) fn parse_case(body: &str) -> Result<Case, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("case body: {e}")))
}

/// The JSON part of a log row: changes and attachments.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LogBody {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<String>,
    pub changes: Vec<cityos_core::case::Change>,
}

/// The JSON stored in a log row's `body` column: changes and attachments.
pub fn log_body(e: &LogEntry) -> String {
    #[derive(serde::Serialize)]
    struct Ref<'a> {
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        attachments: &'a [String],
        changes: &'a [cityos_core::case::Change],
    }
    serde_json::to_string(&Ref {
        attachments: &e.attachments,
        changes: &e.changes,
    })
    .expect("a log entry always serialises")
}

/// Columns of a case row derived from the case, shared by both backends.
pub(crate) struct CaseRow<'a> {
    pub lead: Option<&'a str>,
    pub due: Option<i64>,
    /// 1/0 when the latest handle deadline was met on time/late; None while unmet.
    pub handle_on_time: Option<i64>,
    /// The deadline sort key: the due time, or i64::MAX without one.
    pub due_key: i64,
}

impl<'a> CaseRow<'a> {
    pub fn new(c: &'a Case) -> CaseRow<'a> {
        CaseRow {
            lead: c.lead_task().map(|t| t.department.as_str()),
            due: c.due(),
            handle_on_time: c
                .deadline(Step::Handle)
                .and_then(|d| d.on_time())
                .map(i64::from),
            due_key: c.due().unwrap_or(i64::MAX),
        }
    }
}

pub(crate) const INSERT_CASE: &str = "INSERT INTO cases (id, number, category, domain, state, priority, lon, lat, district, subdistrict, community, grid, lead_department, channel, created_at, updated_at, due_at, overdue, reporters, escalations, version, body, title, handle_on_time, due_key) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25)";
pub(crate) const UPDATE_CASE: &str = "UPDATE cases SET state=$1, priority=$2, lead_department=$3, updated_at=$4, due_at=$5, overdue=$6, reporters=$7, escalations=$8, version=$9, body=$10, handle_on_time=$11, due_key=$12, category=$13, domain=$14 WHERE id=$15 AND version=$16";
pub(crate) const INSERT_LOG: &str = "INSERT INTO case_log (case_id, seq, at, actor, role, action, from_state, to_state, note, body, gseq, chain) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)";
/// A case's last log entry's chain value (the row with the highest `seq`).
pub(crate) const SELECT_LOG_HEAD: &str =
    "SELECT chain FROM case_log WHERE case_id = $1 ORDER BY seq DESC LIMIT 1";
pub(crate) const SELECT_LOG_LINKS: &str = "SELECT case_id, seq, at, actor, role, action, from_state, to_state, note, body, chain FROM case_log WHERE case_id > $1 OR (case_id = $1 AND seq > $2) ORDER BY case_id, seq LIMIT $3";
pub(crate) const INSERT_REPORT: &str = "INSERT INTO reports (id, case_id, channel, category, lon, lat, text, contact, at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)";
pub(crate) const MOVE_REPORT: &str = "UPDATE reports SET case_id=$1 WHERE id=$2";
pub(crate) const DELETE_TASKS: &str = "DELETE FROM tasks WHERE case_id=$1";
pub(crate) const INSERT_TASK: &str =
    "INSERT INTO tasks (case_id, department, lead, state, since) VALUES ($1,$2,$3,$4,$5)";
pub(crate) const SELECT_LOG: &str = "SELECT case_id, seq, at, actor, role, action, from_state, to_state, note, body FROM case_log WHERE case_id=$1 ORDER BY seq";
pub(crate) const SELECT_REPORT: &str =
    "SELECT id, case_id, channel, category, lon, lat, text, contact, at FROM reports";

/// The parameters of `INSERT_REPORT`.
pub(crate) fn report_args(r: &Report) -> [Arg<'_>; 9] {
    [
        Arg::Int(r.id),
        Arg::Int(r.case_id),
        Arg::Text(r.channel.as_str()),
        Arg::Text(&r.category),
        Arg::Float(r.lon),
        Arg::Float(r.lat),
        Arg::Text(&r.text),
        Arg::OptText(r.contact.as_deref()),
        Arg::Int(r.at),
    ]
}

/// The parameters of `INSERT_CASE`.
pub(crate) fn case_insert_args<'a>(w: &CaseWrite<'a>, row: &CaseRow<'a>) -> [Arg<'a>; 25] {
    let c = w.case;
    [
        Arg::Int(c.id),
        Arg::Text(&c.number),
        Arg::Text(&c.category),
        Arg::Text(c.domain.as_str()),
        Arg::Text(c.state.as_str()),
        Arg::Int(c.priority.rank() as i64),
        Arg::Float(c.lon),
        Arg::Float(c.lat),
        Arg::OptText(c.regions.district.as_deref()),
        Arg::OptText(c.regions.subdistrict.as_deref()),
        Arg::OptText(c.regions.community.as_deref()),
        Arg::OptText(c.regions.grid.as_deref()),
        Arg::OptText(row.lead),
        Arg::Text(c.channel.as_str()),
        Arg::Int(c.created_at),
        Arg::Int(c.updated_at),
        Arg::OptInt(row.due),
        Arg::Int(c.overdue as i64),
        Arg::Int(c.reporter_count() as i64),
        Arg::Int(c.escalations as i64),
        Arg::Int(c.version as i64),
        Arg::Text(w.case_body),
        Arg::Text(&c.title),
        Arg::OptInt(row.handle_on_time),
        Arg::Int(row.due_key),
    ]
}

/// The parameters of `UPDATE_CASE`, `prev` being the version the writer read.
pub(crate) fn case_update_args<'a>(
    w: &CaseWrite<'a>,
    row: &CaseRow<'a>,
    prev: u64,
) -> [Arg<'a>; 16] {
    let c = w.case;
    [
        Arg::Text(c.state.as_str()),
        Arg::Int(c.priority.rank() as i64),
        Arg::OptText(row.lead),
        Arg::Int(c.updated_at),
        Arg::OptInt(row.due),
        Arg::Int(c.overdue as i64),
        Arg::Int(c.reporter_count() as i64),
        Arg::Int(c.escalations as i64),
        Arg::Int(c.version as i64),
        Arg::Text(w.case_body),
        Arg::OptInt(row.handle_on_time),
        Arg::Int(row.due_key),
        // 分拨 (classify) changes them: the row's columns follow the case.
        Arg::Text(&c.category),
        Arg::Text(c.domain.as_str()),
        Arg::Int(c.id),
        Arg::Int(prev as i64),
    ]
}

/// The parameters of `INSERT_LOG`.
pub(crate) fn log_args<'a>(
    e: &'a LogEntry,
    body: &'a str,
    gseq: i64,
    chain: &'a str,
) -> [Arg<'a>; 12] {
    [
        Arg::Int(e.case_id),
        Arg::Int(e.seq as i64),
        Arg::Int(e.at),
        Arg::Text(&e.actor),
        Arg::Text(e.role.as_str()),
        Arg::Text(&e.action),
        Arg::OptText(e.from.map(|s| s.as_str())),
        Arg::Text(e.to.as_str()),
        Arg::Text(&e.note),
        Arg::Text(body),
        Arg::Int(gseq),
        Arg::Text(chain),
    ]
}

/// The parameters of `INSERT_TASK`.
pub(crate) fn task_args(case: CaseId, t: &cityos_core::case::Task) -> [Arg<'_>; 5] {
    [
        Arg::Int(case),
        Arg::Text(&t.department),
        Arg::Int(t.lead as i64),
        Arg::Text(t.state.as_str()),
        Arg::Int(t.since),
    ]
}

/// The parameters of `query::UPSERT_COUNT`: a key and how much its count changes.
pub(crate) fn count_args(k: &query::CountKey, n: i64) -> [Arg<'_>; 7] {
    [
        Arg::Text(k.state),
        Arg::Text(k.domain),
        Arg::Text(&k.subdistrict),
        Arg::Text(&k.lead),
        Arg::Int(k.on_time),
        Arg::Int(k.overdue),
        Arg::Int(n),
    ]
}

/// Assembles a log entry from the columns of `SELECT_LOG`.
pub(crate) fn log_entry(r: &dyn RowRead) -> Result<LogEntry, StoreError> {
    use cityos_core::case::{Role, State};
    let (case_id, seq) = (r.int(0)?, r.int(1)?);
    let bad = |what: &str, v: &str| {
        StoreError::Corrupt(format!("case {case_id} log {seq}: {what} {v:?}"))
    };
    let b: LogBody = serde_json::from_str(&r.text(9)?)
        .map_err(|e| StoreError::Corrupt(format!("case {case_id} log {seq}: {e}")))?;
    let (role, to) = (r.text(4)?, r.text(7)?);
    Ok(LogEntry {
        case_id,
        seq: seq as u64,
        at: r.int(2)?,
        role: Role::parse(&role).ok_or_else(|| bad("role", &role))?,
        actor: r.text(3)?,
        action: r.text(5)?,
        from: match r.opt_text(6)? {
            Some(f) => Some(State::parse(&f).ok_or_else(|| bad("state", &f))?),
            None => None,
        },
        to: State::parse(&to).ok_or_else(|| bad("state", &to))?,
        note: r.text(8)?,
        attachments: b.attachments,
        changes: b.changes,
    })
}

/// Assembles a report from the columns of `SELECT_REPORT`.
pub(crate) fn report_row(r: &dyn RowRead) -> Result<Report, StoreError> {
    let (id, channel) = (r.int(0)?, r.text(2)?);
    Ok(Report {
        id,
        case_id: r.int(1)?,
        channel: cityos_core::case::Channel::parse(&channel)
            .ok_or_else(|| StoreError::Corrupt(format!("report {id}: channel {channel:?}")))?,
        category: r.text(3)?,
        lon: r.float(4)?,
        lat: r.float(5)?,
        text: r.text(6)?,
        contact: r.opt_text(7)?,
        at: r.int(8)?,
    })
}

pub(crate) const SELECT_RECENT_REPORTS: &str = "SELECT r.id, r.case_id, r.channel, r.category, r.lon, r.lat, r.text, r.contact, r.at, c.number FROM reports r JOIN cases c ON c.id = r.case_id WHERE r.at >= $1 AND r.channel IN ('citizen', 'staff') ORDER BY r.at DESC, r.id DESC LIMIT $2";

/// A report and its case's number, from the columns of `SELECT_RECENT_REPORTS`.
pub(crate) fn recent_report_row(r: &dyn RowRead) -> Result<(Report, String), StoreError> {
    Ok((report_row(r)?, r.text(9)?))
}

/// Assembles an account from the columns of `SELECT_USER`.
pub(crate) fn user_row(r: &dyn RowRead) -> Result<User, StoreError> {
    Ok(User {
        username: r.text(0)?,
        display_name: r.text(1)?,
        password_hash: r.text(2)?,
        role: r.text(3)?,
        department: r.opt_text(4)?,
        scope: r.opt_text(5)?,
        created_at: r.int(6)?,
    })
}

/// Assembles a stored answer from the columns of `SELECT_IDEMPOTENT`.
pub(crate) fn idempotent_row(r: &dyn RowRead) -> Result<IdempotentAnswer, StoreError> {
    Ok(IdempotentAnswer {
        key: r.text(0)?,
        request_hash: r.text(1)?,
        status: r.int(2)?,
        body: r.text(3)?,
        created_at: r.int(4)?,
    })
}

/// Assembles a dataset from the columns of `SELECT_DATASETS`.
pub(crate) fn dataset_row(r: &dyn RowRead) -> Result<Dataset, StoreError> {
    Ok(Dataset {
        name: r.text(0)?,
        owner: r.text(1)?,
        sensitivity: r.text(2)?,
        columns: r.text(3)?,
        rows: r.text(4)?,
        row_count: r.int(5)?,
        imported_at: r.int(6)?,
    })
}

/// Assembles a rollup from the columns of `SELECT_ROLLUPS`.
pub(crate) fn rollup_row(r: &dyn RowRead) -> Result<Rollup, StoreError> {
    Ok(Rollup {
        indicator: r.text(0)?,
        region: r.text(1)?,
        step: r.int(2)?,
        bucket: r.int(3)?,
        n: r.int(4)?,
        sum: r.float(5)?,
        min: r.float(6)?,
        max: r.float(7)?,
        last: r.float(8)?,
        last_at: r.int(9)?,
    })
}

/// Assembles a CAP message from the columns of `SELECT_CAP_RECENT` and `SELECT_CAP_ONE`.
pub(crate) fn cap_row(r: &dyn RowRead) -> Result<CapMessage, StoreError> {
    Ok(CapMessage {
        identifier: r.text(0)?,
        fingerprint: r.text(1)?,
        msg_type: r.text(2)?,
        sent: r.int(3)?,
        headline: r.text(4)?,
        xml: r.text(5)?,
    })
}

/// One link of an open CAP chain from the columns of `SELECT_CAP_CHAINS`:
/// (fingerprint, identifier, sent).
pub(crate) fn cap_chain_row(r: &dyn RowRead) -> Result<(String, String, i64), StoreError> {
    Ok((r.text(0)?, r.text(1)?, r.int(2)?))
}

/// Assembles a sensing alarm from the columns of `SELECT_ALARMS`.
pub(crate) fn alarm_row(r: &dyn RowRead) -> Result<AlarmRow, StoreError> {
    Ok(AlarmRow {
        device: r.text(0)?,
        rule: r.text(1)?,
        state: r.text(2)?,
        since: r.int(3)?,
        case_id: r.opt_int(4)?,
    })
}

/// Assembles a registered device from the columns of `SELECT_DEVICES`.
pub(crate) fn device_row(r: &dyn RowRead) -> Result<DeviceRow, StoreError> {
    Ok(DeviceRow {
        id: r.text(0)?,
        kind: r.text(1)?,
        lon: r.float(2)?,
        lat: r.float(3)?,
        owner: r.opt_text(4)?,
        tags: r.text(5)?,
        status: r.text(6)?,
        actor: r.text(7)?,
        at: r.int(8)?,
    })
}

/// Assembles an alert from the columns of `SELECT_ALERTS`.
pub(crate) fn alert_row(r: &dyn RowRead) -> Result<AlertRow, StoreError> {
    Ok(AlertRow {
        fingerprint: r.text(0)?,
        rule: r.text(1)?,
        region: r.text(2)?,
        state: r.text(3)?,
        since: r.int(4)?,
        level: r.text(5)?,
        value: r.opt_float(6)?,
        told: r.bool(7)?,
    })
}

/// Assembles a silence from the columns of `SELECT_SILENCES`.
pub(crate) fn silence_row(r: &dyn RowRead) -> Result<SilenceRow, StoreError> {
    Ok(SilenceRow {
        id: r.int(0)?,
        rule: r.text(1)?,
        region: r.text(2)?,
        owner: r.text(3)?,
        reason: r.text(4)?,
        ends_at: r.int(5)?,
    })
}

/// A key and the case linked to it (`SELECT_ALERT_CASES`, `SELECT_RULE_CASES`).
pub(crate) fn case_link_row(r: &dyn RowRead) -> Result<(String, CaseId), StoreError> {
    Ok((r.text(0)?, r.int(1)?))
}

/// Assembles an upload from the columns of `SELECT_LIFECIRCLE_UPLOADS`.
pub(crate) fn lifecircle_upload_row(r: &dyn RowRead) -> Result<LifeCircleUpload, StoreError> {
    Ok(LifeCircleUpload {
        name: r.text(0)?,
        kind: r.text(1)?,
        format: r.text(2)?,
        body: r.text(3)?,
        actor: r.text(4)?,
        at: r.int(5)?,
    })
}

/// The parameters of `UPSERT_LIFECIRCLE_UPLOAD`.
pub(crate) fn lifecircle_upload_args(x: &LifeCircleUpload) -> [Arg<'_>; 6] {
    [
        Arg::Text(&x.name),
        Arg::Text(&x.kind),
        Arg::Text(&x.format),
        Arg::Text(&x.body),
        Arg::Text(&x.actor),
        Arg::Int(x.at),
    ]
}

/// Assembles a meals row from the columns of `SELECT_MEAL_ROWS`.
pub(crate) fn meal_row(r: &dyn RowRead) -> Result<MealRow, StoreError> {
    Ok(MealRow {
        kind: r.text(0)?,
        id: r.text(1)?,
        body: r.text(2)?,
        at: r.int(3)?,
    })
}

/// Assembles a ledger entry from the columns of `SELECT_MEAL_LEDGER`.
pub(crate) fn meal_ledger_row(r: &dyn RowRead) -> Result<MealLedgerRow, StoreError> {
    Ok(MealLedgerRow {
        elder: r.text(0)?,
        seq: r.int(1)?,
        at: r.int(2)?,
        kind: r.text(3)?,
        amount: r.int(4)?,
        reference: r.text(5)?,
    })
}

/// The parameters of `UPSERT_MEAL_ROW`.
pub(crate) fn meal_row_args(x: &MealRow) -> [Arg<'_>; 4] {
    [
        Arg::Text(&x.kind),
        Arg::Text(&x.id),
        Arg::Text(&x.body),
        Arg::Int(x.at),
    ]
}

/// The parameters of `INSERT_MEAL_LEDGER`.
pub(crate) fn meal_ledger_args(x: &MealLedgerRow) -> [Arg<'_>; 6] {
    [
        Arg::Text(&x.elder),
        Arg::Int(x.seq),
        Arg::Int(x.at),
        Arg::Text(&x.kind),
        Arg::Int(x.amount),
        Arg::Text(&x.reference),
    ]
}

/// Assembles a pack's state from the columns of `SELECT_SCENARIO_PACKS`.
pub(crate) fn scenario_pack_row(r: &dyn RowRead) -> Result<ScenarioPackRow, StoreError> {
    Ok(ScenarioPackRow {
        name: r.text(0)?,
        enabled: r.bool(1)?,
        text: r.opt_text(2)?,
        updated_at: r.int(3)?,
    })
}

/// Assembles an audit entry from the columns of `SELECT_SCENARIO_AUDIT`.
pub(crate) fn scenario_audit_row(r: &dyn RowRead) -> Result<ScenarioAuditRow, StoreError> {
    Ok(ScenarioAuditRow {
        id: r.int(0)?,
        at: r.int(1)?,
        actor: r.text(2)?,
        pack: r.text(3)?,
        action: r.text(4)?,
        version: r.text(5)?,
        ok: r.bool(6)?,
        problems: r.text(7)?,
    })
}

/// Assembles an audit entry from the columns of `SELECT_AUDIT_*`.
pub(crate) fn audit_row(r: &dyn RowRead) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        seq: r.int(0)?,
        at: r.int(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        subject: r.text(4)?,
        detail: r.text(5)?,
        prev: r.text(6)?,
        hash: r.text(7)?,
    })
}

/// Assembles a case log entry's link from the columns of `SELECT_LOG_LINKS`: the
/// entry's columns joined by `audit::log_fields`, as its chain covers them.
pub(crate) fn log_link_row(r: &dyn RowRead) -> Result<LogLink, StoreError> {
    let from = r.opt_text(6)?;
    let fields = cityos_core::audit::log_fields(
        r.int(2)?,
        &r.text(3)?,
        &r.text(4)?,
        &r.text(5)?,
        from.as_deref(),
        &r.text(7)?,
        &r.text(8)?,
        &r.text(9)?,
    );
    Ok((r.int(0)?, r.int(1)?, fields, r.opt_text(10)?))
}

/// Assembles a grant from the columns of `SELECT_GRANTS`.
pub(crate) fn grant_row(r: &dyn RowRead) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        id: r.int(0)?,
        dataset: r.text(1)?,
        consumer: r.text(2)?,
        columns: r.text(3)?,
        purpose: r.text(4)?,
        until: r.int(5)?,
        unmask: r.bool(6)?,
        state: r.text(7)?,
        requested_by: r.text(8)?,
        requested_at: r.int(9)?,
        decided_by: r.opt_text(10)?,
        decided_at: r.opt_int(11)?,
        reason: r.text(12)?,
    })
}

/// Assembles a photo from the columns of `SELECT_MEDIA`.
pub(crate) fn media_row(r: &dyn RowRead) -> Result<Media, StoreError> {
    Ok(Media {
        id: r.text(0)?,
        content_type: r.text(1)?,
        bytes: r.bytes(2)?,
        created_at: r.int(3)?,
    })
}

/// A value bound to a statement parameter, the same for both backends (each binds it
/// its own way).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Float(f64),
    OptFloat(Option<f64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bytes(&'a [u8]),
}

/// The parameters of `UPSERT_USER`.
pub(crate) fn user_args(u: &User) -> [Arg<'_>; 7] {
    [
        Arg::Text(&u.username),
        Arg::Text(&u.display_name),
        Arg::Text(&u.password_hash),
        Arg::Text(&u.role),
        Arg::OptText(u.department.as_deref()),
        Arg::OptText(u.scope.as_deref()),
        Arg::Int(u.created_at),
    ]
}

/// The parameters of `INSERT_IDEMPOTENT`.
pub(crate) fn idempotent_args(a: &IdempotentAnswer) -> [Arg<'_>; 5] {
    [
        Arg::Text(&a.key),
        Arg::Text(&a.request_hash),
        Arg::Int(a.status),
        Arg::Text(&a.body),
        Arg::Int(a.created_at),
    ]
}

/// The parameters of `UPSERT_DATASET`.
pub(crate) fn dataset_args(d: &Dataset) -> [Arg<'_>; 7] {
    [
        Arg::Text(&d.name),
        Arg::Text(&d.owner),
        Arg::Text(&d.sensitivity),
        Arg::Text(&d.columns),
        Arg::Text(&d.rows),
        Arg::Int(d.row_count),
        Arg::Int(d.imported_at),
    ]
}

/// The parameters of `UPSERT_ROLLUP`.
pub(crate) fn rollup_args(x: &Rollup) -> [Arg<'_>; 10] {
    [
        Arg::Text(&x.indicator),
        Arg::Text(&x.region),
        Arg::Int(x.step),
        Arg::Int(x.bucket),
        Arg::Int(x.n),
        Arg::Float(x.sum),
        Arg::Float(x.min),
        Arg::Float(x.max),
        Arg::Float(x.last),
        Arg::Int(x.last_at),
    ]
}

/// The parameters of `INSERT_CAP`.
pub(crate) fn cap_args(m: &CapMessage) -> [Arg<'_>; 6] {
    [
        Arg::Text(&m.identifier),
        Arg::Text(&m.fingerprint),
        Arg::Text(&m.msg_type),
        Arg::Int(m.sent),
        Arg::Text(&m.headline),
        Arg::Text(&m.xml),
    ]
}

/// The parameters of `UPSERT_DEVICE`.
pub(crate) fn device_args(x: &DeviceRow) -> [Arg<'_>; 9] {
    [
        Arg::Text(&x.id),
        Arg::Text(&x.kind),
        Arg::Float(x.lon),
        Arg::Float(x.lat),
        Arg::OptText(x.owner.as_deref()),
        Arg::Text(&x.tags),
        Arg::Text(&x.status),
        Arg::Text(&x.actor),
        Arg::Int(x.at),
    ]
}

/// The parameters of `UPSERT_ALARM`.
pub(crate) fn alarm_args(x: &AlarmRow) -> [Arg<'_>; 5] {
    [
        Arg::Text(&x.device),
        Arg::Text(&x.rule),
        Arg::Text(&x.state),
        Arg::Int(x.since),
        Arg::OptInt(x.case_id),
    ]
}

/// The parameters of `UPSERT_ALERT` (`told` as 1/0).
pub(crate) fn alert_args(a: &AlertRow) -> [Arg<'_>; 8] {
    [
        Arg::Text(&a.fingerprint),
        Arg::Text(&a.rule),
        Arg::Text(&a.region),
        Arg::Text(&a.state),
        Arg::Int(a.since),
        Arg::Text(&a.level),
        Arg::OptFloat(a.value),
        Arg::Int(a.told as i64),
    ]
}

/// The parameters of `UPSERT_SILENCE`.
pub(crate) fn silence_args(x: &SilenceRow) -> [Arg<'_>; 6] {
    [
        Arg::Int(x.id),
        Arg::Text(&x.rule),
        Arg::Text(&x.region),
        Arg::Text(&x.owner),
        Arg::Text(&x.reason),
        Arg::Int(x.ends_at),
    ]
}

/// The parameters of `UPSERT_SCENARIO_PACK` (`enabled` as 1/0).
pub(crate) fn scenario_pack_args(x: &ScenarioPackRow) -> [Arg<'_>; 4] {
    [
        Arg::Text(&x.name),
        Arg::Int(x.enabled as i64),
        Arg::OptText(x.text.as_deref()),
        Arg::Int(x.updated_at),
    ]
}

/// The parameters of `INSERT_SCENARIO_AUDIT` (`ok` as 1/0).
pub(crate) fn scenario_audit_args(x: &ScenarioAuditRow) -> [Arg<'_>; 7] {
    [
        Arg::Int(x.at),
        Arg::Text(&x.actor),
        Arg::Text(&x.pack),
        Arg::Text(&x.action),
        Arg::Text(&x.version),
        Arg::Int(x.ok as i64),
        Arg::Text(&x.problems),
    ]
}

/// The parameters of `INSERT_AUDIT`.
pub(crate) fn audit_args(e: &AuditEntry) -> [Arg<'_>; 8] {
    [
        Arg::Int(e.seq),
        Arg::Int(e.at),
        Arg::Text(&e.actor),
        Arg::Text(&e.action),
        Arg::Text(&e.subject),
        Arg::Text(&e.detail),
        Arg::Text(&e.prev),
        Arg::Text(&e.hash),
    ]
}

/// The parameters of `INSERT_GRANT` (and the first twelve of `UPDATE_GRANT`).
pub(crate) fn grant_args(g: &GrantRow) -> [Arg<'_>; 12] {
    [
        Arg::Text(&g.dataset),
        Arg::Text(&g.consumer),
        Arg::Text(&g.columns),
        Arg::Text(&g.purpose),
        Arg::Int(g.until),
        Arg::Int(g.unmask as i64),
        Arg::Text(&g.state),
        Arg::Text(&g.requested_by),
        Arg::Int(g.requested_at),
        Arg::OptText(g.decided_by.as_deref()),
        Arg::OptInt(g.decided_at),
        Arg::Text(&g.reason),
    ]
}

/// The parameters of `INSERT_MEDIA`.
pub(crate) fn media_args(m: &Media) -> [Arg<'_>; 4] {
    [
        Arg::Text(&m.id),
        Arg::Text(&m.content_type),
        Arg::Bytes(&m.bytes),
        Arg::Int(m.created_at),
    ]
}

pub(crate) const UPSERT_USER: &str = "INSERT INTO users (username, display_name, password_hash, role, department, scope, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name, password_hash = excluded.password_hash, role = excluded.role, department = excluded.department, scope = excluded.scope";
pub(crate) const SELECT_USER: &str = "SELECT username, display_name, password_hash, role, department, scope, created_at FROM users WHERE username = $1";
pub(crate) const INSERT_IDEMPOTENT: &str = "INSERT INTO idempotency (key, request_hash, status, body, created_at) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (key) DO NOTHING";
pub(crate) const SELECT_IDEMPOTENT: &str =
    "SELECT key, request_hash, status, body, created_at FROM idempotency WHERE key = $1";

/// The net change of the counts a batch makes (old keys −1, new keys +1).
pub(crate) fn count_deltas(batch: &Batch<'_>) -> Vec<(query::CountKey, i64)> {
    let mut d: std::collections::HashMap<query::CountKey, i64> = std::collections::HashMap::new();
    for w in &batch.cases {
        let new = query::CountKey::of(w.case);
        if w.prev_count.as_ref() == Some(&new) {
            continue;
        }
        if let Some(old) = &w.prev_count {
            *d.entry(old.clone()).or_default() -= 1;
        }
        *d.entry(new).or_default() += 1;
    }
    d.into_iter().filter(|(_, n)| *n != 0).collect()
}
