//! The MQTT bridge of the sensing end: cityos connects to a broker and subscribes to
//! `{prefix}/readings/{device_id}` — each message in the shape declared for the device's
//! kind (cityos's own `{"metric", "value", "at"?}` or an array of them, unless the
//! sensing file says otherwise) — and to `{prefix}/senml/+`, `{prefix}/telemetry/{device}`
//! and `{prefix}/mapped/{kind}` (issue 22). Messages are gathered
//! for up to 2 ms (or 2,000 of them) and ingested together; malformed payloads and
//! unknown devices are counted like any refused reading.

use crate::intake::sensor::{Input, Message};
use crate::AppState;
use cityos_core::payload::Shape;
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
/// be applied twice; the other nodes' bridges heard the same messages.
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
