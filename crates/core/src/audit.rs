//! The tamper-evident audit trail's arithmetic: each entry holds the hash of the one
//! before it, and its own hash covers its sequence number, time, actor, action, subject,
//! detail and that previous hash (BLAKE2b-256 over length-prefixed fields, so no two
//! different entries hash the same bytes). Changing, removing or inserting an entry
//! breaks the chain at that entry; [`Verifier`] walks a trail in order and names the
//! first entry that does not fit. Pure: the store and the writer live elsewhere.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the trail, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    pub at: i64,
    /// Who did it: a user name, a machine's name, or `cityos`.
    pub actor: String,
    /// What: `sign_in`, `grant_request`, `grant_approve`, `rows_read`, `scenario_reload`…
    pub action: String,
    /// On what: a dataset, a grant, a pack, an account.
    pub subject: String,
    /// More, as JSON text (never unmasked personal data).
    pub detail: String,
    /// The hash of entry `seq - 1` ([`GENESIS`] for the first).
    pub prev: String,
    /// This entry's hash ([`entry_hash`]).
    pub hash: String,
}

fn field(h: &mut Blake2b<U32>, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The hash an entry must carry, as 64 lowercase hex digits.
pub fn entry_hash(
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut h = Blake2b::<U32>::new();
    field(&mut h, prev.as_bytes());
    h.update(seq.to_le_bytes());
    h.update(at.to_le_bytes());
    field(&mut h, actor.as_bytes());
    field(&mut h, action.as_bytes());
    field(&mut h, subject.as_bytes());
    field(&mut h, detail.as_bytes());
    let out = h.finalize();
    let mut s = String::with_capacity(64);
    for b in out {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

impl Entry {
    /// The entry after `prev` (`None`: the first), with its hash.
    pub fn next(
        prev: Option<(i64, &str)>,
        at: i64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Entry {
        let (seq, prev) = match prev {
            Some((s, h)) => (s + 1, h.to_string()),
            None => (1, GENESIS.to_string()),
        };
        let hash = entry_hash(&prev, seq, at, actor, action, subject, detail);
        Entry {
            seq,
            at,
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail: detail.into(),
            prev,
            hash,
        }
    }

    /// Does the entry's own hash cover what it says?
    pub fn sealed(&self) -> bool {
        entry_hash(
            &self.prev,
            self.seq,
            self.at,
            &self.actor,
            &self.action,
            &self.subject,
            &self.detail,
        ) == self.hash
    }
}

/// Where a trail breaks: the first entry that does not fit, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// An entry's sequence number is not the one after its predecessor's (an entry was
    /// removed or inserted).
    Gap { seq: i64, expected: i64 },
    /// An entry does not hold its predecessor's hash (the predecessor was changed, or the
    /// entry was moved).
    Link { seq: i64 },
    /// An entry's content does not match its own hash (it was edited).
    Content { seq: i64 },
}

impl Broken {
    /// The first entry that does not fit.
    pub fn seq(&self) -> i64 {
        match self {
            Broken::Gap { seq, .. } | Broken::Link { seq } | Broken::Content { seq } => *seq,
        }
    }
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Gap { seq, expected } => write!(
                f,
                "entry {seq}: expected entry {expected} here (an entry was removed or inserted)"
            ),
            Broken::Link { seq } => write!(
                f,
                "entry {seq}: does not hold the previous entry's hash (the entry before it was changed)"
            ),
            Broken::Content { seq } => write!(
                f,
                "entry {seq}: its content does not match its hash (it was edited)"
            ),
        }
    }
}

/// Walks a trail in order. Feed every entry to [`Verifier::push`]; the first error is the
/// first broken entry.
#[derive(Debug, Clone)]
pub struct Verifier {
    next: i64,
    prev: String,
    /// Entries verified so far.
    pub count: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            next: 1,
            prev: GENESIS.to_string(),
            count: 0,
        }
    }
}

impl Verifier {
    /// Starts after a known head (seq, hash) — e.g. the last published one.
    pub fn after(seq: i64, hash: &str) -> Verifier {
        Verifier {
            next: seq + 1,
            prev: hash.to_string(),
            count: 0,
        }
    }

    pub fn push(&mut self, e: &Entry) -> Result<(), Broken> {
        if e.seq != self.next {
            return Err(Broken::Gap {
                seq: e.seq,
                expected: self.next,
            });
        }
        if !e.sealed() {
            return Err(Broken::Content { seq: e.seq });
        }
        if e.prev != self.prev {
            return Err(Broken::Link { seq: e.seq });
        }
        self.next += 1;
        self.prev.clone_from(&e.hash);
        self.count += 1;
        Ok(())
    }

    /// The head so far: (last seq, its hash); (0, GENESIS) when empty.
    pub fn head(&self) -> (i64, &str) {
        (self.next - 1, &self.prev)
    }
}

/// Verifies a whole trail; `Ok(head)` or the first break.
pub fn verify<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Result<(i64, String), Broken> {
    let mut v = Verifier::default();
    for e in entries {
        v.push(e)?;
    }
    let (s, h) = v.head();
    Ok((s, h.to_string()))
}

/// The chain value of a case log entry: the hash of the case's previous entry's chain
/// ([`GENESIS`] for its first), the case, the entry's number and its stored columns as
/// [`log_fields`] joins them.
pub fn log_link(prev: &str, case: i64, seq: i64, fields: &str) -> String {
    entry_hash(prev, seq, case, "", "case_log", "", fields)
}

/// A case log entry's stored columns joined into the one text its chain covers (time,
/// actor, role, action, states, note and body, separated by U+001F), so that editing
/// any column — not only the body — breaks the chain.
#[allow(clippy::too_many_arguments)]
pub fn log_fields(
    at: i64,
    actor: &str,
    role: &str,
    action: &str,
    from: Option<&str>,
    to: &str,
    note: &str,
    body: &str,
) -> String {
    let from = from.unwrap_or("");
    format!(
        "{at}\u{1f}{actor}\u{1f}{role}\u{1f}{action}\u{1f}{from}\u{1f}{to}\u{1f}{note}\u{1f}{body}"
    )
}
