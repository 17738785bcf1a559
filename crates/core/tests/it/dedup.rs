//! The dedup index: the nearest open case of a category within radius and window.

use cityos_core::dedup::{distance_m, DedupIndex, Entry};
use cityos_core::time::HOUR;

#[test]
fn finds_the_nearest_open_case_within_radius_and_window() {
    let mut ix = DedupIndex::new();
    let e = |case, lon, lat, at| Entry {
        case,
        lon,
        lat,
        last_report_at: at,
    };
    ix.upsert(1, e(10, 121.4000, 31.2000, 0));
    ix.upsert(1, e(11, 121.4003, 31.2000, 0)); // ~29 m east
    ix.upsert(2, e(12, 121.4001, 31.2000, 0)); // other category
    let m = ix.find(1, 121.4004, 31.2, HOUR, 50.0, 24 * HOUR).unwrap();
    assert_eq!(m.case, 11, "the nearest wins");
    assert!(m.distance_m < 10.0);
    assert!(
        ix.find(1, 121.4020, 31.2, HOUR, 50.0, 24 * HOUR).is_none(),
        "beyond radius"
    );
    assert!(
        ix.find(1, 121.4003, 31.2, 25 * HOUR, 50.0, 24 * HOUR)
            .is_none(),
        "beyond window"
    );
    assert!(
        ix.find(3, 121.4003, 31.2, HOUR, 50.0, 24 * HOUR).is_none(),
        "category"
    );
    ix.remove(11);
    assert_eq!(
        ix.find(1, 121.4004, 31.2, HOUR, 50.0, 24 * HOUR)
            .unwrap()
            .case,
        10
    );
    assert_eq!(ix.len(), 2);
    // Large radius across cell boundaries.
    ix.upsert(1, e(20, 121.4100, 31.2100, 0));
    assert_eq!(
        ix.find(1, 121.4140, 31.2130, 0, 600.0, HOUR).unwrap().case,
        20
    );
    let d = distance_m(121.4, 31.2, 121.41, 31.2);
    assert!((d - 952.0).abs() < 5.0, "{d}");
}
