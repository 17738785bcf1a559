//! `cityos assistance eval | generate` on a small synthetic district: eval's last line is
//! one JSON object with the overall precision and recall and a list of the six policies,
//! every planted household found and no decoy; generate writes the source CSVs and the
//! truth, and eval reads them back to the same figures; bad input is refused by name.

use crate::support::{cityos, stderr, stdout, tmp};
use serde_json::Value;

fn last_json(out: &str) -> Value {
    serde_json::from_str(out.lines().last().expect("some output")).expect("last line is JSON")
}

#[test]
fn eval_reports_precision_and_recall_per_policy() {
    let o = cityos(&[
        "assistance",
        "eval",
        "--households",
        "3000",
        "--seed",
        "5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let v = last_json(&out);
    let policies = v["policies"].as_array().unwrap();
    let codes: Vec<&str> = policies
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "child_allowance",
            "low_income",
            "spending_poverty",
            "medical_aid",
            "graduate_jobs",
            "elder_care"
        ]
    );
    for p in policies {
        assert_eq!(p["planted_found"], p["planted"], "{p}");
        assert_eq!(p["decoys_found"], 0, "{p}");
        let (pr, re) = (
            p["precision"].as_f64().unwrap(),
            p["recall"].as_f64().unwrap(),
        );
        assert!((0.0..=1.0).contains(&pr) && (0.0..=1.0).contains(&re));
    }
    let (pr, re) = (
        v["precision"].as_f64().unwrap(),
        v["recall"].as_f64().unwrap(),
    );
    assert!(pr >= 0.8 && re >= 0.95, "{v}");
    assert_eq!(v["households"], 3000);
    assert_eq!(v["refused"], 0);
    assert!(v["rows"].as_u64().unwrap() > 90_000);
    // The human lines name every policy; no name or ID number is printed.
    assert!(out.contains("困境儿童基本生活费") && out.contains("高龄独居关爱"));
    assert!(!out.contains('某') && !out.contains("990104"));
}

#[test]
fn generate_writes_the_sources_and_eval_reads_them_back() {
    let dir = tmp("assistance");
    let d = dir.to_str().unwrap();
    let o = cityos(&["assistance", "generate", "--households", "1200", "--out", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "population",
        "assistance",
        "disability",
        "employment",
        "unemployment",
        "students",
        "medical",
        "chronic",
        "corrections",
        "utilities",
        "lone_elder",
        "truth",
        "decoys",
    ] {
        assert!(dir.join(format!("{f}.csv")).exists(), "{f}.csv");
    }
    let pop = std::fs::read_to_string(dir.join("population.csv")).unwrap();
    assert!(pop.starts_with("person_id,household_id,name,"));
    let generated = cityos(&["assistance", "eval", "--households", "1200", "--json"]);
    let read = cityos(&["assistance", "eval", "--data", d, "--json"]);
    assert!(read.status.success(), "{}", stderr(&read));
    let (a, b) = (last_json(&stdout(&generated)), last_json(&stdout(&read)));
    assert_eq!(a["policies"], b["policies"]);
    assert_eq!(a["rows"], b["rows"]);

    // A bad row in a source file is named by line; a bad rulebook refuses to run.
    let mut dis = std::fs::read_to_string(dir.join("disability.csv")).unwrap();
    dis.push_str("990104000000000000,1,肢体,2020-01-01\n");
    std::fs::write(dir.join("disability.csv"), dis).unwrap();
    let o = cityos(&["assistance", "eval", "--data", d, "--json"]);
    assert!(o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("disability: 1 row(s) refused") && e.contains("unknown person id"),
        "{e}"
    );
    assert!(
        !e.contains("990104000000000000"),
        "the raw id is not echoed: {e}"
    );
    assert_eq!(last_json(&stdout(&o))["refused"], 1);

    // Data that is not the synthetic district (an ID number of a real province) is never
    // hashed under the built-in key: the missing key is named; with one it runs.
    let real = pop.replacen("\n99", "\n31", 1);
    std::fs::write(dir.join("population.csv"), &real).unwrap();
    let o = cityos(&["assistance", "eval", "--data", d, "--json"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--key-file"), "{}", stderr(&o));
    let key = dir.join("pool.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let o = cityos(&[
        "assistance",
        "eval",
        "--data",
        d,
        "--key-file",
        key.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(dir.join("population.csv"), &pop).unwrap();

    let book = dir.join("policies.toml");
    let text =
        std::fs::read_to_string(crate::support::root().join("data/xuhui/assistance/policies.toml"))
            .unwrap()
            .replace("disability_grade <= 2) >= 2", "disability_level <= 2) >= 2");
    std::fs::write(&book, text).unwrap();
    let o = cityos(&[
        "assistance",
        "eval",
        "--households",
        "50",
        "--policies",
        book.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no field \"disability_level\" is declared"),
        "{}",
        stderr(&o)
    );
    let o = cityos(&[
        "assistance",
        "eval",
        "--households",
        "50",
        "--as-of",
        "2026-13-01",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--as-of"));
    let _ = std::fs::remove_dir_all(&dir);
}
