//! A small synthetic territory and taxonomy shared by the core tests:
//! district 310000 → sub-districts 310001 (west) / 310002 (east) → two communities each
//! (south/north) → two grids each (west/east). Squares in lon/lat.

use cityos_core::case::{Case, Channel, LogEntry, RegionCodes};
use cityos_core::time::{local, Date, Millis};
use cityos_core::workflow::{self, Ctx, NewReport};
use cityos_core::{Taxonomy, Territory, WorkCalendar};

fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> String {
    format!("[[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}],[{x0},{y0}]]]")
}

fn feature(code: &str, name: &str, level: &str, parent: Option<&str>, poly: String) -> String {
    let parent = parent.map(|p| format!("\"{p}\"")).unwrap_or("null".into());
    format!(
        r#"{{"type":"Feature","properties":{{"code":"{code}","name_zh":"{name}","level":"{level}","parent":{parent}}},"geometry":{{"type":"Polygon","coordinates":{poly}}}}}"#
    )
}

pub fn territory_geojson() -> String {
    let mut f = vec![feature(
        "310000",
        "测试区",
        "district",
        None,
        square(121.0, 31.0, 121.4, 31.2),
    )];
    for (si, x0) in [(1, 121.0), (2, 121.2)] {
        let s = format!("31000{si}");
        f.push(feature(
            &s,
            &format!("第{si}街道"),
            "subdistrict",
            Some("310000"),
            square(x0, 31.0, x0 + 0.2, 31.2),
        ));
        for (ci, y0) in [(1, 31.0), (2, 31.1)] {
            let c = format!("{s}00{ci}");
            f.push(feature(
                &c,
                &format!("第{si}-{ci}居委会"),
                "community",
                Some(&s),
                square(x0, y0, x0 + 0.2, y0 + 0.1),
            ));
            for (gi, gx) in [(1, x0), (2, x0 + 0.1)] {
                let g = format!("{c}00{gi}");
                f.push(feature(
                    &g,
                    &format!("网格{g}"),
                    "grid",
                    Some(&c),
                    square(gx, y0, gx + 0.1, y0 + 0.1),
                ));
            }
        }
    }
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        f.join(",")
    )
}

pub const TAXONOMY: &str = r#"
[calendar]
work_hours = ["09:00-12:00", "13:00-18:00"]

[escalation]
repeat_every = "4wh"

[[department]]
code = "dist-ccc"
name_zh = "区城运中心"
name_en = "District operations centre"
line = "command"
level = "district"

[[department]]
code = "sub-ccc"
name_zh = "{region}城运中心"
name_en = "{region_en} operations centre"
line = "command"
level = "subdistrict"
each = "subdistrict"

[[department]]
code = "um"
name_zh = "区城管执法局"
name_en = "Urban management bureau"
line = "urban_management"
level = "district"

[[department]]
code = "um"
name_zh = "{region}城管中队"
name_en = "{region_en} urban management squad"
line = "urban_management"
level = "subdistrict"
each = "subdistrict"

[[department]]
code = "roads"
name_zh = "区道路管理所"
name_en = "Roads"
line = "roads"
level = "district"

[[department]]
code = "water"
name_zh = "区水务局"
name_en = "Water"
line = "water"
level = "district"

[[department]]
code = "rc-fallback"
name_zh = "区社会工作部"
name_en = "Social work department"
line = "residents_committee"
level = "district"

[[department]]
code = "rc"
name_zh = "{region}"
name_en = "{region_en} residents' committee"
line = "residents_committee"
level = "community"
each = "community"

[[category]]
code = "street"
name_zh = "街面秩序"
name_en = "Street order"
group = true
public = true
domain = "construction"
priority = "normal"
lead = "urban_management"
lowest_level = "subdistrict"
dedup_radius_m = 50
dedup_window_h = 24
[category.deadlines]
file = "30m"
dispatch = "30m"
acknowledge = "1h"
handle = "1wd"
verify = "4wh"
close = "2wh"

[[category]]
code = "street_vending"
name_zh = "无照游商"
name_en = "Street vending"
parent = "street"
merge_priority_at = [2, 3]

[[category]]
code = "road_damage"
name_zh = "道路破损"
name_en = "Road damage"
parent = "street"
lead = "roads"
assist = ["water"]

[[category]]
code = "triage"
name_zh = "待分拨诉求"
name_en = "Awaiting triage"
domain = "livelihood"
priority = "normal"
lead = "command"
lowest_level = "district"
dedup_radius_m = 0
dedup_window_h = 1
[category.deadlines]
file = "2wh"
dispatch = "30m"
acknowledge = "1wd"
handle = "5wd"
verify = "1wd"
close = "1wd"

[[category]]
code = "lone_elder"
name_zh = "独居老人关爱"
name_en = "Lone elder welfare check"
domain = "livelihood"
priority = "high"
lead = "residents_committee"
lowest_level = "community"
dedup_radius_m = 10
dedup_window_h = 12
[category.deadlines]
file = "15m"
dispatch = "15m"
acknowledge = "30m"
handle = "4h"
verify = "4h"
close = "4h"
"#;

pub const HOLIDAYS: &str = "date,kind,name,year\n2026-10-01,holiday,国庆节,2026\n2026-10-02,holiday,国庆节,2026\n2026-10-05,holiday,国庆节,2026\n2026-10-06,holiday,国庆节,2026\n2026-10-07,holiday,国庆节,2026\n2026-10-10,workday,国庆节,2026\n";

pub struct Fx {
    pub territory: Territory,
    pub tax: Taxonomy,
    pub cal: WorkCalendar,
}

pub fn fx() -> Fx {
    let territory = Territory::from_geojson(&[&territory_geojson()]).expect("fixture territory");
    let tax = Taxonomy::from_toml(TAXONOMY, &territory).expect("fixture taxonomy");
    let cal = tax.calendar(HOLIDAYS).expect("fixture calendar");
    Fx {
        territory,
        tax,
        cal,
    }
}

/// Wednesday 2026-11-25 10:00 local.
pub fn t0() -> Millis {
    local(Date::new(2026, 11, 25).unwrap(), 10, 0)
}

pub fn regions(f: &Fx, lon: f64, lat: f64) -> RegionCodes {
    f.territory.codes(f.territory.locate(lon, lat).unwrap())
}

/// A new case (its creation entry applied), in sub-district 310001, community 310001001.
pub fn new_case(f: &Fx, category: &str, at: Millis) -> (Case, Vec<LogEntry>) {
    let r = NewReport {
        channel: Channel::Citizen,
        category: category.into(),
        lon: 121.05,
        lat: 31.05,
        text: "测试".into(),
        contact: None,
        at,
        media: Vec::new(),
        priority: None,
        playbook: None,
        suggestion: None,
    };
    let cx = Ctx {
        tax: &f.tax,
        cal: &f.cal,
        now: at,
    };
    let changes =
        workflow::open_case(1, "T1".into(), 1, &r, regions(f, r.lon, r.lat), &cx).unwrap();
    let entry = LogEntry {
        case_id: 1,
        seq: 1,
        at,
        actor: "test".into(),
        role: cityos_core::Role::System,
        action: "report".into(),
        from: None,
        to: cityos_core::State::Reported,
        note: String::new(),
        attachments: vec![],
        changes,
    };
    let mut case = match &entry.changes[0] {
        cityos_core::Change::Created { case } => (**case).clone(),
        _ => unreachable!(),
    };
    cityos_core::case::apply_entry(&mut case, &entry);
    (case, vec![entry])
}
