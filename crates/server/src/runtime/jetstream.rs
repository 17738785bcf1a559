//! The bus on NATS JetStream (issue 20, several nodes): every [`BusEvent`] is published,
//! with an ack, to one stream (`CITYOS` by default) under a subject by kind and region —
//! `<prefix>.case.<subdistrict>`, `<prefix>.vital.<region>`, `<prefix>.alarm.<device>`,
//! `<prefix>.dataset.<name>` (the prefix is the stream's name in lower case) — and each
//! node reads the whole stream back through one push consumer of its own, delivering every
//! event, its own included, to its local subscribers once, in the stream's order, with
//! the stream sequence (the SSE id in cluster mode: one order for all nodes).
//!
//! A small client of its own over NATS's text protocol (CONNECT, PUB/HPUB, SUB, MSG/HMSG,
//! PING/PONG) and JetStream's JSON API (`$JS.API.STREAM.CREATE`, `…CONSUMER.CREATE`,
//! `…STREAM.MSG.GET` with `next_by_subj` for replays): plain TCP only, no new dependency
//! (async-nats brings rustls, a crypto provider, nkeys and some forty crates).
//!
//! Faults: publishing never blocks the engine; events wait in an outbox (at most
//! [`OUTBOX`]) until the stream acknowledges them, and are sent again after a reconnect
//! with a `Nats-Msg-Id` (JetStream drops the duplicates within its window). NATS lost
//! mid-run: writes go on (case events are in the store), the connection is retried every
//! 0.1–2 s, the consumer resumes after the last sequence delivered, so local
//! subscribers (SSE) see the events of the outage late but once and in order.

use crate::bus::{
    Bus, BusEvent, Head, LastCase, Replay, SequencedBus, SequencedSubscription, Subscription,
};
use cityos_engine::store::CaseEvent;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot};

/// The stream's name when none is given.
pub const DEFAULT_STREAM: &str = "CITYOS";
/// Events waiting for the stream's ack at most (beyond: the oldest are dropped and
/// counted; case events stay in the store).
pub const OUTBOX: usize = 100_000;
/// How long a JetStream API request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// The consumer's idle heartbeat; three missed mean the connection is dead.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Where the bus is.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// `nats://[user:password@]host[:port]`.
    pub url: String,
    /// The stream's name (letters, digits, `-`, `_`).
    pub stream: String,
    /// This node's name (in message ids and the connection's name).
    pub node: String,
}

pub(crate) struct Target {
    host: String,
    port: u16,
    user: Option<(String, String)>,
}

/// Checks a `nats://` URL.
pub fn parse_url(url: &str) -> Result<(), String> {
    target(url).map(|_| ())
}

pub(crate) fn target(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("nats://")
        .ok_or_else(|| format!("--nats-url {url:?} must be nats://host[:port]"))?;
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => {
            let (a, b) = u.split_once(':').unwrap_or((u, ""));
            (Some((a.to_string(), b.to_string())), h)
        }
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("--nats-url {url:?}: port {p:?} is not a number"))?,
        ),
        None => (hostport, 4222),
    };
    if host.is_empty() {
        return Err(format!("--nats-url {url:?} names no host"));
    }
    Ok(Target {
        host: host.to_string(),
        port,
        user,
    })
}

