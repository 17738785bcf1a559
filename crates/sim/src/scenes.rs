//! The scenario packs in the demo (应用场景演示): what the synthetic devices of
//! `data/xuhui/devices.csv` report, second by second, so that every pack's pattern — and
//! a near miss of it that must *not* fire — happens a few times while the demo runs; and
//! the datasets the packs join (lifts, flats, residence registrations) with the flats'
//! meter history.
//!
//! Pure: [`Script::frame`] turns the time since the demo started into the readings of
//! one round, [`flat_history`] and [`registrations_csv`] turn today into rows — so the
//! tests check the streams themselves. [`crate::devices`] sends them to the service.
//!
//! Every [`CYCLE`] (10 minutes; `t` = seconds into the cycle, a different device of each
//! kind every cycle):
//!
//! | t (s) | pattern (fires) | near miss (does not) |
//! |---|---|---|
//! | 30–180 | a lift stopped between floors, not running, door shut (150 s) | |
//! | 60–240 | | a lift stopped at a floor with its door open (180 s) |
//! | 270–300 | | a lift stopped between floors, door shut, 30 s only |
//! | 330–450 | a lift's alarm button held at a floor, door shut (120 s) | |
//! | 480–500 | | an alarm button pressed for 20 s |
//! | 60–210 | gas at 12 %LEL (150 s) | |
//! | 300–320 | a 30 %LEL spike | |
//! | 360–540 | | gas at 9 %LEL (180 s) |
//! | 120–330 | an underpass gauge at 18–25 cm (210 s) | |
//! | 420–450 | | a gauge spike of 22 cm for 30 s |
//! | 240–330 | a manhole cover tilted 12–20° (90 s) | |
//! | 360–480 | | a cover at 8° (120 s) |
//! | 150–390 | 2.8–3.2 people/m² at the stadium station forecourt (240 s) | |
//! | 480–540 | | 2.6–2.8 people/m² there for 60 s |
//!
//! The crowds at Wukang Mansion and in Xujiahui follow the external feeds' hourly episodes
//! ([`feed_heat`]): the fence's head counts add up to the feed's value, rising slowly at
//! Wukang (towards red in 8 minutes: the trend rule sees it coming). Rain gauges pour
//! during the river episode, when the rainfall feed rises with the river.

use cityos_core::indicators::{Direction, Indicator};
use cityos_core::rng::Rng;
use cityos_core::sensing::Device;
use cityos_core::time::{Date, Millis, DAY, MINUTE, SECOND};
use serde_json::{Map, Value};

/// The scripted patterns repeat every 10 minutes.
pub const CYCLE: Millis = 10 * MINUTE;
/// The demo's devices report every 10 seconds.
pub const TICK: Millis = 10 * SECOND;
/// The external feeds' episodes: one every 15 minutes, in this order, hour after hour.
pub const EPISODES: [&str; 4] = [
    "crowd_wukang",
    "river_water_level",
    "power_outage_households",
    "crowd_xujiahui",
];
/// One episode's slot.
pub const EPISODE: Millis = 15 * MINUTE;

/// Seconds into the cycle when a lift is trapped between floors, and when a lift's alarm
/// button is held with its door stuck shut.
pub const TRAPPED: (i64, i64) = (30, 180);
pub const ALARM_HELD: (i64, i64) = (330, 450);

/// Flats used by several people more than registered (water and electricity > 3×).
pub const GROUP_RENTED: [&str; 3] = ["F-003", "F-017", "F-029"];
/// Near miss: only the water is high (a leak, say); electricity is normal.
pub const WATER_ONLY: &str = "F-011";
/// Near miss: both high, but 2.5×, under the pack's 3×.
pub const BELOW_THREE: &str = "F-023";
/// The address where 14 different persons registered within a year.
pub const MANY_REGISTERED: &str = "F-017";
/// Near miss: 11 within the year (and 4 more, longer ago).
pub const ELEVEN_REGISTERED: &str = "F-023";

