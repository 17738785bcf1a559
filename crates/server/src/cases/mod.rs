//! The one way any room files, notes or looks up a case: engine calls (with their
//! idempotency key), filing a report, noting a case, asking whether a case is still
//! open, scopes (what a caller may see), lookups by id, number or report token, and the
//! wire views of cases ([`wire`]). Rooms never talk to the engine any other way.

pub mod media;
pub mod metadata;
pub mod remote;
pub mod wire;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::idempotency::IdemKey;
use crate::AppState;
use axum::http::StatusCode;
use cityos_core::case::{Case, CaseId};
use cityos_core::time::Millis;
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::Role;
use cityos_engine::engine::{Request, Response as EngineResponse};
use cityos_engine::query::CaseQuery;
use cityos_engine::{CaseStore, StoreError};
use serde_json::{json, Value};

/// The Open311 token of a report: its number and a keyed tag, so that tokens cannot be
/// guessed from one another (a token lets its holder rate the request).
pub fn token_of_report(st: &AppState, report: i64) -> String {
    format!("{report}-{}", st.0.key.tag(&format!("open311:{report}")))
}

pub fn report_of_token(st: &AppState, token: &str) -> Option<i64> {
    let (id, tag) = token.split_once('-')?;
    let id: i64 = id.parse().ok()?;
    same(
        st.0.key.tag(&format!("open311:{id}")).as_bytes(),
        tag.as_bytes(),
    )
    .then_some(id)
}

/// Compares two byte strings in time that depends on their length only, not on where
/// they first differ (so a token's tag cannot be found byte by byte from timings).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Longest description the specification allows.
pub const MAX_DESCRIPTION: usize = 4000;

/// Sends a request to the engine's run loop and waits for its (committed) answer.
/// A full queue is answered with 503 instead of waiting: back-pressure.
pub async fn engine_call(st: &AppState, req: Request) -> Result<EngineResponse, ApiError> {
    use std::sync::atomic::Ordering::Relaxed;
    st.0.engine_in_flight.fetch_add(1, Relaxed);
    let r = engine_call_inner(st, req).await;
    st.0.engine_in_flight.fetch_sub(1, Relaxed);
    r
}

pub async fn engine_call_inner(st: &AppState, req: Request) -> Result<EngineResponse, ApiError> {
    // Several nodes: a step that may go to another node's partition (see `remote`) —
    // done already (a retried keyed request), or kept to send there if refused here.
    // A keyed request's step is looked for whether or not this attempt may delegate:
    // an earlier attempt may have passed it on (recorded under its step key only).
    let delegable = remote::may_delegate(st, &req);
    if remote::may_be_recorded(st, &req) {
        if let Some(done) = remote::recorded_step(st, &req).await? {
            crate::http::node::mark_effect();
            return Ok(done);
        }
    }
    let copy = delegable.then(|| req.clone());
    let answer = match submit(st, req).await? {
        // Refused here, or fenced at commit (the partition just moved; nothing written).
        Err(
            cityos_engine::EngineError::NotOwner { partition }
            | cityos_engine::EngineError::Store(StoreError::Fenced { partition, .. }),
        ) if copy.is_some() => {
            let copy = copy.expect("checked");
            remote::on_owner(st, &partition, copy).await?
        }
        other => other?,
    };
    // Several nodes: this request has now changed something here, so the forwarding
    // layer may no longer re-run it whole on another node.
    crate::http::node::mark_effect();
    Ok(answer)
}

/// Hands `req` to this node's engine and waits for its answer (a full queue: 503).
pub(crate) async fn submit(
    st: &AppState,
    req: Request,
) -> Result<Result<EngineResponse, cityos_engine::EngineError>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let queued = st.0.engine.try_send(req, move |a| {
        let _ = tx.send(a);
    })?;
    if !queued {
        return Err(ApiError::new(
            Problem::Busy,
            "the engine's queue is full; retry shortly",
        ));
    }
    rx.await
        .map_err(|_| ApiError::from(cityos_engine::EngineError::Stopped))
}