/// Checks a stream name.
pub fn check_stream(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "NATS stream name {name:?} must be 1 to 64 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

enum Cmd {
    Publish(Outgoing),
    Request {
        subject: String,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
}

#[derive(Clone)]
struct Outgoing {
    subject: String,
    msg_id: String,
    payload: Vec<u8>,
}

struct Shared {
    plain: broadcast::Sender<BusEvent>,
    sequenced: broadcast::Sender<(u64, BusEvent)>,
    connected: AtomicBool,
    /// Events dropped from a full outbox.
    dropped: AtomicU64,
    /// The events this node has read from the stream, by their own id (see [`Seen`]).
    seen: std::sync::Mutex<Seen>,
}

/// How many events a node remembers by their own id (case events: their log number;
/// others: their message id), to pass over a second copy on the stream.
pub const SEEN: usize = 200_000;

/// The events a node has read from the stream (delivered live or read back), each with
/// the sequence of its first copy. An event whose publish was acknowledged by the stream
/// but whose ack was lost is sent again after a reconnect; within the stream's duplicate
/// window ([`DUPLICATE_WINDOW_S`]) JetStream drops it, after that the stream keeps a second
/// copy under a later sequence — which every node passes over here, live and in replays,
/// so SSE never shows an event twice.
/// Ids are kept as 64-bit hashes (about 8 MB for [`SEEN`] of them).
#[derive(Default)]
pub struct Seen {
    first: HashMap<u64, u64>,
    order: std::collections::VecDeque<u64>,
}

impl Seen {
    /// Whether the event `id` at sequence `seq` is a later copy of one seen before
    /// (`false`: the first copy, now remembered, or the same copy read again). A copy
    /// under a lower sequence than the one remembered (read back newest first) becomes
    /// the first copy: the later one is passed over from then on.
    pub fn is_copy(&mut self, id: &str, seq: u64) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let id = h.finish();
        if let Some(first) = self.first.get_mut(&id) {
            if seq < *first {
                *first = seq;
            }
            return *first < seq;
        }
        if self.order.len() >= SEEN {
            if let Some(old) = self.order.pop_front() {
                self.first.remove(&old);
            }
        }
        self.order.push_back(id);
        self.first.insert(id, seq);
        false
    }
}

/// An existing stream's configuration, when its duplicate window is shorter than
/// `window` (nanoseconds): to be updated.
fn shorter_window(config: &Value, window: u64) -> Option<Value> {
    let have = config.get("duplicate_window")?.as_u64()?;
    (have < window).then(|| config.clone())
}

/// What [`ensure_stream`] did about an existing stream's duplicate window.
#[derive(Debug, PartialEq)]
pub(crate) enum Window {
    /// Created now, or already as long (or longer).
    Kept,
    /// Shorter: raised to the one asked for (logged `nats_duplicate_window_raised`).
    Widened,
    /// Shorter, and the server refused to raise it (its answer).
    Refused(String),
}

/// Creates the stream `create` describes (`STREAM.CREATE` of its `name`) or — made
/// already, by another node or an older version — reads it (`STREAM.INFO`) and raises a
/// shorter duplicate window to `create`'s with `STREAM.UPDATE`, so that a copy sent again
/// within it is dropped by the stream itself. Answers the stream's info (the created or
/// read stream: `config`, `state`, `created`) and what became of the window; `Err` names
/// the server (a lost connection) or the stream (neither created nor readable). Every
/// stream of cityos on NATS is opened through here: the bus's and the readings queue.
pub(crate) async fn ensure_stream(
    c: &mut Conn,
    inbox: &str,
    url: &str,
    create: &Value,
) -> Result<(Value, Window), String> {
    let name = create["name"].as_str().unwrap_or_default();
    let v = c
        .api(
            url,
            &format!("$JS.API.STREAM.CREATE.{name}"),
            create.to_string().as_bytes(),
            inbox,
        )
        .await?;
    if v.get("error").is_none() {
        return Ok((v, Window::Kept));
    }
    let v = c
        .api(url, &format!("$JS.API.STREAM.INFO.{name}"), b"", inbox)
        .await?;
    if let Some(e) = v.get("error") {
        return Err(format!(
            "NATS at {url}: cannot create or read the stream {name}: {e}"
        ));
    }
    let window = create["duplicate_window"].as_u64().unwrap_or(0);
    let Some(mut cfg) = shorter_window(&v["config"], window) else {
        return Ok((v, Window::Kept));
    };
    cfg["duplicate_window"] = json!(window);
    let u = c
        .api(
            url,
            &format!("$JS.API.STREAM.UPDATE.{name}"),
            cfg.to_string().as_bytes(),
            inbox,
        )
        .await?;
    if let Some(e) = u.get("error") {
        return Ok((v, Window::Refused(e.to_string())));
    }
    crate::http::log::event(
        "nats_duplicate_window_raised",
        &[("stream", &name), ("seconds", &(window / 1_000_000_000))],
    );
    Ok((v, Window::Widened))
}

/// An event's own id: a case event's log number, or the message id it was published
/// under (`Nats-Msg-Id`).
fn own_id(ev: &BusEvent, headers: &Option<Vec<u8>>) -> Option<String> {
    if let BusEvent::Case(c) = ev {
        return Some(format!("case-{}", c.id));
    }
    let h = String::from_utf8_lossy(headers.as_deref()?).into_owned();
    h.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("Nats-Msg-Id")
            .then(|| v.trim().to_string())
    })
}

/// The stream's duplicate window: a second copy of an event published within it is
/// dropped by JetStream itself (beyond it, [`Seen`] passes over it on read).
pub const DUPLICATE_WINDOW_S: u64 = 600;

/// The bus on NATS JetStream; see the module's text.
pub struct JetStreamBus {
    tx: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Shared>,
    prefix: String,
    stream: String,
    /// Unique per process: message ids of events without an id of their own.
    origin: String,
    counter: AtomicU64,
}

