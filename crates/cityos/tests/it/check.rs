//! `cityos check`: every problem in the configuration files, with its line.

use crate::support::{cityos, root, stderr, stdout, tmp};

#[test]
fn check_reports_every_problem_with_its_line() {
    let dir = tmp("check");
    let ok = cityos(&["check"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with("ok: 3320 regions") && stdout(&ok).contains("53 indicators"),
        "{}",
        stdout(&ok)
    );
    let text = std::fs::read_to_string(root().join("data/xuhui/taxonomy.toml")).unwrap();
    let bad = text
        .replacen("level = \"district\"", "level = \"province\"", 1)
        .replacen("handle = \"", "handle = \"x", 1);
    let f = dir.join("bad.toml");
    std::fs::write(&f, &bad).unwrap();
    let o = cityos(&["check", "--taxonomy", f.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("problem(s)"), "{err}");
    assert!(
        err.contains("level \"province\" must be district, subdistrict or community"),
        "{err}"
    );
    assert!(err.contains("deadlines.handle"), "{err}");
    assert!(err.matches("line ").count() >= 2, "{err}");
    let o = cityos(&["check", "--territory", "/no/such/file.geojson"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/no/such/file.geojson"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(dir);
}
