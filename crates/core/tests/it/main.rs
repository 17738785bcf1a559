//! Integration tests of cityos-core (one test binary: `tests/it`).

mod calendar;
mod dedup;
mod fixture;
mod taxonomy;
mod territory;
mod workflow;
