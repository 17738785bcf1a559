//! The inspectors' mobile end: photos uploaded and attached to reports, GPS reports from
//! the grid, the verification list, verification only with photo evidence, and a phone's
//! offline queue replayed with its Idempotency-Keys creating nothing twice.

use crate::api_story;
use crate::open311::PNG;
use crate::support::{spot, TestApp};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn upload(t: &TestApp, token: Option<&str>, bytes: &[u8]) -> (StatusCode, Value) {
    let mut b = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/media")
        .header("content-type", "image/png")
        .header("host", "cityos.test");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let resp = cityos_server::app(t.svc.as_ref().unwrap().state.clone())
        .oneshot(b.body(Body::from(bytes.to_vec())).unwrap())
        .await
        .unwrap();
    let s = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (s, serde_json::from_slice(&b).unwrap())
}

async fn queued(
    t: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let (s, v, _) = t
        .call(
            Method::POST,
            path,
            Some(token),
            Some(body),
            &[("idempotency-key", key)],
        )
        .await;
    (s, v)
}

api_story!(inspector_reports_and_verifies_with_photos);
async fn inspector_reports_and_verifies_with_photos(t: TestApp) {
    t.seed().await;
    let zhao = t.login("zhao.inspector").await;
    let wang = t.login("wang.urban").await;
    let admin = t.login("admin").await;
    // Photos need a signed-in caller.
    let (s, v) = upload(&t, None, PNG).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, photo) = upload(&t, Some(&zhao), PNG).await;
    assert_eq!(s, StatusCode::CREATED, "{photo}");
    let url = photo["media_url"].as_str().unwrap().to_string();

    // A report from the grid with GPS and photos, sent twice by a phone that lost the answer.
    let p = spot("310104003", 7);
    let report = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商占道，已拍照", "media": [url]});
    let (s, first) = queued(&t, &zhao, "/api/v1/reports", "phone-7-q1", report.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again) = queued(&t, &zhao, "/api/v1/reports", "phone-7-q1", report.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(first["case"]["number"], again["case"]["number"]);
    let number = first["case"]["number"].as_str().unwrap().to_string();
    assert_eq!(first["case"]["channel"], "inspector");
    assert_eq!(
        first["case"]["state"], "dispatched",
        "inspector reports skip filing"
    );
    let (_, stats) = t.get("/api/v1/stats", Some(&admin)).await;
    assert_eq!(stats["total"], 1, "the replay created nothing");
    // A photo address that names nothing, and too many photos, are refused.
    let bad = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "x", "media": ["http://cityos.test/media/ffffffffffffffffffffffffffffffff.png"]});
    let (s, v) = t.post("/api/v1/reports", Some(&zhao), bad).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_media")),
        "{v}"
    );
    let many = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "x", "media": vec![url.clone(); 10]});
    let (s, _) = t.post("/api/v1/reports", Some(&zhao), many).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The squad handles it; then it awaits the inspector's on-site verification.
    for a in ["acknowledge", "start", "handle"] {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{number}/transitions"),
                Some(&wang),
                json!({"action": a}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}: {v}");
    }
    let (_, inbox) = t.get("/api/v1/inbox", Some(&zhao)).await;
    assert_eq!(inbox["cases"][0]["number"], number.as_str(), "{inbox}");

    // Without a photo the verification is refused and nothing changes.
    let path = format!("/api/v1/cases/{number}/transitions");
    let (s, v) = t
        .post(&path, Some(&zhao), json!({"action": "verify"}))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("evidence_required")),
        "{v}"
    );
    let (_, c) = t.get(&format!("/api/v1/cases/{number}"), Some(&zhao)).await;
    assert_eq!(
        c["state"].as_str().or(c["case"]["state"].as_str()),
        Some("handled"),
        "{c}"
    );

    // With the photo, queued offline and sent twice: verified once.
    let (s, photo2) = upload(&t, Some(&zhao), &[PNG, b"x"].concat()).await;
    assert_eq!(s, StatusCode::CREATED);
    let evidence =
        json!({"action": "verify", "note": "现场已清理", "attachments": [photo2["media_url"]]});
    let (s, v1) = queued(&t, &zhao, &path, "phone-7-q2", evidence.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v1}");
    let (s, v2) = queued(&t, &zhao, &path, "phone-7-q2", evidence).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v1, v2, "the replay answers the first answer");
    let (_, c) = t.get(&format!("/api/v1/cases/{number}"), Some(&zhao)).await;
    let log = c["log"]
        .as_array()
        .or(c["case"]["log"].as_array())
        .unwrap_or_else(|| panic!("{c}"));
    let verifies = log.iter().filter(|e| e["action"] == "verify").count();
    assert_eq!(verifies, 1, "{c}");
    let text = c.to_string();
    assert!(
        text.contains(photo2["media_url"].as_str().unwrap()),
        "the evidence is in the log"
    );
    assert!(text.contains(&url), "the report's photo is on the case");
}

