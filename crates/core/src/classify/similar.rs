//! "Same complaint again" (同一诉求, issue 14): a text signature for short citizen messages
//! and the similarity of two of them.
//!
//! A message is [`normalise`]d and cut into *units*: each Chinese (or other non-ASCII)
//! letter is a unit, each run of ASCII letters or digits is one unit (a word or a number),
//! punctuation, symbols and spaces are dropped. Its *shingles* are the units and the pairs
//! of neighbouring units. Unigrams belong in: short Chinese paraphrases ("井盖没了" / "井盖
//! 不见了") share few bigrams, and measurement on generated paraphrases (see the tests and
//! BENCHMARKS.md) separates repeats from other complaints at the same place far better
//! with unigrams + bigrams than with bigrams or trigrams alone.
//!
//! The signature is a MinHash of the shingle set: [`K`] minima of `K` seeded multiply-shift
//! hashes (seeds from [`crate::rng::Rng`], shingles hashed by FNV-1a then mixed, so the
//! same text gives the same signature on every platform and at every start).
//! [`estimate_jaccard`] — the share of equal minima — estimates the Jaccard similarity of
//! the two shingle sets with a standard error of √(J(1−J)/K) ≈ 0.06 at J = 0.5;
//! [`jaccard`] computes it exactly (tests, measurement).
//!
//! Only the first [`MAX_UNITS`] units count: a signature is for short messages and costs
//! the same whatever the length of the text.

use super::text::normalise;
use crate::rng::{fnv1a, Rng};
use std::collections::HashSet;

/// Minima per signature.
pub const K: usize = 64;

/// Units of a text that count.
pub const MAX_UNITS: usize = 160;

/// Fewer shingles than this (a text of fewer than about 6 characters or words, such as
/// "游商" or "占道经营 3") say too little to tell one complaint from another:
/// [`Signature::is_comparable`] is false and [`estimate_jaccard`] answers 0.
pub const MIN_SHINGLES: u16 = 11;

/// A MinHash signature. `shingles == 0`: nothing to compare (no letters in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub mins: [u32; K],
    pub shingles: u16,
}

impl Signature {
    /// The signature of a text.
    pub fn of(text: &str) -> Signature {
        let (a, b) = seeds();
        let mut mins = [u32::MAX; K];
        let mut n = 0u16;
        for h in shingles(text) {
            n = n.saturating_add(1);
            let h = mix(h);
            for i in 0..K {
                let v = (a[i].wrapping_mul(h).wrapping_add(b[i]) >> 32) as u32;
                if v < mins[i] {
                    mins[i] = v;
                }
            }
        }
        Signature { mins, shingles: n }
    }

    pub fn is_empty(&self) -> bool {
        self.shingles == 0
    }

    /// Long enough to compare (see [`MIN_SHINGLES`]).
    pub fn is_comparable(&self) -> bool {
        self.shingles >= MIN_SHINGLES
    }
}

/// The estimated Jaccard similarity of the texts behind two signatures, 0..=1 (0 when
/// either is too short to compare, see [`MIN_SHINGLES`]).
pub fn estimate_jaccard(a: &Signature, b: &Signature) -> f64 {
    if !a.is_comparable() || !b.is_comparable() {
        return 0.0;
    }
    let same = a.mins.iter().zip(&b.mins).filter(|(x, y)| x == y).count();
    same as f64 / K as f64
}

