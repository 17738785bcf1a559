//! What the request being served and the background jobs need to know of several nodes
//! (issue 20), kept on the lowest layer so that rooms may ask it: whether this node runs
//! the background jobs, and whether the request has already changed something here (the
//! forwarding layer, `runtime::cluster`, never sends such a request on to another node).

use crate::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The header a forwarded request carries (the forwarding node's name).
pub const FORWARDED_BY: &str = "cityos-forwarded-by";

/// What the running service knows of its cluster (set once, at start).
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub node: String,
    pub address: String,
    /// Whether this node holds the singleton lease (`cityos_engine::engine::SINGLETON`)
    /// and so runs the background jobs; set by the lease thread.
    pub singleton: Arc<AtomicBool>,
    /// Counts the times this node gained the singleton lease (see [`singleton_gained`]).
    pub gained: Arc<std::sync::atomic::AtomicU64>,
    /// The epoch of the singleton lease while this node holds it (it rises at every
    /// takeover, so a holder that lost the lease and took it back sees a new one); set with
    /// `singleton`. The meals room reads its book from the store again when it changes.
    pub singleton_epoch: Arc<AtomicI64>,
    /// How far this node's clock is ahead of the database's (negative: behind; within
    /// [`MAX_CLOCK_SKEW_MS`] at join), measured at join and again every
    /// `runtime::cluster::SKEW_EVERY` by the lease thread. The MQTT bridge hands readings
    /// in with the time it heard them on the database's clock, so that the nodes' ids and
    /// copies agree however their own clocks differ.
    pub skew_ms: Arc<AtomicI64>,
}

/// Whether the background jobs run on this node: always alone, in a cluster only on the
/// holder of the singleton lease (see `runtime::tickers`).
pub fn runs_jobs(st: &AppState) -> bool {
    st.0.cluster
        .get()
        .is_none_or(|c| c.singleton.load(Ordering::SeqCst))
}

tokio::task_local! {
    /// Set while the forwarding layer runs a request here: whether it already changed
    /// something (an engine request committed, readings applied). A request that did is
    /// never sent on to another node — that would apply its first part twice.
    pub(crate) static EFFECTS: Arc<AtomicBool>;
}

/// The request being served has changed something on this node (no-op outside the
/// forwarding layer, e.g. with one node or in background jobs).
pub fn mark_effect() {
    let _ = EFFECTS.try_with(|e| e.store(true, Ordering::SeqCst));
}

/// The current request's marker, for work it hands to a task of its own (a spawned task
/// does not inherit it).
pub fn effects() -> Option<Arc<AtomicBool>> {
    EFFECTS.try_with(|e| e.clone()).ok()
}

/// Why a forward failed: before the request left this node (the owner never saw it) or
/// after (it may have been applied).
#[derive(Debug)]
pub enum SendError {
    NotSent(String),
    Sent(String),
    /// Sent, and no whole answer came within the time given (the owner may be hung).
    TimedOut(String),
}

impl SendError {
    pub fn was_sent(&self) -> bool {
        matches!(self, SendError::Sent(_) | SendError::TimedOut(_))
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotSent(e) => write!(f, "not sent: {e}"),
            SendError::Sent(e) | SendError::TimedOut(e) => write!(f, "sent, no answer: {e}"),
        }
    }
}

/// The most a forwarded request's answer may take (headers and body) once sent.
pub const FORWARD_ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// The largest answer body a forward takes from the owner.
pub const FORWARD_ANSWER_CAP: usize = 16 << 20;

/// Sends one request to another node over HTTP/1.1 and takes its whole answer (a
/// forward: [`FORWARD_ANSWER_WITHIN`], [`FORWARD_ANSWER_CAP`]).
pub async fn send(
    address: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    me: &str,
    body: axum::body::Bytes,
) -> Result<Response, SendError> {
    send_within(
        address,
        method,
        uri,
        headers,
        me,
        body,
        FORWARD_ANSWER_WITHIN,
        FORWARD_ANSWER_CAP,
    )
    .await
}

/// Sends one request to another node and takes its whole answer — connected within
/// `within` (at most 2 s), the answer's headers and body within `within` in all, the body
/// at most `cap` bytes (beyond either: [`SendError::TimedOut`] / [`SendError::Sent`]).
#[allow(clippy::too_many_arguments)]
pub async fn send_within(
    address: &str,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    me: &str,
    body: axum::body::Bytes,
    within: Duration,
    cap: usize,
) -> Result<Response, SendError> {
    let started = tokio::time::Instant::now();
    let not_sent = SendError::NotSent;
    let host = address
        .strip_prefix("http://")
        .ok_or_else(|| not_sent("not an http:// address".into()))?
        .trim_end_matches('/')
        .to_string();
    let stream = tokio::time::timeout(
        within.min(Duration::from_secs(2)),
        tokio::net::TcpStream::connect(host.as_str()),
    )
    .await
    .map_err(|_| not_sent("connect timed out".to_string()))?
    .map_err(|e| not_sent(e.to_string()))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| not_sent(e.to_string()))?;
    tokio::spawn(conn);
    headers.insert(
        FORWARDED_BY,
        me.parse()
            .map_err(|_| not_sent("node name is not a header value".into()))?,
    );
    headers.remove(axum::http::header::CONNECTION);
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .body(http_body_util::Full::new(body))
        .map_err(|e| not_sent(e.to_string()))?;
    *req.headers_mut() = headers;
    // From here on the owner may have the request (whole or in part): any failure is an
    // unknown outcome, never "nothing was written".
    let left = within.saturating_sub(started.elapsed());
    let whole = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| SendError::Sent(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let bytes = http_body_util::Limited::new(body, cap)
            .collect()
            .await
            .map_err(|e| {
                SendError::Sent(
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        format!("the owner's answer is larger than {cap} bytes")
                    } else {
                        e.to_string()
                    },
                )
            })?
            .to_bytes();
        Ok(Response::from_parts(parts, Body::from(bytes)))
    };
    tokio::time::timeout(left, whole).await.map_err(|_| {
        SendError::TimedOut(format!(
            "the owner did not answer whole within {} ms",
            within.as_millis()
        ))
    })?
}

