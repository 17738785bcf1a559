//! Several nodes (issue 20): an engine step for a partition another node holds reaches
//! that node. A request the engine refuses whole (`EngineError::NotOwner` before anything
//! changed here) is still sent on whole by the forwarding layer (`runtime::cluster`); but
//! a request that has already changed something here (readings applied, a room's rows
//! written — `http::node::mark_effect`) or work outside any request (background jobs, a
//! readings batch's task) hands just the engine step — file a report, act on a case — to
//! the owner over `POST /cluster/v1/engine` and goes on with the owner's answer.
//!
//! The call is authenticated with a MAC (the full 32 bytes) over the node's name and the
//! body, keyed with the token key the nodes share; the body carries the step's time, and
//! a step signed more than [`STEP_MAX_AGE_MS`] off the owner's clock is refused (a
//! captured step is never taken later). The whole step has one deadline,
//! `STEP_WITHIN`: room locks may be held meanwhile. Each step carries an idempotency key of its
//! own (`cluster-step:…`), recorded by the owner's engine in the same transaction as the
//! step's writes, with the step's answer: a step sent again after an unknown outcome (the
//! owner went away before answering, ownership moved) gets the recorded answer instead of
//! filing twice. A step of a keyed request (`Request::Keyed`) derives its key from the
//! request's, so a client's retry of the whole request finds the step already done — on
//! whichever node holds the partition by then (`recorded_step` is asked first).

use crate::http::error::{ApiError, Problem};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use cityos_core::case::Case;
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_engine::engine::{
    IdempotencyKey, IntakeOutcome, Request, Response as EngineResponse, TransitionOutcome,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;

/// Where a node takes the engine steps of the others.
pub const PATH: &str = "/cluster/v1/engine";
/// The calling node's name, and the keyed tag over it and the body.
const NODE: &str = "cityos-node";
const TAG: &str = "cityos-node-tag";
/// The prefix of a step's idempotency key (a client's keys are `caller|key`: they never
/// start with it unless a caller is named so, and a caller's name has no `:`).
pub const STEP_PREFIX: &str = "cluster-step:";
/// How often a step is tried on the owner before the caller is answered (a takeover
/// under way: about 3 s of pauses in all).
const ATTEMPTS: u32 = 8;
/// The most a whole step may take, every attempt included (a hung owner: one attempt
/// timed out and one more at most, within this).
const STEP_WITHIN: Duration = Duration::from_secs(5);
/// The largest answer a step takes from the owner.
const STEP_ANSWER_CAP: usize = 1 << 20;

/// Whether `req`, refused by this node's engine for another node's partition, is sent
/// to the owner: in a cluster, for a report or an action (keyed or not), unless the
/// request being served has changed nothing yet (the forwarding layer sends it whole).
/// (A step from another node is run by [`run_step`], which never sends it on.)
pub fn may_delegate(st: &AppState, req: &Request) -> bool {
    st.0.cluster.get().is_some()
        && crate::http::node::effects().is_none_or(|e| e.load(std::sync::atomic::Ordering::SeqCst))
        && matches!(inner(req), Request::Report(_) | Request::Transition { .. })
}

fn inner(req: &Request) -> &Request {
    match req {
        Request::Keyed { request, .. } => inner(request),
        r => r,
    }
}

fn into_inner(req: Request) -> Request {
    match req {
        Request::Keyed { request, .. } => into_inner(*request),
        r => r,
    }
}

/// The step's own idempotency key: derived from a keyed request's key and fingerprint,
/// or fresh (this node's name and random bits) for a request without one.
fn step_key(st: &AppState, req: &Request) -> Result<String, ApiError> {
    match req {
        Request::Keyed { key, .. } => Ok(format!("{STEP_PREFIX}{}#{}", key.key, key.request_hash)),
        _ => {
            let mut rnd = [0u8; 12];
            // Without randomness the key would be the same for every step: refused.
            getrandom::getrandom(&mut rnd).map_err(|e| {
                ApiError::internal(format!(
                    "no randomness from the operating system for an engine step's key: {e}"
                ))
            })?;
            let node = st.0.cluster.get().map_or("", |c| c.node.as_str());
            let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
            Ok(format!("{STEP_PREFIX}{node}:{hex}"))
        }
    }
}

/// Whether `req` is a keyed report or action in a cluster: its step may have been done
/// (under its step key) by an earlier attempt on any node, whichever way this one goes.
pub fn may_be_recorded(st: &AppState, req: &Request) -> bool {
    st.0.cluster.get().is_some()
        && matches!(req, Request::Keyed { .. })
        && matches!(inner(req), Request::Report(_) | Request::Transition { .. })
}

/// A keyed request's step done elsewhere: its answer recorded under the request's own
/// key too (rendered as the engine would have), so that a caller looking for that key
/// (a room's `idempotent` check, a retry) finds it like a step run here. A failure to
/// record is logged; the step key still holds the answer ([`recorded_step`]).
async fn remember(st: &AppState, req: &Request, answer: EngineResponse) -> EngineResponse {
    let Request::Keyed { key, .. } = req else {
        return answer;
    };
    let (status, body) = (key.render)(&answer);
    let a = cityos_engine::store::IdempotentAnswer {
        key: key.key.clone(),
        request_hash: key.request_hash.clone(),
        status,
        body,
        created_at: key.created_at,
    };
    let r = st.0.reads.write(move |s| s.put_idempotent(&a)).await;
    if let Err(e) = r
        .map_err(|e| e.detail)
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        crate::http::log::event("engine_step_unrecorded", &[("error", &e)]);
    }
    answer
}

