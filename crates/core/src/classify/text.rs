//! Text → features: normalisation (full-width → half-width, ASCII lower case, whitespace
//! folded, length capped), the "is there anything to read" check, and hashed character
//! n-grams (1–2 by default). Character n-grams need no segmenter: Chinese words are 1–4 characters, so
//! bigrams and trigrams carry most of them, and nothing has to be downloaded.

use std::fmt;

/// Texts are cut to this many characters (after normalisation) before features are taken:
/// a 100 KB paste costs the same as a long message. Real messages are mostly under 1,000
/// characters; the longest seen in measurement data is about 12,000.
pub const MAX_CHARS: usize = 4000;

/// The hashed feature space: 2^20 buckets.
pub const DIM_BITS: u32 = 20;
pub const DIM: usize = 1 << DIM_BITS;

/// Why a text cannot be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the text is empty")]
    Empty,
    #[error("the text holds no letters, digits or Chinese characters (only punctuation, symbols or emoji)")]
    NoContent,
}

/// Full-width forms → half-width (ＡＢＣ１２３ → abc123, the ideographic space → a space),
/// ASCII upper → lower case, runs of whitespace → one space, trimmed, at most
/// [`MAX_CHARS`] characters. Traditional and simplified characters are left as they are.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 3));
    let mut n = 0;
    let mut space = false;
    for c in text.chars() {
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        };
        if c.is_whitespace() || c.is_control() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            if n + 1 >= MAX_CHARS {
                break;
            }
            out.push(' ');
            n += 1;
        }
        space = false;
        if n >= MAX_CHARS {
            break;
        }
        out.push(c.to_ascii_lowercase());
        n += 1;
    }
    out
}

/// The normalised text, or why it cannot be read: empty, or nothing but punctuation,
/// symbols and emoji.
pub fn readable(text: &str) -> Result<String, TextError> {
    let t = normalise(text);
    if t.is_empty() {
        return Err(TextError::Empty);
    }
    if !t.chars().any(char::is_alphanumeric) {
        return Err(TextError::NoContent);
    }
    Ok(t)
}

/// Feature settings (saved with the model, so a model is always read the way it was
/// trained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Shortest and longest character n-gram.
    pub min_n: u8,
    pub max_n: u8,
    /// The n-grams within the first `head` characters count twice: once as themselves and
    /// once as "near the start" (the subject and the first sentence usually name the
    /// matter; the rest is detail).
    pub head: u16,
    /// The longest n-gram counted "near the start" (0: `max_n`); longer than `max_n`
    /// adds n-grams that are counted only near the start.
    pub head_max_n: u8,
}

impl Default for Features {
    fn default() -> Features {
        Features {
            min_n: 1,
            max_n: 2,
            head: 80,
            head_max_n: 0,
        }
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "char {}-{}-grams, first {} characters also apart",
            self.min_n, self.max_n, self.head
        )?;
        if self.head_max_n != 0 && self.head_max_n != self.max_n {
            write!(f, " (up to {}-grams)", self.head_max_n)?;
        }
        Ok(())
    }
}

/// A stable 64-bit mix (SplitMix64's finaliser): the same bucket on every platform, so a
/// saved model reads the same everywhere.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Features {
    /// The buckets of every character n-gram of a normalised text, sorted (repeats kept:
    /// a run of equal buckets is the term's count). Spaces break n-grams.
    pub fn buckets(&self, text: &str, chars: &mut Vec<u32>, out: &mut Vec<u32>) {
        out.clear();
        let head = self.head as usize;
        chars.clear();
        chars.extend(text.chars().map(|c| c as u32));
        let (lo, hi) = (self.min_n.max(1) as usize, self.max_n.max(1) as usize);
        let head_hi = match self.head_max_n {
            0 => hi,
            n => n as usize,
        };
        for i in 0..chars.len() {
            let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
            let top = if i < head { hi.max(head_hi) } else { hi };
            for n in 1..=top {
                let Some(&c) = chars.get(i + n - 1) else {
                    break;
                };
                if c == ' ' as u32 {
                    break;
                }
                h = mix(h ^ u64::from(c)).wrapping_add(n as u64);
                if n >= lo {
                    if n <= hi {
                        out.push((h >> (64 - DIM_BITS)) as u32);
                    }
                    if i + n <= head && n <= head_hi {
                        out.push((mix(h ^ 0x4EAD) >> (64 - DIM_BITS)) as u32);
                    }
                }
            }
        }
        out.sort_unstable();
    }
}

/// Sorted buckets → (bucket, count) pairs.
pub fn counts(buckets: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *buckets.get(i)?;
        let start = i;
        while i < buckets.len() && buckets[i] == b {
            i += 1;
        }
        Some((b, (i - start) as u32))
    })
}
