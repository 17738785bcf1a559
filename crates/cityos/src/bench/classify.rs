//! `cityos bench classify`: trains the citizen-text classifier on the labelled messages
//! (`../shared/data/citizen_messages_labelled_tipdm2020.csv`, or `--data`) when the file
//! is there, else on generated text, and predicts every message again and again on one
//! core (label, score and the top three, as `classify predict` does).

use cityos_core::classify::train::Example;
use cityos_core::classify::{train, Scratch, TrainOptions};
use cityos_core::rng::Rng;
use std::path::PathBuf;
use std::time::Instant;

const DEFAULT_DATA: &str = "../shared/data/citizen_messages_labelled_tipdm2020.csv";

/// Predictions timed (the messages are cycled).
const PREDICTIONS: usize = 200_000;

/// Generated citizen messages: per line a few subjects, places and complaints, joined with
/// filler, so the bench runs without any outside data.
pub fn generated(n: usize, seed: u64) -> Vec<Example> {
    let lines: [(&str, &[&str]); 5] = [
        (
            "城乡建设",
            &[
                "小区物业",
                "违章搭建",
                "道路施工",
                "老旧小区改造",
                "电梯维修",
                "拆迁安置",
            ],
        ),
        (
            "环境保护",
            &[
                "噪音扰民",
                "油烟污染",
                "垃圾焚烧",
                "河道污水",
                "工地扬尘",
                "异味",
            ],
        ),
        (
            "交通运输",
            &[
                "公交线路",
                "出租车拒载",
                "红绿灯",
                "停车难",
                "道路拥堵",
                "共享单车",
            ],
        ),
        (
            "教育文体",
            &[
                "学校招生",
                "校外培训",
                "幼儿园收费",
                "学区划分",
                "体育场馆",
                "图书馆",
            ],
        ),
        (
            "劳动和社会保障",
            &[
                "拖欠工资",
                "社保缴纳",
                "退休金",
                "劳动合同",
                "失业保险",
                "医保报销",
            ],
        ),
    ];
    let places = [
        "天平路",
        "徐家汇",
        "枫林路",
        "湖南路",
        "斜土路",
        "龙华",
        "漕河泾",
        "田林",
    ];
    let asks = [
        "希望有关部门尽快处理",
        "请领导重视",
        "多次反映无果",
        "麻烦核实一下",
        "望答复",
    ];
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let (label, words) = lines[i % lines.len()];
            let mut text = format!("{}附近", places[rng.below(places.len() as u64) as usize]);
            for _ in 0..3 + rng.below(4) {
                text.push_str(words[rng.below(words.len() as u64) as usize]);
                text.push_str(if rng.chance(0.5) {
                    "的问题，"
                } else {
                    "严重，"
                });
            }
            text.push_str(asks[rng.below(asks.len() as u64) as usize]);
            text.push_str(&format!("。编号{}", rng.below(100_000)));
            Example {
                text,
                label: label.to_string(),
            }
        })
        .collect()
}

pub fn classify(data: Option<PathBuf>, json: bool) -> Result<(), String> {
    let path = data.or_else(|| {
        let p = PathBuf::from(DEFAULT_DATA);
        p.exists().then_some(p)
    });
    let (examples, source) = match &path {
        Some(p) => (
            crate::classify::load_examples(
                p,
                &crate::classify::Columns {
                    text_cols: "subject,detail".into(),
                    label_col: "label1".into(),
                },
            )?,
            p.display().to_string(),
        ),
        None => (generated(5000, 14), "generated text".to_string()),
    };
    let started = Instant::now();
    let model = train(&examples, &TrainOptions::default()).map_err(|e| e.to_string())?;
    let train_s = started.elapsed().as_secs_f64();
    let model_bytes = model.to_bytes().len();
    let chars: usize = examples.iter().map(|e| e.text.chars().count()).sum();
    println!(
        "trained on {} messages from {source} ({:.0} characters each on average) in {train_s:.2} s; model {model_bytes} bytes",
        examples.len(),
        chars as f64 / examples.len() as f64
    );
    let mut s = Scratch::default();
    let mut acc = 0f32;
    let started = Instant::now();
    for i in 0..PREDICTIONS {
        let p = model
            .predict_with(&examples[i % examples.len()].text, 3, &mut s)
            .map_err(|e| e.to_string())?;
        acc += p.score;
    }
    std::hint::black_box(acc);
    let per_s = PREDICTIONS as f64 / started.elapsed().as_secs_f64();
    println!("predict, 1 thread: {per_s:>10.0} messages/s (label, score and top 3)");
    if json {
        println!(
            "{}",
            serde_json::json!({"bench":"classify","messages_per_s":per_s.round(),"model_bytes":model_bytes,"train_s":(train_s*100.0).round()/100.0})
        );
    }
    Ok(())
}
