//! The top of the server: service start, tickers, the router composition with the
//! OpenAPI table that names every room's handlers. Only this layer wires rooms together.

pub mod bus;
pub mod cluster;
pub mod jetstream;
pub mod metrics;
pub mod openapi;
pub mod readings;
pub mod router;
pub mod service;
pub mod tickers;
pub mod wiring;
