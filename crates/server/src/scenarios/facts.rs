//! What the scenario runtime knows, and the [`Facts`] a pack's condition is judged over:
//! series of readings per device and metric (bounded: each keeps only as far back as the
//! longest window an enabled pack reads it over), sampled series of indicators, the
//! datasets the packs join (indexed by key and by address), and the recent cases the packs
//! count.
//!
//! A condition is judged for a [`Subject`]: a device, or a place (an address, or where a
//! case is). A device's metrics include those of the other devices at exactly its position
//! (a flat's water and electricity meters), and its address is that of the dataset row it
//! joins.

use cityos_core::indicators::WarnLevel;
use cityos_core::scenario::expr::{Agg, Facts, Row, Scope, Type, Value};
use cityos_core::scenario::Pack;
use cityos_core::time::{parse_datetime, Millis};
use std::collections::VecDeque;

/// A fast hasher for the runtime's own maps (keys are device ids, metric names and
/// positions from the configuration and imported datasets, not from anonymous callers):
/// the multiply-rotate hash of rustc's `FxHasher`, a few cycles a word where SipHash
/// takes tens.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Fx {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64)
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hash map with [`Fx`].
pub type HashMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

/// Buckets a series spans its window with: the window's aggregates are exact to one
/// bucket (under 1 % of the window), and a series never holds more than this many
/// buckets, however fast its device sends.
pub const BUCKETS: i64 = 128;

/// How near two places must be to count as the `same address` (metres) when they are
/// compared by position, and as the `same building`.
pub const SAME_ADDRESS_M: f64 = 25.0;
pub const SAME_BUILDING_M: f64 = 60.0;

/// The readings of one bucket of time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Millis,
    count: u32,
    sum: f64,
    min: f64,
    max: f64,
    /// The newest value and its time.
    last: f64,
    last_at: Millis,
}

/// One metric of one device over time: the readings summed into buckets of
/// `keep / BUCKETS` (at least a second), oldest first, as far back as `keep`.
#[derive(Debug, Clone, Default)]
pub struct Series {
    b: VecDeque<Bucket>,
    width: Millis,
    /// Since when the series is known (its first reading).
    first: Millis,
}

impl Series {
    pub fn new(at: Millis) -> Series {
        Series {
            b: VecDeque::new(),
            width: 0,
            first: at,
        }
    }

    /// Adds a reading, dropping the buckets older than `keep` before the newest.
    pub fn push(&mut self, at: Millis, v: f64, keep: Millis) {
        let width = (keep / BUCKETS).max(1_000);
        if width != self.width {
            // The window changed (a pack was reloaded): start the buckets afresh, known
            // from here on.
            self.b.clear();
            self.width = width;
            self.first = at;
        }
        self.first = self.first.min(at);
        let start = at.div_euclid(width) * width;
        let i = self.b.partition_point(|x| x.start < start);
        match self.b.get_mut(i) {
            Some(x) if x.start == start => {
                x.count += 1;
                x.sum += v;
                x.min = x.min.min(v);
                x.max = x.max.max(v);
                if at >= x.last_at {
                    x.last = v;
                    x.last_at = at;
                }
            }
            _ => self.b.insert(
                i,
                Bucket {
                    start,
                    count: 1,
                    sum: v,
                    min: v,
                    max: v,
                    last: v,
                    last_at: at,
                },
            ),
        }
        let newest = self.b.back().map_or(start, |x| x.start);
        while self.b.len() > 1 && self.b[0].start + width <= newest - keep {
            self.b.pop_front();
        }
    }

    pub fn latest(&self) -> Option<f64> {
        self.b.back().map(|x| x.last)
    }

    /// The buckets overlapping `(now - w, now]`.
    fn within(&self, now: Millis, w: Millis) -> impl Iterator<Item = &Bucket> {
        let lo = self.b.partition_point(|x| x.start + self.width <= now - w);
        let hi = self.b.partition_point(|x| x.start <= now);
        self.b.range(lo..hi)
    }

