//! Devices as they come (issue 22): the payload shapes the sensing end takes besides its
//! own NDJSON, decoded into plain readings — SenML JSON (RFC 8428), the common telemetry
//! shape `{"ts": millis, "values": {…}}` (and its array form), and a mapping declared per
//! device kind in the sensing file (`[[payload]]`: JSON pointers to the device id, the
//! time and the metrics' values) — plus the declarations' parser, which names every
//! problem by line and column.
//!
//! Pure: no IO, no clock. `now` is passed in (SenML's relative times count from it).
//! Every record that cannot become a reading is refused with a [`Reason`] and a message
//! naming the record and the problem; the other records of the same payload stay good.

use crate::time::{parse_datetime, Millis};
use serde_json::Value;
use std::collections::BTreeMap;
use toml::Spanned;

/// Why a reading was refused: the counters' labels (snake_case, stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not JSON, or not the shape promised (and SenML's structural faults: a record with
    /// two values, none, or a must-understand field this parser does not know).
    Malformed,
    /// A SenML record without a name (no `bn` + `n`), or no device to be found.
    NoName,
    /// A time that is not one: not finite, before 2000 or after 2100, a text that is not
    /// RFC 3339, an epoch that is not a number.
    BadTime,
    /// The unit sent is not the metric's declared unit.
    UnitMismatch,
    /// A value that is not a number (`vs`, `vd`, a text).
    NotNumeric,
    /// A mapping's pointer points at nothing in this payload.
    MappingMissing,
    /// Payload declared for a device kind (or topic) that has no mapping.
    NoMapping,
    /// A message or line over the size limit.
    TooLarge,
    UnknownDevice,
    UndeclaredMetric,
    OutOfRange,
    Future,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::Malformed,
        Reason::NoName,
        Reason::BadTime,
        Reason::UnitMismatch,
        Reason::NotNumeric,
        Reason::MappingMissing,
        Reason::NoMapping,
        Reason::TooLarge,
        Reason::UnknownDevice,
        Reason::UndeclaredMetric,
        Reason::OutOfRange,
        Reason::Future,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed",
            Reason::NoName => "no_name",
            Reason::BadTime => "bad_time",
            Reason::UnitMismatch => "unit_mismatch",
            Reason::NotNumeric => "not_numeric",
            Reason::MappingMissing => "mapping_missing",
            Reason::NoMapping => "no_mapping",
            Reason::TooLarge => "too_large",
            Reason::UnknownDevice => "unknown_device",
            Reason::UndeclaredMetric => "undeclared_metric",
            Reason::OutOfRange => "out_of_range",
            Reason::Future => "future",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One reading decoded from a payload. `device` is `None` when the payload does not say
/// (the telemetry shape): the caller supplies it from the topic or the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub device: Option<String>,
    pub metric: String,
    pub value: f64,
    /// `None`: the time of arrival.
    pub at: Option<Millis>,
    /// The unit the sender named, if any (SenML `u`/`bu`).
    pub unit: Option<String>,
}

/// A record refused: which one (1-based, in the payload's order), why, and what to say.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub record: usize,
    pub reason: Reason,
    pub problem: String,
}

pub type Item = Result<Decoded, Refusal>;

/// Times before 2000-01-01 or from 2100-01-01 on are refused as out of range.
pub const EARLIEST: Millis = 946_684_800_000;
pub const LATEST: Millis = 4_102_444_800_000;

/// SenML: times below 2^28 s are relative to now (RFC 8428 §4.5.3).
const RELATIVE_BELOW: f64 = 268_435_456.0;

fn check_time(t: Millis, record: usize, what: &str) -> Result<Millis, Refusal> {
    if (EARLIEST..LATEST).contains(&t) {
        Ok(t)
    } else {
        Err(Refusal {
            record,
            reason: Reason::BadTime,
            problem: format!("record {record}: {what} is out of range (2000–2099)"),
        })
    }
}

fn seconds_to_millis(s: f64) -> Option<Millis> {
    let ms = s * 1000.0;
    (ms.is_finite() && ms.abs() < 1e15).then_some(ms.round() as Millis)
}

/// Splits a SenML name into (device, metric): at the last `:` or `/`; the device part
/// keeps only what follows its own last `:` (so `urn:dev:mac:WL-001:` names `WL-001`).
/// A name without a separator is a metric of the device the caller knows.
pub fn split_name(name: &str) -> (Option<&str>, &str) {
    match name.rfind([':', '/']) {
        Some(i) => {
            let dev = &name[..i];
            let dev = dev.rsplit(':').next().unwrap_or(dev);
            ((!dev.is_empty()).then_some(dev), &name[i + 1..])
        }
        None => (None, name),
    }
}

