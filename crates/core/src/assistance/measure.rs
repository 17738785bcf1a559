//! Precision and recall of the evaluation against the generator's truth, per policy and
//! overall (pooled over policies), plus how many planted households and decoys were found.

use super::eval::Evaluation;
use super::generate::{Decoy, TruthRow};
use super::pool::Pool;
use super::rulebook::Rulebook;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyMeasure {
    pub policy: String,
    pub name: String,
    /// Households that truly qualify and do not receive the policy.
    pub truth: usize,
    /// Candidates the rulebook found.
    pub found: usize,
    /// Candidates that are in the truth.
    pub hits: usize,
    /// Of the truth, those planted for this policy, and how many of them were found.
    pub planted: usize,
    pub planted_found: usize,
    pub decoys: usize,
    pub decoys_found: usize,
    pub precision: f64,
    pub recall: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    pub precision: f64,
    pub recall: f64,
    pub truth: usize,
    pub found: usize,
    pub hits: usize,
    pub policies: Vec<PolicyMeasure>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Measures an evaluation against the truth (raw household ids are hashed with the pool's
/// key to find them).
pub fn measure(
    pool: &Pool,
    book: &Rulebook,
    ev: &Evaluation,
    truth: &[TruthRow],
    decoys: &[Decoy],
) -> Measure {
    let mut policies = Vec::new();
    let (mut t_all, mut f_all, mut h_all) = (0, 0, 0);
    for (k, p) in book.policies.iter().enumerate() {
        let rows: Vec<&TruthRow> = truth.iter().filter(|t| t.policy == p.code).collect();
        let set: HashSet<u32> = rows
            .iter()
            .filter_map(|t| pool.household_of(&t.household))
            .collect();
        let planted: Vec<u32> = rows
            .iter()
            .filter(|t| !t.planted.is_empty())
            .filter_map(|t| pool.household_of(&t.household))
            .collect();
        let found: HashSet<u32> = ev.candidates(k).collect();
        let hits = found.intersection(&set).count();
        let ds: Vec<u32> = decoys
            .iter()
            .filter(|d| d.policy == p.code)
            .filter_map(|d| pool.household_of(&d.household))
            .collect();
        t_all += set.len();
        f_all += found.len();
        h_all += hits;
        policies.push(PolicyMeasure {
            policy: p.code.clone(),
            name: p.name.clone(),
            truth: set.len(),
            found: found.len(),
            hits,
            planted: planted.len(),
            planted_found: planted.iter().filter(|h| found.contains(h)).count(),
            decoys: ds.len(),
            decoys_found: ds.iter().filter(|h| found.contains(h)).count(),
            precision: ratio(hits, found.len()),
            recall: ratio(hits, set.len()),
        });
    }
    Measure {
        precision: ratio(h_all, f_all),
        recall: ratio(h_all, t_all),
        truth: t_all,
        found: f_all,
        hits: h_all,
        policies,
    }
}