/// Wraps `req` so that the engine records its answer, rendered by `render`, with its
/// writes (no key: the request as it is).
pub fn keyed(
    req: Request,
    key: Option<IdemKey>,
    render: impl Fn(&EngineResponse) -> Result<(StatusCode, Value), ApiError> + Send + Sync + 'static,
) -> Request {
    match key {
        None => req,
        Some(k) => Request::Keyed {
            request: Box::new(req),
            key: cityos_engine::engine::IdempotencyKey {
                key: k.key,
                request_hash: k.request_hash,
                created_at: k.created_at,
                render: std::sync::Arc::new(move |r| match render(r) {
                    Ok((status, v)) => (status.as_u16() as i64, v.to_string()),
                    Err(e) => (
                        e.status.as_u16() as i64,
                        json!({"code": e.code}).to_string(),
                    ),
                }),
            },
        },
    }
}

/// Narrows a query to what the principal may see; `false` when nothing is visible.
pub fn scope_query(st: &AppState, p: &Principal, q: &mut CaseQuery) -> bool {
    let t = &st.0.cfg.territory;
    if let Some(scope) = &p.scope {
        match &q.region {
            None => q.region = Some(scope.clone()),
            Some(r) => {
                let (Some(rid), Some(sid)) = (t.by_code(r), t.by_code(scope)) else {
                    return false;
                };
                if t.is_within(sid, rid) {
                    q.region = Some(scope.clone());
                } else if !t.is_within(rid, sid) {
                    return false;
                }
            }
        }
    } else if matches!(p.role, Role::SubdistrictOfficer | Role::Inspector) {
        return false; // a scoped role without a scope sees nothing
    }
    if p.role == Role::Handler {
        match (&p.department, &q.department) {
            (Some(mine), Some(asked)) if mine != asked => return false,
            (Some(mine), _) => q.department = Some(mine.clone()),
            (None, _) => return false,
        }
    }
    q.exclude_categories = hidden_categories(st, p);
    !matches!(p.role, Role::Citizen)
}

/// May this principal see cases of the restricted category `cat`
/// (`Category::restricted`: a household's personal circumstances)? Handlers of the
/// category's lead line and officers (their scope narrows further); nobody else —
/// not analysts, inspectors, other lines, machine tokens or administrators (who
/// administer the system, not the casework; the counts still include these cases).
pub fn sees_restricted(
    st: &AppState,
    p: &Principal,
    cat: &cityos_core::taxonomy::Category,
) -> bool {
    match p.role {
        Role::DistrictOfficer => true,
        Role::SubdistrictOfficer => p.scope.is_some(),
        Role::Handler => p
            .department
            .as_deref()
            .and_then(|d| st.0.cfg.taxonomy.department(d))
            .is_some_and(|d| d.line == cat.lead),
        _ => false,
    }
}

/// The restricted categories this principal may not see.
pub fn hidden_categories(st: &AppState, p: &Principal) -> Vec<String> {
    st.0.cfg
        .taxonomy
        .categories
        .iter()
        .filter(|c| c.restricted && !sees_restricted(st, p, c))
        .map(|c| c.code.clone())
        .collect()
}

/// May this principal see cases of category `code` at all (restricted categories)?
pub fn may_see_category(st: &AppState, p: &Principal, code: &str) -> bool {
    st.0.cfg
        .taxonomy
        .category(code)
        .is_none_or(|c| !c.restricted || sees_restricted(st, p, c))
}

/// Names the level of the query's region, so that the store filters on that level's
/// indexed column; the whole district needs no filter at all.
pub fn set_region_level(st: &AppState, q: &mut CaseQuery) {
    let t = &st.0.cfg.territory;
    if let Some(id) = q.region.as_ref().and_then(|r| t.by_code(r)) {
        if id == t.root() {
            q.region = None;
        } else {
            q.region_level = Some(t.region(id).level);
        }
    }
}

/// May this principal see this case?
pub fn can_see(st: &AppState, p: &Principal, c: &Case) -> bool {
    let mut q = CaseQuery::default();
    if !scope_query(st, p, &mut q) {
        return false;
    }
    !q.exclude_categories.contains(&c.category)
        && q.region.as_ref().is_none_or(|r| c.regions.contains(r))
        && q.department
            .as_ref()
            .is_none_or(|d| c.task(d).is_some() || c.route.iter().any(|a| &a.department == d))
}

