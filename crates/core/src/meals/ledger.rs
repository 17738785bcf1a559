//! An elder's meal account (助餐账户) as an append-only list of entries in whole fen:
//! top-ups by family or staff, payments at checkout, refunds. The balance is their sum;
//! nothing is ever edited, so the history explains every fen.

use serde::{Deserialize, Serialize};

/// Money in fen (分, 1/100 yuan). Never a float.
pub type Fen = i64;

/// The largest single top-up taken (5,000 yuan): a typo of extra zeros is refused.
pub const MAX_TOP_UP: Fen = 500_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Money put in (by a family member or staff at the desk).
    TopUp,
    /// The elder's own share of an order (negative).
    Payment,
    /// A cancelled order's payment back (positive).
    Refund,
}

/// One ledger line: what, how much (signed fen), when, and what it refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub kind: EntryKind,
    pub amount: Fen,
    /// Who put money in (`family`, `staff`), or the order it belongs to.
    pub reference: String,
}

/// Why a ledger refused an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// A top-up of zero, negative, or over [`MAX_TOP_UP`].
    BadAmount(Fen),
    /// The balance does not cover the payment: (balance, needed).
    Insufficient(Fen, Fen),
}

/// One elder's entries and their running balance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    entries: Vec<Entry>,
    balance: Fen,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Rebuilds a ledger from stored entries (in `seq` order).
    pub fn from_entries(mut entries: Vec<Entry>) -> Ledger {
        entries.sort_by_key(|e| e.seq);
        let balance = entries.iter().map(|e| e.amount).sum();
        Ledger { entries, balance }
    }

    pub fn balance(&self) -> Fen {
        self.balance
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn next_seq(&self) -> i64 {
        self.entries.last().map_or(1, |e| e.seq + 1)
    }

    /// The entry a top-up would add (not yet applied).
    pub fn top_up(&self, amount: Fen, by: &str, at: i64) -> Result<Entry, LedgerError> {
        if amount <= 0 || amount > MAX_TOP_UP {
            return Err(LedgerError::BadAmount(amount));
        }
        Ok(Entry {
            seq: self.next_seq(),
            at,
            kind: EntryKind::TopUp,
            amount,
            reference: by.to_string(),
        })
    }

    /// The entry a top-up paid by `payer` (e.g. `family:citizen:granny`, `staff:handler:desk`)
    /// would add, with the client's idempotency `key` kept in its reference
    /// (`payer#key`), so a retry with the same key finds it ([`Ledger::top_up_by_key`])
    /// instead of crediting twice.
    pub fn top_up_paid(
        &self,
        amount: Fen,
        payer: &str,
        key: Option<&str>,
        at: i64,
    ) -> Result<Entry, LedgerError> {
        let reference = match key {
            Some(k) => format!("{payer}#{k}"),
            None => payer.to_string(),
        };
        self.top_up(amount, &reference, at)
    }

    /// The top-up made with idempotency `key`, if any.
    pub fn top_up_by_key(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| {
            e.kind == EntryKind::TopUp
                && e.reference.rsplit_once('#').is_some_and(|(_, k)| k == key)
        })
    }

    /// The entry paying `amount` for `order` (not yet applied); refused when the balance
    /// does not cover it. A payment of 0 (fully subsidised) is no entry.
    pub fn pay(&self, amount: Fen, order: &str, at: i64) -> Result<Option<Entry>, LedgerError> {
        if amount < 0 {
            return Err(LedgerError::BadAmount(amount));
        }
        if amount == 0 {
            return Ok(None);
        }
        if self.balance < amount {
            return Err(LedgerError::Insufficient(self.balance, amount));
        }
        Ok(Some(Entry {
            seq: self.next_seq(),
            at,
            kind: EntryKind::Payment,
            amount: -amount,
            reference: order.to_string(),
        }))
    }

    /// The entry giving back what `order` paid (none when it paid nothing or was
    /// already refunded).
    pub fn refund(&self, order: &str, at: i64) -> Option<Entry> {
        let paid: Fen = self
            .entries
            .iter()
            .filter(|e| e.reference == order)
            .map(|e| e.amount)
            .sum();
        (paid < 0).then(|| Entry {
            seq: self.next_seq(),
            at,
            kind: EntryKind::Refund,
            amount: -paid,
            reference: order.to_string(),
        })
    }

    /// Applies an entry made by this ledger's `top_up`, `pay` or `refund`.
    pub fn apply(&mut self, e: Entry) {
        self.balance += e.amount;
        self.entries.push(e);
    }
}

impl Entry {
    /// Who paid a top-up (its reference without the idempotency key); for a payment or
    /// refund, the order.
    pub fn paid_by(&self) -> &str {
        self.reference
            .rsplit_once('#')
            .map_or(self.reference.as_str(), |(p, _)| p)
    }
}
