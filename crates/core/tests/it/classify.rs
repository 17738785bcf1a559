//! The citizen-text classifier on text generated here (templates per class with noise):
//! deterministic training, the model file round trip and its corruptions, CSV quirks,
//! stratified folds, metrics on a hand-checked confusion matrix, and bad input.

use cityos_core::classify::calibrate::{Calibration, Fit, Reliability};
use cityos_core::classify::csv::{parse, DataError};
use cityos_core::classify::eval::{cross_validate, stratified_folds, Metrics};
use cityos_core::classify::text::MAX_CHARS;
use cityos_core::classify::train::Example;
use cityos_core::classify::{
    normalise, readable, train, Model, ModelError, TextError, TrainError, TrainOptions,
};
use cityos_core::rng::Rng;

/// Messages of three made-up lines of work, each built from its own words plus shared
/// filler, with random order and noise characters.
fn generated(n: usize, seed: u64) -> Vec<Example> {
    let classes: [(&str, &[&str]); 3] = [
        ("路灯", &["路灯不亮", "灯杆倾斜", "夜里一片黑", "照明坏了"]),
        (
            "噪声",
            &["半夜施工", "噪音太大", "广场舞音响", "吵得睡不着"],
        ),
        ("垃圾", &["垃圾满了", "没人清运", "垃圾桶发臭", "乱倒垃圾"]),
    ];
    let filler = [
        "您好",
        "我家附近",
        "已经好几天了",
        "请尽快处理",
        "谢谢",
        "某某路",
    ];
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let (label, words) = classes[i % classes.len()];
            let mut t = String::new();
            for _ in 0..4 {
                if rng.chance(0.6) {
                    t.push_str(words[rng.below(words.len() as u64) as usize]);
                } else {
                    t.push_str(filler[rng.below(filler.len() as u64) as usize]);
                }
                t.push(if rng.chance(0.5) { '，' } else { ' ' });
                if rng.chance(0.2) {
                    t.push(char::from(b'A' + rng.below(26) as u8));
                }
            }
            t.push_str(words[rng.below(words.len() as u64) as usize]);
            Example {
                text: t,
                label: label.to_string(),
            }
        })
        .collect()
}

#[test]
fn training_is_deterministic_and_the_model_round_trips_byte_for_byte() {
    let ex = generated(300, 1);
    let o = TrainOptions::default();
    let a = train(&ex, &o).unwrap();
    let b = train(&ex, &o).unwrap();
    let bytes = a.to_bytes();
    assert_eq!(bytes, b.to_bytes(), "same examples and seed, same model");
    let back = Model::from_bytes(&bytes).unwrap();
    assert_eq!(back, a);
    assert_eq!(back.to_bytes(), bytes, "saved again, the same bytes");
    assert_eq!(
        back.labels,
        ["噪声", "垃圾", "路灯"],
        "sorted by UTF-8 bytes"
    );
    assert_eq!(back.trained_on, 300);
    // It learned: unseen generated messages are classified right.
    let test = generated(150, 99);
    let right = test
        .iter()
        .filter(|e| back.predict(&e.text).unwrap().label == e.label)
        .count();
    assert!(right >= 140, "{right}/150");
    let p = back.predict("路灯不亮，夜里一片黑").unwrap();
    assert_eq!(p.label, "路灯");
    assert_eq!(p.top.len(), 3);
    assert_eq!(p.top[0], (p.label.clone(), p.score));
    assert!(p.top.windows(2).all(|w| w[0].1 >= w[1].1));
    let sum: f32 = p.top.iter().map(|t| t.1).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{sum}");
}

#[test]
fn a_damaged_model_file_is_a_named_error() {
    let bytes = train(&generated(90, 2), &TrainOptions::default())
        .unwrap()
        .to_bytes();
    assert_eq!(Model::from_bytes(b""), Err(ModelError::Truncated));
    assert_eq!(Model::from_bytes(b"CITY"), Err(ModelError::Truncated));
    assert_eq!(
        Model::from_bytes(b"{\"not\":\"a model\"}"),
        Err(ModelError::NotAModel)
    );
    let mut v = bytes.clone();
    v[8] = 9;
    assert_eq!(Model::from_bytes(&v), Err(ModelError::Version(9)));
    // A model of format 1 (before calibrated scores) is refused by name, with the remedy.
    let mut v = bytes.clone();
    v[8..12].copy_from_slice(&1u32.to_le_bytes());
    let e = Model::from_bytes(&v).unwrap_err();
    assert_eq!(e, ModelError::Outdated(1));
    assert!(
        e.to_string()
            .contains("retrain it with `cityos classify train`"),
        "{e}"
    );
    for at in [20, bytes.len() / 2, bytes.len() - 1] {
        let mut v = bytes.clone();
        v[at] ^= 0x40;
        assert_eq!(
            Model::from_bytes(&v),
            Err(ModelError::Checksum),
            "byte {at}"
        );
    }
    for len in [12, 40, bytes.len() - 1] {
        assert!(Model::from_bytes(&bytes[..len]).is_err(), "cut at {len}");
    }
}