/// Decodes a SenML JSON pack (RFC 8428 §4, §5): base fields carry over to the records
/// after them; `t` (+ `bt`) below 2^28 s counts from `now`; exactly one of
/// `v`/`vb`/`vs`/`vd` per record (`bv` added to `v`; `vb` is 1 or 0; `vs`/`vd` refused as
/// not numeric); `bver` above 10 and unknown fields ending in `_` refuse the record.
pub fn senml(payload: &[u8], now: Millis, out: &mut Vec<Item>) {
    let pack: Vec<serde_json::Map<String, Value>> = match serde_json::from_slice(payload) {
        Ok(p) => p,
        Err(e) => {
            out.push(Err(Refusal {
                record: 0,
                reason: Reason::Malformed,
                problem: format!("not a SenML pack (a JSON array of objects): {e}"),
            }));
            return;
        }
    };
    let mut bn = String::new();
    let mut bt = 0.0f64;
    let mut bu: Option<String> = None;
    let mut bv = 0.0f64;
    for (i, rec) in pack.iter().enumerate() {
        let record = i + 1;
        let refuse = |reason: Reason, problem: String| {
            Err(Refusal {
                record,
                reason,
                problem: format!("record {record}: {problem}"),
            })
        };
        // Base fields first: they hold for this record and the ones after it.
        let mut base_bad = None;
        for (k, v) in rec {
            match (k.as_str(), v) {
                ("bn", Value::String(s)) => bn = s.clone(),
                ("bt", Value::Number(n)) => bt = n.as_f64().unwrap_or(f64::NAN),
                ("bu", Value::String(s)) => bu = Some(s.clone()),
                ("bv", Value::Number(n)) => bv = n.as_f64().unwrap_or(0.0),
                ("bver", Value::Number(n)) if n.as_f64().is_some_and(|x| x <= 10.0) => {}
                ("bver", v) => {
                    base_bad = Some(format!(
                        "bver {v} is not a version this parser reads (≤ 10)"
                    ))
                }
                ("bn" | "bt" | "bu" | "bv", v) => {
                    base_bad = Some(format!("{k} has the wrong type ({v})"))
                }
                (k, _) if k.ends_with('_') => {
                    base_bad = Some(format!("must-understand field {k:?} is not understood"))
                }
                _ => {}
            }
        }
        if let Some(p) = base_bad {
            out.push(refuse(Reason::Malformed, p));
            continue;
        }
        let n = match rec.get("n") {
            None => "",
            Some(Value::String(s)) => s.as_str(),
            Some(v) => {
                out.push(refuse(Reason::Malformed, format!("n is not a text ({v})")));
                continue;
            }
        };
        let values: Vec<&str> = ["v", "vb", "vs", "vd"]
            .into_iter()
            .filter(|k| rec.contains_key(*k))
            .collect();
        // A record holding only base fields (and no name of its own) sets them; a record
        // with a name but no value is refused.
        if values.is_empty()
            && n.is_empty()
            && !rec.contains_key("t")
            && !rec.contains_key("u")
            && rec.keys().any(|k| k.starts_with('b'))
        {
            continue;
        }
        let name = format!("{bn}{n}");
        if name.is_empty() {
            out.push(refuse(Reason::NoName, "no name (neither bn nor n)".into()));
            continue;
        }
        let value = match values.as_slice() {
            [] => {
                out.push(refuse(
                    Reason::Malformed,
                    format!("{name:?} has no value (one of v, vb, vs, vd)"),
                ));
                continue;
            }
            ["v"] => match rec["v"].as_f64() {
                Some(v) => v + bv,
                None => {
                    out.push(refuse(
                        Reason::NotNumeric,
                        format!("{name:?}: v {} is not a number", rec["v"]),
                    ));
                    continue;
                }
            },
            ["vb"] => match rec["vb"].as_bool() {
                Some(b) => f64::from(u8::from(b)),
                None => {
                    out.push(refuse(
                        Reason::Malformed,
                        format!("{name:?}: vb {} is not true or false", rec["vb"]),
                    ));
                    continue;
                }
            },
            [one] => {
                out.push(refuse(
                    Reason::NotNumeric,
                    format!("{name:?}: {one} is not a numeric reading"),
                ));
                continue;
            }
            many => {
                out.push(refuse(
                    Reason::Malformed,
                    format!("{name:?} has more than one value ({})", many.join(" and ")),
                ));
                continue;
            }
        };
        let t = match rec.get("t") {
            None => 0.0,
            Some(Value::Number(x)) => x.as_f64().unwrap_or(f64::NAN),
            Some(v) => {
                out.push(refuse(Reason::BadTime, format!("t {v} is not a number")));
                continue;
            }
        };
        let total = bt + t;
        let at = if !total.is_finite() {
            None
        } else if total == 0.0 {
            Some(None)
        } else if total.abs() < RELATIVE_BELOW {
            seconds_to_millis(total).map(|ms| Some(now + ms))
        } else {
            seconds_to_millis(total).map(Some)
        };
        let at = match at {
            None => {
                out.push(refuse(
                    Reason::BadTime,
                    format!("{name:?}: time {total} s is out of range"),
                ));
                continue;
            }
            Some(None) => None,
            Some(Some(ms)) => match check_time(ms, record, &format!("{name:?}: time {total} s")) {
                Ok(ms) => Some(ms),
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            },
        };
        let unit = match rec.get("u") {
            Some(Value::String(u)) => Some(u.clone()),
            Some(v) => {
                out.push(refuse(Reason::Malformed, format!("u {v} is not a text")));
                continue;
            }
            None => bu.clone(),
        };
        let (device, metric) = split_name(&name);
        if metric.is_empty() {
            out.push(refuse(
                Reason::NoName,
                format!("name {name:?} names no metric after its device"),
            ));
            continue;
        }
        out.push(Ok(Decoded {
            device: device.map(String::from),
            metric: metric.to_string(),
            value,
            at,
            unit,
        }));
    }
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Decodes the telemetry shape: `{"ts": millis, "values": {"metric": value, …}}`, an
/// array of them, or bare `{"metric": value, …}` (arrival time). Values are numbers or
/// booleans (1/0); anything else is refused per metric.
pub fn telemetry(payload: &[u8], out: &mut Vec<Item>) {
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => {
            out.push(Err(Refusal {
                record: 0,
                reason: Reason::Malformed,
                problem: format!("not telemetry JSON: {e}"),
            }));
            return;
        }
    };
    let entries: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        o => vec![o],
    };
    for (i, e) in entries.into_iter().enumerate() {
        let record = i + 1;
        let Some(o) = e.as_object() else {
            out.push(Err(Refusal {
                record,
                reason: Reason::Malformed,
                problem: format!("record {record}: not an object"),
            }));
            continue;
        };
        let (at, values) = match (o.get("ts"), o.get("values")) {
            (Some(ts), Some(Value::Object(values))) => {
                let at = match ts.as_f64().filter(|x| x.is_finite()) {
                    Some(ms) => check_time(ms as Millis, record, &format!("ts {ts}")),
                    None => Err(Refusal {
                        record,
                        reason: Reason::BadTime,
                        problem: format!("record {record}: ts {ts} is not epoch milliseconds"),
                    }),
                };
                match at {
                    Ok(t) => (Some(t), values),
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                }
            }
            (None, Some(Value::Object(values))) => (None, values),
            (_, Some(v)) => {
                out.push(Err(Refusal {
                    record,
                    reason: Reason::Malformed,
                    problem: format!("record {record}: values {v} is not an object"),
                }));
                continue;
            }
            (Some(_), None) => {
                out.push(Err(Refusal {
                    record,
                    reason: Reason::Malformed,
                    problem: format!("record {record}: ts without values"),
                }));
                continue;
            }
            (None, None) => (None, o),
        };
        for (metric, value) in values {
            match number_of(value) {
                Some(x) => out.push(Ok(Decoded {
                    device: None,
                    metric: metric.clone(),
                    value: x,
                    at,
                    unit: None,
                })),
                None => out.push(Err(Refusal {
                    record,
                    reason: Reason::NotNumeric,
                    problem: format!("record {record}: {metric} = {value} is not a number"),
                })),
            }
        }
    }
}

