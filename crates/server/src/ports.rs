//! The narrow ways one room reaches another, defined below the rooms and wired by
//! `runtime::wiring`: the sensor room feeds readings to the vital-sign windows, the data
//! room tells the vital signs a dataset was imported and reads the water-meter use the
//! sensor room keeps. A room names the port, never the other room.

use crate::AppState;
use cityos_core::time::Millis;
use serde_json::{Map, Value};

/// A batch of readings fed to whoever keeps windows over them, under one lock.
pub trait ReadingBatch {
    fn reading(&mut self, device: usize, metric: &str, value: f64, at: Millis);
    /// Ends the batch: the windows it touched settle.
    fn settle(self: Box<Self>);
}

/// A water meter's device and its use (m³) over a window, if the readings cover it.
pub type MeterUse = Option<(usize, Option<f64>)>;

/// The ports, as plain functions of the service's state.
pub struct Ports {
    /// Opens a batch of accepted readings (the vital signs' windows).
    pub readings: for<'a> fn(&'a AppState) -> Box<dyn ReadingBatch + 'a>,
    /// A dataset was imported: (name, rows, when). Indicators over datasets recompute.
    pub dataset_imported: fn(&AppState, &str, &[Map<String, Value>], Millis),
    /// The device of a water meter and its use over a window before now (the sensor room).
    pub meter_use: fn(&AppState, &str, Millis, Millis) -> MeterUse,
}
