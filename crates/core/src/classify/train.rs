//! Training: one-vs-rest linear SVMs with the squared hinge loss, solved in the dual by
//! coordinate descent (Hsieh et al. 2008, the algorithm of LIBLINEAR's `-s 1`), on
//! features scaled by naive-Bayes log-count ratios (NBSVM), mixed 7:3 with a plain SVM on the
//! same features; then the score's calibration is fitted on out-of-fold margins. Each pass
//! visits the examples in an order shuffled by the seeded generator, so the same examples
//! and seed give the same model, bit for bit.

use super::calibrate::{Calibration, Fit};
use super::eval::stratified_folds;
use super::text::{Features, DIM};
use super::{readable, weigh, Model, Scratch, TextError};
use crate::rng::Rng;

/// A labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub label: String,
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    pub seed: u64,
    /// The SVM's cost (inverse regularisation).
    pub c: f32,
    pub features: Features,
    /// Passes over the data at most.
    pub max_epochs: u32,
    /// Stop when the projected gradient's spread falls below this.
    pub eps: f32,
    /// Weigh each class's errors by n / (k · n_class), so small classes count as much.
    pub balanced: bool,
    /// Buckets seen in fewer training messages than this get no weight (they still count
    /// in a text's length): a smaller, faster model that hardly loses accuracy.
    pub min_df: u32,
    /// NBSVM (Wang & Manning 2012): each class's SVM sees the features scaled by their
    /// naive-Bayes log-count ratio (class against the rest, smoothed by this alpha); the
    /// scale is folded into the weights afterwards, so prediction costs the same.
    pub nb_alpha: Option<f32>,
    /// Each class's scorer is `(1 − mix) · NBSVM + mix · plain SVM` (both on the same
    /// features, so the mix is one linear scorer and prediction costs the same); 0: NBSVM
    /// only.
    pub plain_mix: f32,
    /// Internal folds that give out-of-fold margins to fit the score's calibration on
    /// (training costs this many models more); 0 or 1: no calibration (a fixed scale).
    pub calib_folds: u32,
    /// What the calibration fits besides the scale.
    pub calib_fit: Fit,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            seed: 1,
            c: 4.0,
            features: Features::default(),
            max_epochs: 60,
            eps: 0.05,
            balanced: true,
            min_df: 5,
            nb_alpha: Some(0.01),
            plain_mix: 0.3,
            calib_folds: 5,
            calib_fit: Fit::Cross,
        }
    }
}

/// Why a model cannot be trained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    #[error("no examples to train on")]
    NoExamples,
    #[error("every example has the label {0:?}: a classifier needs at least two classes")]
    OneClass(String),
    #[error("example {index}: {error}")]
    Unreadable { index: usize, error: TextError },
    #[error("example {index} has no label")]
    NoLabel { index: usize },
}

/// Trains a model on the examples (deterministic for `o.seed`), then fits its score's
/// calibration on out-of-fold margins: `o.calib_folds` models, each trained on all the
/// examples but one stratified fold, give the margins of the fold they did not see.
pub fn train(examples: &[Example], o: &TrainOptions) -> Result<Model, TrainError> {
    let mut model = train_uncalibrated(examples, o)?;
    let folds = o.calib_folds as usize;
    if folds < 2 || examples.len() < 2 * folds {
        return Ok(model);
    }
    let k = model.labels.len();
    let ys: Vec<usize> = examples
        .iter()
        .map(|e| model.labels.binary_search(&e.label).expect("label listed"))
        .collect();
    let fold = stratified_folds(&ys, folds, o.seed ^ 0xCA11_B0A7);
    let inner = TrainOptions {
        calib_folds: 0,
        ..*o
    };
    let mut margins = vec![Vec::new(); examples.len()];
    let mut s = Scratch::default();
    for f in 0..folds {
        let part: Vec<Example> = (0..examples.len())
            .filter(|&i| fold[i] != f)
            .map(|i| examples[i].clone())
            .collect();
        let m = match train_uncalibrated(&part, &inner) {
            Ok(m) => m,
            // A fold that leaves one class: too few messages to calibrate on.
            Err(TrainError::OneClass(_)) => return Ok(model),
            Err(e) => return Err(e),
        };
        // The inner model may lack a rare label: its margin is then a plain "no".
        let map: Vec<Option<usize>> = model
            .labels
            .iter()
            .map(|l| m.labels.binary_search(l).ok())
            .collect();
        for i in (0..examples.len()).filter(|&i| fold[i] == f) {
            let raw = m
                .margins(&examples[i].text, &mut s)
                .map_err(|error| TrainError::Unreadable { index: i, error })?;
            margins[i] = map.iter().map(|j| j.map_or(-1.0, |j| raw[j])).collect();
        }
    }
    model.calibration = Calibration::fit(&margins, &ys, k, o.calib_fit);
    Ok(model)
}