/// How a mapping's time is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    EpochS,
    EpochMs,
    /// RFC 3339; a text without an offset is read in the mapping's `time_zone`.
    Rfc3339,
}

/// A vendor shape, declared per device kind: where the device id, the time and the
/// metrics' values are (RFC 6901 JSON pointers).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Where the records are, if not the payload itself (an array is always walked).
    pub items: Option<String>,
    pub device: String,
    pub time: Option<String>,
    pub time_format: TimeFormat,
    /// Offset applied to RFC 3339 texts without one (minutes east of UTC; default +08:00).
    pub zone_minutes: i64,
    /// (metric, pointer to its value).
    pub metrics: Vec<(String, String)>,
    /// Or: where the metric's name is and where its value is.
    pub metric_value: Option<(String, String)>,
}

/// The shape a device kind speaks on its own topic `{prefix}/readings/{device}` and on
/// `POST /api/v1/readings?device=` (default: native).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Native,
    Senml,
    Telemetry,
    Mapped,
}

impl Shape {
    pub fn parse(s: &str) -> Option<Shape> {
        Some(match s {
            "native" => Shape::Native,
            "senml" => Shape::Senml,
            "telemetry" => Shape::Telemetry,
            "mapped" => Shape::Mapped,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Native => "native",
            Shape::Senml => "senml",
            Shape::Telemetry => "telemetry",
            Shape::Mapped => "mapped",
        }
    }
}

/// The payload declarations of the sensing file: a shape per device kind, a kind's
/// mapping (used on `{prefix}/mapped/{kind}`, and on its own topic when its shape is
/// `mapped`), and each metric's unit (SenML `u` is checked against it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payloads {
    pub shapes: BTreeMap<String, Shape>,
    pub mappings: BTreeMap<String, Mapping>,
    pub units: BTreeMap<String, String>,
}

