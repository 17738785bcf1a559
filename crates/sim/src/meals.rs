//! 为老助餐 in the demo: the canteens file (`cityos meals generate` writes
//! `data/xuhui/meals/canteens.csv` — 9 canteens and 49 meal points placed in the
//! territory's real sub-districts and communities), the elders (about 3,000, invented),
//! menus for every day, and the live simulator that orders through the day, sends the
//! rounds out, confirms handovers and runs the welfare check.
//!
//! Everything is deterministic for a seed; no name, phone or address here is a real
//! person's (phones are `000-…`, a pattern no real number has: [`fictional_phone`]).

use cityos_core::meals::{Dish, Line, Meal, Round};

/// A demo phone number that cannot be anyone's: eleven digits starting `000-` (no
/// Chinese number, mobile or fixed, starts with 000), the last four from `n`.
pub fn fictional_phone(n: u64) -> String {
    format!("000-{:04}-{:04}", (n / 10_000) % 10_000, n % 10_000)
}
use cityos_core::rng::{fnv1a, Rng};
use cityos_core::territory::{Level, Territory};
use cityos_core::time::{local_date, local_time_of_day, Date, Millis, HOUR, MINUTE};
use cityos_server::meals::book::{Canteen, Contact, Elder, Link, Usual};
use cityos_server::meals::demo::{parse_canteens, Seed, HEADER};
use cityos_server::AppState;

/// Canteens and meal points in the demo.
pub const CANTEENS: usize = 9;
pub const MEAL_POINTS: usize = 49;

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + ((a[1] - b[1]) * 1.17).powi(2)
}

fn short(name: &str) -> String {
    let s = name
        .trim_end_matches("居民委员会")
        .trim_end_matches("居委会")
        .trim_end_matches("村民委员会");
    s.replace(',', " ")
}

/// The canteens file: the 9 sub-districts with the most communities each get a canteen
/// (at their first community's interior point); 49 meal points go round the
/// sub-districts a community at a time, each served by its sub-district's canteen or
/// else the nearest one; a canteen delivers to its sub-district and to those whose
/// nearest canteen it is; three canteens run the driverless 11:00 round.
pub fn canteens_csv(t: &Territory) -> String {
    let mut subs: Vec<(u32, Vec<u32>)> = t
        .children(t.root())
        .iter()
        .copied()
        .filter(|&s| t.region(s).level == Level::Subdistrict)
        .map(|s| {
            let mut cs: Vec<u32> = t
                .children(s)
                .iter()
                .copied()
                .filter(|&c| t.region(c).level == Level::Community)
                .collect();
            cs.sort_by(|a, b| t.region(*a).code.cmp(&t.region(*b).code));
            (s, cs)
        })
        .filter(|(_, cs)| !cs.is_empty())
        .collect();
    subs.sort_by(|a, b| t.region(a.0).code.cmp(&t.region(b.0).code));
    let mut ranked: Vec<usize> = (0..subs.len()).collect();
    ranked.sort_by(|&a, &b| subs[b].1.len().cmp(&subs[a].1.len()).then(a.cmp(&b)));
    let with: Vec<usize> = {
        let mut w: Vec<usize> = ranked.into_iter().take(CANTEENS).collect();
        w.sort();
        w
    };
    let mut used = std::collections::HashSet::new();
    let mut canteens = Vec::new();
    for (k, &i) in with.iter().enumerate() {
        let (s, cs) = &subs[i];
        let c = cs[0];
        used.insert(c);
        let p = t.interior_point(c);
        canteens.push((format!("C{:02}", k + 1), *s, p));
    }
    let nearest = |p: [f64; 2], s: u32| -> usize {
        if let Some(k) = canteens.iter().position(|c| c.1 == s) {
            return k;
        }
        (0..canteens.len())
            .min_by(|&a, &b| dist2(canteens[a].2, p).total_cmp(&dist2(canteens[b].2, p)))
            .unwrap_or(0)
    };
    let mut points = Vec::new();
    let mut round = 0;
    while points.len() < MEAL_POINTS && round < 64 {
        for (s, cs) in &subs {
            if points.len() >= MEAL_POINTS {
                break;
            }
            if let Some(&c) = cs.iter().find(|c| !used.contains(*c)) {
                used.insert(c);
                let p = t.interior_point(c);
                points.push((c, *s, p, nearest(p, *s)));
            }
        }
        round += 1;
    }
    let mut out = String::from(HEADER);
    out.push('\n');
    for (k, (id, s, p)) in canteens.iter().enumerate() {
        let mut area: Vec<String> = vec![t.region(*s).code.clone()];
        for (s2, cs) in &subs {
            if *s2 != *s && nearest(t.interior_point(cs[0]), *s2) == k {
                area.push(t.region(*s2).code.clone());
            }
        }
        let sub = t.region(*s);
        out.push_str(&format!(
            "{id},canteen,{}长者食堂,{},{:.6},{:.6},06:30-18:30,120,300,-240,570,{},{},\n",
            short(&sub.name_zh)
                .trim_end_matches("街道")
                .trim_end_matches('镇'),
            sub.code,
            p[0],
            p[1],
            area.join(";"),
            if k % 3 == 0 { "yes" } else { "no" },
        ));
    }
    for (n, (c, s, p, k)) in points.iter().enumerate() {
        out.push_str(&format!(
            "P{:02},meal_point,{}助餐点,{},{:.6},{:.6},10:30-13:00,0,0,-240,570,,no,{}\n",
            n + 1,
            short(&t.region(*c).name_zh),
            t.region(*s).code,
            p[0],
            p[1],
            canteens[*k].0,
        ));
    }
    out
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙", "朱", "马", "胡", "郭",
    "林", "何", "高", "沈",
];
const GIVEN: &[&str] = &[
    "秀英", "桂英", "玉兰", "建国", "国强", "志明", "美华", "素珍", "根宝", "阿娣", "福生", "凤英",
    "德明", "丽娟", "金花", "永康", "惠芳", "宝林", "月琴", "雪梅",
];
const ROADS: &[&str] = &[
    "康健路",
    "田林路",
    "漕溪北路",
    "宜山路",
    "龙华西路",
    "斜土路",
    "天钥桥路",
    "虹漕路",
    "桂林路",
    "凌云路",
];