impl JetStreamBus {
    /// Connects (waiting at most 5 s), makes sure the stream exists and starts the
    /// consumer; an error names NATS and the URL.
    pub fn connect(o: &NatsOptions) -> Result<JetStreamBus, String> {
        check_stream(&o.stream)?;
        let t = target(&o.url)?;
        let shared = Arc::new(Shared {
            plain: broadcast::channel(super::bus::CAPACITY).0,
            sequenced: broadcast::channel(super::bus::CAPACITY).0,
            connected: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            seen: Default::default(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let conf = Arc::new(Conf {
            target: t,
            url: o.url.clone(),
            stream: o.stream.clone(),
            prefix: o.stream.to_lowercase(),
            name: format!("cityos-{}", o.node),
        });
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("cityos-nats".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("nats runtime");
                rt.block_on(run(conf, sh, rx, first_tx));
            })
            .map_err(|e| e.to_string())?;
        match first_rx.recv_timeout(Duration::from_secs(8)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(format!(
                    "cannot reach NATS at {} (--nats-url): no answer within 8 s",
                    o.url
                ))
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(JetStreamBus {
            tx,
            shared,
            prefix: o.stream.to_lowercase(),
            stream: o.stream.clone(),
            origin: format!("{}-{}-{nanos}", o.node, std::process::id()),
            counter: AtomicU64::new(0),
        })
    }

    /// Is the connection up?
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    async fn request(&self, subject: String, payload: Vec<u8>) -> Result<Vec<u8>, String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Request {
                subject,
                payload,
                reply,
            })
            .map_err(|_| "the NATS connection is closed".to_string())?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("NATS connection lost".into()),
            Err(_) => Err("NATS did not answer in time".into()),
        }
    }

    /// Deletes a stream (tests clean up after themselves).
    pub fn delete_stream(url: &str, stream: &str) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let t = target(url)?;
        rt.block_on(async {
            let mut c = Conn::open(&t, url, "cityos-admin").await?;
            c.request_sync(
                &format!("$JS.API.STREAM.DELETE.{stream}"),
                b"",
                "_INBOX.cityosadmin",
            )
            .await
            .map(|_| ())
        })
    }
}

/// A NATS subject token from any text (no dots, wildcards or spaces).
fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' | ' ' | '\t' | '\r' | '\n' => '_',
            c => c,
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}

/// An event's subject and wire form.
fn encode(prefix: &str, e: &BusEvent) -> (String, Value) {
    match e {
        BusEvent::Case(c) => (
            format!(
                "{prefix}.case.{}",
                token(c.subdistrict.as_deref().unwrap_or("_"))
            ),
            json!({"t": "case", "event": &**c}),
        ),
        BusEvent::Vital(v) => (
            format!("{prefix}.vital.{}", token(&v.region)),
            json!({"t": "vital", "kind": v.kind, "region": v.region, "data": v.data, "officers_only": v.officers_only}),
        ),
        BusEvent::SensingAlarm {
            device,
            rule,
            change,
            case,
        } => (
            format!("{prefix}.alarm.{}", token(device)),
            json!({"t": "alarm", "device": device, "rule": rule, "change": change, "case": case}),
        ),
        BusEvent::DatasetImported { name, rows } => (
            format!("{prefix}.dataset.{}", token(name)),
            json!({"t": "dataset", "name": name, "rows": rows}),
        ),
    }
}

/// The few `&'static str`s events carry (kinds, alarm changes), interned.
fn intern(s: &str) -> &'static str {
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut g = SEEN.lock().expect("intern lock");
    if let Some(k) = g.iter().find(|k| **k == s) {
        return k;
    }
    if g.len() > 1000 {
        return "unknown";
    }
    let k: &'static str = Box::leak(s.to_string().into_boxed_str());
    g.push(k);
    k
}

fn decode(payload: &[u8]) -> Option<BusEvent> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let s = |k: &str| v[k].as_str().map(str::to_string);
    Some(match v["t"].as_str()? {
        "case" => BusEvent::Case(Arc::new(
            serde_json::from_value::<CaseEvent>(v["event"].clone()).ok()?,
        )),
        "vital" => BusEvent::Vital(Arc::new(crate::bus::VitalEvent {
            kind: intern(v["kind"].as_str()?),
            region: s("region")?,
            data: s("data")?,
            officers_only: v["officers_only"].as_bool().unwrap_or(true),
        })),
        "alarm" => BusEvent::SensingAlarm {
            device: s("device")?,
            rule: s("rule")?,
            change: intern(v["change"].as_str()?),
            case: s("case"),
        },
        "dataset" => BusEvent::DatasetImported {
            name: s("name")?,
            rows: v["rows"].as_u64()? as usize,
        },
        _ => return None,
    })
}

