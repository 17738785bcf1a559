//! cityos-core: the pure heart of cityos — territory, taxonomy, working-time calendar, the
//! case state machine, routing, dedup and the escalation policy.
//!
//! Architecture Invariant: no IO, no async, no clock reads anywhere in this crate. Every
//! function takes what it needs (text, `now`) and returns plain data, so it is fast to
//! test exhaustively and deterministic to replay.

pub mod alerting;
pub mod assistance;
pub mod audit;
pub mod calendar;
pub mod cap;
pub mod case;
pub mod classify;
pub mod dedup;
pub mod escalation;
pub mod evaluation;
pub mod indicators;
pub mod lifecircle;
pub mod meals;
pub mod payload;
pub mod privacy;
pub mod rng;
pub mod routing;
pub mod scenario;
pub mod sensing;
pub mod taxonomy;
pub mod territory;
pub mod time;
pub mod windows;
pub mod workflow;

pub use calendar::{TimeLimit, WorkCalendar};
pub use case::{Case, CaseId, Change, Channel, LogEntry, Report, ReportId, Role, State};
pub use taxonomy::{Category, Department, Domain, Priority, Step, Taxonomy};
pub use territory::{Chain, Level, RegionId, Territory};
pub use workflow::{Action, Actor, Command, NewReport};