/// A keyed request's step already done (on any node): its recorded answer.
pub async fn recorded_step(
    st: &AppState,
    req: &Request,
) -> Result<Option<EngineResponse>, ApiError> {
    if !matches!(req, Request::Keyed { .. }) {
        return Ok(None);
    }
    let key = step_key(st, req)?;
    let Some(a) = st.0.reads.run(move |s| s.idempotent(&key)).await?? else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&a.body).map_err(ApiError::internal)?;
    decode_response(&v).map(Some).map_err(ApiError::internal)
}

fn encode_request(r: &Request) -> Value {
    match inner(r) {
        Request::Report(rep) => json!({"report": rep}),
        Request::Transition { case, command, now } => json!({"transition": {
            "case": case, "action": command.action, "actor": command.actor, "note": command.note,
            "attachments": command.attachments, "expected_version": command.expected_version,
            "now": now,
        }}),
        _ => Value::Null,
    }
}

fn decode_request(v: &Value) -> Result<Request, String> {
    if let Some(r) = v.get("report") {
        let rep: NewReport = serde_json::from_value(r.clone()).map_err(|e| e.to_string())?;
        return Ok(Request::Report(rep));
    }
    let t = v
        .get("transition")
        .ok_or("neither a report nor a transition")?;
    let action: Action = serde_json::from_value(t["action"].clone()).map_err(|e| e.to_string())?;
    let actor: Actor = serde_json::from_value(t["actor"].clone()).map_err(|e| e.to_string())?;
    let mut command = Command::new(action, actor);
    command.note = t["note"].as_str().unwrap_or("").to_string();
    command.attachments =
        serde_json::from_value(t["attachments"].clone()).map_err(|e| e.to_string())?;
    command.expected_version = t["expected_version"].as_u64();
    Ok(Request::Transition {
        case: t["case"].as_i64().ok_or("no case")?,
        command,
        now: t["now"].as_i64().ok_or("no time")?,
    })
}

fn encode_response(r: &EngineResponse) -> Value {
    match r {
        EngineResponse::Intake(o) => json!({"intake": {
            "report_id": o.report_id, "case": o.case, "merged": o.merged, "reason": o.reason,
        }}),
        EngineResponse::Transition(o) => json!({"transition": {
            "case": o.case, "opened": o.opened,
        }}),
        EngineResponse::Tick(_) => Value::Null,
    }
}