impl Payloads {
    pub fn shape_of(&self, kind: &str) -> Shape {
        self.shapes.get(kind).copied().unwrap_or(Shape::Native)
    }

    pub fn mapping_of(&self, kind: &str) -> Option<&Mapping> {
        self.mappings.get(kind)
    }

    /// Is `unit` the declared unit of `metric`? (A metric without a declared unit takes
    /// no unit: anything named is refused, so nothing is taken in an unknown scale.)
    pub fn unit_ok(&self, metric: &str, unit: &str) -> Result<(), String> {
        match self.units.get(metric) {
            Some(u) if u == unit => Ok(()),
            Some(u) => Err(format!(
                "{metric} is measured in {u:?}, the reading says {unit:?}"
            )),
            None => Err(format!(
                "{metric} has no declared unit; the reading says {unit:?}"
            )),
        }
    }
}

/// Resolves an RFC 6901 pointer (`""` is the whole value).
pub fn pointer<'v>(v: &'v Value, p: &str) -> Option<&'v Value> {
    v.pointer(p)
}

fn valid_pointer(p: &str) -> Result<(), String> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(format!(
            "JSON pointer {p:?} must be empty or start with '/'"
        ));
    }
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.peek(), Some('0') | Some('1')) {
            return Err(format!(
                "JSON pointer {p:?}: '~' must be followed by 0 or 1"
            ));
        }
    }
    Ok(())
}

/// Decodes a payload by `mapping`.
pub fn mapped(mapping: &Mapping, payload: &[u8], out: &mut Vec<Item>) {
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(e) => {
            out.push(Err(Refusal {
                record: 0,
                reason: Reason::Malformed,
                problem: format!("not JSON: {e}"),
            }));
            return;
        }
    };
    let root = match &mapping.items {
        Some(p) => match v.pointer(p) {
            Some(r) => r,
            None => {
                out.push(Err(Refusal {
                    record: 0,
                    reason: Reason::MappingMissing,
                    problem: format!("items pointer {p:?} points at nothing"),
                }));
                return;
            }
        },
        None => &v,
    };
    let records: Vec<&Value> = match root {
        Value::Array(a) => a.iter().collect(),
        r => vec![r],
    };
    for (i, r) in records.into_iter().enumerate() {
        let record = i + 1;
        let missing = |what: &str, p: &str| {
            Err(Refusal {
                record,
                reason: Reason::MappingMissing,
                problem: format!("record {record}: {what} pointer {p:?} points at nothing"),
            })
        };
        let device = match r.pointer(&mapping.device) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                out.push(Err(Refusal {
                    record,
                    reason: Reason::NoName,
                    problem: format!("record {record}: device {other} is not an id"),
                }));
                continue;
            }
            None => {
                out.push(missing("device", &mapping.device));
                continue;
            }
        };
        let at = match &mapping.time {
            None => None,
            Some(p) => match r.pointer(p) {
                None => {
                    out.push(missing("time", p));
                    continue;
                }
                Some(t) => match mapped_time(mapping, t, record) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                },
            },
        };
        let mut one = |metric: String, value: Option<&Value>, p: &str| match value {
            None => out.push(missing(&format!("{metric} value"), p)),
            Some(value) => match number_of(value) {
                Some(x) => out.push(Ok(Decoded {
                    device: Some(device.clone()),
                    metric,
                    value: x,
                    at,
                    unit: None,
                })),
                None => out.push(Err(Refusal {
                    record,
                    reason: Reason::NotNumeric,
                    problem: format!("record {record}: {metric} = {value} is not a number"),
                })),
            },
        };
        for (metric, p) in &mapping.metrics {
            one(metric.clone(), r.pointer(p), p);
        }
        if let Some((np, vp)) = &mapping.metric_value {
            match r.pointer(np) {
                Some(Value::String(name)) => one(name.clone(), r.pointer(vp), vp),
                Some(other) => out.push(Err(Refusal {
                    record,
                    reason: Reason::NoName,
                    problem: format!("record {record}: metric name {other} is not a text"),
                })),
                None => out.push(missing("metric", np)),
            }
        }
    }
}

