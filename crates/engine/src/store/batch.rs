//! The batch writer both stores share: what one transaction writes for a [`Batch`] and in
//! which order — reports, then each case (inserted, or updated only from the version it was
//! read at, else a [`StoreError::Conflict`]) with its new log entries and, when they
//! changed, its tasks (each log entry chained to the case's previous one); then report moves, idempotency records and the maintained counts.
//! Several nodes: a batch carrying a [`super::Fence`] first checks, and locks, the partition leases
//! it was decided under (refused with [`StoreError::Fenced`] when one is stale).
//! Each backend supplies the statement execution for one row of one table ([`RowWriter`]).

use super::{Batch, CaseRow, CaseWrite, IdempotentAnswer, StoreError};
use crate::query::CountKey;
use cityos_core::audit::{log_fields, log_link, GENESIS};
use cityos_core::case::{CaseId, LogEntry, Report, ReportId, Task};

/// One statement per table row, executed inside the backend's open transaction.
pub(crate) trait RowWriter {
    fn insert_report(&mut self, r: &Report) -> Result<(), StoreError>;
    fn insert_case(&mut self, w: &CaseWrite<'_>, row: &CaseRow<'_>) -> Result<(), StoreError>;
    /// Updates the case's row if it still has version `prev`; the number of rows changed.
    fn update_case(
        &mut self,
        w: &CaseWrite<'_>,
        row: &CaseRow<'_>,
        prev: u64,
    ) -> Result<u64, StoreError>;
    fn insert_log(
        &mut self,
        e: &LogEntry,
        body: &str,
        gseq: i64,
        chain: &str,
    ) -> Result<(), StoreError>;
    /// The chain value of the case's last stored log entry (`None`: no entry, or one
    /// written before the log was chained).
    fn log_head(&mut self, case: CaseId) -> Result<Option<String>, StoreError>;
    fn delete_tasks(&mut self, case: CaseId) -> Result<(), StoreError>;
    fn insert_task(&mut self, case: CaseId, t: &Task) -> Result<(), StoreError>;
    fn move_report(&mut self, report: ReportId, case: CaseId) -> Result<(), StoreError>;
    /// Keeps a key's first answer (a key already stored is left as it is).
    fn insert_idempotent(&mut self, a: &IdempotentAnswer) -> Result<(), StoreError>;
    /// Adds `n` (possibly negative) to the maintained count of `k`.
    fn add_count(&mut self, k: &CountKey, n: i64) -> Result<(), StoreError>;
    /// Does `node` hold `partition` at `epoch`, unexpired? The row stays locked (shared)
    /// until the transaction ends, so no other node can take the partition over while
    /// the batch is being written. A store without leases has nothing to check.
    fn lease_held(
        &mut self,
        _node: &str,
        _partition: &str,
        _epoch: i64,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// The case's stored evaluation fold (`case_facts`), `None` without a row.
    fn fold_of(&mut self, case: CaseId) -> Result<Option<String>, StoreError>;
    /// Writes (inserts or replaces) the case's evaluation fold.
    fn put_fold(&mut self, case: CaseId, created_at: i64, fold: &str) -> Result<(), StoreError>;
}

/// A fence's leases in the order they are locked: by partition — the order a node's lease
/// renewal locks them in too, so the two never deadlock.
pub(crate) fn fence_order(f: &crate::store::Fence) -> Vec<&(String, i64)> {
    let mut l: Vec<&(String, i64)> = f.leases.iter().collect();
    l.sort();
    l
}

/// Writes batches through `w` in one transaction the caller owns. Fencing first: a node
/// whose lease expired or was taken over writes nothing — every batch's leases checked
/// (and locked) together, in partition order, before any row is written, so that a group
/// commit locks its leases in the same order as a lease renewal.
pub(crate) fn write_batches(
    w: &mut impl RowWriter,
    batches: &[Batch<'_>],
) -> Result<(), StoreError> {
    let mut leases: Vec<(&String, i64, &str)> = batches
        .iter()
        .filter_map(|b| b.fence)
        .flat_map(|f| f.leases.iter().map(|(p, e)| (p, *e, f.node.as_str())))
        .collect();
    leases.sort();
    leases.dedup();
    for (partition, epoch, node) in leases {
        if !w.lease_held(node, partition, epoch)? {
            return Err(StoreError::Fenced {
                partition: partition.clone(),
                epoch,
            });
        }
    }
    for b in batches {
        write_rows(w, b)?;
    }
    Ok(())
}

/// One batch's rows (its fence already checked).
fn write_rows(w: &mut impl RowWriter, batch: &Batch<'_>) -> Result<(), StoreError> {
    for r in batch.reports {
        w.insert_report(r)?;
    }
    for cw in &batch.cases {
        write_case(w, cw)?;
    }
    for (report, case) in batch.report_moves {
        w.move_report(*report, *case)?;
    }
    for a in batch.idempotency {
        w.insert_idempotent(a)?;
    }
    for (k, n) in crate::store::count_deltas(batch) {
        w.add_count(&k, n)?;
    }
    Ok(())
}

/// One case's row, its new log entries and (when they changed) its tasks.
fn write_case(w: &mut impl RowWriter, cw: &CaseWrite<'_>) -> Result<(), StoreError> {
    let c = cw.case;
    let row = CaseRow::new(c);
    match cw.prev_version {
        None => w.insert_case(cw, &row)?,
        Some(prev) => {
            if w.update_case(cw, &row, prev)? != 1 {
                return Err(StoreError::Conflict {
                    case: c.id,
                    expected: prev,
                });
            }
        }
    }
    // The case's log is chained: each entry's chain covers the one before (a new case
    // starts from GENESIS; an existing one costs one indexed lookup per batch).
    if !cw.entries.is_empty() {
        let mut prev = match cw.prev_version {
            None => GENESIS.to_string(),
            Some(_) => w.log_head(c.id)?.unwrap_or_else(|| GENESIS.to_string()),
        };
        for ((e, body), gseq) in cw.entries.iter().zip(cw.log_bodies).zip(cw.gseqs) {
            let fields = log_fields(
                e.at,
                &e.actor,
                e.role.as_str(),
                &e.action,
                e.from.map(|s| s.as_str()),
                e.to.as_str(),
                &e.note,
                body,
            );
            let link = log_link(&prev, e.case_id, e.seq as i64, &fields);
            w.insert_log(e, body, *gseq, &link)?;
            prev = link;
        }
    }
    write_fold(w, cw)?;
    if cw.tasks_changed {
        w.delete_tasks(c.id)?;
        for t in &c.tasks {
            w.insert_task(c.id, t)?;
        }
    }
    Ok(())
}

/// Keeps the case's evaluation fold (`case_facts`) up to date: a new case's log folded
/// from its creation, an existing one's stored fold stepped over the new entries. A case
/// stored before the table existed has no row and keeps none (the evaluation folds its
/// log instead).
fn write_fold(w: &mut impl RowWriter, cw: &CaseWrite<'_>) -> Result<(), StoreError> {
    use cityos_core::evaluation::CaseFold;
    let Some(first) = cw.entries.first() else {
        return Ok(());
    };
    let fold = match cw.prev_version {
        None => CaseFold::start(first),
        Some(_) => match w.fold_of(cw.case.id)? {
            Some(text) => Some(serde_json::from_str::<CaseFold>(&text).map_err(|e| {
                StoreError::Corrupt(format!(
                    "case {}'s evaluation fold does not parse: {e}",
                    cw.case.id
                ))
            })?),
            None => None,
        },
    };
    let Some(mut fold) = fold else {
        return Ok(());
    };
    for e in cw.entries {
        fold.step(e);
    }
    fold.snapshot(cw.case);
    let text = serde_json::to_string(&fold)
        .map_err(|e| StoreError::Corrupt(format!("evaluation fold: {e}")))?;
    w.put_fold(cw.case.id, cw.case.created_at, &text)
}
