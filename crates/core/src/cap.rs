//! Public warnings as OASIS Common Alerting Protocol 1.2 documents: Alert, Update and
//! Cancel (with `references` to what they update), the four warning colours mapped to CAP
//! severities, the area as a polygon. Pure: a value in, XML text out.

use crate::indicators::WarnLevel;
use crate::time::{format_rfc3339, Millis};

pub const CAP_NS: &str = "urn:oasis:names:tc:emergency:cap:1.2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    Alert,
    Update,
    Cancel,
}

impl MsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Alert => "Alert",
            MsgType::Update => "Update",
            MsgType::Cancel => "Cancel",
        }
    }
}

/// CAP `category` values.
pub const CATEGORIES: [&str; 12] = [
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
];

/// The CAP severity of a warning colour (red I → Extreme … blue IV → Minor).
pub fn severity(level: WarnLevel) -> &'static str {
    match level {
        WarnLevel::Red => "Extreme",
        WarnLevel::Orange => "Severe",
        WarnLevel::Yellow => "Moderate",
        WarnLevel::Blue => "Minor",
        WarnLevel::Normal => "Unknown",
    }
}

/// A message this one updates or cancels: (sender, identifier, sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub sender: String,
    pub identifier: String,
    pub sent: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapAlert {
    /// Unique per sender; no spaces, commas, `<` or `&`.
    pub identifier: String,
    pub sender: String,
    pub sent: Millis,
    pub msg_type: MsgType,
    pub references: Vec<Reference>,
    pub category: &'static str,
    pub event: String,
    pub level: WarnLevel,
    pub headline: String,
    pub description: String,
    pub instruction: String,
    pub sender_name: String,
    pub area_desc: String,
    /// The area's outline as (lon, lat) points (closed when written).
    pub polygon: Vec<[f64; 2]>,
    pub expires: Option<Millis>,
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// The sender of a district's CAP messages (its operations centre).
pub fn sender(district_code: &str) -> String {
    format!("ccc-{district_code}@cityos")
}

/// A CAP identifier from free text: only characters CAP allows.
pub fn identifier(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl CapAlert {
    pub fn to_xml(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str(&format!("<alert xmlns=\"{CAP_NS}\">\n"));
        let el = |x: &mut String, name: &str, v: &str| {
            x.push_str(&format!("  <{name}>{}</{name}>\n", esc(v)))
        };
        el(&mut x, "identifier", &self.identifier);
        el(&mut x, "sender", &self.sender);
        el(&mut x, "sent", &format_rfc3339(self.sent));
        el(&mut x, "status", "Actual");
        el(&mut x, "msgType", self.msg_type.as_str());
        el(&mut x, "scope", "Public");
        if !self.references.is_empty() {
            let refs: Vec<String> = self
                .references
                .iter()
                .map(|r| format!("{},{},{}", r.sender, r.identifier, format_rfc3339(r.sent)))
                .collect();
            el(&mut x, "references", &refs.join(" "));
        }
        x.push_str("  <info>\n");
        let iel = |x: &mut String, name: &str, v: &str| {
            x.push_str(&format!("    <{name}>{}</{name}>\n", esc(v)))
        };
        iel(&mut x, "language", "zh-CN");
        iel(&mut x, "category", self.category);
        iel(&mut x, "event", &self.event);
        iel(
            &mut x,
            "urgency",
            if self.msg_type == MsgType::Cancel {
                "Past"
            } else {
                "Immediate"
            },
        );
        iel(&mut x, "severity", severity(self.level));
        iel(&mut x, "certainty", "Observed");
        if let Some(e) = self.expires {
            iel(&mut x, "expires", &format_rfc3339(e));
        }
        iel(&mut x, "senderName", &self.sender_name);
        iel(&mut x, "headline", &self.headline);
        iel(&mut x, "description", &self.description);
        if !self.instruction.is_empty() {
            iel(&mut x, "instruction", &self.instruction);
        }
        x.push_str("    <area>\n");
        x.push_str(&format!(
            "      <areaDesc>{}</areaDesc>\n",
            esc(&self.area_desc)
        ));
        if self.polygon.len() >= 3 {
            let mut pts: Vec<String> = self
                .polygon
                .iter()
                .map(|p| format!("{:.6},{:.6}", p[1], p[0]))
                .collect();
            if self.polygon.first() != self.polygon.last() {
                pts.push(pts[0].clone());
            }
            x.push_str(&format!("      <polygon>{}</polygon>\n", pts.join(" ")));
        }
        x.push_str("    </area>\n  </info>\n</alert>\n");
        x
    }
}
