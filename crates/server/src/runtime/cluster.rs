//! Several nodes (issue 20): the lease loop and the forwarding layer.
//!
//! `join` makes this node's engine own only the partitions it holds leases for (see
//! `cityos_engine::engine::Engine::lease_round`) and runs a lease round between batches
//! every quarter of the lease time. `forward` is the outermost layer of the router: a
//! request the engine refused because another node holds its partition
//! (`EngineError::NotOwner`, carried on the answer as `http::error::NotOwner`) is sent,
//! as it came (method, path, headers, body), to the owner's advertised address and the
//! owner's answer returned. Any node therefore takes any request; a client needs to know
//! one address. A request is forwarded at most once (`cityos-forwarded-by`), so two nodes
//! that disagree during a takeover answer 503 with `Retry-After` instead of looping.
//! Reads (GET) are served by every node from the shared store and never forwarded — except
//! the meals room's (`/api/v1/meals/…`, and a citizen's `/ui/meals.html`, whose first
//! screen comes from it), whose book the holder of the singleton lease keeps in memory:
//! every other node answers them `NotOwner(SINGLETON)` too, so they go to the holder like
//! its writes. The page, sent to the owner but never answered, is this node's own (plain)
//! page.

use crate::http::error::{ApiError, NotOwner};
use crate::http::problems::Problem;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use cityos_engine::engine::Partitioning;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http::node::EFFECTS;
pub use crate::http::node::{effects, mark_effect, runs_jobs, send, ClusterInfo, SendError};

/// How a node joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This node's name (unique in the cluster).
    pub node: String,
    /// Where the other nodes send this node's requests: `http://host:port`.
    pub address: String,
    pub by: Partitioning,
    /// How long a lease lasts without renewal (a stopped node's partitions are taken over
    /// after this, plus at most a quarter of it).
    pub ttl_ms: i64,
}

/// How often the lease thread measures the node's clock against the database's again.
pub const SKEW_EVERY: Duration = Duration::from_secs(60);

/// The default lease time: a stopped node's partitions move within about 4 s.
pub const DEFAULT_TTL_MS: i64 = 3_000;

/// Sets whether this node holds the singleton lease, and at which epoch (the epoch first,
/// so whoever sees the flag set sees the epoch it was set with), counting each gain (the
/// sensor room rebuilds its alarm state from the store then:
/// `http::node::singleton_gained`). A gain is the flag going from unset to set, or the
/// epoch changing while it stays set: a holder paused past its lease that wins it again
/// within one round holds it at a new epoch, and another node may have held it between.
fn set_singleton(
    flag: &AtomicBool,
    gained: &std::sync::atomic::AtomicU64,
    epoch: &AtomicI64,
    held: &[(String, i64)],
) {
    let before = epoch.load(Ordering::SeqCst);
    let mut moved = false;
    if let Some((_, e)) = held
        .iter()
        .find(|(p, _)| p == cityos_engine::engine::SINGLETON)
    {
        moved = *e != before;
        epoch.store(*e, Ordering::SeqCst);
    }
    let holds = holds_singleton(held);
    if holds && (!flag.load(Ordering::SeqCst) || moved) {
        gained.fetch_add(1, Ordering::SeqCst);
    }
    flag.store(holds, Ordering::SeqCst);
}

fn holds_singleton(held: &[(String, i64)]) -> bool {
    held.iter()
        .any(|(p, _)| p == cityos_engine::engine::SINGLETON)
}

pub use crate::http::node::FORWARDED_BY;
/// The address of the client the forwarding node was talking to, and a tag over both
/// keyed with the token key (the nodes share it), so that the owner counts the client's
/// address — not the forwarding node's — in its per-address limits, and nobody else can
/// claim an address this way.
pub const FORWARDED_FOR: &str = "cityos-forwarded-for";
pub const FORWARD_TAG: &str = "cityos-forward-tag";

fn forward_tag(st: &AppState, node: &str, peer: &str, method: &Method, uri: &Uri) -> String {
    st.0.key
        .tag(&format!("forward|{node}|{peer}|{method}|{uri}"))
}

/// On the owner: a forwarded request with a good tag is the original client's (its
/// address); `false` for a bad or missing tag (the caller refuses it).
fn accept_forwarded(st: &AppState, req: &mut Request) -> bool {
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (by, peer, tag) = (get(FORWARDED_BY), get(FORWARDED_FOR), get(FORWARD_TAG));
    let good = match (&by, &peer, &tag) {
        (Some(b), Some(p), Some(t)) => crate::cases::same(
            t.as_bytes(),
            forward_tag(st, b, p, req.method(), req.uri()).as_bytes(),
        ),
        _ => false,
    };
    if good {
        if let Some(ip) = peer.and_then(|p| p.parse::<std::net::IpAddr>().ok()) {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip, 0)));
        }
    }
    good
}

