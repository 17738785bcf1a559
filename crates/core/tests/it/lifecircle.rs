//! The life circle: the type table, facilities, walking times (straight and over the test
//! network in `lifecircle_data/`), coverage, cards, what-if and greedy siting on a small
//! territory of four grids in a row, 0.004° (≈ 381 m) apart.

use cityos_core::lifecircle::coverage::{demand_from, parse_population, Model, FAR};
use cityos_core::lifecircle::facility::{self, Facility, Source};
use cityos_core::lifecircle::types::parse_types;
use cityos_core::lifecircle::{Network, Plane, TypeTable, Walker};
use cityos_core::Territory;

const TYPES: &str = r#"
[[type]]
code = "pharmacy"
name_zh = "药店"
name_en = "Pharmacy"
target = 10
osm = ["pharmacy", "chemist"]

[[type]]
code = "elder_care"
name_zh = "养老服务"
name_en = "Elder care"
target = 10
elders = true
osm = ["nursing_home"]

[[type]]
code = "elder_meals"
name_zh = "为老助餐"
name_en = "Meals for elders"
target = 10
elders = true
"#;

const NETWORK: &str = include_str!("lifecircle_data/network.geojson");
const CANTEENS: &str = include_str!("lifecircle_data/canteens.csv");

fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> String {
    format!("[[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}],[{x0},{y0}]]]")
}

fn feature(code: &str, level: &str, parent: Option<&str>, poly: String) -> String {
    let parent = parent.map(|p| format!("\"{p}\"")).unwrap_or("null".into());
    format!(
        r#"{{"type":"Feature","properties":{{"code":"{code}","name_zh":"{code}名","level":"{level}","parent":{parent}}},"geometry":{{"type":"Polygon","coordinates":{poly}}}}}"#
    )
}

/// District 310000 ⊃ sub-district 310001 ⊃ communities 310001001 (A, west) and 310001002
/// (B, east), each of two grids; grid centres at lon 121.402, .406, .410, .414, lat 31.102.
fn territory() -> Territory {
    let mut f = vec![
        feature(
            "310000",
            "district",
            None,
            square(121.4, 31.1, 121.416, 31.104),
        ),
        feature(
            "310001",
            "subdistrict",
            Some("310000"),
            square(121.4, 31.1, 121.416, 31.104),
        ),
    ];
    for (ci, x0) in [(1, 121.4), (2, 121.408)] {
        let c = format!("31000100{ci}");
        f.push(feature(
            &c,
            "community",
            Some("310001"),
            square(x0, 31.1, x0 + 0.008, 31.104),
        ));
        for (gi, gx) in [(1, x0), (2, x0 + 0.004)] {
            f.push(feature(
                &format!("{c}00{gi}"),
                "grid",
                Some(&c),
                square(gx, 31.1, gx + 0.004, 31.104),
            ));
        }
    }
    let text = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        f.join(",")
    );
    Territory::from_geojson(&[&text]).expect("test territory")
}

fn plane() -> Plane {
    Plane::new(121.408, 31.102)
}

fn table() -> TypeTable {
    parse_types(TYPES).expect("types")
}

fn fac(kind: usize, lon: f64) -> Facility {
    Facility {
        id: format!("f{lon}"),
        kind,
        name: "测试".into(),
        lon,
        lat: 31.102,
        source: Source::Own,
        hours: None,
    }
}

fn model(walker: Walker, facilities: Vec<Facility>) -> Model {
    let t = territory();
    let pop = parse_population(
        "community,name,population\n310001001,A,1000\n310001002,B,3000\n",
        &t,
    )
    .expect("population");
    let (demand, comms, subs) = demand_from(&t, &pop, &plane());
    Model::new(table(), walker, plane(), demand, comms, subs, facilities)
}

const BOUNDS: facility::Bounds = [121.39, 31.09, 121.43, 31.13];

