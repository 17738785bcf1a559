//! The case handlers: filing a report, listing and reading cases (with the anonymous
//! lookup by number), transitions, and the caller's inbox; the list parameters shared
//! with the statistics.
//!
//! Architecture Invariant: a case outside the caller's scope answers exactly like a case
//! that does not exist (404), so scopes never leak existence.

use super::ApiResult;
use crate::cases::wire::{self, ReportIn};
use crate::cases::{can_see, engine_call, find_case, keyed, scope_query, set_region_level};
use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{require, Caller, MaybeSignedIn, SignedIn};
use crate::http::idempotency::idempotent;
use crate::{AppState, Body};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use cityos_core::case::{Case, CaseId, Channel, LogEntry, Report, State as CaseState};
use cityos_core::time::{parse_datetime, Millis};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::{Domain, Level, Priority, Role};
use cityos_engine::engine::{Request, Response as EngineResponse};
use cityos_engine::query::{CaseQuery, Cursor, Page, Sort};
use cityos_engine::{CaseStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

/// Whose idempotency keys these are: the signed-in name, or for an anonymous caller its
/// peer address, so that two anonymous callers never share (and replay) each other's
/// answers — a report's answer carries its `report_token`.
fn who(p: &Option<Principal>, peer: &str) -> String {
    p.as_ref()
        .map_or_else(|| format!("anonymous@{peer}"), |p| p.name.clone())
}

fn channel_for(p: &Option<Principal>) -> Result<Channel, ApiError> {
    let Some(p) = p else {
        return Ok(Channel::Citizen);
    };
    Ok(match p.role {
        Role::Citizen => Channel::Citizen,
        Role::Inspector => Channel::Inspector,
        Role::DistrictOfficer | Role::SubdistrictOfficer | Role::Handler => Channel::Staff,
        Role::System => p
            .channel
            .as_deref()
            .and_then(Channel::parse)
            .unwrap_or(Channel::Sensor),
        Role::Analyst | Role::Admin => {
            return Err(ApiError::forbidden(format!(
                "role {} does not file reports",
                p.role
            )))
        }
    })
}

pub async fn post_report(
    State(st): State<AppState>,
    crate::http::access::Peer(peer): crate::http::access::Peer,
    headers: HeaderMap,
    caller: Caller,
    body: Body<ReportIn>,
) -> ApiResult {
    let p = caller.maybe()?;
    if p.is_none() {
        anonymous_report(&st, &peer)?;
    }
    let channel = channel_for(&p)?;
    let r = body.value;
    if let Some(c) = &r.channel {
        if Channel::parse(c) != Some(channel) {
            return Err(ApiError::forbidden(format!(
                "you report on the {} channel, not {c:?}",
                channel.as_str()
            )));
        }
    }
    if cityos_core::workflow::is_blank(&r.text) {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "text must say what the problem is",
        ));
    }
    if r.text.chars().count() > crate::cases::MAX_DESCRIPTION {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            format!(
                "text is longer than {} characters",
                crate::cases::MAX_DESCRIPTION
            ),
        ));
    }
    let category = r.category.clone().filter(|c| !c.trim().is_empty());
    let position = match (r.lon, r.lat) {
        (Some(x), Some(y)) => Some((x, y)),
        (None, None) if category.is_none() => None,
        (None, None) => {
            return Err(ApiError::new(
                Problem::InvalidArgument,
                "lon and lat are required with a category (leave out the category to have the text read, places included)",
            ))
        }
        _ => {
            return Err(ApiError::new(
                Problem::InvalidArgument,
                "lon and lat come together: give both or neither",
            ))
        }
    };
    // A report without a category: its text says what and (when no position is given)
    // where; the smart room suggests, routes or leaves it for triage.
    let reading = match &category {
        Some(_) => None,
        None => Some(crate::smart::read(&st, &r.text, position)?),
    };
    let category = category.unwrap_or_else(|| {
        reading
            .as_ref()
            .map(|x| x.category.clone())
            .unwrap_or_default()
    });
    let (lon, lat) = match (&reading, position) {
        (Some(x), _) => (x.lon, x.lat),
        (None, Some(p)) => p,
        (None, None) => unreachable!("a category comes with a position (checked above)"),
    };
    if reading.is_none()
        && channel == Channel::Citizen
        && st
            .0
            .cfg
            .taxonomy
            .category(&category)
            .is_some_and(|c| !c.public)
    {
        // As in Open311: citizens file public categories only (a non-public case's
        // answer would show someone else's case).
        return Err(ApiError::new(
            Problem::CategoryNotPublic,
            format!(
                "category {:?} is not one citizens report; see /api/v1/categories (public: true)",
                category
            ),
        ));
    }
    if r.contact.as_ref().is_some_and(|c| c.chars().count() > 100) {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "contact is longer than 100 characters",
        ));
    }
    if r.media.len() > 9 {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "a report carries at most 9 photos",
        ));
    }
    if let Some(scope) = p
        .as_ref()
        .filter(|p| p.role == Role::System)
        .and_then(|p| p.scope.as_ref())
    {
        // A machine reports only inside the region its token states.
        let inside =
            st.0.cfg
                .territory
                .locate(lon, lat)
                .ok()
                .is_some_and(|chain| {
                    Level::ALL
                        .iter()
                        .filter_map(|l| chain.at(*l))
                        .any(|id| &st.0.cfg.territory.region(id).code == scope)
                });
        if !inside {
            return Err(ApiError::forbidden(format!(
                "this token reports only inside region {scope}"
            )));
        }
    }
    let mut media = Vec::with_capacity(r.media.len());
    for u in &r.media {
        media.push(
            crate::cases::media::check_media_url(
                &st,
                crate::cases::media::request_host(&headers),
                u,
            )
            .await?,
        );
    }
    let caller = who(&p, &peer);
    let st2 = st.clone();
    idempotent(
        &st,
        &headers,
        &caller,
        "POST /api/v1/reports",
        &body.raw,
        move |key| async move {
            let now = st2.now();
            let dispatch = reading.as_ref().map(|x| x.public_outcome());
            let report = NewReport {
                channel,
                category,
                lon,
                lat,
                text: r.text,
                contact: r.contact,
                at: now,
                media,
                priority: reading.as_ref().and_then(|x| x.priority),
                playbook: None,
                suggestion: reading.map(|x| Box::new(x.suggestion)),
            };
            let st3 = st2.clone();
            let p3 = p.clone();
            let render =
                move |a: &EngineResponse| report_answer(&st3, a, now, channel, &p3, dispatch);
            let a = engine_call(&st2, keyed(Request::Report(report), key, render)).await?;
            report_answer(&st2, &a, now, channel, &p, dispatch)
        },
    )
    .await
}

