//! The HTTP layer's counters for `GET /metrics` (rendered by `runtime::metrics`): latency
//! histograms per route, and the background loops' errors and last successes.
//! No personal data; meant for the operations team's Prometheus.
//!
//! The label sets are bounded: methods other than the standard nine count as `other`,
//! requests that match no route count under one `unmatched` route. When a metrics token
//! is set (`cityos serve --metrics-token`), `/metrics` asks for it as a Bearer token.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// The HTTP methods counted under their own name; every other method is `other`.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

/// The method's label: its name when standard, else `other` (so invented methods cannot
/// add series).
pub fn method_label(m: &str) -> &'static str {
    METHODS
        .iter()
        .find(|x| **x == m)
        .copied()
        .unwrap_or("other")
}

/// The background loops whose health `/metrics` shows.
pub const LOOPS: [&str; 8] = [
    "escalation",
    "alerts",
    "figures",
    "sensing",
    "scenarios",
    "meals",
    "data",
    "evaluation",
];

/// Errors and the last success of each background loop (timers and tickers): a loop
/// that fails logs, counts here and tries again at its next round.
#[derive(Debug, Default)]
pub struct Loops {
    pub by: Mutex<BTreeMap<&'static str, (u64, Option<i64>)>>,
}

impl Loops {
    /// A round of `name` failed.
    pub fn error(&self, name: &'static str, error: &dyn std::fmt::Display) {
        crate::http::log::event(
            "background_error",
            &[("loop", &name), ("error", &error.to_string())],
        );
        self.by
            .lock()
            .expect("loops lock")
            .entry(name)
            .or_default()
            .0 += 1;
    }
    /// A round of `name` succeeded at `now` (ms).
    pub fn success(&self, name: &'static str, now: i64) {
        self.by
            .lock()
            .expect("loops lock")
            .entry(name)
            .or_default()
            .1 = Some(now);
    }
    /// (errors, last success in ms) of `name`.
    pub fn get(&self, name: &str) -> (u64, Option<i64>) {
        self.by
            .lock()
            .expect("loops lock")
            .get(name)
            .copied()
            .unwrap_or_default()
    }
}

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
pub struct Hist {
    pub counts: [u64; BUCKETS.len()],
    pub sum: f64,
    pub count: u64,
}

/// Request latencies by (method, route template, status class).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    pub by: Mutex<BTreeMap<(&'static str, String, &'static str), Hist>>,
}

impl HttpMetrics {
    /// Counts a request; `method` is bucketed by [`method_label`], `route` must be a
    /// route template (or `unmatched`).
    pub fn observe(&self, method: &str, route: &str, status: u16, secs: f64) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let mut g = self.by.lock().expect("metrics lock");
        let h = g
            .entry((method_label(method), route.to_string(), class))
            .or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }
}

/// Middleware: times every request by its route template (not its concrete path) and its
/// method label, so the series stay few whatever clients send.
pub async fn track(
    State(st): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let t = Instant::now();
    let resp = next.run(req).await;
    st.0.http.observe(
        &method,
        &route,
        resp.status().as_u16(),
        t.elapsed().as_secs_f64(),
    );
    resp
}
