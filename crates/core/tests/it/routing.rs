//! Routing: category × region → lead and assisting departments at the lowest competent
//! level, with reasons.

use super::fixture;
use cityos_core::routing::route;

#[test]
fn routing_goes_to_the_lowest_competent_level() {
    let f = fixture::fx();
    let regions = fixture::regions(&f, 121.05, 31.05);
    let r = route(&f.tax, f.tax.category("street_vending").unwrap(), &regions).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].department, "um-310001");
    assert!(r[0].lead);
    assert!(r[0].reason.contains("第1街道城管中队"), "{}", r[0].reason);

    // Roads has no sub-district units: up to the district; water assists.
    let r = route(&f.tax, f.tax.category("road_damage").unwrap(), &regions).unwrap();
    assert_eq!(
        r.iter()
            .map(|a| (a.department.as_str(), a.lead))
            .collect::<Vec<_>>(),
        vec![("roads", true), ("water", false)]
    );
    assert!(r[0].reason.contains("逐级上移"), "{}", r[0].reason);

    // Community-level matters go to the residents' committee.
    let r = route(&f.tax, f.tax.category("lone_elder").unwrap(), &regions).unwrap();
    assert_eq!(r[0].department, "rc-310001001");

    // The other sub-district gets its own squad.
    let east = fixture::regions(&f, 121.35, 31.15);
    let r = route(&f.tax, f.tax.category("street_vending").unwrap(), &east).unwrap();
    assert_eq!(r[0].department, "um-310002");
}