/// A JPEG as a phone takes it: JFIF, then an Exif APP1 segment with a GPS IFD (Xuhui's
/// position), an XMP APP1, a comment naming the taker, the tables and the image data.
/// Answers (the file, the same file without the Exif, XMP and comment segments).
pub fn jpeg_with_gps() -> (Vec<u8>, Vec<u8>) {
    fn seg(m: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, m];
        v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }
    let jfif = seg(0xE0, b"JFIF\0\x01\x01\0\0\x48\0\x48\0\0");
    // TIFF (big-endian): IFD0 with one entry, GPSInfo (0x8825) → the GPS IFD with
    // GPSLatitudeRef 'N' and GPSLatitude 31/1 11/1 4500/100.
    let mut tiff: Vec<u8> = b"MM\0\x2A\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&[0, 1, 0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26, 0, 0, 0, 0]);
    tiff.extend_from_slice(&[0, 2]);
    tiff.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&[0, 2, 0, 5, 0, 0, 0, 3, 0, 0, 0, 62, 0, 0, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 31, 0, 0, 0, 1, 0, 0, 0, 11, 0, 0, 0, 1]);
    tiff.extend_from_slice(&[0, 0, 0x11, 0x94, 0, 0, 0, 100]);
    let exif = seg(0xE1, &[&b"Exif\0\0"[..], &tiff].concat());
    let xmp = seg(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>31,11.75N</exif:GPSLatitude></x:xmpmeta>",
    );
    let com = seg(0xFE, "拍摄：张三 13912345678".as_bytes());
    let mut dqt_body = vec![0u8];
    dqt_body.extend((1..=64u8).collect::<Vec<_>>());
    let dqt = seg(0xDB, &dqt_body);
    let sof = seg(0xC0, &[8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
    let dht = seg(0xC4, &[0; 17]);
    let sos = seg(0xDA, &[1, 1, 0, 0, 63, 0]);
    let data: Vec<u8> = (0..600u32)
        .map(|i| (i * 37 % 251) as u8)
        .flat_map(|b| if b == 0xFF { vec![0xFF, 0x00] } else { vec![b] })
        .chain([0xFF, 0xD9])
        .collect();
    let soi = [0xFF, 0xD8];
    let file = [
        &soi[..],
        &jfif,
        &exif,
        &xmp,
        &com,
        &dqt,
        &sof,
        &dht,
        &sos,
        &data,
    ]
    .concat();
    let clean = [&soi[..], &jfif, &dqt, &sof, &dht, &sos, &data].concat();
    (file, clean)
}

api_story!(uploaded_photos_lose_their_exif_and_keep_their_image_bytes);
/// Photos from any client lose their metadata before they are stored: a JPEG with GPS
/// Exif, XMP and a comment, uploaded by an inspector (`/api/v1/media`) and anonymously
/// through Open311 (`media.json`), reads back without them and otherwise byte for byte;
/// a file whose segments run past its end is refused as `malformed_photo`, nothing stored.
async fn uploaded_photos_lose_their_exif_and_keep_their_image_bytes(t: TestApp) {
    t.seed().await;
    let zhao = t.login("zhao.inspector").await;
    let (file, clean) = jpeg_with_gps();
    assert!(file.windows(4).any(|w| w == b"Exif"));
    let send = |path: &'static str, token: Option<String>, bytes: Vec<u8>| {
        let mut b = axum::http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "image/jpeg")
            .header("host", "cityos.test");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let app = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
        async move {
            let resp = app
                .oneshot(b.body(Body::from(bytes)).unwrap())
                .await
                .unwrap();
            let s = resp.status();
            let b = resp.into_body().collect().await.unwrap().to_bytes();
            // Open311 answers a list of one; the inspectors' end the object itself.
            let v = serde_json::from_slice::<Value>(&b).unwrap();
            (s, if v.is_array() { v[0].clone() } else { v })
        }
    };
    let read_back = |url: String| {
        let app = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
        async move {
            let path = url.trim_start_matches("http://cityos.test").to_string();
            let resp = app
                .oneshot(
                    axum::http::Request::builder()
                        .uri(path)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["content-type"], "image/jpeg");
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec()
        }
    };
    let (s, v) = send("/api/v1/media", Some(zhao.clone()), file.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["size"], clean.len());
    let stored = read_back(v["media_url"].as_str().unwrap().to_string()).await;
    assert_eq!(stored, clean, "only the metadata segments are gone");
    for gone in [
        &b"Exif"[..],
        b"xap/1.0",
        b"GPSLatitude",
        "张三".as_bytes(),
        b"13912345678",
    ] {
        assert!(!stored.windows(gone.len()).any(|w| w == gone));
    }
    let (s, v2) = send("/open311/v2/media.json", None, file.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v2}");
    assert_eq!(
        v2["media_url"], v["media_url"],
        "the same photo, stored once"
    );
    assert_eq!(
        read_back(v2["media_url"].as_str().unwrap().to_string()).await,
        clean
    );
    // A clean file is stored as it came.
    let (s, v3) = send("/open311/v2/media.json", None, clean.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v3}");
    assert_eq!(v3["media_url"], v["media_url"]);

    // Malformed: a segment longer than the file, no image data at all.
    let mut cut = file.clone();
    cut.truncate(40);
    for (bytes, why) in [
        (cut, "claims"),
        (vec![0xFF, 0xD8, 0xFF, 0xD9], "before its image data"),
    ] {
        for (path, token) in [
            ("/api/v1/media", Some(zhao.clone())),
            ("/open311/v2/media.json", None),
        ] {
            let (s, v) = send(path, token, bytes.clone()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
            let text = v.to_string();
            assert!(
                text.contains("malformed_photo") || path.starts_with("/open311"),
                "{v}"
            );
            assert!(text.contains(why), "{path}: {v}");
        }
    }
}
