//! Removing what a photo says about its taker before it is stored: camera EXIF (GPS
//! position, time, device serials), XMP and text chunks, from photos of any client.
//! Our own small parsers of the three accepted containers, copying the image data as it
//! came — it is never decoded or re-encoded:
//!
//! - JPEG: every segment, before the first SOS and between scans, is judged: APP0 `JFIF`,
//!   APP2 `ICC_PROFILE` and APP14 `Adobe` (colour transform, needed for CMYK/YCCK) are kept,
//!   every other APPn (APP1 Exif and XMP, APP0 `JFXX` thumbnails, APP13 Photoshop/IPTC,
//!   makers' segments) and COM dropped; the entropy-coded data is copied byte for byte;
//!   EOI ends the file and anything after it (MPF secondary images, gain maps, makers'
//!   trailers, motion photos' video) is dropped; stray bytes before a marker are skipped.
//! - PNG: only IHDR, PLTE, IDAT, IEND and `tRNS gAMA cHRM sRGB iCCP sBIT bKGD pHYs cICP
//!   acTL fcTL fdAT` are kept (so `eXIf`, text, `tIME`, `caBX`, `iDOT`, makers' chunks go).
//! - WebP: the `EXIF` and `XMP ` chunks are dropped and the `VP8X` header's flags for
//!   them cleared; the RIFF size is rewritten.
//!
//! An Exif Orientation other than 1 is the one thing kept from the Exif: written back
//! alone in a minimal Exif (JPEG APP1; WebP `EXIF` chunk with its VP8X flag), so a
//! camera's upright photo is not shown sideways.
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

/// JPEG: segment by segment. After a start-of-scan the entropy-coded data is copied up to
/// the next marker (`FF 00` stuffing, `FF D0`–`FF D7` restarts and `FF` fill bytes are
/// data); any other marker returns to segment parsing under the same rules, so segments
/// between progressive scans are judged like those before the first; EOI ends the file
/// and whatever follows it (MPF secondary images, gain maps, makers' trailers, motion
/// photos' video) is dropped. Stray bytes where a marker should be are skipped, as
/// libjpeg does. An Exif Orientation other than 1 is kept, alone, in a minimal Exif APP1.
fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return bad("the JPEG does not start with SOI (FF D8)");
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    let mut scanned = false;
    let mut oriented = false;
    loop {
        // Stray bytes before a marker are skipped (libjpeg warns and does the same).
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        if i >= b.len() {
            if scanned {
                // Image data without its EOI: kept as it came (decoders show what is there).
                return Ok(out);
            }
            return bad("the JPEG ends before its image data (no SOS segment)");
        }
        // Fill bytes (FF FF …) may precede a marker.
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
            0xD9 if scanned => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(out);
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
            0xE0 => body.starts_with(b"JFIF\0"),
            0xE2 => body.starts_with(b"ICC_PROFILE\0"),
            0xEE => body.starts_with(b"Adobe"),
            0xE1 | 0xE3..=0xEF | 0xFE => false,
            _ => true,
        };
        if keep {
            out.extend_from_slice(&[0xFF, m]);
            out.extend_from_slice(&b[i..i + len]);
        } else if m == 0xE1 && !oriented && !scanned {
            if let Some(o) = body
                .strip_prefix(b"Exif\0\0")
                .and_then(exif_orientation)
                .filter(|&o| o != 1)
            {
                let tiff = orientation_tiff(o);
                out.extend_from_slice(&[0xFF, 0xE1]);
                out.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
                out.extend_from_slice(b"Exif\0\0");
                out.extend_from_slice(&tiff);
                oriented = true;
            }
        }
        i += len;
        if m == 0xDA {
            // Start of scan: the entropy-coded data runs to the next marker that is not
            // stuffing (FF 00), a restart (FF D0–D7) or fill (FF FF).
            scanned = true;
            let from = i;
            loop {
                match b.get(i..i + 2) {
                    None => {
                        i = b.len();
                        break;
                    }
                    Some([0xFF, 0x00 | 0xD0..=0xD7]) => i += 2,
                    // Fill: the last FF of a run is the marker's.
                    Some([0xFF, 0xFF]) => i += 1,
                    Some([0xFF, _]) => break,
                    Some(_) => i += 1,
                }
            }
            out.extend_from_slice(&b[from..i]);
        }
    }
}