/// Joins the cluster: the engine drops its cache and takes its share of partitions in a
/// first lease round (an unreachable database is an error here, naming it); then a thread
/// renews every `ttl_ms / 4`. Returns the thread's stop flag and handle.
pub fn join(
    st: &AppState,
    o: &ClusterOptions,
    mut store: Box<dyn cityos_engine::Store>,
) -> Result<(Arc<AtomicBool>, std::thread::JoinHandle<()>), String> {
    if !o.address.starts_with("http://") {
        return Err(format!(
            "the advertised address {:?} must be http://host:port (where the other nodes reach this one)",
            o.address
        ));
    }
    // A node whose clock is too far off is refused before it writes anything (its
    // settings row among them).
    let skew_ms = Arc::new(AtomicI64::new(check_skew(st, store.as_mut())?));
    // Every node must cut the district the same way and share the token key (tokens and
    // forward tags are signed with it): a node joining live nodes with others is refused.
    let mine = settings(st, o.by);
    match store.join_settings(&o.node, &mine, o.ttl_ms) {
        Ok(Ok(())) => {}
        Ok(Err(theirs)) => return Err(settings_differ(&mine, &theirs)),
        Err(e) => {
            return Err(format!(
                "PostgreSQL: cannot check the cluster's settings: {e}"
            ))
        }
    }
    let singleton = Arc::new(AtomicBool::new(false));
    let gained_singleton = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let singleton_epoch = Arc::new(AtomicI64::new(0));
    let _ = st.0.cluster.set(ClusterInfo {
        node: o.node.clone(),
        address: o.address.clone(),
        singleton: singleton.clone(),
        gained: gained_singleton.clone(),
        singleton_epoch: singleton_epoch.clone(),
        skew_ms: skew_ms.clone(),
    });
    let h = st.0.engine.clone();
    let (node, by) = (o.node.clone(), o.by);
    h.with(move |e| e.join_cluster(&node, by))
        .map_err(|e| e.to_string())?;
    // The first round runs on the engine (its partitions' cases loaded before the node
    // serves); the later ones on the lease thread's own connection.
    let first = {
        let address = o.address.clone();
        let ttl = o.ttl_ms;
        h.with(move |e| e.lease_round(&address, ttl))
            .and_then(|r| r)
            .map_err(|e| format!("PostgreSQL: the first lease round failed: {e}"))?
    };
    let parts = h.with(|e| e.partitions()).map_err(|e| e.to_string())?;
    set_singleton(&singleton, &gained_singleton, &singleton_epoch, &first.held);
    crate::http::log::event(
        "partitions_held",
        &[
            ("node", &o.node),
            ("held", &first.held.len()),
            ("partitions", &partition_list(&first.held)),
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let (state, node, every) = (st.clone(), o.node.clone(), (o.ttl_ms / 4).max(100) as u64);
    let (address, ttl) = (o.address.clone(), o.ttl_ms);
    let singleton = singleton.clone();
    let t = std::thread::Builder::new()
        .name("cityos-leases".into())
        .spawn(move || {
            // For the bus's work after a takeover (NATS requests, store reads).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok();
            // What the database says this node holds (renewed at those epochs): the lease
            // thread renews on its own connection, so a busy engine queue never makes a
            // node lose its own leases; the engine is handed the result between batches.
            let mut held = first.held;
            let mut skew_at = std::time::Instant::now();
            while !stop2.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(every));
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                // The clock's skew again now and then (a node's clock set right by NTP
                // after it joined): the bridge's times follow it.
                if skew_at.elapsed() >= SKEW_EVERY {
                    skew_at = std::time::Instant::now();
                    let before = state.0.clock.now();
                    if let Ok(Some(db)) = store.database_now_ms() {
                        let skew = skew_of(before, state.0.clock.now(), db);
                        skew_ms.store(skew, Ordering::Relaxed);
                    }
                }
                let now = state.0.clock.now();
                let round = cityos_engine::store::LeaseRound {
                    node: &node,
                    address: &address,
                    partitions: &parts,
                    held: &held,
                    ttl_ms: ttl,
                };
                match store.lease_round(&round) {
                    Ok(leases) => {
                        state.0.loops.success("leases", now);
                        // The partitions this round gained (their cases' recent events go
                        // on the bus again, in case the old owner died between commit and
                        // publish).
                        let gained: Vec<String> = leases
                            .iter()
                            .filter(|l| {
                                l.partition != cityos_engine::engine::SINGLETON
                                    && !held.iter().any(|(p, _)| *p == l.partition)
                            })
                            .map(|l| l.partition.clone())
                            .collect();
                        held = leases
                            .iter()
                            .map(|l| (l.partition.clone(), l.epoch))
                            .collect();
                        held.sort();
                        set_singleton(&singleton, &gained_singleton, &singleton_epoch, &held);
                        // Every round (idempotent): a hand-over the engine could not take
                        // (a full queue, a failed load) is retried at the next.
                        let node2 = node.clone();
                        let posted =
                            state
                                .0
                                .engine
                                .try_post(move |e| match e.apply_leases(leases) {
                                    Ok(ch) => {
                                        if !ch.gained.is_empty() || !ch.lost.is_empty() {
                                            let lost: Vec<(String, i64)> =
                                                ch.lost.iter().map(|p| (p.clone(), 0)).collect();
                                            crate::http::log::event(
                                                "partitions_moved",
                                                &[
                                                    ("node", &node2),
                                                    ("gained", &partition_list(&ch.gained)),
                                                    ("lost", &partition_list(&lost)),
                                                    ("held", &ch.held.len()),
                                                ],
                                            );
                                        }
                                    }
                                    Err(e) => crate::http::log::event(
                                        "partitions_load_failed",
                                        &[("node", &node2), ("error", &e)],
                                    ),
                                });
                        if let Err(e) = posted {
                            state.0.loops.error("leases", &e);
                        }
                        if !gained.is_empty() {
                            if let Some(rt) = &rt {
                                let r = rt.block_on(crate::runtime::jetstream::after_takeover(
                                    &state, &gained,
                                ));
                                match r {
                                    Ok(0) => {}
                                    Ok(n) => crate::http::log::event(
                                        "bus_takeover",
                                        &[("node", &node), ("published_again", &n)],
                                    ),
                                    Err(e) => state.0.loops.error("bus_takeover", &e),
                                }
                            }
                        }
                    }
                    Err(e) => state.0.loops.error("leases", &e),
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok((stop, t))
}

pub use crate::http::node::MAX_CLOCK_SKEW_MS;
/// Beyond this a joining node logs its skew (`clock_skew`).
const NOTED_SKEW_MS: i64 = 1_000;

/// This node's clock against the database's: refused to join beyond
/// [`MAX_CLOCK_SKEW_MS`], named in the log beyond [`NOTED_SKEW_MS`]; the skew measured.
fn check_skew(st: &AppState, store: &mut dyn cityos_engine::Store) -> Result<i64, String> {
    let before = st.0.clock.now();
    let db = store
        .database_now_ms()
        .map_err(|e| format!("PostgreSQL: cannot read the database's clock: {e}"))?;
    let Some(db) = db else {
        return Ok(0);
    };
    let after = st.0.clock.now();
    let skew = skew_of(before, after, db);
    judge_skew(skew)?;
    if skew.abs() > NOTED_SKEW_MS {
        crate::http::log::event(
            "clock_skew",
            &[("skew_ms", &skew), ("bound_ms", &MAX_CLOCK_SKEW_MS)],
        );
    }
    Ok(skew)
}

/// The node's clock minus the database's, read between `before` and `after`.
fn skew_of(before: i64, after: i64, db: i64) -> i64 {
    before + (after - before) / 2 - db
}

fn judge_skew(skew: i64) -> Result<(), String> {
    if skew.abs() > MAX_CLOCK_SKEW_MS {
        return Err(format!(
            "this node's clock is {} s {} the database's (PostgreSQL's clock, by which leases expire); a node may be at most {} s off to join — set its time (NTP) first",
            (skew.abs() + 500) / 1000,
            if skew > 0 { "ahead of" } else { "behind" },
            MAX_CLOCK_SKEW_MS / 1000
        ));
    }
    Ok(())
}

/// This node's cluster settings: the partitioning and a fingerprint of the token key (a
/// keyed tag of a fixed text: it tells whether two keys are the same, nothing of the key).
fn settings(st: &AppState, by: Partitioning) -> String {
    let fp: String =
        st.0.key
            .tag("cityos cluster key fingerprint")
            .chars()
            .take(16)
            .collect();
    format!("partition-by={};token-key={fp}", partitioning_name(by))
}

fn partitioning_name(by: Partitioning) -> &'static str {
    match by {
        Partitioning::Subdistrict => "subdistrict",
        Partitioning::District => "district",
    }
}

/// The error naming which setting differs from the running cluster's.
fn settings_differ(mine: &str, theirs: &str) -> String {
    let part = |s: &str, k: &str| {
        s.split(';')
            .find_map(|p| p.strip_prefix(k).map(str::to_string))
            .unwrap_or_default()
    };
    let mut what = Vec::new();
    let (pm, pt) = (part(mine, "partition-by="), part(theirs, "partition-by="));
    if pm != pt {
        what.push(format!(
            "--partition-by is {pm} here but {pt} on the running nodes"
        ));
    }
    if part(mine, "token-key=") != part(theirs, "token-key=") {
        what.push(
            "the token key differs from the running nodes' (every node needs the same CITYOS_TOKEN_KEY / token.key)"
                .to_string(),
        );
    }
    format!(
        "this node cannot join the cluster: {}",
        if what.is_empty() {
            format!("its settings {mine:?} differ from the cluster's {theirs:?}")
        } else {
            what.join("; ")
        }
    )
}

fn partition_list(v: &[(String, i64)]) -> String {
    v.iter()
        .map(|(p, _)| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What the forwarding layer does with an answer that says another node holds
/// `partition` (see [`forward`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Nothing was changed here: send the request, as it came, to the owner.
    Forward,
    /// Something was: answer `partly_applied`, never re-run it elsewhere.
    Partly,
}

pub fn on_not_owner(had_effects: bool) -> Refused {
    if had_effects {
        Refused::Partly
    } else {
        Refused::Forward
    }
}

/// Reads served only by the node holding their state: the meals room's book is held in
/// memory by the holder of the singleton lease, so its reads go there like its writes
/// (`meals::book` answers `NotOwner(SINGLETON)` on any other node).
fn forwards_reads(path: &str) -> bool {
    path.starts_with("/api/v1/meals/") || path == "/api/v1/meals" || path == "/ui/meals.html"
}

/// The forwarding layer (see the module's text).
pub async fn forward(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(me) = st.0.cluster.get().cloned() else {
        return next.run(req).await;
    };
    if req.uri().path() == crate::cases::remote::PATH {
        // Another node's engine step, authenticated by a tag of its own: run here only
        // (refused while this node does not hold the partition; the sender looks again).
        return next.run(req).await;
    }
    if req.headers().contains_key(FORWARDED_BY) {
        if !accept_forwarded(&st, &mut req) {
            // A bad tag is refused, never run or sent on: a node with another token key
            // (a misconfigured cluster) or someone claiming to be a node.
            return ApiError::new(
                Problem::Forbidden,
                "the request claims to be forwarded by another node, but its forward tag does not match this node's token key",
            )
            .into_response();
        }
        // Forwarded by the owner's peer: run here, never sent on again.
        return next.run(req).await;
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !forwards_reads(req.uri().path())
    {
        return next.run(req).await;
    }
    let limit = crate::runtime::router::body_limit(req.uri().path());
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return unreadable(&*e, limit).into_response(),
    };
    let (method, uri, mut headers) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let tag = forward_tag(&st, &me.node, &peer, &method, &uri);
    for (n, v) in [(FORWARDED_FOR, peer), (FORWARD_TAG, tag)] {
        if let Ok(v) = v.parse() {
            headers.insert(n, v);
        }
    }
    let fx = Arc::new(AtomicBool::new(false));
    let answer = EFFECTS
        .scope(
            fx.clone(),
            next.run(Request::from_parts(parts, Body::from(bytes.clone()))),
        )
        .await;
    let Some(NotOwner(partition)) = answer.extensions().get::<NotOwner>().cloned() else {
        return answer;
    };
    if on_not_owner(fx.load(Ordering::SeqCst)) == Refused::Partly {
        crate::http::log::event(
            "forward_refused_partly_applied",
            &[("partition", &partition), ("path", &uri.path())],
        );
        return partly_applied(&partition).into_response();
    }
    let leases = match st.0.reads.run(|s| s.leases()).await {
        Ok(Ok(l)) => l,
        _ => return answer,
    };
    let Some(owner) = leases
        .into_iter()
        .find(|l| l.partition == partition && l.remaining_ms > 0 && l.owner != me.node)
    else {
        return answer;
    };
    // The meal page: this node's own (plain) page is a fine answer when the holder's was
    // lost; an API read is not (it would send the client back at once).
    let page = uri.path() == "/ui/meals.html";
    match send(&owner.address, method, uri, headers, &me.node, bytes).await {
        Ok(r) => r,
        Err(e) => {
            crate::http::log::event(
                "forward_failed",
                &[
                    ("partition", &partition),
                    ("owner", &owner.owner),
                    ("sent", &e.was_sent()),
                    ("error", &e),
                ],
            );
            match e {
                // The owner never saw it: this node's own answer (nothing written, try again).
                SendError::NotSent(_) => answer,
                // The page changes nothing: its outcome is never in doubt.
                _ if page => answer,
                SendError::Sent(_) | SendError::TimedOut(_) => {
                    outcome_unknown(&owner.owner).into_response()
                }
            }
        }
    }
}

/// A body the forwarding layer cannot read whole: too large (413) or broken (400).
fn unreadable(e: &(dyn std::error::Error + 'static), limit: usize) -> ApiError {
    if e.downcast_ref::<http_body_util::LengthLimitError>()
        .is_some()
    {
        ApiError::new(
            Problem::PayloadTooLarge,
            format!("this endpoint takes at most {limit} bytes"),
        )
    } else {
        ApiError::new(
            Problem::UnreadableBody,
            format!("the request's body could not be read: {e}"),
        )
    }
}

/// The answer when the owner was sent the request and its answer was lost: no
/// `Retry-After` — the client must look before sending it again (a keyed one is safe).
pub fn outcome_unknown(owner: &str) -> ApiError {
    ApiError::new(
        Problem::OutcomeUnknown,
        format!("the request was passed on to node {owner:?}, which holds its partition, but no answer came back: it may or may not have been applied — check before sending it again (a request with an Idempotency-Key may be sent again safely)"),
    )
}

fn partly_applied(partition: &str) -> ApiError {
    ApiError::new(
        Problem::PartlyApplied,
        format!("part of this request was applied on this node; partition {partition:?} is held by another node, so the rest was not applied — do not send the whole request again"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn a_singleton_won_again_at_a_new_epoch_in_one_round_counts_as_a_gain() {
        let flag = AtomicBool::new(false);
        let gained = std::sync::atomic::AtomicU64::new(0);
        let epoch = AtomicI64::new(0);
        let s = |e: i64| vec![(cityos_engine::engine::SINGLETON.to_string(), e)];
        set_singleton(&flag, &gained, &epoch, &s(3));
        assert_eq!(gained.load(Ordering::SeqCst), 1);
        // Renewed at the same epoch: no gain.
        set_singleton(&flag, &gained, &epoch, &s(3));
        assert_eq!(gained.load(Ordering::SeqCst), 1);
        // Paused past the lease, another node held it (epoch 4), won back at epoch 5
        // before this node saw the flag drop: a gain.
        set_singleton(&flag, &gained, &epoch, &s(5));
        assert_eq!(gained.load(Ordering::SeqCst), 2);
        assert_eq!(epoch.load(Ordering::SeqCst), 5);
        // Lost, then gained again: a gain.
        set_singleton(&flag, &gained, &epoch, &[]);
        assert!(!flag.load(Ordering::SeqCst));
        set_singleton(&flag, &gained, &epoch, &s(6));
        assert_eq!(gained.load(Ordering::SeqCst), 3);
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn go(address: &str) -> Result<Response, SendError> {
        let uri: Uri = "/api/v1/reports".parse().unwrap();
        let body = axum::body::Bytes::from_static(b"{}");
        rt().block_on(async {
            send(address, Method::POST, uri, HeaderMap::new(), "n1", body).await
        })
    }

    /// Nobody listening: the request never left, so this node may say "nothing was
    /// written, try again".
    #[test]
    fn a_refused_connection_is_not_sent() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = go(&format!("http://127.0.0.1:{port}")).unwrap_err();
        assert!(!e.was_sent(), "{e}");
    }

    /// The owner read the request and went away without answering: the outcome is
    /// unknown (it may have been applied), answered 502 without `Retry-After`.
    #[test]
    fn an_owner_gone_after_the_request_is_an_unknown_outcome() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            use std::io::Read;
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            drop(c);
        });
        let e = go(&format!("http://{addr}")).unwrap_err();
        t.join().unwrap();
        assert!(e.was_sent(), "{e}");
        let r = outcome_unknown("n2").into_response();
        assert_eq!(r.status(), axum::http::StatusCode::BAD_GATEWAY);
        assert!(r.headers().get(axum::http::header::RETRY_AFTER).is_none());
        let body = rt().block_on(async { r.into_body().collect().await.unwrap().to_bytes() });
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "outcome_unknown");
        assert!(v["detail"].as_str().unwrap().contains("may or may not"));
    }

    /// An owner that answers: its answer is returned as it came.
    #[test]
    fn an_owner_answer_is_returned() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            c.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
        });
        let r = go(&format!("http://{addr}")).unwrap();
        t.join().unwrap();
        assert_eq!(r.status(), axum::http::StatusCode::CREATED);
    }

    /// A body the layer cannot read whole is answered, never run empty: too large 413,
    /// broken 400.
    #[test]
    fn an_unreadable_body_is_refused() {
        let too_big = rt().block_on(async {
            http_body_util::Limited::new(Body::from(vec![b'x'; 100]), 10)
                .collect()
                .await
                .unwrap_err()
        });
        let e = unreadable(&*too_big, 10);
        assert_eq!(e.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
        let broken: Box<dyn std::error::Error + Send + Sync> = "connection reset".into();
        let e = unreadable(&*broken, 10);
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "unreadable_body");
    }

    /// A node's clock within the bound joins; beyond it, it is told by how much and
    /// which way.
    #[test]
    fn a_clock_beyond_the_bound_is_named() {
        assert_eq!(skew_of(1_000, 1_010, 900), 105);
        assert!(judge_skew(MAX_CLOCK_SKEW_MS).is_ok());
        assert!(judge_skew(-MAX_CLOCK_SKEW_MS).is_ok());
        let e = judge_skew(MAX_CLOCK_SKEW_MS + 15_000).unwrap_err();
        assert!(e.contains("45 s ahead of the database's"), "{e}");
        let e = judge_skew(-31_000).unwrap_err();
        assert!(e.contains("31 s behind"), "{e}");
    }

    /// A node with other settings than the running cluster's is told which.
    #[test]
    fn differing_settings_are_named() {
        let e = settings_differ(
            "partition-by=district;token-key=aaaa",
            "partition-by=subdistrict;token-key=bbbb",
        );
        assert!(
            e.contains("--partition-by is district here but subdistrict"),
            "{e}"
        );
        assert!(e.contains("token key differs"), "{e}");
        let e = settings_differ(
            "partition-by=district;token-key=aaaa",
            "partition-by=district;token-key=bbbb",
        );
        assert!(!e.contains("partition-by"), "{e}");
        assert!(e.contains("token key differs"), "{e}");
    }

    /// A room's write through the read pool marks the request as changed (so the
    /// forwarding layer never re-runs it whole elsewhere); a read does not.
    #[test]
    fn a_rooms_write_marks_the_request() {
        let pool = Arc::new(crate::ReadPool::new(vec![Box::new(
            cityos_engine::SqliteStore::in_memory().unwrap(),
        )]));
        let (read, written) = rt().block_on(async {
            let fx = Arc::new(AtomicBool::new(false));
            EFFECTS
                .scope(fx.clone(), async {
                    pool.run(|_| ()).await.unwrap();
                    let read = fx.load(Ordering::SeqCst);
                    pool.write(|_| ()).await.unwrap();
                    (read, fx.load(Ordering::SeqCst))
                })
                .await
        });
        assert!(!read && written);
    }

    /// A request that already changed something here is never re-run on another node.
    #[test]
    fn a_request_with_effects_is_not_forwarded() {
        assert_eq!(on_not_owner(false), Refused::Forward);
        assert_eq!(on_not_owner(true), Refused::Partly);
        let seen = rt().block_on(async {
            let fx = Arc::new(AtomicBool::new(false));
            EFFECTS
                .scope(fx.clone(), async {
                    // As `cases::engine_call` does after a committed request, and as a
                    // spawned task does through `effects()`.
                    let h = effects().unwrap();
                    tokio::spawn(async move { h.store(true, Ordering::SeqCst) })
                        .await
                        .unwrap();
                })
                .await;
            fx.load(Ordering::SeqCst)
        });
        assert!(seen);
        mark_effect(); // outside a request: nothing to mark, no panic
        let r = partly_applied("310104003").into_response();
        assert_eq!(r.status(), axum::http::StatusCode::CONFLICT);
        assert!(r.headers().get(axum::http::header::RETRY_AFTER).is_none());
    }
}
