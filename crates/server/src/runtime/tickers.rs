//! The background loops that cross rooms: the sensor room's round followed by the scenario
//! packs' (schedules, levels, waiting conditions, stand-downs, new cases), and the alert
//! loop, and the evaluation room's monthly report.
//! Each round runs in its own task: an error or a panic ends the round, not the loop.
//! With several nodes a round runs only on the holder of the singleton lease.

use crate::http::error::ApiError;
use crate::intake::sensor;
use crate::scenarios::runtime as scenarios;
use crate::vitals::alerts;
use crate::AppState;
use std::future::Future;
use std::sync::Arc;

/// One round of the loop `name` in its own task: a failed round (an error, even a panic)
/// is logged and counted in `/metrics`, a good one marks the loop's last success; the
/// next round starts afresh either way.
async fn round<T, F, Fut>(st: &AppState, name: &'static str, f: F)
where
    F: FnOnce(AppState) -> Fut,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    T: Send + 'static,
{
    // Several nodes: only the holder of the singleton lease runs the jobs (once, not once
    // per node); the others skip their rounds until they take it over.
    if !crate::runtime::cluster::runs_jobs(st) {
        return;
    }
    match tokio::spawn(f(st.clone())).await {
        Ok(Ok(_)) => st.0.loops.success(name, st.now()),
        Ok(Err(e)) => st.0.loops.error(name, &e.detail),
        Err(e) => st.0.loops.error(name, &e),
    }
}

/// Runs [`sensor::tick`] and then [`scenarios::tick`] every `every` until `stop` (silent
/// devices, pending conditions, the packs' schedules and stand-downs).
pub async fn sensing(
    st: AppState,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        round(&st, "sensing", |st| async move { sensor::tick(&st).await }).await;
        round(
            &st,
            "scenarios",
            |st| async move { scenarios::tick(&st).await },
        )
        .await;
    }
}

/// Runs [`alerts::tick`] every `every` until `stop`.
pub async fn alerts(
    st: AppState,
    every: std::time::Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        round(&st, "alerts", |st| async move { alerts::tick(&st).await }).await;
        // The centre's figures, sampled every 5 minutes (for "against yesterday").
        round(&st, "figures", |st| async move {
            crate::ui::sample_figures(&st).await
        })
        .await;
    }
}

/// The meals room's welfare check ([`crate::meals::care::missed_meals`]: lone elders
/// who missed their usual meal two days running) every `every` until `stop`.
pub async fn meals(
    st: AppState,
    every: std::time::Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        round(&st, "meals", |st| async move {
            crate::meals::care::missed_meals(&st, st.now()).await
        })
        .await;
    }
}

/// Publishes the audit trail's head every `every` (a log line; `/metrics` shows it too),
/// so that a rewrite of history disagrees with what was published.
pub async fn audit_head(
    st: AppState,
    every: std::time::Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let (seq, hash) = st.0.audit.head();
        crate::http::log::event("audit_head", &[("seq", &seq), ("hash", &hash)]);
        tokio::time::sleep(every).await;
    }
}

/// Runs the data quality checks every `every` until `stop`.
pub async fn data_quality(
    st: AppState,
    every: std::time::Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        round(&st, "data", |st| async move {
            crate::intake::data::catalogue::quality_tick(&st).await
        })
        .await;
        tokio::time::sleep(every).await;
    }
}

/// Saves last month's evaluation report when it is not saved yet ([`crate::evaluation::monthly::ensure`]),
/// checked every `every` until `stop`.
pub async fn evaluation(
    st: AppState,
    every: std::time::Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        round(&st, "evaluation", |st| async move {
            crate::evaluation::monthly::ensure(&st).await
        })
        .await;
        tokio::time::sleep(every).await;
    }
}