/// The Exif Orientation (tag 0x0112, a SHORT in IFD0) of a TIFF structure, if it has one
/// in 1..=8.
fn exif_orientation(t: &[u8]) -> Option<u16> {
    let be = match t.get(..4)? {
        [b'M', b'M', 0, 42] => true,
        [b'I', b'I', 42, 0] => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let x: [u8; 2] = t.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if be {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let x: [u8; 4] = t.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if be {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        })
    };
    let ifd = u32_at(4)? as usize;
    let n = u16_at(ifd)? as usize;
    (0..n).find_map(|k| {
        let e = ifd.checked_add(2 + 12 * k)?;
        (u16_at(e)? == 0x0112 && u16_at(e + 2)? == 3 && u32_at(e + 4)? >= 1)
            .then(|| u16_at(e + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

/// A minimal big-endian TIFF structure holding only the Orientation tag.
fn orientation_tiff(o: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2A".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes());
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&0x0112u16.to_be_bytes());
    t.extend_from_slice(&3u16.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&o.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

/// PNG: chunk by chunk (length, type, data, CRC), each checked to fit the file; only the
/// image's chunks and a list of those that say how to show it are kept; ends with IEND
/// (anything after it is dropped).
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
        // The image and how to show it; every other chunk (text, eXIf, tIME, caBX
        // provenance, Apple's iDOT, makers' private chunks) is dropped.
        let keep = matches!(
            kind,
            b"IHDR"
                | b"PLTE"
                | b"IDAT"
                | b"IEND"
                | b"tRNS"
                | b"gAMA"
                | b"cHRM"
                | b"sRGB"
                | b"iCCP"
                | b"sBIT"
                | b"bKGD"
                | b"pHYs"
                | b"cICP"
                | b"acTL"
                | b"fcTL"
                | b"fdAT"
        );
        if keep {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

/// WebP: RIFF chunks (fourcc, little-endian size, data padded to even length). An Exif
/// Orientation other than 1 is kept, alone, in a minimal EXIF chunk (extended format only).
fn strip_webp(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return bad("the WebP does not start with a RIFF WEBP header");
    }
    let riff = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let Some(total) = riff.checked_add(8).filter(|&n| riff >= 4 && n <= b.len()) else {
        return bad(format!(
            "the WebP's RIFF header claims {riff} bytes, more than the file holds"
        ));
    };
    let b = &b[..total];
    let mut body = Vec::with_capacity(b.len());
    body.extend_from_slice(b"WEBP");
    let mut i = 12;
    let mut vp8x_at = None;
    let mut oriented = false;
    while i < b.len() {
        let Some(data) = i.checked_add(8).filter(|&n| n <= b.len()) else {
            return bad(format!("the WebP ends inside a chunk header at offset {i}"));
        };
        let kind = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let end = len
            .checked_add(len & 1)
            .and_then(|padded| data.checked_add(padded))
            .filter(|&n| n <= b.len())
            // The last chunk's padding byte may be missing.
            .or_else(|| (data.checked_add(len) == Some(b.len())).then_some(b.len()));
        let Some(end) = end else {
            return bad(format!(
                "the WebP's {} chunk at offset {i} claims {len} bytes, more than the file holds",
                String::from_utf8_lossy(kind)
            ));
        };
        match kind {
            b"EXIF" => {
                let exif = &b[data..data + len];
                let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
                if let Some(o) = exif_orientation(tiff).filter(|&o| o != 1 && !oriented) {
                    if vp8x_at.is_some() {
                        let t = orientation_tiff(o);
                        body.extend_from_slice(b"EXIF");
                        body.extend_from_slice(&(t.len() as u32).to_le_bytes());
                        body.extend_from_slice(&t);
                        oriented = true;
                    }
                }
            }
            b"XMP " => {}
            _ => {
                if kind == b"VP8X" {
                    if len < 10 {
                        return bad("the WebP's VP8X chunk is shorter than 10 bytes");
                    }
                    vp8x_at = Some(body.len() + 8);
                }
                body.extend_from_slice(&b[i..end]);
                if end - data < len + (len & 1) {
                    body.push(0);
                }
            }
        }
        i = end;
    }
    if let Some(at) = vp8x_at {
        // Flags: bit 3 EXIF, bit 2 XMP.
        body[at] &= !0b0000_1100;
        if oriented {
            body[at] |= 0b0000_1000;
        }
    }
    let Ok(size) = u32::try_from(body.len()) else {
        return bad("the WebP is too large");
    };
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&size.to_le_bytes());
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
            .contains("SOS"));
    }

    #[test]
    fn jpeg_loses_what_follows_eoi_and_segments_between_scans_and_keeps_the_scans() {
        let dqt = seg(0xDB, &[0u8; 65]);
        let sos1 = seg(0xDA, &[1, 1, 0, 0, 0, 0]);
        // Stuffing, a restart, fill bytes before a marker: all scan data.
        let scan1 = [0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xFF];
        let app1 = seg(0xE1, b"Exif\0\0MM\0*GPS 31.19N 121.43E");
        let com = seg(0xFE, b"Zhang San");
        let dht = seg(0xC4, &[0x10; 17]);
        let sos2 = seg(0xDA, &[1, 1, 0, 1, 63, 0x10]);
        let scan2 = [0x78, 0xFF, 0x00, 0x9A];
        let eoi = [0xFF, 0xD9];
        // An MPF secondary image / maker's trailer after EOI, with its own Exif and GPS.
        let trailer = [
            &[0xFF, 0xD8][..],
            &seg(0xE1, b"Exif\0\0MM\0*GPSLatitude 31.19"),
            b"SEFHSamsung motion photo",
        ]
        .concat();
        let input = [
            &[0xFF, 0xD8][..],
            &dqt,
            &sos1,
            &scan1,
            &app1,
            &com,
            &dht,
            &sos2,
            &scan2,
            &eoi,
            &trailer,
        ]
        .concat();
        let want = [
            &[0xFF, 0xD8][..],
            &dqt,
            &sos1,
            &scan1,
            &dht,
            &sos2,
            &scan2,
            &eoi,
        ]
        .concat();
        let got = strip("jpg", &input).unwrap();
        assert_eq!(got, want);
        let has = |needle: &[u8]| got.windows(needle.len()).any(|w| w == needle);
        assert!(!has(b"Exif") && !has(b"GPS") && !has(b"Samsung") && !has(b"Zhang"));
        // A file whose scan ends without EOI keeps what it has.
        let cut = [&[0xFF, 0xD8][..], &dqt, &sos1, &scan2].concat();
        assert_eq!(strip("jpg", &cut).unwrap(), cut);
    }

    #[test]
    fn jpeg_keeps_jfif_and_adobe_and_drops_jfxx_and_stray_bytes() {
        let jfif = seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        let jfxx = seg(0xE0, b"JFXX\0\x10\xFF\xD8thumbnail");
        let adobe = seg(0xEE, b"Adobe\0\x64\0\0\0\0\x02");
        let other14 = seg(0xEE, b"Maker\0serial 1234");
        let dqt = seg(0xDB, &[0u8; 65]);
        let sos = seg(0xDA, &[1, 1, 0, 0, 63, 0]);
        let data = [0x12, 0x34, 0xFF, 0xD9];
        let input = [
            &[0xFF, 0xD8][..],
            &jfif,
            &jfxx,
            &adobe,
            &other14,
            // Stray bytes before a marker (libjpeg: "extraneous bytes before marker").
            &[0x00, 0x17, 0x42],
            &dqt,
            &sos,
            &data,
        ]
        .concat();
        let want = [&[0xFF, 0xD8][..], &jfif, &adobe, &dqt, &sos, &data].concat();
        assert_eq!(strip("jpg", &input).unwrap(), want);
    }

    /// The (tag, value) entries of IFD0 of a TIFF structure, and whether it has a next IFD.
    fn ifd0(t: &[u8]) -> (Vec<(u16, u16)>, bool) {
        assert_eq!(&t[..4], b"MM\0\x2A");
        let at = u32::from_be_bytes(t[4..8].try_into().unwrap()) as usize;
        let n = u16::from_be_bytes(t[at..at + 2].try_into().unwrap()) as usize;
        let e = (0..n)
            .map(|k| {
                let e = at + 2 + 12 * k;
                let tag = u16::from_be_bytes(t[e..e + 2].try_into().unwrap());
                let val = u16::from_be_bytes(t[e + 8..e + 10].try_into().unwrap());
                (tag, val)
            })
            .collect();
        let next = &t[at + 2 + 12 * n..at + 6 + 12 * n];
        (e, next != [0, 0, 0, 0])
    }

    /// A little-endian Exif TIFF with GPS, a camera serial and Orientation `o`.
    fn camera_tiff(o: u16) -> Vec<u8> {
        let mut t = b"II\x2A\0".to_vec();
        t.extend_from_slice(&8u32.to_le_bytes());
        t.extend_from_slice(&3u16.to_le_bytes());
        // Make (ASCII, 4 bytes inline), Orientation, GPS IFD pointer.
        for (tag, typ, count, val) in [
            (0x010Fu16, 2u16, 4u32, *b"Cam\0"),
            (0x0112, 3, 1, [o as u8, 0, 0, 0]),
            (0x8825, 4, 1, 50u32.to_le_bytes()),
        ] {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&typ.to_le_bytes());
            t.extend_from_slice(&count.to_le_bytes());
            t.extend_from_slice(&val);
        }
        t.extend_from_slice(&0u32.to_le_bytes());
        t.extend_from_slice(b"GPS 31.19N 121.43E serial SN123456");
        t
    }

    #[test]
    fn an_orientation_other_than_1_survives_alone() {
        let dqt = seg(0xDB, &[0u8; 65]);
        let sos = seg(0xDA, &[1, 1, 0, 0, 63, 0]);
        let data = [0x12, 0x34, 0xFF, 0xD9];
        let exif = |o| seg(0xE1, &[&b"Exif\0\0"[..], &camera_tiff(o)].concat());
        let jpeg = |o| [&[0xFF, 0xD8][..], &exif(o), &dqt, &sos, &data].concat();
        let got = strip("jpg", &jpeg(6)).unwrap();
        let app1 = &got[2..got.len() - dqt.len() - sos.len() - data.len()];
        assert_eq!(&app1[..2], [0xFF, 0xE1]);
        assert_eq!(
            u16::from_be_bytes([app1[2], app1[3]]) as usize,
            app1.len() - 2
        );
        assert_eq!(&app1[4..10], b"Exif\0\0");
        assert_eq!(ifd0(&app1[10..]), (vec![(0x0112, 6)], false));
        assert_eq!(exif_orientation(&app1[10..]), Some(6));
        assert!(!got.windows(3).any(|w| w == b"GPS" || w == b"Cam"));
        // Orientation 1 (or none) needs no Exif at all.
        let plain = [&[0xFF, 0xD8][..], &dqt, &sos, &data].concat();
        assert_eq!(strip("jpg", &jpeg(1)).unwrap(), plain);

        // WebP: a minimal EXIF chunk and the VP8X flag for it.
        let vp8x = riff_chunk(b"VP8X", &[0b0000_1100, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let vp8 = riff_chunk(b"VP8 ", &[7; 11]);
        let input = riff(&[&vp8x, &vp8, &riff_chunk(b"EXIF", &camera_tiff(8))]);
        let got = strip("webp", &input).unwrap();
        let mut flags = [0u8; 10];
        flags[0] = 0b0000_1000;
        let head = riff(&[&riff_chunk(b"VP8X", &flags), &vp8]);
        assert_eq!(&got[8..head.len()], &head[8..]);
        let chunk = &got[head.len()..];
        assert_eq!(&chunk[..4], b"EXIF");
        let len = u32::from_le_bytes(chunk[4..8].try_into().unwrap()) as usize;
        assert_eq!(len, chunk.len() - 8);
        assert_eq!(ifd0(&chunk[8..]), (vec![(0x0112, 8)], false));
        assert_eq!(
            u32::from_le_bytes(got[4..8].try_into().unwrap()) as usize,
            got.len() - 8
        );
        let upright = riff(&[&vp8x, &vp8, &riff_chunk(b"EXIF", &camera_tiff(1))]);
        let mut none = [0u8; 10];
        none[0] = 0;
        assert_eq!(
            strip("webp", &upright).unwrap(),
            riff(&[&riff_chunk(b"VP8X", &none), &vp8])
        );
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
        let cabx = chunk(b"caBX", b"jumb c2pa Li Si's phone");
        let idot = chunk(b"iDOT", &[0; 28]);
        let vendor = chunk(b"prVt", b"serial SN123456");
        let srgb = chunk(b"sRGB", &[0]);
        let phys = chunk(b"pHYs", &[0; 9]);
        let trns = chunk(b"tRNS", &[0; 2]);
        let idat = chunk(b"IDAT", &[9; 20]);
        let iend = chunk(b"IEND", &[]);
        let input = [
            &sig[..],
            &ihdr,
            &srgb,
            &text,
            &cabx,
            &phys,
            &idot,
            &exif,
            &trns,
            &vendor,
            &idat,
            &iend,
            b"after the end",
        ]
        .concat();
        assert_eq!(
            strip("png", &input).unwrap(),
            [&sig[..], &ihdr, &srgb, &phys, &trns, &idat, &iend].concat()
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
        // Sizes near the top of u32 are refused by name, not overflowed.
        let mut huge = riff(&[&vp8x, &vp8]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(strip("webp", &huge).unwrap_err().0.contains("claims"));
        let mut chunk_huge = riff(&[&vp8x, &vp8]);
        let at = 12 + vp8x.len() + 4;
        chunk_huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(strip("webp", &chunk_huge).unwrap_err().0.contains("claims"));
    }
}
