//! The audit writer: one tamper-evident, hash-chained trail (`cityos_core::audit`) for the
//! whole service, on the lowest layer so every room may write to it.
//!
//! API for rooms: `st.0.audit.record(&st, actor, action, subject, detail).await` appends
//! one entry (its detail is JSON; strings in it pass through the personal-data mask) and
//! returns its sequence number once it is in the store. Entries are chained in memory
//! under a lock (so the order is the chain's order) and written by whoever holds the
//! flush lock, all waiting entries in one transaction (group commit: many readers of
//! sensitive data cost one write, not one each). A failed write keeps the entries
//! waiting (they go with the next write) and answers the caller 503. `head()` is the
//! chain's head for the log line and the metric; [`verify_store`] walks a stored trail
//! page by page and names the first broken entry.
//!
//! One writer per store: the sequence numbers are given here, so two nodes writing one
//! store would collide (the store's primary key refuses the second, never a fork).

use crate::http::error::ApiError;
use crate::AppState;
use cityos_core::audit::{Broken, Entry, Verifier};
use cityos_engine::store::ShareStore;
use cityos_engine::StoreError;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// The longest a read's entry waits to be written ([`AuditLog::record_soon`]).
pub const FLUSH_DELAY_MS: u64 = 100;

/// Entries read per page while verifying.
pub const VERIFY_PAGE: i64 = 50_000;

#[derive(Default)]
struct Chain {
    seq: i64,
    hash: String,
    pending: Vec<Entry>,
}

/// The service's audit trail writer (`Inner::audit`).
pub struct AuditLog {
    /// Always on in the service; `cityos bench audit` turns it off for one of its two
    /// runs to measure what the audit itself costs.
    enabled: AtomicBool,
    loaded: AtomicBool,
    /// A flush of the entries recorded with [`AuditLog::record_soon`] is scheduled.
    scheduled: AtomicBool,
    chain: Mutex<Chain>,
    flush: tokio::sync::Mutex<()>,
    /// The last sequence number known to be in the store.
    written: AtomicI64,
    /// Entries written since start.
    pub entries_written: AtomicU64,
    /// Failed writes since start.
    pub write_failures: AtomicU64,
}

/// Masks personal data in every string of a JSON detail.
fn masked(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(cityos_core::privacy::mask_personal(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(masked).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, masked(v))).collect()),
        other => other,
    }
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog {
            enabled: AtomicBool::new(true),
            loaded: AtomicBool::default(),
            scheduled: AtomicBool::default(),
            chain: Mutex::default(),
            flush: tokio::sync::Mutex::default(),
            written: AtomicI64::default(),
            entries_written: AtomicU64::default(),
            write_failures: AtomicU64::default(),
        }
    }
}