#[test]
fn type_table_problems_are_named() {
    let t = table();
    assert_eq!(t.len(), 3);
    assert_eq!(t.resolve("chemist"), Some(0));
    assert_eq!(t.resolve("elder_meals"), Some(2));
    assert_eq!(t.resolve("bakery"), None);
    let bad = r#"
[[type]]
code = "pharmacy"
name_zh = "药店"
name_en = "Pharmacy"
target = 12
osm = ["pharmacy"]

[[type]]
code = "pharmacy"
name_zh = "药房"
name_en = "Drugstore"
target = 10
osm = ["pharmacy"]
"#;
    let e = parse_types(bad).unwrap_err();
    assert!(
        e.iter().any(|p| p.contains("target 12 is not a ring")),
        "{e:?}"
    );
    assert!(e.iter().any(|p| p.contains("code repeats type 1")), "{e:?}");
    assert!(
        e.iter()
            .any(|p| p.contains("OSM class \"pharmacy\" is already mapped")),
        "{e:?}"
    );
    let e = parse_types(
        "[[type]]\ncode = \"x\"\nname_zh = \"x\"\nname_en = \"x\"\ntarget = 5\ncolour = 1\n",
    )
    .unwrap_err();
    assert!(e[0].contains("colour"), "{e:?}");
    assert_eq!(
        parse_types("").unwrap_err(),
        vec!["no [[type]] in the table".to_string()]
    );
}

#[test]
fn facilities_bad_rows_named_good_rows_kept() {
    let t = table();
    let csv = "# own facilities\nid,type,name,lon,lat,hours\nP1,pharmacy,\"药店, 一号\",121.402,31.102,08:00-20:00\nP2,bakery,面包,121.402,31.102,\nP3,chemist,药房,121.402,91,\nP4,pharmacy,远,125.0,31.1,\nP5,pharmacy,坏,abc,31.1,\n";
    let r = facility::parse_csv(csv, &t, Source::Import, BOUNDS).unwrap();
    assert_eq!(r.facilities.len(), 1);
    assert_eq!(r.facilities[0].name, "药店, 一号");
    assert_eq!(r.facilities[0].hours.as_deref(), Some("08:00-20:00"));
    assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
    assert!(
        r.problems[0].starts_with("line 4: unknown type \"bakery\""),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems[1].starts_with("line 5: position"),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems[2].contains("outside the plausible area"),
        "{:?}",
        r.problems
    );
    assert!(r.problems[3].contains("not numbers"), "{:?}", r.problems);
    // The OSM file's `class` column: classes the table does not map are skipped silently.
    let osm = "id,class,name,lon,lat,in_xuhui\nosm-n1,pharmacy,甲,121.41,31.1,yes\nosm-n2,bank,乙,121.41,31.1,yes\n";
    let r = facility::parse_csv(osm, &t, Source::Osm, BOUNDS).unwrap();
    assert_eq!((r.facilities.len(), r.problems.len()), (1, 0));
    assert!(facility::parse_csv("id,name\n", &t, Source::Import, BOUNDS)
        .unwrap_err()
        .contains("no column \"type\""));

    let r = facility::parse_canteens(CANTEENS, &t, BOUNDS).unwrap();
    assert_eq!(
        r.facilities
            .iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>(),
        ["C-1", "C-2"]
    );
    assert!(r
        .facilities
        .iter()
        .all(|f| f.kind == 2 && f.source == Source::Own));
    assert!(
        r.problems[0].contains("line 4: kind \"bakery\""),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems[1].contains("line 5: position"),
        "{:?}",
        r.problems
    );

    let gj = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"fclass":"nursing_home","name":"敬老院","osm_id":"9"},"geometry":{"type":"Polygon","coordinates":[[[121.40,31.10],[121.41,31.10],[121.41,31.11],[121.40,31.11],[121.40,31.10]]]}},
      {"type":"Feature","properties":{"type":"pharmacy"},"geometry":{"type":"LineString","coordinates":[[121.40,31.10],[121.41,31.10]]}},
      {"type":"Feature","properties":{"type":"zoo"},"geometry":{"type":"Point","coordinates":[121.40,31.10]}}]}"#;
    let r = facility::parse_geojson(gj, &t, Source::Import, BOUNDS).unwrap();
    assert_eq!(r.facilities.len(), 1);
    assert_eq!(
        (r.facilities[0].id.as_str(), r.facilities[0].kind),
        ("9", 1)
    );
    assert!(
        (r.facilities[0].lon - 121.405).abs() < 1e-9 && (r.facilities[0].lat - 31.105).abs() < 1e-9
    );
    assert_eq!(
        r.problems,
        [
            "feature 2: geometry LineString is not a Point or Polygon with numeric coordinates",
            "feature 3: unknown type \"zoo\""
        ]
    );
}

