//! Streaming windows over readings (for vital signs): tumbling windows `[start, start +
//! size)` aligned to multiples of the size, and sliding windows `(now - size, now]`, each
//! giving count, sum, avg, min, max, last or rate in constant time per reading.
//!
//! Readings must come in time order per window; an older one is refused as late (the
//! caller counts it) rather than silently changing a closed window.

use crate::indicators::Func;
use crate::time::Millis;
use std::collections::VecDeque;

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
    fn push(&mut self, v: f64) {
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

/// A sliding window of `size` milliseconds ending at the latest time seen.
#[derive(Debug, Clone)]
pub struct Sliding {
    size: Millis,
    items: VecDeque<(Millis, f64)>,
    sum: f64,
    /// Monotonic queues for min and max.
    mins: VecDeque<(Millis, f64)>,
    maxs: VecDeque<(Millis, f64)>,
    now: Millis,
}

impl Sliding {
    pub fn new(size: Millis) -> Sliding {
        assert!(size > 0, "a window has a length");
        Sliding {
            size,
            items: VecDeque::new(),
            sum: 0.0,
            mins: VecDeque::new(),
            maxs: VecDeque::new(),
            now: Millis::MIN,
        }
    }

    pub fn push(&mut self, at: Millis, v: f64) -> Result<(), Late> {
        if at < self.now {
            return Err(Late);
        }
        self.advance(at);
        self.items.push_back((at, v));
        self.sum += v;
        while self.mins.back().is_some_and(|x| x.1 >= v) {
            self.mins.pop_back();
        }
        self.mins.push_back((at, v));
        while self.maxs.back().is_some_and(|x| x.1 <= v) {
            self.maxs.pop_back();
        }
        self.maxs.push_back((at, v));
        Ok(())
    }

    /// Moves the window's end to `now` (dropping what fell out of `(now - size, now]`).
    pub fn advance(&mut self, now: Millis) {
        if now <= self.now {
            return;
        }
        self.now = now;
        let from = now - self.size;
        while let Some(&(t, v)) = self.items.front() {
            if t > from {
                break;
            }
            self.items.pop_front();
            self.sum -= v;
        }
        while self.mins.front().is_some_and(|x| x.0 <= from) {
            self.mins.pop_front();
        }
        while self.maxs.front().is_some_and(|x| x.0 <= from) {
            self.maxs.pop_front();
        }
        if self.items.is_empty() {
            self.sum = 0.0; // no drift from float subtraction
        }
    }

    pub fn value(&self, func: Func) -> Option<f64> {
        let n = self.items.len() as u64;
        let acc = Acc {
            count: n,
            sum: self.sum,
            min: self.mins.front().map_or(f64::INFINITY, |x| x.1),
            max: self.maxs.front().map_or(f64::NEG_INFINITY, |x| x.1),
            last: self.items.back().map_or(f64::NAN, |x| x.1),
        };
        acc.value(func, self.size)
    }
}
