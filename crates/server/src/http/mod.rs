//! The HTTP layer every room stands on: extractors (body, query, signed-in caller),
//! problems ([`error::ApiError`]), access guards, sessions and tokens, metrics, the
//! listener and the log. It imports no room.

pub mod access;
pub mod audit;
pub mod auth;
pub mod compress;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod listen;
pub mod log;
pub mod metrics;
pub mod node;
pub mod problems;
