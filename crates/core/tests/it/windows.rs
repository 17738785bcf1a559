//! Window arithmetic at the boundaries.

use cityos_core::indicators::Func;
use cityos_core::windows::{Late, Sliding, Tumbling};

const M: i64 = 60_000;

#[test]
fn tumbling_windows_close_at_their_boundary() {
    let mut w = Tumbling::new(M);
    assert!(w.push(0, 1.0).unwrap().is_empty());
    assert!(w.push(M - 1, 3.0).unwrap().is_empty(), "still [0, 1 min)");
    // Exactly at the boundary: the first window closes, the reading opens the next.
    let closed = w.push(M, 10.0).unwrap();
    assert_eq!(closed.len(), 1);
    let (start, acc) = closed[0];
    assert_eq!(start, 0);
    assert_eq!(acc.value(Func::Count, M), Some(2.0));
    assert_eq!(acc.value(Func::Sum, M), Some(4.0));
    assert_eq!(acc.value(Func::Avg, M), Some(2.0));
    assert_eq!(acc.value(Func::Min, M), Some(1.0));
    assert_eq!(acc.value(Func::Max, M), Some(3.0));
    assert_eq!(acc.value(Func::Last, M), Some(3.0));
    assert_eq!(acc.value(Func::Rate, M), Some(2.0 / 60.0));
    // Skipping two windows: they close empty, in order.
    let closed = w.push(4 * M + 5, 7.0).unwrap();
    let starts: Vec<i64> = closed.iter().map(|c| c.0).collect();
    assert_eq!(starts, vec![M, 2 * M, 3 * M]);
    assert_eq!(
        closed[1].1.value(Func::Avg, M),
        None,
        "an empty window has no average"
    );
    assert_eq!(closed[1].1.value(Func::Count, M), Some(0.0));
    assert_eq!(w.current().unwrap().0, 4 * M);
    // A reading for a closed window is late.
    assert_eq!(w.push(3 * M, 1.0), Err(Late));
    // Negative times align too (floor, not truncation).
    let mut n = Tumbling::new(M);
    n.push(-1, 1.0).unwrap();
    assert_eq!(n.current().unwrap().0, -M);
}

#[test]
fn sliding_windows_exclude_their_old_edge() {
    let mut w = Sliding::new(5 * M);
    for (t, v) in [(0, 5.0), (M, 1.0), (2 * M, 9.0), (3 * M, 4.0)] {
        w.push(t, v).unwrap();
    }
    assert_eq!(w.value(Func::Count), Some(4.0));
    assert_eq!(w.value(Func::Max), Some(9.0));
    assert_eq!(w.value(Func::Min), Some(1.0));
    // At 5 min the reading at 0 falls out: the window is (0, 5 min].
    w.advance(5 * M);
    assert_eq!(w.value(Func::Count), Some(3.0));
    assert_eq!(w.value(Func::Sum), Some(14.0));
    w.advance(6 * M);
    assert_eq!(w.value(Func::Min), Some(4.0), "the 1.0 at 1 min is gone");
    assert_eq!(w.value(Func::Max), Some(9.0));
    w.advance(7 * M);
    assert_eq!(w.value(Func::Max), Some(4.0));
    assert_eq!(w.value(Func::Last), Some(4.0));
    w.advance(8 * M);
    assert_eq!(w.value(Func::Count), Some(0.0));
    assert_eq!(w.value(Func::Avg), None);
    assert_eq!(w.value(Func::Sum), Some(0.0));
    // Inside the window a reading may come out of order; older than the window is late.
    assert_eq!(w.push(2 * M, 1.0), Err(Late));
    w.push(7 * M, 2.0).unwrap();
    assert_eq!(w.value(Func::Last), Some(2.0));
    w.advance(13 * M);
    // Rate: readings per second over the window's length.
    w.push(13 * M, 1.0).unwrap();
    w.push(13 * M + 1, 1.0).unwrap();
    assert_eq!(w.value(Func::Rate), Some(2.0 / 300.0));
}

#[test]
fn sliding_windows_keep_constant_memory_under_a_flood() {
    let mut w = Sliding::new(M);
    // A million readings in one minute: 60 panes, whatever the rate.
    for i in 0..1_000_000i64 {
        w.push(i * M / 1_000_000, (i % 100) as f64).unwrap();
    }
    assert_eq!(w.value(Func::Count), Some(1_000_000.0));
    assert_eq!(w.value(Func::Max), Some(99.0));
    assert!(std::mem::size_of_val(&w) < 100);
    assert_eq!(
        w.heap_bytes(),
        60 * (std::mem::size_of::<cityos_core::windows::Acc>() + 8)
    );
    // Panes of one second: at 1 min + 1 s the first second's readings are gone.
    w.advance(M + 1000);
    let left = w.value(Func::Count).unwrap();
    assert!(left < 1_000_000.0 && left > 960_000.0, "{left}");
    // Out-of-order readings inside the window count; `last` is the latest in time.
    let mut o = Sliding::new(M);
    o.push(30_000, 5.0).unwrap();
    o.push(10_000, 7.0).unwrap();
    assert_eq!(o.value(Func::Last), Some(5.0));
    assert_eq!(o.value(Func::Max), Some(7.0));
    // …also inside one pane.
    o.push(30_500, 4.0).unwrap();
    o.push(30_200, 9.0).unwrap();
    assert_eq!(o.value(Func::Last), Some(4.0));
    assert_eq!(o.value(Func::Max), Some(9.0));
    // A jump of more than a window empties it.
    o.advance(10 * M);
    assert_eq!(o.value(Func::Count), Some(0.0));
}