fn decode_response(v: &Value) -> Result<EngineResponse, String> {
    let case = |v: &Value| serde_json::from_value::<Case>(v.clone()).map_err(|e| e.to_string());
    if let Some(o) = v.get("intake") {
        return Ok(EngineResponse::Intake(IntakeOutcome {
            report_id: o["report_id"].as_i64().ok_or("no report id")?,
            case: case(&o["case"])?,
            merged: o["merged"].as_bool().unwrap_or(false),
            reason: o["reason"].as_str().unwrap_or("").to_string(),
        }));
    }
    let o = v
        .get("transition")
        .ok_or("neither an intake nor a transition")?;
    Ok(EngineResponse::Transition(TransitionOutcome {
        case: case(&o["case"])?,
        opened: match &o["opened"] {
            Value::Null => None,
            c => Some(Box::new(case(c)?)),
        },
    }))
}

/// The most a step's time (in its signed body) may be off the receiving node's clock:
/// twice the clock-skew bound (two nodes each within it of the database's clock), and
/// the time a step may be tried. A step older is refused: a captured step is never
/// taken again later.
pub const STEP_MAX_AGE_MS: i64 =
    2 * crate::http::node::MAX_CLOCK_SKEW_MS + STEP_WITHIN.as_millis() as i64;

/// Why a step's time is refused, if it is (`at` from its signed body, `now` here).
fn stale(at: Option<i64>, now: i64) -> Option<String> {
    let Some(at) = at else {
        return Some("the engine step carries no time (\"at\")".to_string());
    };
    let off = now - at;
    (off.abs() > STEP_MAX_AGE_MS).then(|| {
        format!(
            "the engine step is stale: signed {} s {} this node's clock, beyond the {} s a step may be off (a step is never taken late — it may be a replay)",
            (off.abs() + 500) / 1000,
            if off > 0 { "before" } else { "ahead of" },
            STEP_MAX_AGE_MS / 1000
        )
    })
}

fn tag(st: &AppState, node: &str, body: &[u8]) -> String {
    st.0.key.tag_full(&format!(
        "engine-step|{node}|{}",
        String::from_utf8_lossy(body)
    ))
}

/// Sends the engine step `req` to the node holding `partition` and answers its answer
/// (see the module's text); tried again, with the same step key, while the owner cannot
/// be reached or is moving.
pub async fn on_owner(
    st: &AppState,
    partition: &str,
    req: Request,
) -> Result<EngineResponse, ApiError> {
    let Some(me) = st.0.cluster.get().cloned() else {
        return Err(ApiError::internal(
            "an engine step sent on outside a cluster",
        ));
    };
    let key = step_key(st, &req)?;
    let body = json!({"key": key, "at": st.now(), "request": encode_request(&req)}).to_string();
    let body = Bytes::from(body);
    let mut headers = HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        "application/json".parse().expect("header"),
    );
    headers.insert(NODE, me.node.parse().map_err(ApiError::internal)?);
    headers.insert(
        TAG,
        tag(st, &me.node, &body)
            .parse()
            .map_err(ApiError::internal)?,
    );
    let mut sent = false;
    let mut timed_out = false;
    let mut last = String::new();
    // One deadline for the whole step (room locks may be held meanwhile).
    let deadline = tokio::time::Instant::now() + STEP_WITHIN;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            let pause = Duration::from_millis(100 * u64::from(attempt));
            if tokio::time::Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        // A store that cannot be read is a failed attempt like any other: the answer
        // still says whether an earlier attempt was sent.
        let leases = match tokio::time::timeout(left, st.0.reads.run(|s| s.leases())).await {
            Ok(Ok(Ok(l))) => l,
            Ok(Ok(Err(e))) => {
                last = format!("the leases could not be read: {e}");
                continue;
            }
            Ok(Err(e)) => {
                last = format!("the leases could not be read: {}", e.detail);
                continue;
            }
            Err(_) => {
                last = "the leases could not be read in time".to_string();
                break;
            }
        };
        let Some(owner) = leases
            .into_iter()
            .find(|l| l.partition == partition && l.remaining_ms > 0)
        else {
            last = format!("no node holds partition {partition:?} at the moment");
            continue;
        };
        if owner.owner == me.node {
            // The partition came here meanwhile: the step runs here, under its key.
            match run_step(st, key.clone(), into_inner(req.clone())).await {
                Ok(r) => return Ok(remember(st, &req, r).await),
                Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
                    last = e.detail;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let uri = PATH.parse().expect("path");
        match crate::http::node::send_within(
            &owner.address,
            Method::POST,
            uri,
            headers.clone(),
            &me.node,
            body.clone(),
            left,
            STEP_ANSWER_CAP,
        )
        .await
        {
            Ok(r) => {
                let status = r.status();
                // `send_within` took the whole body already.
                let bytes = r
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if status == StatusCode::OK {
                    match decode_response(&v) {
                        Ok(answer) => {
                            crate::http::log::event(
                                "engine_step_on_owner",
                                &[("partition", &partition), ("owner", &owner.owner)],
                            );
                            return Ok(remember(st, &req, answer).await);
                        }
                        Err(e) => {
                            // Applied there, but its answer is unreadable here.
                            sent = true;
                            last = format!("the owner's answer is unreadable: {e}");
                            break;
                        }
                    }
                }
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    // Moving, or the owner's store away: nothing written there, again.
                    last = v["detail"].as_str().unwrap_or("unavailable").to_string();
                    continue;
                }
                if let Some(e) = workflow_problem(status, &v) {
                    return Err(e);
                }
                // Refused or broken there (403, a missing route, 413, 5xx): not a
                // workflow answer to pass on; whether anything was written is unknown.
                sent = true;
                last = format!(
                    "the owner answered {status}: {}",
                    v["detail"].as_str().unwrap_or("")
                );
                break;
            }
            Err(e) => {
                sent |= e.was_sent();
                last = e.to_string();
                if matches!(e, crate::http::node::SendError::TimedOut(_)) {
                    // A hung owner: tried again once at most.
                    if timed_out {
                        break;
                    }
                    timed_out = true;
                }
            }
        }
    }
    crate::http::log::event(
        "engine_step_failed",
        &[("partition", &partition), ("sent", &sent), ("error", &last)],
    );
    Err(if sent {
        ApiError::new(
            Problem::OutcomeUnknown,
            format!("part of this request was applied on this node; its step for partition {partition:?} was passed on to the node holding it, but no answer came back: it may or may not have been applied — check before sending the request again (one with an Idempotency-Key may be sent again safely)"),
        )
    } else {
        ApiError::new(
            Problem::Unavailable,
            format!("part of this request was applied on this node; its step for partition {partition:?} could not reach the node holding it ({last}) and was not applied — try again shortly (a request with an Idempotency-Key may be sent again safely)"),
        )
        .retry_after(1)
    })
}

