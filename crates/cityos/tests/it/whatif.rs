//! `cityos whatif` (issue 17): a simulated day replayed under the current rules and under
//! tighter handling deadlines — the same rules give the same figures, the replay under the
//! current rules stays near what happened, tighter deadlines lower the on-time rate; a
//! candidate taxonomy that does not load and bad dates are named. And `cityos check
//! --scoring` names a bad scoring file's line.

use crate::support::{cityos, root, stderr, stdout, tmp};
use serde_json::Value;

fn rate(v: &Value, side: &str, m: &str) -> f64 {
    v["district"][side][m]["value"].as_f64().unwrap()
}

#[test]
fn whatif_replays_a_day_under_candidate_rules() {
    let dir = tmp("whatif");
    let db = dir.join("cityos.db");
    let o = cityos(&[
        "simulate",
        "--reports",
        "300",
        "--tail-days",
        "2",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(root().join("data/xuhui/taxonomy.toml")).unwrap();
    // Every handling time limit in working days becomes four working hours.
    let tight: String = text
        .lines()
        .map(|l| {
            if l.starts_with("handle = \"") && l.contains("wd\"") {
                "handle = \"4wh\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let (same, tighter) = (dir.join("same.toml"), dir.join("tight.toml"));
    std::fs::write(&same, &text).unwrap();
    std::fs::write(&tighter, &tight).unwrap();
    let data = dir.to_str().unwrap();
    // The simulated day is 2026-11-25 (the simulator's fixed day).
    let run = |tax: &std::path::Path| {
        let o = cityos(&[
            "whatif",
            "--from",
            "2026-11-25",
            "--to",
            "2026-11-25",
            "--taxonomy",
            tax.to_str().unwrap(),
            "--data",
            data,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<Value>(stdout(&o).trim()).unwrap()
    };
    let a = run(&same);
    let b = run(&same);
    assert_eq!(a, b, "the same rules give the same figures");
    assert!(a["reports"].as_u64().unwrap() >= 300, "{a}");
    assert_eq!(
        a["district"]["baseline"], a["district"]["whatif"],
        "unchanged rules change nothing"
    );
    assert_eq!(
        a["district"]["actual"]["received"],
        a["district"]["whatif"]["received"]
    );
    let c = run(&tighter);
    assert!(
        rate(&c, "whatif", "handle_on_time") < rate(&c, "baseline", "handle_on_time"),
        "tighter deadlines are missed more often: {}",
        c["district"]
    );
    assert!(c["departments"].as_array().unwrap().len() > 5);
    // The table names the sides.
    let o = cityos(&[
        "whatif",
        "--from",
        "2026-11-25",
        "--to",
        "2026-11-25",
        "--taxonomy",
        tighter.to_str().unwrap(),
        "--data",
        data,
    ]);
    assert!(
        stdout(&o).contains("handle_on_time") && stdout(&o).contains("district"),
        "{}",
        stdout(&o)
    );
    // Bad input, named.
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, text.replacen("handle = \"", "handle = \"x", 1)).unwrap();
    let o = cityos(&[
        "whatif",
        "--from",
        "2026-11-25",
        "--to",
        "2026-11-25",
        "--taxonomy",
        broken.to_str().unwrap(),
        "--data",
        data,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the candidate rules do not load") && stderr(&o).contains("line "),
        "{}",
        stderr(&o)
    );
    let o = cityos(&[
        "whatif",
        "--from",
        "2026-11-26",
        "--to",
        "2026-11-25",
        "--taxonomy",
        same.to_str().unwrap(),
        "--data",
        data,
    ]);
    assert!(
        stderr(&o).contains("ends before it starts"),
        "{}",
        stderr(&o)
    );
    let o = cityos(&[
        "whatif",
        "--from",
        "yesterday",
        "--to",
        "2026-11-25",
        "--taxonomy",
        same.to_str().unwrap(),
        "--data",
        data,
    ]);
    assert!(stderr(&o).contains("is not a date"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_names_a_bad_scoring_file_by_line() {
    let dir = tmp("scoring");
    let ok = cityos(&["check"]);
    assert!(
        stdout(&ok).contains("scoring: 7 weights"),
        "{}",
        stdout(&ok)
    );
    let f = dir.join("scoring.toml");
    std::fs::write(
        &f,
        "name = \"x\"\n[[weight]]\nmeasure = \"speed\"\nweight = 10\n",
    )
    .unwrap();
    let o = cityos(&["check", "--scoring", f.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("3:") && stderr(&o).contains("unknown measure \"speed\""),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(dir);
}