/// Several nodes with NATS (issue 20): the work queue every node's MQTT bridge hands its
/// readings to, so that the holder of the singleton lease applies each once, wherever it
/// was heard (`runtime::readings`). A room sees only this.
pub trait ReadingsQueue: Send + Sync {
    /// Hands messages to the queue and answers once the stream holds them (a message
    /// another node already handed in is taken once) with how many the stream refused
    /// (dropped: sending them again would be refused again); `Err` only when the
    /// connection failed (worth trying again). `heard`: when the bridge heard the batch
    /// (carried beside each message, outside its id; the id of a message that is not
    /// [`Heard::timed`] holds its second).
    fn publish<'a>(
        &'a self,
        batch: Vec<Heard>,
        heard: cityos_core::time::Millis,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + 'a>>;
}

/// One message a bridge heard, for the [`ReadingsQueue`].
#[derive(Clone, Debug)]
pub struct Heard {
    /// As in the MQTT topic after the prefix, e.g. `readings/WL-001`.
    pub route: String,
    pub payload: axum::body::Bytes,
    /// Whether every reading it holds names its own time
    /// (`intake::sensor::mqtt::names_its_times`): then the same route and payload is the
    /// same reading whenever it is heard; otherwise a device's repeat of it (a steady
    /// sensor) is a reading of its own.
    pub timed: bool,
}

/// The readings work queue, when this node has one (several nodes on NATS).
pub fn readings_queue(st: &AppState) -> Option<Arc<dyn ReadingsQueue>> {
    st.0.readings_queue.get().cloned()
}

/// How many times this node has gained the singleton lease (0 alone): a room whose state
/// only the holder keeps in memory rebuilds it from the store when this moves.
pub fn singleton_gained(st: &AppState) -> u64 {
    st.0.cluster
        .get()
        .map_or(0, |c| c.gained.load(Ordering::SeqCst))
}

/// The epoch of the singleton lease this node holds, when it holds it; `None` alone (one
/// node, which always runs the jobs) — see [`ClusterInfo::singleton_epoch`].
pub fn singleton_epoch(st: &AppState) -> Option<Option<i64>> {
    st.0.cluster.get().map(|c| {
        c.singleton
            .load(Ordering::SeqCst)
            .then(|| c.singleton_epoch.load(Ordering::SeqCst))
    })
}

/// The most a node's clock may be off the database's (PostgreSQL's `clock_timestamp()`)
/// to join: leases never read a node's clock, but the times it stamps (case log entries,
/// deadlines, escalations of the partitions it holds) are off by its skew.
pub const MAX_CLOCK_SKEW_MS: i64 = 30_000;

/// How long an MQTT bridge tries to hand a batch of readings to the work queue
/// (`runtime::readings::RETRY_FOR`, where the reason is): the queue's duplicate window
/// less two minutes.
pub const READINGS_RETRY_FOR: Duration = Duration::from_secs(600 - 120);

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A peer that reads the request and then answers `head` (and never closes).
    async fn peer(head: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        addr
    }

    fn go(addr: &str, within: Duration, cap: usize) -> Result<Response, SendError> {
        let addr = addr.to_string();
        rt().block_on(async move {
            send_within(
                &addr,
                Method::POST,
                "/x".parse().unwrap(),
                HeaderMap::new(),
                "n1",
                axum::body::Bytes::from_static(b"{}"),
                within,
                cap,
            )
            .await
        })
    }

    /// A hung owner — silent, or silent after its headers — costs the time given, not
    /// more, and is an unknown outcome; an answer beyond the cap is refused.
    #[test]
    fn a_hung_or_oversized_answer_is_bounded() {
        // The peers must live on a runtime that keeps running: one thread for them all.
        let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n".to_vec();
        answer.extend([b'x'; 5000]);
        let big: &'static [u8] = Box::leak(answer.into_boxed_slice());
        let peers = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let addrs = rt.block_on(async {
                vec![
                    peer(b"").await,
                    peer(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{").await,
                    peer(big).await,
                ]
            });
            (rt, addrs)
        })
        .join()
        .unwrap();
        let (_rt, addrs) = peers;
        for a in &addrs[..2] {
            let t = std::time::Instant::now();
            let e = go(a, Duration::from_millis(400), 1 << 20).unwrap_err();
            assert!(matches!(e, SendError::TimedOut(_)), "{e}");
            assert!(e.was_sent());
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        }
        let e = go(&addrs[2], Duration::from_secs(5), 1000).unwrap_err();
        assert!(e.was_sent());
        assert!(e.to_string().contains("larger than 1000 bytes"), "{e}");
    }
}
