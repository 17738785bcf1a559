//! Territory import and location.

use super::fixture;
use cityos_core::territory::{Level, Territory, TerritoryError};

#[test]
fn locate_returns_the_whole_chain() {
    let f = fixture::fx();
    let t = &f.territory;
    let ch = t.locate(121.25, 31.15).unwrap();
    let code = |l| t.region(ch.at(l).unwrap()).code.as_str();
    assert_eq!(code(Level::District), "310000");
    assert_eq!(code(Level::Subdistrict), "310002");
    assert_eq!(code(Level::Community), "310002002");
    assert_eq!(code(Level::Grid), "310002002001");
    assert_eq!(t.count(Level::Grid), 8);
    assert!(t.is_within(ch.leaf().unwrap(), t.by_code("310002").unwrap()));
    assert!(!t.is_within(ch.leaf().unwrap(), t.by_code("310001").unwrap()));
}

#[test]
fn outside_is_an_error_not_a_default() {
    let f = fixture::fx();
    assert_eq!(
        f.territory.locate(120.0, 31.1),
        Err(TerritoryError::Outside {
            lon: 120.0,
            lat: 31.1
        })
    );
    assert!(
        f.territory.locate(121.1, 31.1).is_ok(),
        "a point on an inner boundary still locates"
    );
    assert!(matches!(
        f.territory.locate(f64::NAN, 31.0),
        Err(TerritoryError::InvalidPoint { .. })
    ));
    assert!(matches!(
        f.territory.locate(200.0, 31.0),
        Err(TerritoryError::InvalidPoint { .. })
    ));
    let e = f.territory.locate(120.0, 31.1).unwrap_err().to_string();
    assert_eq!(e, "point (120, 31.1) lies outside the territory");
}

fn err(text: &str) -> String {
    Territory::from_geojson(&[text]).unwrap_err().to_string()
}

const POLY: &str = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#;

fn feat(props: &str, geom: &str) -> String {
    format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{props},"geometry":{geom}}}]}}"#
    )
}

#[test]
fn malformed_geojson_is_named() {
    assert!(err("{not json").starts_with("GeoJSON does not parse"));
    assert_eq!(
        err(r#"{"type":"Feature"}"#),
        "expected a GeoJSON FeatureCollection, found Feature"
    );
    assert_eq!(
        err(r#"{"type":"FeatureCollection","features":[]}"#),
        "the territory has no regions"
    );
    assert!(err(&feat(r#"{"name_zh":"x","level":"district"}"#, POLY))
        .contains("property \"code\" is missing"));
    assert!(
        err(&feat(r#"{"code":"1","name_zh":"x","level":"city"}"#, POLY))
            .contains("level \"city\" is not one of")
    );
    assert!(err(&feat(
        r#"{"code":"1","name_zh":"x","level":"district"}"#,
        r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}"#
    ))
    .contains("not closed"));
    assert!(err(&feat(
        r#"{"code":"1","name_zh":"x","level":"district"}"#,
        r#"{"type":"Point","coordinates":[0,0]}"#
    ))
    .contains("not Polygon or MultiPolygon"));
    assert!(err(&feat(
        r#"{"code":"1","name_zh":"x","level":"district"}"#,
        r#"{"type":"Polygon","coordinates":[[[0,0],[1,"a"],[1,1],[0,0]]]}"#
    ))
    .contains("invalid position"));
    assert!(err(&feat(
        r#"{"code":"1","name_zh":"x","level":"subdistrict","parent":"9"}"#,
        POLY
    ))
    .contains("names parent \"9\", which is not in the territory"));
    let two = format!(
        r#"{{"type":"FeatureCollection","features":[{f},{f}]}}"#,
        f = format!(
            r#"{{"type":"Feature","properties":{{"code":"1","name_zh":"x","level":"district"}},"geometry":{POLY}}}"#
        )
    );
    assert_eq!(err(&two), "region code \"1\" appears twice");
    let skip = format!(
        r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{{"code":"1","name_zh":"x","level":"district"}},"geometry":{POLY}}},{{"type":"Feature","properties":{{"code":"2","name_zh":"y","level":"grid","parent":"1"}},"geometry":{POLY}}}]}}"#
    );
    assert!(err(&skip).contains("a parent must be exactly one level up"));
}

#[test]
fn regions_export_as_geojson_by_level() {
    let f = fixture::fx();
    let v = f.territory.to_geojson(Level::Community);
    assert_eq!(v["features"].as_array().unwrap().len(), 4);
    assert_eq!(v["features"][0]["properties"]["parent"], "310001");
    // The export imports again.
    let again = Territory::from_geojson(&[&fixture::territory_geojson()]).unwrap();
    assert_eq!(again.count(Level::Community), 4);
}
