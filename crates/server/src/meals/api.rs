//! The meals room's endpoints under `/api/v1/meals`: canteens and menus (public), elders
//! (registration, the desk's search, one elder's page), top-ups, orders (idempotent by
//! key; "my usual" in one request), cancellation with refund, the canteen's views
//! (kitchen list by dish, delivery rounds with the driverless stops, departure, handover)
//! and the day's summary.

use super::book::{ledger_row, row, Canteen, Contact, Elder, Link, Order, RoundRow, Usual};
use super::{actor, book, problem, write, Meals};
use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, SignedIn};
use crate::{AppState, Body, Q};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::meals::ledger::Entry;
use cityos_core::meals::{
    self as core, check_age, checkout, order_key, yuan, AgeError, CancelError, CheckoutError, Dish,
    Fen, Line, Meal, MealSlot, OrderState, Round, SlotUse,
};
use cityos_core::time::{format_rfc3339, local_date, Date, Millis};
use cityos_core::Role;
use serde::Deserialize;
use serde_json::{json, Value};

/// Nutrition tags a dish or a diet may carry.
pub const TAGS: [&str; 5] = ["low_salt", "soft", "diabetic", "halal", "vegetarian"];

fn tag_zh(t: &str) -> &'static str {
    match t {
        "low_salt" => "少盐",
        "soft" => "软烂",
        "diabetic" => "控糖",
        "halal" => "清真",
        "vegetarian" => "素食",
        _ => "",
    }
}

/// How the caller stands to an elder: `self`, `family`, `staff`, `worker`, `officer`.
pub fn relation(b: &book::Book, p: &Principal, e: &Elder) -> Option<&'static str> {
    let in_scope = |s: &Option<String>| {
        s.as_deref()
            .is_none_or(|s| e.community.starts_with(s) || e.subdistrict.starts_with(s))
    };
    match p.role {
        Role::Citizen => b
            .linked_elders(&p.name)
            .into_iter()
            .find(|(id, _)| *id == e.id)
            .map(|(_, r)| if r == "self" { "self" } else { "family" }),
        Role::Handler => {
            // Staff of the elder's home canteen, or of the canteen whose kitchen serves
            // the elder's meal point — never of another canteen nearby.
            let mine = b.staff_canteens(&p.name);
            let kitchen = b
                .canteens
                .get(e.canteen.as_str())
                .and_then(|h| h.kitchen.as_deref());
            let serves = mine.iter().any(|c| *c == e.canteen || kitchen == Some(*c));
            serves.then_some("staff")
        }
        Role::SubdistrictOfficer if p.scope.is_some() && in_scope(&p.scope) => Some("worker"),
        Role::DistrictOfficer if in_scope(&p.scope) => Some("officer"),
        _ => None,
    }
}

/// May the caller run a canteen's views (kitchen, rounds, handover)?
pub fn runs(b: &book::Book, p: &Principal, c: &Canteen) -> bool {
    match p.role {
        Role::Handler => b.staff_canteens(&p.name).contains(c.id.as_str()),
        Role::DistrictOfficer => p
            .scope
            .as_deref()
            .is_none_or(|s| c.subdistrict.starts_with(s)),
        Role::SubdistrictOfficer => p
            .scope
            .as_deref()
            .is_some_and(|s| c.subdistrict.starts_with(s)),
        _ => false,
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(Problem::NotFound, format!("{what} was not found"))
}

fn parse_date(s: Option<&str>, now: Millis) -> Result<Date, ApiError> {
    match s {
        None => Ok(local_date(now)),
        Some(s) => Date::parse(s).ok_or_else(|| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("date {s:?} must be YYYY-MM-DD"),
            )
        }),
    }
}

fn slot_of(c: &Canteen, date: Date, meal: Meal) -> MealSlot {
    MealSlot {
        date,
        meal,
        cutoff_min: c.cutoff_min.get(&meal).copied().unwrap_or(9 * 60 + 30),
        capacity: c.capacity.get(&meal).copied().unwrap_or(0),
    }
}

fn canteen_view(c: &Canteen) -> Value {
    json!({
        "id": c.id, "kind": c.kind, "name": c.name, "subdistrict": c.subdistrict,
        "lon": c.lon, "lat": c.lat, "hours": c.hours,
        "capacity": c.capacity, "cutoff_min": c.cutoff_min,
        "delivery_area": c.delivery_area, "driverless": c.driverless, "kitchen": c.kitchen,
    })
}