/// A dish of the demo's kitchens: name, price in fen, nutrition tags.
type DemoDish = (&'static str, i64, &'static [&'static str]);

const BREAKFAST: &[DemoDish] = &[
    ("白粥配酱菜", 300, &["soft", "low_salt"]),
    ("菜肉大馄饨", 600, &[]),
    ("豆浆油条", 400, &[]),
    ("杂粮粥", 350, &["soft", "diabetic"]),
    ("鸡蛋羹", 300, &["soft", "low_salt"]),
    ("素菜包", 250, &["vegetarian"]),
];
const LUNCH: &[DemoDish] = &[
    ("红烧鱼块套餐", 1500, &["soft"]),
    ("清蒸鸡胸套餐", 1400, &["low_salt", "diabetic"]),
    ("番茄炒蛋套餐", 1200, &["soft", "vegetarian"]),
    ("牛肉土豆套餐", 1600, &["halal"]),
    ("肉末豆腐套餐", 1300, &["soft", "low_salt"]),
    ("冬瓜虾仁套餐", 1600, &["low_salt"]),
    ("香菇青菜套餐", 1000, &["vegetarian", "diabetic"]),
    ("糖醋小排套餐", 1800, &[]),
];

/// A canteen's menu of a day: 4 breakfasts (B1–B4) and 5 lunches (L1–L5); the ids stay,
/// the dishes turn with the day so a usual order keeps working.
pub fn menu(canteen: &str, date: Date, meal: Meal) -> Vec<Dish> {
    let (list, n, p): (&[DemoDish], usize, &str) = match meal {
        Meal::Breakfast => (BREAKFAST, 4, "B"),
        Meal::Lunch => (LUNCH, 5, "L"),
    };
    let shift = (date.days() as usize + fnv1a(canteen.as_bytes()) as usize) % list.len();
    (0..n)
        .map(|i| {
            let (name, price, tags) = list[(shift + i) % list.len()];
            Dish {
                id: format!("{p}{}", i + 1),
                name: name.into(),
                price,
                tags: tags.iter().map(|t| t.to_string()).collect(),
            }
        })
        .collect()
}

/// The demo's elders (invented): spread over the communities of sub-districts with a
/// canteen serving them; a quarter live alone; 低保/特困/失能 a few; most have a usual
/// lunch — picked up at their nearest meal point, delivered by staff, or by the
/// driverless vehicle where their canteen runs it.
pub fn elders(t: &Territory, canteens: &[Canteen], n: usize, seed: u64, now: Millis) -> Vec<Elder> {
    let mut rng = Rng::new(seed);
    let kitchens: Vec<&Canteen> = canteens.iter().filter(|c| c.kitchen.is_none()).collect();
    let comms: Vec<u32> = t
        .regions()
        .filter(|(_, r)| r.level == Level::Community)
        .map(|(id, _)| id)
        .collect();
    let today = local_date(now);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let c = comms[rng.below(comms.len() as u64) as usize];
        let r = t.region(c);
        let sub = r
            .parent
            .map(|p| t.region(p).code.clone())
            .unwrap_or_default();
        let home = t.interior_point(c);
        let p = [
            home[0] + rng.range_f64(-0.0015, 0.0015),
            home[1] + rng.range_f64(-0.0012, 0.0012),
        ];
        let p = if r.contains(p[0], p[1]) { p } else { home };
        let k = kitchens
            .iter()
            .find(|k| k.delivery_area.contains(&sub))
            .or_else(|| {
                kitchens
                    .iter()
                    .min_by(|a, b| dist2([a.lon, a.lat], p).total_cmp(&dist2([b.lon, b.lat], p)))
            })
            .expect("a canteen");
        let point = canteens
            .iter()
            .filter(|x| x.id == k.id || x.kitchen.as_deref() == Some(k.id.as_str()))
            .min_by(|a, b| dist2([a.lon, a.lat], p).total_cmp(&dist2([b.lon, b.lat], p)))
            .map(|x| x.id.clone());
        let age = 60 + (rng.exp(12.0) as i64).min(40);
        let birth = Date::new(
            today.year - age as i32,
            1 + rng.below(12) as u8,
            1 + rng.below(28) as u8,
        )
        .unwrap_or(today);
        let delivers = k.delivery_area.contains(&sub);
        let round = match rng.below(100) {
            0..=59 => Round::Pickup,
            60..=84 if delivers => Round::Staff,
            _ if delivers && k.driverless => Round::Driverless,
            _ if delivers => Round::Staff,
            _ => Round::Pickup,
        };
        let mut statuses = Vec::new();
        if rng.chance(0.08) {
            statuses.push("dibao".to_string());
        } else if rng.chance(0.02) {
            statuses.push("tekun".to_string());
        }
        if rng.chance(0.05) {
            statuses.push("disabled".to_string());
        }
        let diet: Vec<String> = ["low_salt", "soft", "diabetic", "halal"]
            .iter()
            .filter(|_| rng.chance(0.15))
            .map(|s| s.to_string())
            .collect();
        let name = format!(
            "{}{}",
            SURNAMES[rng.below(SURNAMES.len() as u64) as usize],
            GIVEN[rng.below(GIVEN.len() as u64) as usize]
        );
        let usual = rng.chance(0.8).then(|| Usual {
            canteen: k.id.clone(),
            meal: Meal::Lunch,
            lines: vec![Line {
                dish: format!("L{}", 1 + rng.below(5)),
                qty: 1,
            }],
            round,
            point: (round == Round::Pickup).then(|| point.clone()).flatten(),
        });
        out.push(Elder {
            id: format!("E{:06}", i + 1),
            name,
            phone: fictional_phone(rng.below(100_000_000)),
            address: format!(
                "{}{}弄{}号{}室",
                ROADS[rng.below(ROADS.len() as u64) as usize],
                1 + rng.below(900),
                1 + rng.below(40),
                101 + rng.below(6) * 100 + rng.below(4)
            ),
            birth: birth.to_string(),
            subdistrict: sub,
            community: r.code.clone(),
            lon: p[0],
            lat: p[1],
            diet,
            lone: rng.chance(0.25),
            statuses,
            family: vec![Contact {
                name: format!(
                    "{}女士",
                    SURNAMES[rng.below(SURNAMES.len() as u64) as usize]
                ),
                phone: fictional_phone(rng.below(100_000_000)),
                relation: "女儿".into(),
            }],
            canteen: k.id.clone(),
            usual,
            registered_by: "subdistrict_officer:demo".into(),
            registered_at: now - 30 * 24 * HOUR,
        });
    }
    out
}

/// The demo's seed: elders, two demo accounts (`elder_demo` — the first elder
/// themself — and `family_demo`, the second elder's daughter), one canteen staff
/// account per canteen (`canteen_c01` …), menus from yesterday to a week ahead, opening
/// balances.
pub fn seed(t: &Territory, n: usize, now: Millis) -> Seed {
    let canteens = parse_canteens(cityos_server::meals::demo::CANTEENS).unwrap_or_default();
    let mut elders = elders(t, &canteens, n, 16, now);
    // The demo's own elder and the family's elder always have a usual lunch.
    for e in elders.iter_mut().take(2) {
        if e.usual.is_none() {
            e.usual = Some(Usual {
                canteen: e.canteen.clone(),
                meal: Meal::Lunch,
                lines: vec![Line {
                    dish: "L1".into(),
                    qty: 1,
                }],
                round: Round::Pickup,
                point: Some(e.canteen.clone()),
            });
        }
    }
    let mut links = vec![];
    if elders.len() >= 2 {
        links.push(Link {
            username: "elder_demo".into(),
            relation: "self".into(),
            target: elders[0].id.clone(),
        });
        links.push(Link {
            username: "family_demo".into(),
            relation: "family".into(),
            target: elders[1].id.clone(),
        });
    }
    for c in canteens.iter().filter(|c| c.kitchen.is_none()) {
        links.push(Link {
            username: format!("canteen_{}", c.id.to_lowercase()),
            relation: "staff".into(),
            target: c.id.clone(),
        });
    }
    let today = local_date(now);
    let mut menus = Vec::new();
    for d in -1..8 {
        let date = Date::from_days(today.days() + d);
        for c in canteens.iter().filter(|c| c.kitchen.is_none()) {
            for m in Meal::ALL {
                menus.push((c.id.clone(), date.to_string(), m, menu(&c.id, date, m)));
            }
        }
    }
    let top_ups = elders
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                20_000 + (fnv1a(e.id.as_bytes()) % 4) as i64 * 10_000,
            )
        })
        .collect();
    Seed {
        elders,
        links,
        menus,
        top_ups,
    }
}

