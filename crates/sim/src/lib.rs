//! cityos simulation, as a library the `cityos` command calls: what makes the demo look
//! like a working district without being part of the service.
//!
//! * [`simulate`] — one synthetic day through the real engine on a simulated clock
//!   (`cityos simulate`, and the history `cityos demo` starts from);
//! * [`live`] — the live demo's staff and reports through the running service's engine;
//! * [`devices`] — the live demo's devices, water-meter history, the scenario packs'
//!   datasets and external feeds;
//! * [`scenes`] — what the demo's devices report when: each scenario pack's pattern and
//!   its near miss (pure), the flats' meter history and the residence registrations;
//! * [`live_ends`] — the live demo's citizens and inspectors over HTTP to the service;
//! * [`territory`] — the deterministic generator of the Xuhui territory GeoJSON
//!   (`cityos territory generate`).

pub mod devices;
pub mod live;
pub mod live_ends;
pub mod meals;
pub mod scenes;
pub mod simulate;
pub mod territory;
