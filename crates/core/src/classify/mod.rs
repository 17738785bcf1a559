//! Citizen text classification (issue 14, item 1): which functional line (条线) or category
//! a free-text report belongs to. Pure code, CPU only, nothing downloaded:
//!
//! * [`text`] — normalisation and hashed character n-grams (no segmenter needed);
//! * sublinear TF × IDF, L2-normalised ([`Model::margins`]);
//! * [`train`] — one-vs-rest linear SVMs (L2 loss) by dual coordinate descent, each class's
//!   scorer 0.7 × NBSVM (NB-scaled features) + 0.3 × plain SVM, deterministic for a seed (the
//!   order of examples is the only randomness);
//! * [`calibrate`] — scores as probabilities: `softmax(scale · margin + bias + cross ·
//!   margins)` fitted on out-of-fold margins at training time, and the reliability figures
//!   (ECE, thresholds);
//! * [`store`] — the model file: a small binary format with a version and a checksum;
//! * [`csv`] — RFC 4180 CSV (quoted commas and newlines, BOM) into labelled examples, bad
//!   rows named;
//! * [`eval`] — stratified k-fold cross-validation, per-class precision/recall/F1, macro-F1
//!   and the confusion matrix.
//!
//! The algorithm was chosen by measurement on real labelled messages (BENCHMARKS.md,
//! "Classify — issue 14"); those messages are read at run time and never enter the
//! repository, nor does a model built from them.

pub mod calibrate;
pub mod csv;
pub mod cues;
pub mod eval;
pub mod generate;
pub mod intake;
pub mod place;
pub mod similar;
pub mod store;
pub mod text;
pub mod topics;
pub mod train;

pub use calibrate::Calibration;
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
    pub(crate) idf_unseen: f32,
    /// Which hashed buckets have a row (a bucket without one was never seen in training,
    /// or pruned: it weighs `idf_unseen` in a text's length). Only kept buckets have a
    /// row, so a model costs its rows plus this 192 KB table, not 4 MB per label.
    pub(crate) slot: Slots,
    /// The bucket of each row, ascending.
    pub(crate) keys: Vec<u32>,
    /// Per row its IDF then its weight for each label: `rows[r * (k + 1)]` is the IDF,
    /// `rows[r * (k + 1) + 1 + label]` the weights — one cache line per n-gram when
    /// predicting.
    pub(crate) rows: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    /// Margins → probabilities (fitted by internal cross-validation at training time).
    pub(crate) calibration: Calibration,
}

/// One answer: the best label, its score, and the best few labels with theirs (best first,
/// the first being the answer). Scores are calibrated probabilities (0..1, summing to 1
/// over all labels): `softmax(scale · margin + bias + cross · margins)` fitted on
/// out-of-fold margins when the model was trained, so that of the answers scored about
/// 0.8, about 80 % are right (the figures: `cityos classify eval`).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub label: String,
    pub score: f32,
    /// The best label's own margin, before calibration: its one-vs-rest scorer's say. At
    /// or below 0 no label claims the text (every scorer says "not mine") — text unlike
    /// anything trained on, however the calibrated scores share out.
    pub margin: f32,
    pub top: Vec<(String, f32)>,
}

/// A reusable buffer for feature extraction (one per thread saves an allocation per text).
#[derive(Debug, Default)]
pub struct Scratch {
    chars: Vec<u32>,
    buckets: Vec<u32>,
    logits: Vec<f32>,
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

/// Bucket → row for the buckets that have one: a bit per bucket and, per 64 buckets, the
/// rows before them (rank by popcount), small enough (192 KB) to stay in the cache.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slots {
    bits: Vec<u64>,
    before: Vec<u32>,
}

impl Slots {
    /// The table for rows of the given buckets (ascending).
    pub(crate) fn of(keys: &[u32]) -> Slots {
        let words = text::DIM / 64;
        let mut bits = vec![0u64; words];
        for &b in keys {
            bits[b as usize / 64] |= 1 << (b % 64);
        }
        let mut before = Vec::with_capacity(words);
        let mut n = 0u32;
        for w in &bits {
            before.push(n);
            n += w.count_ones();
        }
        Slots { bits, before }
    }

    /// The row of a bucket, if it has one.
    #[inline]
    pub(crate) fn row(&self, b: u32) -> Option<usize> {
        let (w, bit) = (b as usize / 64, b % 64);
        let word = self.bits[w];
        if word & (1 << bit) == 0 {
            return None;
        }
        Some((self.before[w] + (word & ((1u64 << bit) - 1)).count_ones()) as usize)
    }
}

impl Model {
    /// The margin of every label for a text: bias + w · x, x the text's sublinear TF × IDF
    /// vector, L2-normalised (in one pass: the norm divides the sums at the end).
    pub fn margins(&self, text: &str, s: &mut Scratch) -> Result<Vec<f32>, TextError> {
        let t = readable(text)?;
        self.features.buckets(&t, &mut s.chars, &mut s.buckets);
        let k = self.labels.len();
        let mut sums = vec![0f32; k];
        let mut norm = 0f32;
        for (b, c) in text::counts(&s.buckets) {
            let tf = 1.0 + (c as f32).ln();
            if let Some(r) = self.slot.row(b) {
                let row = &self.rows[r * (k + 1)..(r + 1) * (k + 1)];
                let v = tf * row[0];
                norm += v * v;
                for (acc, w) in sums.iter_mut().zip(&row[1..]) {
                    *acc += v * w;
                }
            } else {
                let v = tf * self.idf_unseen;
                norm += v * v;
            }
        }
        let inv = if norm > 0.0 { 1.0 / norm.sqrt() } else { 0.0 };
        Ok(self
            .bias
            .iter()
            .zip(&sums)
            .map(|(b, x)| b + x * inv)
            .collect())
    }

    /// The best label for a text, with the `top` best alternatives and their calibrated
    /// scores.
    pub fn predict_with(
        &self,
        text: &str,
        top: usize,
        s: &mut Scratch,
    ) -> Result<Prediction, TextError> {
        let m = self.margins(text, s)?;
        let z = &mut s.logits;
        self.calibration.logits(&m, z);
        let max = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = z.iter().map(|x| (x - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let mut order: Vec<usize> = (0..z.len()).collect();
        // Ties go to the earlier label, so an answer never depends on sort stability.
        order.sort_by(|&a, &b| z[b].total_cmp(&z[a]).then(a.cmp(&b)));
        let top: Vec<(String, f32)> = order
            .iter()
            .take(top.max(1))
            .map(|&i| (self.labels[i].clone(), exp[i] / sum))
            .collect();
        Ok(Prediction {
            label: top[0].0.clone(),
            score: top[0].1,
            margin: m[order[0]],
            top,
        })
    }

    /// How margins become scores.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// [`Model::predict_with`] with a fresh buffer and the best three.
    pub fn predict(&self, text: &str) -> Result<Prediction, TextError> {
        self.predict_with(text, 3, &mut Scratch::default())
    }

    /// The index of the best label (evaluation's fast path; the same answer as
    /// [`Model::predict_with`]).
    pub fn best(&self, text: &str, s: &mut Scratch) -> Result<usize, TextError> {
        let m = self.margins(text, s)?;
        let z = &mut s.logits;
        self.calibration.logits(&m, z);
        let mut best = 0;
        for (i, x) in z.iter().enumerate() {
            if *x > z[best] {
                best = i;
            }
        }
        Ok(best)
    }
}
