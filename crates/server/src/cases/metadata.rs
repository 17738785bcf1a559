//! Removing what a photo says about its taker before it is stored: camera EXIF (GPS
//! position, time, device serials), XMP and text chunks, from photos of any client.
//! Our own small parsers of the three accepted containers, copying every other byte as
//! it came — the image data is never decoded or re-encoded:
//!
//! - JPEG: the APPn segments other than APP0 `JFIF`/`JFXX` and APP2 `ICC_PROFILE` are
//!   dropped (APP1 Exif and XMP, APP13 Photoshop/IPTC, maker segments), and so are
//!   comments (COM); everything from the first SOS on is copied unchanged.
//! - PNG: the `eXIf`, `tEXt`, `iTXt`, `zTXt` and `tIME` chunks are dropped.
//! - WebP: the `EXIF` and `XMP ` chunks are dropped and the `VP8X` header's flags for
//!   them cleared; the RIFF size is rewritten.
//!
//! A file that does not parse as its container is refused with what is wrong
//! ([`Malformed`]), never stored half-read.

/// What is wrong with a photo's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(why: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(why.into()))
}

/// The photo without its metadata; `ext` is the sniffed type (`jpg`, `png`, `webp`).
pub fn strip(ext: &str, b: &[u8]) -> Result<Vec<u8>, Malformed> {
    match ext {
        "jpg" => strip_jpeg(b),
        "png" => strip_png(b),
        "webp" => strip_webp(b),
        other => bad(format!("no metadata reader for {other:?} files")),
    }
}

/// JPEG: markers up to the first start-of-scan; after it the entropy-coded data and any
/// further segments are copied as they are.
fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return bad("the JPEG does not start with SOI (FF D8)");
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        // Fill bytes (FF FF …) may precede a marker.
        if i >= b.len() {
            return bad("the JPEG ends before its image data (no SOS segment)");
        }
        if b[i] != 0xFF {
            return bad(format!(
                "the JPEG has byte {:#04x} at offset {i} where a marker (FF xx) should be",
                b[i]
            ));
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&m) = b.get(i) else {
            return bad("the JPEG ends inside a marker");
        };
        i += 1;
        match m {
            0xD8 | 0x00 => {
                return bad(format!(
                    "the JPEG has an unexpected marker FF {m:02X} at offset {}",
                    i - 2
                ))
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, m]);
                continue;
            }
            0xD9 => return bad("the JPEG ends (EOI) before its image data"),
            _ => {}
        }
        if i + 2 > b.len() {
            return bad(format!(
                "the JPEG's segment FF {m:02X} at offset {} has no length",
                i - 2
            ));
        }
        let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
        if len < 2 || i + len > b.len() {
            return bad(format!(
                "the JPEG's segment FF {m:02X} at offset {} claims {len} bytes, more than the file holds",
                i - 2
            ));
        }
        let body = &b[i + 2..i + len];
        let keep = match m {
            0xE0 => body.starts_with(b"JFIF\0") || body.starts_with(b"JFXX\0"),
            0xE2 => body.starts_with(b"ICC_PROFILE\0"),
            0xE1 | 0xE3..=0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(&[0xFF, m]);
            out.extend_from_slice(&b[i..i + len]);
        }
        i += len;
        if m == 0xDA {
            // Start of scan: the rest is image data (and possibly further scans).
            out.extend_from_slice(&b[i..]);
            return Ok(out);
        }
    }
}

