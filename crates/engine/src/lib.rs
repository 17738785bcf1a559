//! cityos-engine: the single owner of case state ([`engine::Engine`]), its run loop with
//! group commit ([`runloop`]), and the stores behind one trait ([`store`]): SQLite by
//! default, PostgreSQL when the database URL says so; the district's configuration
//! ([`config`]) and the embedded Xuhui demo files ([`demo`]).

pub mod config;
pub mod demo;
pub mod engine;
pub mod query;
pub mod runloop;
pub mod store;

pub use engine::{Engine, EngineConfig, EngineError, IntakeOutcome, Request, Response};
pub use store::{
    postgres::PostgresStore, sqlite::SqliteStore, AccountStore, CaseStore, ClusterStore,
    DatasetStore, DeviceStore, EvaluationStore, LifeCircleStore, MediaStore, SavedReport,
    ScenarioStore, SensingStore, Store, StoreConnection, StoreError, VitalsStore,
};

/// Opens the store a database URL names: `postgres://…` / `postgresql://…` for
/// PostgreSQL (a `schema=NAME` query parameter selects, and creates, a schema),
/// `sqlite://PATH` or a plain path for SQLite.
pub fn open_store(url: &str) -> Result<Box<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (url, schema) = split_schema(url);
        Ok(Box::new(PostgresStore::connect(&url, schema.as_deref())?))
    } else {
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        Ok(Box::new(SqliteStore::open(
            std::path::Path::new(path),
            store::sqlite::Durability::Full,
        )?))
    }
}

/// Takes a `schema=NAME` parameter out of a PostgreSQL URL (the driver does not know it).
pub fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(s) => {
                schema = Some(s.to_string());
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}
