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

/// `POST /api/v1/auth/login`. Throttled before any hashing: after
/// [`crate::LOGIN_FAILURES`] failures of an account (or [`crate::LOGIN_PEER_FAILURES`]
/// from an address) within [`crate::LOGIN_WINDOW`], every attempt — even with the right
/// password — answers 429 `too_many_attempts` with `Retry-After` until the window ends;
/// a successful sign-in clears the account's count. The password is checked on the
/// blocking pool, never on the async threads. The token comes back in the body (for API
/// clients) and as an HttpOnly session cookie (for the web pages).
pub async fn login(
    State(st): State<AppState>,
    crate::http::access::Peer(peer): crate::http::access::Peer,
    headers: HeaderMap,
    body: Body<LoginIn>,
) -> ApiResult {
    let LoginIn { username, password } = body.value;
    let now = st.now();
    let (acct, addr) = (format!("user:{username}"), format!("peer:{peer}"));
    let wait =
        st.0.api
            .login_accounts
            .blocked(&acct, now)
            .max(st.0.api.login_peers.blocked(&addr, now));
    if let Some(seconds) = wait {
        crate::http::log::event(
            "sign_in_throttled",
            &[
                ("account", &username),
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
    let fail = || {
        st.0.api.login_accounts.add(&acct, now);
        st.0.api.login_peers.add(&addr, now);
        ApiError::new(Problem::BadCredentials, "wrong username or password")
    };
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
        return Err(fail());
    }
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
