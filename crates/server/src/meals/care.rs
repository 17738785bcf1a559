//! The care link: a delivery nobody answered, or a lone elder who missed their usual
//! meal two days running without cancelling, opens a welfare check (独居老人关爱探访) for
//! the residents' committee through the case engine — its text carries the elder's
//! number, age and community only, never a name, phone or address. And the livelihood
//! vital signs the room computes: elders served today, deliveries not handed over and
//! deliveries handed over late (after noon),
//! per sub-district and for the district, through the `indicator_value` port.

use super::book::{row, Book, Elder, Welfare};
use super::{book, write};
use crate::http::error::ApiError;
use crate::AppState;
use cityos_core::case::Channel;
use cityos_core::meals::{Meal, OrderState};
use cityos_core::time::{local_date, local_time_of_day, Date, Millis, HOUR};
use cityos_core::workflow::NewReport;
use std::collections::{HashMap, HashSet};

/// The case category of a welfare check.
pub const WELFARE_CATEGORY: &str = "lone_elder_welfare_check";
/// Elders served a meal today (per sub-district and district).
pub const SERVED: &str = "meal_elders_served";
/// Deliveries not handed over today.
pub const MISSED: &str = "meal_deliveries_missed";
/// Deliveries handed over after noon today (the round leaves at 11:00).
pub const LATE: &str = "meal_deliveries_late";
/// A delivery handed over after this time of day is late.
pub const LATE_AFTER: Millis = 12 * HOUR;

/// The case text: the elder by number, age and community; no personal details.
pub fn welfare_text(
    st: &AppState,
    e: &Elder,
    reason: &str,
    order: Option<&str>,
    now: Millis,
) -> String {
    let t = &st.0.cfg.territory;
    let community = t
        .by_code(&e.community)
        .map(|r| t.region(r).name_zh.clone())
        .unwrap_or_default();
    let age = Date::parse(&e.birth)
        .map(|d| cityos_core::meals::age_on(d, local_date(now)))
        .unwrap_or(0);
    let what = match reason {
        "undelivered" => format!(
            "助餐送餐上门无人应答（订单 {}），请居委会上门探访。",
            order.unwrap_or("")
        ),
        _ => "独居老人连续两天未取用常订的助餐且未取消，请居委会上门探访。".to_string(),
    };
    format!(
        "为老助餐关爱探访：{what}对象：助餐编号 {}，{age}岁{}，{community}。姓名、住址与家属电话请在助餐系统中由授权人员查看。",
        e.id,
        if e.lone { "，独居" } else { "" },
    )
}

/// Opens a welfare check once per `key` (an order, or an elder and day).
pub async fn open(
    st: &AppState,
    b: &mut Book,
    e: &Elder,
    key: &str,
    reason: &str,
    order: Option<&str>,
    now: Millis,
) -> Result<Option<String>, ApiError> {
    if b.welfare.contains_key(key) {
        return Ok(None);
    }
    let report = NewReport {
        channel: Channel::Data,
        category: WELFARE_CATEGORY.into(),
        lon: e.lon,
        lat: e.lat,
        text: welfare_text(st, e, reason, order, now),
        contact: None,
        at: now,
        media: vec![],
        priority: None,
        playbook: None,
        suggestion: None,
    };
    let number = file_once(st, report, key, now).await?;
    let w = Welfare {
        key: key.into(),
        elder: e.id.clone(),
        reason: reason.into(),
        case: number.clone(),
        at: now,
    };
    let mut rows = vec![row("welfare", key, &w, now)];
    let mut o2 = None;
    if let Some(oid) = order {
        if let Some(o) = b.orders.get(oid) {
            let mut o = o.clone();
            o.case = Some(number.clone());
            rows.push(row("order", oid, &o, now));
            o2 = Some(o);
        }
    }
    write(st, b.epoch, rows, vec![]).await?;
    if let Some(o) = o2 {
        b.put_order(o);
    }
    crate::http::log::event(
        "meals_welfare_check",
        &[("elder", &e.id), ("reason", &reason), ("case", &number)],
    );
    b.welfare.insert(key.into(), w);
    Ok(Some(number))
}

/// Files the welfare check's report once per `key` (see `cases::file_report_once`): a
/// retry after the case was filed but before the room's row was written finds the case.
async fn file_once(
    st: &AppState,
    report: NewReport,
    key: &str,
    now: Millis,
) -> Result<String, ApiError> {
    let key = format!("meals-welfare:{key}");
    Ok(crate::cases::file_report_once(st, report, &key, now)
        .await?
        .1)
}

/// Did the elder have their meal, or say they would not (cancelled), on `date`?
fn accounted(b: &Book, elder: &str, date: &str, meal: Meal) -> bool {
    b.orders_of(elder).iter().any(|o| {
        o.date == date
            && o.meal == meal
            && matches!(
                o.state,
                OrderState::Served
                    | OrderState::Cancelled
                    | OrderState::Placed
                    | OrderState::OutForDelivery
            )
            && !(o.state == OrderState::Placed && o.round == cityos_core::meals::Round::Pickup)
    })
}

