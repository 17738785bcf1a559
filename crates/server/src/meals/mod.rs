//! The meals room (为老助餐, issue 16): canteens and meal points, daily menus, elders and
//! their meal accounts, orders (pick-up, staff delivery, the driverless 11:00 round),
//! cancellations and refunds, the canteen's views, and the care link.
//!
//! Its state is one `Book` behind an async lock, loaded from the store on first use; every
//! change is written (`MealStore::record_meals`: an order's row and its ledger entries in
//! one transaction) before its answer is sent — so an answer never reports what is not
//! stored, and a restart loses nothing. Writes are group-committed ([`write`],
//! [`submit`]): what waits while one transaction is being written goes into the next one
//! together, one fsync for all, in the order submitted. Placing an order (the 11:00 peak)
//! changes the book first and waits for its commit after releasing the lock, so the next
//! order is checked meanwhile; if a commit fails, everything submitted against the book
//! as it stood is refused and the book is read again from the store (its `epoch`), so
//! nothing unstored survives in memory.
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
    commits: Commits,
}

/// The group commit: writes waiting for the next transaction, one writer at a time, and
/// the book's epoch (raised when a commit fails: the book is then read again).
#[derive(Default)]
struct Commits {
    queue: std::sync::Mutex<Vec<Submitted>>,
    writing: tokio::sync::Mutex<()>,
    epoch: std::sync::atomic::AtomicU64,
    /// Several nodes: the commit epoch the book was last read at and the singleton lease's
    /// epoch it was read under — the writes of that commit epoch are fenced by that lease.
    lease: std::sync::Mutex<(u64, Option<i64>)>,
}

struct Submitted {
    epoch: u64,
    rows: Vec<MealRow>,
    ledger: Vec<MealLedgerRow>,
    done: tokio::sync::oneshot::Sender<Result<(), ApiError>>,
}

/// A write submitted to the next group commit; [`Pending::committed`] waits for it.
pub struct Pending(Option<tokio::sync::oneshot::Receiver<Result<(), ApiError>>>);

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
            commits: Commits::default(),
        }
    }
}

/// The answer while the meal book is held by another node or moving between nodes (503
/// with `Retry-After`; the forwarding layer sends the request to the holder).
fn moving() -> ApiError {
    let mut e = ApiError::new(
        crate::http::error::Problem::Unavailable,
        "the meal service is kept by another node and is moving between nodes — nothing was written, try again shortly",
    )
    .retry_after(1);
    e.partition = Some(cityos_engine::engine::SINGLETON.to_string());
    e
}

/// The book, loaded from the store when first used (and read again after a failed
/// commit). With several nodes only the holder of the singleton lease keeps it: any other
/// node answers `NotOwner(SINGLETON)` (503 with `Retry-After` if it reaches the client),
/// which the forwarding layer sends to the holder; a holder reads the book again whenever
/// the lease's epoch changes (it took the lease, or took it back after losing it), so what
/// another holder wrote meanwhile is in it.
pub async fn book(st: &AppState) -> Result<tokio::sync::MutexGuard<'_, Book>, ApiError> {
    let lease = match crate::http::node::singleton_epoch(st) {
        None => None,
        Some(Some(e)) => Some(e),
        Some(None) => return Err(moving()),
    };
    let mut b = st.0.meals.book.lock().await;
    if lease.is_some() && b.lease != lease {
        // Whatever was submitted under the old lease is refused; the book is read again.
        st.0.meals
            .commits
            .epoch
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let epoch =
        st.0.meals
            .commits
            .epoch
            .load(std::sync::atomic::Ordering::SeqCst);
    if !b.loaded || b.epoch != epoch {
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
        *b = Book::default();
        b.restore(rows, ledger);
        b.load_canteens();
        b.epoch = epoch;
        b.lease = lease;
        *st.0.meals.commits.lease.lock().expect("commit lease") = (epoch, lease);
    }
    Ok(b)
}

/// Submits rows and ledger entries, checked against the book as of `epoch`, to the next
/// group commit (in the order submitted). The caller may release the book and then wait
/// with [`Pending::committed`].
pub fn submit(
    st: &AppState,
    epoch: u64,
    rows: Vec<MealRow>,
    ledger: Vec<MealLedgerRow>,
) -> Pending {
    if rows.is_empty() && ledger.is_empty() {
        return Pending(None);
    }
    let (done, rx) = tokio::sync::oneshot::channel();
    st.0.meals
        .commits
        .queue
        .lock()
        .expect("commit queue")
        .push(Submitted {
            epoch,
            rows,
            ledger,
            done,
        });
    Pending(Some(rx))
}

/// Waits for everything submitted before it (an answer that repeats what may not be
/// stored yet, e.g. a retried order).
pub fn barrier(st: &AppState, epoch: u64) -> Pending {
    let (done, rx) = tokio::sync::oneshot::channel();
    st.0.meals
        .commits
        .queue
        .lock()
        .expect("commit queue")
        .push(Submitted {
            epoch,
            rows: Vec::new(),
            ledger: Vec::new(),
            done,
        });
    Pending(Some(rx))
}

