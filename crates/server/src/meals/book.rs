//! The meals room's records in memory and their rows: canteens and meal points, menus,
//! elders, account links, orders, delivery rounds, the elders' ledgers and the welfare
//! checks opened. Changing methods return the rows to write; `apply_*` puts them in
//! memory once written.

use cityos_core::meals::{Dish, Entry, EntryKind, Fen, Ledger, Line, Meal, OrderState, Round};
use cityos_core::time::{Date, Millis};
use cityos_engine::store::{MealLedgerRow, MealRow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The kinds of rows, in the order they are loaded.
pub const KINDS: [&str; 7] = [
    "canteen", "menu", "elder", "link", "order", "round", "welfare",
];

/// A canteen (长者食堂) or a meal point (助餐点).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Canteen {
    pub id: String,
    /// `canteen` or `meal_point`.
    pub kind: String,
    pub name: String,
    pub subdistrict: String,
    pub lon: f64,
    pub lat: f64,
    /// Opening hours, e.g. "06:30-18:30".
    pub hours: String,
    /// Portions cooked per meal.
    pub capacity: BTreeMap<Meal, u32>,
    /// Orders close this many minutes after the meal day's midnight (negative: the
    /// evening before).
    pub cutoff_min: BTreeMap<Meal, i64>,
    /// Delivers to these sub-districts (a canteen's delivery area); empty: pick-up only.
    #[serde(default)]
    pub delivery_area: Vec<String>,
    /// Has the driverless vehicle's 11:00 round.
    #[serde(default)]
    pub driverless: bool,
    /// A meal point is served by this canteen (its kitchen).
    #[serde(default)]
    pub kitchen: Option<String>,
}

/// A family contact of an elder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Contact {
    pub name: String,
    pub phone: String,
    #[serde(default)]
    pub relation: String,
}

/// The elder's usual meal ("我的老样子"): one tap reorders it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Usual {
    pub canteen: String,
    pub meal: Meal,
    pub lines: Vec<Line>,
    pub round: Round,
    #[serde(default)]
    pub point: Option<String>,
}

/// A registered elder. Name, phone, address and contacts are personal data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Elder {
    pub id: String,
    pub name: String,
    pub phone: String,
    pub address: String,
    pub birth: String,
    pub subdistrict: String,
    pub community: String,
    pub lon: f64,
    pub lat: f64,
    #[serde(default)]
    pub diet: Vec<String>,
    #[serde(default)]
    pub lone: bool,
    #[serde(default)]
    pub statuses: Vec<String>,
    #[serde(default)]
    pub family: Vec<Contact>,
    /// Home canteen.
    pub canteen: String,
    #[serde(default)]
    pub usual: Option<Usual>,
    pub registered_by: String,
    pub registered_at: Millis,
}

/// An account's link to an elder (`self`, `family`) or a canteen (`staff`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Link {
    pub username: String,
    pub relation: String,
    /// The elder's id, or the canteen's for staff.
    pub target: String,
}

/// An order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub elder: String,
    pub canteen: String,
    pub date: String,
    pub meal: Meal,
    /// (dish id, name, unit price, qty)
    pub lines: Vec<(String, String, Fen, u32)>,
    pub portions: u32,
    pub round: Round,
    /// Pick-up point (a canteen or meal point id).
    #[serde(default)]
    pub point: Option<String>,
    pub state: OrderState,
    pub total: Fen,
    pub subsidy: Vec<(String, Fen)>,
    pub pay: Fen,
    pub key: String,
    pub placed_by: String,
    pub placed_at: Millis,
    #[serde(default)]
    pub served_at: Option<Millis>,
    #[serde(default)]
    pub cancelled_at: Option<Millis>,
    #[serde(default)]
    pub refunded: Fen,
    /// The welfare-check case opened for it (nobody answered).
    #[serde(default)]
    pub case: Option<String>,
}

impl Order {
    pub fn live(&self) -> bool {
        self.state != OrderState::Cancelled
    }
    pub fn subsidy_total(&self) -> Fen {
        self.subsidy.iter().map(|(_, f)| f).sum()
    }
}

