//! Wires the rooms' ports ([`crate::ports::Ports`]): who answers each narrow request.

use crate::intake::sensor;
use crate::ports::Ports;
use crate::vitals;

pub fn ports() -> Ports {
    Ports {
        readings: vitals::readings,
        dataset_imported: vitals::apply_dataset,
        meter_use: sensor::meter_use,
    }
}
