//! Checkout: an order for one meal slot (canteen × date × meal) priced from that day's
//! menu, the subsidy by the rules, the elder's share checked against the balance, the
//! cut-off and the slot's capacity; cancelling before the cut-off; idempotent order keys;
//! ages.

use super::ledger::Fen;
use super::rules::{Meal, SubsidyRules, MAX_AGE, MIN_AGE};
use crate::time::{Date, Millis, MINUTE};
use serde::{Deserialize, Serialize};

/// A dish on a day's menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dish {
    pub id: String,
    pub name: String,
    pub price: Fen,
    /// Nutrition tags: low_salt, soft, diabetic, halal …
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One line of an order: a dish and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub dish: String,
    #[serde(default = "one")]
    pub qty: u32,
}

fn one() -> u32 {
    1
}

/// How the meal reaches the elder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Round {
    /// Picked up at a canteen or meal point.
    Pickup,
    /// Delivered by canteen staff.
    Staff,
    /// Delivered by the driverless vehicle on its fixed 11:00 round.
    Driverless,
}

impl Round {
    pub fn parse(s: &str) -> Option<Round> {
        match s {
            "pickup" => Some(Round::Pickup),
            "staff" => Some(Round::Staff),
            "driverless" => Some(Round::Driverless),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Round::Pickup => "pickup",
            Round::Staff => "staff",
            Round::Driverless => "driverless",
        }
    }
    pub fn is_delivery(self) -> bool {
        self != Round::Pickup
    }
}

/// An order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Placed,
    /// On a delivery round that has left.
    OutForDelivery,
    /// Handed over (delivery) or picked up.
    Served,
    /// Delivery reached the door and nobody answered (a welfare check follows).
    NotHandedOver,
    Cancelled,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Placed => "placed",
            OrderState::OutForDelivery => "out_for_delivery",
            OrderState::Served => "served",
            OrderState::NotHandedOver => "not_handed_over",
            OrderState::Cancelled => "cancelled",
        }
    }
}

/// The slot an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MealSlot {
    pub date: Date,
    pub meal: Meal,
    /// Orders close this many minutes after the meal date's local midnight (negative:
    /// the evening before, e.g. −240 is 20:00 of the previous day).
    pub cutoff_min: i64,
    /// Portions the canteen cooks for the slot.
    pub capacity: u32,
}

impl MealSlot {
    /// When orders for the slot close.
    pub fn cutoff(&self) -> Millis {
        self.date.local_midnight() + self.cutoff_min * MINUTE
    }
}

/// What the slot and the elder already have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlotUse {
    /// Portions already ordered (not cancelled) in the slot.
    pub portions: u32,
    /// Has the elder a subsidised order of this meal on this date already?
    pub subsidised: bool,
}

/// An order as asked.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub age: u32,
    pub statuses: &'a [String],
    pub slot: MealSlot,
    pub menu: &'a [Dish],
    pub lines: &'a [Line],
    pub balance: Fen,
    pub used: SlotUse,
    pub now: Millis,
}

/// A priced order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bill {
    /// (dish id, name, unit price, qty)
    pub lines: Vec<(String, String, Fen, u32)>,
    pub portions: u32,
    pub total: Fen,
    /// The subsidy by source (once per elder, meal and day).
    pub subsidy: Vec<(String, Fen)>,
    /// What the elder's account pays: total − subsidy.
    pub pay: Fen,
}

impl Bill {
    pub fn subsidy_total(&self) -> Fen {
        self.subsidy.iter().map(|(_, f)| f).sum()
    }
}

/// Most portions one order may carry (an elder and a companion, not a party).
pub const MAX_PORTIONS: u32 = 3;

/// Why checkout refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutError {
    Empty,
    /// A quantity of 0 or more than [`MAX_PORTIONS`] in all.
    Quantity(u32),
    NotOnMenu(String),
    AfterCutoff(Millis),
    /// Portions left in the slot.
    OverCapacity(u32),
    /// (balance, needed)
    Insufficient(Fen, Fen),
}

