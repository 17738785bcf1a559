//! 为老助餐 through the API: ordering with subsidies to the fen, idempotent double taps,
//! the kind refusals, cancellation and refund, "my usual", the canteen's views and
//! rounds, the welfare check a missed delivery opens, every role on every endpoint, and
//! elders' details kept out of public answers and case text — on SQLite and PostgreSQL.

use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use cityos_core::meals::{Line, Meal, Round};
use cityos_core::time::{local, Date, Millis, DAY, HOUR, MINUTE};
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use cityos_server::meals::book::{Contact, Elder, Link, Usual};
use cityos_server::meals::demo::Seed;
use cityos_server::runtime::service::Database;
use serde_json::{json, Value};

fn day() -> Date {
    Date::new(2026, 11, 25).unwrap()
}

fn morning() -> Millis {
    local(day(), 8, 0)
}

/// 天平路 (310104003), canteen C01 — it delivers there and runs the driverless round.
const SUB: &str = "310104003";

fn community(t: &TestApp) -> String {
    let cfg = crate::support::config();
    let tr = &cfg.territory;
    let s = tr.by_code(SUB).unwrap();
    let c = tr.children(s)[0];
    let _ = t;
    tr.region(c).code.clone()
}

fn elder(id: &str, community: &str, birth: &str, lone: bool, statuses: &[&str]) -> Elder {
    Elder {
        id: id.into(),
        name: format!("测试老人{id}"),
        phone: "13912345678".into(),
        address: "天平路100弄5号301室".into(),
        birth: birth.into(),
        subdistrict: SUB.into(),
        community: community.into(),
        lon: 121.4445,
        lat: 31.2111,
        diet: vec!["soft".into()],
        lone,
        statuses: statuses.iter().map(|s| s.to_string()).collect(),
        family: vec![Contact {
            name: "女儿".into(),
            phone: "13800001111".into(),
            relation: "女儿".into(),
        }],
        canteen: "C01".into(),
        usual: None,
        registered_by: "test".into(),
        registered_at: morning() - 10 * DAY,
    }
}

fn who(t: &TestApp, name: &str, role: Role, scope: Option<&str>) -> String {
    t.sign(&Principal {
        name: name.into(),
        role,
        department: None,
        scope: scope.map(String::from),
        channel: None,
        expires_at: i64::MAX,
    })
}

async fn setup(t: &TestApp) {
    t.clock.set(morning());
    let c = community(t);
    let mut elders = vec![
        elder("E000001", &c, "1941-05-01", true, &["dibao"]), // 85, 低保
        elder("E000002", &c, "1956-01-01", false, &[]),       // 70
    ];
    elders[1].usual = Some(Usual {
        canteen: "C01".into(),
        meal: Meal::Lunch,
        lines: vec![Line {
            dish: "L2".into(),
            qty: 1,
        }],
        round: Round::Driverless,
        point: None,
    });
    let mut menus = Vec::new();
    for d in 0..3 {
        let date = Date::from_days(day().days() + d);
        for m in Meal::ALL {
            menus.push(("C01".to_string(), date.to_string(), m, cityos_sim_menu(m)));
        }
    }
    let seed = Seed {
        elders,
        links: vec![
            Link {
                username: "granny".into(),
                relation: "self".into(),
                target: "E000001".into(),
            },
            Link {
                username: "daughter".into(),
                relation: "family".into(),
                target: "E000001".into(),
            },
            Link {
                username: "cook".into(),
                relation: "staff".into(),
                target: "C01".into(),
            },
            Link {
                username: "cook9".into(),
                relation: "staff".into(),
                target: "C09".into(),
            },
        ],
        menus,
        top_ups: vec![("E000001".into(), 2_000), ("E000002".into(), 10_000)],
    };
    let st = &t.svc.as_ref().unwrap().state;
    assert_eq!(
        cityos_server::meals::demo::seed(st, seed, morning())
            .await
            .unwrap(),
        2
    );
}

fn cityos_sim_menu(m: Meal) -> Vec<cityos_core::meals::Dish> {
    use cityos_core::meals::Dish;
    match m {
        Meal::Breakfast => vec![Dish {
            id: "B1".into(),
            name: "白粥".into(),
            price: 300,
            tags: vec!["soft".into()],
        }],
        Meal::Lunch => vec![
            Dish {
                id: "L1".into(),
                name: "红烧鱼块套餐".into(),
                price: 1500,
                tags: vec!["soft".into()],
            },
            Dish {
                id: "L2".into(),
                name: "清蒸鸡胸套餐".into(),
                price: 1333,
                tags: vec!["low_salt".into()],
            },
        ],
    }
}

async fn order(t: &TestApp, tok: &str, body: Value) -> (StatusCode, Value) {
    t.post("/api/v1/meals/orders", Some(tok), body).await
}

async fn balance(t: &TestApp, tok: &str, elder: &str) -> i64 {
    let (s, v) = t
        .get(&format!("/api/v1/meals/elders/{elder}"), Some(tok))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["balance_fen"].as_i64().unwrap()
}

