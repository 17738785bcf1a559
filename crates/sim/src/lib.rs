//! cityos simulation, as a library the `cityos` command calls: what makes the demo look
//! like a working district without being part of the service.
//!
//! * [`simulate`] — one synthetic day through the real engine on a simulated clock
//!   (`cityos simulate`, and the history `cityos demo` starts from);
//! * [`live`] — the live demo's staff and reports through the running service's engine;
//! * [`devices`] — the live demo's devices, water-meter history and external feeds;
//! * [`live_ends`] — the live demo's citizens and inspectors over HTTP to the service;
//! * [`territory`] — the deterministic generator of the Xuhui territory GeoJSON
//!   (`cityos territory generate`).

pub mod devices;
pub mod live;
pub mod live_ends;
pub mod simulate;
pub mod territory;
