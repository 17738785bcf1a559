//! The live demo's intake ends over the real protocols: every few seconds a citizen's app
//! files an Open311 GeoReport v2 request (form-encoded, with an api_key), and a grid
//! inspector signs in, uploads a photo and reports from their grid — all as HTTP requests
//! to the demo's own listening address, exactly as outside clients would.

use cityos_core::rng::Rng;
use cityos_core::Level;
use cityos_engine::config::Config;
use cityos_server::http::auth::Principal;
use cityos_server::runtime::service::DEMO_PASSWORD;
use cityos_server::AppState;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A 1×1 PNG: the inspector's "photo".
const PHOTO: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// One HTTP/1.1 request on a fresh connection; answers (status, body).
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    s.write_all(body).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn json_field(body: &str, path: &[&str]) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
    for p in path {
        v = match p.parse::<usize>() {
            Ok(i) => v.get(i)?.clone(),
            Err(_) => v.get(*p)?.clone(),
        };
    }
    v.as_str().map(String::from)
}

/// Runs until `stop`: one Open311 request and one inspector report every `every`.
pub async fn run(
    st: AppState,
    addr: String,
    cfg: Config,
    seed: u64,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::new(seed ^ 0x0311);
    let t = &cfg.territory;
    let grids: Vec<_> = t
        .regions()
        .filter(|(_, r)| r.level == Level::Grid)
        .map(|(id, _)| id)
        .collect();
    let tianping = t.by_code("310104003");
    let his: Vec<_> = grids
        .iter()
        .copied()
        .filter(|g| tianping.is_some_and(|s| t.is_within(*g, s)))
        .collect();
    // A registered app's api_key (the district's 12345 app), signed with the service's key.
    let api_key = st.0.key.sign(&Principal {
        name: "12345-app".into(),
        role: cityos_core::Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    });
    // Services a citizen can file without extra questions.
    let services: Vec<_> = cfg
        .taxonomy
        .categories
        .iter()
        .filter(|c| c.public && c.questions.iter().all(|q| !q.required))
        .collect();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(every).await;
        n += 1;
        // The citizens' end: Open311.
        let c = services[rng.below(services.len() as u64) as usize];
        let p = t.interior_point(grids[rng.below(grids.len() as u64) as usize]);
        let form = format!(
            "api_key={api_key}&service_code={}&lat={}&long={}&description={}",
            c.code,
            p[1],
            p[0],
            enc(&format!("{}（Open311 演示 #{n}）", c.name_zh))
        );
        let _ = http(
            &addr,
            "POST",
            "/open311/v2/requests.json",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .await;
        // The inspectors' end: sign in, upload a photo, report from the grid.
        if his.is_empty() {
            continue;
        }
        let login = format!(r#"{{"username":"zhao.inspector","password":"{DEMO_PASSWORD}"}}"#);
        let Ok((200, b)) = http(
            &addr,
            "POST",
            "/api/v1/auth/login",
            &[("Content-Type", "application/json")],
            login.as_bytes(),
        )
        .await
        else {
            continue;
        };
        let Some(token) = json_field(&b, &["token"]) else {
            continue;
        };
        let auth = format!("Bearer {token}");
        let Ok((201, b)) = http(
            &addr,
            "POST",
            "/api/v1/media",
            &[("Content-Type", "image/png"), ("Authorization", &auth)],
            PHOTO,
        )
        .await
        else {
            continue;
        };
        let Some(photo) = json_field(&b, &["media_url"]) else {
            continue;
        };
        let inspector_cats = [
            "street_vending",
            "exposed_garbage",
            "illegal_parking",
            "shop_encroachment",
        ];
        let cat = inspector_cats[rng.below(inspector_cats.len() as u64) as usize];
        let p = t.interior_point(his[rng.below(his.len() as u64) as usize]);
        let name = cfg
            .taxonomy
            .category(cat)
            .map_or(cat, |c| c.name_zh.as_str());
        let report = serde_json::json!({
            "category": cat, "lon": p[0], "lat": p[1],
            "text": format!("{name}（巡查上报演示 #{n}）"), "media": [photo],
        });
        let key = format!("demo-inspector-{seed}-{n}");
        let _ = http(
            &addr,
            "POST",
            "/api/v1/reports",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
                ("Idempotency-Key", &key),
            ],
            report.to_string().as_bytes(),
        )
        .await;
    }
}
