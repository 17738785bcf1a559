//! The MQTT bridge of the sensing end: cityos connects to a broker and subscribes to
//! `{prefix}/readings/{device_id}` — each message in the shape declared for the device's
//! kind (cityos's own `{"metric", "value", "at"?}` or an array of them, unless the
//! sensing file says otherwise) — and to `{prefix}/senml/+`, `{prefix}/telemetry/{device}`
//! and `{prefix}/mapped/{kind}` (issue 22). Messages are gathered
//! for up to 2 ms (or 2,000 of them) and ingested together; malformed payloads and
//! unknown devices are counted like any refused reading.

use crate::http::node::Heard;
use crate::intake::sensor::{Input, Message};
use crate::AppState;
use cityos_core::payload::{Mapping, Payloads, Shape};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `mqtt://host:port` (port 1883 when absent) → (host, port).
pub fn parse_url(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| format!("MQTT URL {url:?} must start with mqtt://"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("MQTT URL {url:?}: port {p:?} is not a number"))?,
        ),
        None => (rest, 1883),
    };
    if host.is_empty() {
        return Err(format!("MQTT URL {url:?} names no host"));
    }
    Ok((host.to_string(), port))
}

/// Where a message goes by its topic: `{prefix}/readings/{device}` (the shape declared
/// for the device's kind), `{prefix}/senml/{device or gateway}`, `{prefix}/telemetry/{device}`,
/// `{prefix}/mapped/{kind}`. Other topics are not ours (`None`).
pub fn message_of(topic: &str, prefix: &str, payload: axum::body::Bytes) -> Option<Message> {
    message_of_route(route_of(topic, prefix)?, payload)
}

/// A topic's route: what follows `{prefix}/` (`readings/WL-001`); `None` when not ours.
pub fn route_of<'a>(topic: &'a str, prefix: &str) -> Option<&'a str> {
    topic.strip_prefix(prefix)?.strip_prefix('/')
}

/// [`message_of`] for a route (the readings work queue carries routes, not topics).
pub fn message_of_route(rest: &str, payload: axum::body::Bytes) -> Option<Message> {
    let (route, last) = rest.split_once('/')?;
    let last = (!last.is_empty()).then(|| last.to_string());
    let (shape, device, kind) = match route {
        "readings" => (None, last, None),
        "senml" => (Some(Shape::Senml), last, None),
        "telemetry" => (Some(Shape::Telemetry), last, None),
        "mapped" => (Some(Shape::Mapped), None, last),
        _ => return None,
    };
    Some(Message {
        shape,
        device,
        kind,
        payload,
        heard: None,
    })
}

/// Whether a message names its own reading time in every reading it holds, read exactly as
/// the sensor room reads it ([`message_of_route`], then the shape's decoder): cityos's own
/// shape — `at` on each reading; SenML — an absolute time on each record (`bt` + `t` at or
/// above 2^28 s; a time relative to when it is applied, or none, is not its own);
/// telemetry — `ts` on each record; a mapping — its `time` pointer, read on each record.
/// `readings/{device}` speaks the shape declared for the device's kind: `device_kind` is
/// that kind when this node knows the device; when it does not, the message is timed only
/// if it is so in every shape a device's own topic may speak here (cityos's own and each
/// declared one). A message with a record the sensor room would refuse, with no reading,
/// over [`MESSAGE_LIMIT`](super::MESSAGE_LIMIT), or on a route that is not ours is not
/// timed: the safe side, since the readings work queue never merges a device's repeats
/// of a message that is not timed (`runtime::readings`).
pub fn names_its_times(
    route: &str,
    payload: &[u8],
    payloads: &Payloads,
    device_kind: Option<&str>,
) -> bool {
    if payload.len() > super::MESSAGE_LIMIT {
        return false;
    }
    let Some((route, last)) = route.split_once('/').filter(|(_, l)| !l.is_empty()) else {
        return false;
    };
    match route {
        "readings" => match device_kind {
            Some(kind) => timed_as(payloads.shape_of(kind), payloads.mapping_of(kind), payload),
            None => {
                timed_as(Shape::Native, None, payload)
                    && payloads
                        .shapes
                        .iter()
                        .all(|(kind, &shape)| timed_as(shape, payloads.mapping_of(kind), payload))
            }
        },
        "senml" => timed_as(Shape::Senml, None, payload),
        "telemetry" => timed_as(Shape::Telemetry, None, payload),
        "mapped" => timed_as(Shape::Mapped, payloads.mapping_of(last), payload),
        _ => false,
    }
}