async fn story(t: TestApp) {
    setup(&t).await;
    let granny = who(&t, "granny", Role::Citizen, None);
    let cook = who(&t, "cook", Role::Handler, None);
    // An 85-year-old on 低保: 5 + 5 yuan subsidy off a 15-yuan lunch; pays 5.00.
    let (s, o) = order(&t, &granny, json!({"elder": "E000001", "canteen": "C01", "meal": "lunch", "lines": [{"dish": "L1"}], "round": "pickup", "key": "tap-1"})).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(
        (
            o["total_fen"].as_i64(),
            o["subsidy_fen"].as_i64(),
            o["pay_fen"].as_i64()
        ),
        (Some(1500), Some(1000), Some(500))
    );
    assert_eq!(o["balance_fen"], 1500);
    assert!(
        o["say_zh"].as_str().unwrap().contains("红烧鱼块套餐"),
        "{o}"
    );
    // A double tap: the same order, charged once.
    let (s2, o2) = order(&t, &granny, json!({"elder": "E000001", "canteen": "C01", "meal": "lunch", "lines": [{"dish": "L1"}], "round": "pickup", "key": "tap-1"})).await;
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(o2["id"], o["id"]);
    assert_eq!(balance(&t, &granny, "E000001").await, 1500);
    // The second lunch the same day has no subsidy: 15 yuan > 15.00 balance? exactly 15.00 → ok; then nothing left.
    let (s, o3) = order(&t, &granny, json!({"elder": "E000001", "canteen": "C01", "meal": "lunch", "lines": [{"dish": "L1"}], "key": "tap-2"})).await;
    assert_eq!(s, StatusCode::CREATED, "{o3}");
    assert_eq!(o3["pay_fen"], 1500);
    assert_eq!(balance(&t, &granny, "E000001").await, 0);
    // Not enough money: a kind refusal, nothing charged.
    let (s, p) = order(&t, &granny, json!({"elder": "E000001", "canteen": "C01", "meal": "lunch", "date": "2026-11-26", "lines": [{"dish": "L1"}], "key": "tap-3"})).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("meal_balance_low")),
        "{p}"
    );
    assert!(
        p["detail"].as_str().unwrap().contains("账户还有0.00元"),
        "{p}"
    );
    // Family tops up 20.00 yuan.
    let daughter = who(&t, "daughter", Role::Citizen, None);
    let (s, v) = t
        .post(
            "/api/v1/meals/elders/E000001/top-ups",
            Some(&daughter),
            json!({"amount_fen": 2000}),
        )
        .await;
    assert_eq!(
        (s, v["balance_fen"].as_i64()),
        (StatusCode::OK, Some(2000)),
        "{v}"
    );
    let (s, _) = t
        .post(
            "/api/v1/meals/elders/E000001/top-ups",
            Some(&daughter),
            json!({"amount_fen": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // A dish not on the menu.
    let (s, p) = order(
        &t,
        &daughter,
        json!({"elder": "E000001", "canteen": "C01", "meal": "lunch", "lines": [{"dish": "L9"}]}),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("dish_not_on_menu"))
    );
    // Cancel the first before the cut-off: the 5.00 comes back exactly.
    let id = o["id"].as_str().unwrap().to_string();
    let (s, c) = t
        .post(
            &format!("/api/v1/meals/orders/{id}/cancel"),
            Some(&granny),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, c["state"].as_str(), c["refunded_fen"].as_i64()),
        (StatusCode::OK, Some("cancelled"), Some(500)),
        "{c}"
    );
    assert_eq!(balance(&t, &granny, "E000001").await, 2500);
    // Cancelling twice refunds nothing more.
    let (s, _) = t
        .post(
            &format!("/api/v1/meals/orders/{id}/cancel"),
            Some(&granny),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(balance(&t, &granny, "E000001").await, 2500);
    // The second order (no subsidy at first) still stands; after the cut-off the elder
    // cannot cancel it, the canteen can.
    t.clock.set(local(day(), 9, 31));
    let id3 = o3["id"].as_str().unwrap().to_string();
    let (s, p) = t
        .post(
            &format!("/api/v1/meals/orders/{id3}/cancel"),
            Some(&granny),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("meal_cancel_closed"))
    );
    let (s, p) = order(
        &t,
        &granny,
        json!({"elder": "E000001", "canteen": "C01", "meal": "lunch", "lines": [{"dish": "L1"}]}),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("meal_after_cutoff"))
    );
    let (s, c) = t
        .post(
            &format!("/api/v1/meals/orders/{id3}/cancel"),
            Some(&cook),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, c["refunded_fen"].as_i64()),
        (StatusCode::OK, Some(1500)),
        "{c}"
    );
    assert_eq!(balance(&t, &granny, "E000001").await, 4000);
    // "My usual" in one request: after today's cut-off it is tomorrow's lunch.
    let officer = who(&t, "desk", Role::DistrictOfficer, None);
    let (s, u) = order(
        &t,
        &officer,
        json!({"elder": "E000002", "usual": true, "key": "usual-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert_eq!(
        (
            u["date"].as_str(),
            u["round"].as_str(),
            u["lines"][0]["dish"].as_str()
        ),
        (Some("2026-11-26"), Some("driverless"), Some("L2"))
    );
    // 70 years: 3.00 off 13.33 → 10.33 paid.
    assert_eq!(
        (u["subsidy_fen"].as_i64(), u["pay_fen"].as_i64()),
        (Some(300), Some(1033))
    );
    let (s, p) = order(&t, &granny, json!({"elder": "E000001", "usual": true})).await;
    assert_eq!(s, StatusCode::CREATED, "the first order made a usual: {p}");
    // Impossible and too-young registrations: kind codes with both languages.
    let worker = who(&t, "worker", Role::SubdistrictOfficer, Some(SUB));
    let base = json!({"name": "新老人", "phone": "13900000000", "address": "天平路1号", "community": community(&t), "canteen": "C01"});
    for (birth, code) in [
        ("1850-01-01", "impossible_age"),
        ("2030-01-01", "impossible_age"),
        ("1990-06-01", "under_meal_age"),
        ("1950-02-30", "impossible_age"),
    ] {
        let mut b = base.clone();
        b["birth_date"] = json!(birth);
        let (s, p) = t.post("/api/v1/meals/elders", Some(&worker), b).await;
        assert_eq!(
            (s, p["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{birth}: {p}"
        );
        assert!(
            p["detail"].as_str().unwrap().contains(" / "),
            "zh / en: {p}"
        );
    }
    let mut b = base.clone();
    b["birth_date"] = json!("1944-03-08");
    b["lone"] = json!(true);
    b["account"] = json!("newgran");
    let (s, e) = t.post("/api/v1/meals/elders", Some(&worker), b).await;
    assert_eq!(
        (s, e["id"].as_str()),
        (StatusCode::CREATED, Some("E000003")),
        "{e}"
    );
    // A restart puts everything back from the store.
    let before = t.get("/api/v1/meals/elders/E000001", Some(&granny)).await.1;
    let mut t = t;
    t.restart();
    let after = t.get("/api/v1/meals/elders/E000001", Some(&granny)).await.1;
    assert_eq!(before["balance_fen"], after["balance_fen"]);
    assert_eq!(before["orders"], after["orders"]);
    assert_eq!(before["ledger"], after["ledger"]);
    assert_eq!(
        balance(&t, &who(&t, "newgran", Role::Citizen, None), "E000003").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_story_sqlite() {
    story(TestApp::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_story_postgres() {
    if let Some(t) = TestApp::postgres() {
        story(t).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_enforced() {
    let t = TestApp::sqlite();
    setup(&t).await;
    let c = community(&t);
    let elders: Vec<Elder> = (10..111)
        .map(|i| elder(&format!("E{i:06}"), &c, "1950-01-01", false, &[]))
        .collect();
    let top: Vec<(String, i64)> = elders.iter().map(|e| (e.id.clone(), 10_000)).collect();
    let st = &t.svc.as_ref().unwrap().state;
    cityos_server::meals::demo::seed(
        st,
        Seed {
            elders,
            top_ups: top,
            ..Default::default()
        },
        morning(),
    )
    .await
    .unwrap();
    let desk = who(&t, "desk", Role::DistrictOfficer, None);
    // C01 cooks 300 lunches: 100 orders of 3 portions fill it.
    for i in 10..110 {
        let (s, v) = order(&t, &desk, json!({"elder": format!("E{i:06}"), "canteen": "C01", "lines": [{"dish": "L1", "qty": 3}]})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, p) = order(
        &t,
        &desk,
        json!({"elder": "E000110", "canteen": "C01", "lines": [{"dish": "L1"}]}),
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("meal_sold_out")),
        "{p}"
    );
    assert_eq!(
        balance(&t, &desk, "E000110").await,
        10_000,
        "nothing charged for the refusal"
    );
    let (_, m) = t
        .get("/api/v1/meals/canteens/C01/menu?date=2026-11-25", None)
        .await;
    let lunch = m["meals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["meal"] == "lunch")
        .unwrap();
    assert_eq!(
        (lunch["left"].as_i64(), lunch["open"].as_bool()),
        (Some(0), Some(false))
    );
    let (_, k) = t
        .get("/api/v1/meals/canteens/C01/kitchen", Some(&desk))
        .await;
    assert_eq!(k["portions"], 300);
    assert_eq!(k["dishes"][0]["portions"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_meal_opens_a_masked_welfare_check() {
    let t = TestApp::sqlite();
    setup(&t).await;
    let granny = who(&t, "granny", Role::Citizen, None);
    let cook = who(&t, "cook", Role::Handler, None);
    let (s, o) = order(&t, &granny, json!({"elder": "E000001", "canteen": "C01", "lines": [{"dish": "L2"}], "round": "driverless"})).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = o["id"].as_str().unwrap();
    // Her neighbour's usual lunch rides the same round.
    let desk = who(&t, "desk", Role::DistrictOfficer, None);
    let (s, o2) = order(&t, &desk, json!({"elder": "E000002", "usual": true})).await;
    assert_eq!(
        (s, o2["round"].as_str()),
        (StatusCode::CREATED, Some("driverless")),
        "{o2}"
    );
    let id2 = o2["id"].as_str().unwrap().to_string();
    // Not yet departed: no handover.
    let (s, _) = t
        .post(
            &format!("/api/v1/meals/orders/{id}/handover"),
            Some(&cook),
            json!({"handed": false}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    t.clock.set(local(day(), 11, 0));
    let (_, r) = t
        .get("/api/v1/meals/canteens/C01/rounds", Some(&cook))
        .await;
    let dr = &r["rounds"][0];
    assert_eq!(
        (dr["round"].as_str(), dr["departs"].as_str()),
        (Some("driverless"), Some("11:00"))
    );
    assert_eq!(dr["stops"][0]["order"], id);
    assert_eq!(
        dr["stops"][0]["name"], "测**********",
        "masked for the round sheet: {r}"
    );
    let (s, d) = t
        .post(
            "/api/v1/meals/canteens/C01/rounds/driverless/depart",
            Some(&cook),
            json!({}),
        )
        .await;
    assert_eq!((s, d["orders"].as_i64()), (StatusCode::OK, Some(2)), "{d}");
    let (s, _) = t
        .post(
            "/api/v1/meals/canteens/C01/rounds/driverless/depart",
            Some(&cook),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    t.clock.set(local(day(), 11, 20));
    let (s, h) = t
        .post(
            &format!("/api/v1/meals/orders/{id}/handover"),
            Some(&cook),
            json!({"handed": false}),
        )
        .await;
    assert_eq!(
        (s, h["state"].as_str()),
        (StatusCode::OK, Some("not_handed_over")),
        "{h}"
    );
    // The neighbour's meal reaches her door at 12:30: late.
    t.clock.set(local(day(), 12, 30));
    let (s, h2) = t
        .post(
            &format!("/api/v1/meals/orders/{id2}/handover"),
            Some(&cook),
            json!({"handed": true}),
        )
        .await;
    assert_eq!(
        (s, h2["state"].as_str()),
        (StatusCode::OK, Some("served")),
        "{h2}"
    );
    let (_, e) = t.get("/api/v1/meals/elders/E000001", Some(&granny)).await;
    let number = e["orders"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(number, id);
    // The case: a welfare check for the residents' committee, no name, phone or address.
    let officer = who(&t, "boss", Role::DistrictOfficer, None);
    let (_, list) = t
        .get(
            "/api/v1/cases?category=lone_elder_welfare_check",
            Some(&officer),
        )
        .await;
    let items = list["cases"].as_array().expect("cases");
    assert_eq!(items.len(), 1, "{list}");
    let case = &items[0];
    let text = case.to_string();
    for secret in ["测试老人", "13912345678", "天平路100弄", "13800001111"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let (_, full) = t
        .get(
            &format!("/api/v1/cases/{}", case["number"].as_str().unwrap()),
            Some(&officer),
        )
        .await;
    let full = full.to_string();
    assert!(
        full.contains("E000001") && full.contains("无人应答"),
        "{full}"
    );
    for secret in ["测试老人", "13912345678", "天平路100弄", "13800001111"] {
        assert!(!full.contains(secret), "{secret} in {full}");
    }
    assert!(full.contains("residents_committee"), "{full}");
    // Once only: with the room's welfare row lost (as if its write failed after the case
    // was filed), opening the check again joins the case already filed.
    {
        let st = &t.svc.as_ref().unwrap().state;
        let mut b = cityos_server::meals::book(st).await.unwrap();
        let key = format!("order:{id}");
        let w = b
            .welfare
            .remove(&key)
            .expect("the welfare row, keyed by the order");
        let e = b.elders.get("E000001").unwrap().clone();
        let again = cityos_server::meals::care::open(
            st,
            &mut b,
            &e,
            &key,
            &w.reason,
            Some(id),
            local(day(), 12, 40),
        )
        .await
        .unwrap();
        assert_eq!(again.as_deref(), case["number"].as_str(), "the same case");
        assert!(b.welfare.contains_key(&key), "the row written this time");
    }
    let (_, list) = t
        .get(
            "/api/v1/cases?category=lone_elder_welfare_check",
            Some(&officer),
        )
        .await;
    assert_eq!(
        list["cases"].as_array().unwrap().len(),
        1,
        "still one case: {list}"
    );
    // Anonymous: the case is not public.
    let (s, _) = t
        .get(
            &format!("/api/v1/cases/{}", case["number"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The vital signs: deliveries not handed over in the sub-district.
    let (_, inds) = t
        .get(
            &format!("/api/v1/indicators?domain=livelihood&region={SUB}"),
            Some(&officer),
        )
        .await;
    let missed = inds["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "meal_deliveries_missed")
        .expect("indicator");
    assert_eq!(missed["value"], 1.0, "{missed}");
    let late = inds["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "meal_deliveries_late")
        .expect("indicator");
    assert_eq!(late["value"], 1.0, "{late}");
    let served = inds["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "meal_elders_served")
        .expect("indicator");
    assert_eq!(served["value"], 1.0, "{served}");
    // Summary: no one's details, the counts.
    let (_, sum) = t
        .get(
            "/api/v1/meals/summary",
            Some(&who(&t, "ana", Role::Analyst, None)),
        )
        .await;
    assert_eq!(sum["total"]["not_handed_over"], 1, "{sum}");
    assert!(!sum.to_string().contains("测试老人"));
    // Coverage per community: the vital signs' figures, one level down, and the same sums.
    let c = community(&t);
    let want =
        json!({"subdistrict": SUB, "registered": 2, "served": 1, "late": 1, "not_handed_over": 1});
    // Analysts and administrators see every community, small cells hidden (every count
    // here is under 5: the community's, its sub-district's and the district's).
    for caller in [
        who(&t, "ana", Role::Analyst, None),
        who(&t, "root", Role::Admin, None),
    ] {
        let (s, cov) = t
            .get(
                &format!("/api/v1/meals/coverage?date={}", day()),
                Some(&caller),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{cov}");
        assert_eq!(cov["suppressed"], true, "{cov}");
        assert_eq!(cov["min_cell"], 5, "{cov}");
        let rows = cov["communities"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{cov}");
        assert_eq!(rows[0]["community"], c.as_str());
        for k in ["registered", "served", "late", "not_handed_over"] {
            assert_eq!(rows[0][k], Value::Null, "{k}: {cov}");
            assert_eq!(cov["subdistricts"][0][k], Value::Null, "{k}: {cov}");
            assert_eq!(cov["total"][k], Value::Null, "{k}: {cov}");
        }
    }
    for caller in [
        officer.clone(),
        who(&t, "worker", Role::SubdistrictOfficer, Some(SUB)),
        cook.clone(),
    ] {
        let (s, cov) = t
            .get(
                &format!("/api/v1/meals/coverage?date={}", day()),
                Some(&caller),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{cov}");
        let rows = cov["communities"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{cov}");
        let r = &rows[0];
        assert_eq!(r["community"], c.as_str());
        assert!(r["name"].as_str().is_some_and(|n| !n.is_empty()));
        for k in [
            "subdistrict",
            "registered",
            "served",
            "late",
            "not_handed_over",
        ] {
            assert_eq!(r[k], want[k], "{k}: {cov}");
            if k != "subdistrict" {
                assert_eq!(cov["subdistricts"][0][k], want[k], "{k}: {cov}");
                assert_eq!(cov["total"][k], want[k], "{k}: {cov}");
            }
        }
        assert_eq!(cov["subdistricts"][0]["subdistrict"], SUB);
        assert_eq!(
            r["served"].as_f64(),
            served["value"].as_f64(),
            "the vital sign's figure"
        );
        assert_eq!(r["late"].as_f64(), late["value"].as_f64());
        assert_eq!(r["not_handed_over"].as_f64(), missed["value"].as_f64());
        let text = cov.to_string();
        for secret in ["测试老人", "E000001", "13912345678"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // Another sub-district's worker and another canteen's staff: no row; another day: none served.
    for caller in [
        who(&t, "worker2", Role::SubdistrictOfficer, Some("310104017")),
        who(&t, "cook9", Role::Handler, None),
    ] {
        let (_, cov) = t.get("/api/v1/meals/coverage", Some(&caller)).await;
        assert_eq!(cov["communities"], json!([]), "{cov}");
        assert_eq!(cov["total"]["served"], 0);
    }
    let (_, cov) = t
        .get(
            &format!(
                "/api/v1/meals/coverage?date={}",
                Date::from_days(day().days() + 1)
            ),
            Some(&officer),
        )
        .await;
    assert_eq!(cov["communities"][0]["registered"], 2, "{cov}");
    assert_eq!(cov["communities"][0]["served"], 0, "{cov}");
    let (s, _) = t.get("/api/v1/meals/coverage", Some(&granny)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_elder_missing_the_usual_two_days_opens_one_check() {
    let t = TestApp::sqlite();
    setup(&t).await;
    let granny = who(&t, "granny", Role::Citizen, None);
    let (s, o) = order(
        &t,
        &granny,
        json!({"elder": "E000001", "canteen": "C01", "lines": [{"dish": "L1"}]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let st = t.svc.as_ref().unwrap().state.clone();
    t.clock.set(local(day(), 12, 0));
    let cook = who(&t, "cook", Role::Handler, None);
    let (s, _) = t
        .post(
            &format!(
                "/api/v1/meals/orders/{}/handover",
                o["id"].as_str().unwrap()
            ),
            Some(&cook),
            json!({"handed": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Today it was picked up: nothing.
    t.clock.set(local(day(), 15, 0));
    assert!(cityos_server::meals::care::missed_meals(
        &st,
        t.clock.0.load(std::sync::atomic::Ordering::SeqCst)
    )
    .await
    .unwrap()
    .is_empty());
    // Two days later with no order either day: one check, once.
    let later = local(day(), 15, 0) + 2 * DAY + 5 * MINUTE;
    t.clock.set(later);
    let cases = cityos_server::meals::care::missed_meals(&st, later)
        .await
        .unwrap();
    assert_eq!(
        cases.len(),
        1,
        "only the lone elder with a usual meal: {cases:?}"
    );
    assert!(cityos_server::meals::care::missed_meals(&st, later + HOUR)
        .await
        .unwrap()
        .is_empty());
}

/// One endpoint of the role matrix: method, path, body, who may, what the others get.
type Row<'a> = (Method, &'a str, Option<Value>, &'a [&'a str], u16);

/// Every role on every endpoint: who gets 200/201, 403 or 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_on_each_endpoint() {
    let t = TestApp::sqlite();
    setup(&t).await;
    let tok = |n: &str, r: Role, s: Option<&str>| who(&t, n, r, s);
    let callers: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("elder", Some(tok("granny", Role::Citizen, None))),
        ("family", Some(tok("daughter", Role::Citizen, None))),
        ("stranger", Some(tok("someone", Role::Citizen, None))),
        ("staff", Some(tok("cook", Role::Handler, None))),
        ("other_staff", Some(tok("cook9", Role::Handler, None))),
        (
            "worker",
            Some(tok("worker", Role::SubdistrictOfficer, Some(SUB))),
        ),
        (
            "far_worker",
            Some(tok("worker2", Role::SubdistrictOfficer, Some("310104017"))),
        ),
        ("officer", Some(tok("boss", Role::DistrictOfficer, None))),
        ("analyst", Some(tok("ana", Role::Analyst, None))),
        ("inspector", Some(tok("insp", Role::Inspector, None))),
        ("admin", Some(tok("root", Role::Admin, None))),
    ];
    let (s, _) = t
        .post(
            "/api/v1/meals/elders/E000001/top-ups",
            Some(&tok("boss", Role::DistrictOfficer, None)),
            json!({"amount_fen": 100_000}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let menu = json!({"date": "2026-11-27", "meal": "lunch", "dishes": [{"id": "L1", "name": "面", "price": 800}]});
    // (method, path, body, who may (status for the others in parentheses))
    let cases: Vec<Row> = vec![
        (
            Method::GET,
            "/api/v1/meals/canteens",
            None,
            &[
                "anonymous",
                "elder",
                "family",
                "stranger",
                "staff",
                "other_staff",
                "worker",
                "far_worker",
                "officer",
                "analyst",
                "inspector",
                "admin",
            ],
            0,
        ),
        (
            Method::GET,
            "/api/v1/meals/communities",
            None,
            &[
                "anonymous",
                "elder",
                "family",
                "stranger",
                "staff",
                "other_staff",
                "worker",
                "far_worker",
                "officer",
                "analyst",
                "inspector",
                "admin",
            ],
            0,
        ),
        (
            Method::GET,
            "/api/v1/meals/canteens/C01/menu",
            None,
            &[
                "anonymous",
                "elder",
                "family",
                "stranger",
                "staff",
                "other_staff",
                "worker",
                "far_worker",
                "officer",
                "analyst",
                "inspector",
                "admin",
            ],
            0,
        ),
        (
            Method::PUT,
            "/api/v1/meals/canteens/C01/menu",
            Some(menu),
            // The community worker runs the desk and rounds, but menus are the canteen's.
            &["staff", "officer", "admin"],
            403,
        ),
        (
            Method::GET,
            "/api/v1/meals/canteens/C01/kitchen",
            None,
            &["staff", "worker", "officer"],
            403,
        ),
        (
            Method::GET,
            "/api/v1/meals/canteens/C01/rounds",
            None,
            &["staff", "worker", "officer"],
            403,
        ),
        (
            Method::GET,
            "/api/v1/meals/elders/E000001",
            None,
            &["elder", "family", "staff", "worker", "officer"],
            404,
        ),
        (
            Method::POST,
            "/api/v1/meals/elders/E000001/top-ups",
            Some(json!({"amount_fen": 100})),
            &["elder", "family", "staff", "worker", "officer"],
            404,
        ),
        (
            Method::POST,
            "/api/v1/meals/orders",
            Some(json!({"elder": "E000001", "canteen": "C01", "lines": [{"dish": "L1"}]})),
            &["elder", "family", "staff", "worker", "officer"],
            404,
        ),
        (
            Method::GET,
            "/api/v1/meals/summary",
            None,
            &[
                "staff",
                "other_staff",
                "worker",
                "far_worker",
                "officer",
                "analyst",
                "admin",
            ],
            403,
        ),
        (
            Method::GET,
            "/api/v1/meals/coverage",
            None,
            &[
                "staff",
                "other_staff",
                "worker",
                "far_worker",
                "officer",
                "analyst",
                "admin",
            ],
            403,
        ),
        (
            Method::GET,
            "/api/v1/meals/my-canteens",
            None,
            &[
                "elder",
                "family",
                "stranger",
                "staff",
                "other_staff",
                "worker",
                "far_worker",
                "officer",
                "analyst",
                "inspector",
                "admin",
            ],
            0,
        ),
    ];
    for (method, path, body, ok, other) in cases {
        for (name, token) in &callers {
            let (s, v, _) = t
                .call(method.clone(), path, token.as_deref(), body.clone(), &[])
                .await;
            let expect = if ok.contains(name) {
                if method == Method::POST && path.ends_with("/orders") {
                    201
                } else {
                    200
                }
            } else if token.is_none() {
                401
            } else {
                other
            };
            assert_eq!(s.as_u16(), expect, "{name} {method} {path}: {v}");
        }
    }
    // The desk's search: staff and workers see masked matches; a citizen only their own.
    let (_, v) = t
        .get(
            "/api/v1/meals/elders?q=5678",
            Some(&tok("cook", Role::Handler, None)),
        )
        .await;
    assert_eq!(v["elders"][0]["phone"], "*******5678", "{v}");
    assert!(!v.to_string().contains("测试老人"), "{v}");
    let (_, v) = t
        .get(
            "/api/v1/meals/elders",
            Some(&tok("someone", Role::Citizen, None)),
        )
        .await;
    assert_eq!(v["elders"], json!([]));
    let (s, _) = t
        .get(
            "/api/v1/meals/elders?q=5678",
            Some(&tok("insp", Role::Inspector, None)),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Registration: workers (in their area), officers, family; not staff or inspectors.
    let reg = json!({"name": "王阿婆", "phone": "13900000000", "address": "天平路2号", "birth_date": "1940-01-01", "community": community(&t), "canteen": "C01"});
    for (name, r, scope, expect) in [
        ("cook", Role::Handler, None, 403),
        ("insp", Role::Inspector, None, 403),
        ("worker2", Role::SubdistrictOfficer, Some("310104017"), 403),
        // A sub-district officer without a scope registers nobody.
        ("worker0", Role::SubdistrictOfficer, None, 403),
        ("worker", Role::SubdistrictOfficer, Some(SUB), 201),
        ("son", Role::Citizen, None, 201),
    ] {
        let (s, v) = t
            .post(
                "/api/v1/meals/elders",
                Some(&tok(name, r, scope)),
                reg.clone(),
            )
            .await;
        assert_eq!(s.as_u16(), expect, "{name}: {v}");
    }
    // Subsidy statuses are a community worker's to set, after checking: a family member
    // cannot give an elder 低保.
    let mut with_status = reg.clone();
    with_status["statuses"] = json!(["dibao"]);
    let (s, v) = t
        .post(
            "/api/v1/meals/elders",
            Some(&tok("son3", Role::Citizen, None)),
            with_status.clone(),
        )
        .await;
    assert_eq!(s.as_u16(), 403, "{v}");
    let (s, v) = t
        .post(
            "/api/v1/meals/elders",
            Some(&tok("worker", Role::SubdistrictOfficer, Some(SUB))),
            with_status,
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{v}");
    // The son who registered is linked as family.
    let (_, v) = t
        .get(
            "/api/v1/meals/elders",
            Some(&tok("son", Role::Citizen, None)),
        )
        .await;
    assert_eq!(v["elders"][0]["relation"], "family");
    // Public answers carry no elder's details.
    let (_, pubc) = t.get("/api/v1/meals/canteens", None).await;
    assert_eq!(pubc["canteens"].as_array().unwrap().len(), 58);
    assert!(!pubc.to_string().contains("测试老人") && !pubc.to_string().contains("1391234"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registration_forms_communities_are_those_served() {
    let t = TestApp::sqlite();
    setup(&t).await;
    let (s, v) = t.get("/api/v1/meals/communities", None).await;
    assert_eq!(s, StatusCode::OK);
    let list = v["communities"].as_array().expect("communities");
    assert!(!list.is_empty(), "{v}");
    let c = community(&t);
    assert!(
        list.iter().any(|x| x["code"] == c.as_str()),
        "the test elders' community: {v}"
    );
    for x in list {
        assert!(
            x["name"].as_str().is_some_and(|n| !n.is_empty()) && x["subdistrict"].is_string(),
            "{x}"
        );
    }
    // An impossible age, said kindly in both languages; nothing registered.
    let worker = who(&t, "worker", Role::SubdistrictOfficer, Some(SUB));
    let (s, p) = t
        .post(
            "/api/v1/meals/elders",
            Some(&worker),
            json!({"name": "新老人", "phone": "000-0000-0001", "address": "模拟路1号", "birth_date": "1880-01-01", "community": c, "canteen": "C01"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("impossible_age")),
        "{p}"
    );
    let d = p["detail"].as_str().unwrap();
    assert!(
        d.contains("请再核对一下") && d.contains("please check it"),
        "{d}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_top_up_credits_once_and_says_who_paid() {
    let t = TestApp::sqlite();
    setup(&t).await;
    let daughter = who(&t, "daughter", Role::Citizen, None);
    let before = balance(&t, &daughter, "E000001").await;
    let url = "/api/v1/meals/elders/E000001/top-ups";
    let (s, v) = t
        .post(
            url,
            Some(&daughter),
            json!({"amount_fen": 2000, "key": "tu-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["balance_fen"].as_i64(), Some(before + 2000), "{v}");
    assert_eq!(v["entry"]["paid_by"], "family:citizen:daughter", "{v}");
    assert_eq!(v["replayed"], false);
    // The retry (a lost answer, a double tap): the first top-up again, nothing credited.
    let (s, v2) = t
        .post(
            url,
            Some(&daughter),
            json!({"amount_fen": 2000, "key": "tu-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    assert_eq!(v2["balance_fen"].as_i64(), Some(before + 2000), "{v2}");
    assert_eq!(
        (v2["replayed"].clone(), v2["entry"]["seq"].clone()),
        (json!(true), v["entry"]["seq"].clone())
    );
    // The same key for another amount: refused, nothing credited.
    let (s, p) = t
        .post(
            url,
            Some(&daughter),
            json!({"amount_fen": 5000, "key": "tu-1"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        ),
        "{p}"
    );
    let (s, p) = t
        .post(
            url,
            Some(&daughter),
            json!({"amount_fen": 100, "key": "a b"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key")),
        "{p}"
    );
    assert_eq!(balance(&t, &daughter, "E000001").await, before + 2000);
    // Staff at the desk: said so, with their account.
    let desk = who(&t, "desk", Role::DistrictOfficer, None);
    let (s, v3) = t
        .post(url, Some(&desk), json!({"amount_fen": 300, "key": "tu-2"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v3}");
    assert_eq!(
        v3["entry"]["paid_by"], "staff:district_officer:desk",
        "{v3}"
    );
    // The elder's page lists who paid, newest first; the key is not shown.
    let (_, e) = t.get("/api/v1/meals/elders/E000001", Some(&daughter)).await;
    let refs: Vec<&str> = e["ledger"]
        .as_array()
        .expect("ledger entries")
        .iter()
        .filter_map(|x| x["reference"].as_str())
        .collect();
    assert_eq!(
        refs[..2],
        ["staff:district_officer:desk", "family:citizen:daughter"],
        "{e}"
    );
    // A restart reads the keys back: the retry still credits nothing.
    let mut t = t;
    t.restart();
    let daughter = who(&t, "daughter", Role::Citizen, None);
    let (s, v4) = t
        .post(
            url,
            Some(&daughter),
            json!({"amount_fen": 2000, "key": "tu-1"}),
        )
        .await;
    assert_eq!(
        (s, v4["replayed"].clone()),
        (StatusCode::OK, json!(true)),
        "{v4}"
    );
    assert_eq!(v4["balance_fen"].as_i64(), Some(before + 2300), "{v4}");
}

/// The group commit: concurrent orders (double taps among them) are each answered once
/// stored — every answered order and charge is there after a restart, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_are_committed_in_groups_and_survive_a_restart() {
    let mut t = TestApp::sqlite();
    setup(&t).await;
    let desk = who(&t, "desk", Role::DistrictOfficer, None);
    let before = balance(&t, &desk, "E000002").await;
    // Five orders (three days' lunches, the next two breakfasts), each sent three times
    // at once.
    let one = |i: usize| {
        let (t, desk) = (&t, desk.clone());
        async move {
            let k = i % 5;
            let (d, meal, dish) = [
                (0, "lunch", "L1"),
                (1, "lunch", "L1"),
                (2, "lunch", "L1"),
                (1, "breakfast", "B1"),
                (2, "breakfast", "B1"),
            ][k];
            let date = Date::from_days(day().days() + d).to_string();
            order(t, &desk, json!({"elder": "E000002", "canteen": "C01", "date": date, "meal": meal, "lines": [{"dish": dish}], "round": "pickup", "key": format!("group-{k}")})).await
        }
    };
    let answers = futures_util::future::join_all((0..15).map(one)).await;
    let mut ids = std::collections::BTreeMap::new();
    for (s, v) in &answers {
        assert!(s == &StatusCode::CREATED || s == &StatusCode::OK, "{s} {v}");
        ids.insert(
            v["id"].as_str().unwrap().to_string(),
            v["pay_fen"].as_i64().unwrap_or(0),
        );
    }
    assert_eq!(ids.len(), 5, "one order per key: {ids:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        5,
        "each placed once, the repeats answered with it"
    );
    let paid: i64 = ids.values().sum();
    let after = balance(&t, &desk, "E000002").await;
    assert_eq!(after, before - paid, "charged once per order");
    t.restart();
    let desk = who(&t, "desk", Role::DistrictOfficer, None);
    assert_eq!(balance(&t, &desk, "E000002").await, after, "all stored");
    let (_, e) = t.get("/api/v1/meals/elders/E000002", Some(&desk)).await;
    let stored: std::collections::BTreeSet<String> = e["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, ids.keys().cloned().collect(), "{e}");
}

/// A commit that fails (the disk full, injected) refuses the orders in it and leaves
/// nothing in memory that is not stored: the book is read again, the balance and the
/// slot as before; the next order, once the store works, goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_commit_refuses_its_orders_and_keeps_nothing() {
    let t = TestApp::sqlite();
    setup(&t).await;
    let desk = who(&t, "desk", Role::DistrictOfficer, None);
    let before = balance(&t, &desk, "E000002").await;
    let Database::Sqlite(dir) = t.db.clone() else {
        unreachable!()
    };
    let trigger = |on: bool| {
        let c = rusqlite::Connection::open(dir.join("cityos.db")).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c.execute_batch(if on {
            "CREATE TRIGGER inject_full BEFORE INSERT ON meal_ledger \
             BEGIN SELECT RAISE(ABORT, 'injected: database or disk is full'); END;"
        } else {
            "DROP TRIGGER inject_full;"
        })
        .unwrap();
    };
    trigger(true);
    let body = json!({"elder": "E000002", "canteen": "C01", "meal": "lunch", "lines": [{"dish": "L1"}], "round": "pickup", "key": "full-1"});
    let (s, p) = order(&t, &desk, body.clone()).await;
    assert!(s.is_server_error(), "{s} {p}");
    assert_eq!(
        balance(&t, &desk, "E000002").await,
        before,
        "nothing charged"
    );
    let (_, e) = t.get("/api/v1/meals/elders/E000002", Some(&desk)).await;
    assert_eq!(
        e["orders"].as_array().unwrap().len(),
        0,
        "no order kept: {e}"
    );
    trigger(false);
    // The retry with the same key: placed now, once.
    let (s, o) = order(&t, &desk, body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    assert_eq!(
        balance(&t, &desk, "E000002").await,
        before - o["pay_fen"].as_i64().unwrap_or(0)
    );
}

/// The elder's page carries its first screen for the signed-in citizen: the canteens and
/// that account's own elders, as `GET /elders` answers them, escaped so that a name can
/// not end the element; never cached; nobody else's elders, and nothing for anonymous
/// callers, staff or a bad cookie.
async fn page_first_screen(t: TestApp) {
    setup(&t).await;
    let c = community(&t);
    let mut odd = elder("E000003", &c, "1950-03-03", false, &[]);
    odd.name = "</script><script>alert(1)</script>&\u{2028}".into();
    let st = &t.svc.as_ref().unwrap().state;
    cityos_server::meals::demo::seed(
        st,
        Seed {
            elders: vec![odd.clone()],
            links: vec![Link {
                username: "son".into(),
                relation: "family".into(),
                target: "E000003".into(),
            }],
            menus: vec![],
            top_ups: vec![],
        },
        morning(),
    )
    .await
    .unwrap();
    let island = |html: &str| -> Option<Value> {
        let open = "<script type=\"application/json\" id=\"meals-first\">";
        let at = html.find(open)? + open.len();
        let end = at + html[at..].find("</script>").unwrap();
        Some(serde_json::from_str(&html[at..end]).unwrap())
    };
    let page = |tok: Option<String>| {
        let t = &t;
        async move {
            let cookie = tok.map(|k| format!("cityos_session={k}"));
            let headers: Vec<(&str, &str)> = cookie
                .as_deref()
                .map(|c| vec![("cookie", c)])
                .unwrap_or_default();
            let (s, body, h) = t
                .raw_with(Method::GET, "/ui/meals.html", "text/plain", "", &headers)
                .await;
            assert_eq!(s, StatusCode::OK);
            (body, h)
        }
    };
    for name in ["granny", "daughter", "son"] {
        let tok = who(&t, name, Role::Citizen, None);
        let (html, h) = page(Some(tok.clone())).await;
        assert_eq!(h["cache-control"], "private, no-store", "{name}");
        let d = island(&html).unwrap_or_else(|| panic!("{name}: no first screen"));
        let (_, api) = t.get("/api/v1/meals/elders", Some(&tok)).await;
        let (_, cs) = t.get("/api/v1/meals/canteens", None).await;
        assert_eq!(d["account"], name);
        assert_eq!(d["elders"], api["elders"], "{name}");
        assert_eq!(d["canteens"], cs["canteens"], "{name}");
        let ids: Vec<&str> = d["elders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let want: &[&str] = if name == "son" {
            &["E000003"]
        } else {
            &["E000001"]
        };
        assert_eq!(ids, want, "{name}");
        // The whole elder, balance included, for those who act for them.
        assert_eq!(
            d["elders"][0]["balance_fen"],
            api["elders"][0]["balance_fen"]
        );
        if name == "son" {
            assert_eq!(d["elders"][0]["name"], odd.name.as_str());
            // Exactly one `</script>` after the island's opening: its own.
            assert!(!html.contains("</script><script>alert"), "{html}");
            assert!(!html.contains('\u{2028}'));
        } else {
            assert!(!html.contains("E000003") && !html.contains("alert(1)"));
        }
        assert!(!html.contains("E000002"), "{name} sees another's elder");
    }
    // A citizen with no elder gets an empty list; staff, anonymous and a bad cookie
    // get the plain page (which asks the API).
    let (html, _) = page(Some(who(&t, "stranger", Role::Citizen, None))).await;
    assert_eq!(island(&html).unwrap()["elders"], json!([]));
    for tok in [
        Some(who(&t, "cook", Role::Handler, None)),
        Some(who(&t, "officer", Role::DistrictOfficer, None)),
        Some("not-a-token".to_string()),
        None,
    ] {
        let (html, h) = page(tok).await;
        assert!(island(&html).is_none(), "{html}");
        assert!(!html.contains("E00000"));
        assert_eq!(h["cache-control"], "no-cache");
        assert!(html.contains("<script src=\"/ui/meals.js\">"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elders_page_carries_its_first_screen_sqlite() {
    page_first_screen(TestApp::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elders_page_carries_its_first_screen_postgres() {
    if let Some(t) = TestApp::postgres() {
        page_first_screen(t).await;
    }
}