/// The owner's refusal of the step itself — a workflow answer (400, 404, 409, 422 with a
/// code this service knows) — as the caller answers it (same code and detail); anything
/// else is no answer about the step (`None`).
fn workflow_problem(status: StatusCode, v: &Value) -> Option<ApiError> {
    if !matches!(status.as_u16(), 400 | 404 | 409 | 422) {
        return None;
    }
    let code = v["code"].as_str()?;
    if code == Problem::NoSuchEndpoint.code() {
        // The owner has no such route (another version): no answer about the step.
        return None;
    }
    let p = Problem::ALL
        .iter()
        .copied()
        .find(|p| p.code() == code && p.status() == status)?;
    let mut e = ApiError::new(p, v["detail"].as_str().unwrap_or("").to_string());
    if let Some(r) = v["problems"].as_array() {
        e = e.with_problems(
            r.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
        );
    }
    Some(e)
}

/// `POST /cluster/v1/engine`, on the owner: runs another node's engine step here, once
/// per step key (its recorded answer otherwise).
pub async fn serve(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let good = match (get(NODE), get(TAG)) {
        (Some(node), Some(t)) => crate::cases::same(t.as_bytes(), tag(&st, node, &body).as_bytes()),
        _ => false,
    };
    if st.0.cluster.get().is_none() || !good {
        return ApiError::new(
            Problem::Forbidden,
            "only another node of this cluster may send engine steps (its tag does not match this node's token key)",
        )
        .into_response();
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return ApiError::new(Problem::InvalidJson, e.to_string()).into_response(),
    };
    if let Some(why) = stale(v["at"].as_i64(), st.now()) {
        crate::http::log::event("engine_step_stale", &[("detail", &why)]);
        return ApiError::new(Problem::Forbidden, why).into_response();
    }
    let key = v["key"].as_str().unwrap_or("").to_string();
    let req = match decode_request(&v["request"]) {
        Ok(r) if key.starts_with(STEP_PREFIX) => r,
        Ok(_) => {
            return ApiError::new(Problem::InvalidArgument, "an engine step needs its key")
                .into_response()
        }
        Err(e) => return ApiError::new(Problem::InvalidArgument, e).into_response(),
    };
    match run_step(&st, key, req).await {
        Ok(r) => answer(encode_response(&r).to_string()),
        Err(e) => e.into_response(),
    }
}

