//! Wires the rooms' ports ([`crate::ports::Ports`]): who answers each narrow request.

use crate::ports::{Later, Ports};
use crate::scenarios::runtime as scenarios;
use crate::{vitals, AppState};
use cityos_core::time::Millis;
use serde_json::{Map, Value};

/// A dataset import reaches the vital signs and the scenario packs.
fn dataset_imported(st: &AppState, name: &str, rows: &[Map<String, Value>], at: Millis) {
    vitals::apply_dataset(st, name, rows, at);
    scenarios::dataset_imported(st, name, rows, at);
}

fn scenario_flush(st: &AppState) -> Later<'_, Vec<Value>> {
    Box::pin(scenarios::flush(st))
}

/// What every scenario pack reads, for the data catalogue's lineage.
fn scenario_needs(st: &AppState) -> Vec<crate::ports::PackNeeds> {
    st.0.scenarios
        .all()
        .into_iter()
        .map(|(code, e)| crate::ports::PackNeeds {
            code,
            name_zh: e.pack.name_zh.clone(),
            enabled: e.enabled,
            datasets: e
                .pack
                .datasets
                .iter()
                .map(|d| d.name.name.clone())
                .collect(),
            device_kinds: e.pack.devices.iter().map(|d| d.name.clone()).collect(),
            indicators: e.pack.indicators.iter().map(|d| d.name.clone()).collect(),
        })
        .collect()
}

pub fn ports() -> Ports {
    Ports {
        readings: vitals::readings,
        scenario_readings: scenarios::readings,
        scenario_flush,
        indicator: vitals::district_value,
        dataset_imported,
        indicator_value: vitals::set_external,
        scenario_needs,
        device_added: vitals::device_added,
    }
}