/// How far an external feed is into its episode at `elapsed`: 0 calm, 1 high. The crowd
/// at Wukang rises slowly (minutes 1–9 of its slot); the others climb in two minutes and
/// stay up until minute 10; all fall back by minute 12–13. Rainfall rises with the river.
pub fn feed_heat(code: &str, elapsed: Millis) -> f64 {
    let code = if code == "rainfall_mm_h" {
        "river_water_level"
    } else {
        code
    };
    let slot = ((elapsed.max(0) / EPISODE) as usize) % EPISODES.len();
    if EPISODES[slot] != code {
        return 0.0;
    }
    let m = (elapsed.max(0) % EPISODE) as f64 / MINUTE as f64;
    let ramp = |up: (f64, f64), down: (f64, f64)| {
        if m < up.0 || m >= down.1 {
            0.0
        } else if m < up.1 {
            (m - up.0) / (up.1 - up.0)
        } else if m < down.0 {
            1.0
        } else {
            (down.1 - m) / (down.1 - down.0)
        }
    };
    if code == "crowd_wukang" {
        ramp((1.0, 9.0), (11.0, 13.0))
    } else {
        ramp((1.0, 3.0), (10.0, 12.0))
    }
}

/// An indicator's calm and high values for the feeds: 60 % of its blue line (140 % when
/// low is bad), and halfway between orange and red.
pub fn calm_high(ind: &Indicator) -> (f64, f64) {
    match ind.thresholds {
        Some(t) => {
            let calm = match t.direction {
                Direction::Up => t.at[0] * 0.6,
                Direction::Down => t.at[0] * 1.4,
            };
            (calm, (t.at[2] + t.at[3]) / 2.0)
        }
        None => (100.0, 100.0),
    }
}

/// One reading of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Index into the configuration's devices.
    pub device: usize,
    pub metric: &'static str,
    pub value: f64,
}

/// A crowd fence's head counts: devices, and how the fence's count is had.
#[derive(Debug, Clone, Default)]
struct Fence {
    devices: Vec<usize>,
    /// The feed whose value the fence's devices add up to (calm, high), if any.
    feed: Option<(&'static str, f64, f64)>,
    /// m² each device watches.
    area_m2: f64,
}

/// Who reports what: the demo's devices sorted by kind, the crowd fences' lines.
#[derive(Debug, Clone, Default)]
pub struct Script {
    kinds: Vec<String>,
    ids: Vec<String>,
    tags: Vec<Vec<String>>,
    lifts: Vec<usize>,
    gas: Vec<usize>,
    gauges: Vec<usize>,
    manholes: Vec<usize>,
    wukang: Fence,
    xujiahui: Fence,
    station: Fence,
}

impl Script {
    /// The script for these devices (a device's role comes from its kind and tags: a
    /// head count's tag names its fence) and indicators (the crowds' lines).
    pub fn new(devices: &[Device], indicators: &[Indicator]) -> Script {
        let line = |code: &'static str| {
            indicators.iter().find(|i| i.code == code).map(|i| {
                let (calm, high) = calm_high(i);
                (code, calm, high)
            })
        };
        let mut s = Script {
            kinds: devices.iter().map(|d| d.kind.clone()).collect(),
            ids: devices.iter().map(|d| d.id.clone()).collect(),
            tags: devices.iter().map(|d| d.tags.clone()).collect(),
            wukang: Fence {
                feed: line("crowd_wukang"),
                area_m2: 300.0,
                ..Fence::default()
            },
            xujiahui: Fence {
                feed: line("crowd_xujiahui"),
                area_m2: 6000.0,
                ..Fence::default()
            },
            station: Fence {
                area_m2: 500.0,
                ..Fence::default()
            },
            ..Script::default()
        };
        for (i, d) in devices.iter().enumerate() {
            let tagged = |t: &str| d.tags.iter().any(|x| x == t);
            match d.kind.as_str() {
                "lift_controller" => s.lifts.push(i),
                "gas_lel" => s.gas.push(i),
                "water_level" => s.gauges.push(i),
                "manhole_tilt" => s.manholes.push(i),
                "head_count" if tagged("wukang") => s.wukang.devices.push(i),
                "head_count" if tagged("xujiahui") => s.xujiahui.devices.push(i),
                "head_count" if tagged("stadium_station") => s.station.devices.push(i),
                _ => {}
            }
        }
        s
    }

