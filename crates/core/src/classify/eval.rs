//! Evaluation: stratified k-fold cross-validation and the metrics of a confusion matrix.

use super::calibrate::Reliability;
use super::train::{train, Example, TrainError, TrainOptions};
use super::Scratch;
use crate::rng::Rng;

/// The fold of every example: within each class the examples are shuffled (seeded) and
/// dealt round-robin, so every fold holds each class in proportion (±1).
pub fn stratified_folds(labels: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let folds = folds.max(1);
    let classes = labels.iter().max().map_or(0, |m| m + 1);
    let mut out = vec![0; labels.len()];
    let mut rng = Rng::new(seed ^ 0x5EED_F01D);
    let mut next = 0;
    for c in 0..classes {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        for i in (1..idx.len()).rev() {
            idx.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for i in idx {
            out[i] = next % folds;
            next += 1;
        }
    }
    out
}

/// One class's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Metrics of a confusion matrix (`confusion[true][predicted]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub labels: Vec<String>,
    pub confusion: Vec<Vec<u64>>,
    pub per_class: Vec<ClassMetrics>,
    pub accuracy: f64,
    /// The unweighted mean of the classes' F1.
    pub macro_f1: f64,
    /// How well the answers' scores match their accuracy (cross-validation fills it; empty
    /// for a bare confusion matrix).
    pub reliability: Reliability,
}

impl Metrics {
    /// Precision, recall and F1 per class (0 where undefined), accuracy and macro-F1.
    pub fn from_confusion(labels: Vec<String>, confusion: Vec<Vec<u64>>) -> Metrics {
        let k = labels.len();
        let total: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..k).map(|i| confusion[i][i]).sum();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassMetrics> = (0..k)
            .map(|c| {
                let tp = confusion[c][c];
                let support: u64 = confusion[c].iter().sum();
                let predicted: u64 = (0..k).map(|r| confusion[r][c]).sum();
                let (p, r) = (ratio(tp, predicted), ratio(tp, support));
                ClassMetrics {
                    label: labels[c].clone(),
                    precision: p,
                    recall: r,
                    f1: if p + r == 0.0 {
                        0.0
                    } else {
                        2.0 * p * r / (p + r)
                    },
                    support,
                }
            })
            .collect();
        let macro_f1 = per_class.iter().map(|m| m.f1).sum::<f64>() / k.max(1) as f64;
        Metrics {
            labels,
            confusion,
            per_class,
            accuracy: ratio(correct, total),
            macro_f1,
            reliability: Reliability::default(),
        }
    }
}

/// k-fold cross-validation: for each fold a model trained on the others (its calibration
/// fitted inside those, see [`train`]) predicts it; the metrics are those of the pooled
/// confusion matrix, the reliability that of the pooled (score, right) pairs.
pub fn cross_validate(
    examples: &[Example],
    folds: usize,
    o: &TrainOptions,
) -> Result<Metrics, TrainError> {
    let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    let ys: Vec<usize> = examples
        .iter()
        .map(|e| labels.binary_search(&e.label).expect("listed"))
        .collect();
    let fold = stratified_folds(&ys, folds, o.seed);
    let k = labels.len();
    let mut confusion = vec![vec![0u64; k]; k];
    let mut s = Scratch::default();
    let mut scored = Vec::with_capacity(examples.len());
    for f in 0..folds.max(2) {
        let train_set: Vec<Example> = (0..examples.len())
            .filter(|&i| fold[i] != f)
            .map(|i| examples[i].clone())
            .collect();
        let model = train(&train_set, o)?;
        for i in (0..examples.len()).filter(|&i| fold[i] == f) {
            let p = model
                .predict_with(&examples[i].text, 1, &mut s)
                .map_err(|error| TrainError::Unreadable { index: i, error })?;
            let predicted = labels
                .binary_search(&p.label)
                .expect("a label of the training set");
            confusion[ys[i]][predicted] += 1;
            scored.push((p.score, predicted == ys[i]));
        }
    }
    let mut m = Metrics::from_confusion(labels, confusion);
    m.reliability = Reliability::of(&scored);
    Ok(m)
}
