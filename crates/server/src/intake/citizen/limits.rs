//! The citizen room's state: anonymous creates per peer address in fixed windows.

use super::{ANONYMOUS_LIMIT, ANONYMOUS_WINDOW};
use cityos_core::time::Millis;
use std::collections::HashMap;

/// The citizen room's state: anonymous Open311 creates per peer address (window start,
/// count).
#[derive(Default)]
pub struct CitizenLimits {
    anonymous: std::sync::Mutex<HashMap<String, (Millis, u32)>>,
}

impl CitizenLimits {
    /// Counts an anonymous create from `peer`; when its window is full, the seconds until
    /// it opens again.
    pub(super) fn allow(&self, peer: &str, now: Millis) -> Result<(), u32> {
        let mut g = self.anonymous.lock().expect("limiter lock");
        if g.len() > 100_000 {
            g.retain(|_, (start, _)| now - *start < ANONYMOUS_WINDOW);
        }
        let e = g.entry(peer.to_string()).or_insert((now, 0));
        if now - e.0 >= ANONYMOUS_WINDOW {
            *e = (now, 0);
        }
        if e.1 >= ANONYMOUS_LIMIT {
            let left = (e.0 + ANONYMOUS_WINDOW - now).max(1);
            return Err(((left + 999) / 1000).max(1) as u32);
        }
        e.1 += 1;
        Ok(())
    }
}
