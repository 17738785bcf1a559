//! The model file: little-endian binary, written the same way every time (so a model
//! saved, loaded and saved again is the same bytes).
//!
//! ```text
//! "CITYOSCL"  magic (8 bytes)
//! u32         format version (VERSION)
//! u32 k; u8 min_n; u8 max_n; u8 dim_bits; u8 head_max_n; u16 head
//! u32 trained_on; u64 seed; f32 idf of unseen buckets; f32 calibration scale
//! k × (u32 length, UTF-8 label)
//! k × f32     bias
//! k × f32     calibration bias
//! u8 cross;   cross × k × k × f32 calibration cross terms (cross 0 or 1)
//! u32 rows; rows × (u32 bucket, f32 idf, k × f32 weight)   — buckets seen in training, ascending
//! u64         FNV-1a of every byte before it
//! ```

use super::calibrate::Calibration;
use super::text::{Features, DIM, DIM_BITS};
use super::Model;
use crate::rng::fnv1a;

const MAGIC: &[u8; 8] = b"CITYOSCL";
/// 2: calibrated scores (scale and bias stored), `head_max_n`.
pub const VERSION: u32 = 2;

/// Why a model cannot be read. A missing or damaged model is an error the caller reports
/// (and intake falls back to triage), never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("no classifier model at {0} (train one with `cityos classify train`)")]
    Missing(String),
    #[error("not a cityos classifier model (wrong magic bytes)")]
    NotAModel,
    #[error("classifier model format version {0} is not supported (this build reads {VERSION})")]
    Version(u32),
    #[error("classifier model format version {0} is from an older build (its scores are not calibrated); retrain it with `cityos classify train` (this build reads version {VERSION})")]
    Outdated(u32),
    #[error("the classifier model is truncated")]
    Truncated,
    #[error("the classifier model is corrupt (checksum mismatch)")]
    Checksum,
    #[error("the classifier model is corrupt: {0}")]
    Malformed(String),
}

impl Model {
    /// The model as bytes (see the module documentation for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        let k = self.labels.len();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(k as u32).to_le_bytes());
        out.extend_from_slice(&[
            self.features.min_n,
            self.features.max_n,
            DIM_BITS as u8,
            self.features.head_max_n,
        ]);
        out.extend_from_slice(&self.features.head.to_le_bytes());
        out.extend_from_slice(&self.trained_on.to_le_bytes());
        out.extend_from_slice(&self.seed.to_le_bytes());
        out.extend_from_slice(&self.idf_unseen.to_le_bytes());
        out.extend_from_slice(&self.calibration.scale.to_le_bytes());
        for l in &self.labels {
            out.extend_from_slice(&(l.len() as u32).to_le_bytes());
            out.extend_from_slice(l.as_bytes());
        }
        for b in &self.bias {
            out.extend_from_slice(&b.to_le_bytes());
        }
        for j in 0..k {
            let b = self.calibration.bias.get(j).copied().unwrap_or(0.0);
            out.extend_from_slice(&b.to_le_bytes());
        }
        let cross = self.calibration.cross.len() == k * k;
        out.push(cross as u8);
        if cross {
            for x in &self.calibration.cross {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        for (r, &i) in self.keys.iter().enumerate() {
            out.extend_from_slice(&i.to_le_bytes());
            for x in &self.rows[r * (k + 1)..(r + 1) * (k + 1)] {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Reads a model, checking the magic, the version, the checksum and every length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(if bytes.len() < 8 && MAGIC.starts_with(bytes) {
                ModelError::Truncated
            } else {
                ModelError::NotAModel
            });
        }
        let mut r = Reader { b: bytes, at: 8 };
        let version = r.u32()?;
        if (1..VERSION).contains(&version) {
            return Err(ModelError::Outdated(version));
        }
        if version != VERSION {
            return Err(ModelError::Version(version));
        }
        if bytes.len() < 8 + 4 + 8 {
            return Err(ModelError::Truncated);
        }
        let (body, tail) = bytes.split_at(bytes.len() - 8);
        let sum = u64::from_le_bytes(tail.try_into().expect("8 bytes"));
        if fnv1a(body) != sum {
            return Err(ModelError::Checksum);
        }
        r.b = body;
        let bad = |m: &str| ModelError::Malformed(m.to_string());
        let k = r.u32()? as usize;
        if !(2..=10_000).contains(&k) {
            return Err(bad("label count out of range"));
        }
        let (min_n, max_n, bits, head_max_n) = (r.u8()?, r.u8()?, r.u8()?, r.u8()?);
        let head = r.u16()?;
        if bits as u32 != DIM_BITS {
            return Err(bad("feature space of another size"));
        }
        if min_n == 0 || max_n < min_n || max_n > 8 || head_max_n > 8 {
            return Err(bad("n-gram range out of bounds"));
        }
        let trained_on = r.u32()?;
        let seed = r.u64()?;
        let idf_unseen = r.f32()?;
        let scale = r.f32()?;
        if !(scale > 0.0 && scale.is_finite()) {
            return Err(bad("calibration scale not a positive number"));
        }
        let mut labels = Vec::with_capacity(k);
        for _ in 0..k {
            let len = r.u32()? as usize;
            let s = std::str::from_utf8(r.take(len)?).map_err(|_| bad("a label is not UTF-8"))?;
            labels.push(s.to_string());
        }
        let bias = (0..k).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        let calibration_bias = (0..k).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        let cross = match r.u8()? {
            0 => Vec::new(),
            1 => (0..k * k).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?,
            _ => return Err(bad("calibration cross flag neither 0 nor 1")),
        };
        if calibration_bias
            .iter()
            .chain(&cross)
            .any(|b| !b.is_finite())
        {
            return Err(bad("calibration term not a number"));
        }
        let rows = r.u32()? as usize;
        if rows > DIM {
            return Err(bad("more rows than buckets"));
        }
        // Each row is 4 + 4 (k + 1) bytes: a count the rest cannot hold is a lie.
        if rows > (body.len() - r.at.min(body.len())) / (4 + 4 * (k + 1)) {
            return Err(ModelError::Truncated);
        }
        let mut keys = Vec::with_capacity(rows);
        let mut w = vec![0f32; rows * (k + 1)];
        let mut last: Option<usize> = None;
        for row in 0..rows {
            let i = r.u32()? as usize;
            if i >= DIM || last.is_some_and(|l| l >= i) {
                return Err(bad("buckets out of order"));
            }
            last = Some(i);
            keys.push(i as u32);
            for x in &mut w[row * (k + 1)..(row + 1) * (k + 1)] {
                *x = r.f32()?;
            }
            if w[row * (k + 1)].partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return Err(bad("a stored bucket without an IDF"));
            }
        }
        if r.at != body.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(Model {
            labels,
            features: Features {
                min_n,
                max_n,
                head,
                head_max_n,
            },
            trained_on,
            seed,
            idf_unseen,
            slot: super::Slots::of(&keys),
            keys,
            rows: w,
            bias,
            calibration: Calibration {
                scale,
                bias: calibration_bias,
                cross,
            },
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).ok_or(ModelError::Truncated)?;
        let s = self.b.get(self.at..end).ok_or(ModelError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, ModelError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
}