#[test]
fn normalisation_and_unreadable_text() {
    assert_eq!(
        normalise("  ＡＢＣ１２３\u{3000}路灯\n\n\t不亮  "),
        "abc123 路灯 不亮"
    );
    assert_eq!(
        normalise("後臺 后台"),
        "後臺 后台",
        "traditional and simplified kept"
    );
    assert_eq!(readable(""), Err(TextError::Empty));
    assert_eq!(readable(" \n\t\u{3000}"), Err(TextError::Empty));
    assert_eq!(readable("！！？？……😀😀👍"), Err(TextError::NoContent));
    assert_eq!(readable("😀 路灯"), Ok("😀 路灯".to_string()));
    let long = "路灯不亮".repeat(25_000); // 100,000 characters, 300 KB
    assert_eq!(normalise(&long).chars().count(), MAX_CHARS);
    let model = train(&generated(90, 3), &TrainOptions::default()).unwrap();
    assert_eq!(model.predict(&long).unwrap().label, "路灯");
    assert_eq!(model.predict("？？？"), Err(TextError::NoContent));
    assert_eq!(model.predict(""), Err(TextError::Empty));
    // Mixed scripts read fine.
    assert!(model.predict("Street light 路灯 broken!").is_ok());
}

#[test]
fn training_refuses_one_class_and_missing_labels() {
    let mut ex = generated(30, 4);
    for e in &mut ex {
        e.label = "路灯".into();
    }
    assert_eq!(
        train(&ex, &TrainOptions::default()),
        Err(TrainError::OneClass("路灯".into()))
    );
    assert_eq!(
        train(&[], &TrainOptions::default()),
        Err(TrainError::NoExamples)
    );
    let mut ex = generated(30, 4);
    ex[7].label = " ".into();
    assert_eq!(
        train(&ex, &TrainOptions::default()),
        Err(TrainError::NoLabel { index: 7 })
    );
}

#[test]
fn csv_quoted_fields_bom_and_bad_rows() {
    let text = "\u{FEFF}id,subject,detail,label1\r\n1,\"路灯, 不亮\",\"第一行\n第二行 \"\"引号\"\"\",路灯\r\n2,,噪音,噪声\r\n";
    let t = parse(text).unwrap();
    assert_eq!(t.header, ["id", "subject", "detail", "label1"]);
    assert_eq!(t.rows.len(), 2);
    assert_eq!(t.rows[0].1[1], "路灯, 不亮");
    assert_eq!(t.rows[0].1[2], "第一行\n第二行 \"引号\"");
    assert_eq!(t.rows[1].0, 4, "the second row starts on line 4");
    let ex = t.examples(&["subject", "detail"], "label1", true).unwrap();
    assert_eq!(ex[0].text, "路灯, 不亮\n第一行\n第二行 \"引号\"");
    assert_eq!(ex[1].text, "噪音");
    assert_eq!(ex[1].label, "噪声");

    assert_eq!(parse("a,b\n1,\"open\n2,3\n"), Err(DataError::Unclosed(2)));
    assert_eq!(parse(""), Err(DataError::Empty));
    let t = parse("a,b\n1,x\n\"2\"x,y\n").map(|_| ());
    assert_eq!(t, Err(DataError::StrayQuote { line: 3 }));
    let t = parse("text,label\n路灯坏了,路灯\n噪音,\n垃圾,  \n吵,噪声,多余\n").unwrap();
    let e = t.examples(&["text"], "label", true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "1 row(s) do not have as many fields as the header (line 5)"
    );
    let t = parse("text,label\n路灯坏了,路灯\n噪音,\n垃圾,  \n").unwrap();
    let e = t.examples(&["text"], "label", true).unwrap_err();
    assert_eq!(
        e,
        DataError::BadRows {
            problem: "have no label",
            count: 2,
            lines: vec![3, 4]
        }
    );
    assert_eq!(e.to_string(), "2 row(s) have no label (lines 3, 4)");
    let t = parse("text,label\n,路灯\n！！😀,噪声\n").unwrap();
    let e = t.examples(&["text"], "label", true).unwrap_err();
    assert!(e.to_string().starts_with("2 row(s) have no text"), "{e}");
    let e = t.examples(&["body"], "label", true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no column \"body\" (the header has text,label)"
    );
}

