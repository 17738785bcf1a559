//! The in-process bus: one broadcast channel carrying every [`BusEvent`].

use crate::bus::{Bus, BusEvent, Subscription};

/// Events a subscriber may fall behind by before it misses some.
pub const CAPACITY: usize = 4096;

pub struct InProcessBus(tokio::sync::broadcast::Sender<BusEvent>);

impl Default for InProcessBus {
    fn default() -> Self {
        InProcessBus(tokio::sync::broadcast::channel(CAPACITY).0)
    }
}

impl Bus for InProcessBus {
    fn publish(&self, event: BusEvent) {
        // No subscriber is fine: case events are in the log, the rest is live only.
        let _ = self.0.send(event);
    }

    fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }

    fn subscribers(&self) -> usize {
        self.0.receiver_count()
    }
}
