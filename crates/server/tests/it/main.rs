//! Integration tests of cityos-server (one test binary): the API driven in-process.

mod alerts;
mod api;
mod data;
mod matrix;
mod metrics;
mod mobile;
mod mqtt;
mod open311;
mod privacy;
mod sensing;
mod support;
mod ui;
mod vitals;
