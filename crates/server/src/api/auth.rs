//! Sign-in and sign-out: `POST /api/v1/auth/login` (throttled by the sign-in windows,
//! the password checked off the async threads, the token in the body and as the session
//! cookie) and `POST /api/v1/auth/logout`.

use super::ApiResult;
use crate::cases::wire::LoginIn;
use crate::http::auth::{verify_password, Principal};
use crate::http::error::{ApiError, Problem};
use crate::{AppState, Body};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::Role;
use cityos_engine::store::User;
use cityos_engine::{AccountStore, StoreError};
use serde_json::json;

/// The longest username accepted (characters): a longer one is refused before it is
/// counted or looked up, so the sign-in windows never hold arbitrary text.
pub const MAX_USERNAME: usize = 64;

/// `POST /api/v1/auth/login`. A username longer than [`MAX_USERNAME`] characters is 400
/// before anything else. Throttled before any hashing: each attempt takes a slot of its
/// account's and its address's windows up front (check and count under one lock, so
/// parallel guesses cannot outrun the limit); after [`crate::LOGIN_FAILURES`] attempts
/// of an account (or [`crate::LOGIN_PEER_FAILURES`] from an address) within
/// [`crate::LOGIN_WINDOW`], every attempt — even with the right password — answers 429
/// `too_many_attempts` with `Retry-After` until the window ends; a successful sign-in
/// gives its slots back (it clears the account's count), so only failures count. The
/// password is checked on the blocking pool, never on the async threads. The token
/// comes back in the body (for API clients) and as an HttpOnly session cookie (for the
/// web pages).
pub async fn login(
    State(st): State<AppState>,
    crate::http::access::Peer(peer): crate::http::access::Peer,
    headers: HeaderMap,
    body: Body<LoginIn>,
) -> ApiResult {
    let LoginIn { username, password } = body.value;
    if username.chars().count() > MAX_USERNAME {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            format!("username is longer than {MAX_USERNAME} characters"),
        ));
    }
    let now = st.now();
    let (acct, addr) = (format!("user:{username}"), format!("peer:{peer}"));
    let limits = &st.0.api;
    let taken = limits.login_accounts.admit(&acct, now).and_then(|()| {
        limits.login_peers.admit(&addr, now).inspect_err(|_| {
            limits.login_accounts.release(&acct);
        })
    });
    if let Err(seconds) = taken {
        // The typed name may be a password typed in the wrong field: log its length only
        // (even an unsalted hash prefix would let a log reader test guesses).
        crate::http::log::event(
            "sign_in_throttled",
            &[
                ("account_chars", &username.chars().count()),
                ("peer", &peer),
                ("retry_after_s", &seconds),
            ],
        );
        return Err(crate::http::access::too_many(
            Problem::TooManyAttempts,
            format!("too many failed sign-ins; try again in {seconds} s"),
            seconds,
        ));
    }
    let name = username.clone();
    let user = st.0.reads.run(move |s| account(s, &name)).await??;
    let fail = || ApiError::new(Problem::BadCredentials, "wrong username or password");
    let Some(user) = user else {
        // Spend the same time as a real check so that usernames cannot be probed.
        let _ = tokio::task::spawn_blocking(move || verify_password(&password, dummy_hash())).await;
        return Err(fail());
    };
    let phc = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        st.0.audit
            .record(
                &st,
                &user.username,
                "sign_in_failed",
                &format!("account:{}", user.username),
                json!({"peer": peer.to_string()}),
            )
            .await?;
        return Err(fail());
    }
    st.0.api.login_peers.release(&addr);
    st.0.api.login_accounts.clear(&acct);
    let role = Role::parse(&user.role).ok_or_else(|| {
        ApiError::internal(format!(
            "user {} has unknown role {}",
            user.username, user.role
        ))
    })?;
    let expires_at = st.now() + st.0.session_ms;
    let p = Principal {
        name: user.username.clone(),
        role,
        department: user.department.clone(),
        scope: user.scope.clone(),
        channel: None,
        expires_at,
    };
    st.0.audit
        .record(
            &st,
            &user.username,
            "sign_in",
            &format!("account:{}", user.username),
            json!({"peer": peer.to_string(), "role": user.role}),
        )
        .await?;
    let token = st.0.key.sign(&p);
    let cookie = crate::http::access::set_session(&headers, &token, st.0.session_ms / 1000);
    let mut r = Json(json!({
        "token": token,
        "expires_at": cityos_core::time::format_rfc3339(expires_at),
        "user": {
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
            "department": user.department,
            "scope": user.scope,
        }
    }))
    .into_response();
    r.headers_mut()
        .insert(axum::http::header::SET_COOKIE, cookie);
    Ok(r)
}

/// `POST /api/v1/auth/logout`: clears the session cookie (bearer tokens simply expire).
pub async fn logout(headers: HeaderMap) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        axum::http::header::SET_COOKIE,
        crate::http::access::set_session(&headers, "", 0),
    );
    r
}

/// A real argon2id hash of a random string, so that refusing an unknown user costs what
/// checking a known one does.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        crate::http::auth::hash_password(&crate::http::auth::TokenKey::random().to_hex())
    })
}

/// The account named `name`, if any: sign-in reads nothing else.
fn account(s: &mut dyn AccountStore, name: &str) -> Result<Option<User>, StoreError> {
    s.user(name)
}
