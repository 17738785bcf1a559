//! The escalation policy (what escalates to whom, when), as pure functions.
//!
//! When a case misses its current deadline it is marked overdue and escalated to the
//! supervisor one level up: the command centre (line `command`) of the level above the
//! handling level; after `escalation.repeat_every` of working time it escalates again,
//! one more level up, until it reaches the district command centre. A new state (the
//! case moved on) starts a fresh ladder.
//!
//! The handling level is the lead task's department level once dispatched; before
//! dispatch (reported, filed, returned) the sub-district command centre is the one
//! responsible, so the ladder starts at the district.
//!
//! Architecture Invariant: pure — the timer service in the server calls these with `now`.

use crate::calendar::WorkCalendar;
use crate::case::Case;
use crate::taxonomy::Taxonomy;
use crate::territory::Level;
use crate::time::Millis;

/// The supervisors to escalate to, nearest first (department codes).
pub fn ladder(tax: &Taxonomy, case: &Case) -> Vec<String> {
    let handling = case
        .lead_task()
        .and_then(|t| tax.department(&t.department))
        .map(|d| d.level)
        .unwrap_or(Level::Subdistrict);
    let mut out = Vec::new();
    let mut push = |level: Level, code: Option<&String>| {
        if let Some(d) = code.and_then(|c| tax.department_for("command", c)) {
            if d.level == level && !out.contains(&d.code) {
                out.push(d.code.clone());
            }
        }
    };
    if handling == Level::Community {
        push(Level::Subdistrict, case.regions.subdistrict.as_ref());
    }
    push(Level::District, case.regions.district.as_ref());
    out
}

/// The next escalation due for this case: when, which rung (1-based) and to whom.
pub fn next_escalation(
    tax: &Taxonomy,
    cal: &WorkCalendar,
    case: &Case,
) -> Option<(Millis, u32, String)> {
    let due = case.due()?;
    let ladder = ladder(tax, case);
    let k = case.escalations as usize;
    let to = ladder.get(k)?.clone();
    let at = if k == 0 {
        due
    } else {
        tax.escalation_repeat.deadline(cal, due, k as f64)
    };
    Some((at, k as u32 + 1, to))
}

/// Is the case past its current deadline at `now`?
pub fn is_overdue(case: &Case, now: Millis) -> bool {
    case.due().is_some_and(|d| now > d)
}
