//! 为老助餐's demo data and simulator: the canteens file is the generator's output (9
//! canteens, 49 meal points, each inside its sub-district); a simulated day of the live
//! simulator orders, cancels, sends the rounds out, hands over and adds up to the fen.

use cityos_core::time::{local, Date, MINUTE};
use cityos_engine::config::Config;
use cityos_server::http::auth::TokenKey;
use cityos_server::runtime::service::{Database, Service};
use cityos_server::{Clock, ManualClock};
use std::sync::Arc;

#[test]
fn the_canteens_file_is_the_generators() {
    let cfg = Config::xuhui();
    let text = cityos_sim::meals::canteens_csv(&cfg.territory);
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/xuhui/meals/canteens.csv"
    ))
    .unwrap();
    assert_eq!(
        text, shipped,
        "run `cityos meals generate` after changing the generator"
    );
    assert!(
        text.starts_with("id,kind,name,subdistrict,lon,lat"),
        "the life-circle room reads this header"
    );
    let rows = cityos_server::meals::demo::parse_canteens(&text).unwrap();
    assert_eq!(rows.iter().filter(|c| c.kind == "canteen").count(), 9);
    assert_eq!(rows.iter().filter(|c| c.kind == "meal_point").count(), 49);
    let t = &cfg.territory;
    for c in &rows {
        let chain = t
            .locate(c.lon, c.lat)
            .unwrap_or_else(|e| panic!("{}: {e}", c.id));
        assert_eq!(
            t.codes(chain).subdistrict.as_deref(),
            Some(c.subdistrict.as_str()),
            "{} lies in its sub-district",
            c.id
        );
        if let Some(k) = &c.kitchen {
            assert!(
                rows.iter().any(|x| &x.id == k && x.kind == "canteen"),
                "{}: kitchen {k}",
                c.id
            );
        }
    }
    // Every sub-district with elders is some canteen's delivery area.
    for (id, r) in t
        .regions()
        .filter(|(_, r)| r.level == cityos_core::Level::Subdistrict)
    {
        let _ = id;
        assert!(
            rows.iter().any(|c| c.delivery_area.contains(&r.code)),
            "{} has no delivering canteen",
            r.code
        );
    }
}

#[test]
fn a_simulated_day_of_meals_adds_up() {
    let cfg = Config::xuhui();
    let dir = std::env::temp_dir().join(format!("cityos-meals-day-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let day = Date::new(2026, 12, 2).unwrap();
    let clock = Arc::new(ManualClock::new(local(day, 5, 0)));
    let c: Arc<dyn Clock> = clock.clone();
    let svc = Service::start(
        cfg.clone(),
        &Database::Sqlite(dir.clone()),
        c,
        TokenKey::new([3; 32]),
        2,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let st = svc.state.clone();
    let (summary, acted) = rt.block_on(async {
        let seed = cityos_sim::meals::seed(&cfg.territory, 400, local(day, 5, 0));
        assert_eq!(
            cityos_server::meals::demo::seed(&st, seed, local(day, 5, 0))
                .await
                .unwrap(),
            400
        );
        let mut acted = 0;
        let mut t = local(day, 5, 50);
        while t <= local(day, 15, 0) {
            clock.set(t);
            acted += cityos_sim::meals::live_round(&st, t).await;
            t += 10 * MINUTE;
        }
        let b = cityos_server::meals::book(&st).await.unwrap();
        let date = day.to_string();
        let orders: Vec<_> = b
            .orders
            .values()
            .filter(|o| o.date == date)
            .cloned()
            .collect();
        drop(b);
        (orders, acted)
    });
    drop(rt);
    svc.stop();
    let _ = std::fs::remove_dir_all(&dir);
    use cityos_core::meals::OrderState as S;
    assert!(acted > 100, "{acted}");
    assert!(
        summary.len() > 150,
        "about 70 % of the elders with a usual lunch order: {}",
        summary.len()
    );
    assert!(
        summary
            .iter()
            .any(|o| o.state == S::Cancelled && o.refunded == o.pay),
        "a few cancel, refunded exactly"
    );
    assert!(summary.iter().filter(|o| o.state == S::Served).count() > 100);
    assert!(
        !summary.iter().any(|o| o.state == S::OutForDelivery),
        "every delivery ends handed over or unanswered"
    );
    for o in &summary {
        assert_eq!(
            o.pay + o.subsidy_total(),
            o.total,
            "{}: paid + subsidy = price, to the fen",
            o.id
        );
    }
}

#[test]
fn demo_phone_numbers_are_obviously_fictional() {
    let cfg = Config::xuhui();
    let now = local(Date::new(2026, 12, 2).unwrap(), 5, 0);
    let s = cityos_sim::meals::seed(&cfg.territory, 500, now);
    let mut phones = 0;
    for e in &s.elders {
        for p in std::iter::once(&e.phone).chain(e.family.iter().map(|f| &f.phone)) {
            assert!(
                p.starts_with("000-") && p.chars().filter(|c| c.is_ascii_digit()).count() == 11,
                "{p} could be a real number"
            );
            phones += 1;
        }
    }
    assert!(phones >= 1000, "{phones}");
    assert_eq!(
        cityos_sim::meals::fictional_phone(12_345_678),
        "000-1234-5678"
    );
}