/// Whether `payload`, read in `shape` (by `mapping` when mapped), holds at least one reading
/// and every record of it is a reading with a time of its own.
fn timed_as(shape: Shape, mapping: Option<&Mapping>, payload: &[u8]) -> bool {
    // A payload that does not even mention its time field is not parsed (a steady
    // sensor's plain reading). Only ever a "no": a time field written with escapes is
    // parsed by nobody here and judged not timed.
    let mentions = |field: &[u8]| payload.windows(field.len()).any(|w| w == field);
    let mut items = Vec::new();
    match shape {
        Shape::Native => {
            if !mentions(b"\"at\"") {
                return false;
            }
            super::native_items(payload, &mut items)
        }
        Shape::Senml => {
            if !mentions(b"\"t\"") && !mentions(b"\"bt\"") {
                return false;
            }
            // Read as if applied at the epoch's start: a time relative to the moment it
            // is applied (below 2^28 s, RFC 8428 §4.5.3) then falls before 2000 and is
            // refused — not a time of its own; absolute times do not depend on it.
            cityos_core::payload::senml(payload, 0, &mut items)
        }
        Shape::Telemetry => {
            if !mentions(b"\"ts\"") {
                return false;
            }
            cityos_core::payload::telemetry(payload, &mut items)
        }
        Shape::Mapped => match mapping {
            Some(m) if m.time.is_some() => cityos_core::payload::mapped(m, payload, &mut items),
            _ => return false,
        },
    }
    !items.is_empty() && items.iter().all(|i| matches!(i, Ok(d) if d.at.is_some()))
}

/// The batch as the readings work queue takes it: each message with whether it names its
/// own times ([`names_its_times`]; the kinds of the devices it names read under the
/// sensing lock at once, the payloads decoded off the async threads).
async fn judged(st: &AppState, batch: Vec<(String, axum::body::Bytes)>) -> Vec<Heard> {
    let untimed: Vec<Heard> = batch
        .iter()
        .map(|(route, payload)| Heard {
            route: route.clone(),
            payload: payload.clone(),
            timed: false,
        })
        .collect();
    let st = st.clone();
    let judged = tokio::task::spawn_blocking(move || {
        let kinds: Vec<Option<String>> = {
            let s = st.0.sensor.sensing.lock().expect("sensing lock");
            batch
                .iter()
                .map(|(route, _)| {
                    let d = s.device(route.strip_prefix("readings/")?)?;
                    s.kinds.get(*s.kind_of.get(d)? as usize).cloned()
                })
                .collect()
        };
        let payloads = &st.0.cfg.sensing.payloads;
        batch
            .into_iter()
            .zip(kinds)
            .map(|((route, payload), kind)| Heard {
                timed: names_its_times(&route, &payload, payloads, kind.as_deref()),
                route,
                payload,
            })
            .collect::<Vec<_>>()
    })
    .await;
    // Judged not timed when the judging failed: the safe side.
    judged.unwrap_or(untimed)
}

/// The topic filters the bridge subscribes to under `prefix`.
pub fn topics(prefix: &str) -> [String; 4] {
    ["readings", "senml", "telemetry", "mapped"].map(|r| format!("{prefix}/{r}/+"))
}