/// The SVMs alone, scores on the fixed scale.
fn train_uncalibrated(examples: &[Example], o: &TrainOptions) -> Result<Model, TrainError> {
    if examples.is_empty() {
        return Err(TrainError::NoExamples);
    }
    let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    if let Some(index) = examples.iter().position(|e| e.label.trim().is_empty()) {
        return Err(TrainError::NoLabel { index });
    }
    if labels.len() < 2 {
        return Err(TrainError::OneClass(labels[0].clone()));
    }
    let k = labels.len();
    let n = examples.len();
    // Buckets of every example, and document frequencies.
    let mut docs: Vec<Vec<u32>> = Vec::with_capacity(n);
    let mut df = vec![0u32; DIM];
    let mut ys = Vec::with_capacity(n);
    for (index, e) in examples.iter().enumerate() {
        let t = readable(&e.text).map_err(|error| TrainError::Unreadable { index, error })?;
        let mut b = Vec::new();
        o.features.buckets(&t, &mut Vec::new(), &mut b);
        let mut last = u32::MAX;
        for &x in &b {
            if x != last {
                df[x as usize] += 1;
                last = x;
            }
        }
        docs.push(b);
        ys.push(labels.binary_search(&e.label).expect("label listed"));
    }
    let idf_of = |d: u32| ((1.0 + n as f32) / (1.0 + d as f32)).ln() + 1.0;
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| {
            if d == 0 || d < o.min_df {
                0.0
            } else {
                idf_of(d)
            }
        })
        .collect();
    let idf_unseen = idf_of(0);
    // Weighed as prediction will (a pruned bucket counts as unseen), then pruned buckets
    // dropped so they never get a weight.
    let xs: Vec<Vec<(u32, f32)>> = docs
        .iter()
        .map(|b| {
            let mut v = Vec::new();
            weigh(
                b,
                |x| {
                    let w = idf[x as usize];
                    if w > 0.0 {
                        w
                    } else {
                        idf_unseen
                    }
                },
                &mut v,
            );
            v.retain(|&(x, _)| idf[x as usize] > 0.0);
            v
        })
        .collect();
    drop(docs);
    // Only kept buckets get a row: from here on a feature is its row, 0..m.
    let keys: Vec<u32> = (0..DIM as u32).filter(|&b| idf[b as usize] > 0.0).collect();
    let slot = super::Slots::of(&keys);
    let m = keys.len();
    let xs: Vec<Vec<(u32, f32)>> = xs
        .into_iter()
        .map(|x| {
            x.into_iter()
                .map(|(b, v)| (slot.row(b).expect("a kept bucket") as u32, v))
                .collect()
        })
        .collect();
    let mut per_class = vec![0usize; k];
    for &y in &ys {
        per_class[y] += 1;
    }
    let mut w = vec![0f32; m * (k + 1)];
    for (r, &b) in keys.iter().enumerate() {
        w[r * (k + 1)] = idf[b as usize];
    }
    let mut bias = vec![0f32; k];
    let mut rng = Rng::new(o.seed);
    let mut wc = vec![0f32; m];
    for (class, per) in per_class.iter().enumerate() {
        // Positive and negative costs: balanced, the small class weighs as much as the rest.
        let (cp, cn) = if o.balanced {
            let pos = n as f32 / (2.0 * *per as f32);
            let neg = n as f32 / (2.0 * (n - per) as f32);
            (o.c * pos, o.c * neg)
        } else {
            (o.c, o.c)
        };
        wc.iter_mut().for_each(|x| *x = 0.0);
        let (mut b, r) = if let Some(alpha) = o.nb_alpha {
            // NB log-count ratios of this class against the rest, as per-feature scales.
            let mut p = vec![alpha; m];
            let mut q = vec![alpha; m];
            for (x, &y) in xs.iter().zip(&ys) {
                let t = if y == class { &mut p } else { &mut q };
                for &(f, v) in x {
                    t[f as usize] += v;
                }
            }
            // The buckets without a row hold alpha each, as if they were listed.
            let rest = alpha as f64 * (DIM - m) as f64;
            let (sp, sq): (f64, f64) = (
                p.iter().map(|&v| v as f64).sum::<f64>() + rest,
                q.iter().map(|&v| v as f64).sum::<f64>() + rest,
            );
            let r: Vec<f32> = p
                .iter()
                .zip(&q)
                .map(|(a, b)| ((*a as f64 / sp) / (*b as f64 / sq)).ln() as f32)
                .collect();
            let scaled: Vec<Vec<(u32, f32)>> = xs
                .iter()
                .map(|x| x.iter().map(|&(f, v)| (f, v * r[f as usize])).collect())
                .collect();
            (
                dcd(&scaled, &ys, class, cp, cn, o, &mut rng, &mut wc),
                Some(r),
            )
        } else {
            (dcd(&xs, &ys, class, cp, cn, o, &mut rng, &mut wc), None)
        };
        for (i, x) in wc.iter().enumerate() {
            w[i * (k + 1) + 1 + class] = *x * r.as_ref().map_or(1.0, |r| r[i]);
        }
        if o.plain_mix > 0.0 && r.is_some() {
            let mix = o.plain_mix.min(1.0);
            wc.iter_mut().for_each(|x| *x = 0.0);
            let bp = dcd(&xs, &ys, class, cp, cn, o, &mut rng, &mut wc);
            b = (1.0 - mix) * b + mix * bp;
            for (i, x) in wc.iter().enumerate() {
                let at = i * (k + 1) + 1 + class;
                w[at] = (1.0 - mix) * w[at] + mix * *x;
            }
        }
        bias[class] = b;
    }
    Ok(Model {
        labels,
        features: o.features,
        trained_on: n as u32,
        seed: o.seed,
        idf_unseen,
        slot,
        keys,
        rows: w,
        bias,
        calibration: Calibration::uncalibrated(k),
    })
}