    /// An aggregate over `(now - w, now]` (to one bucket); `None` when the series does not
    /// reach back to the window's start (or an average or extreme has no reading).
    pub fn aggregate(&self, now: Millis, w: Millis, agg: Agg) -> Option<f64> {
        if self.first > now - w {
            return None;
        }
        let it = self.within(now, w);
        Some(match agg {
            Agg::Sum => it.map(|x| x.sum).sum(),
            Agg::Count => it.map(|x| x.count as f64).sum(),
            Agg::Avg => {
                let (n, s) = it.fold((0u32, 0.0), |(n, s), x| (n + x.count, s + x.sum));
                if n == 0 {
                    return None;
                }
                s / n as f64
            }
            Agg::Min => it.map(|x| x.min).reduce(f64::min)?,
            Agg::Max => it.map(|x| x.max).reduce(f64::max)?,
            Agg::Rate => {
                // A counter's increase per hour: from the last value before the window
                // (or the window's first) to the newest.
                let lo = self.b.partition_point(|x| x.start + self.width <= now - w);
                let mut inside = self.within(now, w);
                let first = inside.next()?;
                let base = if lo > 0 {
                    self.b[lo - 1].last
                } else {
                    first.min
                };
                let last = self.within(now, w).last()?.last;
                (last - base) * 3_600_000.0 / w as f64
            }
        })
    }

    /// The series over `(now - w, now]` as points: each bucket's mean at its middle.
    pub fn points(&self, now: Millis, w: Millis) -> Vec<(Millis, f64)> {
        self.within(now, w)
            .map(|x| (x.start + self.width / 2, x.sum / x.count as f64))
            .collect()
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.b.len()
    }

    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
}

/// A dataset as the packs read it: rows typed by the catalogue, indexed by its key
/// column and by address, with each row's time when it has one.
#[derive(Debug, Default)]
pub struct Table {
    pub rows: Vec<Row>,
    pub by_key: HashMap<String, usize>,
    pub by_address: HashMap<String, Vec<usize>>,
    /// Per row, when it happened (a column named `at`, `date` or ending `_at`/`_on`).
    pub at: Vec<Option<Millis>>,
}

/// Text of a JSON cell.
fn cell(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A cell as the catalogue types it; `None` when it does not read as that type.
pub fn typed(v: &serde_json::Value, t: Type) -> Option<Value> {
    let s = cell(v)?;
    Some(match t {
        Type::Str => Value::Str(s),
        Type::Number => Value::Number(s.parse::<f64>().ok().filter(|x| x.is_finite())?),
        Type::Bool => Value::Bool(match s.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "y" | "是" => true,
            "0" | "false" | "no" | "n" | "否" | "" => false,
            _ => return None,
        }),
        Type::Level => Value::Level(*WarnLevel::ALL.iter().find(|l| l.as_str() == s)?),
    })
}

/// When a row happened: the first of its time columns that reads as a date or datetime.
fn row_time(row: &serde_json::Map<String, serde_json::Value>) -> Option<Millis> {
    row.iter()
        .filter(|(k, _)| *k == "at" || *k == "date" || k.ends_with("_at") || k.ends_with("_on"))
        .find_map(|(_, v)| {
            let s = cell(v)?;
            parse_datetime(&s)
                .or_else(|| cityos_core::time::Date::parse(&s).map(|d| d.local_midnight()))
        })
}

impl Table {
    /// Indexes rows of a dataset whose key column is `key` and columns typed `columns`.
    pub fn new(
        rows: &[serde_json::Map<String, serde_json::Value>],
        key: &str,
        columns: &std::collections::BTreeMap<String, Type>,
    ) -> Table {
        let mut t = Table::default();
        for raw in rows {
            let row: Row = columns
                .iter()
                .filter_map(|(c, ty)| Some((c.clone(), typed(raw.get(c)?, *ty)?)))
                .collect();
            let i = t.rows.len();
            if let Some(k) = raw.get(key).and_then(cell).filter(|k| !k.is_empty()) {
                t.by_key.entry(k).or_insert(i);
            }
            if let Some(a) = raw.get("address").and_then(cell).filter(|a| !a.is_empty()) {
                t.by_address.entry(a).or_default().push(i);
            }
            t.at.push(row_time(raw));
            t.rows.push(row);
        }
        t
    }
}