/// A delivery round of one canteen, day and kind: departed when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundRow {
    pub canteen: String,
    pub date: String,
    pub round: Round,
    pub departed_at: Millis,
    pub departed_by: String,
}

/// A welfare check opened (per order or per elder and day) and its case number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welfare {
    pub key: String,
    pub elder: String,
    pub reason: String,
    pub case: String,
    pub at: Millis,
}

pub type SlotKey = (String, String, Meal);

/// Everything the room knows.
#[derive(Default)]
pub struct Book {
    pub loaded: bool,
    /// The commit epoch the book was read at (see `meals::submit`).
    pub epoch: u64,
    /// With several nodes, the singleton lease's epoch the book was read under (see
    /// `meals::book`).
    pub lease: Option<i64>,
    pub canteens: BTreeMap<String, Canteen>,
    /// (canteen, date, meal) → dishes
    pub menus: HashMap<SlotKey, Vec<Dish>>,
    pub elders: BTreeMap<String, Elder>,
    pub links: Vec<Link>,
    pub orders: BTreeMap<String, Order>,
    pub by_key: HashMap<String, String>,
    pub by_slot: HashMap<SlotKey, Vec<String>>,
    pub by_elder: HashMap<String, Vec<String>>,
    pub ledgers: HashMap<String, Ledger>,
    pub rounds: HashMap<(String, String, Round), RoundRow>,
    pub welfare: HashMap<String, Welfare>,
    pub next_order: u64,
}

pub fn row<T: Serialize>(kind: &str, id: &str, v: &T, at: Millis) -> MealRow {
    MealRow {
        kind: kind.into(),
        id: id.into(),
        body: serde_json::to_string(v).expect("meal rows serialise"),
        at,
    }
}

pub fn ledger_row(elder: &str, e: &Entry) -> MealLedgerRow {
    MealLedgerRow {
        elder: elder.into(),
        seq: e.seq,
        at: e.at,
        kind: match e.kind {
            EntryKind::TopUp => "top_up",
            EntryKind::Payment => "payment",
            EntryKind::Refund => "refund",
        }
        .into(),
        amount: e.amount,
        reference: e.reference.clone(),
    }
}

pub fn menu_id(canteen: &str, date: &str, meal: Meal) -> String {
    format!("{canteen}|{date}|{}", meal.as_str())
}

#[derive(Serialize, Deserialize)]
struct MenuRow {
    canteen: String,
    date: String,
    meal: Meal,
    dishes: Vec<Dish>,
}

impl Book {
    /// Puts back what the store holds.
    pub fn restore(&mut self, rows: Vec<MealRow>, ledger: Vec<MealLedgerRow>) {
        for r in rows {
            match r.kind.as_str() {
                "canteen" => {
                    if let Ok(c) = serde_json::from_str(&r.body) {
                        self.put_canteen(c);
                    }
                }
                "menu" => {
                    if let Ok(m) = serde_json::from_str::<MenuRow>(&r.body) {
                        self.menus.insert((m.canteen, m.date, m.meal), m.dishes);
                    }
                }
                "elder" => {
                    if let Ok(e) = serde_json::from_str(&r.body) {
                        self.put_elder(e);
                    }
                }
                "link" => {
                    if let Ok(l) = serde_json::from_str(&r.body) {
                        self.put_link(l);
                    }
                }
                "order" => {
                    if let Ok(o) = serde_json::from_str(&r.body) {
                        self.put_order(o);
                    }
                }
                "round" => {
                    if let Ok(x) = serde_json::from_str::<RoundRow>(&r.body) {
                        self.rounds
                            .insert((x.canteen.clone(), x.date.clone(), x.round), x);
                    }
                }
                "welfare" => {
                    if let Ok(w) = serde_json::from_str::<Welfare>(&r.body) {
                        self.welfare.insert(w.key.clone(), w);
                    }
                }
                _ => {}
            }
        }
        let mut by: HashMap<String, Vec<Entry>> = HashMap::new();
        for l in ledger {
            let kind = match l.kind.as_str() {
                "top_up" => EntryKind::TopUp,
                "payment" => EntryKind::Payment,
                _ => EntryKind::Refund,
            };
            by.entry(l.elder).or_default().push(Entry {
                seq: l.seq,
                at: l.at,
                kind,
                amount: l.amount,
                reference: l.reference,
            });
        }
        for (e, entries) in by {
            self.ledgers.insert(e, Ledger::from_entries(entries));
        }
        self.loaded = true;
    }