/// Runs the bridge until `stop`: connects (and reconnects), subscribes, ingests.
pub async fn run(
    st: AppState,
    url: String,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let (host, port) = parse_url(&url)?;
    // One client id per node and process (the broker drops a client whose id another
    // connects with).
    let node =
        st.0.cluster
            .get()
            .map(|c| c.node.clone())
            .unwrap_or_default();
    let id = format!(
        "cityos-{node}-{}-{}",
        std::process::id(),
        prefix.replace('/', "-")
    );
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    // Larger than MESSAGE_LIMIT, so that an oversized message is refused by name
    // (`too_large`) instead of breaking the connection.
    opts.set_max_packet_size(4 << 20, 4 << 20);
    opts.set_clean_session(true);
    let (client, mut events) = AsyncClient::new(opts, 1000);
    let topic = topics(&prefix).join(" ");
    let stop_q = stop.clone();
    // Ingestion runs apart from the network loop, so that acknowledgements keep flowing
    // while a batch is being applied (a broker drops messages for a client that lags).
    // Each batch with when its first message was heard (by the service's clock, for the
    // readings' times, and by the monotonic one, for the retry bound).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(
        Vec<(String, axum::body::Bytes)>,
        (cityos_core::time::Millis, tokio::time::Instant),
    )>(256);
    let ingest_st = st.clone();
    let ingester = tokio::spawn(async move {
        while let Some((batch, heard)) = rx.recv().await {
            // Several nodes on NATS: every node's bridge hands what it hears to the
            // readings work queue (a message two nodes heard is kept once); the holder of
            // the singleton lease applies it from there (`runtime::readings`).
            if let Some(q) = crate::http::node::readings_queue(&ingest_st) {
                hand_in(&ingest_st, &*q, batch, heard, &stop_q).await;
                continue;
            }
            // Several nodes without NATS: every node's bridge hears every reading; only
            // the holder of the singleton lease applies them, so they are counted once.
            match crate::intake::sensor::ensure_current(&ingest_st).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    crate::http::log::event("mqtt_ingest_failed", &[("error", &e.detail)]);
                    continue;
                }
            }
            let batch: Vec<Message> = batch
                .into_iter()
                .filter_map(|(r, p)| message_of_route(&r, p))
                .collect();
            if let Err(e) =
                crate::intake::sensor::ingest_input(&ingest_st, Input::Messages(batch), None).await
            {
                crate::http::log::event("mqtt_ingest_failed", &[("error", &e.detail)]);
            }
        }
    });
    let mut buf: Vec<(String, axum::body::Bytes)> = Vec::new();
    let mut held = 0usize;
    let mut heard_first: Option<(cityos_core::time::Millis, tokio::time::Instant)> = None;
    let flush_every = Duration::from_millis(2);
    let mut deadline: Option<tokio::time::Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        let wait = deadline.map_or(Duration::from_millis(200), |d| {
            d.saturating_duration_since(tokio::time::Instant::now())
        });
        let polled = tokio::time::timeout(wait, events.poll()).await;
        match polled {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                for t in topics(&prefix) {
                    client
                        .subscribe(t, QoS::AtLeastOnce)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                crate::http::log::event("mqtt_connected", &[("url", &url), ("topic", &topic)]);
            }
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                if let Some(r) = route_of(&p.topic, &prefix)
                    .filter(|r| message_of_route(r, axum::body::Bytes::new()).is_some())
                {
                    let mut payload = p.payload;
                    let limit = crate::intake::sensor::MESSAGE_LIMIT;
                    if payload.len() > limit && crate::http::node::readings_queue(&st).is_some() {
                        // Over the limit: only its first MESSAGE_LIMIT + 1 bytes go to the
                        // work queue (still refused whole as `too_large` by the holder,
                        // counted once like any refused reading) — a message larger than
                        // NATS takes (1 MiB by default) would close the queue's
                        // connection on every node that heard it.
                        payload.truncate(limit + 1);
                    }
                    buf.push((r.to_string(), payload));
                    heard_first.get_or_insert_with(|| (st.now(), tokio::time::Instant::now()));
                    held += 1;
                }
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + flush_every);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                crate::http::log::event("mqtt_error", &[("url", &url), ("error", &e)]);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => {} // the wait ended: flush below
        }
        let due = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if held > 0 && (held >= 2000 || due) {
            if tx
                .send((
                    std::mem::take(&mut buf),
                    heard_first
                        .take()
                        .unwrap_or_else(|| (st.now(), tokio::time::Instant::now())),
                ))
                .await
                .is_err()
            {
                break;
            }
            held = 0;
            deadline = None;
        }
    }
    if held > 0 {
        let heard = heard_first.unwrap_or_else(|| (st.now(), tokio::time::Instant::now()));
        let _ = tx.send((buf, heard)).await;
    }
    drop(tx);
    let _ = ingester.await;
    let _ = client.disconnect().await;
    Ok(())
}

