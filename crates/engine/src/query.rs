//! Reading cases back: the filtered, stably paginated case list and the statistics, as
//! SQL that both backends run unchanged (`$n` placeholders, LIKE with an explicit
//! escape). The builder produces text and parameters; each store binds them its way.
//!
//! Pagination is keyset, not offset: the cursor is the last row's (sort key, id), so a
//! page boundary stays put while cases arrive, and page N costs the same as page 1.

use cityos_core::case::State;
use cityos_core::time::Millis;
use cityos_core::{Domain, Priority};

/// What a case list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Current deadline (cases without one last).
    #[default]
    Deadline,
    Created,
    Updated,
}

impl Sort {
    pub fn parse(s: &str) -> Option<Sort> {
        match s {
            "deadline" => Some(Sort::Deadline),
            "created" => Some(Sort::Created),
            "updated" => Some(Sort::Updated),
            _ => None,
        }
    }
    fn column(self) -> &'static str {
        match self {
            Sort::Deadline => "due_key",
            Sort::Created => "created_at",
            Sort::Updated => "updated_at",
        }
    }
}

/// Where the previous page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.key, self.id)
    }
    pub fn decode(s: &str) -> Option<Cursor> {
        let (k, i) = s.split_once('.')?;
        Some(Cursor {
            key: k.parse().ok()?,
            id: i.parse().ok()?,
        })
    }
}

/// Filters, order and page of a case list. Empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    pub states: Vec<State>,
    pub categories: Vec<String>,
    /// Categories left out (restricted categories the caller may not see; see
    /// `Category::restricted`). The maintained counts ignore it: counts may include them.
    pub exclude_categories: Vec<String>,
    pub domains: Vec<Domain>,
    /// A region code at any level (district, sub-district, community or grid).
    pub region: Option<String>,
    /// The level of `region`, when known: the filter then uses that level's column (and
    /// its index) instead of trying all four.
    pub region_level: Option<cityos_core::Level>,
    /// Cases with a task of this department.
    pub department: Option<String>,
    /// The department has many cases (see [`DEPARTMENT_PROBE`]): a list walks the sort
    /// index and tests each case for a task of the department, instead of collecting
    /// the department's cases first and sorting them. Set by the store.
    pub department_busy: bool,
    pub min_priority: Option<Priority>,
    /// Past (true) or within (false) the current deadline at `now`.
    pub overdue: Option<bool>,
    pub now: Millis,
    pub created_from: Option<Millis>,
    pub created_to: Option<Millis>,
    /// A substring of the title, or the exact case number.
    pub text: Option<String>,
    pub sort: Sort,
    pub descending: bool,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// SQL text with its parameters.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `col IN ($a, $b, …)` for a non-empty list of values.
fn in_list(sql: &mut Sql, w: &mut Vec<String>, col: &str, vals: impl IntoIterator<Item = String>) {
    let ph: Vec<String> = vals.into_iter().map(|v| sql.bind(Param::Text(v))).collect();
    if !ph.is_empty() {
        w.push(format!("{col} IN ({})", ph.join(",")));
    }
}

fn state_names(q: &CaseQuery) -> impl Iterator<Item = String> + '_ {
    q.states.iter().map(|s| s.as_str().to_string())
}

fn domain_names(q: &CaseQuery) -> impl Iterator<Item = String> + '_ {
    q.domains.iter().map(|d| d.as_str().to_string())
}

