//! `cityos classify corrections` and `classify train --corrections`: cases filed in the
//! 待分拨 triage queue with generated text are classified by an officer (one taking the
//! model's suggestion, others correcting it), exported as staff labels (phone numbers
//! masked, an unclassified case left out), and a model trained with them picks the
//! corrected category for similar text, which the model trained without them cannot;
//! a file that is not a corrections file is refused with its name.

use crate::support::{cityos, stderr, stdout, tmp};
use cityos_core::case::{Channel, Scored, Suggestion};
use cityos_core::time::{local, Date, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::Role;
use cityos_engine::config::Config;
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use std::io::Write;
use std::path::Path;
use std::process::{Command as Proc, Stdio};

/// A labelled training CSV of made-up messages (three labels, none about dogs).
fn base_csv() -> String {
    let lines = [
        ("neighbour_dispute", "楼上邻居半夜装修，噪音吵得睡不着"),
        ("bike_disorder", "共享单车堆在地铁站出口，挡住了路"),
        ("exposed_garbage", "垃圾桶满了好几天没人清运，很臭"),
    ];
    let mut s = String::from("subject,detail,label1\n");
    for i in 0..90 {
        let (label, text) = lines[i % 3];
        s.push_str(&format!(
            "\"第{i}号反映\",\"{text}，已经{}天了\",{label}\n",
            i % 7
        ));
    }
    s
}

fn suggestion(category: &str, score: f32) -> Suggestion {
    Suggestion {
        category: category.into(),
        line: None,
        department: None,
        score,
        top: vec![Scored {
            category: category.into(),
            score,
        }],
        model: "test".into(),
        routed: false,
        reason: "低于阈值".into(),
        places: vec![],
        located_by_text: false,
        cues: vec![],
    }
}

fn predict(data_dir: &Path, text: &str) -> String {
    let mut child = Proc::new(env!("CARGO_BIN_EXE_cityos"))
        .args([
            "classify",
            "predict",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{text}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    v["label"].as_str().unwrap().to_string()
}

/// Files triage cases with generated text and classifies some of them; answers the case
/// numbers (dog cases corrected, the bike case taken, one left in the queue).
fn classified_store(data: &Path) -> Vec<String> {
    std::fs::create_dir_all(data).unwrap();
    let cfg = Config::xuhui();
    let store = SqliteStore::open(&data.join("cityos.db"), Durability::Normal).unwrap();
    let mut e = cfg.engine(Box::new(store)).unwrap();
    let t0 = local(Date::new(2026, 11, 25).unwrap(), 10, 0);
    let p = {
        let t = &cfg.territory;
        let sub = t.by_code("310104003").unwrap();
        let grid = t
            .regions()
            .filter(|(id, r)| r.level == cityos_core::Level::Grid && t.is_within(*id, sub))
            .nth(4)
            .unwrap()
            .0;
        t.interior_point(grid)
    };
    let dogs = [
        "小区里有人遛狗不牵绳，大狗追着小孩跑",
        "楼下的狗天天乱叫，遛狗不牵绳还随地大小便",
        "遛狗不拴绳，狗冲过来把老人吓倒了，电话 13912345678",
        "草坪上狗粪没人清理，遛狗的人不牵绳",
    ];
    let mut texts: Vec<(&str, &str, Option<&str>)> = dogs
        .iter()
        .map(|t| (*t, "neighbour_dispute", Some("pet_nuisance")))
        .collect();
    texts.push((
        "共享单车堆满了人行道",
        "bike_disorder",
        Some("bike_disorder"),
    ));
    texts.push(("门口一直有怪味", "exposed_garbage", None));
    let officer = Actor {
        id: "zhang.district".into(),
        role: Role::DistrictOfficer,
        department: None,
        scope: None,
    };
    let mut numbers = Vec::new();
    for (i, (text, sug, pick)) in texts.into_iter().enumerate() {
        let at = t0 + i as i64 * MINUTE;
        let o = e
            .submit(NewReport {
                channel: Channel::Citizen,
                category: "triage".into(),
                lon: p[0] + i as f64 * 0.001,
                lat: p[1],
                text: text.into(),
                contact: None,
                at,
                media: Vec::new(),
                priority: None,
                playbook: None,
                suggestion: Some(Box::new(suggestion(sug, 0.4))),
            })
            .unwrap();
        if let Some(pick) = pick {
            e.transition(
                o.case.id,
                Command::new(
                    Action::Classify {
                        category: pick.into(),
                    },
                    officer.clone(),
                ),
                at + MINUTE,
            )
            .unwrap();
        }
        numbers.push(o.case.number);
    }
    numbers
}

#[test]
fn staff_corrections_are_exported_and_teach_the_model() {
    let dir = tmp("corrections");
    let data = dir.join("data");
    let numbers = classified_store(&data);
    let d = data.to_str().unwrap();

    // Export (default place: the data directory).
    let o = cityos(&["classify", "corrections", "--data-dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("wrote 5 staff labels")
            && stdout(&o).contains("1 took the model's suggestion, 4 corrected it, 0 had none"),
        "{}",
        stdout(&o)
    );
    let file = data.join("classify-corrections.csv");
    let csv = std::fs::read_to_string(&file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-readable only: {mode:o}");
    }
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "text,label,suggested,score,case,at");
    assert_eq!(lines.len(), 6, "{csv}");
    assert_eq!(
        lines[1],
        format!(
            "\"小区里有人遛狗不牵绳，大狗追着小孩跑\",\"pet_nuisance\",\"neighbour_dispute\",0.400,\"{}\",\"2026-11-25T10:01:00+08:00\"",
            numbers[0]
        )
    );
    assert!(
        lines[5].starts_with("\"共享单车堆满了人行道\",\"bike_disorder\",\"bike_disorder\","),
        "{csv}"
    );
    assert!(
        !csv.contains("13912345678"),
        "the phone number is masked: {csv}"
    );
    assert!(
        !csv.contains("怪味"),
        "an unclassified case is not a label: {csv}"
    );

    // Without the corrections the model cannot know the dog category; with them it can.
    let train = dir.join("train.csv");
    std::fs::write(&train, base_csv()).unwrap();
    let t = train.to_str().unwrap();
    let plain = dir.join("plain");
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        t,
        "--data-dir",
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let probe = "有人遛狗不牵绳，狗到处乱跑";
    assert_ne!(predict(&plain, probe), "pet_nuisance");
    let f = file.to_str().unwrap();
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        t,
        "--data-dir",
        d,
        "--corrections",
        f,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("5 staff corrections added"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("trained on 95 messages, 4 labels"),
        "{}",
        stdout(&o)
    );
    assert_eq!(predict(&data, probe), "pet_nuisance");

    // A file that is not a corrections file is refused by name.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "text,category\n遛狗不牵绳,pet_nuisance\n").unwrap();
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        t,
        "--data-dir",
        d,
        "--corrections",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("bad.csv") && e.contains("no column \"label\""),
        "{e}"
    );
    std::fs::write(&bad, "text,label\n\"遛狗不牵绳,pet_nuisance\n").unwrap();
    let o = cityos(&[
        "classify",
        "train",
        "--data",
        t,
        "--data-dir",
        d,
        "--corrections",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("bad.csv") && stderr(&o).contains("never closed"),
        "{}",
        stderr(&o)
    );
    // No store: named.
    let o = cityos(&[
        "classify",
        "corrections",
        "--data-dir",
        dir.join("none").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no store here"), "{}", stderr(&o));
}