/// Hands a batch to the readings work queue, trying again (0.1 s, doubling to 2 s) until
/// the stream holds it or the bridge stops: the other nodes' bridges hand in the same
/// messages, so a node that cannot reach NATS loses nothing the cluster heard. Only a
/// lost connection is tried again: a message the stream itself refused is dropped and
/// counted (`readings_queue_refused` in the log, loop `readings_queue`), never resent.
/// A batch still not handed in [`RETRY_FOR`] after it was heard is dropped
/// (`readings_queue_gave_up`): sent later, it could come after the duplicate window and
/// be applied twice; the other nodes' bridges heard the same messages. Each message goes
/// with whether it names its own times ([`names_its_times`]): the queue merges the
/// repeats of one that does, never of one that does not.
///
/// [`RETRY_FOR`]: crate::http::node::READINGS_RETRY_FOR
async fn hand_in(
    st: &AppState,
    q: &dyn crate::http::node::ReadingsQueue,
    batch: Vec<(String, axum::body::Bytes)>,
    heard: (cityos_core::time::Millis, tokio::time::Instant),
    stop: &AtomicBool,
) {
    hand_in_for(
        st,
        q,
        batch,
        heard,
        crate::http::node::READINGS_RETRY_FOR,
        stop,
    )
    .await
}

