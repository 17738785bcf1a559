//! Embeds the meal service's canteens and meal points (`data/xuhui/meals/canteens.csv`) for
//! the life circle when the file is there: `$OUT_DIR/canteens.rs` is `Some(text)` or `None`.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/xuhui");
    let file = root.join("meals/canteens.csv");
    let watch = if root.join("meals").is_dir() {
        root.join("meals")
    } else {
        root.clone()
    };
    println!("cargo:rerun-if-changed={}", watch.display());
    println!("cargo:rerun-if-changed=build.rs");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("canteens.rs");
    let code = if file.is_file() {
        format!(
            "Some(include_str!({:?}))",
            file.canonicalize().expect("canteens path")
        )
    } else {
        "None".to_string()
    };
    std::fs::write(out, code).expect("write canteens.rs");
}