/// The answer to a filed report. A new case holds only this report, so the caller sees
/// it. A case the report joined is shown only as far as the caller may see it: staff get
/// the full view of a case in their scope (nothing of a case outside it); citizens and
/// anonymous callers get the public view of a public case, and of a non-public one (a
/// sensor's alarm their report was correlated with) nothing but that it joined a case in
/// hand.
fn report_answer(
    st: &AppState,
    a: &EngineResponse,
    now: Millis,
    channel: Channel,
    p: &Option<Principal>,
    dispatch: Option<&'static str>,
) -> Result<(StatusCode, Value), ApiError> {
    match a {
        EngineResponse::Intake(o) => {
            let citizen = p.as_ref().is_none_or(|p| p.role == Role::Citizen);
            let public =
                st.0.cfg
                    .taxonomy
                    .category(&o.case.category)
                    .is_some_and(|c| c.public);
            let (case, reason) = match p {
                // A new case holds only this report: the caller sees what they filed.
                _ if !o.merged => (
                    serde_json::to_value(wire::case_view_for(
                        &o.case,
                        &st.0.cfg,
                        now,
                        p.as_ref().map(|p| p.role),
                    ))
                    .unwrap_or(Value::Null),
                    o.reason.clone(),
                ),
                _ if citizen && public => (
                    serde_json::to_value(wire::public_view(&o.case, &st.0.cfg, now))
                        .unwrap_or(Value::Null),
                    o.reason.clone(),
                ),
                _ if citizen => (
                    Value::Null,
                    "merged: joined a case the operations centre already has in hand".to_string(),
                ),
                Some(p) if can_see(st, p, &o.case) => (
                    serde_json::to_value(wire::case_view_for(
                        &o.case,
                        &st.0.cfg,
                        now,
                        Some(p.role),
                    ))
                    .unwrap_or(Value::Null),
                    o.reason.clone(),
                ),
                _ => (
                    Value::Null,
                    "merged: joined a case outside your scope".to_string(),
                ),
            };
            Ok((
                if o.merged {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                json!({
                    "report_id": o.report_id,
                    // The reporter's key to rate the result (citizens only).
                    "report_token": (channel == Channel::Citizen)
                        .then(|| crate::cases::token_of_report(st, o.report_id)),
                    "merged": o.merged,
                    "reason": reason,
                    // A report without a category: passed on, or waiting for a person.
                    "dispatch": dispatch,
                    "case": case,
                }),
            ))
        }
        other => Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    }
}

/// The query parameters of case lists, statistics and the inbox.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    state: Option<String>,
    category: Option<String>,
    domain: Option<String>,
    region: Option<String>,
    department: Option<String>,
    priority: Option<String>,
    overdue: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The most values a list parameter (`state=a,b,…`) may carry.
pub const MAX_LIST_VALUES: usize = 50;

/// A comma-separated parameter: at most [`MAX_LIST_VALUES`] values, each a known one,
/// repeats dropped (so no list can grow a query beyond a few dozen terms).
fn list_of<T: PartialEq>(
    v: &Option<String>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ApiError> {
    let raw: Vec<&str> = v
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if raw.len() > MAX_LIST_VALUES {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            format!(
                "{what} lists {} values; at most {MAX_LIST_VALUES} are accepted",
                raw.len()
            ),
        ));
    }
    let mut out: Vec<T> = Vec::with_capacity(raw.len());
    for s in raw {
        let t = parse(s).ok_or_else(|| {
            ApiError::new(Problem::InvalidParameter, format!("unknown {what} {s:?}"))
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn time_param(v: &Option<String>, what: &str) -> Result<Option<Millis>, ApiError> {
    v.as_deref()
        .map(|s| {
            parse_datetime(s).ok_or_else(|| {
                ApiError::new(
                    Problem::InvalidParameter,
                    format!("{what} {s:?} is not a date-time like 2026-11-26T09:00:00+08:00"),
                )
            })
        })
        .transpose()
}

pub(super) fn to_query(st: &AppState, p: &ListParams) -> Result<CaseQuery, ApiError> {
    let tax = &st.0.cfg.taxonomy;
    let bad = |m: String| ApiError::new(Problem::InvalidParameter, m);
    Ok(CaseQuery {
        states: list_of(&p.state, "state", CaseState::parse)?,
        categories: list_of(&p.category, "category", |c| {
            tax.category(c).map(|c| c.code.clone())
        })?,
        exclude_categories: Vec::new(),
        domains: list_of(&p.domain, "domain", Domain::parse)?,
        region: match &p.region {
            Some(r) if st.0.cfg.territory.by_code(r).is_none() => {
                return Err(bad(format!("unknown region {r:?}")))
            }
            r => r.clone(),
        },
        region_level: None,
        department: match &p.department {
            Some(d) if tax.department(d).is_none() => {
                return Err(bad(format!("unknown department {d:?}")))
            }
            d => d.clone(),
        },
        department_busy: false,
        min_priority: p
            .priority
            .as_deref()
            .map(|s| Priority::parse(s).ok_or_else(|| bad(format!("unknown priority {s:?}"))))
            .transpose()?,
        overdue: match p.overdue.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(o) => return Err(bad(format!("overdue must be true or false, not {o:?}"))),
        },
        now: st.now(),
        created_from: time_param(&p.from, "from")?,
        created_to: time_param(&p.to, "to")?,
        text: p.q.clone(),
        sort: p
            .sort
            .as_deref()
            .map(|s| {
                Sort::parse(s).ok_or_else(|| {
                    bad(format!(
                        "sort must be deadline, created or updated, not {s:?}"
                    ))
                })
            })
            .transpose()?
            .unwrap_or_default(),
        descending: match p.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(o) => return Err(bad(format!("order must be asc or desc, not {o:?}"))),
        },
        limit: p
            .limit
            .as_deref()
            .map(|l| {
                l.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| bad(format!("limit must be 1–200, not {l:?}")))
            })
            .transpose()?
            .unwrap_or(50),
        after: p
            .cursor
            .as_deref()
            .map(|c| {
                Cursor::decode(c)
                    .ok_or_else(|| bad(format!("cursor {c:?} is not one this server returned")))
            })
            .transpose()?,
    })
}

/// Is `q` shaped exactly like a case number (a prefix of capital letters, then the
/// 13 digits of date and sequence, e.g. `XH2611260000123`)?
fn is_case_number(q: &str) -> bool {
    let digits = q.trim_start_matches(|c: char| c.is_ascii_uppercase());
    let prefix = q.len() - digits.len();
    (1..=4).contains(&prefix) && digits.len() == 13 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Refuses a text search that could recover masked personal data: whoever sees titles
/// masked (everyone but the command-centre officers, as
/// [`wire::case_view_for`] decides) may search digits, `@` or `＠` only as an exact case
/// number — else `title LIKE %138%` would tell a masked phone number digit by digit.
pub(super) fn check_text_search(params: &ListParams, role: Role) -> Result<(), ApiError> {
    let Some(q) = params.q.as_deref().map(str::trim) else {
        return Ok(());
    };
    if role.is_officer() || is_case_number(q) {
        return Ok(());
    }
    if q.chars().any(|c| c.is_numeric() || c == '@' || c == '＠') {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            "q may hold digits or @ only as a whole case number (e.g. XH2611260000123): \
             searching for numbers is for case numbers only",
        ));
    }
    Ok(())
}