impl Bus for JetStreamBus {
    fn publish(&self, event: BusEvent) {
        let (subject, body) = encode(&self.prefix, &event);
        let msg_id = match &event {
            // Event ids are unique across nodes (sequences).
            BusEvent::Case(c) => format!("case-{}", c.id),
            _ => format!(
                "{}-{}",
                self.origin,
                self.counter.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let _ = self.tx.send(Cmd::Publish(Outgoing {
            subject,
            msg_id,
            payload: body.to_string().into_bytes(),
        }));
    }

    fn subscribe(&self) -> Subscription {
        self.shared.plain.subscribe()
    }

    fn subscribers(&self) -> usize {
        self.shared.plain.receiver_count() + self.shared.sequenced.receiver_count()
    }

    fn sequenced(&self) -> Option<&dyn SequencedBus> {
        Some(self)
    }

    fn link(&self) -> Option<(bool, u64)> {
        Some((
            self.connected(),
            self.shared.dropped.load(Ordering::Relaxed),
        ))
    }
}

impl SequencedBus for JetStreamBus {
    fn last_case_in(&self, subdistrict: &str) -> LastCase<'_> {
        let subject = format!("{}.case.{}", self.prefix, token(subdistrict));
        Box::pin(async move {
            let body = json!({ "last_by_subj": subject }).to_string();
            let r = self
                .request(
                    format!("$JS.API.STREAM.MSG.GET.{}", self.stream),
                    body.into_bytes(),
                )
                .await?;
            let v: Value = serde_json::from_slice(&r).map_err(|e| e.to_string())?;
            if let Some(e) = v.get("error") {
                if e["code"].as_u64() == Some(404) {
                    return Ok(None);
                }
                return Err(format!("NATS refused a lookup: {e}"));
            }
            let data = base64_decode(v["message"]["data"].as_str().unwrap_or(""))
                .ok_or("NATS answered with bad base64")?;
            Ok(match decode(&data) {
                Some(BusEvent::Case(e)) => Some(e.id),
                _ => None,
            })
        })
    }

    fn subscribe_sequenced(&self) -> SequencedSubscription {
        self.shared.sequenced.subscribe()
    }

    fn case_events_after(&self, after: u64, max: usize) -> Replay<'_> {
        self.case_events_after_in(after, max, u64::MAX, None)
    }

    fn head(&self) -> Head<'_> {
        Box::pin(async move {
            let r = self
                .request(format!("$JS.API.STREAM.INFO.{}", self.stream), Vec::new())
                .await?;
            let v: Value = serde_json::from_slice(&r).map_err(|e| e.to_string())?;
            if let Some(e) = v.get("error") {
                return Err(format!("NATS refused the stream's state: {e}"));
            }
            Ok(v["state"]["last_seq"].as_u64().unwrap_or(0))
        })
    }

    fn case_events_after_in(
        &self,
        after: u64,
        max: usize,
        upto: u64,
        subdistrict: Option<&str>,
    ) -> Replay<'_> {
        let filter = match subdistrict {
            Some(sd) => format!("{}.case.{}", self.prefix, token(sd)),
            None => format!("{}.case.>", self.prefix),
        };
        Box::pin(async move {
            let mut out = Vec::new();
            let mut seq = after;
            let subject = format!("$JS.API.STREAM.MSG.GET.{}", self.stream);
            while out.len() < max {
                let body = json!({"seq": seq + 1, "next_by_subj": filter}).to_string();
                let r = self.request(subject.clone(), body.into_bytes()).await?;
                let v: Value = serde_json::from_slice(&r)
                    .map_err(|e| format!("NATS answered a replay with {e}"))?;
                if let Some(e) = v.get("error") {
                    if e["code"].as_u64() == Some(404) {
                        break;
                    }
                    return Err(format!("NATS refused a replay: {e}"));
                }
                let m = &v["message"];
                let Some(s) = m["seq"].as_u64() else {
                    return Err(format!("NATS answered a replay without a sequence: {v}"));
                };
                if s > upto {
                    // Past the window asked for: read no further.
                    break;
                }
                seq = s;
                let data = base64_decode(m["data"].as_str().unwrap_or(""))
                    .ok_or("NATS answered a replay with bad base64")?;
                if let Some(BusEvent::Case(e)) = decode(&data) {
                    // A later copy of an event (see [`Seen`]) is passed over.
                    let copy = self
                        .shared
                        .seen
                        .lock()
                        .expect("seen lock")
                        .is_copy(&format!("case-{}", e.id), s);
                    if !copy {
                        out.push((s, e));
                    }
                }
            }
            Ok(out)
        })
    }
}