impl AuditLog {
    /// For the audit benchmark only: with `false`, `record` writes nothing (the service
    /// never calls this).
    /// Is every entry written (see `set_enabled`)?
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// Puts the stored head in place (at start; done lazily otherwise).
    pub fn restore(&self, s: &mut dyn ShareStore) -> Result<(), StoreError> {
        let head = s.audit_head()?;
        let mut c = self.chain.lock().expect("audit lock");
        if let Some(h) = head {
            c.seq = h.seq;
            c.hash = h.hash;
        }
        self.written.store(c.seq, Ordering::SeqCst);
        self.loaded.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn load(&self, st: &AppState) -> Result<(), ApiError> {
        let _g = self.flush.lock().await;
        if self.loaded.load(Ordering::SeqCst) {
            return Ok(());
        }
        let head = st.0.reads.run(|s| s.audit_head()).await??;
        let mut c = self.chain.lock().expect("audit lock");
        c.pending.clear();
        if let Some(h) = head {
            c.seq = h.seq;
            c.hash = h.hash;
        }
        self.written.store(c.seq, Ordering::SeqCst);
        self.loaded.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The chain's head: (last sequence number, its hash); (0, "") when empty.
    pub fn head(&self) -> (i64, String) {
        let c = self.chain.lock().expect("audit lock");
        (c.seq, c.hash.clone())
    }

    /// Chains one entry in memory (it waits to be written); its sequence number.
    async fn chain_entry(
        &self,
        st: &AppState,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Value,
    ) -> Result<i64, ApiError> {
        if !self.loaded.load(Ordering::SeqCst) {
            self.load(st).await?;
        }
        let detail = masked(detail).to_string();
        let subject = cityos_core::privacy::mask_personal(subject);
        let at = st.now();
        let mut c = self.chain.lock().expect("audit lock");
        let prev = (c.seq > 0).then_some((c.seq, c.hash.as_str()));
        let e = Entry::next(prev, at, actor, action, &subject, &detail);
        c.seq = e.seq;
        c.hash.clone_from(&e.hash);
        c.pending.push(e);
        Ok(c.seq)
    }

    /// Appends one entry and waits until it is stored; its sequence number. For changes
    /// (grants, configuration, sign-ins): the answer leaves only once its entry is kept.
    pub async fn record(
        &self,
        st: &AppState,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Value,
    ) -> Result<i64, ApiError> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let seq = self.chain_entry(st, actor, action, subject, detail).await?;
        self.flush_to(st, seq).await?;
        Ok(seq)
    }

    /// Appends one entry for a read of personal data: chained at once (its place in the
    /// trail is fixed), written with the others waiting within [`FLUSH_DELAY_MS`] (or
    /// sooner, by the next [`AuditLog::record`]), so a busy desk's reads cost one write
    /// per round, not one each. A crash may lose the last round's read entries — never
    /// a change's.
    pub async fn record_soon(
        &self,
        st: &AppState,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Value,
    ) -> Result<i64, ApiError> {
        if !self.enabled.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let seq = self.chain_entry(st, actor, action, subject, detail).await?;
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            let st = st.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(FLUSH_DELAY_MS)).await;
                let log = &st.0.audit;
                log.scheduled.store(false, Ordering::SeqCst);
                let head = log.chain.lock().expect("audit lock").seq;
                if let Err(e) = log.flush_to(&st, head).await {
                    crate::http::log::event("audit_write_failed", &[("error", &e.detail)]);
                }
            });
        }
        Ok(seq)
    }

    /// Writes every waiting entry unless `seq` is already stored.
    async fn flush_to(&self, st: &AppState, seq: i64) -> Result<(), ApiError> {
        let _g = self.flush.lock().await;
        if self.written.load(Ordering::SeqCst) >= seq {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.chain.lock().expect("audit lock").pending);
        let Some(last) = batch.last().map(|e| e.seq) else {
            return Ok(());
        };
        let n = batch.len() as u64;
        let res =
            st.0.reads
                .run(move |s| {
                    let r = s.append_audit(&batch);
                    (batch, r)
                })
                .await;
        match res {
            Ok((_, Ok(()))) => {
                self.written.store(last, Ordering::SeqCst);
                self.entries_written.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Ok((batch, Err(e))) => {
                self.write_failures.fetch_add(1, Ordering::Relaxed);
                let mut c = self.chain.lock().expect("audit lock");
                let later = std::mem::replace(&mut c.pending, batch);
                c.pending.extend(later);
                Err(e.into())
            }
            Err(e) => {
                // The blocking task itself failed: the batch is gone with it, so the
                // chain restarts from what the store holds.
                self.write_failures.fetch_add(1, Ordering::Relaxed);
                self.loaded.store(false, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

impl AuditLog {
    /// Writes whatever waits (the service's shutdown: reads' entries not yet written).
    pub fn flush_blocking(&self, s: &mut dyn ShareStore) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut self.chain.lock().expect("audit lock").pending);
        let Some(last) = batch.last().map(|e| e.seq) else {
            return Ok(());
        };
        s.append_audit(&batch)?;
        self.written.store(last, Ordering::SeqCst);
        self.entries_written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// What verifying a stored trail found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Intact: entries checked and the head (seq, hash).
    Intact {
        entries: u64,
        seq: i64,
        hash: String,
    },
    /// The first entry that does not fit.
    Broken(Broken),
}

/// Walks the stored trail from the start, a page at a time.
pub fn verify_store(s: &mut dyn ShareStore) -> Result<Verdict, StoreError> {
    let mut v = Verifier::default();
    let mut after = 0;
    loop {
        let page = s.audit_page(after, VERIFY_PAGE)?;
        for e in &page {
            if let Err(b) = v.push(e) {
                return Ok(Verdict::Broken(b));
            }
        }
        match page.last() {
            Some(e) if page.len() as i64 == VERIFY_PAGE => after = e.seq,
            _ => break,
        }
    }
    let (seq, hash) = v.head();
    Ok(Verdict::Intact {
        entries: v.count,
        seq,
        hash: hash.to_string(),
    })
}

/// What verifying the case log's per-case chains found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogVerdict {
    /// Every chained entry fits: entries checked (chained ones), cases seen, and entries
    /// written before the log was chained (not covered).
    Intact {
        entries: u64,
        cases: u64,
        unchained: u64,
    },
    /// The first entry that does not fit its case's chain.
    Broken {
        case: i64,
        seq: i64,
        problem: String,
    },
}

/// Walks the case log in (case, seq) order, recomputing each case's chain.
pub fn verify_case_logs(s: &mut dyn ShareStore) -> Result<LogVerdict, StoreError> {
    use cityos_core::audit::{log_link, GENESIS};
    let (mut after_case, mut after_seq) = (i64::MIN, i64::MIN);
    let (mut entries, mut cases, mut unchained) = (0u64, 0u64, 0u64);
    let mut case = None;
    let mut prev = GENESIS.to_string();
    let mut last_seq = 0i64;
    // Whether the current case has had a chained entry: after one, an entry without a
    // chain is a tampered one (only entries written before the chain began lack one).
    let mut chained = false;
    loop {
        let page = s.log_links(after_case, after_seq, VERIFY_PAGE)?;
        for (c, seq, body, chain) in &page {
            if case != Some(*c) {
                case = Some(*c);
                cases += 1;
                prev = GENESIS.to_string();
                chained = false;
                if *seq != 1 {
                    return Ok(LogVerdict::Broken {
                        case: *c,
                        seq: *seq,
                        problem: format!(
                            "case {c} entry {seq}: the case's log starts here (its first entries were removed)"
                        ),
                    });
                }
            } else if *seq != last_seq + 1 {
                return Ok(LogVerdict::Broken {
                    case: *c,
                    seq: *seq,
                    problem: format!(
                        "case {c} entry {seq}: expected entry {} here (an entry was removed)",
                        last_seq + 1
                    ),
                });
            }
            last_seq = *seq;
            match chain {
                None if chained => {
                    return Ok(LogVerdict::Broken {
                        case: *c,
                        seq: *seq,
                        problem: format!(
                            "case {c} entry {seq}: has no chain after chained entries (its chain was removed)"
                        ),
                    });
                }
                None => {
                    unchained += 1;
                    prev = GENESIS.to_string();
                }
                Some(link) => {
                    if *link != log_link(&prev, *c, *seq, body) {
                        return Ok(LogVerdict::Broken {
                            case: *c,
                            seq: *seq,
                            problem: format!(
                                "case {c} entry {seq}: does not match its chain (it, or an entry before it, was edited or removed)"
                            ),
                        });
                    }
                    entries += 1;
                    chained = true;
                    prev.clone_from(link);
                }
            }
        }
        match page.last() {
            Some((c, seq, _, _)) if page.len() as i64 == VERIFY_PAGE => {
                after_case = *c;
                after_seq = *seq;
            }
            _ => break,
        }
    }
    Ok(LogVerdict::Intact {
        entries,
        cases,
        unchained,
    })
}