#[test]
fn population_problems_named() {
    let t = territory();
    let e = parse_population(
        "community,population\n310001001,x\n999,5\n310001002,1\n310001002,2\n",
        &t,
    )
    .unwrap_err();
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with("line 2: population \"x\""));
    assert!(e[1].starts_with("line 3: \"999\" is not a community"));
    assert!(e[2].starts_with("line 5: community 310001002 repeats"));
}

#[test]
fn straight_line_times_and_coverage() {
    let m = model(Walker::default(), vec![fac(0, 121.402), fac(1, 121.402)]);
    assert_eq!(m.demand.len(), 4);
    assert!(
        (m.demand[0].population - 500.0).abs() < 1.0
            && (m.demand[2].population - 1500.0).abs() < 1.0
    );
    // 381 m × 1.3 at 75 m/min ≈ 6.6 minutes per grid.
    let step = (0.004 * 111_320.0 * 31.102f64.to_radians().cos()) * 1.3 / 75.0;
    assert!(m.time(0, 0) < 0.01);
    assert!(
        (m.time(1, 0) as f64 - step).abs() < 0.1,
        "{} vs {step}",
        m.time(1, 0)
    );
    assert!((m.time(2, 0) as f64 - 2.0 * step).abs() < 0.2);
    assert_eq!(m.time(3, 0), FAR);
    // Elders walk 60 m/min: the second grid at ≈ 8.3 minutes, the third beyond 15.
    assert!((m.time(1, 1) as f64 - step * 75.0 / 60.0).abs() < 0.1);
    assert_eq!(m.time(2, 1), FAR);
    let c5 = m.coverage(0, 5);
    assert_eq!((c5.covered.round(), c5.total.round()), (500.0, 4000.0));
    let c10 = m.coverage(0, 10);
    assert!((c10.share - 0.25).abs() < 1e-6);
    assert_eq!(c10.reached.iter().map(|r| r.0).collect::<Vec<_>>(), [0]);
    assert_eq!(c10.gaps.iter().map(|r| r.0).collect::<Vec<_>>(), [1]);
    let c15 = m.coverage(0, 15);
    assert!((c15.share - 0.625).abs() < 1e-6);
    assert_eq!(c15.reached.len(), 2, "half of B reaches it: B counts");
    assert!((m.share_in(0, 15, Some(0)) - 0.625).abs() < 1e-6);
    assert!((m.share_in(0, 15, None) - 0.625).abs() < 1e-6);
    // Cards: A has a pharmacy and elder care within 10, no meals; B only misses more.
    let a = m.card(0);
    assert_eq!(a.missing().collect::<Vec<_>>(), [2]);
    assert_eq!(a.lines[0].shares, [0.5, 1.0, 1.0]);
    assert_eq!(a.lines[0].nearest.map(|n| n.1), Some(0));
    let b = m.card(1);
    assert_eq!(b.missing().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(b.lines[0].shares, [0.0, 0.0, 0.5]);
    assert!(b.lines[2].nearest.is_none());
    assert!(m.walker.describe().0.contains("绕行系数 1.3"));
    assert!(m.walker.describe().1.contains("4.5 km/h"));
}

#[test]
fn what_if_and_greedy() {
    let m = model(Walker::default(), vec![fac(0, 121.402)]);
    let before = m.times.clone();
    let w = m.what_if(&[(0, 121.414, 31.102)]);
    assert_eq!(w.len(), 3);
    let ten = &w[1];
    assert_eq!(ten.ring, 10);
    assert_eq!(
        (ten.before.round(), ten.after.round(), ten.total.round()),
        (1000.0, 4000.0, 4000.0)
    );
    assert_eq!(ten.communities.len(), 1);
    assert_eq!(ten.communities[0].community, 1);
    assert!((ten.communities[0].people - 3000.0).abs() < 1.0);
    assert_eq!(m.times, before, "a what-if changes nothing");
    // Greedy: the best grid centre for a pharmacy within 10 minutes covers both of B's grids.
    let sites = m.greedy(0, 10, 3, |_| true);
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert!([2, 3].contains(&sites[0].point));
    assert!((sites[0].people - 3000.0).abs() < 1.0);
    assert_eq!(sites[0].communities, [1]);
    // Restricted to community A's grids, the best adds only what A2 can reach.
    let a_only = m.greedy(0, 10, 1, |d| d.community == 0);
    assert_eq!(a_only[0].point, 1);
    assert!((a_only[0].people - 1500.0).abs() < 1.0);
}

#[test]
fn network_walks_around_the_loop_and_names_stray_parts() {
    let n = Network::parse(NETWORK, plane()).expect("network");
    assert_eq!(n.nodes(), 8);
    assert_eq!(n.edges(), 6);
    assert!(!n.connected());
    assert_eq!(n.parts.len(), 1);
    assert_eq!(n.parts[0].nodes, 2);
    assert_eq!(n.parts[0].features, [4]);
    assert!(
        n.parts[0].describe().contains("cannot be reached"),
        "{}",
        n.parts[0].describe()
    );
    let p = plane();
    let d = n
        .distance(p.xy(121.402, 31.102), p.xy(121.414, 31.102), 5_000.0)
        .expect("reachable");
    let step = 0.004 * 111_320.0 * 31.102f64.to_radians().cos();
    let north = 0.004 * 110_574.0;
    assert!((d - (3.0 * step + 2.0 * north)).abs() < 1.0, "{d}");
    assert!(n
        .distance(p.xy(121.402, 31.102), p.xy(121.414, 31.102), 1_000.0)
        .is_none());
    let iso = n.isochrone(121.402, 31.102, step * 1.5);
    assert_eq!(iso.len(), 2);

    let m = model(Walker::over(n), vec![fac(0, 121.402)]);
    assert!(m.walker.describe().0.contains("步行网络"));
    assert!((m.time(1, 0) as f64 - step / 75.0).abs() < 0.1);
    assert!((m.time(2, 0) as f64 - 2.0 * step / 75.0).abs() < 0.1);
    assert_eq!(m.time(3, 0), FAR, "27 minutes around the loop");
    let w = m.what_if(&[(0, 121.414, 31.102)]);
    assert_eq!(w[0].after.round(), 2000.0);
}

#[test]
fn networks_that_are_not_lines_are_refused_by_feature() {
    let bad = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[121.4,31.1]}},
      {"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[121.4,31.1]]}},
      {"type":"Feature","properties":{},"geometry":{"type":"LineString","coordinates":[[121.4,"x"],[121.5,31.1]]}}]}"#;
    let e = Network::parse(bad, plane()).unwrap_err();
    assert_eq!(
        e,
        [
            "feature 1: geometry Point is not a LineString or MultiLineString",
            "feature 2: a line needs at least two points",
            "feature 3: a coordinate is not a longitude, latitude pair"
        ]
    );
    assert!(Network::parse("[]", plane()).unwrap_err()[0].contains("FeatureCollection"));
    assert_eq!(
        Network::parse(r#"{"features":[]}"#, plane()).unwrap_err(),
        ["the file has no lines"]
    );
}

#[test]
fn walker_settings_checked() {
    assert!(Walker::straight(0.5, 4.5, 3.6)
        .unwrap_err()
        .contains("detour factor 0.5"));
    assert!(Walker::straight(1.3, 40.0, 3.6)
        .unwrap_err()
        .contains("40 km/h"));
    let w = Walker::straight(1.0, 6.0, 3.0).unwrap();
    assert_eq!(w.m_per_min(false), 100.0);
}