/// After a takeover (several nodes): the case events of the partitions `gained`
/// committed in the last [`TAKEOVER_WINDOW`] are published again, so that those the
/// old owner committed but never handed to the stream (killed between the two) reach
/// every node's subscribers; the ones already on the stream are dropped by JetStream as
/// duplicates (their message ids, `case-<event number>`, within its duplicate window,
/// [`DUPLICATE_WINDOW_S`]).
/// Read from after the last case event the stream has for each sub-district.
pub async fn after_takeover(st: &crate::AppState, gained: &[String]) -> Result<usize, String> {
    let Some(bus) = st.0.bus.sequenced() else {
        return Ok(0);
    };
    let since = st.now() - TAKEOVER_WINDOW;
    let mut sent = 0;
    for p in gained.iter().filter(|p| p.as_str() != "-") {
        let mut after = bus.last_case_in(p).await?.unwrap_or(0);
        for _ in 0..20 {
            let (region, from) = (p.clone(), after);
            let page =
                st.0.reads
                    .run(move |s| s.events_after(from, 1000, Some(&region), None))
                    .await
                    .map_err(|e| e.detail)?
                    .map_err(|e| e.to_string())?;
            let full = page.len() >= 1000;
            for e in page {
                after = after.max(e.id);
                if e.at >= since {
                    st.0.bus.publish(BusEvent::Case(Arc::new(e)));
                    sent += 1;
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok(sent)
}

/// How far back a takeover publishes a partition's case events again (inside
/// JetStream's 2-minute duplicate window).
pub const TAKEOVER_WINDOW: cityos_core::time::Millis = 90 * cityos_core::time::SECOND;

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' => continue,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

struct Conf {
    target: Target,
    url: String,
    stream: String,
    prefix: String,
    name: String,
}

/// One operation from the server.
pub(crate) enum Op {
    Msg {
        subject: String,
        /// The subscription it came on (a consumer's deliveries keep their own subject).
        sid: String,
        reply: Option<String>,
        headers: Option<Vec<u8>>,
        payload: Vec<u8>,
    },
    Ping,
    Other,
    Err(String),
}

pub(crate) fn parse(buf: &mut Vec<u8>) -> Result<Option<Op>, String> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    let parts: Vec<&str> = line.split_whitespace().collect();
    let op = parts
        .first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    let num = |s: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("NATS sent a bad line {line:?}"))
    };
    match op.as_str() {
        "MSG" | "HMSG" => {
            let h = op == "HMSG";
            let n = parts.len();
            let (reply, hdr, total) = match (h, n) {
                (false, 4) => (None, 0, num(parts[3])?),
                (false, 5) => (Some(parts[3]), 0, num(parts[4])?),
                (true, 5) => (None, num(parts[3])?, num(parts[4])?),
                (true, 6) => (Some(parts[3]), num(parts[4])?, num(parts[5])?),
                _ => return Err(format!("NATS sent a bad line {line:?}")),
            };
            if hdr > total {
                return Err(format!(
                    "NATS sent a bad line {line:?}: headers past the message"
                ));
            }
            if buf.len() < end + 2 + total + 2 {
                return Ok(None);
            }
            let body = &buf[end + 2..end + 2 + total];
            let op = Op::Msg {
                subject: parts[1].to_string(),
                sid: parts[2].to_string(),
                reply: reply.map(str::to_string),
                headers: h.then(|| body[..hdr].to_vec()),
                payload: body[hdr..].to_vec(),
            };
            buf.drain(..end + 2 + total + 2);
            Ok(Some(op))
        }
        _ => {
            buf.drain(..end + 2);
            Ok(Some(match op.as_str() {
                "PING" => Op::Ping,
                "-ERR" => Op::Err(line[4..].trim().trim_matches('\'').to_string()),
                _ => Op::Other,
            }))
        }
    }
}

/// The status code of a message's header block (`NATS/1.0 100 Idle Heartbeat`).
pub(crate) fn status(headers: &Option<Vec<u8>>) -> Option<u16> {
    let h = headers.as_ref()?;
    let first = h.split(|b| *b == b'\n').next()?;
    String::from_utf8_lossy(first)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) struct Conn {
    rd: tokio::net::tcp::OwnedReadHalf,
    wr: tokio::net::tcp::OwnedWriteHalf,
    pub(crate) buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn open(t: &Target, url: &str, name: &str) -> Result<Conn, String> {
        let unreachable =
            |e: &dyn std::fmt::Display| format!("cannot reach NATS at {url} (--nats-url): {e}");
        let tcp = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect((t.host.as_str(), t.port)),
        )
        .await
        .map_err(|_| unreachable(&"no answer within 3 s"))?
        .map_err(|e| unreachable(&e))?;
        let _ = tcp.set_nodelay(true);
        let (rd, wr) = tcp.into_split();
        let mut c = Conn {
            rd,
            wr,
            buf: Vec::new(),
        };
        let info = tokio::time::timeout(Duration::from_secs(3), c.line())
            .await
            .map_err(|_| unreachable(&"no INFO from the server"))?
            .map_err(|e| unreachable(&e))?;
        let info: Value = info
            .strip_prefix("INFO ")
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| unreachable(&"it does not speak NATS"))?;
        if info["tls_required"].as_bool() == Some(true) {
            return Err(format!(
                "NATS at {url} asks for TLS, which cityos does not speak yet"
            ));
        }
        if info["jetstream"].as_bool() == Some(false) {
            return Err(format!(
                "NATS at {url} runs without JetStream (start nats-server with -js)"
            ));
        }
        let mut connect = json!({"verbose": false, "pedantic": false, "headers": true, "no_responders": true,
            "protocol": 1, "name": name, "lang": "rust-cityos", "version": env!("CARGO_PKG_VERSION")});
        if let Some((u, p)) = &t.user {
            connect["user"] = json!(u);
            connect["pass"] = json!(p);
        }
        c.write(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
            .await
            .map_err(|e| unreachable(&e))?;
        loop {
            let l = tokio::time::timeout(Duration::from_secs(3), c.line())
                .await
                .map_err(|_| unreachable(&"no PONG"))?
                .map_err(|e| unreachable(&e))?;
            if l.starts_with("PONG") {
                break;
            }
            if let Some(e) = l.strip_prefix("-ERR") {
                return Err(format!(
                    "NATS at {url} refused the connection: {}",
                    e.trim()
                ));
            }
        }
        Ok(c)
    }

    pub(crate) async fn fill(&mut self) -> Result<(), String> {
        let mut tmp = [0u8; 65536];
        let n = self.rd.read(&mut tmp).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(l);
            }
            self.fill().await?;
        }
    }

    pub(crate) async fn write(&mut self, b: &[u8]) -> Result<(), String> {
        self.wr.write_all(b).await.map_err(|e| e.to_string())
    }

    /// A request before the session's loop runs (nothing else is subscribed yet).
    /// One JetStream API request ([`Conn::request_sync`]) and its JSON answer (`null` if it
    /// is not JSON; the caller reads its `error`); a lost connection names the server `url`.
    pub(crate) async fn api(
        &mut self,
        url: &str,
        subject: &str,
        body: &[u8],
        inbox: &str,
    ) -> Result<Value, String> {
        let r = self
            .request_sync(subject, body, inbox)
            .await
            .map_err(|e| format!("NATS at {url}: {e}"))?;
        Ok(serde_json::from_slice(&r).unwrap_or(Value::Null))
    }

    pub(crate) async fn request_sync(
        &mut self,
        subject: &str,
        payload: &[u8],
        inbox: &str,
    ) -> Result<Vec<u8>, String> {
        let reply = format!("{inbox}.setup");
        // Subscribed for one answer only.
        let mut frame = format!(
            "SUB {reply} 99\r\nUNSUB 99 1\r\nPUB {subject} {reply} {}\r\n",
            payload.len()
        )
        .into_bytes();
        frame.extend_from_slice(payload);
        frame.extend_from_slice(b"\r\n");
        self.write(&frame).await?;
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            while let Some(op) = parse(&mut self.buf)? {
                match op {
                    Op::Msg {
                        subject,
                        headers,
                        payload,
                        ..
                    } if subject == reply => {
                        if status(&headers) == Some(503) {
                            return Err("no JetStream answers (start nats-server with -js)".into());
                        }
                        return Ok(payload);
                    }
                    Op::Ping => self.write(b"PONG\r\n").await?,
                    Op::Err(e) => return Err(e),
                    _ => {}
                }
            }
            tokio::time::timeout_at(deadline, self.fill())
                .await
                .map_err(|_| format!("JetStream did not answer {subject} in time"))??;
        }
    }
}

