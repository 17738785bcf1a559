//! Service log lines on stderr, as text (`key=value`) or JSON lines, chosen at start.
//! Every refused request is logged here (who, what, why), and every internal error;
//! personal data in a value (phones, ID numbers, e-mails) is masked.

use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// `text` (default) or `json`.
pub fn set_format(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Writes one log line: an event name and fields.
pub fn event(name: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    eprintln!("{}", line(name, fields, JSON.load(Ordering::Relaxed)));
}

/// One log line as text or JSON. Values pass through the personal-data mask, so a phone
/// number or e-mail typed where it does not belong (a username, a path) never reaches
/// the log.
pub fn line(name: &str, fields: &[(&str, &dyn std::fmt::Display)], json: bool) -> String {
    let value = |v: &dyn std::fmt::Display| cityos_core::privacy::mask_personal(&v.to_string());
    if json {
        let mut m = Map::new();
        m.insert("event".into(), Value::String(name.into()));
        for (k, v) in fields {
            m.insert((*k).into(), Value::String(value(*v)));
        }
        Value::Object(m).to_string()
    } else {
        let mut line = name.to_string();
        for (k, v) in fields {
            let v = value(*v);
            if v.contains(' ') || v.contains('"') {
                line.push_str(&format!(" {k}={v:?}"));
            } else {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        line
    }
}
