//! Integration tests of cityos-server (one test binary): the API driven in-process.

mod api;
mod matrix;
mod open311;
mod support;
