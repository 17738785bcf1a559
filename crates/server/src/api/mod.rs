//! The handlers of `/api/v1`. Each one: who is calling (auth) → what they may see or do
//! (role and territorial scope) → the engine or a read connection → the wire shape.
//!
//! Architecture Invariant: a case outside the caller's scope answers exactly like a case
//! that does not exist (404), so scopes never leak existence.

use crate::cases::wire::{self, LoginIn, ReportIn};
use crate::cases::{can_see, engine_call, find_case, keyed, scope_query, set_region_level};
use crate::http::auth::{verify_password, Principal};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{require, Caller, MaybeSignedIn, SignedIn};
use crate::http::idempotency::idempotent;
use crate::{AppState, Body};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::case::{Case, Channel, State as CaseState};
use cityos_core::time::{local_date, parse_datetime, Millis};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::{Domain, Level, Priority, Role};
use cityos_engine::engine::{Request, Response as EngineResponse};
use cityos_engine::query::{CaseQuery, Cursor, Sort};
use serde::Deserialize;
use serde_json::{json, Value};

type ApiResult = Result<Response, ApiError>;

fn who(p: &Option<Principal>) -> String {
    p.as_ref()
        .map_or_else(|| "anonymous".to_string(), |p| p.name.clone())
}

/// Liveness, cheap and truthful: no round trip, but a read connection that lost the
/// database says so (503 `store_unavailable` until it has reconnected).
pub async fn healthz(State(st): State<AppState>) -> ApiResult {
    if st.0.reads.healthy() {
        Ok(Json(json!({"status": "ok", "store": "ok"})).into_response())
    } else {
        Err(ApiError::from(cityos_engine::StoreError::Unavailable(
            "a read connection lost the database".into(),
        )))
    }
}

/// Readiness: a round trip to the store through the read pool, at most 2 s.
pub async fn readyz(State(st): State<AppState>) -> ApiResult {
    let ping = st.0.reads.run(|s| s.ping());
    match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
        Ok(r) => {
            r??;
            Ok(Json(json!({"status": "ready", "store": "ok"})).into_response())
        }
        Err(_) => Err(ApiError::from(cityos_engine::StoreError::Unavailable(
            "the readiness round trip took over 2 s".into(),
        ))),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        Problem::NoSuchEndpoint,
        "there is no such endpoint; see /api/openapi.json",
    )
}

/// `POST /api/v1/auth/login`. Throttled before any hashing: after
/// [`crate::LOGIN_FAILURES`] failures of an account (or [`crate::LOGIN_PEER_FAILURES`]
/// from an address) within [`crate::LOGIN_WINDOW`], every attempt — even with the right
/// password — answers 429 `too_many_attempts` with `Retry-After` until the window ends;
/// a successful sign-in clears the account's count. The password is checked on the
/// blocking pool, never on the async threads. The token comes back in the body (for API
/// clients) and as an HttpOnly session cookie (for the web pages).
pub async fn login(
    State(st): State<AppState>,
    crate::http::access::Peer(peer): crate::http::access::Peer,
    headers: HeaderMap,
    body: Body<LoginIn>,
) -> ApiResult {
    let LoginIn { username, password } = body.value;
    let now = st.now();
    let (acct, addr) = (format!("user:{username}"), format!("peer:{peer}"));
    let wait =
        st.0.api
            .login_accounts
            .blocked(&acct, now)
            .max(st.0.api.login_peers.blocked(&addr, now));
    if let Some(seconds) = wait {
        crate::http::log::event(
            "sign_in_throttled",
            &[
                ("account", &username),
                ("peer", &peer),
                ("retry_after_s", &seconds),
            ],
        );
        return Err(crate::http::access::too_many(
            Problem::TooManyAttempts,
            format!("too many failed sign-ins; try again in {seconds} s"),
            seconds,
        ));
    }
    let name = username.clone();
    let user = st.0.reads.run(move |s| s.user(&name)).await??;
    let fail = || {
        st.0.api.login_accounts.add(&acct, now);
        st.0.api.login_peers.add(&addr, now);
        ApiError::new(Problem::BadCredentials, "wrong username or password")
    };
    let Some(user) = user else {
        // Spend the same time as a real check so that usernames cannot be probed.
        let _ = tokio::task::spawn_blocking(move || verify_password(&password, dummy_hash())).await;
        return Err(fail());
    };
    let phc = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        return Err(fail());
    }
    st.0.api.login_accounts.clear(&acct);
    let role = Role::parse(&user.role).ok_or_else(|| {
        ApiError::internal(format!(
            "user {} has unknown role {}",
            user.username, user.role
        ))
    })?;
    let expires_at = st.now() + st.0.session_ms;
    let p = Principal {
        name: user.username.clone(),
        role,
        department: user.department.clone(),
        scope: user.scope.clone(),
        channel: None,
        expires_at,
    };
    let token = st.0.key.sign(&p);
    let cookie = crate::http::access::set_session(&headers, &token, st.0.session_ms / 1000);
    let mut r = Json(json!({
        "token": token,
        "expires_at": cityos_core::time::format_rfc3339(expires_at),
        "user": {
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
            "department": user.department,
            "scope": user.scope,
        }
    }))
    .into_response();
    r.headers_mut()
        .insert(axum::http::header::SET_COOKIE, cookie);
    Ok(r)
}

