//! 考核评价 (issue 17): the measures of the closed loop, read from the case log, the
//! periods they are taken over, and the district's scoring scheme (ranking, 红黑榜, and
//! the explanation of every score down to case numbers).
//!
//! Architecture Invariant: pure. The log entries, the calendar and `now` are passed in;
//! the same log gives the same figures. Every figure is the sum of per-case
//! contributions (`measures::hits`), so a figure, its drill-down and a score's
//! explanation are computed by the same function and cannot disagree.

pub mod measures;
pub mod period;
pub mod scoring;

pub use measures::{CaseFacts, CaseFold, Dim, Figures, Hit, Measure, Value};
pub use period::{Period, PeriodError};
pub use scoring::{Scheme, ScoringError};