    /// The readings of the round at `elapsed` since the demo started: every live device
    /// once (a lift controller's five flags and floor; a head count's people and density).
    /// A flat's meters are read once a day ([`flat_history`]), not here.
    pub fn frame(&self, elapsed: Millis, rng: &mut Rng) -> Vec<Reading> {
        let k = (elapsed.max(0) / CYCLE) as usize;
        let t = (elapsed.max(0) % CYCLE) / SECOND;
        let within = |a: i64, b: i64| t >= a && t < b;
        let pick = |v: &[usize], j: usize| (!v.is_empty()).then(|| v[j % v.len()]);
        let (lift_a, lift_b, lift_d, lift_e) = (
            pick(&self.lifts, 4 * k),
            pick(&self.lifts, 4 * k + 1),
            pick(&self.lifts, 4 * k + 2),
            pick(&self.lifts, 4 * k + 3),
        );
        let (gas_a, gas_b, gas_c) = (
            pick(&self.gas, 3 * k),
            pick(&self.gas, 3 * k + 1),
            pick(&self.gas, 3 * k + 2),
        );
        let (gauge_a, gauge_b) = (pick(&self.gauges, 2 * k), pick(&self.gauges, 2 * k + 1));
        let (cover_a, cover_b) = (pick(&self.manholes, 2 * k), pick(&self.manholes, 2 * k + 1));
        let storm = feed_heat("rainfall_mm_h", elapsed);
        let mut out = Vec::new();
        let mut push = |device: usize, metric: &'static str, value: f64| {
            out.push(Reading {
                device,
                metric,
                value: (value * 100.0).round() / 100.0,
            })
        };
        for (i, kind) in self.kinds.iter().enumerate() {
            let me = Some(i);
            match kind.as_str() {
                "lift_controller" => {
                    // door_open, between_floors, alarm_button, running
                    let (door, between, alarm, running) =
                        if me == lift_a && within(TRAPPED.0, TRAPPED.1) {
                            (0, 1, 0, 0) // trapped between floors
                        } else if me == lift_b && within(60, 240) {
                            (1, 0, 0, 0) // held at a floor, door open
                        } else if me == lift_b && within(270, 300) {
                            (0, 1, 0, 0) // a short stop between floors
                        } else if (me == lift_d && within(ALARM_HELD.0, ALARM_HELD.1))
                            || (me == lift_e && within(480, 500))
                        {
                            // The alarm button at a floor, door shut: held two minutes (the
                            // door is stuck), or pressed a moment.
                            (0, 0, 1, 0)
                        } else if rng.chance(0.5) {
                            (0, 1, 0, 1) // running
                        } else if rng.chance(0.5) {
                            (1, 0, 0, 0) // at a floor, door open
                        } else {
                            (0, 0, 0, 0) // at a floor, idle
                        };
                    push(i, "door_open", door as f64);
                    push(i, "between_floors", between as f64);
                    push(i, "alarm_button", alarm as f64);
                    push(i, "running", running as f64);
                    push(i, "floor", (1 + rng.below(18)) as f64);
                }
                "gas_lel" => {
                    let v = if me == gas_a && within(60, 210) {
                        rng.range_f64(12.0, 12.6)
                    } else if me == gas_b && within(300, 320) {
                        rng.range_f64(30.0, 31.0)
                    } else if me == gas_c && within(360, 540) {
                        rng.range_f64(8.6, 9.2)
                    } else {
                        rng.range_f64(0.0, 2.0)
                    };
                    push(i, "lel_pct", v);
                }
                "water_level" => {
                    let v = if me == gauge_a && within(120, 330) {
                        rng.range_f64(18.0, 25.0)
                    } else if me == gauge_b && within(420, 450) {
                        rng.range_f64(21.0, 23.0)
                    } else {
                        rng.range_f64(0.0, 4.0)
                    };
                    push(i, "depth_cm", v);
                }
                "manhole_tilt" => {
                    let v = if me == cover_a && within(240, 330) {
                        rng.range_f64(12.0, 20.0)
                    } else if me == cover_b && within(360, 480) {
                        rng.range_f64(7.5, 8.5)
                    } else {
                        rng.range_f64(0.0, 1.5)
                    };
                    push(i, "tilt_deg", v);
                }
                "smoke" => push(i, "obscuration_pct", rng.range_f64(0.0, 1.0)),
                // One elder's tap stays shut: after 12 hours the data end's rule asks the
                // community to visit. A flat's meters report once a day.
                "water_meter" if self.tags[i].iter().any(|t| t == "flat") => {}
                "water_meter" if self.ids[i] == "WM-007" => push(i, "flow_m3", 0.0),
                "water_meter" => push(i, "flow_m3", rng.range_f64(0.0, 0.05)),
                // mm in the last 10 s: ~40 mm/h in the storm, a drizzle now and then.
                "rain_gauge" => {
                    let v = if storm > 0.0 {
                        storm * rng.range_f64(0.09, 0.13)
                    } else if rng.chance(0.1) {
                        rng.range_f64(0.0, 0.01)
                    } else {
                        0.0
                    };
                    push(i, "rain_mm", v);
                }
                _ => {}
            }
        }
        for f in [&self.wukang, &self.xujiahui] {
            let Some((code, calm, high)) = f.feed else {
                continue;
            };
            let total = calm + (high - calm) * feed_heat(code, elapsed);
            let n = f.devices.len().max(1) as f64;
            for &d in &f.devices {
                let people = (total / n * rng.range_f64(0.97, 1.03)).round();
                push(d, "people", people);
                push(d, "density_m2", people / f.area_m2);
            }
        }
        for &d in &self.station.devices {
            let density = if within(150, 390) {
                rng.range_f64(2.8, 3.2)
            } else if within(480, 540) {
                rng.range_f64(2.6, 2.8)
            } else {
                rng.range_f64(0.3, 0.8)
            };
            push(d, "people", (density * self.station.area_m2).round());
            push(d, "density_m2", density);
        }
        out
    }

    /// How many lifts are trapped (between floors, or at a floor with the alarm held and
    /// the door shut) at `elapsed`: the demo's `lift_entrapments_active` feed.
    pub fn lifts_trapped(&self, elapsed: Millis) -> usize {
        if self.lifts.is_empty() {
            return 0;
        }
        let t = (elapsed.max(0) % CYCLE) / SECOND;
        let within = |(a, b): (i64, i64)| usize::from(t >= a && t < b);
        within(TRAPPED) + within(ALARM_HELD)
    }

    /// The total people the fence's head counts report at `elapsed` (without noise): what
    /// the crowd feed of that fence reports.
    pub fn crowd(&self, code: &str, elapsed: Millis) -> Option<f64> {
        [&self.wukang, &self.xujiahui]
            .into_iter()
            .filter_map(|f| f.feed.filter(|(c, ..)| *c == code))
            .map(|(c, calm, high)| calm + (high - calm) * feed_heat(c, elapsed))
            .next()
    }
}

