//! `cityos classify train | eval | predict` on a CSV generated here: the model file in the
//! data directory, one JSON answer per input line (errors for unreadable lines, not a
//! crash), eval's JSON, and the refusals (missing labels, one class, no model, a damaged
//! model).

use crate::support::{cityos, stderr, stdout, tmp};
use std::io::Write;
use std::process::{Command, Stdio};

/// A labelled CSV of made-up messages: quoted fields with commas and line breaks, a BOM,
/// CRLF line ends.
fn csv(rows: usize) -> String {
    let lines = [
        ("路灯", "路灯不亮，晚上很黑"),
        ("噪声", "半夜施工，噪音太大"),
        ("垃圾", "垃圾桶满了没人清运"),
    ];
    let mut s = String::from("\u{FEFF}id,subject,detail,label1\r\n");
    for i in 0..rows {
        let (label, text) = lines[i % 3];
        s.push_str(&format!(
            "{i},\"第{i}号, 反映\",\"{text}\n已经{}天了\",{label}\r\n",
            i % 9
        ));
    }
    s
}

fn predict(data_dir: &str, input: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args(["classify", "predict", "--data-dir", data_dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses to start closes its stdin early: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let o = child.wait_with_output().unwrap();
    (o.status.success(), stdout(&o), stderr(&o))
}

#[test]
fn train_eval_predict_and_bad_input() {
    let dir = tmp("classify");
    let file = dir.join("train.csv");
    std::fs::write(&file, csv(120)).unwrap();
    let data = dir.join("data");
    let (f, d) = (file.to_str().unwrap(), data.to_str().unwrap());

    let o = cityos(&[
        "classify",
        "train",
        "--data",
        f,
        "--data-dir",
        d,
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("trained on 120 messages, 3 labels"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("scores calibrated on 5-fold out-of-fold margins: scale"),
        "{}",
        stdout(&o)
    );
    let first = std::fs::read(data.join("classifier.model")).unwrap();
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        f,
        "--data-dir",
        d,
        "--seed",
        "3",
    ]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(data.join("classifier.model")).unwrap(),
        first,
        "deterministic"
    );

    let long = "路灯坏了".repeat(25_000);
    let (ok, out, err) = predict(d, &format!("路灯不亮\n\n！？😀😀\n{long}\n半夜施工噪音\n"));
    assert!(ok, "{err}");
    let answers: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 5, "{out}");
    assert_eq!(answers[0]["label"], "路灯");
    assert!(answers[0]["score"].as_f64().unwrap() > 0.0);
    assert_eq!(answers[0]["top"].as_array().unwrap().len(), 3);
    for a in [&answers[0], &answers[3], &answers[4]] {
        let top: Vec<f64> = a["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["score"].as_f64().unwrap())
            .collect();
        assert!(top.iter().all(|s| (0.0..=1.0).contains(s)), "{a}");
        assert!(top.iter().sum::<f64>() <= 1.0 + 1e-3, "{a}");
        assert_eq!(top[0], a["score"].as_f64().unwrap());
    }
    assert_eq!(answers[1]["error"], "the text is empty");
    assert!(answers[2]["error"]
        .as_str()
        .unwrap()
        .contains("only punctuation"));
    assert_eq!(
        answers[3]["label"], "路灯",
        "100 KB of text is cut, not refused"
    );
    assert_eq!(answers[4]["label"], "噪声");
    assert_eq!(answers[4]["line"], 5);

    let o = cityos(&["classify", "eval", "--data", f, "--folds", "5", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("macro-F1") && text.contains("confusion matrix"),
        "{text}"
    );
    assert!(
        text.contains("score calibration: ECE") && text.contains("accuracy among them"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(v["messages"], 120);
    assert_eq!(v["labels"].as_array().unwrap().len(), 3);
    assert!(v["macro_f1"].as_f64().unwrap() > 0.9, "{v}");
    let support: Vec<u64> = v["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["support"].as_u64().unwrap())
        .collect();
    assert_eq!(support, [40, 40, 40]);
    let cal = &v["calibration"];
    let ece = cal["ece"].as_f64().unwrap();
    assert!((0.0..0.1).contains(&ece), "{cal}");
    let thresholds: Vec<f64> = cal["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let (share, acc) = (
                t["share"].as_f64().unwrap(),
                t["accuracy"].as_f64().unwrap(),
            );
            assert!(
                (0.0..=1.0).contains(&share) && (0.0..=1.0).contains(&acc),
                "{t}"
            );
            t["threshold"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(thresholds, [0.5, 0.6, 0.7, 0.8, 0.9]);
    assert_eq!(cal["bins"].as_array().unwrap().len(), 10);
    let o = cityos(&["classify", "eval", "--data", f, "--folds", "1"]);
    assert!(
        stderr(&o).contains("--folds must be at least 2"),
        "{}",
        stderr(&o)
    );

    // A damaged model and a missing one: named errors.
    let mut bad = first.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(data.join("classifier.model"), &bad).unwrap();
    let (ok, _, err) = predict(d, "路灯\n");
    assert!(!ok && err.contains("corrupt (checksum mismatch)"), "{err}");
    // A model written by an older build (format 1): refused by name, with the remedy.
    let mut old = first.clone();
    old[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(data.join("classifier.model"), &old).unwrap();
    let (ok, _, err) = predict(d, "路灯\n");
    assert!(
        !ok && err.contains("format version 1 is from an older build")
            && err.contains("cityos classify train"),
        "{err}"
    );
    let (ok, _, err) = predict(dir.join("nowhere").to_str().unwrap(), "路灯\n");
    assert!(!ok && err.contains("no classifier model at"), "{err}");

    // Training files with missing labels or a single class are refused.
    let missing = dir.join("missing.csv");
    std::fs::write(
        &missing,
        "subject,detail,label1\n,路灯坏了,路灯\n,噪音,\n,\"垃圾,\n满了\",\n",
    )
    .unwrap();
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        missing.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("2 row(s) have no label (lines 3, 4)"),
        "{}",
        stderr(&o)
    );
    let one = dir.join("one.csv");
    std::fs::write(
        &one,
        "subject,detail,label1\n,路灯坏了,路灯\n,路灯不亮,路灯\n",
    )
    .unwrap();
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        one.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("at least two classes"),
        "{}",
        stderr(&o)
    );
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        f,
        "--label-col",
        "nope",
        "--data-dir",
        d,
    ]);
    assert!(stderr(&o).contains("no column \"nope\""), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_classify_refuses_a_missing_file() {
    let dir = tmp("classify-bench");
    let o = cityos(&[
        "bench",
        "classify",
        "--data",
        dir.join("none.csv").to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "a missing --data file is an error");
    let _ = std::fs::remove_dir_all(&dir);
}
