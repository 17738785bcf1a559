//! The narrow ways one room reaches another, defined below the rooms and wired by
//! `runtime::wiring`: the sensor room feeds readings to the vital-sign windows and the
//! scenario packs, the data room tells both a dataset was imported, the scenario packs read
//! the indicators' levels, and rooms that judge packs have their hits acted on. A room
//! names the port, never the other room.

use crate::AppState;
use cityos_core::time::Millis;
use serde_json::{Map, Value};

/// A batch of readings fed to whoever keeps windows over them, under one lock.
pub trait ReadingBatch {
    fn reading(&mut self, device: usize, metric: &str, value: f64, at: Millis);
    /// Ends the batch: the windows it touched settle.
    fn settle(self: Box<Self>);
}

/// Work a room hands back to be awaited (acting on scenario hits).
pub type Later<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The ports, as plain functions of the service's state.
/// What one scenario pack reads (the data catalogue's lineage).
#[derive(Debug, Clone, Default)]
pub struct PackNeeds {
    pub code: String,
    pub name_zh: String,
    pub enabled: bool,
    pub datasets: Vec<String>,
    pub device_kinds: Vec<String>,
    pub indicators: Vec<String>,
}

pub struct Ports {
    /// Opens a batch of accepted readings (the vital signs' windows).
    pub readings: for<'a> fn(&'a AppState) -> Box<dyn ReadingBatch + 'a>,
    /// Opens a batch of accepted readings for the scenario packs.
    pub scenario_readings: for<'a> fn(&'a AppState) -> Box<dyn ReadingBatch + 'a>,
    /// Acts on the scenario hits judged so far (cases, notes, CAP); answers the hits.
    pub scenario_flush: for<'a> fn(&'a AppState) -> Later<'a, Vec<Value>>,
    /// An indicator's district-wide value and level now (the vitals room).
    pub indicator: fn(&AppState, &str) -> Option<(f64, cityos_core::indicators::WarnLevel)>,
    /// A dataset was imported: (name, rows, when). Indicators over datasets recompute; the
    /// scenario packs re-index it and judge its rows.
    pub dataset_imported: fn(&AppState, &str, &[Map<String, Value>], Millis),
    /// Sets an `external` indicator's value for a region (the district or a sub-district)
    /// at a time: how a room that computes a vital sign itself feeds it to the vitals room.
    /// `Err` names why it was refused (unknown or computed indicator, region, range).
    pub indicator_value: fn(&AppState, &str, &str, f64, Millis) -> Result<(), String>,
    /// What every scenario pack reads (datasets, device kinds, indicators): the data
    /// catalogue's lineage.
    pub scenario_needs: fn(&AppState) -> Vec<PackNeeds>,
    /// A device was registered at run time (issue 22): (its index, a device of the same
    /// kind in the same sub-district, if any) — the vital signs feed it like that one.
    pub device_added: fn(&AppState, usize, Option<usize>),
}