fn mapped_time(m: &Mapping, t: &Value, record: usize) -> Result<Millis, Refusal> {
    let bad = |what: String| Refusal {
        record,
        reason: Reason::BadTime,
        problem: format!("record {record}: {what}"),
    };
    let ms = match (m.time_format, t) {
        (TimeFormat::EpochS, t) => t
            .as_f64()
            .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
            .and_then(seconds_to_millis)
            .ok_or_else(|| bad(format!("time {t} is not epoch seconds")))?,
        (TimeFormat::EpochMs, t) => t
            .as_f64()
            .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
            .filter(|x| x.is_finite() && x.abs() < 1e15)
            .map(|x| x as Millis)
            .ok_or_else(|| bad(format!("time {t} is not epoch milliseconds")))?,
        (TimeFormat::Rfc3339, Value::String(s)) => rfc3339_in_zone(s, m.zone_minutes)
            .ok_or_else(|| bad(format!("time {s:?} is not RFC 3339")))?,
        (TimeFormat::Rfc3339, t) => return Err(bad(format!("time {t} is not an RFC 3339 text"))),
    };
    check_time(ms, record, &format!("time {t}"))
}

/// RFC 3339 with its own offset; without one, in `zone_minutes` east of UTC.
pub fn rfc3339_in_zone(s: &str, zone_minutes: i64) -> Option<Millis> {
    let s = s.trim();
    // `get`, not slicing: byte 10 of a hostile text may fall inside a character.
    let has_offset = s
        .get(10..)
        .is_some_and(|r| r.contains(['Z', 'z', '+', '-']));
    let t = parse_datetime(&s.replace('z', "Z"))?;
    if has_offset {
        Some(t)
    } else {
        // parse_datetime read it as Beijing time (UTC+8): move it to the declared zone.
        Some(t + crate::time::HOUR * 8 - zone_minutes * crate::time::MINUTE)
    }
}

/// A problem in the payload declarations, at its place in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for DeclProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