/// A flat of the flats register.
#[derive(Debug, Clone, PartialEq)]
pub struct Flat {
    pub flat: String,
    pub address: String,
    /// The water meter (WM-1xx); the electricity meter is EM- with the same number.
    pub meter: String,
    pub occupants: f64,
    pub water_m3_day: f64,
    pub kwh_day: f64,
}

impl Flat {
    /// The flat's electricity meter: EM- with the water meter's number.
    pub fn electricity_meter(&self) -> String {
        self.meter.replacen("WM-", "EM-", 1)
    }
}

/// The flats of a flats CSV (`flat,address,meter,registered_occupants,
/// expected_water_m3_day,expected_kwh_day`); a row with a bad number is an error.
pub fn flats(csv: &str) -> Result<Vec<Flat>, String> {
    let (_, rows, errors) = cityos_server::intake::data::parse_rows(csv.as_bytes(), false)?;
    if !errors.is_empty() {
        return Err(format!("flats: {}", Value::Array(errors)));
    }
    let text = |r: &Map<String, Value>, c: &str| {
        r.get(c)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("flats: a row has no {c}"))
    };
    let num = |r: &Map<String, Value>, c: &str| {
        text(r, c)?
            .parse::<f64>()
            .map_err(|_| format!("flats: {c} of {:?} is not a number", r.get("flat")))
    };
    rows.iter()
        .map(|r| {
            Ok(Flat {
                flat: text(r, "flat")?,
                address: text(r, "address")?,
                meter: text(r, "meter")?,
                occupants: num(r, "registered_occupants")?,
                water_m3_day: num(r, "expected_water_m3_day")?,
                kwh_day: num(r, "expected_kwh_day")?,
            })
        })
        .collect()
}