pub async fn list_cases(
    State(st): State<AppState>,
    crate::Q(params): crate::Q<ListParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    check_text_search(&params, p.role)?;
    let mut q = to_query(&st, &params)?;
    let now = q.now;
    if !scope_query(&st, &p, &mut q) {
        return Ok(Json(json!({"cases": [], "next_cursor": null})).into_response());
    }
    set_region_level(&st, &mut q);
    let page = st.0.reads.run(move |s| page_of(s, &q)).await??;
    let cfg = &st.0.cfg;
    Ok(Json(json!({
        "cases": page.cases.iter().map(|c| wire::case_view_for(c, cfg, now, Some(p.role))).collect::<Vec<_>>(),
        "next_cursor": page.next.map(|c| c.encode()),
    }))
    .into_response())
}

/// Counts an anonymous report from `peer` in the window Open311's anonymous creates share
/// (429 `too_many_requests` with `Retry-After` at [`crate::ANONYMOUS_LIMIT`] per
/// [`crate::ANONYMOUS_WINDOW`]); signed-in callers are not counted.
fn anonymous_report(st: &AppState, peer: &str) -> Result<(), ApiError> {
    st.0.anonymous_reports
        .admit(peer, st.now())
        .map_err(|seconds| {
            crate::http::access::too_many(
                Problem::TooManyRequests,
                format!(
                    "at most {} reports per {} minutes from one address without signing in; try again in {seconds} s or sign in",
                    crate::ANONYMOUS_LIMIT,
                    crate::ANONYMOUS_WINDOW / cityos_core::time::MINUTE
                ),
                seconds,
            )
        })
}

