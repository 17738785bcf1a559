//! The configuration (`cityos_engine::config::Config`): the embedded Xuhui demo is valid and as large as promised.

use super::backend::config;
use cityos_core::routing::route;
use cityos_core::{Domain, Level};
use cityos_engine::config::Config;

#[test]
fn xuhui_is_1_13_306_and_about_3000_grids() {
    let c = config();
    let t = &c.territory;
    assert_eq!(t.count(Level::District), 1);
    assert_eq!(t.count(Level::Subdistrict), 13);
    assert_eq!(t.count(Level::Community), 306);
    let grids = t.count(Level::Grid);
    assert!((2900..=3100).contains(&grids), "{grids} grids");
    // The real 天平路 polygon: its centroid locates there.
    let ch = t.locate(121.4454, 31.2067).unwrap();
    assert_eq!(
        t.region(ch.at(Level::Subdistrict).unwrap()).name_zh,
        "天平路街道"
    );
    // 徐家汇 metro station (WGS-84) is in Xuhui; People's Square is not.
    assert!(t.locate(121.4365, 31.1950).is_ok());
    assert!(t.locate(121.4737, 31.2304).is_err());
}

#[test]
fn xuhui_taxonomy_covers_four_domains_and_routes_everywhere() {
    let c = config();
    let tax = &c.taxonomy;
    assert!(tax.categories.len() >= 60);
    for d in Domain::ALL {
        let n = tax.categories.iter().filter(|c| c.domain == d).count();
        assert!(n >= 10, "{d:?}: {n}");
    }
    let district_and_sub = tax
        .departments
        .iter()
        .filter(|d| matches!(d.level, Level::District | Level::Subdistrict))
        .count();
    assert!(district_and_sub >= 20, "{district_and_sub}");
    for code in [
        "manhole_cover_missing",
        "exposed_garbage",
        "street_vending",
        "illegal_construction",
        "lift_entrapment",
        "waterlogging",
        "gas_alarm",
        "food_safety",
        "price_complaint",
        "noise",
        "lone_elder_welfare_check",
    ] {
        assert!(tax.category(code).is_some(), "{code}");
    }
    // Every category routes from every sub-district.
    for (id, r) in c
        .territory
        .regions()
        .filter(|(_, r)| r.level == Level::Subdistrict)
    {
        let p = c.territory.interior_point(id);
        let ch = c.territory.locate(p[0], p[1]).unwrap();
        assert_eq!(ch.at(Level::Subdistrict), Some(id), "{}", r.name_zh);
        let regions = c.territory.codes(ch);
        for cat in &tax.categories {
            let a = route(tax, cat, &regions).unwrap();
            assert!(a[0].lead);
        }
    }
    // Street-level matters stay in the street; lone elders go to the residents' committee.
    let p = c
        .territory
        .interior_point(c.territory.by_code("310104003").unwrap());
    let ch = c.territory.locate(p[0], p[1]).unwrap();
    let regions = c.territory.codes(ch);
    let sv = route(tax, tax.category("street_vending").unwrap(), &regions).unwrap();
    assert_eq!(
        tax.department(&sv[0].department).unwrap().level,
        Level::Subdistrict
    );
    let le = route(
        tax,
        tax.category("lone_elder_welfare_check").unwrap(),
        &regions,
    )
    .unwrap();
    assert_eq!(
        tax.department(&le[0].department).unwrap().level,
        Level::Community
    );
}

#[test]
fn bad_configuration_is_refused_with_the_place() {
    use cityos_engine::demo::{CALENDAR_CSV, TAXONOMY_TOML, TERRITORY_GEOJSON};
    let e = Config::from_texts(
        TERRITORY_GEOJSON,
        &TAXONOMY_TOML.replace("lead = \"roads\"", "lead = \"no_such_line\""),
        CALENDAR_CSV,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("no district-level department serves line \"no_such_line\""),
        "{e}"
    );
    assert!(e.contains("line "), "{e}");
    let e = Config::from_texts(
        "{\"type\":\"FeatureCollection\"",
        TAXONOMY_TOML,
        CALENDAR_CSV,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.starts_with("territory: GeoJSON does not parse"), "{e}");
    let e = Config::from_texts(
        TERRITORY_GEOJSON,
        TAXONOMY_TOML,
        "2026-02-30,holiday,x,2026",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("calendar line 1"), "{e}");
    // A per_100_devices vital sign counting a category the taxonomy does not know.
    let e = Config::from_texts(TERRITORY_GEOJSON, TAXONOMY_TOML, CALENDAR_CSV)
        .unwrap()
        .with_indicators(
            &cityos_engine::demo::INDICATORS_TOML.replace("\"lift_fault\"]", "\"lift_fall\"]"),
        )
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e, "indicators: indicator \"lift_fault_rate\": unknown category \"lift_fall\"",
        "{e}"
    );
}

#[test]
fn schema_parameter_is_taken_out_of_postgres_urls() {
    use cityos_engine::split_schema;
    assert_eq!(
        split_schema("postgres://u@h/db"),
        ("postgres://u@h/db".into(), None)
    );
    assert_eq!(
        split_schema("postgres://u@h/db?schema=x1"),
        ("postgres://u@h/db".into(), Some("x1".into()))
    );
    assert_eq!(
        split_schema("postgres://u@h/db?sslmode=disable&schema=x1"),
        (
            "postgres://u@h/db?sslmode=disable".into(),
            Some("x1".into())
        )
    );
}

#[test]
fn the_seven_scenario_packs_validate_against_the_xuhui_configuration() {
    use cityos_core::scenario::{parse_pack, validate, Catalogue, District};
    use cityos_engine::demo::{CATALOGUE_TOML, SCENARIO_PACKS};
    let c = Config::xuhui();
    let catalogue = Catalogue::from_toml(CATALOGUE_TOML).expect("catalogue");
    let district = District {
        taxonomy: &c.taxonomy,
        indicators: &c.indicators,
        catalogue: &catalogue,
    };
    for (file, text) in SCENARIO_PACKS {
        let pack = parse_pack(text).unwrap_or_else(|p| panic!("{file}: {p:?}"));
        validate(&pack, &district).unwrap_or_else(|p| panic!("{file}: {p:?}"));
    }
}
