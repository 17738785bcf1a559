//! The one event bus of the service: a typed event ([`BusEvent`]) and a small trait
//! ([`Bus`]) to publish and subscribe. Rooms publish what happened (case events, vital
//! and alert events, sensing alarms, dataset imports) and subscribe to what concerns them;
//! `runtime` wires the implementation (in-process today: `runtime::bus::InProcessBus`), so
//! a networked one can replace it without touching a room.

use cityos_engine::store::CaseEvent;
use std::sync::Arc;

/// A live vital-sign event for the stream: an indicator's level moved, or an alert fired,
/// changed level or resolved.
#[derive(Debug, Clone)]
pub struct VitalEvent {
    pub kind: &'static str,
    /// The region it concerns (the district or a sub-district).
    pub region: String,
    /// The event as JSON text.
    pub data: String,
    /// For the command centres' officers only (a welfare scenario's hit: where an elder
    /// lives alone is personal data).
    pub officers_only: bool,
}

/// Something that happened, as the bus carries it.
#[derive(Debug, Clone)]
pub enum BusEvent {
    /// A committed case event, as the engine announces it (resumable: it has an id in
    /// the log).
    Case(Arc<CaseEvent>),
    /// An indicator's level change or an alert's life (live only).
    Vital(Arc<VitalEvent>),
    /// A sensing alarm raised, repeated or cleared on a device's rule.
    SensingAlarm {
        device: String,
        rule: String,
        change: &'static str,
        case: Option<String>,
    },
    /// A dataset was imported (replaced) with this many rows.
    DatasetImported { name: String, rows: usize },
}

/// A subscription: every event published after it was taken, in order; a subscriber too
/// slow for the bus misses some and is told how many (`Lagged`).
pub type Subscription = tokio::sync::broadcast::Receiver<BusEvent>;

/// Publish and subscribe.
pub trait Bus: Send + Sync {
    /// Publishes `event` to every subscriber (none is fine).
    fn publish(&self, event: BusEvent);
    /// Subscribes to the events published from now on.
    fn subscribe(&self) -> Subscription;
    /// How many subscriptions are open.
    fn subscribers(&self) -> usize;
    /// A bus with one order for all nodes (NATS JetStream: `runtime::jetstream`), whose
    /// sequence numbers the live stream uses as event ids; `None` for the in-process bus.
    fn sequenced(&self) -> Option<&dyn SequencedBus> {
        None
    }
    /// A networked bus: is its link up, and how many events were dropped while it was
    /// down (`None`: in-process, nothing to lose).
    fn link(&self) -> Option<(bool, u64)> {
        None
    }
}

/// Events with their place in the cluster-wide order (the stream sequence).
pub type SequencedSubscription = tokio::sync::broadcast::Receiver<(u64, BusEvent)>;

/// Case events read back from the bus's stream: `(sequence, event)` in order.
pub type Replay<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<(u64, Arc<CaseEvent>)>, String>> + Send + 'a>,
>;

/// A bus whose events are kept in one order across nodes, and can be read back.
pub trait SequencedBus: Send + Sync {
    /// Like [`Bus::subscribe`], each event with its sequence number.
    fn subscribe_sequenced(&self) -> SequencedSubscription;
    /// At most `max` case events after sequence `after`, from the stream.
    fn case_events_after(&self, after: u64, max: usize) -> Replay<'_>;
    /// The log number of the last case event on the stream in a sub-district (`None`:
    /// none there yet).
    fn last_case_in(&self, subdistrict: &str) -> LastCase<'_>;
    /// The stream's last sequence (0: empty).
    fn head(&self) -> Head<'_> {
        Box::pin(async { Err::<u64, String>("this bus cannot tell its head".to_string()) })
    }
    /// Like [`SequencedBus::case_events_after`], of one sub-district's case events only
    /// (`None`: of every one), and none after sequence `upto` (read no further).
    fn case_events_after_in(
        &self,
        after: u64,
        max: usize,
        upto: u64,
        subdistrict: Option<&str>,
    ) -> Replay<'_> {
        let _ = subdistrict;
        Box::pin(async move {
            let mut page = self.case_events_after(after, max).await?;
            page.retain(|(seq, _)| *seq <= upto);
            Ok(page)
        })
    }
}

/// See [`SequencedBus::head`].
pub type Head<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, String>> + Send + 'a>>;

/// See [`SequencedBus::last_case_in`].
pub type LastCase<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<i64>, String>> + Send + 'a>>;
