//! 精准救助 precision assistance, the pure part (issue 15): declared sources, keyed ids,
//! fusion into households, the policy rulebook with explanations, the hardship score,
//! incremental re-evaluation and a synthetic district with planted ground truth.
//!
//! * [`sources`] — the declaration file (`data/xuhui/assistance/sources.toml`): the lines
//!   feeding the pool (户籍/实有人口, 低保/低收入/特困, 残疾人, 就业, 失业登记, 在校生,
//!   医保 out-of-pocket, 慢病/大病, 司法矫正, utilities arrears, lone-elder flags), each
//!   with its owner, typed columns, key columns and the fields it feeds; rows parsed from
//!   CSV with every bad row named by line (unknown ids, bad values, dates in the future).
//! * [`keyed`] — person and household ids become keyed BLAKE2b hashes.
//! * [`pool`] — fusion: households with members and facts; each fact remembers its source
//!   and import; several sources of one field are resolved by the field's declared
//!   precedence and the overruled values kept for the explanation.
//! * [`expr`] — the small condition language of the rulebook (quantifiers over members,
//!   comparisons, arithmetic, `receives("…")`).
//! * [`rulebook`] — the policies and the six-dimension hardship score
//!   (`data/xuhui/assistance/policies.toml`), every problem by line.
//! * [`eval`] — evaluation of all or some households, explanations.
//! * [`generate`] — the synthetic district and its planted truth; [`measure`] precision and
//!   recall against it.
//!
//! Everything here is pure: no IO, no clock (the evaluation date is passed in).

pub mod eval;
pub mod expr;
pub mod generate;
pub mod keyed;
pub mod measure;
pub mod pool;
pub mod rulebook;
pub mod sources;

pub use eval::{evaluate, evaluate_some, explain, Evaluation, Explanation, HouseholdResult};
pub use keyed::{IdHash, IdKey, IdKind};
pub use pool::{ImportReport, Pool};
pub use rulebook::{parse_rulebook, Rulebook};
pub use sources::{parse_declarations, Declarations};

/// A problem in a declaration or rulebook file, by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Problems joined one per line, for a command's error message.
pub fn problems_text(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Line (1-based) of a byte offset in a text.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