/// Counts an anonymous lookup of a case from `peer` (429 with `Retry-After` when the
/// address has made [`crate::PUBLIC_LOOKUPS`] in the last minute: case numbers are
/// sequential, so following them one by one must stay slow).
fn public_lookup(st: &AppState, peer: &str) -> Result<(), ApiError> {
    st.0.api.public_lookups
        .admit(peer, st.now())
        .map_err(|seconds| {
            crate::http::access::too_many(
                Problem::TooManyRequests,
                format!(
                    "at most {} case lookups a minute from one address without signing in; try again in {seconds} s",
                    crate::PUBLIC_LOOKUPS
                ),
                seconds,
            )
        })
}

/// A case a citizen may follow by its number: of a public category (the taxonomy says
/// so), else exactly like a missing case.
async fn find_public_case(st: &AppState, number: &str) -> Result<Case, ApiError> {
    find_case(st, number)
        .await?
        .filter(|c| crate::cases::publicly_followable(st, c))
        .ok_or_else(|| ApiError::not_found("the case"))
}

pub async fn get_case(
    State(st): State<AppState>,
    crate::http::access::Peer(peer): crate::http::access::Peer,
    Path(id): Path<String>,
    MaybeSignedIn(p): MaybeSignedIn,
) -> ApiResult {
    let nf = || ApiError::not_found("the case");
    let Some(p) = p else {
        // Citizens follow their case by its number, without an account.
        if id.parse::<i64>().is_ok() {
            return Err(ApiError::new(
                Problem::MissingToken,
                "sign in, or follow a case by its number",
            ));
        }
        public_lookup(&st, &peer)?;
        let c = find_public_case(&st, &id).await?;
        return Ok(
            Json(json!({"case": wire::public_view(&c, &st.0.cfg, st.now())})).into_response(),
        );
    };
    let c = find_case(&st, &id)
        .await?
        .filter(|c| can_see(&st, &p, c))
        .ok_or_else(nf)?;
    let cid = c.id;
    let (log, reports, names) = st.0.reads.run(move |s| log_and_reports(s, cid)).await??;
    // An officer sees the reporters' contacts and text unmasked: a read of personal data,
    // written to the audit trail.
    if p.role.is_officer() && reports.iter().any(|r| r.contact.is_some()) {
        st.0.audit
            .record_soon(
                &st,
                &p.name,
                "case_read",
                &format!("case:{}", c.number),
                json!({"reports": reports.len()}),
            )
            .await?;
    }
    let actions = actions_now(&c, &p);
    Ok(Json(json!({
        "case": wire::case_view_for(&c, &st.0.cfg, st.now(), Some(p.role)),
        "actions": actions,
        "log": log.iter().map(|e| {
            let mut v = wire::log_view(e, p.role.is_officer());
            if let Some((name, dept)) = names.get(&e.actor) {
                v.actor_name = Some(name.clone());
                v.actor_department = dept.clone();
            }
            v
        }).collect::<Vec<_>>(),
        "reports": reports.iter().map(|r| wire::report_view(r, p.role)).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// The actions the caller's role may take on the case right now (by the transition table;
/// a handler only where their department holds a task that is not finished). Merging
/// (which names another case) and escalation (the timer's) are left out.
pub fn actions_now(
    c: &cityos_core::case::Case,
    p: &crate::http::auth::Principal,
) -> Vec<&'static str> {
    use cityos_core::case::TaskState as T;
    // A handler acts on their own department's task, at the step that task is at.
    let mine = |ok: &dyn Fn(T) -> bool| {
        c.tasks
            .iter()
            .any(|t| Some(&t.department) == p.department.as_ref() && ok(t.state))
    };
    cityos_core::workflow::RULES
        .iter()
        .filter(|r| !matches!(r.action, "merge" | "escalate"))
        .filter(|r| r.from.contains(&c.state) && r.roles.contains(&p.role))
        .filter(|r| {
            p.role != Role::Handler
                || match r.action {
                    "note" | "tick" => mine(&|_| true),
                    "acknowledge" => mine(&|s| s == T::Dispatched),
                    "start" | "return" => mine(&|s| matches!(s, T::Dispatched | T::Acknowledged)),
                    _ => mine(&|s| !matches!(s, T::Handled | T::Returned)),
                }
        })
        .filter(|r| match r.action {
            "grant_postponement" | "refuse_postponement" => c.postponement.is_some(),
            "request_postponement" => c.postponement.is_none(),
            "tick" => c.playbook.as_ref().is_some_and(|p| {
                p.checklist
                    .iter()
                    .any(|r| r.items.iter().any(|i| i.done_at.is_none()))
            }),
            _ => true,
        })
        .map(|r| r.action)
        .collect()
}

pub async fn post_transition(
    State(st): State<AppState>,
    crate::http::access::Peer(peer): crate::http::access::Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    caller: Caller,
    body: Body<Value>,
) -> ApiResult {
    let p = caller.maybe()?;
    let mut v = body.value;
    let obj = v.as_object_mut().ok_or_else(|| {
        ApiError::new(
            Problem::InvalidBody,
            "the body must be a JSON object with an \"action\"",
        )
    })?;
    // The reporter's key (from the filing answer): rates the case without an account.
    let report_token = match obj.remove("report_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(ApiError::new(
                Problem::InvalidBody,
                "report_token must be a string",
            ))
        }
    };
    let note = match obj.remove("note") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::new(Problem::InvalidBody, "note must be a string")),
    };
    let attachments: Vec<String> = match obj.remove("attachments") {
        None | Some(Value::Null) => Vec::new(),
        Some(a) => serde_json::from_value(a).map_err(|_| {
            ApiError::new(
                Problem::InvalidBody,
                "attachments must be a list of strings",
            )
        })?,
    };
    let version = match obj.remove("version") {
        None | Some(Value::Null) => None,
        Some(x) => Some(x.as_u64().ok_or_else(|| {
            ApiError::new(Problem::InvalidBody, "version must be a whole number")
        })?),
    };
    let given: Vec<String> = obj.keys().cloned().collect();
    let action: Action = serde_json::from_value(v).map_err(|e| {
        let m = e.to_string();
        if m.starts_with("unknown field") {
            ApiError::new(Problem::InvalidBody, m)
        } else {
            ApiError::new(
                Problem::InvalidAction,
                format!("the action does not fit: {e}"),
            )
        }
    })?;
    // Every field must mean something to this action: a misspelt or foreign field is
    // refused, not silently dropped.
    let known = serde_json::to_value(&action).unwrap_or_default();
    if let Some(k) = given.iter().find(|k| known.get(k.as_str()).is_none()) {
        let mut takes: Vec<&str> = known
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        takes.extend(["note", "attachments", "version"]);
        return Err(ApiError::new(
            Problem::InvalidBody,
            format!(
                "unknown field {k:?}: a {} transition takes {}",
                action.name(),
                takes.join(", ")
            ),
        ));
    }
    let reporter = matches!(action, Action::Evaluate { .. })
        && id.parse::<i64>().is_err()
        && (p.is_none() || p.as_ref().is_some_and(|p| p.role == Role::Citizen));
    let (actor, case) = if reporter {
        // A citizen rates a case by its number with the token the filing answer gave.
        public_lookup(&st, &peer)?;
        let Some(token) = report_token else {
            return Err(ApiError::new(
                Problem::MissingToken,
                "rate your case with the report_token its filing answer gave, or sign in",
            ));
        };
        let case = find_public_case(&st, &id).await?;
        let report = crate::cases::report_of_token(&st, &token);
        if report.is_none_or(|r| !case.reports.contains(&r)) {
            return Err(ApiError::forbidden(
                "this report_token does not belong to this case",
            ));
        }
        let actor = Actor {
            id: "citizen".into(),
            role: Role::Citizen,
            department: None,
            scope: None,
        };
        (actor, case)
    } else {
        let p = require(p.clone()).map_err(|_| {
            ApiError::new(
                Problem::MissingToken,
                "sign in first (a citizen rates their case by its number with its report_token)",
            )
        })?;
        let case = find_case(&st, &id)
            .await?
            .filter(|c| can_see(&st, &p, c))
            .ok_or_else(|| ApiError::not_found("the case"))?;
        let actor = Actor {
            id: p.name.clone(),
            role: p.role,
            department: p.department.clone(),
            scope: p.scope.clone(),
        };
        (actor, case)
    };
    // On-site verification by an inspector needs photo evidence.
    if actor.role == Role::Inspector
        && matches!(action, Action::Verify | Action::RejectVerification)
        && attachments.is_empty()
    {
        return Err(ApiError::new(
            Problem::EvidenceRequired,
            "an inspector verifies with at least one photo: upload it to /api/v1/media and list its media_url in attachments",
        ));
    }
    for a in attachments.iter().filter(|a| a.starts_with("http")) {
        crate::cases::media::check_media_url(&st, crate::cases::media::request_host(&headers), a)
            .await?;
    }
    let caller = who(&p, &peer);
    let viewer = actor.role;
    let st2 = st.clone();
    let name = action.name();
    let result = idempotent(
        &st,
        &headers,
        &caller,
        &format!("POST /api/v1/cases/{}/transitions", case.id),
        &body.raw,
        move |key| async move {
            let mut command = Command::new(action, actor);
            command.note = note;
            command.attachments = attachments;
            command.expected_version = version;
            let now = st2.now();
            let req = Request::Transition {
                case: case.id,
                command,
                now,
            };
            let st3 = st2.clone();
            let render = move |a: &EngineResponse| transition_answer(&st3, a, now, viewer);
            let a = engine_call(&st2, keyed(req, key, render)).await?;
            transition_answer(&st2, &a, now, viewer)
        },
    )
    .await;
    if let Err(e) = &result {
        if e.status.is_client_error() {
            crate::http::log::event(
                "refused_transition",
                &[
                    ("caller", &caller),
                    ("action", &name),
                    ("case", &id),
                    // Only the code: a detail may echo what the caller typed.
                    ("code", &e.code),
                ],
            );
        }
    }
    result
}

