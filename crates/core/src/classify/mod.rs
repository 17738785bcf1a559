//! Citizen text classification (issue 14, item 1): which functional line (条线) or category
//! a free-text report belongs to. Pure code, CPU only, nothing downloaded:
//!
//! * [`text`] — normalisation and hashed character n-grams (no segmenter needed);
//! * sublinear TF × IDF, L2-normalised ([`Model::vector`]);
//! * [`train`] — one-vs-rest linear SVMs (L2 loss) on NB-scaled features by dual coordinate
//!   descent, deterministic for a seed (the order of examples is the only randomness);
//! * [`store`] — the model file: a small binary format with a version and a checksum;
//! * [`csv`] — RFC 4180 CSV (quoted commas and newlines, BOM) into labelled examples, bad
//!   rows named;
//! * [`eval`] — stratified k-fold cross-validation, per-class precision/recall/F1, macro-F1
//!   and the confusion matrix.
//!
//! The algorithm was chosen by measurement on real labelled messages (BENCHMARKS.md,
//! "Classify — issue 14"); those messages are read at run time and never enter the
//! repository, nor does a model built from them.

pub mod csv;
pub mod eval;
pub mod store;
pub mod text;
pub mod train;

pub use store::ModelError;
pub use text::{normalise, readable, Features, TextError};
pub use train::{train, TrainError, TrainOptions};

/// A trained classifier: IDF weights and one linear scorer per label over the hashed
/// feature space.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub labels: Vec<String>,
    pub features: Features,
    /// Documents the model was trained on.
    pub trained_on: u32,
    pub seed: u64,
    /// IDF per bucket (buckets never seen in training have `idf_unseen`).
    pub(crate) idf: Vec<f32>,
    pub(crate) idf_unseen: f32,
    /// Weights, bucket-major: `w[b * k + label]`.
    pub(crate) w: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

/// One answer: the best label, its score, and the best few labels with theirs (best first,
/// the first being the answer). Scores are a softmax of the linear margins: they order the
/// labels and sum to 1, but they are not calibrated probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub label: String,
    pub score: f32,
    pub top: Vec<(String, f32)>,
}

/// Sharpness of the softmax over margins (margins of a linear SVM lie mostly in −1.5…1.5).
const SOFTMAX_SCALE: f32 = 4.0;

/// A reusable buffer for feature extraction (one per thread saves an allocation per text).
#[derive(Debug, Default)]
pub struct Scratch {
    buckets: Vec<u32>,
    vector: Vec<(u32, f32)>,
}

/// Sorted buckets → the sparse sublinear-TF × IDF vector, L2-normalised.
pub(crate) fn weigh(buckets: &[u32], idf: impl Fn(u32) -> f32, out: &mut Vec<(u32, f32)>) {
    out.clear();
    let mut norm = 0f32;
    for (b, c) in text::counts(buckets) {
        let v = (1.0 + (c as f32).ln()) * idf(b);
        norm += v * v;
        out.push((b, v));
    }
    if norm > 0.0 {
        let inv = 1.0 / norm.sqrt();
        for x in out.iter_mut() {
            x.1 *= inv;
        }
    }
}

impl Model {
    /// The sparse feature vector of a text (normalised first), or why it has none.
    pub fn vector(&self, text: &str, s: &mut Scratch) -> Result<(), TextError> {
        let t = readable(text)?;
        self.features.buckets(&t, &mut s.buckets);
        let (idf, unseen) = (&self.idf, self.idf_unseen);
        weigh(
            &s.buckets,
            |b| {
                let v = idf[b as usize];
                if v > 0.0 {
                    v
                } else {
                    unseen
                }
            },
            &mut s.vector,
        );
        Ok(())
    }

    /// The margin of every label for a text.
    pub fn margins(&self, text: &str, s: &mut Scratch) -> Result<Vec<f32>, TextError> {
        self.vector(text, s)?;
        let k = self.labels.len();
        let mut m = self.bias.clone();
        for &(b, v) in &s.vector {
            let row = &self.w[b as usize * k..b as usize * k + k];
            for (acc, w) in m.iter_mut().zip(row) {
                *acc += v * w;
            }
        }
        Ok(m)
    }

    /// The best label for a text, with the `top` best alternatives.
    pub fn predict_with(
        &self,
        text: &str,
        top: usize,
        s: &mut Scratch,
    ) -> Result<Prediction, TextError> {
        let m = self.margins(text, s)?;
        let max = m.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = m
            .iter()
            .map(|x| ((x - max) * SOFTMAX_SCALE).exp())
            .collect();
        let sum: f32 = exp.iter().sum();
        let mut order: Vec<usize> = (0..m.len()).collect();
        // Ties go to the earlier label, so an answer never depends on sort stability.
        order.sort_by(|&a, &b| m[b].total_cmp(&m[a]).then(a.cmp(&b)));
        let top: Vec<(String, f32)> = order
            .iter()
            .take(top.max(1))
            .map(|&i| (self.labels[i].clone(), exp[i] / sum))
            .collect();
        Ok(Prediction {
            label: top[0].0.clone(),
            score: top[0].1,
            top,
        })
    }

    /// [`Model::predict_with`] with a fresh buffer and the best three.
    pub fn predict(&self, text: &str) -> Result<Prediction, TextError> {
        self.predict_with(text, 3, &mut Scratch::default())
    }

    /// The index of the best label (evaluation's fast path).
    pub fn best(&self, text: &str, s: &mut Scratch) -> Result<usize, TextError> {
        let m = self.margins(text, s)?;
        let mut best = 0;
        for (i, x) in m.iter().enumerate() {
            if *x > m[best] {
                best = i;
            }
        }
        Ok(best)
    }
}
