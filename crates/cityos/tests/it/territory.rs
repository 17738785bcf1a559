//! `cityos territory generate`: the committed territory is what the generator makes.

use crate::support::{cityos, root, stderr, tmp};

#[test]
fn the_committed_territory_is_what_the_generator_makes() {
    let dir = tmp("territory");
    let out = dir.join("t.geojson");
    let o = cityos(&["territory", "generate", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let generated = std::fs::read(&out).unwrap();
    let committed = std::fs::read(root().join("data/xuhui/territory.geojson")).unwrap();
    assert!(
        generated == committed,
        "data/xuhui/territory.geojson is stale: run `cargo run -- territory generate`"
    );
    let _ = std::fs::remove_dir_all(dir);
}
