//! The sensing end (感知端): devices, their alarm rules, and the alarm state machine.
//!
//! A rule watches one metric of one kind of device: a threshold with hysteresis (fires
//! above `above`, clears only below `clear_below`; or the mirror for `below`) that must
//! hold for a `for` duration, or silence (no reading for `no_data`). Pure functions: the
//! service feeds readings and time in and acts on the transitions that come out.

use crate::territory::Territory;
use crate::time::{Millis, HOUR, MINUTE};
use serde::Deserialize;

/// A registered device.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub id: String,
    /// e.g. `water_level`, `manhole_tilt`, `smoke`, `water_meter`.
    pub kind: String,
    pub lon: f64,
    pub lat: f64,
    /// The department that owns it, if any.
    pub owner: Option<String>,
    /// e.g. `lone_elder`.
    pub tags: Vec<String>,
}

/// A row of a device file that was refused, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Reads a device CSV (`id,kind,lon,lat,owner,tags`, tags separated by `;`). Good rows
/// are kept; every bad row is reported with its line (a duplicate id, a position outside
/// the territory, a missing field, a number that is not one).
pub fn parse_devices_csv(text: &str, territory: &Territory) -> (Vec<Device>, Vec<RowError>) {
    let mut out: Vec<Device> = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with("id,kind") {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let mut bad = |m: String| errors.push(RowError { line, message: m });
        if f.len() < 4 || f.len() > 6 {
            bad(format!(
                "expected id,kind,lon,lat[,owner[,tags]], got {} fields",
                f.len()
            ));
            continue;
        }
        let (id, kind) = (f[0], f[1]);
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bad(format!(
                "device id {id:?} must be letters, digits, '-', '_' or '.'"
            ));
            continue;
        }
        if kind.is_empty() {
            bad(format!("device {id} has no kind"));
            continue;
        }
        let (Ok(lon), Ok(lat)) = (f[2].parse::<f64>(), f[3].parse::<f64>()) else {
            bad(format!(
                "device {id}: lon {:?} / lat {:?} are not numbers",
                f[2], f[3]
            ));
            continue;
        };
        if territory.locate(lon, lat).is_err() {
            bad(format!(
                "device {id} at ({lon}, {lat}) lies outside the territory"
            ));
            continue;
        }
        if !seen.insert(id.to_string()) {
            bad(format!("device id {id} is used twice"));
            continue;
        }
        out.push(Device {
            id: id.to_string(),
            kind: kind.to_string(),
            lon,
            lat,
            owner: f.get(4).filter(|s| !s.is_empty()).map(|s| s.to_string()),
            tags: f
                .get(5)
                .map(|t| {
                    t.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    (out, errors)
}

/// What makes a rule's alarm fire, and clear.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// Fires when the value is above `on`; clears when it falls below `off` (≤ `on`).
    Above { on: f64, off: f64 },
    /// Fires when the value is below `on`; clears when it rises above `off` (≥ `on`).
    Below { on: f64, off: f64 },
    /// Fires when no reading has come for this long; the next reading clears it.
    Silent { after: Millis },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRule {
    pub code: String,
    pub name_zh: String,
    /// The device kind it watches.
    pub kind: String,
    /// The reading's metric it watches (ignored by silence rules).
    pub metric: String,
    pub condition: Condition,
    /// How long the condition must hold before the alarm fires.
    pub for_ms: Millis,
    /// The case category an alarm becomes.
    pub category: String,
    /// The device must carry every one of these tags.
    pub tags: Vec<String>,
    /// Physically possible values; readings outside are refused.
    pub range: Option<(f64, f64)>,
}

/// The state of one (device, rule) alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlarmState {
    #[default]
    Normal,
    /// The condition holds since then, not yet for long enough.
    Pending {
        since: Millis,
    },
    Firing {
        since: Millis,
    },
}

/// A change the service must act on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlarmChange {
    Fired { since: Millis },
    Cleared,
}

impl AlarmRule {
    pub fn applies_to(&self, d: &Device) -> bool {
        d.kind == self.kind && self.tags.iter().all(|t| d.tags.contains(t))
    }

    /// Is a value physically possible for this rule's metric?
    pub fn in_range(&self, v: f64) -> bool {
        v.is_finite() && self.range.is_none_or(|(lo, hi)| v >= lo && v <= hi)
    }

    /// A reading of the rule's metric at `at`.
    pub fn observe(
        &self,
        s: AlarmState,
        value: f64,
        at: Millis,
    ) -> (AlarmState, Option<AlarmChange>) {
        let (breach, clear) = match self.condition {
            Condition::Above { on, off } => (value > on, value < off),
            Condition::Below { on, off } => (value < on, value > off),
            Condition::Silent { .. } => {
                return match s {
                    AlarmState::Firing { .. } => (AlarmState::Normal, Some(AlarmChange::Cleared)),
                    _ => (AlarmState::Normal, None),
                }
            }
        };
        match s {
            AlarmState::Firing { .. } if clear => (AlarmState::Normal, Some(AlarmChange::Cleared)),
            AlarmState::Firing { .. } => (s, None),
            AlarmState::Normal | AlarmState::Pending { .. } if !breach => {
                (AlarmState::Normal, None)
            }
            AlarmState::Normal => self.held(at, at),
            AlarmState::Pending { since } => self.held(since, at),
        }
    }

    fn held(&self, since: Millis, now: Millis) -> (AlarmState, Option<AlarmChange>) {
        if now - since >= self.for_ms {
            (
                AlarmState::Firing { since },
                Some(AlarmChange::Fired { since }),
            )
        } else {
            (AlarmState::Pending { since }, None)
        }
    }

    /// Time passes: a pending condition may have held long enough, a silent device may
    /// have been silent too long. `last` is the device's last reading (or registration).
    pub fn tick(
        &self,
        s: AlarmState,
        last: Millis,
        now: Millis,
    ) -> (AlarmState, Option<AlarmChange>) {
        match (self.condition, s) {
            (Condition::Silent { after }, AlarmState::Normal | AlarmState::Pending { .. })
                if now - last >= after =>
            {
                let since = last + after;
                (
                    AlarmState::Firing { since },
                    Some(AlarmChange::Fired { since }),
                )
            }
            (Condition::Silent { .. }, _) => (s, None),
            (_, AlarmState::Pending { since }) => self.held(since, now),
            _ => (s, None),
        }
    }

    /// What an alarm of this rule says, for the case and its log.
    pub fn describe(&self, d: &Device, value: Option<f64>) -> String {
        let what = match (self.condition, value) {
            (Condition::Silent { after }, _) => {
                format!("超过 {} 无数据 (no data)", duration_text(after))
            }
            (Condition::Above { on, .. }, Some(v)) => format!("{} = {v} 高于 {on}", self.metric),
            (Condition::Below { on, .. }, Some(v)) => format!("{} = {v} 低于 {on}", self.metric),
            _ => String::new(),
        };
        format!("【{}】设备 {}（{}）{what}", self.name_zh, d.id, d.kind)
    }
}

fn duration_text(ms: Millis) -> String {
    if ms % HOUR == 0 {
        format!("{} 小时", ms / HOUR)
    } else if ms % MINUTE == 0 {
        format!("{} 分钟", ms / MINUTE)
    } else {
        format!("{} 秒", ms / 1000)
    }
}

/// "90s", "5m", "2h", "1d" → milliseconds.
pub fn parse_duration(s: &str) -> Option<Millis> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => 24 * HOUR,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    rule: Vec<RawRule>,
    /// Read by `payload::parse_payloads` (the shapes devices speak, and metric units).
    #[serde(default, rename = "payload")]
    _payload: Option<toml::Value>,
    #[serde(default, rename = "units")]
    _units: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    code: String,
    name_zh: String,
    kind: String,
    #[serde(default)]
    metric: Option<String>,
    above: Option<f64>,
    clear_below: Option<f64>,
    below: Option<f64>,
    clear_above: Option<f64>,
    no_data: Option<String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    category: String,
    #[serde(default)]
    tags: Vec<String>,
    range: Option<[f64; 2]>,
}

/// Reads alarm rules (TOML `[[rule]]` tables). Every problem is reported, naming the rule.
pub fn parse_rules(
    text: &str,
    categories: &dyn Fn(&str) -> bool,
) -> Result<Vec<AlarmRule>, Vec<String>> {
    let raw: RawRules =
        toml::from_str(text).map_err(|e| vec![format!("alarm rules do not parse: {e}")])?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for r in raw.rule {
        let mut bad = |m: String| problems.push(format!("rule {:?}: {m}", r.code));
        if out.iter().any(|x: &AlarmRule| x.code == r.code) {
            bad("the code is used twice".into());
            continue;
        }
        if !categories(&r.category) {
            bad(format!("unknown category {:?}", r.category));
        }
        let condition = match (r.above, r.below, &r.no_data) {
            (Some(on), None, None) => {
                let off = r.clear_below.unwrap_or(on);
                if off > on {
                    bad(format!(
                        "clear_below {off} must not be above the threshold {on}"
                    ));
                }
                Condition::Above { on, off }
            }
            (None, Some(on), None) => {
                let off = r.clear_above.unwrap_or(on);
                if off < on {
                    bad(format!(
                        "clear_above {off} must not be below the threshold {on}"
                    ));
                }
                Condition::Below { on, off }
            }
            (None, None, Some(d)) => match parse_duration(d) {
                Some(after) if after > 0 => Condition::Silent { after },
                _ => {
                    bad(format!(
                        "no_data {d:?} is not a duration such as \"30m\" or \"12h\""
                    ));
                    continue;
                }
            },
            _ => {
                bad("give exactly one of above, below or no_data".into());
                continue;
            }
        };
        let metric = match (&condition, r.metric) {
            (Condition::Silent { .. }, m) => m.unwrap_or_default(),
            (_, Some(m)) if !m.is_empty() => m,
            _ => {
                bad("a threshold rule names the metric it watches".into());
                continue;
            }
        };
        let for_ms = match r.for_.as_deref().map(parse_duration) {
            None => 0,
            Some(Some(d)) => d,
            Some(None) => {
                bad(format!(
                    "for {:?} is not a duration such as \"5m\"",
                    r.for_.unwrap_or_default()
                ));
                continue;
            }
        };
        let range = match r.range {
            Some([lo, hi]) if lo >= hi => {
                bad(format!("range [{lo}, {hi}] is empty"));
                None
            }
            Some([lo, hi]) => Some((lo, hi)),
            None => None,
        };
        out.push(AlarmRule {
            code: r.code,
            name_zh: r.name_zh,
            kind: r.kind,
            metric,
            condition,
            for_ms,
            category: r.category,
            tags: r.tags,
            range,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