/// The exact Jaccard similarity of two texts' shingle sets (0 when either has none).
pub fn jaccard(a: &str, b: &str) -> f64 {
    let a: HashSet<u64> = shingles(a).collect();
    let b: HashSet<u64> = shingles(b).collect();
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let inter = a.intersection(&b).count();
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// The units of a text (see the module documentation).
pub fn units(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_unit(text, |u| out.push(String::from_utf8_lossy(u).into_owned()));
    out
}

/// Calls `f` with the bytes of each unit of a text, the first [`MAX_UNITS`] only.
fn each_unit(text: &str, mut f: impl FnMut(&[u8])) {
    let t = normalise(text);
    let mut n = 0;
    let mut word: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4];
    for c in t.chars() {
        if n >= MAX_UNITS {
            return;
        }
        if c.is_ascii_alphanumeric() {
            word.push(c as u8);
            continue;
        }
        if !word.is_empty() {
            f(&word);
            word.clear();
            n += 1;
            if n >= MAX_UNITS {
                return;
            }
        }
        if c.is_alphanumeric() {
            f(c.encode_utf8(&mut buf).as_bytes());
            n += 1;
        }
    }
    if !word.is_empty() && n < MAX_UNITS {
        f(&word);
    }
}

/// The shingle hashes of a text: each unit and each pair of neighbouring units (duplicates
/// included; MinHash and sets ignore them). No allocation per unit: a signature is taken
/// for every citizen report at intake.
fn shingles(text: &str) -> impl Iterator<Item = u64> {
    let mut out = Vec::with_capacity(64);
    let mut prev: Vec<u8> = Vec::with_capacity(16);
    each_unit(text, |u| {
        out.push(fnv1a(u));
        if !prev.is_empty() {
            // FNV-1a of "previous unit, 0x1f, this unit".
            out.push(fnv_more(fnv_more(fnv1a(&prev), &[0x1f]), u));
        }
        prev.clear();
        prev.extend_from_slice(u);
    });
    out.into_iter()
}

/// FNV-1a continued from state `h`.
fn fnv_more(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3))
}