/// Lone elders with a usual meal who missed it on each of the last two days (today
/// counts once its lunch is over, after 14:00). Opens their welfare checks; answers the
/// case numbers.
pub async fn missed_meals(st: &AppState, now: Millis) -> Result<Vec<String>, ApiError> {
    let mut b = book(st).await?;
    let today = local_date(now);
    let last = if local_time_of_day(now) >= 14 * HOUR {
        today
    } else {
        Date::from_days(today.days() - 1)
    };
    let before = Date::from_days(last.days() - 1);
    let (l, p) = (last.to_string(), before.to_string());
    let due: Vec<Elder> = b
        .elders
        .values()
        .filter(|e| e.lone && e.registered_at < before.local_midnight())
        .filter_map(|e| e.usual.as_ref().map(|u| (e, u.meal)))
        .filter(|(e, m)| !accounted(&b, &e.id, &l, *m) && !accounted(&b, &e.id, &p, *m))
        .filter(|(e, _)| {
            !b.welfare.contains_key(&format!("missed:{}:{l}", e.id))
                && !b.welfare.contains_key(&format!("missed:{}:{p}", e.id))
        })
        .map(|(e, _)| e.clone())
        .collect();
    let mut cases = Vec::new();
    for e in due {
        if let Some(c) = open(
            st,
            &mut b,
            &e,
            &format!("missed:{}:{l}", e.id),
            "missed",
            None,
            now,
        )
        .await?
        {
            cases.push(c);
        }
    }
    Ok(cases)
}

/// One community's meal coverage on a day: elders registered there, elders served a
/// meal (each once), deliveries handed over late (after noon) and deliveries not handed
/// over. The vital signs' sub-district and district values are these rows' sums.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    pub subdistrict: String,
    pub registered: u32,
    pub served: u32,
    pub late: u32,
    pub not_handed_over: u32,
}

/// The day's coverage per community (code → counts) of the elders `keep` admits: every
/// community with a registered elder has a row, served or not.
pub fn coverage(
    b: &Book,
    date: &str,
    keep: impl Fn(&Elder) -> bool,
) -> std::collections::BTreeMap<String, Coverage> {
    let mut rows: std::collections::BTreeMap<String, Coverage> = Default::default();
    for e in b.elders.values().filter(|e| keep(e)) {
        let r = rows.entry(e.community.clone()).or_default();
        r.subdistrict.clone_from(&e.subdistrict);
        r.registered += 1;
    }
    let mut served: HashSet<&str> = HashSet::new();
    for o in b.orders.values().filter(|o| o.date == date) {
        let Some(e) = b.elders.get(&o.elder) else {
            continue;
        };
        let Some(r) = rows.get_mut(&e.community) else {
            continue;
        };
        match o.state {
            OrderState::Served => {
                if served.insert(e.id.as_str()) {
                    r.served += 1;
                }
                if o.round.is_delivery()
                    && o.served_at
                        .is_some_and(|t| local_time_of_day(t) > LATE_AFTER)
                {
                    r.late += 1;
                }
            }
            OrderState::NotHandedOver => r.not_handed_over += 1,
            _ => {}
        }
    }
    rows
}

/// Feeds the day's meal vital signs for every sub-district and the district: the sums of
/// [`coverage`]'s community rows (the vital signs have no community level; the community
/// rows are `GET /api/v1/meals/coverage`).
pub fn publish(st: &AppState, b: &Book, date: &str, now: Millis) {
    if local_date(now).to_string() != date {
        return;
    }
    let mut subs: HashMap<String, Coverage> = HashMap::new();
    for r in coverage(b, date, |_| true).into_values() {
        let s = subs.entry(r.subdistrict.clone()).or_default();
        s.served += r.served;
        s.late += r.late;
        s.not_handed_over += r.not_handed_over;
    }
    let t = &st.0.cfg.territory;
    let district = t.region(t.root()).code.clone();
    let (mut all_s, mut all_m, mut all_l) = (0u32, 0u32, 0u32);
    for (s, c) in &subs {
        all_s += c.served;
        all_m += c.not_handed_over;
        all_l += c.late;
        let _ = (st.0.ports.indicator_value)(st, LATE, s, c.late as f64, now);
        let _ = (st.0.ports.indicator_value)(st, SERVED, s, c.served as f64, now);
        let _ = (st.0.ports.indicator_value)(st, MISSED, s, c.not_handed_over as f64, now);
    }
    let _ = (st.0.ports.indicator_value)(st, SERVED, &district, all_s as f64, now);
    let _ = (st.0.ports.indicator_value)(st, MISSED, &district, all_m as f64, now);
    let _ = (st.0.ports.indicator_value)(st, LATE, &district, all_l as f64, now);
}
