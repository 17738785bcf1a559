//! Integration tests of cityos-core (one test binary: `tests/it`).

mod alerting;
mod assistance;
mod audit;
mod calendar;
mod cap;
mod classify;
mod dedup;
mod escalation;
mod evaluation;
mod fixture;
mod indicators;
mod intake_text;
mod lifecircle;
mod meals;
mod privacy;
mod routing;
mod scenario;
mod sensing;
mod taxonomy;
mod territory;
mod triage;
mod windows;
mod workflow;
