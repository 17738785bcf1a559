//! The background loops that cross rooms: the sensor room's round followed by the scenario
//! packs' (schedules, levels, waiting conditions, stand-downs, new cases), and the alert
//! loop, and the evaluation room's monthly report.
//! Each round runs in its own task: an error or a panic ends the round, not the loop.

use crate::intake::sensor;
use crate::scenarios::runtime as scenarios;
use crate::vitals::alerts;
use crate::AppState;
use std::sync::Arc;

/// Runs [`sensor::tick`] and then [`scenarios::tick`] every `every` until `stop` (silent
/// devices, pending conditions, the packs' schedules and stand-downs).
pub async fn sensing(
    st: AppState,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        // A failed round (an error, even a panic: each runs in its own task) is logged and
        // counted; the next one starts afresh.
        let round = tokio::spawn({
            let st = st.clone();
            async move { sensor::tick(&st).await }
        });
        match round.await {
            Ok(Ok(_)) => st.0.loops.success("sensing", st.now()),
            Ok(Err(e)) => st.0.loops.error("sensing", &e.detail),
            Err(e) => st.0.loops.error("sensing", &e),
        }
        let round = tokio::spawn({
            let st = st.clone();
            async move { scenarios::tick(&st).await }
        });
        match round.await {
            Ok(Ok(_)) => st.0.loops.success("scenarios", st.now()),
            Ok(Err(e)) => st.0.loops.error("scenarios", &e.detail),
            Err(e) => st.0.loops.error("scenarios", &e),
        }
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
        // Each round in its own task: an error or even a panic ends the round, not the loop.
        let round = tokio::spawn({
            let st = st.clone();
            async move { alerts::tick(&st).await }
        });
        match round.await {
            Ok(Ok(_)) => st.0.loops.success("alerts", st.now()),
            Ok(Err(e)) => st.0.loops.error("alerts", &e.detail),
            Err(e) => st.0.loops.error("alerts", &e),
        }
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
        let round = tokio::spawn({
            let st = st.clone();
            async move { crate::meals::care::missed_meals(&st, st.now()).await }
        });
        match round.await {
            Ok(Ok(_)) => st.0.loops.success("meals", st.now()),
            Ok(Err(e)) => st.0.loops.error("meals", &e.detail),
            Err(e) => st.0.loops.error("meals", &e),
        }
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
        let round = tokio::spawn({
            let st = st.clone();
            async move { crate::intake::data::catalogue::quality_tick(&st).await }
        });
        match round.await {
            Ok(Ok(_)) => st.0.loops.success("data", st.now()),
            Ok(Err(e)) => st.0.loops.error("data", &e.detail),
            Err(e) => st.0.loops.error("data", &e),
        }
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
        let round = tokio::spawn({
            let st = st.clone();
            async move { crate::evaluation::monthly::ensure(&st).await }
        });
        match round.await {
            Ok(Ok(_)) => st.0.loops.success("evaluation", st.now()),
            Ok(Err(e)) => st.0.loops.error("evaluation", &e.detail),
            Err(e) => st.0.loops.error("evaluation", &e),
        }
        tokio::time::sleep(every).await;
    }
}