/// Dual coordinate descent for one class against the rest (squared hinge loss, a bias
/// feature of value 1). Returns the bias; the weights are left in `w`.
#[allow(clippy::too_many_arguments)]
fn dcd(
    xs: &[Vec<(u32, f32)>],
    ys: &[usize],
    class: usize,
    cp: f32,
    cn: f32,
    o: &TrainOptions,
    rng: &mut Rng,
    w: &mut [f32],
) -> f32 {
    let n = xs.len();
    let mut alpha = vec![0f32; n];
    let mut bias = 0f32;
    let y: Vec<f32> = ys
        .iter()
        .map(|&c| if c == class { 1.0 } else { -1.0 })
        .collect();
    let diag: Vec<f32> = y
        .iter()
        .map(|&s| 0.5 / if s > 0.0 { cp } else { cn })
        .collect();
    let qd: Vec<f32> = xs
        .iter()
        .zip(&diag)
        .map(|(x, d)| x.iter().map(|(_, v)| v * v).sum::<f32>() + 1.0 + d)
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..o.max_epochs {
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let (mut max_pg, mut min_pg) = (f32::NEG_INFINITY, f32::INFINITY);
        for &i in &order {
            let x = &xs[i];
            let dot: f32 = x.iter().map(|&(b, v)| w[b as usize] * v).sum::<f32>() + bias;
            let g = y[i] * dot - 1.0 + diag[i] * alpha[i];
            let pg = if alpha[i] == 0.0 { g.min(0.0) } else { g };
            max_pg = max_pg.max(pg);
            min_pg = min_pg.min(pg);
            if pg.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - g / qd[i]).max(0.0);
                let d = (alpha[i] - old) * y[i];
                for &(b, v) in x {
                    w[b as usize] += d * v;
                }
                bias += d;
            }
        }
        if max_pg - min_pg < o.eps {
            break;
        }
    }
    bias
}