#[test]
fn folds_are_stratified() {
    // 23 of class 0, 11 of class 1, 6 of class 2, interleaved.
    let labels: Vec<usize> = (0..40)
        .map(|i| if i % 7 == 0 && i < 42 { 2 } else { i % 3 % 2 })
        .collect();
    let folds = stratified_folds(&labels, 5, 7);
    assert_eq!(folds, stratified_folds(&labels, 5, 7), "deterministic");
    for c in 0..3 {
        let total = labels.iter().filter(|&&l| l == c).count();
        let per: Vec<usize> = (0..5)
            .map(|f| (0..40).filter(|&i| labels[i] == c && folds[i] == f).count())
            .collect();
        let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
        assert!(hi - lo <= 1, "class {c}: {per:?}");
        assert_eq!(per.iter().sum::<usize>(), total);
    }
    let sizes: Vec<usize> = (0..5)
        .map(|f| folds.iter().filter(|&&x| x == f).count())
        .collect();
    assert_eq!(sizes, [8, 8, 8, 8, 8]);
}

#[test]
fn metrics_of_a_hand_checked_confusion_matrix() {
    // true a: 8 right, 2 called b; true b: 1 called a, 4 right; true c: 5 called b.
    let m = Metrics::from_confusion(
        vec!["a".into(), "b".into(), "c".into()],
        vec![vec![8, 2, 0], vec![1, 4, 0], vec![0, 5, 0]],
    );
    let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
    // a: P 8/9, R 8/10, F1 16/19. b: P 4/11, R 4/5, F1 1/2. c: 0.
    assert!(close(m.per_class[0].precision, 8.0 / 9.0));
    assert!(close(m.per_class[0].recall, 0.8));
    assert!(close(m.per_class[0].f1, 16.0 / 19.0));
    assert!(close(m.per_class[1].precision, 4.0 / 11.0));
    assert!(close(m.per_class[1].recall, 0.8));
    assert!(close(m.per_class[1].f1, 0.5));
    assert_eq!((m.per_class[2].precision, m.per_class[2].f1), (0.0, 0.0));
    assert_eq!(
        m.per_class.iter().map(|c| c.support).collect::<Vec<_>>(),
        [10, 5, 5]
    );
    assert!(close(m.accuracy, 12.0 / 20.0));
    assert!(close(m.macro_f1, (16.0 / 19.0 + 0.5) / 3.0));
}

#[test]
fn cross_validation_on_generated_text() {
    let ex = generated(300, 5);
    let m = cross_validate(&ex, 5, &TrainOptions::default()).unwrap();
    let total: u64 = m.confusion.iter().flatten().sum();
    assert_eq!(total, 300, "every message predicted once");
    assert_eq!(
        m.per_class.iter().map(|c| c.support).collect::<Vec<_>>(),
        [100, 100, 100]
    );
    assert!(m.macro_f1 > 0.9, "{}", m.macro_f1);
    assert_eq!(m, cross_validate(&ex, 5, &TrainOptions::default()).unwrap());
}

/// Like [`generated`] but harder: a message draws its words from its own class only with
/// probability `own`, else from another class's, so some messages are ambiguous and the
/// scores spread out.
fn mixed(n: usize, seed: u64, own: f64) -> Vec<Example> {
    let words: [&[&str]; 3] = [
        &["路灯不亮", "灯杆倾斜", "夜里一片黑", "照明坏了"],
        &["半夜施工", "噪音太大", "广场舞音响", "吵得睡不着"],
        &["垃圾满了", "没人清运", "垃圾桶发臭", "乱倒垃圾"],
    ];
    let labels = ["路灯", "噪声", "垃圾"];
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let c = i % 3;
            let mut t = String::from("您好，");
            for _ in 0..3 {
                let from = if rng.chance(own) {
                    c
                } else {
                    rng.below(3) as usize
                };
                t.push_str(words[from][rng.below(4) as usize]);
                t.push('，');
            }
            Example {
                text: t,
                label: labels[c].to_string(),
            }
        })
        .collect()
}

