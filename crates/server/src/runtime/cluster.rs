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
//! Reads (GET) are served by every node from the shared store and never forwarded.

use crate::http::error::NotOwner;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::Response;
use cityos_engine::engine::Partitioning;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// The default lease time: a stopped node's partitions move within about 4 s.
pub const DEFAULT_TTL_MS: i64 = 3_000;

/// What the running service knows of its cluster (set once, at start).
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub node: String,
    pub address: String,
}

/// The header a forwarded request carries (the forwarding node's name).
pub const FORWARDED_BY: &str = "cityos-forwarded-by";
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
/// address); a bad or missing tag loses the forwarding headers (an ordinary request).
fn accept_forwarded(st: &AppState, req: &mut Request) {
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
    } else {
        for n in [FORWARDED_BY, FORWARDED_FOR, FORWARD_TAG] {
            req.headers_mut().remove(n);
        }
    }
}

/// Joins the cluster: the engine drops its cache and takes its share of partitions in a
/// first lease round (an unreachable database is an error here, naming it); then a thread
/// renews every `ttl_ms / 4`. Returns the thread's stop flag and handle.
pub fn join(
    st: &AppState,
    o: &ClusterOptions,
) -> Result<(Arc<AtomicBool>, std::thread::JoinHandle<()>), String> {
    if !o.address.starts_with("http://") {
        return Err(format!(
            "the advertised address {:?} must be http://host:port (where the other nodes reach this one)",
            o.address
        ));
    }
    let _ = st.0.cluster.set(ClusterInfo {
        node: o.node.clone(),
        address: o.address.clone(),
    });
    let h = st.0.engine.clone();
    let (node, by) = (o.node.clone(), o.by);
    h.with(move |e| e.join_cluster(&node, by))
        .map_err(|e| e.to_string())?;
    let round = {
        let (h, address, ttl) = (h.clone(), o.address.clone(), o.ttl_ms);
        move || {
            let address = address.clone();
            h.with(move |e| e.lease_round(&address, ttl))
                .and_then(|r| r)
        }
    };
    let first = round().map_err(|e| format!("PostgreSQL: the first lease round failed: {e}"))?;
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
    let t = std::thread::Builder::new()
        .name("cityos-leases".into())
        .spawn(move || {
            // For the bus's work after a takeover (NATS requests, store reads).
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok();
            while !stop2.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(every));
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let now = state.0.clock.now();
                match round() {
                    Ok(ch) => {
                        state.0.loops.success("leases", now);
                        if !ch.gained.is_empty() || !ch.lost.is_empty() {
                            let lost: Vec<(String, i64)> =
                                ch.lost.iter().map(|p| (p.clone(), 0)).collect();
                            crate::http::log::event(
                                "partitions_moved",
                                &[
                                    ("node", &node),
                                    ("gained", &partition_list(&ch.gained)),
                                    ("lost", &partition_list(&lost)),
                                    ("held", &ch.held.len()),
                                ],
                            );
                        }
                        if !ch.gained.is_empty() {
                            let gained: Vec<String> =
                                ch.gained.iter().map(|(p, _)| p.clone()).collect();
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

fn partition_list(v: &[(String, i64)]) -> String {
    v.iter()
        .map(|(p, _)| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The forwarding layer (see the module's text).
pub async fn forward(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(me) = st.0.cluster.get().cloned() else {
        return next.run(req).await;
    };
    if req.headers().contains_key(FORWARDED_BY) {
        accept_forwarded(&st, &mut req);
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(FORWARDED_BY)
    {
        return next.run(req).await;
    }
    let limit = crate::runtime::router::body_limit(req.uri().path());
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        // Too large (or broken): the inner layers answer it as they would.
        Err(_) => return next.run(Request::from_parts(parts, Body::empty())).await,
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
    let answer = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    let Some(NotOwner(partition)) = answer.extensions().get::<NotOwner>().cloned() else {
        return answer;
    };
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
    match send(&owner.address, method, uri, headers, &me.node, bytes).await {
        Ok(r) => r,
        Err(e) => {
            crate::http::log::event(
                "forward_failed",
                &[
                    ("partition", &partition),
                    ("owner", &owner.owner),
                    ("error", &e),
                ],
            );
            answer
        }
    }
}

/// Sends one request to another node over HTTP/1.1 and takes its whole answer.
async fn send(
    address: &str,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    me: &str,
    body: axum::body::Bytes,
) -> Result<Response, String> {
    let host = address
        .strip_prefix("http://")
        .ok_or("not an http:// address")?
        .trim_end_matches('/')
        .to_string();
    let stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(host.as_str()),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    headers.insert(
        FORWARDED_BY,
        me.parse().map_err(|_| "node name is not a header value")?,
    );
    headers.remove(axum::http::header::CONNECTION);
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .body(http_body_util::Full::new(body))
        .map_err(|e| e.to_string())?;
    *req.headers_mut() = headers;
    let resp = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .map_err(|_| "the owner did not answer in 30 s".to_string())?
        .map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
