//! cityos-engine: the single owner of case state ([`engine::Engine`]), its run loop with
//! group commit ([`runloop`]), and the stores behind one trait ([`store`]): SQLite by
//! default, PostgreSQL when the database URL says so.

pub mod demo;
pub mod engine;
pub mod runloop;
pub mod store;

pub use engine::{Engine, EngineConfig, EngineError, IntakeOutcome, Request, Response};
pub use store::{postgres::PostgresStore, sqlite::SqliteStore, Store, StoreError};

/// Opens the store a database URL names: `postgres://…` / `postgresql://…` for
/// PostgreSQL, `sqlite://PATH` or a plain path for SQLite.
pub fn open_store(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::connect(url, None)?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Box::new(SqliteStore::open(
            std::path::Path::new(path),
            store::sqlite::Durability::Full,
        )?))
    }
}
