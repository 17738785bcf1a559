//! Integration tests of cityos-engine (one test binary). The store stories run the same
//! body against SQLite and PostgreSQL (`CITYOS_TEST_POSTGRES_URL`; with
//! `CITYOS_REQUIRE_SERVICES=1`, as `.ci/run` sets, a missing database fails the run
//! instead of skipping).

mod backend;
mod cluster;
mod config;
mod queries;
mod stories;
