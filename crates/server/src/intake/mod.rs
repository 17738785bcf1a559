//! The intake ends, one room each: `citizen` (Open311), `inspector` (media and the
//! mobile app's uploads), `sensor` (HTTP and MQTT readings, the device index) and
//! `data` (datasets and the data rules). No intake room imports another.

pub mod citizen;
pub mod data;
pub mod inspector;
pub mod sensor;
