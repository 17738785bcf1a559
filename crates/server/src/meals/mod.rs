//! The meals room (为老助餐, issue 16): canteens and meal points, daily menus, elders and
//! their meal accounts, orders (pick-up, staff delivery, the driverless 11:00 round),
//! cancellations and refunds, the canteen's views, and the care link.
//!
//! Its state is one `Book` behind an async lock, loaded from the store on first use and
//! written through on every change (`MealStore::record_meals`: an order's row and its
//! ledger entries in one transaction) before it changes in memory — so an answer never
//! reports what is not stored, and a restart loses nothing.
//!
//! Who is who: an elder is a citizen account linked to their elder record (`self`), a
//! family member a citizen account linked as `family` (registering an elder links the
//! registrant); canteen staff are handler accounts linked to a canteen (`staff` rows);
//! community workers are the sub-district officers of the elder's sub-district; the
//! district officer sees everything; the analyst only the day's summary.
//!
//! Architecture Invariant: elders' names, phones and addresses appear only in answers to
//! those who may act for the elder (and the delivering canteen's staff); never in public
//! answers, logs, bus events or case text.

pub mod api;
pub mod book;
pub mod care;
pub mod demo;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::AppState;
use book::Book;
use cityos_core::meals::{parse_rules, SubsidyRules};
use cityos_engine::store::{MealLedgerRow, MealRow};

/// The district's subsidy rules as shipped.
pub const SUBSIDIES: &str = include_str!("../../../../data/xuhui/meals/subsidies.txt");

/// The room's state.
pub struct Meals {
    pub rules: SubsidyRules,
    book: tokio::sync::Mutex<Book>,
}

impl Default for Meals {
    fn default() -> Self {
        Meals::new()
    }
}

impl Meals {
    pub fn new() -> Meals {
        Meals {
            rules: parse_rules(SUBSIDIES).unwrap_or_else(|p| {
                panic!(
                    "the shipped subsidy rules are refused: {}",
                    p.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }),
            book: tokio::sync::Mutex::new(Book::default()),
        }
    }
}

/// The book, loaded from the store when first used.
pub async fn book(st: &AppState) -> Result<tokio::sync::MutexGuard<'_, Book>, ApiError> {
    let mut b = st.0.meals.book.lock().await;
    if !b.loaded {
        let (rows, ledger) =
            st.0.reads
                .run(|s| -> Result<_, cityos_engine::StoreError> {
                    let mut rows = Vec::new();
                    for kind in book::KINDS {
                        rows.extend(s.meal_rows(kind)?);
                    }
                    Ok((rows, s.meal_ledger()?))
                })
                .await?
                .map_err(ApiError::from)?;
        b.restore(rows, ledger);
        b.load_canteens();
    }
    Ok(b)
}

/// Writes rows and ledger entries in one transaction.
pub async fn write(
    st: &AppState,
    rows: Vec<MealRow>,
    ledger: Vec<MealLedgerRow>,
) -> Result<(), ApiError> {
    if rows.is_empty() && ledger.is_empty() {
        return Ok(());
    }
    st.0.reads
        .run(move |s| s.record_meals(&rows, &ledger))
        .await?
        .map_err(ApiError::from)
}

/// A problem with a detail in both languages.
pub fn problem(p: Problem, zh: &str, en: &str) -> ApiError {
    ApiError::new(p, format!("{zh} / {en}"))
}

/// The caller's name for the record (never a person's details).
pub fn actor(p: &Principal) -> String {
    format!("{}:{}", p.role, p.name)
}
