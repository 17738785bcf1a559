//! 为老助餐, the elders' meal service — the pure rules (issue 16): the district's subsidy
//! rules file (`rules`), money as whole fen (分) and the ledger's arithmetic (`ledger`),
//! and checkout — subsidy by age band and status, cut-offs, capacity, idempotent order
//! keys, cancellations and refunds (`order`). No IO, no clock: callers pass `now`.
//!
//! Architecture Invariant: money is an `i64` of fen everywhere; no float ever holds an
//! amount, so every sum, subsidy and refund is exact.

pub mod ledger;
pub mod order;
pub mod rules;

pub use ledger::{Entry, EntryKind, Fen, Ledger};
pub use order::{
    age_on, cancel, check_age, checkout, order_key, AgeError, Bill, CancelError, CheckoutError,
    Dish, Line, MealSlot, OrderState, Request, Round, SlotUse,
};
pub use rules::{parse_rules, Meal, RuleProblem, SubsidyRules};

/// Formats fen as yuan with two decimals ("12.50"), without a float.
pub fn yuan(fen: Fen) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}