/// Minute of the day (local) when something happens to an elder on a date: `lo..hi`.
fn at_minute(elder: &str, date: &str, what: &str, lo: i64, hi: i64) -> Millis {
    let h = fnv1a(format!("{elder}|{date}|{what}").as_bytes()) as i64;
    (lo + h.rem_euclid(hi - lo)) * MINUTE
}

/// One round of the live simulator at `now`: menus for the week ahead; lunch orders
/// between 06:00 and 09:20 (most elders their usual, a few cancel); the staff round
/// leaves at 10:40 and the driverless at 11:00; handovers 11:05–12:00 (about one in 150
/// nobody answers); pick-ups 11:00–12:30; the welfare check after 14:00. Answers how
/// many things it did.
pub async fn live_round(st: &AppState, now: Millis) -> usize {
    use cityos_server::meals::{api, book, care};
    let desk = cityos_server::http::auth::Principal {
        name: "meal-sim".into(),
        role: cityos_core::Role::DistrictOfficer,
        department: None,
        scope: None,
        channel: None,
        expires_at: now + HOUR,
    };
    let today = local_date(now);
    let ds = today.to_string();
    let tod = local_time_of_day(now);
    let mut done = 0;
    // Menus a week ahead.
    let missing: Vec<(String, String, Meal, Vec<Dish>)> = {
        let Ok(b) = book(st).await else { return 0 };
        let mut v = Vec::new();
        for d in 0..7 {
            let date = Date::from_days(today.days() + d);
            for c in b.canteens.values().filter(|c| c.kitchen.is_none()) {
                for m in Meal::ALL {
                    if !b.menus.contains_key(&(c.id.clone(), date.to_string(), m)) {
                        v.push((c.id.clone(), date.to_string(), m, menu(&c.id, date, m)));
                    }
                }
            }
        }
        v
    };
    if !missing.is_empty() {
        let _ = cityos_server::meals::demo::seed(
            st,
            Seed {
                menus: missing,
                ..Default::default()
            },
            now,
        )
        .await;
    }
    // Who orders now, who cancels.
    let (to_order, to_cancel, canteens) = {
        let Ok(b) = book(st).await else { return 0 };
        let mut order = Vec::new();
        let mut cancel = Vec::new();
        for e in b.elders.values() {
            if e.usual.is_none() || e.id == "E000001" || e.id == "E000002" {
                continue;
            }
            let h = fnv1a(format!("{}|{ds}|skip", e.id).as_bytes()) % 100;
            if h >= 70 {
                continue; // about 70 % order on a given day
            }
            let t = at_minute(&e.id, &ds, "order", 6 * 60, 9 * 60 + 20);
            let has = b.orders_of(&e.id).iter().any(|o| o.date == ds);
            if tod >= t && !has {
                order.push(e.id.clone());
            }
            if h < 2 && tod >= t + 20 * MINUTE && tod < 9 * HOUR + 25 * MINUTE {
                if let Some(o) = b.orders_of(&e.id).iter().find(|o| {
                    o.date == ds && o.live() && o.state == cityos_core::meals::OrderState::Placed
                }) {
                    cancel.push(o.id.clone());
                }
            }
        }
        let cs: Vec<String> = b
            .canteens
            .values()
            .filter(|c| c.kitchen.is_none())
            .map(|c| c.id.clone())
            .collect();
        (order, cancel, cs)
    };
    for e in to_order.into_iter().take(400) {
        let key = format!("sim-{e}-{ds}");
        let body = api::OrderIn {
            elder: e,
            usual: true,
            canteen: None,
            date: None,
            meal: None,
            lines: vec![],
            round: None,
            point: None,
            key: Some(key),
            make_usual: false,
        };
        if api::place(st, &desk, body).await.is_ok() {
            done += 1;
        }
    }
    for id in to_cancel {
        if api::cancel_by(st, &desk, &id).await.is_ok() {
            done += 1;
        }
    }
    // Rounds leave.
    for c in &canteens {
        for (r, at) in [
            (Round::Staff, 10 * HOUR + 40 * MINUTE),
            (Round::Driverless, 11 * HOUR),
        ] {
            if tod >= at && tod < 14 * HOUR && api::depart_by(st, &desk, c, r, today).await.is_ok()
            {
                done += 1;
            }
        }
    }
    // Handovers and pick-ups.
    let due: Vec<(String, bool)> = {
        let Ok(b) = book(st).await else { return done };
        b.orders
            .values()
            .filter(|o| o.date == ds)
            .filter_map(|o| {
                use cityos_core::meals::OrderState as S;
                let (ready, lo, hi) = match (o.round, o.state) {
                    (Round::Pickup, S::Placed) => (true, 11 * 60, 12 * 60 + 30),
                    (_, S::OutForDelivery) => (true, 11 * 60 + 5, 12 * 60),
                    _ => (false, 0, 1),
                };
                let t = at_minute(&o.id, &ds, "hand", lo, hi);
                let h = fnv1a(format!("{}|answer", o.id).as_bytes()) % 1000;
                if !ready || tod < t {
                    return None;
                }
                if o.round == Round::Pickup && h < 30 {
                    return None; // never collected
                }
                Some((o.id.clone(), o.round == Round::Pickup || h >= 7))
            })
            .take(400)
            .collect()
    };
    for (id, handed) in due {
        if api::handover_by(st, &desk, &id, handed).await.is_ok() {
            done += 1;
        }
    }
    if tod >= 14 * HOUR {
        if let Ok(c) = care::missed_meals(st, now).await {
            done += c.len();
        }
    }
    done
}

/// The live simulator: [`live_round`] every `every` until `stop`.
pub async fn live(
    st: AppState,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let _ = live_round(&st, st.now()).await;
        tokio::time::sleep(every).await;
    }
}
