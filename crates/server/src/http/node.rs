//! What the request being served and the background jobs need to know of several nodes
//! (issue 20), kept on the lowest layer so that rooms may ask it: whether this node runs
//! the background jobs, and whether the request has already changed something here (the
//! forwarding layer, `runtime::cluster`, never sends such a request on to another node).

use crate::AppState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

/// Several nodes with NATS (issue 20): the work queue every node's MQTT bridge hands its
/// readings to, so that the holder of the singleton lease applies each once, wherever it
/// was heard (`runtime::readings`). A room sees only this.
pub trait ReadingsQueue: Send + Sync {
    /// Hands messages to the queue — (route, payload), the route as in the MQTT topic
    /// after the prefix, e.g. `readings/WL-001` — and answers once the stream holds them
    /// (a message another node already handed in is taken once).
    fn publish<'a>(
        &'a self,
        batch: Vec<(String, axum::body::Bytes)>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
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