#[derive(serde::Deserialize)]
struct RawFile {
    #[serde(default)]
    payload: Vec<Spanned<RawPayload>>,
    #[serde(default)]
    units: BTreeMap<String, Spanned<String>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayload {
    kind: Spanned<String>,
    shape: Spanned<String>,
    items: Option<Spanned<String>>,
    device: Option<Spanned<String>>,
    time: Option<Spanned<String>>,
    time_format: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
    #[serde(default)]
    metrics: BTreeMap<String, Spanned<String>>,
    metric: Option<Spanned<String>>,
    value: Option<Spanned<String>>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// Reads the `[[payload]]` tables and the `[units]` table of the sensing file (other
/// tables are the alarm rules', read by `sensing::parse_rules`). `kinds` are the device
/// kinds that exist; `metrics_of(kind)` the metrics a kind is declared for. Every
/// problem is named with its line and column: an unknown kind or shape, a kind declared
/// twice, a mapping without a device pointer or without metrics, a pointer that is not
/// one, an unknown time format or zone, a metric the kind is not declared for.
pub fn parse_payloads(
    text: &str,
    kinds: &dyn Fn(&str) -> bool,
    metrics_of: &dyn Fn(&str, &str) -> bool,
) -> Result<Payloads, Vec<DeclProblem>> {
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            return Err(vec![DeclProblem {
                line,
                column,
                message: format!("the sensing file does not parse: {}", e.message()),
            }]);
        }
    };
    let mut problems = Vec::new();
    let mut out = Payloads::default();
    let mut bad = |offset: usize, message: String| {
        let (line, column) = line_col(text, offset);
        problems.push(DeclProblem {
            line,
            column,
            message,
        });
    };
    for (metric, unit) in &raw.units {
        if unit.get_ref().trim().is_empty() {
            bad(
                unit.span().start,
                format!("metric {metric} has an empty unit"),
            );
        } else {
            out.units.insert(metric.clone(), unit.get_ref().clone());
        }
    }
    for p in &raw.payload {
        let p = p.get_ref();
        let kind = p.kind.get_ref();
        if !kinds(kind) {
            bad(
                p.kind.span().start,
                format!("payload for unknown device kind {kind:?}"),
            );
            continue;
        }
        if out.shapes.contains_key(kind) {
            bad(
                p.kind.span().start,
                format!("device kind {kind:?} has a payload declared twice"),
            );
            continue;
        }
        let check_ptr = |s: &Spanned<String>, bad: &mut dyn FnMut(usize, String)| {
            if let Err(m) = valid_pointer(s.get_ref()) {
                bad(s.span().start, m);
            }
        };
        let Some(shape) = Shape::parse(p.shape.get_ref()) else {
            bad(
                p.shape.span().start,
                format!(
                    "shape {:?} is not native, senml, telemetry or mapped",
                    p.shape.get_ref()
                ),
            );
            continue;
        };
        let declares_mapping = p.device.is_some()
            || !p.metrics.is_empty()
            || p.metric.is_some()
            || p.value.is_some()
            || p.time.is_some()
            || p.items.is_some();
        if declares_mapping || shape == Shape::Mapped {
            let Some(device) = &p.device else {
                bad(
                    p.kind.span().start,
                    format!("mapping of {kind:?} says nowhere where the device id is (device = \"/pointer\")"),
                );
                continue;
            };
            check_ptr(device, &mut bad);
            for s in [&p.items, &p.time, &p.metric, &p.value]
                .into_iter()
                .flatten()
            {
                check_ptr(s, &mut bad);
            }
            let time_format = match p.time_format.as_ref().map(|s| s.get_ref().as_str()) {
                None | Some("epoch_ms") => TimeFormat::EpochMs,
                Some("epoch_s") => TimeFormat::EpochS,
                Some("rfc3339") => TimeFormat::Rfc3339,
                Some(other) => {
                    bad(
                        p.time_format.as_ref().map_or(0, |s| s.span().start),
                        format!("time_format {other:?} is not epoch_s, epoch_ms or rfc3339"),
                    );
                    TimeFormat::EpochMs
                }
            };
            if p.time_format.is_some() && p.time.is_none() {
                bad(
                    p.time_format.as_ref().map_or(0, |s| s.span().start),
                    "time_format without a time pointer".into(),
                );
            }
            let zone_minutes = match &p.time_zone {
                None => 8 * 60,
                Some(z) => match parse_zone(z.get_ref()) {
                    Some(m) => m,
                    None => {
                        bad(
                            z.span().start,
                            format!(
                                "time_zone {:?} is not an offset such as \"+08:00\" or \"Z\"",
                                z.get_ref()
                            ),
                        );
                        0
                    }
                },
            };
            let metric_value = match (&p.metric, &p.value) {
                (Some(m), Some(v)) => Some((m.get_ref().clone(), v.get_ref().clone())),
                (None, None) => None,
                (Some(s), None) | (None, Some(s)) => {
                    bad(
                        s.span().start,
                        "metric and value pointers go together".into(),
                    );
                    None
                }
            };
            let mut metrics = Vec::new();
            for (m, ptr) in &p.metrics {
                check_ptr(ptr, &mut bad);
                if !metrics_of(kind, m) {
                    bad(
                        ptr.span().start,
                        format!("device kind {kind:?} is not declared for metric {m:?}"),
                    );
                }
                metrics.push((m.clone(), ptr.get_ref().clone()));
            }
            if metrics.is_empty() && metric_value.is_none() {
                bad(
                    p.kind.span().start,
                    format!("mapping of {kind:?} names no metric (metrics = {{ name = \"/pointer\" }}, or metric and value pointers)"),
                );
            }
            out.mappings.insert(
                kind.clone(),
                Mapping {
                    items: p.items.as_ref().map(|s| s.get_ref().clone()),
                    device: device.get_ref().clone(),
                    time: p.time.as_ref().map(|s| s.get_ref().clone()),
                    time_format,
                    zone_minutes,
                    metrics,
                    metric_value,
                },
            );
        } else if let Some(s) = p.time_format.as_ref().or(p.time_zone.as_ref()) {
            bad(
                s.span().start,
                "time_format and time_zone belong to a mapping (device, time, metrics pointers)"
                    .into(),
            );
        }
        out.shapes.insert(kind.clone(), shape);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// "+08:00", "-05:30", "Z" → minutes east of UTC.
pub fn parse_zone(z: &str) -> Option<i64> {
    if z == "Z" || z == "UTC" {
        return Some(0);
    }
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = z[1..].split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m) && h.to_string().len() <= 2)
        .then_some(sign * (h * 60 + m))
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_rfc3339_time_with_characters_of_several_bytes_is_refused_not_a_panic() {
        for t in [
            "123456789é0",
            "2026-12-07é12:00:00",
            "时间时间时间时间",
            "2026-12-0７T10:00:00",
        ] {
            assert_eq!(rfc3339_in_zone(t, 480), None, "{t}");
        }
        assert!(rfc3339_in_zone("2026-12-07T10:00:00+08:00", 0).is_some());
    }
    use super::*;