fn transition_answer(
    st: &AppState,
    a: &EngineResponse,
    now: Millis,
    viewer: Role,
) -> Result<(StatusCode, Value), ApiError> {
    match a {
        EngineResponse::Transition(o) => Ok((
            StatusCode::OK,
            json!({
                "case": wire::case_view_for(&o.case, &st.0.cfg, now, Some(viewer)),
                "opened": o.opened.as_ref().map(|c| wire::case_view_for(c, &st.0.cfg, now, Some(viewer))),
            }),
        )),
        other => Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    }
}

/// What awaits the caller's action, most urgent first.
pub async fn inbox(State(st): State<AppState>, SignedIn(p): SignedIn) -> ApiResult {
    use CaseState::*;
    let states = match p.role {
        Role::Handler => vec![Dispatched, Acknowledged, InProgress, Rework],
        Role::SubdistrictOfficer | Role::DistrictOfficer => {
            vec![Reported, Filed, Returned, Verified]
        }
        Role::Inspector => vec![Handled],
        _ => vec![],
    };
    if states.is_empty() {
        return Ok(Json(json!({"cases": []})).into_response());
    }
    let mut q = CaseQuery {
        states,
        now: st.now(),
        limit: 100,
        ..Default::default()
    };
    if !scope_query(&st, &p, &mut q) {
        return Ok(Json(json!({"cases": []})).into_response());
    }
    set_region_level(&st, &mut q);
    let now = q.now;
    let page = st.0.reads.run(move |s| page_of(s, &q)).await??;
    let mut cases = page.cases;
    if p.role == Role::Handler {
        // Only the tasks this department still has to act on.
        let d = p.department.clone().unwrap_or_default();
        cases.retain(|c| {
            c.task(&d).is_some_and(|t| {
                !matches!(
                    t.state,
                    cityos_core::case::TaskState::Handled | cityos_core::case::TaskState::Returned
                )
            })
        });
    }
    cases.sort_by_key(|c| (std::cmp::Reverse(c.priority), c.due().unwrap_or(i64::MAX)));
    let cfg = &st.0.cfg;
    Ok(Json(
        json!({"cases": cases.iter().map(|c| wire::case_view_for(c, cfg, now, Some(p.role))).collect::<Vec<_>>()}),
    )
    .into_response())
}

/// A page of the cases a query selects.
fn page_of(s: &mut dyn CaseStore, q: &CaseQuery) -> Result<Page, StoreError> {
    s.list_cases(q)
}

/// A case's log and its reports, for the case view.
/// A case's log and reports, and the display names of the staff accounts in its log.
fn log_and_reports(
    s: &mut dyn cityos_engine::Store,
    id: CaseId,
) -> Result<LogAndReports, StoreError> {
    let log = s.load_log(id)?;
    let mut names = std::collections::BTreeMap::new();
    for e in &log {
        if !names.contains_key(&e.actor) {
            let name = s.user(&e.actor)?.map(|u| (u.display_name, u.department));
            names.insert(e.actor.clone(), name);
        }
    }
    let names = names
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    Ok((log, s.reports_of(id)?, names))
}

type LogAndReports = (
    Vec<LogEntry>,
    Vec<Report>,
    std::collections::BTreeMap<String, (String, Option<String>)>,
);
