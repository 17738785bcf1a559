//! Several nodes (issue 20): an engine step for a partition another node holds reaches
//! that node. A request the engine refuses whole (`EngineError::NotOwner` before anything
//! changed here) is still sent on whole by the forwarding layer (`runtime::cluster`); but
//! a request that has already changed something here (readings applied, a room's rows
//! written — `http::node::mark_effect`) or work outside any request (background jobs, a
//! readings batch's task) hands just the engine step — file a report, act on a case — to
//! the owner over `POST /cluster/v1/engine` and goes on with the owner's answer.
//!
//! The call is authenticated like forwarding: a tag over the node's name and the body,
//! keyed with the token key the nodes share. Each step carries an idempotency key of its
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
/// under way: about 3 s in all).
const ATTEMPTS: u32 = 8;

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

fn tag(st: &AppState, node: &str, body: &[u8]) -> String {
    st.0.key.tag(&format!(
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
    let body = json!({"key": key, "request": encode_request(&req)}).to_string();
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
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        let leases = st.0.reads.run(|s| s.leases()).await??;
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
                Ok(r) => return Ok(r),
                Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
                    last = e.detail;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let uri = PATH.parse().expect("path");
        match crate::http::node::send(
            &owner.address,
            Method::POST,
            uri,
            headers.clone(),
            &me.node,
            body.clone(),
        )
        .await
        {
            Ok(r) => {
                let status = r.status();
                let bytes = r
                    .into_body()
                    .collect()
                    .await
                    .map_err(ApiError::internal)?
                    .to_bytes();
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if status == StatusCode::OK {
                    crate::http::log::event(
                        "engine_step_on_owner",
                        &[("partition", &partition), ("owner", &owner.owner)],
                    );
                    return decode_response(&v).map_err(ApiError::internal);
                }
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    // Moving, or the owner's store away: nothing written there, again.
                    last = v["detail"].as_str().unwrap_or("unavailable").to_string();
                    continue;
                }
                return Err(problem(status, &v));
            }
            Err(e) => {
                sent |= e.was_sent();
                last = e.to_string();
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

/// The owner's refusal, as the caller answers it (same code and detail).
fn problem(status: StatusCode, v: &Value) -> ApiError {
    let code = v["code"].as_str().unwrap_or("");
    let p = Problem::ALL
        .iter()
        .copied()
        .find(|p| p.code() == code && p.status() == status)
        .unwrap_or(Problem::Internal);
    let mut e = ApiError::new(p, v["detail"].as_str().unwrap_or("").to_string());
    if let Some(r) = v["problems"].as_array() {
        e = e.with_problems(
            r.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
        );
    }
    e
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
}