/// A name as the desk and the rounds show it to staff: the surname, then `*`.
pub fn mask_name(name: &str) -> String {
    let mut it = name.chars();
    match it.next() {
        Some(f) => std::iter::once(f).chain(it.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// A phone as the desk shows it: the last four digits.
pub fn mask_phone(phone: &str) -> String {
    let d: Vec<char> = phone.chars().filter(|c| c.is_ascii_digit()).collect();
    let tail: String = d[d.len().saturating_sub(4)..].iter().collect();
    format!("*******{tail}")
}

fn order_view(b: &book::Book, o: &Order) -> Value {
    let cname = b
        .canteens
        .get(&o.canteen)
        .map(|c| c.name.as_str())
        .unwrap_or("");
    let point = o
        .point
        .as_deref()
        .and_then(|p| b.canteens.get(p))
        .map(|c| c.name.clone());
    let dishes: Vec<String> = o
        .lines
        .iter()
        .map(|l| {
            if l.3 > 1 {
                format!("{}×{}", l.1, l.3)
            } else {
                l.1.clone()
            }
        })
        .collect();
    let how_zh = match o.round {
        Round::Pickup => format!("请到{}取餐", point.as_deref().unwrap_or(cname)),
        Round::Staff => "工作人员送餐上门".to_string(),
        Round::Driverless => "无人车11点送到".to_string(),
    };
    let how_en = match o.round {
        Round::Pickup => "pick it up at the canteen",
        Round::Staff => "staff bring it to your door",
        Round::Driverless => "the driverless vehicle brings it at 11:00",
    };
    let state_zh = match o.state {
        OrderState::Placed => "已订好",
        OrderState::OutForDelivery => "正在送餐",
        OrderState::Served => "已送达",
        OrderState::NotHandedOver => "送餐无人应答",
        OrderState::Cancelled => "已取消，钱已退回",
    };
    let d = Date::parse(&o.date);
    let day_zh = d
        .map(|d| format!("{}月{}日", d.month, d.day))
        .unwrap_or_default();
    json!({
        "id": o.id, "elder": o.elder, "canteen": o.canteen, "canteen_name": cname,
        "date": o.date, "meal": o.meal, "round": o.round, "point": o.point, "point_name": point,
        "lines": o.lines.iter().map(|l| json!({"dish": l.0, "name": l.1, "price_fen": l.2, "qty": l.3})).collect::<Vec<_>>(),
        "portions": o.portions, "state": o.state,
        "total_fen": o.total, "subsidy_fen": o.subsidy_total(),
        "subsidy": o.subsidy.iter().map(|(s, f)| json!({"source": s, "fen": f})).collect::<Vec<_>>(),
        "pay_fen": o.pay, "refunded_fen": o.refunded,
        "placed_at": format_rfc3339(o.placed_at),
        "say_zh": format!("{day_zh}{}：{}。{}。政府补贴{}元，您付{}元。{state_zh}。", o.meal.zh(), dishes.join("、"), how_zh, yuan(o.subsidy_total()), yuan(o.pay)),
        "say_en": format!("{} {} — {}; {}. Subsidy {} yuan, you pay {} yuan. {}.", o.date, o.meal.as_str(), dishes.join(", "), how_en, yuan(o.subsidy_total()), yuan(o.pay), o.state.as_str().replace('_', " ")),
    })
}

fn elder_view(b: &book::Book, e: &Elder, rel: &str, now: Millis) -> Value {
    let led = b.ledger(&e.id);
    let age = Date::parse(&e.birth).map(|d| core::age_on(d, local_date(now)));
    let orders: Vec<Value> = b
        .orders_of(&e.id)
        .into_iter()
        .take(10)
        .map(|o| order_view(b, o))
        .collect();
    let entries: Vec<Value> = led.entries().iter().rev().take(20).map(|x| json!({"seq": x.seq, "at": format_rfc3339(x.at), "kind": x.kind, "amount_fen": x.amount, "reference": x.paid_by()})).collect();
    let usual = e.usual.as_ref().map(|u| {
        let c = b.canteens.get(&u.canteen);
        json!({"canteen": u.canteen, "canteen_name": c.map(|c| c.name.clone()), "meal": u.meal, "lines": u.lines, "round": u.round, "point": u.point})
    });
    json!({
        "id": e.id, "relation": rel, "name": e.name, "phone": e.phone, "address": e.address,
        "birth": e.birth, "age": age, "subdistrict": e.subdistrict, "community": e.community,
        "diet": e.diet, "lone": e.lone, "statuses": e.statuses, "family": e.family,
        "canteen": e.canteen, "canteen_name": b.canteens.get(&e.canteen).map(|c| c.name.clone()),
        "usual": usual, "balance_fen": led.balance(), "ledger": entries, "orders": orders,
    })
}

/// `GET /api/v1/meals/canteens`: every canteen and meal point (public).
pub async fn list_canteens(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let b = book(&st).await?;
    Ok(Json(
        json!({"canteens": b.canteens.values().map(canteen_view).collect::<Vec<_>>()}),
    ))
}

/// `GET /api/v1/meals/communities`: the communities (居委会) of the sub-districts a canteen
/// or meal point serves — what the registration form offers (code, names, sub-district).
pub async fn list_communities(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let subs: std::collections::BTreeSet<String> = {
        let b = book(&st).await?;
        b.canteens
            .values()
            .flat_map(|c| {
                std::iter::once(c.subdistrict.clone()).chain(c.delivery_area.iter().cloned())
            })
            .collect()
    };
    let t = &st.0.cfg.territory;
    let mut out = Vec::new();
    for sub in &subs {
        let Some(sid) = t.by_code(sub) else { continue };
        let sr = t.region(sid);
        for &cid in t.children(sid) {
            let c = t.region(cid);
            if c.level == cityos_core::territory::Level::Community {
                out.push(json!({"code": c.code, "name": c.name_zh, "name_en": c.name_en, "subdistrict": sr.code, "subdistrict_name": sr.name_zh}));
            }
        }
    }
    Ok(Json(json!({ "communities": out })))
}

#[derive(Deserialize)]
pub struct DateQ {
    pub date: Option<String>,
    pub meal: Option<String>,
    pub canteen: Option<String>,
}

/// `GET /api/v1/meals/canteens/{id}/menu?date=`: the day's menus, open or closed, portions left.
pub async fn get_menu(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Q(q): Q<DateQ>,
) -> Result<Json<Value>, ApiError> {
    let now = st.now();
    let date = parse_date(q.date.as_deref(), now)?;
    let b = book(&st).await?;
    let c = b.canteens.get(&id).ok_or_else(|| not_found("canteen"))?;
    let kitchen = c.kitchen.clone().unwrap_or_else(|| c.id.clone());
    let k = b.canteens.get(&kitchen).unwrap_or(c);
    let ds = date.to_string();
    let meals: Vec<Value> = Meal::ALL
        .iter()
        .filter_map(|&m| {
            let dishes = b.menus.get(&(kitchen.clone(), ds.clone(), m))?;
            let slot = slot_of(k, date, m);
            let left = slot.capacity.saturating_sub(b.portions(&kitchen, &ds, m));
            Some(json!({
                "meal": m, "name_zh": m.zh(), "cutoff": format_rfc3339(slot.cutoff()),
                "open": now < slot.cutoff() && left > 0, "left": left,
                "dishes": dishes.iter().map(|d| json!({"id": d.id, "name": d.name, "price_fen": d.price, "tags": d.tags,
                    "tags_zh": d.tags.iter().map(|t| tag_zh(t)).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            }))
        })
        .collect();
    Ok(Json(
        json!({"canteen": c.id, "kitchen": kitchen, "name": c.name, "date": ds, "meals": meals}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuIn {
    pub date: String,
    pub meal: String,
    pub dishes: Vec<Dish>,
}

/// `PUT /api/v1/meals/canteens/{id}/menu`: set a day's menu of one meal (the canteen's
/// staff, the district officer, administrators).
pub async fn put_menu(
    State(st): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    body: Body<MenuIn>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.signed_in()?;
    let m = body.value;
    let now = st.now();
    let mut b = book(&st).await?;
    let c = b
        .canteens
        .get(&id)
        .ok_or_else(|| not_found("canteen"))?
        .clone();
    let sets_menus = matches!(p.role, Role::Admin | Role::DistrictOfficer)
        || (p.role == Role::Handler && runs(&b, &p, &c));
    if !sets_menus {
        return Err(ApiError::forbidden(
            "only the canteen's staff, the district officer and administrators set menus",
        ));
    }
    if c.kitchen.is_some() {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "a meal point has no kitchen: set the menu of the canteen that serves it",
        ));
    }
    let date = Date::parse(&m.date)
        .ok_or_else(|| ApiError::new(Problem::InvalidArgument, "date must be YYYY-MM-DD"))?;
    let meal = Meal::parse(&m.meal).ok_or_else(|| {
        ApiError::new(Problem::InvalidArgument, "meal must be breakfast or lunch")
    })?;
    if m.dishes.is_empty() || m.dishes.len() > 30 {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "a menu has 1 to 30 dishes",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, d) in m.dishes.iter().enumerate() {
        if d.id.trim().is_empty() || d.id.len() > 32 || !seen.insert(d.id.clone()) {
            return Err(ApiError::new(
                Problem::InvalidArgument,
                format!("dishes[{i}].id must be 1–32 characters and unique"),
            ));
        }
        if d.name.trim().is_empty() || d.name.chars().count() > 40 {
            return Err(ApiError::new(
                Problem::InvalidArgument,
                format!("dishes[{i}].name must be 1–40 characters"),
            ));
        }
        if d.price <= 0 || d.price > 100_000 {
            return Err(ApiError::new(
                Problem::InvalidArgument,
                format!("dishes[{i}].price must be whole fen between 1 and 100000"),
            ));
        }
        if let Some(t) = d.tags.iter().find(|t| !TAGS.contains(&t.as_str())) {
            return Err(ApiError::new(
                Problem::InvalidArgument,
                format!("dishes[{i}] has unknown tag {t:?} ({})", TAGS.join(", ")),
            ));
        }
    }
    let ds = date.to_string();
    write(
        &st,
        b.epoch,
        vec![book::Book::menu_row(&id, &ds, meal, &m.dishes, now)],
        vec![],
    )
    .await?;
    b.menus
        .insert((id.clone(), ds.clone(), meal), m.dishes.clone());
    Ok(Json(
        json!({"canteen": id, "date": ds, "meal": meal, "dishes": m.dishes}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElderIn {
    pub name: String,
    pub phone: String,
    pub address: String,
    pub birth_date: String,
    /// The community (居委会) region code.
    pub community: String,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub diet: Vec<String>,
    #[serde(default)]
    pub lone: bool,
    #[serde(default)]
    pub statuses: Vec<String>,
    #[serde(default)]
    pub family: Vec<Contact>,
    pub canteen: String,
    /// The elder's own citizen account, linked as `self` (community workers only).
    #[serde(default)]
    pub account: Option<String>,
}

fn phone_ok(s: &str) -> bool {
    let d: String = s.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (7..=12).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit())
}

/// `POST /api/v1/meals/elders`: register an elder (a community worker in their
/// sub-district, the district officer, or a family member — who is linked to the elder).
pub async fn register_elder(
    State(st): State<AppState>,
    caller: Caller,
    body: Body<ElderIn>,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    let e = body.value;
    let now = st.now();
    if !matches!(
        p.role,
        Role::Citizen | Role::SubdistrictOfficer | Role::DistrictOfficer
    ) {
        return Err(ApiError::forbidden(
            "elders are registered by a community worker or a family member",
        ));
    }
    let birth = Date::parse(&e.birth_date).ok_or_else(|| {
        problem(
            Problem::ImpossibleAge,
            "出生日期请写成 1945-03-08 这样",
            "write the date of birth like 1945-03-08",
        )
    })?;
    match check_age(birth, local_date(now)) {
        Ok(_) => {}
        Err(AgeError::Future) => {
            return Err(problem(
                Problem::ImpossibleAge,
                "出生日期在今天之后，请再核对一下",
                "the date of birth is after today; please check it",
            ))
        }
        Err(AgeError::Impossible(a)) => {
            return Err(problem(
                Problem::ImpossibleAge,
                &format!("按这个出生日期老人有{a}岁，请再核对一下"),
                &format!("that date of birth makes {a} years; please check it"),
            ))
        }
        Err(AgeError::TooYoung(a)) => {
            return Err(problem(
                Problem::UnderMealAge,
                &format!("助餐服务面向60岁及以上的老人，这位老人{a}岁"),
                &format!("the service is for people of 60 and over; this person is {a}"),
            ))
        }
    }
    let name = e.name.trim();
    if name.is_empty() || name.chars().count() > 40 {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "name must be 1–40 characters",
        ));
    }
    if !phone_ok(&e.phone)
        || e.family
            .iter()
            .any(|f| !phone_ok(&f.phone) || f.name.trim().is_empty())
    {
        return Err(ApiError::new(Problem::InvalidArgument, "phone numbers must be 7–12 digits (spaces and dashes allowed); family contacts need a name"));
    }
    if e.address.trim().is_empty() || e.address.chars().count() > 120 {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "address must be 1–120 characters",
        ));
    }
    if let Some(t) = e.diet.iter().find(|t| !TAGS.contains(&t.as_str())) {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            format!("unknown diet {t:?} ({})", TAGS.join(", ")),
        ));
    }
    if let Some(s) = e
        .statuses
        .iter()
        .find(|s| !st.0.meals.rules.knows_status(s))
    {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            format!(
                "unknown status {s:?} (the subsidy rules know: {})",
                st.0.meals
                    .rules
                    .statuses
                    .iter()
                    .map(|s| s.status.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if p.role == Role::Citizen && !e.statuses.is_empty() {
        return Err(ApiError::forbidden(
            "subsidy statuses (低保/特困/失能) are set by a community worker or the district officer, who check them",
        ));
    }
    let t = &st.0.cfg.territory;
    let rid = t
        .by_code(&e.community)
        .filter(|&r| t.region(r).level == cityos_core::territory::Level::Community)
        .ok_or_else(|| {
            ApiError::new(
                Problem::InvalidArgument,
                format!(
                    "community {:?} is not a community code of the district",
                    e.community
                ),
            )
        })?;
    let sub = t
        .region(rid)
        .parent
        .map(|p| t.region(p).code.clone())
        .unwrap_or_default();
    let [lon, lat] = match (e.lon, e.lat) {
        (Some(lon), Some(lat)) if t.region(rid).contains(lon, lat) => [lon, lat],
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Problem::InvalidArgument,
                "the position is not inside the community",
            ))
        }
        _ => t.interior_point(rid),
    };
    let inside = match p.scope.as_deref() {
        Some(s) => e.community.starts_with(s) || sub.starts_with(s),
        // A sub-district officer without a scope registers nobody.
        None => p.role != Role::SubdistrictOfficer,
    };
    if p.role != Role::Citizen && !inside {
        return Err(ApiError::forbidden("the elder lives outside your area"));
    }
    if e.account.is_some() && p.role == Role::Citizen {
        return Err(ApiError::forbidden(
            "only a community worker links an elder's own account",
        ));
    }
    let mut b = book(&st).await?;
    if b.canteens
        .get(&e.canteen)
        .is_none_or(|c| c.kitchen.is_some())
    {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            format!(
                "canteen {:?} is not one of the district's canteens",
                e.canteen
            ),
        ));
    }
    let n = b
        .elders
        .keys()
        .filter_map(|k| k.trim_start_matches('E').parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let elder = Elder {
        id: format!("E{n:06}"),
        name: name.to_string(),
        phone: e.phone.clone(),
        address: e.address.trim().to_string(),
        birth: birth.to_string(),
        subdistrict: sub,
        community: e.community.clone(),
        lon,
        lat,
        diet: e.diet,
        lone: e.lone,
        statuses: e.statuses,
        family: e.family,
        canteen: e.canteen,
        usual: None,
        registered_by: actor(&p),
        registered_at: now,
    };
    let mut links = Vec::new();
    if p.role == Role::Citizen {
        links.push(Link {
            username: p.name.clone(),
            relation: "family".into(),
            target: elder.id.clone(),
        });
    }
    if let Some(a) = &e.account {
        links.push(Link {
            username: a.clone(),
            relation: "self".into(),
            target: elder.id.clone(),
        });
    }
    let mut rows = vec![row("elder", &elder.id, &elder, now)];
    for l in &links {
        rows.push(row("link", &format!("{}|{}", l.username, l.target), l, now));
    }
    write(&st, b.epoch, rows, vec![]).await?;
    for l in links {
        b.put_link(l);
    }
    b.put_elder(elder.clone());
    let rel = relation(&b, &p, &elder).unwrap_or("family");
    Ok((StatusCode::CREATED, Json(elder_view(&b, &elder, rel, now))).into_response())
}

#[derive(Deserialize)]
pub struct EldersQ {
    pub q: Option<String>,
}

/// `GET /api/v1/meals/elders?q=`: a citizen's own elders (self and family, whole); for
/// the desk (staff, workers, officers) up to 20 matches by id, phone's last four digits
/// or name, masked.
pub async fn list_elders(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Q(q): Q<EldersQ>,
) -> Result<Json<Value>, ApiError> {
    let now = st.now();
    let b = book(&st).await?;
    if p.role == Role::Citizen {
        let v: Vec<Value> = b
            .linked_elders(&p.name)
            .into_iter()
            .filter_map(|(id, rel)| {
                b.elders
                    .get(id)
                    .map(|e| elder_view(&b, e, if rel == "self" { "self" } else { "family" }, now))
            })
            .collect();
        return Ok(Json(json!({"elders": v})));
    }
    if !matches!(
        p.role,
        Role::Handler | Role::SubdistrictOfficer | Role::DistrictOfficer
    ) {
        return Err(ApiError::forbidden(
            "the elders' register is for canteen staff and community workers",
        ));
    }
    let q = q.q.unwrap_or_default().trim().to_string();
    if q.chars().count() < 2 {
        return Ok(Json(json!({"elders": []})));
    }
    let v: Vec<Value> = b.elders.values()
        .filter(|e| e.id == q || (q.len() == 4 && q.chars().all(|c| c.is_ascii_digit()) && e.phone.ends_with(&q)) || e.name.starts_with(&q))
        .filter(|e| relation(&b, &p, e).is_some())
        .take(20)
        .map(|e| json!({"id": e.id, "name": mask_name(&e.name), "phone": mask_phone(&e.phone), "community": e.community, "canteen": e.canteen, "lone": e.lone,
            "balance_fen": b.ledger(&e.id).balance(), "usual": e.usual.is_some()}))
        .collect();
    Ok(Json(json!({"elders": v})))
}

/// `GET /api/v1/meals/elders/{id}`: one elder whole, for those who may act for them.
pub async fn get_elder(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st).await?;
    let e = b.elders.get(&id).ok_or_else(|| not_found("elder"))?;
    let rel = relation(&b, &p, e).ok_or_else(|| not_found("elder"))?;
    let view = elder_view(&b, e, rel, st.now());
    drop(b);
    // Staff and officers reading an elder's whole record (name, phone, address, family
    // contacts) leave an entry in the audit trail; the elder and their family do not.
    if !matches!(rel, "self" | "family") {
        st.0.audit
            .record_soon(
                &st,
                &p.name,
                "meal_elder_read",
                &id,
                json!({ "relation": rel }),
            )
            .await?;
    }
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpIn {
    pub amount_fen: i64,
    /// The client's idempotency key: a retry with the same key credits nothing more and
    /// answers the first top-up.
    pub key: Option<String>,
}

/// `POST /api/v1/meals/elders/{id}/top-ups`: money into the elder's meal account.
pub async fn top_up(
    State(st): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
    body: Body<TopUpIn>,
) -> Result<Json<Value>, ApiError> {
    let p = caller.signed_in()?;
    let now = st.now();
    let mut b = book(&st).await?;
    let e = b.elders.get(&id).ok_or_else(|| not_found("elder"))?;
    let rel = relation(&b, &p, e).ok_or_else(|| not_found("elder"))?;
    let by = if matches!(rel, "self" | "family") {
        "family"
    } else {
        "staff"
    };
    // Who paid: the family or the staff, and the account that did it.
    let payer = format!("{by}:{}", actor(&p));
    let key = body.value.key.as_deref();
    if let Some(k) = key {
        if k.is_empty()
            || k.len() > 64
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(problem(
                Problem::InvalidIdempotencyKey,
                "充值的幂等键须为1到64个字母、数字、- 或 _",
                "a top-up's key is 1 to 64 letters, digits, - or _",
            ));
        }
        if let Some(first) = b.ledger(&id).top_up_by_key(k) {
            if first.amount != body.value.amount_fen || first.paid_by() != payer {
                return Err(problem(
                    Problem::IdempotencyKeyReused,
                    "这个幂等键已用于另一笔充值，未重复入账",
                    "this key was used for another top-up; nothing was credited",
                ));
            }
            let first = first.clone();
            return Ok(Json(top_up_view(
                &id,
                &first,
                b.ledger(&id).balance(),
                true,
            )));
        }
    }
    let entry = b
        .ledger(&id)
        .top_up_paid(body.value.amount_fen, &payer, key, now)
        .map_err(|_| {
            problem(
                Problem::InvalidArgument,
                "充值金额请在 0.01 元到 5000 元之间（以分为单位）",
                "a top-up is between 1 and 500000 fen",
            )
        })?;
    write(&st, b.epoch, vec![], vec![ledger_row(&id, &entry)]).await?;
    b.apply_entry(&id, entry.clone());
    Ok(Json(top_up_view(
        &id,
        &entry,
        b.ledger(&id).balance(),
        false,
    )))
}

/// A top-up's answer: the balance, and the entry with who paid.
fn top_up_view(elder: &str, e: &Entry, balance: i64, replayed: bool) -> Value {
    json!({"elder": elder, "balance_fen": balance, "replayed": replayed,
        "entry": {"seq": e.seq, "at": format_rfc3339(e.at), "amount_fen": e.amount, "paid_by": e.paid_by()}})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    pub elder: String,
    /// Reorder "my usual" for the next meal still open.
    #[serde(default)]
    pub usual: bool,
    pub canteen: Option<String>,
    pub date: Option<String>,
    pub meal: Option<String>,
    #[serde(default)]
    pub lines: Vec<Line>,
    pub round: Option<String>,
    pub point: Option<String>,
    /// The client's idempotency key: the same key answers the same order.
    pub key: Option<String>,
    /// Make this order the elder's usual.
    #[serde(default)]
    pub make_usual: bool,
}

fn checkout_problem(e: CheckoutError) -> ApiError {
    match e {
        CheckoutError::Empty => problem(
            Problem::InvalidArgument,
            "请至少选一样菜",
            "choose at least one dish",
        ),
        CheckoutError::Quantity(n) => problem(
            Problem::InvalidArgument,
            &format!("一次最多订3份，这次是{n}份"),
            &format!("at most 3 portions an order ({n} asked)"),
        ),
        CheckoutError::NotOnMenu(d) => problem(
            Problem::DishNotOnMenu,
            &format!("菜品 {d} 不在这一餐的菜单上"),
            &format!("dish {d} is not on that meal's menu"),
        ),
        CheckoutError::AfterCutoff(t) => problem(
            Problem::MealAfterCutoff,
            &format!("这一餐 {} 已截止订餐", cityos_core::time::format_local(t)),
            &format!("orders closed at {}", cityos_core::time::format_local(t)),
        ),
        CheckoutError::OverCapacity(left) => problem(
            Problem::MealSoldOut,
            &format!("这一餐只剩{left}份了"),
            &format!("only {left} portions are left"),
        ),
        CheckoutError::Insufficient(bal, need) => problem(
            Problem::MealBalanceLow,
            &format!("账户还有{}元，这一餐需要自付{}元", yuan(bal), yuan(need)),
            &format!(
                "the balance is {} yuan; this meal needs {} yuan",
                yuan(bal),
                yuan(need)
            ),
        ),
    }
}

/// Places an order for a caller (the handler's work; the simulator and the bench use it
/// too). Answers the order's view and whether it was a replay of the same key.
pub async fn place(st: &AppState, p: &Principal, o: OrderIn) -> Result<(Value, bool), ApiError> {
    let now = st.now();
    let meals: &Meals = &st.0.meals;
    let mut b = book(st).await?;
    let e = b
        .elders
        .get(&o.elder)
        .ok_or_else(|| not_found("elder"))?
        .clone();
    relation(&b, p, &e).ok_or_else(|| not_found("elder"))?;
    let key = o.key.as_deref().map(|k| order_key(&e.id, k));
    if let Some(k) = &key {
        if let Some(id) = b.by_key.get(k) {
            // The first may still be on its way to the store: answered once it is there.
            let v = order_view(&b, &b.orders[id]);
            let barrier = super::barrier(st, b.epoch);
            drop(b);
            barrier.committed(st).await?;
            return Ok((v, true));
        }
    }
    let (canteen, meal, lines, round, point, date) = if o.usual {
        let u = e.usual.clone().ok_or_else(|| {
            problem(
                Problem::NoUsualMeal,
                "还没有“老样子”，先点一次餐，以后一下就能订",
                "no usual meal yet: order once and it becomes your usual",
            )
        })?;
        let c = b
            .canteens
            .get(&u.canteen)
            .ok_or_else(|| not_found("canteen"))?;
        // The next meal still open: today's, else tomorrow's.
        let today = local_date(now);
        let date = if now < slot_of(c, today, u.meal).cutoff() {
            today
        } else {
            today.succ()
        };
        (u.canteen, u.meal, u.lines, u.round, u.point, date)
    } else {
        let canteen = o.canteen.clone().unwrap_or_else(|| e.canteen.clone());
        let meal = match o.meal.as_deref() {
            None => Meal::Lunch,
            Some(m) => Meal::parse(m).ok_or_else(|| {
                ApiError::new(Problem::InvalidArgument, "meal must be breakfast or lunch")
            })?,
        };
        let round = match o.round.as_deref() {
            None => Round::Pickup,
            Some(r) => Round::parse(r).ok_or_else(|| {
                ApiError::new(
                    Problem::InvalidArgument,
                    "round must be pickup, staff or driverless",
                )
            })?,
        };
        let date = match o.date.as_deref() {
            None => local_date(now),
            Some(d) => Date::parse(d).ok_or_else(|| {
                ApiError::new(Problem::InvalidArgument, "date must be YYYY-MM-DD")
            })?,
        };
        (canteen, meal, o.lines.clone(), round, o.point.clone(), date)
    };
    let c = b
        .canteens
        .get(&canteen)
        .filter(|c| c.kitchen.is_none())
        .ok_or_else(|| {
            ApiError::new(
                Problem::InvalidArgument,
                format!("canteen {canteen:?} is not one of the district's canteens"),
            )
        })?
        .clone();
    let point = match round {
        Round::Pickup => {
            let pt = point.unwrap_or_else(|| c.id.clone());
            if !(pt == c.id
                || b.canteens
                    .get(&pt)
                    .is_some_and(|x| x.kitchen.as_deref() == Some(c.id.as_str())))
            {
                return Err(ApiError::new(
                    Problem::InvalidArgument,
                    format!("{pt:?} is not a pick-up point of canteen {}", c.id),
                ));
            }
            Some(pt)
        }
        _ => {
            if !c.delivery_area.contains(&e.subdistrict) {
                return Err(problem(
                    Problem::NoDelivery,
                    "这个食堂不送到您家，可以选到店取餐",
                    "this canteen does not deliver to your area; choose pick-up",
                ));
            }
            if round == Round::Driverless && (!c.driverless || meal != Meal::Lunch) {
                return Err(problem(
                    Problem::NoDelivery,
                    "无人车只在午餐11点送餐",
                    "the driverless vehicle runs only the 11:00 lunch round",
                ));
            }
            None
        }
    };
    let ds = date.to_string();
    let menu = b
        .menus
        .get(&(c.id.clone(), ds.clone(), meal))
        .cloned()
        .ok_or_else(|| {
            problem(
                Problem::DishNotOnMenu,
                &format!("{}{}没有供应", ds, meal.zh()),
                &format!("no {} is served on {ds}", meal.as_str()),
            )
        })?;
    let age = Date::parse(&e.birth)
        .map(|d| core::age_on(d, date).max(0) as u32)
        .unwrap_or(0);
    let led = b.ledger(&e.id);
    let req = core::Request {
        age,
        statuses: &e.statuses,
        slot: slot_of(&c, date, meal),
        menu: &menu,
        lines: &lines,
        balance: led.balance(),
        used: SlotUse {
            portions: b.portions(&c.id, &ds, meal),
            subsidised: b.subsidised(&e.id, &ds, meal),
        },
        now,
    };
    let bill = checkout(&meals.rules, &req).map_err(checkout_problem)?;
    let id = b.next_order_id(date);
    let pay = led
        .pay(bill.pay, &id, now)
        .map_err(|_| checkout_problem(CheckoutError::Insufficient(led.balance(), bill.pay)))?;
    let order = Order {
        id: id.clone(),
        elder: e.id.clone(),
        canteen: c.id.clone(),
        date: ds,
        meal,
        lines: bill.lines.clone(),
        portions: bill.portions,
        round,
        point,
        state: OrderState::Placed,
        total: bill.total,
        subsidy: bill.subsidy.clone(),
        pay: bill.pay,
        key: key.unwrap_or_else(|| format!("order:{id}")),
        placed_by: actor(p),
        placed_at: now,
        served_at: None,
        cancelled_at: None,
        refunded: 0,
        case: None,
    };
    let mut rows = vec![row("order", &id, &order, now)];
    let mut elder = None;
    if !o.usual && (e.usual.is_none() || o.make_usual) {
        let mut e2 = e.clone();
        e2.usual = Some(Usual {
            canteen: c.id.clone(),
            meal,
            lines: lines.clone(),
            round,
            point: order.point.clone(),
        });
        rows.push(row("elder", &e2.id, &e2, now));
        elder = Some(e2);
    }
    let ledger: Vec<_> = pay.iter().map(|x| ledger_row(&e.id, x)).collect();
    // The group commit: submitted in order, the book changed at once (the next order is
    // checked against it), the answer sent only once stored. A failed commit refuses
    // this order and has the book read again from the store.
    let pending = super::submit(st, b.epoch, rows, ledger);
    if let Some(x) = pay {
        b.apply_entry(&e.id, x);
    }
    if let Some(e2) = elder {
        b.put_elder(e2);
    }
    b.put_order(order);
    let mut v = order_view(&b, &b.orders[&id]);
    v["balance_fen"] = json!(b.ledger(&e.id).balance());
    drop(b);
    pending.committed(st).await?;
    Ok((v, false))
}

/// `POST /api/v1/meals/orders`: place an order (or "my usual" with `usual: true`).
pub async fn post_order(
    State(st): State<AppState>,
    caller: Caller,
    body: Body<OrderIn>,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    let (v, replayed) = place(&st, &p, body.value).await?;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(v)).into_response())
}

/// `POST /api/v1/meals/orders/{id}/cancel`: cancel and refund (the elder's side until
/// the cut-off; the canteen until it is served).
pub async fn cancel_order(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    cancel_by(&st, &p, &id).await.map(Json)
}

/// Cancels an order for a caller and refunds the elder's share.
pub async fn cancel_by(st: &AppState, p: &Principal, id: &str) -> Result<Value, ApiError> {
    let (p, id) = (p.clone(), id.to_string());
    let now = st.now();
    let mut b = book(st).await?;
    let o = b.orders.get(&id).ok_or_else(|| not_found("order"))?.clone();
    let e = b.elders.get(&o.elder).ok_or_else(|| not_found("order"))?;
    let c = b
        .canteens
        .get(&o.canteen)
        .ok_or_else(|| not_found("order"))?
        .clone();
    let by_staff = runs(&b, &p, &c);
    if !by_staff && relation(&b, &p, e).is_none() {
        return Err(not_found("order"));
    }
    let date = Date::parse(&o.date).ok_or_else(|| ApiError::internal("stored order date"))?;
    if o.state == OrderState::Cancelled {
        let mut v = order_view(&b, &o);
        v["balance_fen"] = json!(b.ledger(&o.elder).balance());
        return Ok(v);
    }
    core::cancel(o.state, slot_of(&c, date, o.meal).cutoff(), now, by_staff).map_err(
        |e| match e {
            CancelError::AfterCutoff(_) => problem(
                Problem::MealCancelClosed,
                "厨房已经开始做这一餐了，要取消请打电话给食堂",
                "the kitchen has started; to cancel now call the canteen",
            ),
            CancelError::State(s) => ApiError::new(
                Problem::TransitionNotAllowed,
                format!("an order that is {} cannot be cancelled", s.as_str()),
            ),
        },
    )?;
    let refund = b.ledger(&o.elder).refund(&id, now);
    let mut o2 = o.clone();
    o2.state = OrderState::Cancelled;
    o2.cancelled_at = Some(now);
    o2.refunded = refund.as_ref().map_or(0, |r| r.amount);
    write(
        st,
        b.epoch,
        vec![row("order", &id, &o2, now)],
        refund.iter().map(|r| ledger_row(&o.elder, r)).collect(),
    )
    .await?;
    if let Some(r) = refund {
        b.apply_entry(&o.elder, r);
    }
    b.put_order(o2);
    let mut v = order_view(&b, &b.orders[&id]);
    v["balance_fen"] = json!(b.ledger(&o.elder).balance());
    Ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverIn {
    /// Handed over (or picked up); `false`: nobody answered.
    pub handed: bool,
}

/// `POST /api/v1/meals/orders/{id}/handover`: the canteen confirms a meal handed over or
/// picked up — or that nobody answered the door, which opens a welfare check.
pub async fn handover(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
    body: Body<HandoverIn>,
) -> Result<Json<Value>, ApiError> {
    handover_by(&st, &p, &id, body.value.handed).await.map(Json)
}

/// Confirms a handover (or that nobody answered) for a caller.
pub async fn handover_by(
    st: &AppState,
    p: &Principal,
    id: &str,
    handed: bool,
) -> Result<Value, ApiError> {
    let (p, id) = (p.clone(), id.to_string());
    let now = st.now();
    let mut b = book(st).await?;
    let o = b.orders.get(&id).ok_or_else(|| not_found("order"))?.clone();
    let c = b
        .canteens
        .get(&o.canteen)
        .ok_or_else(|| not_found("order"))?
        .clone();
    if !runs(&b, &p, &c) {
        return Err(ApiError::forbidden(
            "only the canteen's staff confirm a handover",
        ));
    }
    let ok_state = match o.round {
        Round::Pickup => o.state == OrderState::Placed,
        _ => o.state == OrderState::OutForDelivery,
    };
    if !ok_state || (!handed && o.round == Round::Pickup) {
        return Err(ApiError::new(Problem::TransitionNotAllowed, format!("an order that is {} on the {} round cannot be confirmed so (a delivery must have departed)", o.state.as_str(), o.round.as_str())));
    }
    let mut o2 = o.clone();
    if handed {
        o2.state = OrderState::Served;
        o2.served_at = Some(now);
        write(st, b.epoch, vec![row("order", &id, &o2, now)], vec![]).await?;
        b.put_order(o2);
    } else {
        o2.state = OrderState::NotHandedOver;
        write(st, b.epoch, vec![row("order", &id, &o2, now)], vec![]).await?;
        b.put_order(o2);
        let e = b.elders.get(&o.elder).cloned();
        if let Some(e) = e {
            super::care::open(
                st,
                &mut b,
                &e,
                &format!("order:{id}"),
                "undelivered",
                Some(&id),
                now,
            )
            .await?;
        }
    }
    super::care::publish(st, &b, &o.date, now);
    Ok(order_view(&b, &b.orders[&id]))
}

fn canteen_for(b: &book::Book, p: &Principal, id: &str) -> Result<Canteen, ApiError> {
    let c = b.canteens.get(id).ok_or_else(|| not_found("canteen"))?;
    if !runs(b, p, c) {
        return Err(ApiError::forbidden(
            "only the canteen's staff and officers see its orders",
        ));
    }
    Ok(c.clone())
}

/// `GET /api/v1/meals/canteens/{id}/kitchen?date=&meal=`: what to cook, by dish.
pub async fn kitchen(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
    Q(q): Q<DateQ>,
) -> Result<Json<Value>, ApiError> {
    let now = st.now();
    let date = parse_date(q.date.as_deref(), now)?;
    let meal = match q.meal.as_deref() {
        None => Meal::Lunch,
        Some(m) => Meal::parse(m).ok_or_else(|| {
            ApiError::new(Problem::InvalidParameter, "meal must be breakfast or lunch")
        })?,
    };
    let b = book(&st).await?;
    let c = canteen_for(&b, &p, &id)?;
    let ds = date.to_string();
    let mut dishes: std::collections::BTreeMap<String, (String, u32, Vec<String>)> =
        Default::default();
    let mut by_round = std::collections::BTreeMap::<&str, u32>::new();
    for oid in b
        .by_slot
        .get(&(id.clone(), ds.clone(), meal))
        .into_iter()
        .flatten()
    {
        let o = &b.orders[oid];
        if !o.live() {
            continue;
        }
        *by_round.entry(o.round.as_str()).or_default() += o.portions;
        let diet = b
            .elders
            .get(&o.elder)
            .map(|e| e.diet.clone())
            .unwrap_or_default();
        for l in &o.lines {
            let d = dishes
                .entry(l.0.clone())
                .or_insert((l.1.clone(), 0, Vec::new()));
            d.1 += l.3;
            for t in &diet {
                if !d.2.contains(t) {
                    d.2.push(t.clone());
                }
            }
        }
    }
    let slot = slot_of(&c, date, meal);
    Ok(Json(json!({
        "canteen": id, "date": ds, "meal": meal, "cutoff": format_rfc3339(slot.cutoff()), "closed": now >= slot.cutoff(),
        "capacity": slot.capacity, "portions": by_round.values().sum::<u32>(), "by_round": by_round,
        "dishes": dishes.into_iter().map(|(k, (n, c, diets))| json!({"dish": k, "name": n, "portions": c, "diets": diets})).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/meals/canteens/{id}/rounds?date=`: the day's lunch rounds — the staff
/// round, the driverless vehicle's stops in order, the pick-ups per point.
pub async fn rounds(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path(id): Path<String>,
    Q(q): Q<DateQ>,
) -> Result<Json<Value>, ApiError> {
    let now = st.now();
    let date = parse_date(q.date.as_deref(), now)?;
    let b = book(&st).await?;
    let c = canteen_for(&b, &p, &id)?;
    let ds = date.to_string();
    let mut out = Vec::new();
    for r in [Round::Driverless, Round::Staff, Round::Pickup] {
        let mut orders: Vec<&Order> = b
            .by_slot
            .get(&(id.clone(), ds.clone(), Meal::Lunch))
            .into_iter()
            .flatten()
            .map(|i| &b.orders[i])
            .filter(|o| o.round == r && o.live())
            .collect();
        // Stops in order: nearest first from the canteen, then from each stop.
        let mut stops = Vec::new();
        let (mut x, mut y) = (c.lon, c.lat);
        while !orders.is_empty() {
            let (i, _) = orders
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let e = b.elders.get(&o.elder);
                    let (ex, ey) = e.map_or((x, y), |e| (e.lon, e.lat));
                    (i, (ex - x).powi(2) + (ey - y).powi(2))
                })
                .fold((0, f64::MAX), |a, v| if v.1 < a.1 { v } else { a });
            let o = orders.remove(i);
            let e = b.elders.get(&o.elder);
            if let Some(e) = e {
                (x, y) = (e.lon, e.lat);
            }
            stops.push(json!({
                "stop": stops.len() + 1, "order": o.id, "elder": o.elder,
                "name": e.map(|e| mask_name(&e.name)), "address": if r == Round::Pickup { None } else { e.map(|e| e.address.clone()) },
                "point": o.point, "portions": o.portions, "state": o.state,
                "dishes": o.lines.iter().map(|l| format!("{}×{}", l.1, l.3)).collect::<Vec<_>>(),
            }));
        }
        let dep = b.rounds.get(&(id.clone(), ds.clone(), r));
        out.push(
            json!({"round": r, "departs": if r == Round::Driverless { Some("11:00") } else { None },
            "departed_at": dep.map(|d| format_rfc3339(d.departed_at)), "stops": stops}),
        );
    }
    Ok(Json(json!({"canteen": id, "date": ds, "rounds": out})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartIn {
    pub date: Option<String>,
}

/// `POST /api/v1/meals/canteens/{id}/rounds/{round}/depart`: a delivery round leaves.
pub async fn depart(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Path((id, round)): Path<(String, String)>,
    body: Body<DepartIn>,
) -> Result<Json<Value>, ApiError> {
    let date = parse_date(body.value.date.as_deref(), st.now())?;
    let r = Round::parse(&round)
        .filter(|r| r.is_delivery())
        .ok_or_else(|| not_found("round"))?;
    depart_by(&st, &p, &id, r, date).await.map(Json)
}

/// A delivery round leaves, for a caller.
pub async fn depart_by(
    st: &AppState,
    p: &Principal,
    id: &str,
    r: Round,
    date: Date,
) -> Result<Value, ApiError> {
    let (p, id) = (p.clone(), id.to_string());
    let now = st.now();
    let mut b = book(st).await?;
    let _c = canteen_for(&b, &p, &id)?;
    let ds = date.to_string();
    if b.rounds.contains_key(&(id.clone(), ds.clone(), r)) {
        return Err(ApiError::new(
            Problem::TransitionNotAllowed,
            "this round has already departed",
        ));
    }
    let ids: Vec<String> = b
        .by_slot
        .get(&(id.clone(), ds.clone(), Meal::Lunch))
        .into_iter()
        .flatten()
        .filter(|i| b.orders[*i].round == r && b.orders[*i].state == OrderState::Placed)
        .cloned()
        .collect();
    let rr = RoundRow {
        canteen: id.clone(),
        date: ds.clone(),
        round: r,
        departed_at: now,
        departed_by: actor(&p),
    };
    let mut rows = vec![row("round", &format!("{id}|{ds}|{}", r.as_str()), &rr, now)];
    let mut changed = Vec::new();
    for i in &ids {
        let mut o = b.orders[i].clone();
        o.state = OrderState::OutForDelivery;
        rows.push(row("order", i, &o, now));
        changed.push(o);
    }
    write(st, b.epoch, rows, vec![]).await?;
    for o in changed {
        b.put_order(o);
    }
    b.rounds.insert((id.clone(), ds.clone(), r), rr);
    Ok(
        json!({"canteen": id, "date": ds, "round": r, "departed_at": format_rfc3339(now), "orders": ids.len()}),
    )
}

/// `GET /api/v1/meals/summary?date=&canteen=`: the day per canteen — orders, meals served,
/// not handed over, cancelled; what elders paid, subsidies by source, refunds. No one's
/// details.
pub async fn summary(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Q(q): Q<DateQ>,
) -> Result<Json<Value>, ApiError> {
    let now = st.now();
    let date = parse_date(q.date.as_deref(), now)?;
    let b = book(&st).await?;
    let ds = date.to_string();
    let visible = |c: &Canteen| match p.role {
        Role::Analyst | Role::Admin => true,
        _ => runs(&b, &p, c),
    };
    if !matches!(
        p.role,
        Role::Analyst
            | Role::Admin
            | Role::Handler
            | Role::DistrictOfficer
            | Role::SubdistrictOfficer
    ) {
        return Err(ApiError::forbidden("the day's summary is for staff"));
    }
    let mut rows = Vec::new();
    let mut all = json!({"orders": 0, "portions": 0, "served": 0, "not_handed_over": 0, "cancelled": 0, "paid_fen": 0, "refunded_fen": 0, "subsidy_fen": 0});
    let mut by_source = std::collections::BTreeMap::<String, Fen>::new();
    for c in b
        .canteens
        .values()
        .filter(|c| c.kitchen.is_none() && visible(c))
    {
        if q.canteen.as_deref().is_some_and(|x| x != c.id) {
            continue;
        }
        let mut s = json!({"canteen": c.id, "name": c.name, "orders": 0, "portions": 0, "served": 0, "not_handed_over": 0, "cancelled": 0, "paid_fen": 0, "refunded_fen": 0, "subsidy_fen": 0});
        for m in Meal::ALL {
            for oid in b
                .by_slot
                .get(&(c.id.clone(), ds.clone(), m))
                .into_iter()
                .flatten()
            {
                let o = &b.orders[oid];
                let add =
                    |s: &mut Value, k: &str, v: i64| s[k] = json!(s[k].as_i64().unwrap_or(0) + v);
                add(&mut s, "orders", 1);
                add(&mut s, "refunded_fen", o.refunded);
                add(&mut s, "paid_fen", o.pay - o.refunded);
                match o.state {
                    OrderState::Cancelled => add(&mut s, "cancelled", 1),
                    st => {
                        add(&mut s, "portions", o.portions as i64);
                        add(&mut s, "subsidy_fen", o.subsidy_total());
                        for (src, f) in &o.subsidy {
                            *by_source.entry(src.clone()).or_default() += f;
                        }
                        if st == OrderState::Served {
                            add(&mut s, "served", o.portions as i64);
                        }
                        if st == OrderState::NotHandedOver {
                            add(&mut s, "not_handed_over", 1);
                        }
                    }
                }
            }
        }
        for k in [
            "orders",
            "portions",
            "served",
            "not_handed_over",
            "cancelled",
            "paid_fen",
            "refunded_fen",
            "subsidy_fen",
        ] {
            all[k] = json!(all[k].as_i64().unwrap_or(0) + s[k].as_i64().unwrap_or(0));
        }
        rows.push(s);
    }
    all["subsidy_by_source"] = json!(by_source);
    Ok(Json(json!({"date": ds, "total": all, "canteens": rows})))
}

/// `GET /api/v1/meals/my-canteens`: the canteens the caller runs (the staff page's choice).
pub async fn my_canteens(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    let b = book(&st).await?;
    let v: Vec<Value> = b
        .canteens
        .values()
        .filter(|c| c.kitchen.is_none() && runs(&b, &p, c))
        .map(canteen_view)
        .collect();
    Ok(Json(json!({"canteens": v})))
}

/// What the elder's page needs for its first screen, rendered into the page itself
/// (`/ui/meals.html`, so the first screen waits for no API round trip): for a signed-in
/// citizen, the canteens and the citizen's own elders exactly as `GET /canteens` and
/// `GET /elders` answer them, with the account's name so the page uses it only for that
/// account. `None` for anyone else (the page then asks the API as before) or when the
/// book cannot be read.
pub async fn first_screen(st: &AppState, p: &Principal) -> Option<Value> {
    if p.role != Role::Citizen {
        return None;
    }
    let now = st.now();
    let b = book(st).await.ok()?;
    let elders: Vec<Value> = b
        .linked_elders(&p.name)
        .into_iter()
        .filter_map(|(id, rel)| {
            b.elders
                .get(id)
                .map(|e| elder_view(&b, e, if rel == "self" { "self" } else { "family" }, now))
        })
        .collect();
    Some(json!({
        "account": p.name,
        "canteens": b.canteens.values().map(canteen_view).collect::<Vec<_>>(),
        "elders": elders,
    }))
}

/// `GET /api/v1/meals/coverage?date=`: meal coverage per community on a day — elders
/// registered, elders served a meal, deliveries late (after noon) and not handed over —
/// with each sub-district's and the district's sums (the same figures the livelihood vital
/// signs carry for the sub-districts and the district; the vital signs have no community
/// level). Counts only, no one's details. Analysts and administrators see every
/// community, with the project's small-cell rule: a count under
/// [`cityos_core::privacy::MIN_CELL`] is `null`, and so is a complementary one wherever a
/// lone hidden count could be found by subtraction (`cityos_core::privacy::suppressed`, the
/// communities adding up to their sub-district, the sub-districts to the district;
/// `"suppressed": true` then); district and sub-district officers see their scope's
/// counts whole, canteen staff the communities of the elders their canteen serves;
/// others 403.
pub async fn coverage(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    Q(q): Q<DateQ>,
) -> Result<Json<Value>, ApiError> {
    if !matches!(
        p.role,
        Role::Analyst
            | Role::Admin
            | Role::Handler
            | Role::DistrictOfficer
            | Role::SubdistrictOfficer
    ) {
        return Err(ApiError::forbidden("meal coverage is for staff"));
    }
    let now = st.now();
    let date = parse_date(q.date.as_deref(), now)?.to_string();
    let rows = {
        let b = book(&st).await?;
        super::care::coverage(&b, &date, |e| {
            matches!(p.role, Role::Analyst | Role::Admin) || relation(&b, &p, e).is_some()
        })
    };
    let t = &st.0.cfg.territory;
    let names = |code: &str| {
        t.by_code(code)
            .map(|r| {
                let r = t.region(r);
                let en = r.name_en.clone().unwrap_or_else(|| r.name_zh.clone());
                (r.name_zh.clone(), en)
            })
            .unwrap_or_else(|| (code.to_string(), code.to_string()))
    };
    let mut subs = std::collections::BTreeMap::<String, super::care::Coverage>::new();
    let mut total = super::care::Coverage::default();
    let mut communities = Vec::new();
    for (code, r) in &rows {
        for s in [subs.entry(r.subdistrict.clone()).or_default(), &mut total] {
            s.registered += r.registered;
            s.served += r.served;
            s.late += r.late;
            s.not_handed_over += r.not_handed_over;
        }
        let (zh, en) = names(code);
        let mut v = json!(r);
        v["community"] = json!(code);
        v["name"] = json!(zh);
        v["name_en"] = json!(en);
        communities.push(v);
    }
    let mut subdistricts: Vec<Value> = subs
        .into_iter()
        .map(|(code, mut r)| {
            let (zh, en) = names(&code);
            r.subdistrict.clone_from(&code);
            let mut v = json!(r);
            v["name"] = json!(zh);
            v["name_en"] = json!(en);
            v
        })
        .collect();
    let mut total = json!(total);
    if let Some(o) = total.as_object_mut() {
        o.remove("subdistrict");
    }
    let whole_district = matches!(p.role, Role::Analyst | Role::Admin);
    if whole_district {
        suppress_small(&mut communities, &mut subdistricts, &mut total);
    }
    let mut out = json!({
        "date": date,
        "communities": communities,
        "subdistricts": subdistricts,
        "total": total,
    });
    if whole_district {
        out["suppressed"] = json!(true);
        out["min_cell"] = json!(cityos_core::privacy::MIN_CELL);
    }
    Ok(Json(out))
}

/// The four counts of a coverage row, in the order the suppression numbers them.
const COVERAGE_COUNTS: [&str; 4] = ["registered", "served", "late", "not_handed_over"];

/// Hides small counts of the coverage (see [`coverage`]) with the assistance summary's
/// rule: the cells are (sub-district, community), (sub-district, all) and (all, all).
fn suppress_small(communities: &mut [Value], subdistricts: &mut [Value], total: &mut Value) {
    use cityos_core::privacy::{suppressed, ALL};
    let counts = |v: &Value| COVERAGE_COUNTS.map(|k| v[k].as_u64().unwrap_or(0) as usize);
    let key = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut cells = std::collections::BTreeMap::new();
    for c in communities.iter() {
        cells.insert((key(c, "subdistrict"), key(c, "community")), counts(c));
    }
    for s in subdistricts.iter() {
        cells.insert((key(s, "subdistrict"), ALL.to_string()), counts(s));
    }
    cells.insert((ALL.to_string(), ALL.to_string()), counts(total));
    let hidden = suppressed(&cells);
    let blank = |v: &mut Value, cell: (String, String)| {
        for (i, k) in COVERAGE_COUNTS.iter().enumerate() {
            if hidden.contains(&(cell.clone(), i)) {
                v[*k] = Value::Null;
            }
        }
    };
    for c in communities.iter_mut() {
        let cell = (key(c, "subdistrict"), key(c, "community"));
        blank(c, cell);
    }
    for s in subdistricts.iter_mut() {
        let cell = (key(s, "subdistrict"), ALL.to_string());
        blank(s, cell);
    }
    blank(total, (ALL.to_string(), ALL.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_for_analysts_hides_small_counts_and_what_would_give_them_away() {
        let row = |sub: &str, c: Option<&str>, n: [u64; 4]| {
            let mut v = json!({"subdistrict": sub, "registered": n[0], "served": n[1],
                "late": n[2], "not_handed_over": n[3]});
            if let Some(c) = c {
                v["community"] = json!(c);
            }
            v
        };
        let mut communities = vec![
            row("S1", Some("C1"), [40, 30, 6, 7]),
            row("S1", Some("C2"), [20, 3, 9, 8]),
        ];
        let mut subs = vec![row("S1", None, [60, 33, 15, 15])];
        let mut total = json!({"registered": 60, "served": 33, "late": 15, "not_handed_over": 15});
        suppress_small(&mut communities, &mut subs, &mut total);
        // C2's 3 served is under 5; C1's 30 would give it away (33 − 30): hidden too.
        assert_eq!(communities[1]["served"], Value::Null);
        assert_eq!(communities[0]["served"], Value::Null);
        assert_eq!(subs[0]["served"], 33);
        assert_eq!(total["served"], 33);
        // Nothing else is small: shown.
        assert_eq!(communities[0]["registered"], 40);
        assert_eq!(communities[1]["late"], 9);
        assert_eq!(communities[0]["not_handed_over"], 7);
    }
}