/// One daily meter reading: (device, metric, value, at).
pub type Daily = (String, &'static str, f64, Millis);

/// The flats' meters' last `days` days, one reading a day each (`flow_m3`, `kwh`, at
/// `now - k days`), oldest first: most flats use about what their registered occupants
/// explain; the [`GROUP_RENTED`] ones 4–5× in both, [`WATER_ONLY`] 4× water only,
/// [`BELOW_THREE`] 2.5× in both.
pub fn flat_history(flats: &[Flat], now: Millis, days: i64, seed: u64) -> Vec<Daily> {
    let mut rng = Rng::new(seed ^ 0xf1a7);
    let mut out = Vec::new();
    for k in (1..=days).rev() {
        let at = now - k * DAY;
        for f in flats {
            let (w, e) = if GROUP_RENTED.contains(&f.flat.as_str()) {
                (rng.range_f64(4.0, 5.0), rng.range_f64(4.0, 5.0))
            } else if f.flat == WATER_ONLY {
                (rng.range_f64(3.8, 4.2), rng.range_f64(1.0, 1.3))
            } else if f.flat == BELOW_THREE {
                (rng.range_f64(2.3, 2.6), rng.range_f64(2.3, 2.6))
            } else {
                (rng.range_f64(0.6, 1.2), rng.range_f64(0.6, 1.2))
            };
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            out.push((f.meter.clone(), "flow_m3", round(f.water_m3_day * w), at));
            out.push((f.electricity_meter(), "kwh", round(f.kwh_day * e), at));
        }
    }
    out
}

/// The residence registrations (`address,person,registered_on`) of the flats as of
/// `today`: each flat's registered occupants, registered 1–6 years ago, and now and then
/// someone who moved in this year; at [`MANY_REGISTERED`]'s address 14 different persons
/// within the last year (one registered twice), at [`ELEVEN_REGISTERED`]'s 11 within the
/// year and 4 more before. Persons are opaque synthetic ids (P000123), no real persons.
pub fn registrations_csv(flats: &[Flat], today: Date, seed: u64) -> String {
    let mut rng = Rng::new(seed ^ 0x7e61);
    let mut out = String::from("address,person,registered_on\n");
    let mut next = 0u32;
    let row = |out: &mut String, address: &str, person: u32, days_ago: i64| {
        let on = Date::from_days(today.days() - days_ago);
        out.push_str(&format!("{address},P{person:06},{on}\n"));
    };
    for f in flats {
        let mut person = || {
            next += 1;
            next
        };
        if f.flat == MANY_REGISTERED {
            let mut first = 0;
            for j in 0..14 {
                let p = person();
                if j == 0 {
                    first = p;
                }
                row(&mut out, &f.address, p, 20 + j * 23);
            }
            row(&mut out, &f.address, first, 10);
        } else if f.flat == ELEVEN_REGISTERED {
            for j in 0..11 {
                let p = person();
                row(&mut out, &f.address, p, 30 + j * 27);
            }
            for j in 0..4 {
                let p = person();
                row(&mut out, &f.address, p, 400 + j * 150);
            }
        } else {
            for _ in 0..(f.occupants as i64).max(1) {
                let p = person();
                row(&mut out, &f.address, p, 370 + rng.below(1800) as i64);
            }
            if rng.chance(0.3) {
                let p = person();
                row(&mut out, &f.address, p, 5 + rng.below(300) as i64);
            }
        }
    }
    out
}