async fn hand_in_for(
    st: &AppState,
    q: &dyn crate::http::node::ReadingsQueue,
    batch: Vec<(String, axum::body::Bytes)>,
    (heard_at, heard): (cityos_core::time::Millis, tokio::time::Instant),
    retry_for: Duration,
    stop: &AtomicBool,
) {
    let batch = judged(st, batch).await;
    // On the database's clock (the cluster's): two nodes that heard a message in the
    // same instant hand it in with the same time, however far apart their clocks are.
    let heard_at = heard_at
        - st.0
            .cluster
            .get()
            .map_or(0, |c| c.skew_ms.load(std::sync::atomic::Ordering::Relaxed));
    let mut wait = Duration::from_millis(100);
    let mut logged = false;
    loop {
        match q.publish(batch.clone(), heard_at).await {
            Ok(0) => return,
            Ok(refused) => {
                crate::http::log::event(
                    "readings_queue_refused",
                    &[("refused", &refused), ("messages", &batch.len())],
                );
                st.0.loops.error(
                    "readings_queue",
                    &format!("the readings queue refused {refused} message(s); dropped"),
                );
                return;
            }
            Err(e) => {
                if !logged {
                    crate::http::log::event(
                        "readings_queue_unreachable",
                        &[("error", &e), ("messages", &batch.len())],
                    );
                    logged = true;
                }
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if heard.elapsed() + wait >= retry_for {
                    crate::http::log::event(
                        "readings_queue_gave_up",
                        &[("error", &e), ("messages", &batch.len())],
                    );
                    st.0.loops.error(
                        "readings_queue",
                        &format!(
                            "{} message(s) not handed in within {} s of being heard; dropped",
                            batch.len(),
                            retry_for.as_secs()
                        ),
                    );
                    return;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Declarations like the district's sensing file: gas detectors speak telemetry on
    /// their own topic, a gauge vendor's mapping reads a time, a counter's does not.
    fn payloads() -> Payloads {
        cityos_core::payload::parse_payloads(
            r#"
[units]
depth_cm = "cm"

[[payload]]
kind = "gas_lel"
shape = "telemetry"

[[payload]]
kind = "water_level"
shape = "native"
device = "/dev"
time = "/ts"
time_format = "epoch_s"
metrics = { depth_cm = "/val" }

[[payload]]
kind = "counter"
shape = "mapped"
device = "/id"
metrics = { people = "/n" }
"#,
            &|_| true,
            &|_, _| true,
        )
        .expect("declarations")
    }

    fn timed(route: &str, payload: &str, kind: Option<&str>) -> bool {
        names_its_times(route, payload.as_bytes(), &payloads(), kind)
    }

    #[test]
    fn own_shape_is_timed_only_when_every_reading_names_its_at() {
        let k = Some("manhole");
        let steady = r#"{"metric":"water_level","value":1.2}"#;
        assert!(!timed("readings/WL-001", steady, k));
        assert!(timed(
            "readings/MH-001",
            r#"{"metric":"tilt_deg","value":20,"at":"2026-11-26T09:30:00+08:00"}"#,
            k
        ));
        assert!(timed(
            "readings/MH-001",
            r#"[{"metric":"tilt_deg","value":1,"at":"2026-11-26T09:30:00+08:00"},
                {"metric":"tilt_deg","value":2,"at":"2026-11-26T09:31:00+08:00"}]"#,
            k
        ));
        // One reading without a time of its own: the message is not timed.
        assert!(!timed(
            "readings/MH-001",
            r#"[{"metric":"tilt_deg","value":1,"at":"2026-11-26T09:30:00+08:00"},
                {"metric":"tilt_deg","value":2}]"#,
            k
        ));
        // A time the sensor room refuses, a record it refuses, nothing at all.
        assert!(!timed(
            "readings/MH-001",
            r#"{"metric":"tilt_deg","value":1,"at":"soon"}"#,
            k
        ));
        assert!(!timed(
            "readings/MH-001",
            r#"{"metric":"tilt_deg","value":1,"at":"2026-11-26T09:30:00+08:00","x":1}"#,
            k
        ));
        assert!(!timed("readings/MH-001", "[]", k));
        assert!(!timed("readings/MH-001", "not json \"at\"", k));
        // The kind's declared shape decides: a gas detector speaks telemetry.
        let ts = r#"{"ts":1764115200000,"values":{"lel_pct":3}}"#;
        assert!(timed("readings/GAS-001", ts, Some("gas_lel")));
        assert!(!timed(
            "readings/GAS-001",
            r#"{"metric":"lel_pct","value":3,"at":"2026-11-26T09:30:00+08:00"}"#,
            Some("gas_lel")
        ));
        // A device this node does not know: timed only if so in every shape a device's
        // own topic may speak here (telemetry is declared, so cityos's own is not enough).
        assert!(!timed(
            "readings/NEW-1",
            r#"{"metric":"tilt_deg","value":1,"at":"2026-11-26T09:30:00+08:00"}"#,
            None
        ));
        let own_only = Payloads::default();
        assert!(names_its_times(
            "readings/NEW-1",
            br#"{"metric":"tilt_deg","value":1,"at":"2026-11-26T09:30:00+08:00"}"#,
            &own_only,
            None
        ));
        assert!(!names_its_times(
            "readings/NEW-1",
            steady.as_bytes(),
            &own_only,
            None
        ));
        // Over the size limit (the bridge cut it), or not a route of ours.
        let big = format!(
            r#"{{"metric":"tilt_deg","value":1,"at":"2026-11-26T09:30:00+08:00","pad":"{}"}}"#,
            "x".repeat(super::super::MESSAGE_LIMIT)
        );
        assert!(!timed("readings/MH-001", &big, k));
        assert!(!timed("other/MH-001", ts, k));
        assert!(!timed("readings/", ts, Some("gas_lel")));
    }

    #[test]
    fn senml_is_timed_by_absolute_times_only() {
        // bt absolute; t relative to it.
        let pack = r#"[{"bn":"urn:dev:mac:WL-001:","bt":1764115200,"bu":"cm","n":"depth_cm","v":12.5},
                       {"n":"depth_cm","t":60,"v":13}]"#;
        assert!(timed("senml/WL-001", pack, None));
        // Each record's own absolute t.
        assert!(timed(
            "senml/GW-1",
            r#"[{"n":"WL-001:depth_cm","t":1764115200,"v":1,"u":"cm"}]"#,
            None
        ));
        // No time: applied at arrival.
        assert!(!timed(
            "senml/WL-001",
            r#"[{"n":"WL-001:depth_cm","v":12.5,"u":"cm"}]"#,
            None
        ));
        // Relative to when it is applied (below 2^28 s): not a time of its own.
        assert!(!timed(
            "senml/WL-001",
            r#"[{"n":"WL-001:depth_cm","t":-5,"v":12.5,"u":"cm"}]"#,
            None
        ));
        assert!(!timed(
            "senml/WL-001",
            r#"[{"bn":"WL-001:","bt":-60,"n":"depth_cm","v":1},{"n":"depth_cm","t":1764115200,"v":2}]"#,
            None
        ));
        // A record refused (not numeric) among timed ones.
        assert!(!timed(
            "senml/WL-001",
            r#"[{"bn":"WL-001:","bt":1764115200,"n":"depth_cm","v":1},{"n":"state","vs":"ok"}]"#,
            None
        ));
    }

    #[test]
    fn telemetry_is_timed_by_ts_and_a_mapping_by_its_time_pointer() {
        assert!(timed(
            "telemetry/GAS-001",
            r#"{"ts":1764115200000,"values":{"lel_pct":3,"alarm":false}}"#,
            None
        ));
        assert!(timed(
            "telemetry/GAS-001",
            r#"[{"ts":1764115200000,"values":{"lel_pct":3}},{"ts":1764115260000,"values":{"lel_pct":4}}]"#,
            None
        ));
        assert!(!timed(
            "telemetry/GAS-001",
            r#"[{"ts":1764115200000,"values":{"lel_pct":3}},{"values":{"lel_pct":4}}]"#,
            None
        ));
        assert!(!timed("telemetry/GAS-001", r#"{"lel_pct":3}"#, None));
        // A ts out of range is refused by the sensor room.
        assert!(!timed(
            "telemetry/GAS-001",
            r#"{"ts":12,"values":{"lel_pct":3}}"#,
            None
        ));
        // The water gauge's mapping reads /ts (epoch seconds).
        assert!(timed(
            "mapped/water_level",
            r#"{"dev":"WL-001","ts":1764115200,"val":12.5}"#,
            None
        ));
        assert!(timed(
            "mapped/water_level",
            r#"[{"dev":"WL-001","ts":1764115200,"val":12.5},{"dev":"WL-002","ts":"1764115200","val":3}]"#,
            None
        ));
        assert!(!timed(
            "mapped/water_level",
            r#"{"dev":"WL-001","val":12.5}"#,
            None
        ));
        // A mapping without a time, and a kind without a mapping.
        assert!(!timed(
            "mapped/counter",
            r#"{"id":"PC-1","n":4,"ts":1764115200}"#,
            None
        ));
        assert!(!timed(
            "mapped/manhole",
            r#"{"dev":"WL-001","ts":1764115200,"val":12.5}"#,
            None
        ));
        // On a device's own topic, a mapped kind reads by its mapping.
        assert!(!timed(
            "readings/PC-1",
            r#"{"id":"PC-1","n":4}"#,
            Some("counter")
        ));
    }
}
