//! Calibrated scores: the margins of the one-vs-rest SVMs become probabilities by
//! `softmax(scale · margin + bias)` (optionally with cross terms between labels), `scale`
//! and the per-label `bias` fitted by maximum
//! likelihood (Newton's method; the problem is convex) on out-of-fold margins, i.e. the
//! margins of models that did not see the message (an internal k-fold at training time,
//! see [`super::train`]). With a well-fitted calibration, of the messages scored 0.8 about
//! 80 % are right, which is what a district threshold needs.
//!
//! [`Reliability`] measures it: the expected calibration error (ECE, 10 equal-width bins)
//! and, per threshold, the share of messages at or above it and the accuracy among them.

/// `softmax(scale · margin + bias + cross · margins)`: per label j the logit is
/// `scale · m_j + bias_j + Σ_l cross[j·k + l] · m_l` (`cross` empty: none). The cross
/// terms let the calibration learn how one label's margin speaks for or against another
/// (e.g. two lines whose messages overlap).
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub scale: f32,
    pub bias: Vec<f32>,
    pub cross: Vec<f32>,
}

/// The scale of a model that was not calibrated (too few messages per label for an
/// internal k-fold): a softmax of margins that orders the labels, not a probability.
pub const UNCALIBRATED_SCALE: f32 = 4.0;

/// Above this many labels only the scale is fitted (Newton on k + 1 parameters is cubic).
const MAX_LABELS_WITH_BIAS: usize = 64;
/// Above this many labels no cross terms (k² parameters).
pub const MAX_LABELS_WITH_CROSS: usize = 16;

/// What [`Calibration::fit`] fits besides the scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// The scale alone (temperature scaling).
    Scale,
    /// Scale and a bias per label.
    Bias,
    /// Scale, bias and the k × k cross terms.
    Cross,
}

impl Calibration {
    /// No fit: the fixed scale, no bias.
    pub fn uncalibrated(k: usize) -> Calibration {
        Calibration {
            scale: UNCALIBRATED_SCALE,
            bias: vec![0.0; k],
            cross: Vec::new(),
        }
    }

    /// The calibrated logits of a row of margins (written into `out`).
    pub fn logits(&self, margins: &[f32], out: &mut Vec<f32>) {
        out.clear();
        let k = margins.len();
        out.extend(margins.iter().enumerate().map(|(j, m)| {
            let mut z = self.scale * m + self.bias.get(j).copied().unwrap_or(0.0);
            if let Some(row) = self.cross.get(j * k..(j + 1) * k) {
                z += row.iter().zip(margins).map(|(w, m)| w * m).sum::<f32>();
            }
            z
        }));
    }

    /// Fits the calibration on margins (`margins[i]` the k margins of message i) and the
    /// true labels: minimises the mean negative log-likelihood of the softmax (convex;
    /// damped Newton), with a small ridge on everything but the scale (it fixes the bias's
    /// free constant and keeps a rare label's terms finite). Deterministic: no randomness,
    /// a fixed order of sums.
    pub fn fit(margins: &[Vec<f32>], ys: &[usize], k: usize, fit: Fit) -> Calibration {
        let n = margins.len();
        if n == 0 || k < 2 {
            return Calibration::uncalibrated(k);
        }
        let with_bias = fit != Fit::Scale && k <= MAX_LABELS_WITH_BIAS;
        let with_cross = fit == Fit::Cross && k <= MAX_LABELS_WITH_CROSS;
        let nb = if with_bias { k } else { 0 };
        let d = 1 + nb + if with_cross { k * k } else { 0 };
        let ridge = 1e-3;
        // The parameters a label's logit depends on, with their multipliers.
        let phi = |m: &[f32], j: usize, out: &mut Vec<(usize, f64)>| {
            out.clear();
            out.push((0, m[j] as f64));
            if with_bias {
                out.push((1 + j, 1.0));
            }
            if with_cross {
                for (l, x) in m.iter().enumerate() {
                    out.push((1 + nb + j * k + l, *x as f64));
                }
            }
        };
        let logits = |t: &[f64], m: &[f32], z: &mut [f64], buf: &mut Vec<(usize, f64)>| {
            for (j, zj) in z.iter_mut().enumerate() {
                phi(m, j, buf);
                *zj = buf.iter().map(|&(p, v)| t[p] * v).sum();
            }
        };
        let objective = |t: &[f64]| -> f64 {
            let mut total = 0f64;
            let mut z = vec![0f64; k];
            let mut buf = Vec::new();
            for (m, &y) in margins.iter().zip(ys) {
                logits(t, m, &mut z, &mut buf);
                let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                total += lse - z[y];
            }
            total / n as f64 + t[1..].iter().map(|b| b * b).sum::<f64>() * ridge / 2.0
        };
        let mut theta = vec![0f64; d];
        theta[0] = 1.0;
        let mut f = objective(&theta);
        let mut p = vec![0f64; k];
        let mut buf = Vec::new();
        for _ in 0..100 {
            // Per message, with φ_j the multipliers of label j's logit: the gradient
            // Σ (p_j − [j = y]) φ_j and the Hessian Σ p_j φ_j φ_jᵀ − a aᵀ, a = Σ p_j φ_j.
            let mut g = vec![0f64; d];
            let mut h = vec![0f64; d * d];
            let mut a = vec![0f64; d];
            for (m, &y) in margins.iter().zip(ys) {
                logits(&theta, m, &mut p, &mut buf);
                let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0f64;
                for v in p.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                a.iter_mut().for_each(|v| *v = 0.0);
                for (j, pj) in p.iter().map(|v| v / sum).enumerate() {
                    let r = pj - if j == y { 1.0 } else { 0.0 };
                    phi(m, j, &mut buf);
                    for &(q, v) in &buf {
                        g[q] += r * v;
                        a[q] += pj * v;
                        for &(q2, v2) in &buf {
                            h[q * d + q2] += pj * v * v2;
                        }
                    }
                }
                for r in 0..d {
                    if a[r] != 0.0 {
                        for c in 0..d {
                            h[r * d + c] -= a[r] * a[c];
                        }
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
            for q in 1..d {
                g[q] += ridge * theta[q];
                h[q * d + q] += ridge;
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
            cross: if with_cross {
                theta[1 + nb..].iter().map(|&x| x as f32).collect()
            } else {
                Vec::new()
            },
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