async fn run(
    conf: Arc<Conf>,
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    first: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut first = Some(first);
    let mut outbox: BTreeMap<u64, Outgoing> = BTreeMap::new();
    let mut next_id = 0u64;
    // The last stream sequence delivered to local subscribers.
    let mut delivered: Option<u64> = None;
    let mut backoff = Duration::from_millis(100);
    let mut lost_at: Option<std::time::Instant> = None;
    loop {
        let r = session(
            &conf,
            &shared,
            &mut rx,
            &mut outbox,
            &mut next_id,
            &mut delivered,
            &mut first,
            &mut lost_at,
        )
        .await;
        shared.connected.store(false, Ordering::SeqCst);
        let e = match r {
            Ok(()) => return,
            Err(e) => e,
        };
        if let Some(f) = first.take() {
            let _ = f.send(Err(e));
            return;
        }
        if lost_at.is_none() {
            lost_at = Some(std::time::Instant::now());
            backoff = Duration::from_millis(100);
            crate::http::log::event(
                "nats_lost",
                &[
                    ("url", &conf.url),
                    ("error", &e),
                    ("waiting", &outbox.len()),
                ],
            );
        }
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                c = rx.recv() => match c {
                    None => return,
                    Some(Cmd::Publish(p)) => push(&shared, &mut outbox, &mut next_id, p),
                    Some(Cmd::Request { reply, .. }) => {
                        let _ = reply.send(Err(format!("NATS at {} is unreachable", conf.url)));
                    }
                }
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn push(shared: &Shared, outbox: &mut BTreeMap<u64, Outgoing>, next_id: &mut u64, p: Outgoing) {
    if outbox.len() >= OUTBOX {
        outbox.pop_first();
        shared.dropped.fetch_add(1, Ordering::Relaxed);
    }
    *next_id += 1;
    outbox.insert(*next_id, p);
}

pub(crate) fn hpub(subject: &str, reply: &str, msg_id: &str, payload: &[u8]) -> Vec<u8> {
    let hdr = format!("NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n");
    let mut f = format!(
        "HPUB {subject} {reply} {} {}\r\n{hdr}",
        hdr.len(),
        hdr.len() + payload.len()
    )
    .into_bytes();
    f.extend_from_slice(payload);
    f.extend_from_slice(b"\r\n");
    f
}

#[allow(clippy::too_many_arguments)]
async fn session(
    conf: &Conf,
    shared: &Shared,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    outbox: &mut BTreeMap<u64, Outgoing>,
    next_id: &mut u64,
    delivered: &mut Option<u64>,
    first: &mut Option<std::sync::mpsc::Sender<Result<(), String>>>,
    lost_at: &mut Option<std::time::Instant>,
) -> Result<(), String> {
    let mut c = Conn::open(&conf.target, &conf.url, &conf.name).await?;
    let mut rnd = [0u8; 8];
    let _ = getrandom::getrandom(&mut rnd);
    let inbox = format!("_INBOX.{:016x}", u64::from_le_bytes(rnd));
    // The stream: created if missing (the same configuration on every node). A stream
    // made before with a shorter duplicate window (JetStream's default is 2 minutes) gets
    // this one's; a refusal is logged and the stream used.
    let create = json!({"name": conf.stream, "subjects": [format!("{}.>", conf.prefix)],
        "retention": "limits", "storage": "file", "discard": "old", "num_replicas": 1,
        "max_age": 7u64 * 24 * 3600 * 1_000_000_000, "duplicate_window": DUPLICATE_WINDOW_S * 1_000_000_000});
    let (v, window) = ensure_stream(&mut c, &inbox, &conf.url, &create).await?;
    if let Window::Refused(e) = window {
        crate::http::log::event(
            "nats_duplicate_window_kept",
            &[("stream", &conf.stream), ("error", &e)],
        );
    }
    let start_after = match delivered {
        Some(d) => *d,
        None => {
            let last = v["state"]["last_seq"].as_u64().unwrap_or(0);
            *delivered = Some(last);
            last
        }
    };
    // This node's consumer: every event after the last delivered, pushed in order.
    let deliver = format!("{inbox}.d");
    // Exact subjects: a wildcard subscription is not seen as the consumer's interest.
    c.write(format!("SUB {inbox}.x.* 1\r\nSUB {deliver} 2\r\n").as_bytes())
        .await?;
    let consumer = json!({"stream_name": conf.stream, "config": {
        "deliver_subject": deliver, "deliver_policy": "by_start_sequence", "opt_start_seq": start_after + 1,
        "ack_policy": "none", "replay_policy": "instant", "mem_storage": true,
        "idle_heartbeat": HEARTBEAT.as_nanos() as u64, "description": conf.name}});
    let r = c
        .request_sync(
            &format!("$JS.API.CONSUMER.CREATE.{}", conf.stream),
            consumer.to_string().as_bytes(),
            &inbox,
        )
        .await
        .map_err(|e| format!("NATS at {}: {e}", conf.url))?;
    let v: Value = serde_json::from_slice(&r).unwrap_or(Value::Null);
    if let Some(e) = v.get("error") {
        return Err(format!(
            "NATS at {}: cannot create a consumer on {}: {e}",
            conf.url, conf.stream
        ));
    }
    shared.connected.store(true, Ordering::SeqCst);
    if let Some(f) = first.take() {
        let _ = f.send(Ok(()));
    }
    if let Some(t) = lost_at.take() {
        crate::http::log::event(
            "nats_back",
            &[
                ("url", &conf.url),
                ("after_ms", &t.elapsed().as_millis()),
                ("resending", &outbox.len()),
                ("dropped", &shared.dropped.load(Ordering::Relaxed)),
            ],
        );
    }
    // What waited (or was never acknowledged) goes again, in order; the message ids
    // keep the stream from storing anything twice.
    for (id, p) in outbox.iter() {
        c.write(&hpub(
            &p.subject,
            &format!("{inbox}.x.p{id}"),
            &p.msg_id,
            &p.payload,
        ))
        .await?;
    }
    let mine = format!("{inbox}.x.");
    let mut requests: HashMap<u64, oneshot::Sender<Result<Vec<u8>, String>>> = HashMap::new();
    let mut next_req = 0u64;
    let mut expect_dseq = 1u64;
    let mut last_seen = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        while let Some(op) = parse(&mut c.buf)? {
            match op {
                Op::Ping => c.write(b"PONG\r\n").await?,
                Op::Err(e) => return Err(format!("NATS: {e}")),
                Op::Other => {}
                Op::Msg {
                    subject,
                    sid,
                    reply,
                    headers,
                    payload,
                } => {
                    let tail = subject.strip_prefix(&mine).unwrap_or("");
                    if sid == "2" {
                        last_seen = tokio::time::Instant::now();
                        if status(&headers).is_some() {
                            // Idle heartbeat (or another status): only a sign of life.
                            continue;
                        }
                        let Some((sseq, dseq)) = reply.as_deref().and_then(ack_seqs) else {
                            continue;
                        };
                        if dseq != expect_dseq {
                            return Err(format!(
                                "the consumer skipped (delivery {dseq}, expected {expect_dseq})"
                            ));
                        }
                        expect_dseq += 1;
                        if delivered.is_some_and(|d| sseq <= d) {
                            continue;
                        }
                        *delivered = Some(sseq);
                        if let Some(ev) = decode(&payload) {
                            let copy = own_id(&ev, &headers).is_some_and(|id| {
                                shared.seen.lock().expect("seen lock").is_copy(&id, sseq)
                            });
                            if copy {
                                continue;
                            }
                            let _ = shared.sequenced.send((sseq, ev.clone()));
                            let _ = shared.plain.send(ev);
                        }
                    } else if let Some(n) =
                        tail.strip_prefix('p').and_then(|n| n.parse::<u64>().ok())
                    {
                        let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                        if v.get("seq").is_some() && v.get("error").is_none() {
                            outbox.remove(&n);
                        } else {
                            // 503 (no stream) or a refusal: start again (the stream is
                            // made again if it was deleted).
                            return Err(format!(
                                "the stream refused an event: {}",
                                String::from_utf8_lossy(&payload)
                            ));
                        }
                    } else if let Some(n) =
                        tail.strip_prefix('r').and_then(|n| n.parse::<u64>().ok())
                    {
                        if let Some(tx) = requests.remove(&n) {
                            let _ = tx.send(if status(&headers) == Some(503) {
                                Err("no JetStream answers".into())
                            } else {
                                Ok(payload)
                            });
                        }
                    }
                }
            }
        }
        tokio::select! {
            r = c.fill() => r?,
            cmd = rx.recv() => match cmd {
                None => return Ok(()),
                Some(Cmd::Publish(p)) => {
                    let frame = hpub(&p.subject, &format!("{inbox}.x.p{}", *next_id + 1), &p.msg_id, &p.payload);
                    push(shared, outbox, next_id, p);
                    c.write(&frame).await?;
                }
                Some(Cmd::Request { subject, payload, reply }) => {
                    next_req += 1;
                    if requests.len() > 1000 {
                        requests.retain(|_, t| !t.is_closed());
                    }
                    requests.insert(next_req, reply);
                    let mut f = format!("PUB {subject} {inbox}.x.r{next_req} {}\r\n", payload.len()).into_bytes();
                    f.extend_from_slice(&payload);
                    f.extend_from_slice(b"\r\n");
                    c.write(&f).await?;
                }
            },
            _ = tick.tick() => {
                if last_seen.elapsed() > HEARTBEAT * 3 {
                    return Err("no heartbeat from the consumer".into());
                }
            }
        }
    }
}

/// The stream and delivery sequences in a JetStream message's reply subject
/// (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`, or the newer
/// form with a domain and an account hash in front and a token at the end).
pub(crate) fn ack_seqs(reply: &str) -> Option<(u64, u64)> {
    let t: Vec<&str> = reply.split('.').collect();
    let (s, d) = match t.len() {
        9 => (5, 6),
        n if n >= 11 => (7, 8),
        _ => return None,
    };
    Some((t[s].parse().ok()?, t[d].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A later copy of an event is passed over; the first copy read again is not; the
    /// oldest ids are forgotten beyond [`SEEN`].
    #[test]
    fn a_later_copy_is_passed_over() {
        let mut s = Seen::default();
        assert!(!s.is_copy("case-7", 10));
        assert!(!s.is_copy("case-8", 11));
        assert!(!s.is_copy("case-7", 10), "the same copy read again");
        assert!(s.is_copy("case-7", 40), "a second copy later on");
        // Read back newest first: the later copy is met first, then the earlier one,
        // which becomes the first copy — the later one is passed over from then on.
        assert!(!s.is_copy("case-9", 90));
        assert!(!s.is_copy("case-9", 50), "the earlier copy is the first");
        assert!(s.is_copy("case-9", 90), "the later copy is now a copy");
        assert!(!s.is_copy("case-9", 50));
        for i in 0..SEEN as u64 {
            s.is_copy(&format!("n-{i}"), 100 + i);
        }
        assert!(s.first.len() <= SEEN);
        assert!(!s.is_copy("case-7", 999_999), "forgotten beyond SEEN");
    }

    /// An existing stream with a shorter duplicate window is raised to this one's; one
    /// with as long a window (or longer) is left alone.
    #[test]
    fn a_shorter_duplicate_window_is_raised() {
        let w = DUPLICATE_WINDOW_S * 1_000_000_000;
        let cfg = json!({"name": "s", "duplicate_window": 120_000_000_000u64});
        assert_eq!(shorter_window(&cfg, w), Some(cfg.clone()));
        assert!(shorter_window(&json!({"duplicate_window": w}), w).is_none());
        assert!(shorter_window(&json!({"duplicate_window": w * 2}), w).is_none());
        assert!(shorter_window(&Value::Null, w).is_none());
    }

    /// An event's own id: a case event's number, else its message id header.
    #[test]
    fn own_ids() {
        let h = Some(b"NATS/1.0\r\nNats-Msg-Id: n1-42-7\r\n\r\n".to_vec());
        let ev = BusEvent::DatasetImported {
            name: "x".into(),
            rows: 1,
        };
        assert_eq!(own_id(&ev, &h).as_deref(), Some("n1-42-7"));
        assert_eq!(own_id(&ev, &None), None);
    }
}