#[test]
fn scores_are_calibrated_probabilities() {
    // Separable text: nearly every answer right and scored near 1, so a small ECE.
    let ex = generated(300, 11);
    let m = cross_validate(&ex, 5, &TrainOptions::default()).unwrap();
    let r = &m.reliability;
    assert_eq!(r.n, 300);
    assert!(r.ece < 0.05, "ECE {} on separable text", r.ece);
    assert_eq!(r.thresholds.len(), 5);
    assert!(r.thresholds.windows(2).all(|w| w[0].share >= w[1].share));

    // Ambiguous text: scores spread out, and still mean what they say.
    let ex = mixed(900, 12, 0.6);
    let m = cross_validate(&ex, 5, &TrainOptions::default()).unwrap();
    let r = &m.reliability;
    assert!(
        m.accuracy > 0.6 && m.accuracy < 0.97,
        "not separable: {}",
        m.accuracy
    );
    assert!(
        (r.mean_score - r.accuracy).abs() < 0.05,
        "mean score {} against accuracy {}",
        r.mean_score,
        r.accuracy
    );
    assert!(r.ece < 0.08, "ECE {}", r.ece);
    // The fixed scale of an uncalibrated model is further off on this text.
    let raw = cross_validate(
        &ex,
        5,
        &TrainOptions {
            calib_folds: 0,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        r.ece < raw.reliability.ece,
        "calibrated {} against fixed {}",
        r.ece,
        raw.reliability.ece
    );

    // Every score lies in 0..1, the top three sum to at most 1, best first.
    let model = train(&ex, &TrainOptions::default()).unwrap();
    assert!(model.calibration().scale > 0.0);
    for e in mixed(60, 13, 0.5) {
        let p = model.predict(&e.text).unwrap();
        assert!(p.top.iter().all(|t| (0.0..=1.0).contains(&t.1)), "{p:?}");
        let sum: f32 = p.top.iter().map(|t| t.1).sum();
        assert!(sum <= 1.0 + 1e-5, "{sum}");
        assert!(p.top.windows(2).all(|w| w[0].1 >= w[1].1));
        assert_eq!(p.top[0], (p.label.clone(), p.score));
    }
}

#[test]
fn calibration_is_deterministic_and_stored() {
    let ex = mixed(300, 14, 0.7);
    let a = train(&ex, &TrainOptions::default()).unwrap();
    let b = train(&ex, &TrainOptions::default()).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes(), "same seed, same bytes");
    let back = Model::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(back.calibration(), a.calibration());
    assert_eq!(a.calibration().cross.len(), 9, "3 × 3 cross terms stored");
    let text = "您好，路灯不亮，吵得睡不着";
    assert_eq!(back.predict(text).unwrap(), a.predict(text).unwrap());
    let other = train(
        &ex,
        &TrainOptions {
            seed: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(other.to_bytes(), a.to_bytes(), "the seed matters");
    // Without calibration the fixed scale is stored, and read back alike.
    let raw = train(
        &ex,
        &TrainOptions {
            calib_folds: 0,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(raw.calibration(), &Calibration::uncalibrated(3));
    assert_eq!(Model::from_bytes(&raw.to_bytes()).unwrap(), raw);
}

#[test]
fn the_fit_recovers_a_known_scale_and_bias() {
    // Labels drawn from softmax(3 · margin + bias) with known bias: the fit finds them.
    let mut rng = Rng::new(21);
    let bias = [0.5f64, 0.0, -0.5];
    let (mut margins, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..20_000 {
        let m: Vec<f32> = (0..3).map(|_| rng.range_f64(-1.5, 1.5) as f32).collect();
        let z: Vec<f64> = (0..3).map(|j| 3.0 * m[j] as f64 + bias[j]).collect();
        let e: Vec<f64> = z.iter().map(|v| v.exp()).collect();
        ys.push(rng.weighted(&e));
        margins.push(m);
    }
    let c = Calibration::fit(&margins, &ys, 3, Fit::Bias);
    assert!((c.scale - 3.0).abs() < 0.15, "{c:?}");
    // The bias is known up to a constant.
    let d = (c.bias[0] - c.bias[1], c.bias[1] - c.bias[2]);
    assert!((d.0 - 0.5).abs() < 0.1 && (d.1 - 0.5).abs() < 0.1, "{c:?}");
    assert_eq!(
        c,
        Calibration::fit(&margins, &ys, 3, Fit::Bias),
        "deterministic"
    );
}

#[test]
fn reliability_of_a_hand_checked_set() {
    // Bin 0.9: scores 0.95 ×4, 3 right → |0.75 − 0.95| = 0.2 on 4 of 10.
    // Bin 0.6: scores 0.65 ×6, 4 right → |0.667 − 0.65| on 6 of 10.
    let mut s = vec![(0.95f32, true); 3];
    s.push((0.95, false));
    s.extend([(0.65f32, true); 4]);
    s.extend([(0.65f32, false); 2]);
    let r = Reliability::of(&s);
    let want = 0.4 * 0.2 + 0.6 * (4.0 / 6.0 - 0.65);
    assert!((r.ece - want).abs() < 1e-6, "{} against {want}", r.ece);
    let t = |x: f64| {
        r.thresholds
            .iter()
            .find(|t| t.threshold == x)
            .unwrap()
            .clone()
    };
    assert_eq!((t(0.6).share, t(0.6).accuracy), (1.0, 0.7));
    assert_eq!(t(0.7).share, 0.4);
    assert!((t(0.9).accuracy - 0.75).abs() < 1e-9);
    assert_eq!(Reliability::of(&[]).ece, 0.0);
}