/// A case the packs may count.
#[derive(Debug, Clone)]
pub struct SeenCase {
    pub at: Millis,
    pub category: String,
    pub lon: f64,
    pub lat: f64,
    pub grid: Option<String>,
}

/// What a condition is judged for.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The place's key: a device id, `addr:<address>` or `at:<lon>,<lat>`.
    pub key: String,
    pub device: Option<u32>,
    pub address: Option<String>,
    pub pos: Option<(f64, f64)>,
    pub grid: Option<String>,
}

/// Metres between two WGS84 points (equirectangular: exact enough within a district).
pub fn metres((lon1, lat1): (f64, f64), (lon2, lat2): (f64, f64)) -> f64 {
    let k = std::f64::consts::PI / 180.0;
    let x = (lon2 - lon1) * k * ((lat1 + lat2) * 0.5 * k).cos();
    let y = (lat2 - lat1) * k;
    (x * x + y * y).sqrt() * 6_371_000.0
}

/// Where each device's latest value of each metric of its kind lives in one flat array:
/// a judgement reads a device's values from one place instead of a map per metric.
#[derive(Debug, Default)]
pub struct Slots {
    /// Per device: its first slot (`u32::MAX` when its kind is not in the catalogue).
    pub base: Vec<u32>,
    /// Per device: its kind's index.
    pub kind_of: Vec<u16>,
    /// Per kind: its metrics, in slot order.
    pub kind_metrics: Vec<Vec<u16>>,
    pub len: usize,
}

impl Slots {
    #[inline]
    pub fn slot(&self, d: u32, m: u16) -> Option<usize> {
        let base = *self.base.get(d as usize)?;
        if base == u32::MAX {
            return None;
        }
        let k = self.kind_of[d as usize] as usize;
        let j = self.kind_metrics[k].iter().position(|x| *x == m)?;
        Some(base as usize + j)
    }
}

/// A latest value never set.
pub const UNSET: (Millis, f64) = (Millis::MIN, f64::NAN);

/// The facts of one judgement: the runtime's knowledge seen from one subject.
pub struct Judge<'a> {
    pub pack: &'a Pack,
    pub subject: &'a Subject,
    /// Device ids by index (for joins by device id).
    pub device_ids: &'a [String],
    /// The series of a (device, metric) pair.
    pub series: &'a HashMap<(u32, u16), Series>,
    pub metric_ids: &'a HashMap<String, u16>,
    /// Devices at the subject device's position, itself first.
    pub siblings: &'a [u32],
    pub indicators: &'a HashMap<String, Series>,
    pub levels: &'a HashMap<String, (f64, WarnLevel)>,
    pub thresholds: &'a dyn Fn(&str, WarnLevel) -> Option<f64>,
    pub tables: &'a HashMap<String, Table>,
    pub cases: &'a VecDeque<SeenCase>,
    /// The grid a position lies in (for `same area`; the subject's grid is found lazily).
    pub grid_at: &'a dyn Fn((f64, f64)) -> Option<String>,
    /// Every device's latest values (time, value) by slot.
    pub slots: &'a Slots,
    pub latest: &'a [(Millis, f64)],
    /// The id of a metric of a device's kind.
    pub metric_of: &'a dyn Fn(u32, &str) -> Option<u16>,
    pub now: Millis,
}