/// The WHERE clause of a query (without pagination), shared by lists and counts.
fn conditions(q: &CaseQuery, sql: &mut Sql) -> Vec<String> {
    let mut w = Vec::new();
    in_list(sql, &mut w, "state", state_names(q));
    in_list(sql, &mut w, "category", q.categories.iter().cloned());
    let ex: Vec<String> = q
        .exclude_categories
        .iter()
        .map(|c| sql.bind(Param::Text(c.clone())))
        .collect();
    if !ex.is_empty() {
        w.push(format!("category NOT IN ({})", ex.join(",")));
    }
    in_list(sql, &mut w, "domain", domain_names(q));
    if let Some(r) = &q.region {
        let p = sql.bind(Param::Text(r.clone()));
        w.push(match q.region_level {
            Some(l) => format!("{} = {p}", l.as_str()),
            None => {
                format!("(district = {p} OR subdistrict = {p} OR community = {p} OR grid = {p})")
            }
        });
    }
    if let Some(d) = &q.department {
        let p = sql.bind(Param::Text(d.clone()));
        w.push(if q.department_busy {
            format!(
                "EXISTS (SELECT 1 FROM tasks t WHERE t.case_id = cases.id AND t.department = {p})"
            )
        } else {
            format!("id IN (SELECT case_id FROM tasks WHERE department = {p})")
        });
    }
    if let Some(p) = q.min_priority {
        let p = sql.bind(Param::Int(p.rank() as i64));
        w.push(format!("priority >= {p}"));
    }
    if let Some(o) = q.overdue {
        let now = sql.bind(Param::Int(q.now));
        // due_key is the due time, or i64::MAX when no step is running.
        w.push(if o {
            format!("due_key < {now}")
        } else {
            format!("due_key >= {now}")
        });
    }
    if let Some(f) = q.created_from {
        let p = sql.bind(Param::Int(f));
        w.push(format!("created_at >= {p}"));
    }
    if let Some(t) = q.created_to {
        let p = sql.bind(Param::Int(t));
        w.push(format!("created_at < {p}"));
    }
    if let Some(t) = q.text.as_ref().filter(|t| !t.trim().is_empty()) {
        let like = sql.bind(Param::Text(like_escape(t.trim())));
        let exact = sql.bind(Param::Text(t.trim().to_string()));
        w.push(format!(
            "(title LIKE {like} ESCAPE '\\' OR number = {exact})"
        ));
    }
    w
}

/// The list query: `SELECT id, <sort key>, body …` for one page (limit + 1 rows, to know
/// whether another page follows).
pub fn list(q: &CaseQuery) -> Sql {
    if q.states.len() > 1 {
        return list_per_state(q);
    }
    let mut sql = Sql::default();
    let w = page_conditions(q, &mut sql);
    let (key, dir) = (q.sort.column(), if q.descending { "DESC" } else { "ASC" });
    let limit = sql.bind(Param::Int(q.limit.clamp(1, 1000) as i64 + 1));
    sql.text = format!(
        "SELECT id, {key}, body FROM cases{} ORDER BY {key} {dir}, id {dir} LIMIT {limit}",
        where_clause(&w)
    );
    sql
}

/// A department with at least this many tasks is "busy" (see
/// [`CaseQuery::department_busy`]).
pub const DEPARTMENT_PROBE: i64 = 2000;

/// How many tasks a department has, counted up to [`DEPARTMENT_PROBE`] (an index range
/// scan that stops early).
pub fn department_probe(department: &str) -> Sql {
    let mut sql = Sql::default();
    let d = sql.bind(Param::Text(department.to_string()));
    let n = sql.bind(Param::Int(DEPARTMENT_PROBE));
    sql.text = format!(
        "SELECT 'probe', COUNT(*) FROM (SELECT 1 FROM tasks WHERE department = {d} LIMIT {n}) AS p"
    );
    sql
}

/// The filters plus the keyset condition of the page.
fn page_conditions(q: &CaseQuery, sql: &mut Sql) -> Vec<String> {
    let mut w = conditions(q, sql);
    let key = q.sort.column();
    if let Some(c) = q.after {
        let k = sql.bind(Param::Int(c.key));
        let i = sql.bind(Param::Int(c.id));
        let op = if q.descending { "<" } else { ">" };
        w.push(format!("({key} {op} {k} OR ({key} = {k} AND id {op} {i}))"));
    }
    w
}

/// Several states: one ordered, limited branch per state (each walks the
/// `(state, key, id)` index), merged by the outer ORDER BY — instead of sorting every
/// case of those states.
fn list_per_state(q: &CaseQuery) -> Sql {
    let mut sql = Sql::default();
    let (key, dir) = (q.sort.column(), if q.descending { "DESC" } else { "ASC" });
    let n = q.limit.clamp(1, 1000) as i64 + 1;
    let mut branches = Vec::new();
    for (i, state) in q.states.iter().enumerate() {
        let one = CaseQuery {
            states: vec![*state],
            ..q.clone()
        };
        let w = page_conditions(&one, &mut sql);
        let limit = sql.bind(Param::Int(n));
        branches.push(format!(
            "SELECT * FROM (SELECT id, {key} AS k, body FROM cases{} ORDER BY {key} {dir}, id {dir} LIMIT {limit}) AS b{i}",
            where_clause(&w)
        ));
    }
    let limit = sql.bind(Param::Int(n));
    sql.text = format!(
        "{} ORDER BY 2 {dir}, 1 {dir} LIMIT {limit}",
        branches.join(" UNION ALL ")
    );
    sql
}

