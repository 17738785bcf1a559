//! Service log lines on stderr, as text (`key=value`) or JSON lines, chosen at start.
//! Every refused request is logged here (who, what, why), and every internal error.

use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// `text` (default) or `json`.
pub fn set_format(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// Writes one log line: an event name and fields.
pub fn event(name: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
    if JSON.load(Ordering::Relaxed) {
        let mut m = Map::new();
        m.insert("event".into(), Value::String(name.into()));
        for (k, v) in fields {
            m.insert((*k).into(), Value::String(v.to_string()));
        }
        eprintln!("{}", Value::Object(m));
    } else {
        let mut line = name.to_string();
        for (k, v) in fields {
            let v = v.to_string();
            if v.contains(' ') || v.contains('"') {
                line.push_str(&format!(" {k}={v:?}"));
            } else {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        eprintln!("{line}");
    }
}
