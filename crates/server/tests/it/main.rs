//! Integration tests of cityos-server (one test binary): the API driven in-process.

mod alerts;
mod api;
mod data;
mod durability;
mod escalation;
mod evaluation;
mod input;
mod listen;
mod matrix;
mod metrics;
mod mobile;
mod mqtt;
mod open311;
mod openapi;
mod packs;
mod privacy;
mod scenarios;
mod sensing;
mod smart;
mod stream;
mod support;
mod topics;
mod triage;
mod ui;
mod vitals;
