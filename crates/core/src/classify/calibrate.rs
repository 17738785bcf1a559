//! Calibrated scores: the margins of the one-vs-rest SVMs become probabilities by
//! `softmax(scale · margin + bias)`, `scale` and the per-label `bias` fitted by maximum
//! likelihood (Newton's method; the problem is convex) on out-of-fold margins, i.e. the
//! margins of models that did not see the message (an internal k-fold at training time,
//! see [`super::train`]). With a well-fitted calibration, of the messages scored 0.8 about
//! 80 % are right, which is what a district threshold needs.
//!
//! [`Reliability`] measures it: the expected calibration error (ECE, 10 equal-width bins)
//! and, per threshold, the share of messages at or above it and the accuracy among them.

/// `softmax(scale · margin + bias)` (bias empty: all zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub scale: f32,
    pub bias: Vec<f32>,
}

/// The scale of a model that was not calibrated (too few messages per label for an
/// internal k-fold): a softmax of margins that orders the labels, not a probability.
pub const UNCALIBRATED_SCALE: f32 = 4.0;

/// Above this many labels only the scale is fitted (Newton on k + 1 parameters is cubic).
const MAX_LABELS_WITH_BIAS: usize = 64;

impl Calibration {
    /// No fit: the fixed scale, no bias.
    pub fn uncalibrated(k: usize) -> Calibration {
        Calibration {
            scale: UNCALIBRATED_SCALE,
            bias: vec![0.0; k],
        }
    }

    /// The calibrated logits of a row of margins (written into `out`).
    pub fn logits(&self, margins: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(
            margins
                .iter()
                .enumerate()
                .map(|(j, m)| self.scale * m + self.bias.get(j).copied().unwrap_or(0.0)),
        );
    }

    /// Fits scale and bias on margins (`margins[i]` the k margins of message i) and the
    /// true labels: minimises the mean negative log-likelihood of the softmax, with a
    /// small ridge on the bias (it fixes the bias's free constant and keeps a rare label's
    /// bias finite). Deterministic: no randomness, fixed iteration order.
    pub fn fit(margins: &[Vec<f32>], ys: &[usize], k: usize) -> Calibration {
        let n = margins.len();
        if n == 0 || k < 2 {
            return Calibration::uncalibrated(k);
        }
        let with_bias = k <= MAX_LABELS_WITH_BIAS;
        let d = if with_bias { k + 1 } else { 1 };
        let ridge = 1e-3;
        let mut theta = vec![0f64; d];
        theta[0] = 1.0;
        let objective = |t: &[f64]| -> f64 {
            let mut total = 0f64;
            let mut z = vec![0f64; k];
            for (m, &y) in margins.iter().zip(ys) {
                for j in 0..k {
                    z[j] = t[0] * m[j] as f64 + if with_bias { t[1 + j] } else { 0.0 };
                }
                let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                total += lse - z[y];
            }
            let reg: f64 = if with_bias {
                t[1..].iter().map(|b| b * b).sum::<f64>() * ridge / 2.0
            } else {
                0.0
            };
            total / n as f64 + reg
        };
        let mut f = objective(&theta);
        let mut p = vec![0f64; k];
        for _ in 0..100 {
            // Gradient and Hessian of the mean NLL: per message, with φ_j the feature
            // vector of label j's logit (margin, one-hot of j), g = Σ (p_j − [j = y]) φ_j
            // and H = Σ p_j φ_j φ_jᵀ − a aᵀ with a = Σ p_j φ_j.
            let mut g = vec![0f64; d];
            let mut h = vec![0f64; d * d];
            let mut a = vec![0f64; d];
            for (m, &y) in margins.iter().zip(ys) {
                for j in 0..k {
                    p[j] = theta[0] * m[j] as f64 + if with_bias { theta[1 + j] } else { 0.0 };
                }
                let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0f64;
                for v in p.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                a.iter_mut().for_each(|v| *v = 0.0);
                let mut h00 = 0f64;
                for j in 0..k {
                    let pj = p[j] / sum;
                    let mj = m[j] as f64;
                    let r = pj - if j == y { 1.0 } else { 0.0 };
                    g[0] += r * mj;
                    a[0] += pj * mj;
                    h00 += pj * mj * mj;
                    if with_bias {
                        g[1 + j] += r;
                        a[1 + j] += pj;
                        h[1 + j] += pj * mj; // row 0, column 1 + j
                        h[(1 + j) * d] += pj * mj; // and its mirror
                        h[(1 + j) * d + 1 + j] += pj;
                    }
                }
                h[0] += h00;
                for r in 0..d {
                    for c in 0..d {
                        h[r * d + c] -= a[r] * a[c];
                    }
                }
            }
            // Mean, plus the ridge.
            for v in g.iter_mut() {
                *v /= n as f64;
            }
            for v in h.iter_mut() {
                *v /= n as f64;
            }
            if with_bias {
                for j in 0..k {
                    g[1 + j] += ridge * theta[1 + j];
                    h[(1 + j) * d + 1 + j] += ridge;
                }
            }
            h[0] += 1e-9;
            let Some(step) = solve(&mut h, &mut g, d) else {
                break;
            };
            // Damped: halve the step until the objective falls (it is convex).
            let mut t = 1.0;
            let mut improved = false;
            for _ in 0..30 {
                let cand: Vec<f64> = theta.iter().zip(&step).map(|(x, s)| x - t * s).collect();
                if cand[0] > 0.0 {
                    let fc = objective(&cand);
                    if fc < f {
                        let gain = f - fc;
                        theta = cand;
                        f = fc;
                        improved = gain > 1e-10;
                        break;
                    }
                }
                t /= 2.0;
            }
            if !improved {
                break;
            }
        }
        Calibration {
            scale: theta[0] as f32,
            bias: (0..k)
                .map(|j| if with_bias { theta[1 + j] as f32 } else { 0.0 })
                .collect(),
        }
    }
}

