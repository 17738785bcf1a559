//! Streaming windows over readings (for vital signs): tumbling windows `[start, start +
//! size)` aligned to multiples of the size, and sliding windows `(now - size, now]` kept as
//! panes (constant memory at any rate), each giving count, sum, avg, min, max, last or rate
//! in constant time per reading.
//!
//! Readings must come in time order per window; an older one is refused as late (the
//! caller counts it) rather than silently changing a closed window.

use crate::indicators::Func;
use crate::time::Millis;

/// The running aggregate of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acc {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: f64::NAN,
        }
    }
}

impl Acc {
    pub fn push(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.last = v;
    }

    /// The window's value under `func` (`None` for an empty window, except count, sum and
    /// rate, which are 0). `size_ms` is the window's length, for the rate.
    pub fn value(&self, func: Func, size_ms: Millis) -> Option<f64> {
        let empty = self.count == 0;
        match func {
            Func::Count => Some(self.count as f64),
            Func::Sum => Some(self.sum),
            Func::Rate => Some(self.count as f64 / (size_ms as f64 / 1000.0)),
            _ if empty => None,
            Func::Avg => Some(self.sum / self.count as f64),
            Func::Min => Some(self.min),
            Func::Max => Some(self.max),
            Func::Last => Some(self.last),
        }
    }
}

/// A reading older than the window already accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Late;

/// Tumbling windows of `size` milliseconds.
#[derive(Debug, Clone)]
pub struct Tumbling {
    size: Millis,
    start: Option<Millis>,
    acc: Acc,
}

impl Tumbling {
    pub fn new(size: Millis) -> Tumbling {
        assert!(size > 0, "a window has a length");
        Tumbling {
            size,
            start: None,
            acc: Acc::default(),
        }
    }

    /// Adds a reading; answers the windows it closed, as (start, aggregate) — more than one
    /// when readings skipped whole windows (those come back empty).
    pub fn push(&mut self, at: Millis, v: f64) -> Result<Vec<(Millis, Acc)>, Late> {
        let bucket = at.div_euclid(self.size) * self.size;
        let mut closed = Vec::new();
        match self.start {
            None => self.start = Some(bucket),
            Some(s) if bucket < s => return Err(Late),
            Some(s) if bucket > s => {
                closed.push((s, std::mem::take(&mut self.acc)));
                let mut gap = s + self.size;
                while gap < bucket && closed.len() < 1000 {
                    closed.push((gap, Acc::default()));
                    gap += self.size;
                }
                self.start = Some(bucket);
            }
            Some(_) => {}
        }
        self.acc.push(v);
        Ok(closed)
    }

    /// The window being filled: (start, aggregate so far).
    pub fn current(&self) -> Option<(Millis, Acc)> {
        self.start.map(|s| (s, self.acc))
    }
}

/// A sliding window of `size` milliseconds ending at the latest time seen, kept as
/// [`PANES`] panes of `size / PANES` each: memory is constant however fast readings come,
/// and the window's edges move a pane at a time. The window is the panes
/// `(head - PANES, head]`, where `head` is the pane of the latest time seen. Readings may
/// come out of order inside the window; one older than the window is late.
#[derive(Debug, Clone)]
pub struct Sliding {
    size: Millis,
    pane: Millis,
    /// Pane number of the latest time seen.
    head: i64,
    /// Ring of panes; slot `n % PANES` holds pane `n` for `n` in the window.
    panes: Box<[Acc]>,
    /// Time of each pane's last reading (for `last`).
    last_at: Box<[Millis]>,
}

/// Panes per sliding window.
pub const PANES: i64 = 60;

impl Sliding {
    pub fn new(size: Millis) -> Sliding {
        assert!(size > 0, "a window has a length");
        let pane = (size / PANES).max(1);
        let n = (size / pane).max(1) as usize;
        Sliding {
            size,
            pane,
            head: i64::MIN,
            panes: vec![Acc::default(); n].into_boxed_slice(),
            last_at: vec![Millis::MIN; n].into_boxed_slice(),
        }
    }

    fn slot(&self, pane: i64) -> usize {
        pane.rem_euclid(self.panes.len() as i64) as usize
    }

    pub fn push(&mut self, at: Millis, v: f64) -> Result<(), Late> {
        let p = at.div_euclid(self.pane);
        if self.head != i64::MIN && p <= self.head - self.panes.len() as i64 {
            return Err(Late);
        }
        self.advance(at);
        let k = self.slot(p);
        let last = self.panes[k].last;
        self.panes[k].push(v);
        if at >= self.last_at[k] {
            self.last_at[k] = at;
        } else {
            self.panes[k].last = last; // older than the pane's latest: not its last
        }
        Ok(())
    }

    /// Moves the window's end to `now` (emptying the panes that fell out).
    pub fn advance(&mut self, now: Millis) {
        let p = now.div_euclid(self.pane);
        if self.head != i64::MIN && p <= self.head {
            return;
        }
        let n = self.panes.len() as i64;
        let from = if self.head == i64::MIN || p - self.head >= n {
            p - n + 1
        } else {
            self.head + 1
        };
        for q in from..=p {
            let k = self.slot(q);
            self.panes[k] = Acc::default();
            self.last_at[k] = Millis::MIN;
        }
        self.head = p;
    }

    /// Bytes held on the heap (the panes): fixed at creation.
    pub fn heap_bytes(&self) -> usize {
        self.panes.len() * (std::mem::size_of::<Acc>() + std::mem::size_of::<Millis>())
    }

    /// The end of the window (the last millisecond of its head pane).
    pub fn head_time(&self) -> Millis {
        if self.head == i64::MIN {
            Millis::MIN
        } else {
            self.head * self.pane + self.pane - 1
        }
    }

    pub fn value(&self, func: Func) -> Option<f64> {
        let mut acc = Acc::default();
        let mut last_at = Millis::MIN;
        for (a, &t) in self.panes.iter().zip(self.last_at.iter()) {
            if a.count == 0 {
                continue;
            }
            acc.count += a.count;
            acc.sum += a.sum;
            acc.min = acc.min.min(a.min);
            acc.max = acc.max.max(a.max);
            if t >= last_at {
                last_at = t;
                acc.last = a.last;
            }
        }
        acc.value(func, self.size)
    }
}
