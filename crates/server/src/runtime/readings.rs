//! Several nodes on NATS (issue 20): the readings work queue. Every node's MQTT bridge
//! hands what it hears to one JetStream stream with work-queue retention
//! (`<STREAM>_READINGS`, subject `<prefix>-readings.in`), each message with a
//! `Nats-Msg-Id` ([`queue_id`]) — the same message heard by two nodes (every node
//! subscribes to the broker) is stored once within the [`DUPLICATE_WINDOW`]. A message
//! whose every reading names its own time (`intake::sensor::mqtt::names_its_times`) is the
//! same reading whenever it is heard: its id is a hash of its route and payload. One that
//! does not (a steady sensor publishing `{"metric":"water_level","value":1.2}` every 30 s)
//! is a new reading at each repeat: its id also holds the second it was heard in, so the
//! repeats are each kept while the copies the nodes heard within one second, and a
//! bridge's retries (the same time heard), are kept once. Copies heard either side of a
//! second are both kept; the holder applies one ([`Copies`], by the node that heard each —
//! [`NODE`] — and when that node heard the same message before — [`BEFORE`]).
//!
//! The holder of the singleton lease
//! pulls with one durable consumer ([`CONSUMER`], explicit acks) and acknowledges a batch
//! after it was applied — its alarms' states written and the cases they raise filed — so
//! a holder killed before that leaves the batch to the next holder (redelivered after
//! [`ACK_WAIT`]); a new holder — when the consumer has unacknowledged messages — first
//! waits out the ack wait, so that those come again before anything newer (a device's
//! readings stay in the order they were heard), then rebuilds the alarm state from the
//! store (`intake::sensor::ensure_current`, which also ran at the gain), then continues
//! from the consumer; it applies and acknowledges a batch only while it still holds the
//! lease at the epoch it took over with. Each message carries when its bridge heard it
//! ([`HEARD`], outside the id): the time of a reading that names none. A bridge retries a
//! batch for at most [`RETRY_FOR`], well inside the [`DUPLICATE_WINDOW`], so nothing is
//! handed in again after the window passed.
//!
//! Applied once: the holder writes the queue's mark — which stream sequences were applied
//! (every one up to a sequence, and those beyond it: a batch delivered again comes back
//! after newer ones), under [`ReadingsQueue::mark_name`] — in the same transaction as the
//! alarm states the batch changed, fenced by the singleton lease's epoch the batch was
//! pulled under (a holder paused past its lease writes neither). A new holder reads the
//! mark at takeover (raised to the consumer's ack floor) and acknowledges what it covers
//! without applying it, so a batch whose holder died between applying and acknowledging
//! is applied once. A holder that died before writing the mark (its alarms'
//! cases filed, their states not yet written) leaves the batch to be applied again: each
//! alarm's case is filed once per (device, rule, time it fired) — a keyed report — so the
//! second application joins the first one's case (or, when that case was closed
//! meanwhile, the one filed after it under a key naming it — a chain). What a dead holder held only in memory
//! (its reading counters, the vital-sign minute in progress) is lost with it, as when a
//! single node is killed.
//!
//! The client is `runtime::jetstream`'s (NATS's text protocol): `$JS.API.STREAM.CREATE`,
//! `$JS.API.CONSUMER.DURABLE.CREATE`, `$JS.API.CONSUMER.MSG.NEXT` (a pull of at most
//! [`BATCH`] messages, expiring after a short wait) and `+ACK` to each message's reply
//! subject.

use crate::http::node::{Heard, ReadingsQueue as Queue};
use crate::intake::sensor::{ingest_queued, Halt, Input, Queued};
use crate::runtime::jetstream::{
    ensure_stream, parse, status, target, Conn, NatsOptions, Op, Target, Window,
};
use crate::AppState;
use axum::body::Bytes;
use cityos_core::time::Millis;
use cityos_engine::store::QueueMark;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The durable consumer the holder pulls with (one for the cluster).
pub const CONSUMER: &str = "appliers";
/// How long a pulled batch may stay unacknowledged before it is delivered again (to the
/// next holder, when this one died).
pub const ACK_WAIT: Duration = Duration::from_secs(10);
/// Messages pulled (and applied together) at most.
pub const BATCH: usize = 500;
/// The work queue's duplicate window: a message with the same id ([`queue_id`]: route and
/// payload, and the second heard for one without times of its own) handed in again within
/// it (by another node's bridge, or resent after a reconnect) is dropped.
/// Ten minutes, much longer than a bridge tries to hand in a batch ([`RETRY_FOR`]), so
/// that a node that lost NATS for a while never hands in again what the other nodes
/// already did (and the holder applied) once the window passed. An existing stream with a
/// shorter window is updated to this one.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long after a batch was heard a bridge still tries to hand it in: the duplicate
/// window less two minutes' margin. After that the batch is dropped (counted, logged) —
/// every node's bridge heard the same messages, so the ones that reached NATS handed them
/// in.
pub const RETRY_FOR: Duration = crate::http::node::READINGS_RETRY_FOR;
/// Bytes pulled in one batch at most (the server stops the batch before the message
/// that would pass it), so a batch's memory is bounded however large its messages; a
/// message is at most `intake::sensor::MESSAGE_LIMIT` (256 KiB), far below.
pub const BATCH_BYTES: usize = 8 << 20;
/// How long one JetStream exchange may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// How long past its own expiry a pull may go unanswered before the connection is taken
/// for lost: longer than other exchanges, since a pull given up on is a takeover (what it
/// delivered comes again after the ack wait, and readings wait meanwhile) — a node
/// starved of CPU for a few seconds (a busy machine, another node starting beside it)
/// must not cost that.
const PULL_SILENCE: Duration = Duration::from_secs(10);
/// How long past its expiry a pull that delivered messages is waited for before what came
/// is taken as its batch.
const PULL_GRACE: Duration = Duration::from_secs(1);

/// One message pulled from the queue.
pub struct Delivery {
    /// The stream sequence.
    pub seq: u64,
    /// Where to send its `+ACK`.
    ack: String,
    pub route: String,
    pub payload: Bytes,
    /// When the bridge that handed it in heard it ([`HEARD`]); `None` from an older one.
    pub heard: Option<Millis>,
    /// The node whose bridge handed it in ([`NODE`]); `None` from an older one.
    pub node: Option<String>,
    /// When that node last heard the same route and payload before ([`BEFORE`]).
    pub before: Option<Millis>,
}

/// The header each queued message carries the time its bridge heard it in (ms since the
/// epoch) — outside the payload, so the `Nats-Msg-Id` of the same message heard by two
/// nodes stays one.
pub const HEARD: &str = "Cityos-Heard";

/// The header naming the node whose bridge heard a queued message (outside the id, like
/// [`HEARD`]): the holder tells two nodes' copies of one message from a device's repeats
/// by it ([`Copies`]).
pub const NODE: &str = "Cityos-Node";

/// The header with when the same node last heard the same route and payload before (ms
/// since the epoch; absent when not within [`RECENT_FOR`]): see [`Copies`].
pub const BEFORE: &str = "Cityos-Before";

/// A header's value in a message's headers.
fn header<'h>(headers: Option<&'h [u8]>, name: &str) -> Option<&'h str> {
    let h = std::str::from_utf8(headers?).ok()?;
    h.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// [`HEARD`]'s value in a message's headers.
fn heard_of(headers: Option<&[u8]>) -> Option<Millis> {
    header(headers, HEARD)?.parse().ok()
}

struct Link {
    c: Conn,
    inbox: String,
    next: u64,
}

