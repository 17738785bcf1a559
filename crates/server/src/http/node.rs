//! What the request being served and the background jobs need to know of several nodes
//! (issue 20), kept on the lowest layer so that rooms may ask it: whether this node runs
//! the background jobs, and whether the request has already changed something here (the
//! forwarding layer, `runtime::cluster`, never sends such a request on to another node).

use crate::AppState;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// What the running service knows of its cluster (set once, at start).
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    pub node: String,
    pub address: String,
    /// Whether this node holds the singleton lease (`cityos_engine::engine::SINGLETON`)
    /// and so runs the background jobs; set by the lease thread.
    pub singleton: Arc<AtomicBool>,
    /// The epoch of the singleton lease while this node holds it (it rises at every
    /// takeover, so a holder that lost the lease and took it back sees a new one); set with
    /// `singleton`. The meals room reads its book from the store again when it changes.
    pub singleton_epoch: Arc<AtomicI64>,
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

/// The epoch of the singleton lease this node holds, when it holds it; `None` alone (one
/// node, which always runs the jobs) — see [`ClusterInfo::singleton_epoch`].
pub fn singleton_epoch(st: &AppState) -> Option<Option<i64>> {
    st.0.cluster.get().map(|c| {
        c.singleton
            .load(Ordering::SeqCst)
            .then(|| c.singleton_epoch.load(Ordering::SeqCst))
    })
}