/// `SELECT <col>, COUNT(*) … GROUP BY <col>` over the cases a query selects.
pub fn count_by(q: &CaseQuery, col: &str) -> Sql {
    let mut sql = Sql::default();
    let w = conditions(q, &mut sql);
    sql.text = format!(
        "SELECT COALESCE({col}, ''), COUNT(*) FROM cases{} GROUP BY {col}",
        where_clause(&w)
    );
    sql
}

/// `SELECT 'all', COUNT(*)` over the cases a query selects (index-only where possible).
pub fn count_all(q: &CaseQuery) -> Sql {
    let mut sql = Sql::default();
    let w = conditions(q, &mut sql);
    sql.text = format!("SELECT 'all', COUNT(*) FROM cases{}", where_clause(&w));
    sql
}

/// Open cases the deadline timer has marked overdue, among those a query selects (the
/// statistics' overdue figure; read from the maintained counts when they suffice).
pub fn count_marked_overdue(q: &CaseQuery) -> Sql {
    let q = CaseQuery {
        states: cityos_core::State::ALL
            .into_iter()
            .filter(|s| s.is_open() && (q.states.is_empty() || q.states.contains(s)))
            .collect(),
        ..q.clone()
    };
    let mut sql = Sql::default();
    if q.states.is_empty() {
        sql.text = "SELECT 'all', CAST(0 AS BIGINT)".into();
        return sql;
    }
    if counts_eligible(&q) {
        let mut w = count_conditions(&q, &mut sql);
        w.push("overdue = 1".into());
        sql.text = format!(
            "SELECT 'all', CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM case_counts{}",
            where_clause(&w)
        );
    } else {
        let mut w = conditions(&q, &mut sql);
        w.push("overdue <> 0".into());
        sql.text = format!("SELECT 'all', COUNT(*) FROM cases{}", where_clause(&w));
    }
    sql
}

/// Cases handled by each lead department over a query, with the number on time.
pub fn on_time_by_department(q: &CaseQuery) -> Sql {
    let mut sql = Sql::default();
    let mut w = conditions(q, &mut sql);
    w.push("handle_on_time IS NOT NULL".into());
    sql.text = format!(
        "SELECT COALESCE(lead_department, ''), COUNT(*), CAST(SUM(handle_on_time) AS BIGINT) FROM cases{} GROUP BY lead_department",
        where_clause(&w)
    );
    sql
}

fn where_clause(w: &[String]) -> String {
    if w.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", w.join(" AND "))
    }
}

/// A page of cases.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub cases: Vec<cityos_core::Case>,
    pub next: Option<Cursor>,
}

/// Figures for the command centre, over the cases a query selects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub total: i64,
    pub by_state: Vec<(String, i64)>,
    pub by_domain: Vec<(String, i64)>,
    pub by_subdistrict: Vec<(String, i64)>,
    /// lead department → (handled, on time)
    pub by_department: Vec<(String, i64, i64)>,
    /// Open cases past their current deadline.
    pub overdue: i64,
    /// Cases created since `today_from`.
    pub today_intake: i64,
    pub handled: i64,
    pub handled_on_time: i64,
}

impl Stats {
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.handled > 0).then(|| self.handled_on_time as f64 / self.handled as f64)
    }
}

