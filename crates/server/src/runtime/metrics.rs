//! `GET /metrics`: cityos observed by itself, in the Prometheus text exposition format —
//! HTTP latency histograms per route, readings taken and refused, alarms firing, work
//! waiting in the engine, cases by state, overdue cases, escalation-timer lag, live-stream
//! subscribers, background loops' errors and last successes, refused indicator values.
//! It reads every room's counters, so it lives here, above the rooms; the counters of
//! the HTTP layer itself are in [`crate::http::metrics`].

use crate::http::metrics::*;
use crate::http::problems::Problem;
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics` (with `Authorization: Bearer <metrics token>` when one is set).
pub async fn metrics(State(st): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(want) = st.0.metrics_token.get() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Compared in constant time: the answer's timing says nothing about the token.
        let same = given.map(str::trim).is_some_and(|g| {
            g.len() == want.len()
                && g.bytes()
                    .zip(want.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !same {
            return crate::http::error::ApiError::new(
                Problem::MissingToken,
                "/metrics needs the metrics token: Authorization: Bearer <token>",
            )
            .into_response();
        }
    }
    let mut out = String::new();
    let w = &mut out;
    // HTTP latency.
    let _ = writeln!(
        w,
        "# HELP cityos_http_request_duration_seconds Time to answer an HTTP request."
    );
    let _ = writeln!(w, "# TYPE cityos_http_request_duration_seconds histogram");
    {
        let g = st.0.http.by.lock().expect("metrics lock");
        for ((method, route, class), h) in g.iter() {
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{class}\"",
                esc(route)
            );
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    w,
                    "cityos_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                w,
                "cityos_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                w,
                "cityos_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                w,
                "cityos_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
    // The sensing end.
    let (accepted, refused, firing, by_kind, alarms, late) = {
        let s = st.0.sensor.sensing.lock().expect("sensing lock");
        let mut kinds = s.kinds.clone();
        kinds.push("unknown".into());
        let by_kind: Vec<(String, crate::intake::sensor::Refused)> = kinds
            .into_iter()
            .zip(s.refused_by_kind.iter().copied())
            .collect();
        let alarms: Vec<(String, String, u64, u64)> =
            st.0.cfg
                .sensing
                .rules
                .iter()
                .enumerate()
                .map(|(k, r)| (r.code.clone(), r.kind.clone(), s.raised[k], s.cleared[k]))
                .collect();
        (s.accepted, s.refused, s.firing(), by_kind, alarms, s.late)
    };
    let _ = writeln!(
        w,
        "# HELP cityos_readings_accepted_total Sensor readings taken."
    );
    let _ = writeln!(w, "# TYPE cityos_readings_accepted_total counter");
    let _ = writeln!(w, "cityos_readings_accepted_total {accepted}");
    let _ = writeln!(
        w,
        "# HELP cityos_readings_refused_total Sensor readings refused, by reason."
    );
    let _ = writeln!(w, "# TYPE cityos_readings_refused_total counter");
    for reason in cityos_core::payload::Reason::ALL {
        let _ = writeln!(
            w,
            "cityos_readings_refused_total{{reason=\"{}\"}} {}",
            reason.code(),
            refused.get(reason)
        );
    }
    let _ = writeln!(w, "# HELP cityos_readings_refused_by_kind_total Sensor readings refused, by reason and device kind (unknown: the device is not registered).");
    let _ = writeln!(w, "# TYPE cityos_readings_refused_by_kind_total counter");
    for (kind, r) in &by_kind {
        for reason in cityos_core::payload::Reason::ALL {
            let n = r.get(reason);
            if n > 0 {
                let _ = writeln!(
                    w,
                    "cityos_readings_refused_by_kind_total{{reason=\"{}\",kind=\"{kind}\"}} {n}",
                    reason.code()
                );
            }
        }
    }
    let _ = writeln!(w, "# HELP cityos_readings_late_total Readings taken that were more than 5 minutes old on arrival (history only; not judged by alarm rules).");
    let _ = writeln!(w, "# TYPE cityos_readings_late_total counter");
    let _ = writeln!(w, "cityos_readings_late_total {late}");
    let _ = writeln!(
        w,
        "# HELP cityos_sensing_alarms_raised_total Sensing alarms raised, by rule and device kind."
    );
    let _ = writeln!(w, "# TYPE cityos_sensing_alarms_raised_total counter");
    for (rule, kind, raised, _) in &alarms {
        let _ = writeln!(
            w,
            "cityos_sensing_alarms_raised_total{{rule=\"{rule}\",kind=\"{kind}\"}} {raised}"
        );
    }
    let _ = writeln!(w, "# HELP cityos_sensing_alarms_cleared_total Sensing alarms cleared, by rule and device kind.");
    let _ = writeln!(w, "# TYPE cityos_sensing_alarms_cleared_total counter");
    for (rule, kind, _, cleared) in &alarms {
        let _ = writeln!(
            w,
            "cityos_sensing_alarms_cleared_total{{rule=\"{rule}\",kind=\"{kind}\"}} {cleared}"
        );
    }
    let (audit_seq, audit_hash) = st.0.audit.head();
    let _ = writeln!(w, "# HELP cityos_audit_head_seq The audit trail's head: its last sequence number, labelled with that entry's hash (published so that a rewrite of history shows).");
    let _ = writeln!(w, "# TYPE cityos_audit_head_seq gauge");
    let _ = writeln!(
        w,
        "cityos_audit_head_seq{{hash=\"{audit_hash}\"}} {audit_seq}"
    );
    let _ = writeln!(
        w,
        "# HELP cityos_audit_entries_written_total Audit entries written since start."
    );
    let _ = writeln!(w, "# TYPE cityos_audit_entries_written_total counter");
    let _ = writeln!(
        w,
        "cityos_audit_entries_written_total {}",
        st.0.audit
            .entries_written
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(w, "# HELP cityos_audit_write_failures_total Failed audit writes (the entries wait for the next write).");
    let _ = writeln!(w, "# TYPE cityos_audit_write_failures_total counter");
    let _ = writeln!(
        w,
        "cityos_audit_write_failures_total {}",
        st.0.audit
            .write_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        w,
        "# HELP cityos_dataset_rows_served_total Dataset rows answered by the rows API."
    );
    let _ = writeln!(w, "# TYPE cityos_dataset_rows_served_total counter");
    let _ = writeln!(
        w,
        "cityos_dataset_rows_served_total {}",
        st.0.data
            .rows_served
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(w, "# HELP cityos_alarms_firing Device alarms firing now.");
    let _ = writeln!(w, "# TYPE cityos_alarms_firing gauge");
    let _ = writeln!(w, "cityos_alarms_firing {firing}");
    let busy =
        st.0.sensor
            .ingest_busy
            .load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(w, "# HELP cityos_readings_batches_busy_total Reading batches answered 503 because the previous ones were still being applied (back-pressure).");
    let _ = writeln!(w, "# TYPE cityos_readings_batches_busy_total counter");
    let _ = writeln!(w, "cityos_readings_batches_busy_total {busy}");
    let waiting = 1 - st.0.sensor.ingest_gate.available_permits() as i64;
    let _ = writeln!(
        w,
        "# HELP cityos_readings_batch_applying 1 while a batch of readings is being applied."
    );
    let _ = writeln!(w, "# TYPE cityos_readings_batch_applying gauge");
    let _ = writeln!(w, "cityos_readings_batch_applying {waiting}");
    // Vital signs.
    let (pending, firing_alerts) = {
        let v = st.0.vitals.state.lock().expect("vitals lock");
        v.alerting
            .alerts()
            .fold((0, 0), |(p, f), (_, a)| match a.state {
                cityos_core::alerting::AlertState::Pending { .. } => (p + 1, f),
                cityos_core::alerting::AlertState::Firing { .. } => (p, f + 1),
            })
    };
    let _ = writeln!(w, "# HELP cityos_vital_alerts Vital-sign alerts by state.");
    let _ = writeln!(w, "# TYPE cityos_vital_alerts gauge");
    let _ = writeln!(w, "cityos_vital_alerts{{state=\"pending\"}} {pending}");
    let _ = writeln!(w, "cityos_vital_alerts{{state=\"firing\"}} {firing_alerts}");
    // The engine.
    let in_flight =
        st.0.engine_in_flight
            .load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(w, "# HELP cityos_engine_requests_in_flight Requests sent to the engine and not yet answered (its queue).");
    let _ = writeln!(w, "# TYPE cityos_engine_requests_in_flight gauge");
    let _ = writeln!(w, "cityos_engine_requests_in_flight {in_flight}");
    let now = st.now();
    let h = st.0.engine.clone();
    let (next, reloads) =
        tokio::task::spawn_blocking(move || h.with(|e| (e.next_timer(), e.reloads())).ok())
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
    let _ = writeln!(w, "# HELP cityos_engine_reloads_total Cache reloads after failed commits: of every open case (only after the store was unreachable) or of the failed batches' cases.");
    let _ = writeln!(w, "# TYPE cityos_engine_reloads_total counter");
    let _ = writeln!(
        w,
        "cityos_engine_reloads_total{{kind=\"all\"}} {}",
        reloads.0
    );
    let _ = writeln!(
        w,
        "cityos_engine_reloads_total{{kind=\"touched\"}} {}",
        reloads.1
    );
    let lag = next.map_or(0.0, |due| ((now - due).max(0)) as f64 / 1000.0);
    let _ = writeln!(w, "# HELP cityos_timer_lag_seconds How late the earliest pending escalation is (0 when none is due).");
    let _ = writeln!(w, "# TYPE cityos_timer_lag_seconds gauge");
    let _ = writeln!(w, "cityos_timer_lag_seconds {lag}");
    // Cases.
    let q = cityos_engine::query::CaseQuery {
        now,
        ..Default::default()
    };
    if let Ok(Ok(stats)) = st.0.reads.run(move |s| s.stats(&q, now)).await {
        let _ = writeln!(w, "# HELP cityos_cases Cases by state.");
        let _ = writeln!(w, "# TYPE cityos_cases gauge");
        for (state, n) in &stats.by_state {
            let _ = writeln!(w, "cityos_cases{{state=\"{}\"}} {n}", esc(state));
        }
        let _ = writeln!(w, "# HELP cityos_cases_overdue Open cases marked overdue.");
        let _ = writeln!(w, "# TYPE cityos_cases_overdue gauge");
        let _ = writeln!(w, "cityos_cases_overdue {}", stats.overdue);
    }
    // Background loops.
    let _ = writeln!(w, "# HELP cityos_background_errors_total Failed rounds of a background loop (each is logged and retried at the next round).");
    let _ = writeln!(w, "# TYPE cityos_background_errors_total counter");
    for name in LOOPS {
        let _ = writeln!(
            w,
            "cityos_background_errors_total{{loop=\"{name}\"}} {}",
            st.0.loops.get(name).0
        );
    }
    let _ = writeln!(w, "# HELP cityos_background_last_success_seconds When a background loop last completed a round (Unix seconds; 0 before the first).");
    let _ = writeln!(w, "# TYPE cityos_background_last_success_seconds gauge");
    for name in LOOPS {
        let at = st.0.loops.get(name).1.unwrap_or(0) as f64 / 1000.0;
        let _ = writeln!(
            w,
            "cityos_background_last_success_seconds{{loop=\"{name}\"}} {at}"
        );
    }
    let _ = writeln!(w, "# HELP cityos_indicator_values_refused_total External indicator values refused as outside their declared range.");
    let _ = writeln!(w, "# TYPE cityos_indicator_values_refused_total counter");
    let _ = writeln!(
        w,
        "cityos_indicator_values_refused_total {}",
        st.0.vitals
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        w,
        "# HELP cityos_event_stream_subscribers Live event streams open now."
    );
    let _ = writeln!(w, "# TYPE cityos_event_stream_subscribers gauge");
    let _ = writeln!(
        w,
        "cityos_event_stream_subscribers {}",
        st.0.bus.subscribers()
    );
    if let Some((up, dropped)) = st.0.bus.link() {
        let _ = writeln!(
            w,
            "# HELP cityos_bus_connected Whether the bus's link (NATS JetStream) is up."
        );
        let _ = writeln!(w, "# TYPE cityos_bus_connected gauge");
        let _ = writeln!(w, "cityos_bus_connected {}", u8::from(up));
        let _ = writeln!(w, "# HELP cityos_bus_dropped_total Events dropped from a full outbox while NATS was unreachable.");
        let _ = writeln!(w, "# TYPE cityos_bus_dropped_total counter");
        let _ = writeln!(w, "cityos_bus_dropped_total {dropped}");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