/// Runs a step on this node, once per step key (its recorded answer otherwise), never
/// sending it on.
async fn run_step(st: &AppState, key: String, req: Request) -> Result<EngineResponse, ApiError> {
    let lock = st.idem_lock(&key);
    let _guard = lock.lock().await;
    let k2 = key.clone();
    if let Some(a) = st.0.reads.run(move |s| s.idempotent(&k2)).await?? {
        let v: Value = serde_json::from_str(&a.body).map_err(ApiError::internal)?;
        return decode_response(&v).map_err(ApiError::internal);
    }
    let keyed = Request::Keyed {
        request: Box::new(req),
        key: IdempotencyKey {
            key,
            request_hash: String::new(),
            created_at: st.now(),
            render: std::sync::Arc::new(|r: &EngineResponse| (200, encode_response(r).to_string())),
        },
    };
    let r = crate::cases::submit(st, keyed).await??;
    crate::http::node::mark_effect();
    Ok(r)
}

fn answer(body: String) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step's request and answer cross between nodes whole.
    #[test]
    fn steps_cross_whole() {
        let actor = Actor {
            id: "zhang".into(),
            role: cityos_core::Role::DistrictOfficer,
            department: None,
            scope: Some("310104003".into()),
        };
        let mut c = Command::new(Action::Acknowledge, actor);
        c.note = "到场".into();
        c.attachments = vec!["/media/a.jpg".into()];
        c.expected_version = Some(3);
        let r = Request::Transition {
            case: 42,
            command: c.clone(),
            now: 1_700_000_000_000,
        };
        let back = decode_request(&encode_request(&r)).unwrap();
        match back {
            Request::Transition { case, command, now } => {
                assert_eq!((case, now), (42, 1_700_000_000_000));
                assert_eq!(command, c);
            }
            other => panic!("{other:?}"),
        }
        assert!(decode_request(&json!({"tick": 1})).is_err());
    }

    /// A step signed too long ago (or too far ahead) is refused, by how much and why.
    #[test]
    fn a_stale_step_is_named() {
        let now = 1_800_000_000_000;
        assert!(stale(Some(now - STEP_MAX_AGE_MS), now).is_none());
        assert!(stale(Some(now + 2_000), now).is_none());
        let e = stale(Some(now - 120_000), now).unwrap();
        assert!(e.contains("stale: signed 120 s before"), "{e}");
        let e = stale(Some(now + 100_000), now).unwrap();
        assert!(e.contains("100 s ahead of"), "{e}");
        assert!(stale(None, now).unwrap().contains("no time"));
    }

    /// Only the owner's workflow answers about the step are passed on; a refusal of the
    /// call itself (403, a missing route, 413, 5xx) is no answer about the step.
    #[test]
    fn only_workflow_problems_are_passed_on() {
        let body = |p: Problem| json!({"code": p.code(), "detail": "因为"});
        for p in [
            Problem::VersionConflict,
            Problem::TransitionNotAllowed,
            Problem::NotFound,
        ] {
            let e = workflow_problem(p.status(), &body(p)).expect("passed on");
            assert_eq!((e.status, e.code), (p.status(), p.code()));
            assert_eq!(e.detail, "因为");
        }
        for p in [
            Problem::Forbidden,
            Problem::NoSuchEndpoint,
            Problem::PayloadTooLarge,
            Problem::Internal,
            Problem::Unavailable,
        ] {
            assert!(workflow_problem(p.status(), &body(p)).is_none(), "{p:?}");
        }
        // A 404 without a code of ours (a route missing in front of the service), or a
        // code under another status: not passed on.
        assert!(workflow_problem(StatusCode::NOT_FOUND, &Value::Null).is_none());
        assert!(workflow_problem(StatusCode::CONFLICT, &body(Problem::NotFound)).is_none());
    }
}
