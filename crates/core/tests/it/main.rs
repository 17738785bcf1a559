//! Integration tests of cityos-core (one test binary: `tests/it`).

mod alerting;
mod calendar;
mod cap;
mod classify;
mod dedup;
mod escalation;
mod evaluation;
mod fixture;
mod indicators;
mod intake_text;
mod privacy;
mod routing;
mod scenario;
mod sensing;
mod taxonomy;
mod territory;
mod triage;
mod windows;
mod workflow;