/// Solves `h x = g` (d × d, row-major) by Gaussian elimination with partial pivoting;
/// None when singular.
fn solve(h: &mut [f64], g: &mut [f64], d: usize) -> Option<Vec<f64>> {
    for col in 0..d {
        let pivot =
            (col..d).max_by(|&a, &b| h[a * d + col].abs().total_cmp(&h[b * d + col].abs()))?;
        if h[pivot * d + col].abs() < 1e-14 {
            return None;
        }
        if pivot != col {
            for c in 0..d {
                h.swap(col * d + c, pivot * d + c);
            }
            g.swap(col, pivot);
        }
        for r in col + 1..d {
            let f = h[r * d + col] / h[col * d + col];
            if f != 0.0 {
                for c in col..d {
                    h[r * d + c] -= f * h[col * d + c];
                }
                g[r] -= f * g[col];
            }
        }
    }
    let mut x = vec![0f64; d];
    for r in (0..d).rev() {
        let s: f64 = (r + 1..d).map(|c| h[r * d + c] * x[c]).sum();
        x[r] = (g[r] - s) / h[r * d + r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// How well scores match accuracy: from (score of the answer, was it right) pairs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reliability {
    /// Messages scored.
    pub n: u64,
    /// Expected calibration error over 10 equal-width score bins: Σ |bin| / n ·
    /// |accuracy(bin) − mean score(bin)|.
    pub ece: f64,
    /// Mean score of the answers and their accuracy.
    pub mean_score: f64,
    pub accuracy: f64,
    /// Per bin (lower edge 0.0, 0.1, … 0.9): messages, mean score, accuracy.
    pub bins: Vec<Bin>,
    /// Per threshold in [`THRESHOLDS`]: the share of messages scored at or above it and the
    /// accuracy among those.
    pub thresholds: Vec<Threshold>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    pub lower: f64,
    pub count: u64,
    pub mean_score: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub threshold: f64,
    /// Share of all messages scored at or above the threshold (0..1).
    pub share: f64,
    /// Accuracy among them (0 when none).
    pub accuracy: f64,
}

/// The thresholds a district might route on.
pub const THRESHOLDS: [f64; 5] = [0.5, 0.6, 0.7, 0.8, 0.9];

impl Reliability {
    pub fn of(scored: &[(f32, bool)]) -> Reliability {
        let n = scored.len() as u64;
        let ratio = |a: f64, b: u64| if b == 0 { 0.0 } else { a / b as f64 };
        let mut count = [0u64; 10];
        let mut conf = [0f64; 10];
        let mut right = [0u64; 10];
        for &(s, ok) in scored {
            let s = s.clamp(0.0, 1.0) as f64;
            let b = ((s * 10.0) as usize).min(9);
            count[b] += 1;
            conf[b] += s;
            right[b] += ok as u64;
        }
        let bins: Vec<Bin> = (0..10)
            .map(|b| Bin {
                lower: b as f64 / 10.0,
                count: count[b],
                mean_score: ratio(conf[b], count[b]),
                accuracy: ratio(right[b] as f64, count[b]),
            })
            .collect();
        let ece = bins
            .iter()
            .map(|b| ratio(b.count as f64, n) * (b.accuracy - b.mean_score).abs())
            .sum();
        let thresholds = THRESHOLDS
            .iter()
            .map(|&t| {
                let above: Vec<bool> = scored
                    .iter()
                    .filter(|(s, _)| *s as f64 >= t - 1e-9)
                    .map(|x| x.1)
                    .collect();
                Threshold {
                    threshold: t,
                    share: ratio(above.len() as f64, n),
                    accuracy: ratio(
                        above.iter().filter(|&&x| x).count() as f64,
                        above.len() as u64,
                    ),
                }
            })
            .collect();
        Reliability {
            n,
            ece,
            mean_score: ratio(scored.iter().map(|x| x.0 as f64).sum(), n),
            accuracy: ratio(scored.iter().filter(|x| x.1).count() as f64, n),
            bins,
            thresholds,
        }
    }
}