impl Pending {
    /// Waits until the write is stored (written by this caller, or in a group another
    /// caller wrote).
    pub async fn committed(self, st: &AppState) -> Result<(), ApiError> {
        let Some(rx) = self.0 else {
            return Ok(());
        };
        // The group is written by a task of its own: a caller whose request is dropped
        // (the client went away) cannot cancel a write that others wait for, nor leave
        // a failed one unseen (the epoch is raised in the task).
        // Several nodes: the task does not inherit the request's marker, so the request
        // is marked here — its rows are written (or may be) from now on, and a later
        // engine step (a welfare case) must go to its owner as a step, never the whole
        // request again.
        let marker = crate::http::node::effects();
        let before = marker
            .as_ref()
            .map(|e| e.load(std::sync::atomic::Ordering::SeqCst));
        crate::http::node::mark_effect();
        let st2 = st.clone();
        let _ = tokio::spawn(async move { write_group(&st2).await }).await;
        let r = rx
            .await
            .unwrap_or_else(|_| Err(ApiError::internal("the meal write was dropped")));
        if let (Err(e), Some(m), Some(false)) = (&r, &marker, before) {
            if e.partition.is_some() {
                // Fenced or moving: nothing of the group was written, so the request may
                // still go whole to the holder.
                m.store(false, std::sync::atomic::Ordering::SeqCst);
            }
        }
        r
    }
}

/// Writes everything submitted so far as one transaction, in order, and answers each
/// submission; nothing to do when another caller's task already wrote it.
async fn write_group(st: &AppState) {
    let c = &st.0.meals.commits;
    let _w = c.writing.lock().await;
    let group = std::mem::take(&mut *c.queue.lock().expect("commit queue"));
    if group.is_empty() {
        return;
    }
    let epoch = c.epoch.load(std::sync::atomic::Ordering::SeqCst);
    let (fresh, stale): (Vec<_>, Vec<_>) = group.into_iter().partition(|x| x.epoch == epoch);
    for x in stale {
        let _ = x.done.send(Err(ApiError::new(
            Problem::Busy,
            "the meal book was read again after a failed write; please try again",
        )));
    }
    let mut rows = Vec::new();
    let mut ledger = Vec::new();
    for x in &fresh {
        rows.extend(x.rows.iter().cloned());
        ledger.extend(x.ledger.iter().cloned());
    }
    if rows.is_empty() && ledger.is_empty() {
        // Only barriers: everything before them is written.
        for x in fresh {
            let _ = x.done.send(Ok(()));
        }
        return;
    }
    // Several nodes: written only while this node still holds the singleton lease at the
    // epoch the book was read under — a holder that lost it and has not noticed yet
    // (paused, cut off) writes nothing; the new holder's book is the truth.
    let fence = match (st.0.cluster.get(), *c.lease.lock().expect("commit lease")) {
        (Some(cl), (at, Some(lease))) if at == epoch => Some(cityos_engine::store::Fence {
            node: cl.node.clone(),
            leases: vec![(cityos_engine::engine::SINGLETON.to_string(), lease)],
        }),
        (Some(_), _) => {
            // Not read under the lease this group was checked against: nothing written.
            c.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for x in fresh {
                let _ = x.done.send(Err(moving()));
            }
            return;
        }
        (None, _) => None,
    };
    let r =
        st.0.reads
            .write(move |s| match &fence {
                Some(f) => s.record_meals_fenced(&rows, &ledger, f),
                None => s.record_meals(&rows, &ledger),
            })
            .await
            .and_then(|r| r.map_err(ApiError::from));
    if r.is_err() {
        // Nothing of the group is stored: the book is read again before its next use.
        c.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    for x in fresh {
        let _ = x.done.send(r.as_ref().map(|_| ()).map_err(ApiError::clone));
    }
}

/// Writes rows and ledger entries (checked against the book as of `epoch`) and waits
/// until they are stored; the caller keeps the book meanwhile.
pub async fn write(
    st: &AppState,
    epoch: u64,
    rows: Vec<MealRow>,
    ledger: Vec<MealLedgerRow>,
) -> Result<(), ApiError> {
    submit(st, epoch, rows, ledger).committed(st).await
}

/// A problem with a detail in both languages.
pub fn problem(p: Problem, zh: &str, en: &str) -> ApiError {
    ApiError::new(p, format!("{zh} / {en}"))
}

/// The caller's name for the record (never a person's details).
pub fn actor(p: &Principal) -> String {
    format!("{}:{}", p.role, p.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A meal write marks the request being served as changed, though its group is
    /// written by a task of its own (which does not inherit the marker): a later engine
    /// step in the same request then goes to its owner as a step, never the whole
    /// request again. Nothing to write marks nothing.
    #[test]
    fn a_meal_write_marks_the_request() {
        let dir = std::env::temp_dir().join(format!("cityos-mealmark-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = crate::runtime::service::Database::Sqlite(dir.clone());
        let clock: Arc<dyn crate::Clock> = Arc::new(crate::SystemClock);
        let svc = crate::runtime::service::Service::start(
            cityos_engine::config::Config::xuhui(),
            &db,
            clock,
            crate::http::auth::TokenKey::new([7; 32]),
            1,
        )
        .unwrap();
        let st = svc.state.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (nothing, written) = rt.block_on(async {
            let epoch = st.0.meals.commits.epoch.load(Ordering::SeqCst);
            let fx = Arc::new(AtomicBool::new(false));
            crate::http::node::EFFECTS
                .scope(fx.clone(), async {
                    write(&st, epoch, vec![], vec![]).await.unwrap();
                    let nothing = fx.load(Ordering::SeqCst);
                    let r = book::row("test", "mark-1", &serde_json::json!({"x": 1}), 1);
                    write(&st, epoch, vec![r], vec![]).await.unwrap();
                    (nothing, fx.load(Ordering::SeqCst))
                })
                .await
        });
        assert!(!nothing, "nothing written, nothing marked");
        assert!(written, "a meal write marks the request");
        drop(rt);
        svc.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
