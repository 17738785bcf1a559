//! Who may knock, and how often: per-key rate windows (sign-in failures per account and
//! per address, anonymous case lookups per address), the peer address, the machine-token
//! guard (a machine reaches only its channel's endpoints), the session cookie of the web
//! pages with its CSRF rule, and the security headers every answer carries.
//!
//! CSRF: the session cookie is `SameSite=Strict` and `HttpOnly`; on top of that, a
//! state-changing request (anything but GET/HEAD/OPTIONS) authenticated by the cookie
//! (no `Authorization` header) must carry `X-Requested-With` (a header a cross-site form
//! cannot send and a cross-site script cannot add without a CORS preflight) and, when it
//! names an `Origin`, that origin must be this host. Bearer-token clients are unaffected.

use crate::http::endpoints::{Access, ENDPOINTS};
use crate::http::error::{ApiError, Problem};
use crate::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use cityos_core::time::Millis;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cityos_session";

/// The most keys one [`Window`] holds: when full, expired keys are dropped first, then
/// new keys are refused (429) until some window ends, so memory stays bounded whatever
/// keys callers make up.
pub const WINDOW_KEYS: usize = 100_000;

/// Counts per key in fixed windows: the first event opens a window of `window` ms; at
/// `limit` events the key is refused until the window ends. Checking and counting happen
/// under one lock ([`Window::admit`]), so parallel requests cannot outrun the limit; at
/// most [`WINDOW_KEYS`] keys are held.
pub struct Window {
    limit: u32,
    window: Millis,
    keys: usize,
    map: Mutex<HashMap<String, (Millis, u32)>>,
}

impl Window {
    pub fn new(limit: u32, window: Millis) -> Window {
        Window::with_keys(limit, window, WINDOW_KEYS)
    }

    /// A window holding at most `keys` keys.
    pub fn with_keys(limit: u32, window: Millis, keys: usize) -> Window {
        Window {
            limit,
            window,
            keys,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn wait(&self, start: Millis, now: Millis) -> u32 {
        ((start + self.window - now + 999) / 1000).max(1) as u32
    }

    /// Seconds until `key` may try again, when its window is full.
    pub fn blocked(&self, key: &str, now: Millis) -> Option<u32> {
        let g = self.map.lock().expect("window lock");
        let (start, n) = *g.get(key)?;
        (now - start < self.window && n >= self.limit).then(|| self.wait(start, now))
    }

    /// Counts one event of `key` and admits it, or says how many seconds to wait (its
    /// window is full, or the map is full of live keys and `key` is new). One lock for
    /// the check and the count: of parallel callers, exactly `limit` are admitted.
    pub fn admit(&self, key: &str, now: Millis) -> Result<(), u32> {
        let mut g = self.map.lock().expect("window lock");
        if !g.contains_key(key) && g.len() >= self.keys {
            let w = self.window;
            g.retain(|_, (start, _)| now - *start < w);
            if g.len() >= self.keys {
                let oldest = g.values().map(|(start, _)| *start).min().unwrap_or(now);
                return Err(self.wait(oldest, now));
            }
        }
        let e = g.entry(key.to_string()).or_insert((now, 0));
        if now - e.0 >= self.window {
            *e = (now, 0);
        }
        if e.1 >= self.limit {
            let start = e.0;
            return Err(self.wait(start, now));
        }
        e.1 += 1;
        Ok(())
    }

    /// Gives back one event of `key` counted by [`Window::admit`] (an attempt that turned
    /// out not to count, as a successful sign-in for its address).
    pub fn release(&self, key: &str) {
        let mut g = self.map.lock().expect("window lock");
        if let Some(e) = g.get_mut(key) {
            e.1 = e.1.saturating_sub(1);
        }
    }

    /// Forgets `key` (a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.map.lock().expect("window lock").remove(key);
    }
}

/// The peer's IP address (`unknown` when the listener gives none, as in-process tests).
/// Forwarded-for headers are not trusted: anyone can write them.
pub struct Peer(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string()),
        ))
    }
}

/// The 429 of a throttled caller.
pub fn too_many(problem: Problem, detail: String, seconds: u32) -> ApiError {
    ApiError::new(problem, detail).retry_after(seconds)
}

/// The endpoints (by operation id) a machine token of `channel` may call, besides the
/// public ones: a sensor gateway sends readings (and photos and sensor reports), a data
/// integration imports datasets and pushes external indicator values (and data reports).
pub fn machine_endpoints(channel: &str) -> &'static [&'static str] {
    match channel {
        "sensor" => &["postReadings", "readingsStats", "postReport", "uploadMedia"],
        "data" => &[
            "importDataset",
            "listDatasets",
            "pushIndicator",
            "postReport",
            "datasetRows",
            "requestGrant",
            "listGrants",
            "decideGrant",
        ],
        _ => &[],
    }
}

/// Refuses a machine token (role `system`) on any endpoint outside its channel's list.
pub async fn machine_guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Ok(Some(p)) = crate::http::auth::principal_from(req.headers(), &st.0.key, st.now()) else {
        return next.run(req).await;
    };
    if p.role != cityos_core::Role::System {
        return next.run(req).await;
    }
    let path = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    let method = req.method().as_str().to_ascii_lowercase();
    let endpoint = ENDPOINTS
        .iter()
        .find(|e| Some(e.path) == path && e.method == method);
    let channel = p.channel.as_deref().unwrap_or("");
    let allowed = match endpoint {
        Some(e) => e.access == Access::Public || machine_endpoints(channel).contains(&e.id),
        // Not an API endpoint (the pages, Open311, media): no machine business there
        // beyond what anyone may do, which those handlers decide.
        None => path.is_none_or(|p| !p.starts_with("/api/")),
    };
    if allowed {
        return next.run(req).await;
    }
    use axum::response::IntoResponse;
    ApiError::new(
        Problem::Forbidden,
        format!(
            "a machine token of the {channel:?} channel may call only: {}",
            machine_endpoints(channel).join(", ")
        ),
    )
    .into_response()
}

/// The session token from the `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Did the request reach us over TLS (as the proxy in front says)?
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a session token valid `max_age_s` seconds (0 clears it).
pub fn set_session(headers: &HeaderMap, token: &str, max_age_s: i64) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .expect("a token is a valid header value")
}

/// The CSRF rule for cookie-authenticated state changes (see the module text).
pub async fn csrf_guard(req: Request, next: Next) -> Response {
    let h = req.headers();
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || h.contains_key(header::AUTHORIZATION) || session_cookie(h).is_none() {
        return next.run(req).await;
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_ok = match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(o) => {
            let o = o
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            host.is_some_and(|h| h == o)
        }
    };
    if h.contains_key("x-requested-with") && origin_ok {
        return next.run(req).await;
    }
    use axum::response::IntoResponse;
    ApiError::new(
        Problem::CsrfCheckFailed,
        "a request signed in by the session cookie must come from this site's pages: send \
         X-Requested-With from the same origin, or use Authorization: Bearer",
    )
    .into_response()
}

/// `Referrer-Policy: no-referrer` on every answer: case pages' addresses carry case
/// numbers, which must not travel to other sites.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