    pub fn put_canteen(&mut self, c: Canteen) {
        self.canteens.insert(c.id.clone(), c);
    }

    pub fn menu_row(canteen: &str, date: &str, meal: Meal, dishes: &[Dish], at: Millis) -> MealRow {
        row(
            "menu",
            &menu_id(canteen, date, meal),
            &MenuRow {
                canteen: canteen.into(),
                date: date.into(),
                meal,
                dishes: dishes.to_vec(),
            },
            at,
        )
    }

    pub fn put_elder(&mut self, e: Elder) {
        self.elders.insert(e.id.clone(), e);
    }

    pub fn put_link(&mut self, l: Link) {
        if !self.links.contains(&l) {
            self.links.push(l);
        }
    }

    pub fn put_order(&mut self, o: Order) {
        let n =
            o.id.rsplit('-')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        self.next_order = self.next_order.max(n);
        if !self.orders.contains_key(&o.id) {
            self.by_key.insert(o.key.clone(), o.id.clone());
            self.by_slot
                .entry((o.canteen.clone(), o.date.clone(), o.meal))
                .or_default()
                .push(o.id.clone());
            self.by_elder
                .entry(o.elder.clone())
                .or_default()
                .push(o.id.clone());
        }
        self.orders.insert(o.id.clone(), o);
    }

    pub fn ledger(&self, elder: &str) -> Ledger {
        self.ledgers.get(elder).cloned().unwrap_or_default()
    }

    pub fn apply_entry(&mut self, elder: &str, e: Entry) {
        self.ledgers.entry(elder.to_string()).or_default().apply(e);
    }

    /// Portions ordered (not cancelled) in a slot.
    pub fn portions(&self, canteen: &str, date: &str, meal: Meal) -> u32 {
        self.by_slot
            .get(&(canteen.to_string(), date.to_string(), meal))
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| self.orders.get(i))
                    .filter(|o| o.live())
                    .map(|o| o.portions)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The elder's orders, newest first.
    pub fn orders_of(&self, elder: &str) -> Vec<&Order> {
        let mut v: Vec<&Order> = self
            .by_elder
            .get(elder)
            .map(|ids| ids.iter().filter_map(|i| self.orders.get(i)).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| b.placed_at.cmp(&a.placed_at).then(b.id.cmp(&a.id)));
        v
    }

    /// Has the elder a subsidised live order of this meal that day?
    pub fn subsidised(&self, elder: &str, date: &str, meal: Meal) -> bool {
        self.orders_of(elder)
            .iter()
            .any(|o| o.live() && o.date == date && o.meal == meal && o.subsidy_total() > 0)
    }

    /// The elders an account is linked to, with the relation.
    pub fn linked_elders(&self, username: &str) -> Vec<(&str, &str)> {
        self.links
            .iter()
            .filter(|l| l.username == username && l.relation != "staff")
            .map(|l| (l.target.as_str(), l.relation.as_str()))
            .collect()
    }

    /// The canteens a staff account works at.
    pub fn staff_canteens(&self, username: &str) -> HashSet<&str> {
        self.links
            .iter()
            .filter(|l| l.username == username && l.relation == "staff")
            .map(|l| l.target.as_str())
            .collect()
    }

    pub fn next_order_id(&mut self, date: Date) -> String {
        self.next_order += 1;
        format!(
            "M{:04}{:02}{:02}-{:06}",
            date.year, date.month, date.day, self.next_order
        )
    }
}