/// Committed events after a global number (plain columns; see `store::event_row`).
pub fn events_after(
    after: i64,
    limit: usize,
    region: Option<&str>,
    department: Option<&str>,
) -> Sql {
    let mut sql = Sql::default();
    let a = sql.bind(Param::Int(after));
    let mut w = vec![format!("l.gseq > {a}")];
    if let Some(r) = region {
        let p = sql.bind(Param::Text(r.to_string()));
        w.push(format!(
            "(c.district = {p} OR c.subdistrict = {p} OR c.community = {p} OR c.grid = {p})"
        ));
    }
    if let Some(d) = department {
        let p = sql.bind(Param::Text(d.to_string()));
        w.push(format!(
            "l.case_id IN (SELECT case_id FROM tasks WHERE department = {p})"
        ));
    }
    let limit = sql.bind(Param::Int(limit.clamp(1, 10_000) as i64));
    sql.text = format!(
        "SELECT l.gseq, l.case_id, c.number, c.category, c.priority, l.action, l.from_state, l.to_state, l.at, l.actor, l.note, c.subdistrict, c.community, c.grid, c.lead_department, c.lon, c.lat FROM case_log l JOIN cases c ON c.id = l.case_id WHERE {} ORDER BY l.gseq LIMIT {limit}",
        w.join(" AND ")
    );
    sql
}

/// Can these statistics be read from the maintained counts (`case_counts`)? Only the
/// dimensions the counts keep may be filtered: state, domain, sub-district (or the whole
/// territory) and lead department.
pub fn counts_eligible(q: &CaseQuery) -> bool {
    q.categories.is_empty()
        && q.min_priority.is_none()
        && q.overdue.is_none()
        && q.created_from.is_none()
        && q.created_to.is_none()
        && q.text.as_ref().is_none_or(|t| t.trim().is_empty())
        && (q.region.is_none() || q.region_level == Some(cityos_core::Level::Subdistrict))
}

fn count_conditions(q: &CaseQuery, sql: &mut Sql) -> Vec<String> {
    let mut w = Vec::new();
    in_list(sql, &mut w, "state", state_names(q));
    in_list(sql, &mut w, "domain", domain_names(q));
    if let Some(r) = &q.region {
        let p = sql.bind(Param::Text(r.clone()));
        w.push(format!("subdistrict = {p}"));
    }
    if let Some(d) = &q.department {
        let p = sql.bind(Param::Text(d.clone()));
        w.push(format!("lead = {p}"));
    }
    w
}

/// Grouped sums over the maintained counts (see [`counts_eligible`]).
pub fn counts_by(q: &CaseQuery, col: &str) -> Sql {
    let mut sql = Sql::default();
    let w = count_conditions(q, &mut sql);
    sql.text = format!(
        "SELECT {col}, CAST(SUM(n) AS BIGINT) FROM case_counts{} GROUP BY {col}",
        where_clause(&w)
    );
    sql
}

/// Handled and on-time counts per lead department, from the maintained counts.
pub fn counts_on_time(q: &CaseQuery) -> Sql {
    let mut sql = Sql::default();
    let mut w = count_conditions(q, &mut sql);
    w.push("on_time >= 0".into());
    sql.text = format!(
        "SELECT lead, CAST(SUM(n) AS BIGINT), CAST(SUM(CASE WHEN on_time = 1 THEN n ELSE 0 END) AS BIGINT) FROM case_counts{} GROUP BY lead",
        where_clause(&w)
    );
    sql
}

/// The key of a case in `case_counts`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountKey {
    pub state: &'static str,
    pub domain: &'static str,
    pub subdistrict: String,
    pub lead: String,
    pub on_time: i64,
    /// 1 when the deadline timer has marked the case overdue.
    pub overdue: i64,
}

impl CountKey {
    pub fn of(c: &cityos_core::Case) -> CountKey {
        CountKey {
            state: c.state.as_str(),
            domain: c.domain.as_str(),
            subdistrict: c.regions.subdistrict.clone().unwrap_or_default(),
            lead: c
                .lead_task()
                .map(|t| t.department.clone())
                .unwrap_or_default(),
            on_time: c
                .deadline(cityos_core::Step::Handle)
                .and_then(|d| d.on_time())
                .map_or(-1, i64::from),
            overdue: i64::from(c.overdue),
        }
    }
}

pub(crate) const UPSERT_COUNT: &str = "INSERT INTO case_counts (state, domain, subdistrict, lead, on_time, overdue, n) VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (state, domain, subdistrict, lead, on_time, overdue) DO UPDATE SET n = case_counts.n + excluded.n";