    const NOW: Millis = 1_764_115_200_000;

    fn ok(items: &[Item]) -> Vec<&Decoded> {
        items.iter().filter_map(|i| i.as_ref().ok()).collect()
    }
    fn bad(items: &[Item]) -> Vec<(Reason, &str)> {
        items
            .iter()
            .filter_map(|i| i.as_ref().err())
            .map(|e| (e.reason, e.problem.as_str()))
            .collect()
    }

    #[test]
    fn senml_base_fields_and_times() {
        let pack = br#"[
            {"bn":"urn:dev:mac:WL-001:","bt":1764115200,"bu":"cm","bver":10,"n":"depth_cm","v":12.5},
            {"n":"depth_cm","t":60,"v":13},
            {"bn":"SM-1:","bt":0,"n":"obscuration_pct","u":"%","v":3,"t":-5},
            {"n":"door","vb":true}
        ]"#;
        let mut out = Vec::new();
        senml(pack, NOW, &mut out);
        let r = ok(&out);
        assert_eq!(r.len(), 4, "{out:?}");
        assert_eq!(r[0].device.as_deref(), Some("WL-001"));
        assert_eq!(r[0].metric, "depth_cm");
        assert_eq!(r[0].at, Some(1_764_115_200_000));
        assert_eq!(r[0].unit.as_deref(), Some("cm"));
        assert_eq!(r[1].at, Some(1_764_115_260_000));
        assert_eq!(r[2].device.as_deref(), Some("SM-1"));
        assert_eq!(r[2].at, Some(NOW - 5000), "relative time");
        assert_eq!(r[3].value, 1.0);
        assert_eq!(r[3].at, None);
    }

    #[test]
    fn senml_bad_records_named_others_kept() {
        let pack = br#"[
            {"v":1},
            {"bn":"D-1:","n":"a","v":1,"vs":"x"},
            {"n":"b","t":1e300,"v":1},
            {"n":"c","t":100000000000,"v":1},
            {"n":"d","vs":"on"},
            {"n":"e","v":2,"x_":1},
            {"n":"f"},
            {"n":"g","v":3}
        ]"#;
        let mut out = Vec::new();
        senml(pack, NOW, &mut out);
        let b = bad(&out);
        assert_eq!(b[0].0, Reason::NoName);
        assert_eq!(b[1].0, Reason::Malformed);
        assert!(b[1].1.contains("v and vs"), "{}", b[1].1);
        assert_eq!(b[2].0, Reason::BadTime);
        assert_eq!(b[3].0, Reason::BadTime);
        assert_eq!(b[4].0, Reason::NotNumeric);
        assert_eq!(b[5].0, Reason::Malformed);
        assert!(b[6].1.contains("no value"));
        assert_eq!(ok(&out).len(), 1);
        assert_eq!(ok(&out)[0].metric, "g");
        let mut out = Vec::new();
        senml(b"{\"n\":1}", NOW, &mut out);
        assert_eq!(bad(&out)[0].0, Reason::Malformed);
    }

    #[test]
    fn telemetry_shapes() {
        let mut out = Vec::new();
        telemetry(
            br#"[{"ts":1764115200000,"values":{"depth_cm":12,"on":true}},{"ts":1764115260000,"values":{"depth_cm":"x"}}]"#,
            &mut out,
        );
        assert_eq!(ok(&out).len(), 2);
        assert_eq!(ok(&out)[0].at, Some(1_764_115_200_000));
        assert_eq!(bad(&out)[0].0, Reason::NotNumeric);
        let mut out = Vec::new();
        telemetry(br#"{"depth_cm":3}"#, &mut out);
        assert_eq!(ok(&out)[0].at, None);
        let mut out = Vec::new();
        telemetry(br#"{"ts":12,"values":{"depth_cm":3}}"#, &mut out);
        assert_eq!(bad(&out)[0].0, Reason::BadTime);
    }

    const FILE: &str = r#"
[[rule]]
code = "x"

[units]
depth_cm = "cm"

[[payload]]
kind = "water_level"
shape = "mapped"
device = "/device"
time = "/ts"
time_format = "epoch_ms"
metrics = { depth_cm = "/value" }

[[payload]]
kind = "smoke"
shape = "senml"
"#;

    fn parse(text: &str) -> Result<Payloads, Vec<DeclProblem>> {
        parse_payloads(text, &|k| ["water_level", "smoke"].contains(&k), &|k, m| {
            k == "water_level" && m == "depth_cm"
        })
    }

    #[test]
    fn mapping_reads_the_vendor_shape() {
        let p = parse(FILE).unwrap();
        assert_eq!(p.shape_of("smoke"), Shape::Senml);
        assert_eq!(p.shape_of("gas"), Shape::Native);
        assert_eq!(p.shape_of("water_level"), Shape::Mapped);
        assert!(p.unit_ok("depth_cm", "cm").is_ok());
        assert!(p.unit_ok("depth_cm", "m").is_err());
        let m = p.mapping_of("water_level").unwrap();
        let mut out = Vec::new();
        mapped(
            m,
            br#"[{"device":"dev-01234","ts":1764115200000,"value":12.5},{"device":"dev-2","value":1}]"#,
            &mut out,
        );
        assert_eq!(ok(&out)[0].device.as_deref(), Some("dev-01234"));
        assert_eq!(ok(&out)[0].at, Some(1_764_115_200_000));
        assert_eq!(bad(&out)[0].0, Reason::MappingMissing);
        assert!(bad(&out)[0].1.contains("\"/ts\""));
    }

    #[test]
    fn rfc3339_zone_rule() {
        assert_eq!(
            rfc3339_in_zone("2025-11-26T08:00:00", 8 * 60),
            parse_datetime("2025-11-26T08:00:00+08:00")
        );
        assert_eq!(
            rfc3339_in_zone("2025-11-26T08:00:00", 0),
            parse_datetime("2025-11-26T08:00:00Z")
        );
        assert_eq!(
            rfc3339_in_zone("2025-11-26T08:00:00-05:00", 0),
            parse_datetime("2025-11-26T08:00:00-05:00")
        );
    }

    #[test]
    fn declarations_named_by_line_and_column() {
        let text = r#"
[[payload]]
kind = "tram"
shape = "mapped"

[[payload]]
kind = "water_level"
shape = "mapped"
device = "device"
time_format = "weeks"
metrics = { flow = "/v" }

[[payload]]
kind = "smoke"
shape = "xml"
"#;
        let e = parse(text).unwrap_err();
        let s: Vec<String> = e.iter().map(|p| p.to_string()).collect();
        assert!(
            s[0].starts_with("3:8: payload for unknown device kind \"tram\""),
            "{s:?}"
        );
        assert!(
            s.iter()
                .any(|x| x.starts_with("9:10:") && x.contains("must be empty or start")),
            "{s:?}"
        );
        assert!(
            s.iter().any(|x| x.contains("time_format \"weeks\"")),
            "{s:?}"
        );
        assert!(
            s.iter().any(|x| x.contains("time_format without a time")),
            "{s:?}"
        );
        assert!(
            s.iter()
                .any(|x| x.contains("not declared for metric \"flow\"")),
            "{s:?}"
        );
        assert!(
            s.iter()
                .any(|x| x.starts_with("15:9:") && x.contains("shape \"xml\"")),
            "{s:?}"
        );
    }

    #[test]
    fn names_split() {
        assert_eq!(split_name("WL-1:depth_cm"), (Some("WL-1"), "depth_cm"));
        assert_eq!(
            split_name("urn:dev:mac:WL-1:depth_cm"),
            (Some("WL-1"), "depth_cm")
        );
        assert_eq!(split_name("WL-1/depth_cm"), (Some("WL-1"), "depth_cm"));
        assert_eq!(split_name("depth_cm"), (None, "depth_cm"));
    }
}