/// The readings work queue on NATS JetStream; see the module's text.
pub struct ReadingsQueue {
    target: Target,
    url: String,
    stream: String,
    subject: String,
    name: String,
    publisher: tokio::sync::Mutex<Option<Link>>,
    puller: tokio::sync::Mutex<Option<Link>>,
    /// When the stream was made (as JetStream gives it), once known: with the stream's
    /// name it names the queue's mark, so a stream made anew (numbered from 1 again)
    /// starts a mark of its own.
    created: std::sync::Mutex<Option<String>>,
    /// This node's name ([`NODE`]).
    node: String,
    /// What this node's bridge heard lately ([`BEFORE`]).
    recent: std::sync::Mutex<Recent>,
}

/// A hash of a route and payload — and of the second it was heard in, when given (then
/// after a mark no route's length can be, so that it never equals the hash of another
/// payload without one). Without it, the same as every earlier version's.
fn digest(route: &str, payload: &[u8], second: Option<Millis>) -> [u8; 16] {
    use blake2::Digest;
    let mut h = blake2::Blake2s256::new();
    if second.is_some() {
        h.update(u64::MAX.to_le_bytes());
    }
    h.update((route.len() as u64).to_le_bytes());
    h.update(route.as_bytes());
    h.update(payload);
    if let Some(s) = second {
        h.update(s.to_le_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A message's id: a hash of its route and payload (the same on every node).
pub fn message_id(route: &str, payload: &[u8]) -> String {
    hex(&digest(route, payload, None))
}

/// The `Nats-Msg-Id` a message is handed in with: [`message_id`] when it names its own
/// times (the same reading however often it is heard or handed in); otherwise a hash of
/// its route, its payload and the second it was heard in (`heard / 1000`), so that a
/// steady sensor's repeats, seconds apart, are each kept while the copies several nodes
/// heard within the same second, and a bridge's own retries (the same heard time), are
/// kept once.
pub fn queue_id(route: &str, payload: &[u8], timed: bool, heard: Millis) -> String {
    if timed {
        message_id(route, payload)
    } else {
        hex(&digest(route, payload, Some(heard.div_euclid(1000))))
    }
}

/// Within how far apart (by when they were heard) two nodes' copies of one message are
/// taken for one ([`Copies`]).
pub const COPY_WITHIN: Millis = 2_000;

/// How long a bridge remembers what it heard ([`BEFORE`]): an earlier hearing further
/// back could not change what [`Copies`] decides (it looks [`COPY_WITHIN`] either side).
pub const RECENT_FOR: Millis = 2 * COPY_WITHIN;

/// How long (by the time heard, behind the newest message applied) the holder remembers
/// the messages it applied, to recognise a later copy from another node ([`Copies`]).
pub const COPIES_KEPT_FOR: Millis = 30_000;

/// The most applied messages [`Copies`] remembers (and messages [`Recent`] does): the
/// oldest go first beyond it.
pub const COPIES_CAP: usize = 100_000;

/// The nodes [`Copies`] tells apart (a bit each); a node beyond them is never taken for a
/// copy's source.
const COPIES_NODES: usize = 64;

/// A bridge's memory of when it last heard each route and payload (keyed by the hash of
/// [`message_id`]), to say in [`BEFORE`] when it heard a message before.
#[derive(Default)]
pub struct Recent {
    last: std::collections::HashMap<[u8; 16], (Millis, Option<Millis>)>,
    pruned_at: Millis,
}

impl Recent {
    /// When this node heard `key` before it heard it at `heard` (`None`: not within
    /// [`RECENT_FOR`]); remembers `heard`. The same hearing again (a batch tried again)
    /// answers as the first time.
    pub fn before(&mut self, key: [u8; 16], heard: Millis) -> Option<Millis> {
        if heard - self.pruned_at >= 1_000 || self.last.len() >= COPIES_CAP {
            self.last.retain(|_, (h, _)| *h >= heard - RECENT_FOR);
            if self.last.len() >= COPIES_CAP {
                self.last.clear();
            }
            self.pruned_at = heard;
        }
        let (last, before) = self.last.entry(key).or_insert((heard, None));
        if *last < heard {
            *before = Some(*last);
            *last = heard;
        }
        before.filter(|b| *b >= heard - RECENT_FOR)
    }
}

/// One message the holder applied, as [`Copies`] remembers it.
struct AppliedCopy {
    node: usize,
    heard: Millis,
    before: Option<Millis>,
    /// The nodes a copy of it came from (a bit per node): at most one each.
    absorbed: u64,
}

/// The holder's filter of copies. A message that does not name its own times is handed
/// in with the second it was heard in inside its id ([`queue_id`]), so when two nodes
/// heard one broker delivery either side of a second (node A at x.999 s, node B at
/// x+1.001 s) the queue keeps both. Such a message from node X is a copy — not applied —
/// when a message with the same route and payload from another node Y was applied, heard
/// within [`COPY_WITHIN`] of it, nearer to it than to either node's own previous hearing
/// of the same message ([`BEFORE`]: so that a device repeating itself faster than
/// [`COPY_WITHIN`] is not taken for copies), and not yet matched by a message of X (an
/// applied message absorbs at most one copy per other node; the nearest is taken).
/// Messages from one node are never copies of each other: each node hears each broker
/// delivery once. Messages that name their own times go through it too — the queue
/// already keeps those once, unless two nodes judged one differently (a device one of
/// them does not know yet), and then the second is a copy all the same.
///
/// Pure and bounded: messages are remembered [`COPIES_KEPT_FOR`] behind the newest heard
/// time applied, at most [`COPIES_CAP`]. Copies from a node that heard it more than
/// [`COPY_WITHIN`] later (a slow node, or clocks that far apart), or that come after the
/// applied message was forgotten, are applied twice; a message without the node or the
/// time heard (from an older node) is always applied. The holder starts a new one when it
/// takes over: what the last holder applied is not known to it.
#[derive(Default)]
pub struct Copies {
    nodes: Vec<String>,
    by_key: std::collections::HashMap<[u8; 16], std::collections::VecDeque<AppliedCopy>>,
    /// Every remembered message in the order it was applied (and so each key's in its own).
    order: std::collections::VecDeque<(Millis, [u8; 16])>,
    newest: Millis,
}

impl Copies {
    /// Whether the message (route and payload hashed as [`message_id`]'s `key`) is a copy
    /// of one applied before — then it is not to be applied; otherwise it is remembered
    /// as applied. Messages must come in the order they are applied.
    pub fn is_copy(
        &mut self,
        key: [u8; 16],
        node: Option<&str>,
        heard: Option<Millis>,
        before: Option<Millis>,
    ) -> bool {
        let (Some(node), Some(heard)) = (node, heard) else {
            return false;
        };
        let x = match self.nodes.iter().position(|n| n == node) {
            Some(x) => x,
            None if self.nodes.len() < COPIES_NODES => {
                self.nodes.push(node.to_string());
                self.nodes.len() - 1
            }
            None => return false,
        };
        self.newest = self.newest.max(heard);
        self.prune();
        let applied = self.by_key.entry(key).or_default();
        let mut nearest: Option<(usize, Millis)> = None;
        for (i, a) in applied.iter().enumerate() {
            let d = (heard - a.heard).abs();
            let mine = a.node == x || a.absorbed & (1 << x) != 0;
            // Nearer to it than to either node's previous hearing: else it is more likely
            // the next (or last) repeat of a device than a copy.
            let repeat = before.is_some_and(|b| (a.heard - b).abs() <= d)
                || a.before.is_some_and(|b| (heard - b).abs() <= d);
            if !mine && !repeat && d <= COPY_WITHIN && nearest.is_none_or(|(_, n)| d < n) {
                nearest = Some((i, d));
            }
        }
        if let Some((i, _)) = nearest {
            applied[i].absorbed |= 1 << x;
            return true;
        }
        applied.push_back(AppliedCopy {
            node: x,
            heard,
            before,
            absorbed: 0,
        });
        self.order.push_back((heard, key));
        false
    }

    /// Forgets what was applied more than [`COPIES_KEPT_FOR`] before the newest, and the
    /// oldest beyond [`COPIES_CAP`].
    fn prune(&mut self) {
        while let Some(&(heard, key)) = self.order.front() {
            if heard >= self.newest - COPIES_KEPT_FOR && self.order.len() < COPIES_CAP {
                break;
            }
            self.order.pop_front();
            if let Some(q) = self.by_key.get_mut(&key) {
                q.pop_front();
                if q.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    /// The messages of a pulled batch to apply, in order: its copies left out (they are
    /// acknowledged with the batch, never applied) and logged once per batch
    /// (`readings_queue_copies`).
    pub fn keep<'d>(&mut self, batch: Vec<&'d Delivery>) -> Vec<&'d Delivery> {
        let all = batch.len();
        let kept: Vec<&Delivery> = batch
            .into_iter()
            .filter(|d| {
                !self.is_copy(
                    digest(&d.route, &d.payload, None),
                    d.node.as_deref(),
                    d.heard,
                    d.before,
                )
            })
            .collect();
        if kept.len() < all {
            crate::http::log::event(
                "readings_queue_copies",
                &[("copies", &(all - kept.len())), ("messages", &all)],
            );
        }
        kept
    }

    /// How many applied messages it remembers.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The wire form: the route's length (2 bytes), the route, the payload.
fn encode(route: &str, payload: &[u8]) -> Vec<u8> {
    let r = route.as_bytes();
    let n = r.len().min(u16::MAX as usize);
    let mut v = Vec::with_capacity(2 + n + payload.len());
    v.extend_from_slice(&(n as u16).to_be_bytes());
    v.extend_from_slice(&r[..n]);
    v.extend_from_slice(payload);
    v
}

fn decode(b: &[u8]) -> Option<(String, Bytes)> {
    let n = u16::from_be_bytes([*b.first()?, *b.get(1)?]) as usize;
    let route = std::str::from_utf8(b.get(2..2 + n)?).ok()?.to_string();
    Some((route, Bytes::copy_from_slice(&b[2 + n..])))
}

impl ReadingsQueue {
    /// The queue beside the bus's stream `o.stream` (nothing is contacted yet).
    pub fn new(o: &NatsOptions) -> Result<ReadingsQueue, String> {
        crate::runtime::jetstream::check_stream(&o.stream)?;
        Ok(ReadingsQueue {
            target: target(&o.url)?,
            url: o.url.clone(),
            stream: format!("{}_READINGS", o.stream),
            subject: format!("{}-readings.in", o.stream.to_lowercase()),
            name: format!("cityos-{}-readings", o.node),
            publisher: tokio::sync::Mutex::new(None),
            puller: tokio::sync::Mutex::new(None),
            created: std::sync::Mutex::new(None),
            node: o.node.clone(),
            recent: std::sync::Mutex::new(Recent::default()),
        })
    }

    /// The stream's name (tests delete it).
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The name the queue's mark is kept under in the store (`<stream>@<made at>`), once
    /// the stream was reached.
    pub fn mark_name(&self) -> Option<String> {
        let c = self.created.lock().expect("created").clone()?;
        Some(format!("{}@{c}", self.stream))
    }

    fn note_created(&self, v: &Value) {
        if let Some(c) = v["created"].as_str() {
            *self.created.lock().expect("created") = Some(c.to_string());
        }
    }

    async fn open(&self, consumer: bool) -> Result<Link, String> {
        let mut c = Conn::open(&self.target, &self.url, &self.name).await?;
        let mut rnd = [0u8; 8];
        let _ = getrandom::getrandom(&mut rnd);
        let inbox = format!("_INBOX.{:016x}", u64::from_le_bytes(rnd));
        let create = json!({"name": self.stream, "subjects": [self.subject],
            "retention": "workqueue", "storage": "file", "discard": "old", "num_replicas": 1,
            "max_age": 24u64 * 3600 * 1_000_000_000,
            "duplicate_window": DUPLICATE_WINDOW.as_nanos() as u64});
        let (v, window) = ensure_stream(&mut c, &inbox, &self.url, &create).await?;
        // A shorter duplicate window left as it was could store twice a batch resent late.
        if let Window::Refused(e) = window {
            return Err(format!(
                "NATS at {}: cannot widen the duplicate window of {}: {e}",
                self.url, self.stream
            ));
        }
        self.note_created(&v);
        if consumer {
            let cfg = json!({"stream_name": self.stream, "config": {
                "durable_name": CONSUMER, "ack_policy": "explicit",
                "ack_wait": ACK_WAIT.as_nanos() as u64, "deliver_policy": "all",
                "max_ack_pending": 20 * BATCH, "max_deliver": -1,
                "description": "cityos: the holder of the singleton lease applies readings"}});
            let v = c
                .api(
                    &self.url,
                    &format!("$JS.API.CONSUMER.DURABLE.CREATE.{}.{CONSUMER}", self.stream),
                    cfg.to_string().as_bytes(),
                    &inbox,
                )
                .await?;
            if let Some(e) = v.get("error") {
                return Err(format!(
                    "NATS at {}: cannot create the consumer {CONSUMER} on {}: {e}",
                    self.url, self.stream
                ));
            }
        }
        c.write(format!("SUB {inbox}.* 1\r\n").as_bytes()).await?;
        Ok(Link { c, inbox, next: 0 })
    }

    /// Publishes a chunk; answers how many messages the stream refused (an error answer
    /// to one message: final), `Err` when the connection failed or went quiet.
    async fn publish_on(
        &self,
        l: &mut Link,
        batch: &[Heard],
        heard: Millis,
    ) -> Result<usize, String> {
        let first = l.next + 1;
        let mut frame = Vec::new();
        for m in batch {
            l.next += 1;
            let before = self
                .recent
                .lock()
                .expect("recent lock")
                .before(digest(&m.route, &m.payload, None), heard)
                .map_or(String::new(), |b| format!("{BEFORE}: {b}\r\n"));
            let hdr = format!(
                "NATS/1.0\r\nNats-Msg-Id: {}\r\n{HEARD}: {heard}\r\n{NODE}: {}\r\n{before}\r\n",
                queue_id(&m.route, &m.payload, m.timed, heard),
                self.node
            );
            let body = encode(&m.route, &m.payload);
            frame.extend_from_slice(
                format!(
                    "HPUB {} {}.{} {} {}\r\n{hdr}",
                    self.subject,
                    l.inbox,
                    l.next,
                    hdr.len(),
                    hdr.len() + body.len()
                )
                .as_bytes(),
            );
            frame.extend_from_slice(&body);
            frame.extend_from_slice(b"\r\n");
        }
        l.c.write(&frame).await?;
        let mut waiting = batch.len();
        let mut refused = 0;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mine = format!("{}.", l.inbox);
        while waiting > 0 {
            while let Some(op) = parse(&mut l.c.buf)? {
                match op {
                    Op::Ping => l.c.write(b"PONG\r\n").await?,
                    Op::Err(e) => return Err(format!("NATS: {e}")),
                    Op::Msg {
                        subject, payload, ..
                    } => {
                        let n = subject
                            .strip_prefix(&mine)
                            .and_then(|n| n.parse::<u64>().ok());
                        if n.is_some_and(|n| n >= first && n <= l.next) {
                            let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                            if v.get("seq").is_none() || v.get("error").is_some() {
                                // Refused by the stream (not the connection): final.
                                if refused == 0 {
                                    crate::http::log::event(
                                        "readings_queue_refused_message",
                                        &[("answer", &String::from_utf8_lossy(&payload))],
                                    );
                                }
                                refused += 1;
                            }
                            waiting -= 1;
                        }
                    }
                    Op::Other => {}
                }
            }
            if waiting == 0 {
                break;
            }
            tokio::time::timeout_at(deadline, l.c.fill())
                .await
                .map_err(|_| "the readings queue did not acknowledge in time".to_string())??;
        }
        Ok(refused)
    }

    /// Pulls at most `max` messages, waiting at most `wait` for the first.
    pub async fn pull(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, String> {
        let mut g = self.puller.lock().await;
        if g.is_none() {
            *g = Some(self.open(true).await?);
        }
        let l = g.as_mut().expect("opened");
        let r = self.pull_on(l, max, wait).await;
        if r.is_err() {
            *g = None;
        }
        r
    }

    async fn pull_on(
        &self,
        l: &mut Link,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, String> {
        l.next += 1;
        let reply = format!("{}.{}", l.inbox, l.next);
        let req =
            json!({"batch": max, "expires": wait.as_nanos() as u64, "max_bytes": BATCH_BYTES})
                .to_string();
        l.c.write(
            format!(
                "PUB $JS.API.CONSUMER.MSG.NEXT.{}.{CONSUMER} {reply} {}\r\n{req}\r\n",
                self.stream,
                req.len()
            )
            .as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        let asked = tokio::time::Instant::now();
        let deadline = asked + wait + PULL_SILENCE;
        // A pull that delivered messages is over once it expired: the server does not
        // always say so (no 408 followed some partly filled pulls here), so what came is
        // the batch a moment after its expiry. (A delivery arriving later still is taken
        // by the next pull: deliveries are matched by subscription, not by pull.)
        let over = asked + wait + PULL_GRACE;
        loop {
            while let Some(op) = parse(&mut l.c.buf)? {
                match op {
                    Op::Ping => l.c.write(b"PONG\r\n").await?,
                    Op::Err(e) => return Err(format!("NATS: {e}")),
                    // Deliveries keep their own subject (matched by the subscription);
                    // the pull's status messages come to its reply subject.
                    Op::Msg {
                        subject,
                        sid,
                        reply: ack,
                        headers,
                        payload,
                    } if sid == "1" => {
                        match status(&headers) {
                            // Another pull's (ended) status: not this one's.
                            Some(_) if subject != reply => {}
                            // No messages (404), the pull expired (408), or it was cut
                            // short (409): what came is the batch.
                            Some(404 | 408 | 409) => return Ok(out),
                            Some(100) => {}
                            Some(s) if s >= 400 => {
                                return Err(format!("the readings queue answered a pull with {s}"))
                            }
                            _ => {
                                let Some(ack) = ack else { continue };
                                let seq =
                                    crate::runtime::jetstream::ack_seqs(&ack).map_or(0, |(s, _)| s);
                                let h = headers.as_deref();
                                let heard = heard_of(h);
                                let node = header(h, NODE).map(str::to_string);
                                let before = header(h, BEFORE).and_then(|b| b.parse().ok());
                                match decode(&payload) {
                                    Some((route, payload)) => out.push(Delivery {
                                        seq,
                                        ack,
                                        route,
                                        payload,
                                        heard,
                                        node,
                                        before,
                                    }),
                                    // Not ours: acknowledged with the batch, never applied.
                                    None => out.push(Delivery {
                                        seq,
                                        ack,
                                        route: String::new(),
                                        payload: Bytes::new(),
                                        heard: None,
                                        node: None,
                                        before: None,
                                    }),
                                }
                                if out.len() >= max {
                                    return Ok(out);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            let until = if out.is_empty() { deadline } else { over };
            match tokio::time::timeout_at(until, l.c.fill()).await {
                Ok(r) => r?,
                Err(_) if !out.is_empty() => return Ok(out),
                // Unanswered: a new connection next time (what was pulled here comes
                // again after the ack wait).
                Err(_) => return Err("the readings queue did not answer a pull".into()),
            }
        }
    }

    /// Messages delivered but not yet acknowledged (pulled by a holder that died or lost
    /// the lease before its acks: they come again after [`ACK_WAIT`], ahead of newer ones),
    /// and the consumer's ack floor (every message up to that sequence was acknowledged).
    pub async fn in_flight(&self) -> Result<(u64, u64), String> {
        let mut g = self.puller.lock().await;
        if g.is_none() {
            *g = Some(self.open(true).await?);
        }
        let l = g.as_mut().expect("opened");
        l.next += 1;
        let reply = format!("{}.{}", l.inbox, l.next);
        let subject = format!("$JS.API.CONSUMER.INFO.{}.{CONSUMER}", self.stream);
        let r = async {
            l.c.write(format!("PUB {subject} {reply} 0\r\n\r\n").as_bytes())
                .await?;
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            loop {
                while let Some(op) = parse(&mut l.c.buf)? {
                    match op {
                        Op::Ping => l.c.write(b"PONG\r\n").await?,
                        Op::Err(e) => return Err(format!("NATS: {e}")),
                        Op::Msg {
                            subject, payload, ..
                        } if subject == reply => {
                            let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                            let pending = v["num_ack_pending"]
                                .as_u64()
                                .ok_or_else(|| format!("NATS answered {subject} with {v}"))?;
                            return Ok((
                                pending,
                                v["ack_floor"]["stream_seq"].as_u64().unwrap_or(0),
                            ));
                        }
                        _ => {}
                    }
                }
                tokio::time::timeout_at(deadline, l.c.fill())
                    .await
                    .map_err(|_| format!("NATS did not answer {subject} in time"))??;
            }
        }
        .await;
        if r.is_err() {
            *g = None;
        }
        r
    }

    /// Acknowledges what was pulled (and applied): the stream removes it.
    pub async fn ack(&self, done: &[Delivery]) -> Result<(), String> {
        let mut g = self.puller.lock().await;
        let Some(l) = g.as_mut() else {
            return Err("the readings queue's connection was lost before the acks".into());
        };
        let mut frame = Vec::new();
        for d in done {
            frame.extend_from_slice(format!("PUB {} 4\r\n+ACK\r\n", d.ack).as_bytes());
        }
        let r = l.c.write(&frame).await;
        if r.is_err() {
            *g = None;
        }
        r
    }

    /// Lets go of the consumer's connection (this node no longer applies readings).
    pub async fn let_go(&self) {
        *self.puller.lock().await = None;
    }

    /// Deletes the queue's stream (tests clean up after themselves).
    pub fn delete(url: &str, stream: &str) -> Result<(), String> {
        crate::runtime::jetstream::JetStreamBus::delete_stream(url, &format!("{stream}_READINGS"))
    }
}

impl Queue for ReadingsQueue {
    fn publish<'a>(
        &'a self,
        batch: Vec<Heard>,
        heard: Millis,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let mut g = self.publisher.lock().await;
            if g.is_none() {
                *g = Some(self.open(false).await?);
            }
            let l = g.as_mut().expect("opened");
            let mut refused = 0;
            for chunk in batch.chunks(BATCH) {
                match self.publish_on(l, chunk, heard).await {
                    Ok(n) => refused += n,
                    Err(e) => {
                        *g = None;
                        return Err(e);
                    }
                }
            }
            Ok(refused)
        })
    }
}

/// The holder's loop (see [`holder`]), started again when it ends or panics (after 1 s,
/// doubling to 30 s while it keeps failing fast; logged `readings_queue_restarted`, loop
/// `readings_queue`) until `stop`.
pub async fn apply(st: AppState, q: Arc<ReadingsQueue>, stop: Arc<AtomicBool>) {
    let mut backoff = Duration::from_secs(1);
    while !stop.load(Ordering::SeqCst) {
        let started = tokio::time::Instant::now();
        let r = tokio::spawn(holder(st.clone(), q.clone(), stop.clone())).await;
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let why = match r {
            Ok(()) => "ended".to_string(),
            Err(e) => format!("panicked: {e}"),
        };
        crate::http::log::event("readings_queue_restarted", &[("why", &why)]);
        st.0.loops
            .error("readings_queue", &format!("the holder's loop {why}"));
        // A new start takes over afresh (a new consumer connection, the state rebuilt).
        q.let_go().await;
        crate::intake::sensor::rebuild_again(&st).await;
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// The holder's loop: while this node holds the singleton lease, pull a batch, apply it
/// (the alarms it raises filed), acknowledge it; a node that loses the lease lets go of
/// the consumer. On gaining the lease (or holding it at a new epoch) it first waits out
/// what the last holder pulled and never acknowledged, then rebuilds the alarm state from
/// the store. Just before applying a batch and again before acknowledging it, it checks
/// that it still holds the lease at the epoch it took over with; when not, it lets go of
/// the consumer's connection without acknowledging (the batch comes again to the new
/// holder). A pull that fails, or a batch whose mark could not be written, is handled
/// like a takeover: what it left unacknowledged is waited out before anything newer.
/// Errors are counted as loop `readings_queue`; the loop never ends on one.
async fn holder(st: AppState, q: Arc<ReadingsQueue>, stop: Arc<AtomicBool>) {
    // The singleton epoch this node took the consumer over at.
    let mut holding: Option<Option<Option<i64>>> = None;
    // The queue's mark as this holder knows it (under its name): which sequences were
    // applied.
    let mut applied: Option<(String, Applied)> = None;
    let mut fault = Fault::from_env();
    // When the applied set was last raised to the consumer's ack floor.
    let mut floored = tokio::time::Instant::now();
    // Two nodes' copies of a message the queue kept twice (see `Copies`).
    let mut copies = Copies::default();
    let still = |st: &AppState, at: Option<Option<i64>>| {
        crate::http::node::runs_jobs(st) && crate::http::node::singleton_epoch(st) == at
    };
    while !stop.load(Ordering::SeqCst) {
        match crate::intake::sensor::ensure_current(&st).await {
            Ok(true) => {
                let epoch = crate::http::node::singleton_epoch(&st);
                if holding != Some(epoch) {
                    if holding.take().is_some() {
                        // Held again at a new epoch (another node may have held it
                        // between): a new connection, a takeover.
                        q.let_go().await;
                    }
                    // Just became the holder: what the last holder pulled but never
                    // acknowledged comes first (after the ack wait), so that a device's
                    // readings are applied in the order they were heard.
                    let flight = q.in_flight().await;
                    // The stream the floor is of (made anew during the wait: not this one's).
                    let floor_of = q.mark_name();
                    let floor = match flight {
                        Ok((0, floor)) => floor,
                        Ok((n, floor)) => {
                            crate::http::log::event(
                                "readings_queue_waiting",
                                &[("unacknowledged", &n), ("ms", &ACK_WAIT.as_millis())],
                            );
                            tokio::time::sleep(ACK_WAIT + Duration::from_millis(500)).await;
                            // Then the alarm state again from the store: what the last
                            // holder wrote while its batch was out is there now.
                            crate::intake::sensor::rebuild_again(&st).await;
                            match crate::intake::sensor::ensure_current(&st).await {
                                Ok(true) if still(&st, epoch) => floor,
                                Ok(_) => continue,
                                Err(e) => {
                                    st.0.loops.error("readings_queue", &e.detail);
                                    continue;
                                }
                            }
                        }
                        Err(e) => {
                            st.0.loops.error("readings_queue", &e);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    // What the last holders applied: a batch one of them applied (its
                    // mark written with its alarm states) but never acknowledged is not
                    // applied again; everything up to the consumer's ack floor was.
                    let loaded = match q.mark_name() {
                        Some(name) if Some(&name) == floor_of.as_ref() => {
                            load_applied(&st, name, floor).await
                        }
                        Some(name) => load_applied(&st, name, 0).await,
                        None => Err("the readings queue was never reached".into()),
                    };
                    match loaded {
                        Ok(a) => applied = Some(a),
                        Err(e) => {
                            st.0.loops.error("readings_queue", &e);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    }
                    holding = Some(epoch);
                    copies = Copies::default();
                }
            }
            Ok(false) => {
                if holding.take().is_some() {
                    q.let_go().await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => {
                st.0.loops.error("readings_queue", &e.detail);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let Some(at) = holding else { continue };
        let asked = tokio::time::Instant::now();
        let batch = match q.pull(BATCH, Duration::from_millis(500)).await {
            Ok(b) => b,
            Err(e) => {
                // What the failed pull delivered comes again after the ack wait: taken
                // over afresh, so that it is applied before anything newer (a device's
                // readings in the order they were heard).
                st.0.loops.error("readings_queue", &e);
                q.let_go().await;
                holding = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // A gap that never fills (a message expired or purged before it came) is closed
        // by the consumer's ack floor, looked at every FLOOR_EVERY while ranges are open
        // (busy or idle), for the stream the set is of.
        if let Some((name, a)) = applied.as_mut() {
            if !a.above.is_empty() && floored.elapsed() >= FLOOR_EVERY {
                floored = tokio::time::Instant::now();
                match q.in_flight().await {
                    Ok((_, floor)) if q.mark_name().as_ref() == Some(name) => a.floor(floor),
                    Ok(_) => {}
                    Err(e) => st.0.loops.error("readings_queue", &e),
                }
            }
        }
        if batch.is_empty() {
            st.0.loops.success("readings_queue", st.now());
            // A pull cut short at once (409: the server's limit of waiting pulls, a
            // consumer being replaced): not again at once.
            if asked.elapsed() < Duration::from_millis(100) {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            continue;
        }
        if !still(&st, at) {
            // Lost (or held again at another epoch) while pulling: not applied, not
            // acknowledged — it comes again to the holder after the ack wait.
            q.let_go().await;
            holding = None;
            continue;
        }
        // The mark this batch is judged against: the stream's (made anew while held: a
        // mark of its own).
        let Some(queue) = q.mark_name() else {
            q.let_go().await;
            holding = None;
            continue;
        };
        if applied.as_ref().map(|(n, _)| n) != Some(&queue) {
            match load_applied(&st, queue.clone(), 0).await {
                Ok(a) => applied = Some(a),
                Err(e) => {
                    st.0.loops.error("readings_queue", &e);
                    q.let_go().await;
                    holding = None;
                    continue;
                }
            }
        }
        let Some((_, set)) = applied.as_mut() else {
            continue;
        };
        // What the mark covers was applied by an earlier holder that died before its
        // acknowledgement (or came again after newer ones): acknowledged now, not applied
        // again.
        let (done, fresh): (Vec<&Delivery>, Vec<&Delivery>) =
            batch.iter().partition(|d| d.seq != 0 && set.covers(d.seq));
        if !done.is_empty() {
            crate::http::log::event(
                "readings_queue_skipped",
                &[("messages", &done.len()), ("applied_up_to", &set.upto)],
            );
        }
        if !fresh.is_empty() {
            let Some(epoch) = at.flatten() else {
                continue;
            };
            let top = batch.iter().map(|d| d.seq).max().unwrap_or(0);
            let halt_before_mark = if fault.hit(Stage::BeforeMark, top) {
                Some(Halt::Abort)
            } else if fault.hit(Stage::StopBeforeMark, top) {
                Some(Halt::Stop)
            } else {
                None
            };
            if fault.hit(Stage::Drop, top) {
                // The tests' cut pull: neither applied nor acknowledged — the batch comes
                // again after the ack wait, behind newer ones.
                crate::http::log::event("fault_drop_batch", &[("seq", &top)]);
                continue;
            }
            // Copies of one message from two nodes, kept apart by the queue: acknowledged
            // with the batch, applied once.
            let messages = copies
                .keep(fresh)
                .into_iter()
                .filter_map(|d| {
                    let mut m =
                        crate::intake::sensor::mqtt::message_of_route(&d.route, d.payload.clone())?;
                    // Heard before it is applied (a backlog, a takeover): its time.
                    m.heard = d.heard;
                    Some(m)
                })
                .collect();
            let mut next = set.clone();
            for d in &batch {
                next.add(d.seq);
            }
            // Applied, its alarms' cases filed, then its alarms' states and the mark
            // written in one transaction fenced by the lease at the epoch the batch was
            // pulled under; then acknowledged.
            let queued = Queued {
                mark: next.mark(&queue),
                epoch,
                halt_before_mark,
            };
            match ingest_queued(&st, Input::Messages(messages), queued).await {
                Ok(Ok(v)) => {
                    if fault.hit(Stage::BeforeAck, top) {
                        let accepted = st.0.sensor.sensing.lock().expect("sensing lock").accepted;
                        crate::http::log::event(
                            "fault_abort_before_ack",
                            &[
                                ("seq", &top),
                                ("alarms", &v["alarms"].as_array().map_or(0, Vec::len)),
                                ("accepted", &accepted),
                            ],
                        );
                        std::process::abort();
                    }
                }
                Ok(Err(e)) => {
                    crate::http::log::event("readings_queue_apply_failed", &[("error", &e.detail)])
                }
                Err(e) => {
                    // The mark was not written (the lease moved, the database failed):
                    // not acknowledged; the batch comes again, and this node takes the
                    // queue over afresh (its alarm state read again from the store).
                    st.0.loops.error("readings_queue", &e.detail);
                    q.let_go().await;
                    holding = None;
                    crate::intake::sensor::rebuild_again(&st).await;
                    continue;
                }
            }
            *set = next;
        } else {
            for d in &batch {
                set.add(d.seq);
            }
        }
        if !still(&st, at) {
            // Lost while applying: the new holder has it again (its rebuilt alarm state
            // holds what was written here), so no acknowledgement from this node.
            q.let_go().await;
            holding = None;
            continue;
        }
        match q.ack(&batch).await {
            Ok(()) => st.0.loops.success("readings_queue", st.now()),
            Err(e) => st.0.loops.error("readings_queue", &e),
        }
    }
}

/// Which stream sequences were applied: every one up to `upto`, and the ranges `above` it
/// (start → end, inclusive, apart from each other and from `upto`) — a batch delivered
/// again (its holder died, a pull was cut) comes back after newer ones, so what was applied
/// is a set, not a high-water mark. Kept compact: `upto` moves up over a range that
/// follows it, and to the consumer's ack floor (at a takeover, and every [`FLOOR_EVERY`]
/// while ranges are open: a sequence that will never come — expired, purged — closes no
/// gap by itself).
#[derive(Debug, Clone, Default, PartialEq)]
struct Applied {
    upto: u64,
    above: std::collections::BTreeMap<u64, u64>,
}

/// How often the holder raises its applied set to the consumer's ack floor while the set
/// has ranges beyond its `upto`.
const FLOOR_EVERY: Duration = Duration::from_secs(30);

impl Applied {
    fn covers(&self, seq: u64) -> bool {
        seq <= self.upto
            || self
                .above
                .range(..=seq)
                .next_back()
                .is_some_and(|(_, &end)| seq <= end)
    }

    /// `seq` was applied (0, a sequence unknown, is passed over).
    fn add(&mut self, seq: u64) {
        if seq == 0 || self.covers(seq) {
            return;
        }
        let (mut start, mut end) = (seq, seq);
        if let Some((&s, &e)) = self.above.range(..seq).next_back() {
            if e + 1 == seq {
                self.above.remove(&s);
                start = s;
            }
        }
        if let Some(e) = self.above.remove(&(seq + 1)) {
            end = e;
        }
        self.above.insert(start, end);
        self.settle();
    }

    /// Everything up to `floor` was acknowledged, so applied or never to come.
    fn floor(&mut self, floor: u64) {
        if floor > self.upto {
            self.upto = floor;
            self.settle();
        }
    }

    fn settle(&mut self) {
        while let Some((&s, &e)) = self.above.first_key_value() {
            if s > self.upto + 1 {
                break;
            }
            self.above.remove(&s);
            self.upto = self.upto.max(e);
        }
    }

    /// As the store keeps it: `above` as ranges `a-b` (or `a`), comma-separated.
    fn mark(&self, queue: &str) -> QueueMark {
        let above = self
            .above
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        QueueMark {
            queue: queue.to_string(),
            seq: self.upto as i64,
            above,
        }
    }

    fn of_mark(m: &QueueMark) -> Result<Applied, String> {
        let bad = || format!("the readings queue's mark {:?} is unreadable", m.queue);
        let mut a = Applied {
            upto: u64::try_from(m.seq).map_err(|_| bad())?,
            above: Default::default(),
        };
        for r in m.above.split(',').filter(|r| !r.is_empty()) {
            let (x, y) = r.split_once('-').unwrap_or((r, r));
            let (x, y): (u64, u64) = (x.parse().map_err(|_| bad())?, y.parse().map_err(|_| bad())?);
            if x == 0 || x > y {
                return Err(bad());
            }
            // Ranges as written never touch; merged all the same.
            let (mut start, mut end) = (x, y);
            let touching: Vec<(u64, u64)> = a
                .above
                .range(..=y.saturating_add(1))
                .filter(|(_, &e)| e.saturating_add(1) >= x)
                .map(|(&s, &e)| (s, e))
                .collect();
            for (s, e) in touching {
                a.above.remove(&s);
                start = start.min(s);
                end = end.max(e);
            }
            a.above.insert(start, end);
        }
        a.settle();
        Ok(a)
    }
}

/// The queue's mark named `name` as the store holds it, raised to the consumer's ack
/// floor `floor`.
async fn load_applied(
    st: &AppState,
    name: String,
    floor: u64,
) -> Result<(String, Applied), String> {
    let n = name.clone();
    let m =
        st.0.reads
            .run(move |s| s.queue_mark(&n))
            .await
            .map_err(|e| e.detail)?
            .map_err(|e| e.to_string())?;
    let mut a = match m {
        Some(m) => Applied::of_mark(&m)?,
        None => Applied::default(),
    };
    a.floor(floor);
    Ok((name, a))
}

/// Where the tests make the holder abort (`CITYOS_FAULT_READINGS_ABORT`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Its cases filed, its mark and alarm states not yet written.
    BeforeMark,
    /// Its mark and alarm states written, not yet acknowledged.
    BeforeAck,
    /// Its cases filed, its mark and alarm states not yet written: parked while the file
    /// `CITYOS_FAULT_GATE` exists.
    StopBeforeMark,
    /// Pulled, then neither applied nor acknowledged (as a pull cut short would leave it),
    /// the holder going on with newer ones: it comes again after them.
    Drop,
}

/// Fault injection for the tests: `CITYOS_FAULT_READINGS_ABORT=before_mark:N` or
/// `before_ack:N` aborts the process (like `kill -9`) at that stage of the first batch this
/// process applies that reaches stream sequence N; `stop_before_mark:N` parks that batch
/// there while the file `CITYOS_FAULT_GATE` exists (the test freezes the process with
/// `SIGSTOP` meanwhile); `drop:N` lets that batch go unapplied and unacknowledged. Unset
/// (as in production): never.
struct Fault(Option<(Stage, u64)>, bool);

impl Fault {
    fn from_env() -> Fault {
        Fault(
            std::env::var("CITYOS_FAULT_READINGS_ABORT")
                .ok()
                .as_deref()
                .and_then(Fault::parse),
            false,
        )
    }

    fn parse(v: &str) -> Option<(Stage, u64)> {
        let (stage, n) = v.split_once(':')?;
        let stage = match stage {
            "before_mark" => Stage::BeforeMark,
            "before_ack" => Stage::BeforeAck,
            "drop" => Stage::Drop,
            "stop_before_mark" => Stage::StopBeforeMark,
            _ => return None,
        };
        Some((stage, n.parse().ok().filter(|n| *n > 0)?))
    }

    /// Is it time for the fault at `stage`, for a batch reaching sequence `top`? Once.
    fn hit(&mut self, stage: Stage, top: u64) -> bool {
        let due = !self.1 && self.0.is_some_and(|(s, n)| s == stage && top >= n);
        self.1 |= due;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_time_heard_rides_in_a_header_outside_the_id() {
        let h = b"NATS/1.0\r\nNats-Msg-Id: abc\r\nCityos-Heard: 1765000000123\r\n\r\n";
        assert_eq!(heard_of(Some(h)), Some(1_765_000_000_123));
        assert_eq!(
            heard_of(Some(b"NATS/1.0\r\nNats-Msg-Id: abc\r\n\r\n")),
            None
        );
        assert_eq!(
            heard_of(Some(b"NATS/1.0\r\nCityos-Heard: soon\r\n\r\n")),
            None
        );
        assert_eq!(heard_of(None), None);
        // The id is the route's and the payload's only: two nodes hearing it apart agree.
        assert_eq!(
            message_id("readings/WL-1", b"{}"),
            message_id("readings/WL-1", b"{}")
        );
        let (route, payload) = decode(&encode("readings/WL-1", b"{\"v\":1}")).unwrap();
        assert_eq!(
            (route.as_str(), &payload[..]),
            ("readings/WL-1", &b"{\"v\":1}"[..])
        );
    }

    #[test]
    fn untimed_messages_are_kept_apart_by_the_second_they_were_heard_in() {
        let (r, p) = (
            "readings/WL-001",
            br#"{"metric":"water_level","value":1.2}"#,
        );
        // A steady sensor's repeats, seconds apart: ids of their own.
        assert_ne!(
            queue_id(r, p, false, 1_765_000_000_100),
            queue_id(r, p, false, 1_765_000_001_300)
        );
        // Two nodes' copies (or a bridge's retry) within the same second: one id.
        assert_eq!(
            queue_id(r, p, false, 1_765_000_000_001),
            queue_id(r, p, false, 1_765_000_000_999)
        );
        // A timed message is the same reading whenever heard: the id of its route and
        // payload alone, as before.
        let t = br#"{"metric":"tilt_deg","value":20,"at":"2026-11-26T09:30:00+08:00"}"#;
        assert_eq!(
            queue_id(r, t, true, 1_765_000_000_100),
            queue_id(r, t, true, 1_765_000_300_000)
        );
        assert_eq!(queue_id(r, t, true, 5), message_id(r, t));
        assert_ne!(queue_id(r, p, false, 5), message_id(r, p));
        // Another route, another id.
        assert_ne!(
            queue_id("readings/WL-002", p, false, 5),
            queue_id(r, p, false, 5)
        );
        let h = b"NATS/1.0\r\nNats-Msg-Id: abc\r\nCityos-Heard: 17\r\nCityos-Node: n-2\r\nCityos-Before: 12\r\n\r\n";
        assert_eq!(header(Some(h), NODE), Some("n-2"));
        assert_eq!(header(Some(h), BEFORE), Some("12"));
        assert_eq!(header(Some(b"NATS/1.0\r\n\r\n"), NODE), None);
    }

    #[test]
    fn a_bridge_says_when_it_heard_the_same_message_before() {
        let mut r = Recent::default();
        let k = digest("readings/WL-001", b"{}", None);
        let other = digest("readings/WL-002", b"{}", None);
        assert_eq!(r.before(k, 10_000), None);
        // Tried again: the same answer.
        assert_eq!(r.before(k, 10_000), None);
        assert_eq!(r.before(other, 10_500), None);
        assert_eq!(r.before(k, 11_200), Some(10_000));
        assert_eq!(r.before(k, 11_200), Some(10_000));
        assert_eq!(r.before(k, 12_400), Some(11_200));
        // Longer ago than RECENT_FOR: not said.
        assert_eq!(r.before(k, 12_400 + RECENT_FOR + 1), None);
        assert!(r.last.len() <= 2);
    }

    fn key(n: u8) -> [u8; 16] {
        [n; 16]
    }

    #[test]
    fn two_nodes_copies_either_side_of_a_second_are_applied_once() {
        let mut c = Copies::default();
        // Node a heard it at x.999 s, node b at x+1.001 s: both kept by the queue.
        assert!(!c.is_copy(key(1), Some("a"), Some(10_999), None));
        assert!(c.is_copy(key(1), Some("b"), Some(11_001), None));
        // Whichever came to the queue first.
        assert!(!c.is_copy(key(2), Some("b"), Some(21_001), None));
        assert!(c.is_copy(key(2), Some("a"), Some(20_999), None));
        // Three nodes: one applied, the other two its copies, each once.
        assert!(!c.is_copy(key(3), Some("a"), Some(30_999), None));
        assert!(c.is_copy(key(3), Some("b"), Some(31_001), None));
        assert!(c.is_copy(key(3), Some("c"), Some(31_010), None));
        // Another node's message within the window that already absorbed b's copy: b's
        // next one is applied (b hears each delivery once).
        assert!(!c.is_copy(key(3), Some("b"), Some(31_500), None));
        // Another message, or one from an older node (no name, no time): applied.
        assert!(!c.is_copy(key(4), Some("b"), Some(31_002), None));
        assert!(!c.is_copy(key(1), None, Some(11_002), None));
        assert!(!c.is_copy(key(1), Some("c"), None, None));
    }

    #[test]
    fn one_nodes_repeats_are_never_copies() {
        let mut c = Copies::default();
        for i in 0..10 {
            assert!(!c.is_copy(key(1), Some("a"), Some(1_000 + i * 100), None));
        }
        assert_eq!(c.len(), 10);
    }

    #[test]
    fn a_copy_heard_further_apart_than_the_window_is_applied() {
        let mut c = Copies::default();
        assert!(!c.is_copy(key(1), Some("a"), Some(10_000), None));
        assert!(!c.is_copy(key(1), Some("b"), Some(10_000 + COPY_WITHIN + 1), None));
        assert!(!c.is_copy(key(2), Some("a"), Some(20_000), None));
        assert!(c.is_copy(key(2), Some("b"), Some(20_000 + COPY_WITHIN), None));
    }

    /// A steady sensor repeating itself every 1.333 s (faster than the window), heard by
    /// two nodes 15 ms apart: within a second the queue keeps whichever node's copy came
    /// first — a or b, by chance — so the holder sees one message per repeat from
    /// either node, and both when a repeat straddled a second. Each repeat is applied
    /// once: a repeat is not taken for a copy of the one before, which the other node
    /// sent.
    #[test]
    fn a_steady_sensor_faster_than_the_window_is_applied_once_per_repeat() {
        let mut c = Copies::default();
        let mut before: BTreeMap<&str, Millis> = BTreeMap::new();
        let mut applied = 0;
        let mut straddled = 0;
        for i in 0..60i64 {
            let ta = 100_000 + i * 1_333;
            let tb = ta + 15;
            // What the queue keeps: both when they straddle a second, else the one
            // that came first.
            let kept: Vec<(&str, Millis)> = if ta / 1000 != tb / 1000 {
                straddled += 1;
                vec![("a", ta), ("b", tb)]
            } else if i % 3 == 0 {
                vec![("b", tb)]
            } else {
                vec![("a", ta)]
            };
            let said = [("a", ta), ("b", tb)].map(|(n, t)| (n, before.insert(n, t)));
            for (n, t) in kept {
                let b = said.iter().find(|(m, _)| *m == n).unwrap().1;
                if !c.is_copy(key(9), Some(n), Some(t), b) {
                    applied += 1;
                }
            }
        }
        assert!(straddled >= 10, "the test straddles a second: {straddled}");
        assert_eq!(applied, 60);
        // Without the nodes saying when they heard it before, a repeat within the window
        // would be taken for the other node's copy.
        let mut blind = Copies::default();
        assert!(!blind.is_copy(key(9), Some("a"), Some(1_000), None));
        assert!(blind.is_copy(key(9), Some("b"), Some(2_200), None));
        let mut seeing = Copies::default();
        assert!(!seeing.is_copy(key(9), Some("a"), Some(1_000), None));
        assert!(!seeing.is_copy(key(9), Some("b"), Some(2_200), Some(1_003)));
        // And the other way: a slow node's copy of an earlier repeat, coming after the
        // later one, is not taken for the later one's.
        let mut late = Copies::default();
        assert!(!late.is_copy(key(9), Some("b"), Some(2_203), Some(1_003)));
        assert!(!late.is_copy(key(9), Some("a"), Some(1_000), None));
    }

    #[test]
    fn what_was_applied_is_forgotten_by_time_and_beyond_the_cap() {
        let mut c = Copies::default();
        assert!(!c.is_copy(key(1), Some("a"), Some(10_000), None));
        assert!(!c.is_copy(key(2), Some("a"), Some(10_500), None));
        assert_eq!(c.len(), 2);
        // Newer messages move time on: the old ones are forgotten.
        assert!(!c.is_copy(key(3), Some("a"), Some(10_500 + COPIES_KEPT_FOR + 1), None));
        assert_eq!(c.len(), 1);
        assert!(!c.by_key.contains_key(&key(1)) && !c.by_key.contains_key(&key(2)));
        // A copy of a forgotten message is applied.
        assert!(!c.is_copy(key(1), Some("b"), Some(10_001), None));
        let mut c = Copies::default();
        for i in 0..(COPIES_CAP as u32 + 10) {
            let mut k = [0u8; 16];
            k[..4].copy_from_slice(&i.to_le_bytes());
            assert!(!c.is_copy(k, Some("a"), Some(50_000), None));
        }
        assert_eq!(c.len(), COPIES_CAP);
        assert_eq!(c.by_key.len(), COPIES_CAP);
    }

    #[test]
    fn a_message_whose_headers_run_past_it_is_refused_not_sliced() {
        let mut buf = b"HMSG s 1 12 5\r\nhello\r\n".to_vec();
        let e = parse(&mut buf).err().expect("refused");
        assert!(e.contains("headers past the message"), "{e}");
        let mut buf = b"HMSG s 1 5 5\r\nhello\r\n".to_vec();
        assert!(matches!(parse(&mut buf), Ok(Some(Op::Msg { .. }))));
    }

    #[test]
    fn what_was_applied_is_a_set_kept_compact() {
        let mut a = Applied::default();
        for s in [1, 2, 3, 7, 8, 10] {
            a.add(s);
        }
        assert_eq!(a.upto, 3);
        // A batch that came again after newer ones: 4-6 not applied, 7 and 8 were.
        assert!(a.covers(2) && a.covers(7) && a.covers(10));
        assert!(!a.covers(4) && !a.covers(9) && !a.covers(11));
        let m = a.mark("R@t");
        assert_eq!((m.seq, m.above.as_str()), (3, "7-8,10"));
        assert_eq!(Applied::of_mark(&m), Ok(a.clone()));
        for s in [4, 5, 6, 9] {
            a.add(s);
        }
        assert_eq!((a.upto, a.above.len()), (10, 0), "{a:?}");
        // A gap that never fills (a sequence expired or purged) keeps one range however
        // much follows it, until the ack floor passes it.
        let mut g = Applied::default();
        g.add(1);
        for s in 3..=200_000 {
            g.add(s);
        }
        assert_eq!((g.upto, g.mark("R@t").above.as_str()), (1, "3-200000"));
        assert!(!g.covers(2) && g.covers(150_000));
        let big = g.mark("R@t");
        assert_eq!(Applied::of_mark(&big), Ok(g.clone()));
        g.floor(2);
        assert_eq!((g.upto, g.above.len()), (200_000, 0));
        // Ranges read back merge where they touch.
        let m = QueueMark {
            queue: "R@t".into(),
            seq: 0,
            above: "5-9,10-12,11,20".into(),
        };
        let r = Applied::of_mark(&m).unwrap();
        assert_eq!(r.mark("R@t").above, "5-12,20");
        // The ack floor settles what lies below it.
        let mut b = Applied::default();
        b.add(50);
        b.add(52);
        b.floor(49);
        assert_eq!((b.upto, b.mark("R@t").above.as_str()), (50, "52"));
        // A sequence unknown (0) is never taken as applied.
        b.add(0);
        assert_eq!(
            b,
            Applied {
                upto: 50,
                above: [(52, 52)].into()
            }
        );
        for bad in ["x", "5-2", "1-", "-3", "0"] {
            let m = QueueMark {
                queue: "R@t".into(),
                seq: 0,
                above: bad.into(),
            };
            assert!(Applied::of_mark(&m).is_err(), "{bad}");
        }
        let m = QueueMark {
            queue: "R@t".into(),
            seq: -1,
            above: String::new(),
        };
        assert!(Applied::of_mark(&m).is_err());
    }

    #[test]
    fn the_fault_hook_is_off_unless_named_exactly() {
        assert_eq!(Fault::parse("before_ack:3"), Some((Stage::BeforeAck, 3)));
        assert_eq!(Fault::parse("before_mark:1"), Some((Stage::BeforeMark, 1)));
        assert_eq!(Fault::parse("drop:2"), Some((Stage::Drop, 2)));
        for bad in ["", "before_ack", "before_ack:0", "before_ack:x", "after:2"] {
            assert_eq!(Fault::parse(bad), None, "{bad}");
        }
        // The second batch aborts before its acknowledgement, not the first.
        // The batch reaching sequence 100 aborts before its acknowledgement, once.
        let mut f = Fault(Fault::parse("before_ack:100"), false);
        assert!(!f.hit(Stage::BeforeMark, 60) && !f.hit(Stage::BeforeAck, 60));
        assert!(!f.hit(Stage::BeforeMark, 130) && f.hit(Stage::BeforeAck, 130));
        assert!(!f.hit(Stage::BeforeAck, 200));
        let mut off = Fault(None, false);
        assert!(!off.hit(Stage::BeforeMark, 9) && !off.hit(Stage::BeforeAck, 9));
    }

    #[test]
    fn the_retry_bound_leaves_a_margin_inside_the_duplicate_window() {
        assert!(RETRY_FOR + Duration::from_secs(60) <= DUPLICATE_WINDOW);
        assert!(DUPLICATE_WINDOW >= Duration::from_secs(600));
    }
}