/// `POST /api/v1/auth/logout`: clears the session cookie (bearer tokens simply expire).
pub async fn logout(headers: HeaderMap) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        axum::http::header::SET_COOKIE,
        crate::http::access::set_session(&headers, "", 0),
    );
    r
}

/// A real argon2id hash of a random string, so that refusing an unknown user costs what
/// checking a known one does.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        crate::http::auth::hash_password(&crate::http::auth::TokenKey::random().to_hex())
    })
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
    headers: HeaderMap,
    caller: Caller,
    body: Body<ReportIn>,
) -> ApiResult {
    let p = caller.maybe()?;
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
    if channel == Channel::Citizen
        && st
            .0
            .cfg
            .taxonomy
            .category(&r.category)
            .is_some_and(|c| !c.public)
    {
        // As in Open311: citizens file public categories only (a non-public case's
        // answer would show someone else's case).
        return Err(ApiError::new(
            Problem::CategoryNotPublic,
            format!(
                "category {:?} is not one citizens report; see /api/v1/categories (public: true)",
                r.category
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
                .locate(r.lon, r.lat)
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
    let caller = who(&p);
    let viewer = p.as_ref().map(|p| p.role);
    let st2 = st.clone();
    idempotent(
        &st,
        &headers,
        &caller,
        "POST /api/v1/reports",
        &body.raw,
        move |key| async move {
            let now = st2.now();
            let report = NewReport {
                channel,
                category: r.category,
                lon: r.lon,
                lat: r.lat,
                text: r.text,
                contact: r.contact,
                at: now,
                media,
            };
            let st3 = st2.clone();
            let render = move |a: &EngineResponse| report_answer(&st3, a, now, channel, viewer);
            let a = engine_call(&st2, keyed(Request::Report(report), key, render)).await?;
            report_answer(&st2, &a, now, channel, viewer)
        },
    )
    .await
}

fn report_answer(
    st: &AppState,
    a: &EngineResponse,
    now: Millis,
    channel: Channel,
    viewer: Option<Role>,
) -> Result<(StatusCode, Value), ApiError> {
    match a {
        EngineResponse::Intake(o) => Ok((
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
                "reason": o.reason,
                "case": wire::case_view_for(&o.case, &st.0.cfg, now, viewer),
            }),
        )),
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

fn to_query(st: &AppState, p: &ListParams) -> Result<CaseQuery, ApiError> {
    let tax = &st.0.cfg.taxonomy;
    let bad = |m: String| ApiError::new(Problem::InvalidParameter, m);
    Ok(CaseQuery {
        states: list_of(&p.state, "state", CaseState::parse)?,
        categories: list_of(&p.category, "category", |c| {
            tax.category(c).map(|c| c.code.clone())
        })?,
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

pub async fn list_cases(
    State(st): State<AppState>,
    crate::Q(params): crate::Q<ListParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    let mut q = to_query(&st, &params)?;
    let now = q.now;
    if !scope_query(&st, &p, &mut q) {
        return Ok(Json(json!({"cases": [], "next_cursor": null})).into_response());
    }
    set_region_level(&st, &mut q);
    let page = st.0.reads.run(move |s| s.list_cases(&q)).await??;
    let cfg = &st.0.cfg;
    Ok(Json(json!({
        "cases": page.cases.iter().map(|c| wire::case_view_for(c, cfg, now, Some(p.role))).collect::<Vec<_>>(),
        "next_cursor": page.next.map(|c| c.encode()),
    }))
    .into_response())
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
        .filter(|c| {
            st.0.cfg
                .taxonomy
                .category(&c.category)
                .is_some_and(|cat| cat.public)
        })
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
        return Ok(Json(json!({"case": wire::public_view(&c, &st.0.cfg)})).into_response());
    };
    let c = find_case(&st, &id)
        .await?
        .filter(|c| can_see(&st, &p, c))
        .ok_or_else(nf)?;
    let cid = c.id;
    let (log, reports) = st
        .0
        .reads
        .run(move |s| Ok::<_, cityos_engine::StoreError>((s.load_log(cid)?, s.reports_of(cid)?)))
        .await??;
    let actions = actions_now(&c, &p);
    Ok(Json(json!({
        "case": wire::case_view_for(&c, &st.0.cfg, st.now(), Some(p.role)),
        "actions": actions,
        "log": log.iter().map(|e| wire::log_view(e, p.role.is_officer())).collect::<Vec<_>>(),
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
                    "note" => mine(&|_| true),
                    "acknowledge" => mine(&|s| s == T::Dispatched),
                    "start" | "return" => mine(&|s| matches!(s, T::Dispatched | T::Acknowledged)),
                    _ => mine(&|s| !matches!(s, T::Handled | T::Returned)),
                }
        })
        .filter(|r| match r.action {
            "grant_postponement" | "refuse_postponement" => c.postponement.is_some(),
            "request_postponement" => c.postponement.is_none(),
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
    let caller = who(&p);
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
                    ("code", &e.code),
                    ("detail", &e.detail),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionParams {
    level: Option<String>,
}

pub async fn regions(State(st): State<AppState>, crate::Q(p): crate::Q<RegionParams>) -> ApiResult {
    let level = match p.level.as_deref() {
        None => Level::Subdistrict,
        Some(l) => Level::parse(l).ok_or_else(|| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("level must be district, subdistrict, community or grid, not {l:?}"),
            )
        })?,
    };
    let body = st.0.cfg.territory.to_geojson(level).to_string();
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocateParams {
    lon: Option<String>,
    lat: Option<String>,
}

pub async fn locate(State(st): State<AppState>, crate::Q(p): crate::Q<LocateParams>) -> ApiResult {
    let num = |v: &Option<String>, what: &str| -> Result<f64, ApiError> {
        let s = v.as_deref().ok_or_else(|| {
            ApiError::new(Problem::InvalidParameter, format!("{what} is required"))
        })?;
        s.parse().map_err(|_| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("{what} {s:?} is not a number"),
            )
        })
    };
    let (lon, lat) = (num(&p.lon, "lon")?, num(&p.lat, "lat")?);
    let t = &st.0.cfg.territory;
    let chain = t
        .locate(lon, lat)
        .map_err(|e| ApiError::from(cityos_engine::EngineError::from(e)))?;
    let mut out = serde_json::Map::new();
    for l in Level::ALL {
        if let Some(id) = chain.at(l) {
            let r = t.region(id);
            out.insert(
                l.as_str().into(),
                json!({"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en}),
            );
        }
    }
    Ok(Json(Value::Object(out)).into_response())
}

pub async fn categories(State(st): State<AppState>) -> Json<Value> {
    let cats: Vec<Value> = st
        .0
        .cfg
        .taxonomy
        .categories
        .iter()
        .map(|c| {
            json!({
                "code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "domain": c.domain,
                "domain_zh": c.domain.name_zh(), "parent": c.parent, "priority": c.priority, "public": c.public,
                "lead": c.lead, "assist": c.assist, "lowest_level": c.lowest_level,
                "dedup_radius_m": c.dedup_radius_m, "dedup_window_h": c.dedup_window_ms as f64 / 3.6e6,
                "deadlines": cityos_core::Step::ALL.iter().map(|s| (s.as_str().to_string(), json!(c.limit(*s).to_string()))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    Json(json!({ "categories": cats }))
}

pub async fn departments(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "departments": st.0.cfg.taxonomy.departments }))
}

pub async fn stats(
    State(st): State<AppState>,
    crate::Q(params): crate::Q<ListParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    let mut q = to_query(&st, &params)?;
    if !scope_query(&st, &p, &mut q) {
        return Err(ApiError::forbidden("nothing is visible to this account"));
    }
    set_region_level(&st, &mut q);
    let today = local_date(q.now).local_midnight();
    let s =
        st.0.reads
            .run(move |store| store.stats(&q, today))
            .await??;
    let tax = &st.0.cfg.taxonomy;
    let map = |v: &[(String, i64)]| {
        v.iter()
            .map(|(k, n)| (k.clone(), json!(n)))
            .collect::<serde_json::Map<_, _>>()
    };
    Ok(Json(json!({
        "total": s.total,
        "by_state": map(&s.by_state),
        "by_domain": map(&s.by_domain),
        "by_subdistrict": map(&s.by_subdistrict),
        "by_department": s.by_department.iter().map(|(d, h, o)| json!({
            "department": d, "name_zh": tax.department(d).map(|x| x.name_zh.clone()),
            "handled": h, "on_time": o, "on_time_rate": if *h > 0 { Some(*o as f64 / *h as f64) } else { None },
        })).collect::<Vec<_>>(),
        "overdue": s.overdue,
        "today_intake": s.today_intake,
        "on_time_rate": s.on_time_rate(),
    }))
    .into_response())
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
    let page = st.0.reads.run(move |s| s.list_cases(&q)).await??;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// For browsers' EventSource, which cannot send headers.
    access_token: Option<String>,
    last_event_id: Option<String>,
}

/// An event as the stream sends it; `full` = to a command centre (officers see notes as
/// written, everyone else with personal data masked).
fn event_json(e: &cityos_engine::store::CaseEvent, full: bool) -> String {
    let note = if full {
        std::borrow::Cow::Borrowed(e.note.as_str())
    } else {
        std::borrow::Cow::Owned(cityos_core::privacy::mask_personal(&e.note))
    };
    json!({
        "id": e.id, "kind": e.kind, "case_id": e.case_id, "number": e.number, "category": e.category,
        "priority": cityos_core::Priority::from_rank(e.priority as u8), "action": e.action, "from": e.from, "to": e.to,
        "at": cityos_core::time::format_rfc3339(e.at), "actor": e.actor, "note": note,
        "subdistrict": e.subdistrict, "community": e.community, "grid": e.grid, "department": e.department,
    })
    .to_string()
}

struct StreamState {
    st: AppState,
    /// The bus: case events (resumable, with ids) and vital-sign events (alerts, level
    /// changes: live only, without ids).
    rx: crate::bus::Subscription,
    backlog: std::collections::VecDeque<cityos_engine::store::CaseEvent>,
    last: i64,
    region: Option<String>,
    root: String,
    department: Option<String>,
    /// The last page read from the log was full: there may be more after it.
    more: bool,
    /// Notes as written (command centres), or masked.
    full: bool,
}

/// Events read from the log per page when a client catches up.
const STREAM_PAGE: usize = 1000;

impl StreamState {
    fn visible(&self, e: &cityos_engine::store::CaseEvent) -> bool {
        let in_region = self.region.as_ref().is_none_or(|r| {
            *r == self.root
                || [&e.subdistrict, &e.community, &e.grid]
                    .iter()
                    .any(|c| c.as_deref() == Some(r))
        });
        in_region
            && self
                .department
                .as_ref()
                .is_none_or(|d| e.department.as_deref() == Some(d))
    }

    /// Vital signs of the district concern everyone; a sub-district's, those inside it.
    fn vital_visible(&self, e: &crate::bus::VitalEvent) -> bool {
        self.region.as_ref().is_none_or(|r| {
            *r == self.root || e.region == self.root || r.starts_with(e.region.as_str())
        })
    }

    async fn refill(&mut self) -> bool {
        let (last, region, dept) = (self.last, self.region.clone(), self.department.clone());
        match self
            .st
            .0
            .reads
            .run(move |s| s.events_after(last, STREAM_PAGE, region.as_deref(), dept.as_deref()))
            .await
        {
            Ok(Ok(v)) => {
                self.more = v.len() >= STREAM_PAGE;
                self.backlog.extend(v);
                true
            }
            _ => false,
        }
    }
}

/// `GET /api/v1/events/stream`: Server-Sent Events of committed case changes in the
/// caller's scope, resumable with `Last-Event-ID` (header or `last_event_id`).
pub async fn events_stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    crate::Q(params): crate::Q<StreamParams>,
    caller: Caller,
) -> ApiResult {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let p = match &params.access_token {
        Some(t) => Some(st.0.key.verify(t, st.now())?),
        None => caller.maybe()?,
    };
    let p = require(p)?;
    let mut q = CaseQuery::default();
    if !scope_query(&st, &p, &mut q) {
        return Err(ApiError::forbidden("nothing is visible to this account"));
    }
    // Both the header and the query parameter must be event ids when given (the header
    // wins when both are); anything else is a 400, not a silent restart.
    let event_id = |what: &str, s: &str| {
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::new(
                    Problem::InvalidParameter,
                    format!("{what} {s:?} is not an event id"),
                )
            })
    };
    let from_header = match headers.get("last-event-id") {
        Some(v) => Some(event_id(
            "Last-Event-ID",
            v.to_str().map_err(|_| {
                ApiError::new(
                    Problem::InvalidParameter,
                    "Last-Event-ID is not an event id",
                )
            })?,
        )?),
        None => None,
    };
    let from_query = match &params.last_event_id {
        Some(s) => Some(event_id("last_event_id", s)?),
        None => None,
    };
    let resume = from_header.or(from_query);
    // Subscribe before reading the backlog, so that nothing falls between the two.
    let rx = st.0.bus.subscribe();
    let last = match resume {
        Some(id) => id,
        None => {
            st.0.engine
                .with(|e| e.last_event())
                .map_err(ApiError::from)?
        }
    };
    let t = &st.0.cfg.territory;
    let mut state = StreamState {
        root: t.region(t.root()).code.clone(),
        st: st.clone(),
        rx,
        backlog: Default::default(),
        last,
        region: q.region,
        department: q.department,
        more: false,
        full: p.role.is_officer(),
    };
    if resume.is_some() && !state.refill().await {
        return Err(ApiError::internal("cannot read the event backlog"));
    }
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.backlog.pop_front() {
                if e.id <= s.last {
                    continue;
                }
                s.last = e.id;
                let ev = Event::default()
                    .id(e.id.to_string())
                    .event(e.kind.clone())
                    .data(event_json(&e, s.full));
                return Some((Ok::<_, std::convert::Infallible>(ev), s));
            }
            // Catching up: page through the log until it is read to the end, however far
            // behind the client was; only then go live (live events already sent are
            // skipped by id).
            if s.more {
                if !s.refill().await {
                    return None;
                }
                continue;
            }
            match s.rx.recv().await {
                Ok(crate::bus::BusEvent::Vital(v)) => {
                    if s.vital_visible(&v) {
                        let ev = Event::default().event(v.kind).data(v.data.clone());
                        return Some((Ok(ev), s));
                    }
                }
                Ok(crate::bus::BusEvent::Case(e)) => {
                    if e.id > s.last && s.visible(&e) {
                        s.last = e.id;
                        let ev = Event::default()
                            .id(e.id.to_string())
                            .event(e.kind.clone())
                            .data(event_json(&e, s.full));
                        return Some((Ok(ev), s));
                    }
                }
                // Other rooms' events are not the stream's.
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow for the live channel: catch up from the log (missed vital
                    // events are not replayed: the indicators show the state).
                    if !s.refill().await {
                        return None;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The api room's state: fixed windows per key (see [`crate::http::access::Window`]).
pub struct ApiLimits {
    /// Failed sign-ins per account ([`crate::LOGIN_FAILURES`] in [`crate::LOGIN_WINDOW`]).
    pub login_accounts: crate::http::access::Window,
    /// Failed sign-ins per peer address ([`crate::LOGIN_PEER_FAILURES`]).
    pub login_peers: crate::http::access::Window,
    /// Anonymous lookups of cases by number per peer address ([`crate::PUBLIC_LOOKUPS`]
    /// a minute).
    pub public_lookups: crate::http::access::Window,
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        use crate::http::access::Window;
        use crate::{LOGIN_FAILURES, LOGIN_PEER_FAILURES, LOGIN_WINDOW, PUBLIC_LOOKUPS};
        ApiLimits {
            login_accounts: Window::new(LOGIN_FAILURES, LOGIN_WINDOW),
            login_peers: Window::new(LOGIN_PEER_FAILURES, LOGIN_WINDOW),
            public_lookups: Window::new(PUBLIC_LOOKUPS, cityos_core::time::MINUTE),
        }
    }
}