impl Judge<'_> {
    fn device_series(&self, metric: &str) -> Option<&Series> {
        let m = *self.metric_ids.get(metric)?;
        self.siblings
            .iter()
            .find_map(|d| self.series.get(&(*d, m)).filter(|s| !s.is_empty()))
    }

    fn any_series(&self, metric: &str) -> Option<&Series> {
        self.device_series(metric)
            .or_else(|| self.indicators.get(metric))
    }

    fn in_scope(&self, scope: Scope, pos: Option<(f64, f64)>, grid: Option<&str>) -> bool {
        match scope {
            Scope::Anywhere => true,
            Scope::SameAddress => {
                matches!((self.subject.pos, pos), (Some(a), Some(b)) if metres(a, b) <= SAME_ADDRESS_M)
            }
            Scope::SameBuilding => {
                matches!((self.subject.pos, pos), (Some(a), Some(b)) if metres(a, b) <= SAME_BUILDING_M)
            }
            Scope::SameArea => {
                let own = match &self.subject.grid {
                    Some(g) => Some(g.clone()),
                    None => self.subject.pos.and_then(|p| (self.grid_at)(p)),
                };
                grid.is_some() && grid == own.as_deref()
            }
        }
    }
}

impl Facts for Judge<'_> {
    fn window(&self, metric: &str, window: Millis, agg: Agg) -> Option<f64> {
        self.any_series(metric)?.aggregate(self.now, window, agg)
    }

    fn latest(&self, metric: &str) -> Option<f64> {
        let from_device = self.siblings.iter().find_map(|&d| {
            let m = (self.metric_of)(d, metric)?;
            let v = self.latest.get(self.slots.slot(d, m)?)?;
            (v.0 != Millis::MIN).then_some(v.1)
        });
        from_device.or_else(|| self.levels.get(metric).map(|l| l.0))
    }

    fn series(&self, metric: &str, window: Millis) -> Vec<(Millis, f64)> {
        self.any_series(metric)
            .map(|s| s.points(self.now, window))
            .unwrap_or_default()
    }

    fn row(&self, dataset: &str) -> Option<&Row> {
        let t = self.tables.get(dataset)?;
        let by_device = self
            .subject
            .device
            .and_then(|d| self.device_ids.get(d as usize))
            .and_then(|id| t.by_key.get(id));
        let i = by_device.or_else(|| {
            let a = self.subject.address.as_ref()?;
            t.by_key.get(a).or_else(|| t.by_address.get(a)?.first())
        })?;
        t.rows.get(*i)
    }

    fn case_count(&self, categories: &[String], window: Millis, scope: Scope) -> u64 {
        let from = self.now - window;
        self.cases
            .iter()
            .rev()
            .take_while(|c| c.at > from)
            .filter(|c| c.at <= self.now && categories.contains(&c.category))
            .filter(|c| self.in_scope(scope, Some((c.lon, c.lat)), c.grid.as_deref()))
            .count() as u64
    }

    fn distinct(&self, dataset: &str, column: &str, window: Millis, scope: Scope) -> u64 {
        let Some(t) = self.tables.get(dataset) else {
            return 0;
        };
        let from = self.now - window;
        let rows: Box<dyn Iterator<Item = usize>> = match scope {
            Scope::Anywhere => Box::new(0..t.rows.len()),
            // Rows name places by address: the same address is the same text.
            _ => match self
                .subject
                .address
                .as_ref()
                .and_then(|a| t.by_address.get(a))
            {
                Some(v) => Box::new(v.iter().copied()),
                None => return 0,
            },
        };
        let mut seen = std::collections::HashSet::new();
        for i in rows {
            if t.at[i].is_some_and(|at| at <= from || at > self.now) {
                continue;
            }
            if let Some(Value::Str(v)) = t.rows[i].get(column) {
                seen.insert(v.as_str());
            } else if let Some(v) = t.rows[i].get(column) {
                seen.insert(match v {
                    Value::Bool(true) => "true",
                    Value::Bool(false) => "false",
                    _ => continue,
                });
            }
        }
        seen.len() as u64
    }

    fn level(&self, indicator: &str) -> Option<WarnLevel> {
        self.levels.get(indicator).map(|l| l.1)
    }

    fn threshold(&self, indicator: &str, level: WarnLevel) -> Option<f64> {
        (self.thresholds)(indicator, level)
    }

    fn position(&self) -> Option<(f64, f64)> {
        self.subject.pos
    }

    fn fence(&self, name: &str) -> Option<&[[f64; 2]]> {
        self.pack
            .fences
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.ring.as_slice())
    }
}