/// PNG: chunk by chunk (length, type, data, CRC), each checked to fit the file; ends
/// with IEND (anything after it is dropped).
fn strip_png(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    const SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    if !b.starts_with(&SIG) {
        return bad("the PNG does not start with the PNG signature");
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&SIG);
    let mut i = 8;
    let mut first = true;
    loop {
        if i + 8 > b.len() {
            return bad("the PNG ends without an IEND chunk");
        }
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let kind = &b[i + 4..i + 8];
        if !kind.iter().all(|c| c.is_ascii_alphabetic()) {
            return bad(format!(
                "the PNG has a chunk at offset {i} with an invalid type"
            ));
        }
        let end = i
            .checked_add(12)
            .and_then(|n| n.checked_add(len))
            .filter(|&n| n <= b.len());
        let Some(end) = end else {
            return bad(format!(
                "the PNG's {} chunk at offset {i} claims {len} bytes, more than the file holds",
                String::from_utf8_lossy(kind)
            ));
        };
        if first && kind != b"IHDR" {
            return bad("the PNG's first chunk is not IHDR");
        }
        first = false;
        let drop = matches!(kind, b"eXIf" | b"tEXt" | b"iTXt" | b"zTXt" | b"tIME");
        if !drop {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

/// WebP: RIFF chunks (fourcc, little-endian size, data padded to even length).
fn strip_webp(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return bad("the WebP does not start with a RIFF WEBP header");
    }
    let riff = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if riff < 4 || riff + 8 > b.len() {
        return bad(format!(
            "the WebP's RIFF header claims {riff} bytes, more than the file holds"
        ));
    }
    let b = &b[..riff + 8];
    let mut body = Vec::with_capacity(b.len());
    body.extend_from_slice(b"WEBP");
    let mut i = 12;
    let mut vp8x_at = None;
    while i < b.len() {
        if i + 8 > b.len() {
            return bad(format!("the WebP ends inside a chunk header at offset {i}"));
        }
        let kind = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let padded = len + (len & 1);
        let end = (i + 8)
            .checked_add(padded)
            .filter(|&n| n <= b.len())
            // The last chunk's padding byte may be missing.
            .or_else(|| (i + 8 + len == b.len()).then_some(b.len()));
        let Some(end) = end else {
            return bad(format!(
                "the WebP's {} chunk at offset {i} claims {len} bytes, more than the file holds",
                String::from_utf8_lossy(kind)
            ));
        };
        if !matches!(kind, b"EXIF" | b"XMP ") {
            if kind == b"VP8X" {
                if len < 10 {
                    return bad("the WebP's VP8X chunk is shorter than 10 bytes");
                }
                vp8x_at = Some(body.len() + 8);
            }
            body.extend_from_slice(&b[i..end]);
            if end - (i + 8) < padded {
                body.push(0);
            }
        }
        i = end;
    }
    if let Some(at) = vp8x_at {
        // Flags: bit 3 EXIF, bit 2 XMP.
        body[at] &= !0b0000_1100;
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(m: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, m];
        v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn jpeg_loses_exif_xmp_and_comments_and_keeps_the_rest_byte_for_byte() {
        let jfif = seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        let exif = seg(0xE1, b"Exif\0\0MM\0*GPS 31.19N 121.43E");
        let xmp = seg(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>");
        let icc = seg(0xE2, b"ICC_PROFILE\0\x01\x01abc");
        let com = seg(0xFE, b"taken by Zhang San");
        let dqt = seg(0xDB, &[0u8; 65]);
        let sos = seg(0xDA, &[1, 1, 0, 0, 63, 0]);
        let data = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9];
        let mut input = vec![0xFF, 0xD8];
        for s in [&jfif, &exif, &xmp, &icc, &com, &dqt, &sos] {
            input.extend_from_slice(s);
        }
        input.extend_from_slice(&data);
        let mut want = vec![0xFF, 0xD8];
        for s in [&jfif, &icc, &dqt, &sos] {
            want.extend_from_slice(s);
        }
        want.extend_from_slice(&data);
        assert_eq!(strip("jpg", &input).unwrap(), want);
        // A length running past the end, or no image data, is refused by name.
        let mut cut = input[..30].to_vec();
        cut.truncate(30);
        assert!(strip("jpg", &cut).unwrap_err().0.contains("claims"));
        assert!(strip("jpg", &[0xFF, 0xD8, 0xFF, 0xD9])
            .unwrap_err()
            .0
            .contains("EOI"));
        assert!(strip("jpg", &[0xFF, 0xD8, 0x00])
            .unwrap_err()
            .0
            .contains("marker"));
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn png_loses_text_and_exif_chunks() {
        let sig = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        let ihdr = chunk(b"IHDR", &[0; 13]);
        let text = chunk(b"tEXt", b"Author\0Li Si");
        let exif = chunk(b"eXIf", b"MM\0*GPS");
        let idat = chunk(b"IDAT", &[9; 20]);
        let iend = chunk(b"IEND", &[]);
        let input = [&sig[..], &ihdr, &text, &exif, &idat, &iend].concat();
        assert_eq!(
            strip("png", &input).unwrap(),
            [&sig[..], &ihdr, &idat, &iend].concat()
        );
        let no_end = [&sig[..], &ihdr, &idat].concat();
        assert!(strip("png", &no_end).unwrap_err().0.contains("IEND"));
        let long = [&sig[..], &ihdr, &idat[..10]].concat();
        assert!(strip("png", &long).unwrap_err().0.contains("claims"));
    }

    fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = kind.to_vec();
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn riff(chunks: &[&[u8]]) -> Vec<u8> {
        let body = [&b"WEBP"[..], &chunks.concat()].concat();
        [&b"RIFF"[..], &(body.len() as u32).to_le_bytes(), &body].concat()
    }

    #[test]
    fn webp_loses_exif_and_xmp_and_their_flags() {
        let mut flags = [0u8; 10];
        flags[0] = 0b0000_1100;
        let vp8x = riff_chunk(b"VP8X", &flags);
        let vp8 = riff_chunk(b"VP8 ", &[7; 11]);
        let exif = riff_chunk(b"EXIF", b"MM\0*GPS");
        let xmp = riff_chunk(b"XMP ", b"<x/>");
        let input = riff(&[&vp8x, &vp8, &exif, &xmp]);
        let want = riff(&[&riff_chunk(b"VP8X", &[0; 10]), &vp8]);
        assert_eq!(strip("webp", &input).unwrap(), want);
        let mut short = input.clone();
        short.truncate(30);
        assert!(strip("webp", &short).unwrap_err().0.contains("claims"));
    }
}
