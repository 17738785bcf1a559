//! The audit trail's chain: built entry by entry, verified, and every kind of tampering
//! named at the first entry it breaks.

use cityos_core::audit::{entry_hash, verify, Broken, Entry, Verifier, GENESIS};

fn trail(n: i64) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for i in 0..n {
        let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
        let e = Entry::next(
            prev,
            1_000 + i,
            "zhang.district",
            "rows_read",
            "lone_elder_households",
            &format!("{{\"rows\":{i}}}"),
        );
        out.push(e);
    }
    out
}

#[test]
fn a_chain_verifies_and_its_head_is_the_last_hash() {
    let t = trail(50);
    assert_eq!(t[0].prev, GENESIS);
    assert_eq!(t[0].seq, 1);
    assert!(t.iter().all(Entry::sealed));
    let (seq, head) = verify(&t).expect("intact");
    assert_eq!(seq, 50);
    assert_eq!(head, t[49].hash);
    assert_eq!(verify(&[]), Ok((0, GENESIS.to_string())));
    // Verifying from a published head covers the rest only.
    let mut v = Verifier::after(t[19].seq, &t[19].hash);
    for e in &t[20..] {
        v.push(e).expect("fits");
    }
    assert_eq!(v.count, 30);
}

#[test]
fn an_edited_entry_is_named() {
    let mut t = trail(10);
    t[4].subject = "someone_else".into();
    assert_eq!(verify(&t), Err(Broken::Content { seq: 5 }));
    // Re-hashing the edited entry does not help: the next one no longer links to it.
    let mut t = trail(10);
    t[4].detail = "{}".into();
    t[4].hash = entry_hash(
        &t[4].prev,
        t[4].seq,
        t[4].at,
        &t[4].actor,
        &t[4].action,
        &t[4].subject,
        &t[4].detail,
    );
    assert_eq!(verify(&t), Err(Broken::Link { seq: 6 }));
    assert!(Broken::Link { seq: 6 }.to_string().contains("entry 6"));
}

#[test]
fn removed_or_inserted_entries_are_named() {
    let mut t = trail(10);
    t.remove(3);
    assert_eq!(
        verify(&t),
        Err(Broken::Gap {
            seq: 5,
            expected: 4
        })
    );
    let mut t = trail(10);
    let extra = t[2].clone();
    t.insert(3, extra);
    assert_eq!(
        verify(&t),
        Err(Broken::Gap {
            seq: 3,
            expected: 4
        })
    );
    // Fields are length-prefixed: moving a character between fields changes the hash.
    assert_ne!(
        entry_hash(GENESIS, 1, 0, "ab", "c", "", ""),
        entry_hash(GENESIS, 1, 0, "a", "bc", "", "")
    );
}
