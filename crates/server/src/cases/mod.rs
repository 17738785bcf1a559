//! The one way any room files, notes or looks up a case: engine calls, idempotent
//! writes, scopes, lookups, and the wire views of cases.

pub mod wire;
