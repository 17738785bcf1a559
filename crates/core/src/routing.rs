//! Routing (派单): category × region → the responsible department(s) at the lowest
//! competent level (五最: handle at the lowest level first).
//!
//! For the lead line and each assisting line, the search starts at the category's
//! `lowest_level` and walks up the case's region chain (community → sub-district →
//! district) to the first region that has a department of that line. Every decision
//! carries a reason written into the case log.
//!
//! Architecture Invariant: pure — taxonomy and region codes in, assignments out.

use crate::case::{Assignment, RegionCodes};
use crate::taxonomy::{Category, Taxonomy};
use crate::territory::Level;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RoutingError {
    #[error("no department of line {line:?} serves this location (category {category:?})")]
    NoDepartment { line: String, category: String },
}

fn region_at(regions: &RegionCodes, level: Level) -> Option<&str> {
    match level {
        Level::District => regions.district.as_deref(),
        Level::Subdistrict => regions.subdistrict.as_deref(),
        Level::Community => regions.community.as_deref(),
        Level::Grid => regions.grid.as_deref(),
    }
}

/// The lead assignment first, then one per assisting line (duplicates dropped).
pub fn route(
    tax: &Taxonomy,
    cat: &Category,
    regions: &RegionCodes,
) -> Result<Vec<Assignment>, RoutingError> {
    let mut out: Vec<Assignment> = Vec::new();
    let lines = std::iter::once((cat.lead.as_str(), true))
        .chain(cat.assist.iter().map(|l| (l.as_str(), false)));
    for (line, lead) in lines {
        let mut skipped = Vec::new();
        let mut level = Some(cat.lowest_level);
        let mut found = None;
        while let Some(l) = level {
            if let Some(code) = region_at(regions, l) {
                if let Some(d) = tax.department_for(line, code) {
                    found = Some((d, l));
                    break;
                }
                skipped.push(l.name_zh());
            }
            level = l.up();
        }
        let Some((dept, at_level)) = found else {
            return Err(RoutingError::NoDepartment {
                line: line.to_string(),
                category: cat.code.clone(),
            });
        };
        if out.iter().any(|a| a.department == dept.code) {
            continue;
        }
        let role = if lead { "lead" } else { "assist" };
        let mut reason = format!(
            "{role}: {} — {}条线，最低处置层级{}，派往{}",
            dept.name_zh,
            line,
            cat.lowest_level.name_zh(),
            at_level.name_zh()
        );
        if !skipped.is_empty() {
            reason.push_str(&format!(
                "（{}层级无该条线单位，逐级上移）",
                skipped.join("、")
            ));
        }
        out.push(Assignment {
            department: dept.code.clone(),
            lead,
            reason,
        });
    }
    Ok(out)
}
