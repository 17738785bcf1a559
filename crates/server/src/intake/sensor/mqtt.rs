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
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
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
    let id = format!("cityos-{}-{}", std::process::id(), prefix.replace('/', "-"));
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    // Larger than MESSAGE_LIMIT, so that an oversized message is refused by name
    // (`too_large`) instead of breaking the connection.
    opts.set_max_packet_size(4 << 20, 4 << 20);
    opts.set_clean_session(true);
    let (client, mut events) = AsyncClient::new(opts, 1000);
    let topic = topics(&prefix).join(" ");
    // Ingestion runs apart from the network loop, so that acknowledgements keep flowing
    // while a batch is being applied (a broker drops messages for a client that lags).
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Message>>(256);
    let ingest_st = st.clone();
    let ingester = tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            // Several nodes: every node's bridge hears every reading; only the holder of
            // the singleton lease applies them, so they are counted once.
            if !crate::http::node::runs_jobs(&ingest_st) {
                continue;
            }
            if let Err(e) =
                crate::intake::sensor::ingest_input(&ingest_st, Input::Messages(batch), None).await
            {
                crate::http::log::event("mqtt_ingest_failed", &[("error", &e.detail)]);
            }
        }
    });
    let mut buf: Vec<Message> = Vec::new();
    let mut held = 0usize;
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
                if let Some(m) = message_of(&p.topic, &prefix, p.payload) {
                    buf.push(m);
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
            if tx.send(std::mem::take(&mut buf)).await.is_err() {
                break;
            }
            held = 0;
            deadline = None;
        }
    }
    if held > 0 {
        let _ = tx.send(buf).await;
    }
    drop(tx);
    let _ = ingester.await;
    let _ = client.disconnect().await;
    Ok(())
}