/// SplitMix64's finaliser: FNV-1a's low bits are weak for short keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The K hash functions' multipliers (odd) and offsets, fixed forever: changing them
/// changes every signature.
fn seeds() -> &'static ([u64; K], [u64; K]) {
    static SEEDS: std::sync::OnceLock<([u64; K], [u64; K])> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut r = Rng::new(0x5_1A11_AE57);
        let mut a = [0u64; K];
        let mut b = [0u64; K];
        for i in 0..K {
            a[i] = r.next_u64() | 1;
            b[i] = r.next_u64();
        }
        (a, b)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Generated complaints: (place, thing, what is wrong) pieces and paraphrase templates.
    pub(crate) const PLACES: [&str; 8] = [
        "小区门口",
        "菜市场旁边",
        "学校后门",
        "公交站台",
        "地铁站出口",
        "公园东门",
        "医院对面",
        "商场停车场",
    ];
    /// (the complaint, a paraphrase of it)
    pub(crate) const PAIRS: [(&str, &str); 10] = [
        ("{p}的井盖不见了很危险", "{p}井盖没了，很危险"),
        ("{p}路灯坏了晚上一片漆黑", "{p}的路灯不亮了，晚上很黑"),
        (
            "{p}垃圾堆了好几天没人清理",
            "{p}的垃圾好几天没人清理了，都堆起来了",
        ),
        ("{p}有人乱停车堵住了通道", "{p}乱停车，通道被堵住了"),
        (
            "{p}半夜施工噪音太大影响休息",
            "{p}晚上施工，噪音很大，影响休息",
        ),
        ("{p}的水管爆了一直在漏水", "{p}水管爆裂，一直漏水"),
        ("{p}路面塌陷了一个大坑", "{p}路面出现大坑，塌陷了"),
        (
            "{p}共享单车乱停挡住人行道",
            "{p}共享单车停得乱七八糟，挡住了人行道",
        ),
        ("{p}树枝断了挂在电线上", "{p}有断掉的树枝挂在电线上"),
        ("{p}污水冒出来臭气熏天", "{p}污水外冒，很臭"),
    ];

    pub(crate) fn at(t: &str, p: &str) -> String {
        t.replace("{p}", p)
    }

    #[test]
    fn units_drop_punctuation_and_keep_words() {
        assert_eq!(
            units("井盖，没了！ABC 12号"),
            vec!["井", "盖", "没", "了", "abc", "12", "号"]
        );
        assert!(units("！！？…  ").is_empty());
        assert!(Signature::of("！！").is_empty());
        // Too short to tell complaints apart: never similar, not even to itself.
        let short = Signature::of("占道经营 3");
        assert!(!short.is_empty() && !short.is_comparable());
        assert_eq!(estimate_jaccard(&short, &short), 0.0);
        assert!(Signature::of("小区门口井盖没了").is_comparable());
        assert_eq!(
            estimate_jaccard(&Signature::of(""), &Signature::of("")),
            0.0
        );
    }

    #[test]
    fn signatures_are_deterministic() {
        let a = Signature::of("小区门口的井盖不见了很危险");
        assert_eq!(a, Signature::of("小区门口的井盖不见了很危险"));
        // Full-width, punctuation and spaces do not matter.
        assert_eq!(a, Signature::of("小区门口的井盖 不见了，很危险！"));
        // Pinned: a change of seeds or hashing changes every stored signature's meaning.
        assert_eq!(a.shingles, 25);
        assert_eq!(a.mins[..4], [55697771, 34564983, 58227490, 180107024]);
        assert_eq!(estimate_jaccard(&a, &a), 1.0);
    }

    #[test]
    fn the_estimate_is_close_to_the_exact_value() {
        let mut worst: f64 = 0.0;
        let mut sum = 0.0;
        let mut n = 0.0;
        for p in PLACES {
            for (x, y) in PAIRS {
                for (u, v) in [(at(x, p), at(y, p)), (at(x, p), at(PAIRS[0].0, "学校后门"))] {
                    let e = estimate_jaccard(&Signature::of(&u), &Signature::of(&v));
                    let j = jaccard(&u, &v);
                    worst = worst.max((e - j).abs());
                    sum += (e - j).abs();
                    n += 1.0;
                }
            }
        }
        assert!(sum / n < 0.05, "mean error {}", sum / n);
        assert!(worst < 0.2, "worst error {worst}");
    }

    /// The threshold the engine uses (0.5) separates paraphrases from other complaints at
    /// the same place, measured on every generated pair.
    #[test]
    fn paraphrases_are_similar_and_other_complaints_are_not() {
        let mut para = Vec::new();
        let mut other = Vec::new();
        for p in PLACES {
            for (i, (x, y)) in PAIRS.iter().enumerate() {
                let (x, y) = (at(x, p), at(y, p));
                para.push(estimate_jaccard(&Signature::of(&x), &Signature::of(&y)));
                for (j, (z, w)) in PAIRS.iter().enumerate() {
                    if i != j {
                        for z in [at(z, p), at(w, p)] {
                            other.push(estimate_jaccard(&Signature::of(&x), &Signature::of(&z)));
                        }
                    }
                }
            }
        }
        para.sort_by(f64::total_cmp);
        other.sort_by(f64::total_cmp);
        let q = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p) as usize];
        eprintln!(
            "paraphrases: min {:.2} p10 {:.2} median {:.2}; other complaints at the same place: median {:.2} p99 {:.2} max {:.2}",
            para[0],
            q(&para, 0.1),
            q(&para, 0.5),
            q(&other, 0.5),
            q(&other, 0.99),
            other[other.len() - 1]
        );
        let hit = para.iter().filter(|&&s| s >= 0.5).count() as f64 / para.len() as f64;
        let false_hit = other.iter().filter(|&&s| s >= 0.5).count();
        eprintln!(
            "at 0.5: {hit:.2} of {} paraphrases, {false_hit} of {} other complaints",
            para.len(),
            other.len()
        );
        assert!(hit >= 0.6, "only {hit:.2} of paraphrases reach 0.5");
        assert_eq!(false_hit, 0, "other complaints reaching 0.5");
        // The example.
        let s = estimate_jaccard(
            &Signature::of("小区门口井盖没了，很危险"),
            &Signature::of("小区门口的井盖不见了很危险"),
        );
        assert!(s >= 0.5, "{s}");
    }
}