/// Finds a case by id or by case number.
pub async fn find_case(st: &AppState, id: &str) -> Result<Option<Case>, ApiError> {
    let id = id.to_string();
    Ok(st
        .0
        .reads
        .run(move |s| case_by_id_or_number(s, &id))
        .await??)
}

/// The case `id`, if it is still open.
pub async fn still_open(st: &AppState, id: Option<CaseId>) -> Result<Option<CaseId>, ApiError> {
    Ok(match id {
        Some(id) => {
            st.0.reads
                .run(move |s| case_by_id(s, id))
                .await??
                .filter(|c| c.state.is_open())
                .map(|c| c.id)
        }
        None => None,
    })
}

/// Writes `note` into a case's log as the system; answers the case number.
pub async fn note_case(
    st: &AppState,
    case: CaseId,
    note: String,
    now: Millis,
) -> Result<Option<String>, ApiError> {
    let mut command = Command::new(Action::Note, Actor::system());
    command.note = note;
    Ok(
        match crate::cases::engine_call(st, Request::Transition { case, command, now }).await? {
            EngineResponse::Transition(o) => Some(o.case.number),
            _ => None,
        },
    )
}

/// Files a report; answers the case it opened or joined.
pub async fn file_report(st: &AppState, report: NewReport) -> Result<(CaseId, String), ApiError> {
    match crate::cases::engine_call(st, Request::Report(report)).await? {
        EngineResponse::Intake(o) => Ok((o.case.id, o.case.number)),
        _ => Err(ApiError::internal(
            "the engine answered a report with something else",
        )),
    }
}

/// Files a report once per `key`: the engine records the case (id and number) under the
/// key in the same transaction as the case, so a caller that files again after the case
/// was filed but before its own state was written (a crash, a failed write, a batch
/// delivered again) finds the case already filed instead of filing a second one. The id is
/// `None` for an answer recorded without it (by an older version).
pub async fn file_report_once(
    st: &AppState,
    report: NewReport,
    key: &str,
    now: Millis,
) -> Result<(Option<CaseId>, String), ApiError> {
    let k = key.to_string();
    let prior = st.0.reads.run(move |s| s.idempotent(&k)).await??;
    if let Some(v) = prior.and_then(|a| serde_json::from_str::<Value>(&a.body).ok()) {
        if let Some(n) = v["number"].as_str() {
            return Ok((v["id"].as_i64(), n.to_string()));
        }
    }
    let req = Request::Keyed {
        request: Box::new(Request::Report(report)),
        key: cityos_engine::engine::IdempotencyKey {
            key: key.to_string(),
            request_hash: key.to_string(),
            created_at: now,
            render: std::sync::Arc::new(|r| match r {
                EngineResponse::Intake(o) => (
                    201,
                    json!({"id": o.case.id, "number": o.case.number}).to_string(),
                ),
                _ => (500, "{}".into()),
            }),
        },
    };
    match engine_call(st, req).await? {
        EngineResponse::Intake(o) => Ok((Some(o.case.id), o.case.number)),
        _ => Err(ApiError::internal(
            "the engine answered a report with something else",
        )),
    }
}

/// The case with id `id` (digits) or case number `id`.
fn case_by_id_or_number(s: &mut dyn CaseStore, id: &str) -> Result<Option<Case>, StoreError> {
    match id.parse::<i64>() {
        Ok(n) => s.load_case(n),
        Err(_) => s.load_case_by_number(id),
    }
}

/// The case with id `id`.
fn case_by_id(s: &mut dyn CaseStore, id: CaseId) -> Result<Option<Case>, StoreError> {
    s.load_case(id)
}

/// May the public follow this case by its number (the anonymous lookup, Open311's views)?
/// Cases of public categories, and a citizen's report without a category while it waits
/// in the 待分拨 triage queue — the reporter was given its number.
pub fn publicly_followable(st: &AppState, c: &cityos_core::case::Case) -> bool {
    let cfg = &st.0.cfg;
    cfg.taxonomy
        .category(&c.category)
        .is_some_and(|cat| cat.public)
        || (c.category == cfg.intake.triage_category
            && c.channel == cityos_core::case::Channel::Citizen)
}