/// Prices an order and checks it: menu, quantity, cut-off, capacity, balance (in that
/// order, so the message names the first thing the elder can act on).
pub fn checkout(rules: &SubsidyRules, r: &Request) -> Result<Bill, CheckoutError> {
    if r.lines.is_empty() {
        return Err(CheckoutError::Empty);
    }
    let mut lines = Vec::new();
    let mut portions = 0u32;
    let mut total: Fen = 0;
    for l in r.lines {
        let Some(d) = r.menu.iter().find(|d| d.id == l.dish) else {
            return Err(CheckoutError::NotOnMenu(l.dish.clone()));
        };
        if l.qty == 0 {
            return Err(CheckoutError::Quantity(0));
        }
        portions = portions.saturating_add(l.qty);
        total += d.price * Fen::from(l.qty);
        lines.push((d.id.clone(), d.name.clone(), d.price, l.qty));
    }
    if portions > MAX_PORTIONS {
        return Err(CheckoutError::Quantity(portions));
    }
    if r.now >= r.slot.cutoff() {
        return Err(CheckoutError::AfterCutoff(r.slot.cutoff()));
    }
    let left = r.slot.capacity.saturating_sub(r.used.portions);
    if portions > left {
        return Err(CheckoutError::OverCapacity(left));
    }
    let subsidy = if r.used.subsidised {
        Vec::new()
    } else {
        // One portion's worth: the subsidy is per elder per meal, priced on the dearest
        // dish so the cap (min self-pay) is fair.
        let one = lines.iter().map(|l| l.2).max().unwrap_or(0);
        rules.subsidy(r.age, r.statuses, r.slot.meal, one)
    };
    let pay = total - subsidy.iter().map(|(_, f)| f).sum::<Fen>();
    if r.balance < pay {
        return Err(CheckoutError::Insufficient(r.balance, pay));
    }
    Ok(Bill {
        lines,
        portions,
        total,
        subsidy,
        pay,
    })
}

/// Why a cancellation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelError {
    /// The kitchen has started (past the cut-off); only canteen staff may cancel now.
    AfterCutoff(Millis),
    /// Already served, delivered, or cancelled.
    State(OrderState),
}

/// May an order in `state` be cancelled at `now`? The elder and family until the
/// cut-off; canteen staff (`by_staff`) until it is served.
pub fn cancel(
    state: OrderState,
    slot_cutoff: Millis,
    now: Millis,
    by_staff: bool,
) -> Result<(), CancelError> {
    match state {
        OrderState::Placed | OrderState::OutForDelivery | OrderState::NotHandedOver => {}
        other => return Err(CancelError::State(other)),
    }
    if !by_staff && now >= slot_cutoff {
        return Err(CancelError::AfterCutoff(slot_cutoff));
    }
    if !by_staff && state != OrderState::Placed {
        return Err(CancelError::State(state));
    }
    Ok(())
}

/// The stored key of a client's idempotency key: per elder, so one family's key cannot
/// replay another elder's order.
pub fn order_key(elder: &str, client_key: &str) -> String {
    format!(
        "{:016x}",
        crate::rng::fnv1a(format!("{elder}\u{1f}{client_key}").as_bytes())
    )
}

/// Whole years of age on `on` for someone born on `birth`.
pub fn age_on(birth: Date, on: Date) -> i32 {
    let mut a = on.year - birth.year;
    if (on.month, on.day) < (birth.month, birth.day) {
        a -= 1;
    }
    a
}

/// Why a birth date was refused at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeError {
    /// Born after today.
    Future,
    /// Under the service's age (the age).
    TooYoung(i32),
    /// Older than anyone plausibly is (the age).
    Impossible(i32),
}

/// The age of an elder born on `birth` registering on `today`, or why not.
pub fn check_age(birth: Date, today: Date) -> Result<u32, AgeError> {
    if birth > today {
        return Err(AgeError::Future);
    }
    let a = age_on(birth, today);
    if a > MAX_AGE as i32 {
        return Err(AgeError::Impossible(a));
    }
    if a < MIN_AGE as i32 {
        return Err(AgeError::TooYoung(a));
    }
    Ok(a as u32)
}
