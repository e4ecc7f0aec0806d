//! Who may call what.
//!
//! - [`Admin`]: operator endpoints (armory, recharge, DCC, ERP, campaigns). With an admin token
//!   configured they need `Authorization: Bearer <token>`; without one they answer only
//!   loopback clients. A refusal is `0008` (upstream's "接口权限拦截").
//! - [`TokenUser`]: the `*_by_token` endpoints take the user id from the `openId` claim
//!   of an HS256 JWT (addendum §3.14), sent raw as upstream's front end does or with
//!   `Bearer `. A bad token is `0003` "登录权限拦截", as upstream.
//!
//! Secrets are compared in constant time and never logged.

use crate::AppState;
use crate::response::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use big_market_domain::{Error, ResponseCode};
use hmac::{Hmac, Mac};
use jwt::VerifyWithKey;
use serde_json::Value;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Secrets of the edge, from configuration.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// Bearer token of operator endpoints (its holder is `admin`); with no token at all,
    /// loopback clients only.
    pub admin_token: Option<String>,
    /// More operator tokens, by the name of their holder (recorded as the author of what
    /// they change, e.g. campaign versions).
    pub named_admin_tokens: BTreeMap<String, String>,
    /// HS256 key of user tokens (its raw bytes, as upstream); `None`: token endpoints off.
    pub jwt_secret: Option<String>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field(
                "named_admin_tokens",
                &self.named_admin_tokens.keys().collect::<Vec<_>>(),
            )
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Compares secrets without leaking their common prefix length through timing.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    match value.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => value[7..].trim(),
        _ => value,
    }
}

impl AuthConfig {
    /// Every operator token with its holder's name: `admin` for `admin_token`.
    pub fn operator_tokens(&self) -> Vec<(&str, &str)> {
        self.admin_token
            .iter()
            .map(|t| ("admin", t.as_str()))
            .chain(
                self.named_admin_tokens
                    .iter()
                    .map(|(name, t)| (name.as_str(), t.as_str())),
            )
            .collect()
    }
}

/// The operator rule: one of the configured tokens (`(holder, token)`), or, when none is
/// configured, a loopback peer that is not another web page (`from_browser`, see
/// [`from_other_page`]): a page open in a browser on the server's host also connects
/// from loopback, and must not get operator rights without a token. Returns who it is:
/// the token's holder, or `local`.
pub fn check_admin(
    tokens: &[(&str, &str)],
    authorization: Option<&str>,
    peer: Option<IpAddr>,
    from_browser: bool,
) -> Result<String, Error> {
    let refuse = |why: &str| Err(Error::biz(ResponseCode::AppTokenError, why));
    if !tokens.is_empty() {
        return match authorization.map(strip_bearer) {
            None | Some("") => {
                refuse("operator endpoint: send Authorization: Bearer <admin token>")
            }
            Some(given) => {
                // Every token is compared, so the time taken tells nothing about which.
                let mut holder = None;
                for (name, token) in tokens {
                    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
                        holder = Some((*name).to_owned());
                    }
                }
                match holder {
                    Some(name) => Ok(name),
                    None => refuse("operator endpoint: the admin token is wrong"),
                }
            }
        };
    }
    if from_browser {
        return refuse(
            "operator endpoint: no admin_token is configured, so requests from web pages are refused except the console opened at a loopback address (http://127.0.0.1:<port>/admin)",
        );
    }
    if peer.is_some_and(|ip| ip.is_loopback()) {
        return Ok("local".to_owned());
    }
    refuse("operator endpoint: no admin_token is configured, so only loopback clients may call it")
}

/// Whether a host name (with an optional port) names this machine's loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a request comes from a web page that is not this server's own console opened
/// at a loopback address. Browsers send `Sec-Fetch-Site` on every request and `Origin`
/// on cross-origin ones and on same-origin POSTs; curl and operator scripts send neither.
/// Same-origin requests count as the console's only when the `Host` is a loopback name,
/// so a site whose name is rebound to 127.0.0.1 (DNS rebinding) is still refused.
pub fn from_other_page(headers: &axum::http::HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &axum::http::HeaderValue| v.to_str().ok())
    };
    let site = text("sec-fetch-site");
    let origin = text(axum::http::header::ORIGIN.as_str());
    if site.is_none() && origin.is_none() {
        return false;
    }
    if site == Some("none") && origin.is_none() {
        // Typed into the address bar or opened from a bookmark.
        return false;
    }
    let host = text(axum::http::header::HOST.as_str()).unwrap_or("");
    let own_origin = origin.is_none_or(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .is_some_and(|h| h.eq_ignore_ascii_case(host))
    });
    let same_site = site.is_none_or(|s| s == "same-origin");
    !(same_site && own_origin && is_loopback_host(host))
}

/// Proof that the caller may use an operator endpoint.
pub struct Admin {
    /// Who: the holder of the token used, or `local` (a loopback client, no token
    /// configured).
    pub name: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let from_browser = from_other_page(&parts.headers);
        let name = check_admin(
            &app.auth.operator_tokens(),
            header(parts),
            peer,
            from_browser,
        )?;
        Ok(Admin { name })
    }
}

fn login_refused(why: &str) -> Error {
    tracing::info!(reason = why, "user token refused");
    // Upstream's exact info text, nothing appended.
    Error::biz(ResponseCode::LoginTokenError, "")
}

/// A NumericDate claim (seconds); a claim of another type makes the token invalid.
fn seconds(claims: &BTreeMap<String, Value>, name: &str) -> Result<Option<i64>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f.floor() as i64))
            .map(Some)
            .ok_or_else(|| login_refused("a time claim is not a number")),
    }
}

/// Verifies an HS256 token at `now` (Unix seconds) and returns its `openId`: the
/// signature, `exp` (optional, as upstream's java-jwt), `nbf` and `iat`.
pub fn verify_user_token(secret: &str, token: &str, now: i64) -> Result<String, Error> {
    let key: Hmac<Sha256> =
        Hmac::new_from_slice(secret.as_bytes()).map_err(|_| login_refused("unusable secret"))?;
    let claims: BTreeMap<String, Value> = strip_bearer(token)
        .verify_with_key(&key)
        .map_err(|_| login_refused("bad signature or malformed token"))?;
    if seconds(&claims, "exp")?.is_some_and(|exp| now >= exp) {
        return Err(login_refused("expired"));
    }
    if seconds(&claims, "nbf")?.is_some_and(|nbf| now < nbf) {
        return Err(login_refused("not valid yet"));
    }
    if seconds(&claims, "iat")?.is_some_and(|iat| now < iat) {
        return Err(login_refused("issued in the future"));
    }
    match claims.get("openId") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(login_refused("no openId claim")),
    }
}

/// The user of a `*_by_token` request (the `openId` claim).
pub struct TokenUser(pub String);

impl FromRequestParts<AppState> for TokenUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let secret = app.auth.jwt_secret.as_deref().ok_or_else(|| {
            Error::config("jwt_secret is not configured, so the *_by_token endpoints are off")
        })?;
        let token = header(parts).ok_or_else(|| login_refused("no Authorization header"))?;
        let now = app.clock.now().timestamp().as_second();
        Ok(TokenUser(verify_user_token(secret, token, now)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt::SignWithKey;

    fn code(r: Result<String, Error>) -> &'static str {
        r.map_or_else(|e| e.code().code(), |_| "0000")
    }

    #[test]
    fn admin_rule() {
        let lo = Some(IpAddr::from([127, 0, 0, 1]));
        let lan = Some(IpAddr::from([10, 0, 0, 7]));
        assert_eq!(code(check_admin(&[], None, lo, false)), "0000");
        // A web page on the server's host connects from loopback too.
        assert_eq!(code(check_admin(&[], None, lo, true)), "0008");
        assert_eq!(
            code(check_admin(&[("admin", "s3")], Some("Bearer s3"), lo, true)),
            "0000"
        );
        assert_eq!(code(check_admin(&[], None, lan, false)), "0008");
        assert_eq!(code(check_admin(&[], None, None, false)), "0008");
        assert_eq!(
            code(check_admin(&[("admin", "s3")], None, lo, false)),
            "0008"
        );
        assert_eq!(
            code(check_admin(
                &[("admin", "s3")],
                Some("Bearer s4"),
                lo,
                false
            )),
            "0008"
        );
        assert_eq!(
            code(check_admin(
                &[("admin", "s3")],
                Some("Bearer s3"),
                lan,
                false
            )),
            "0000"
        );
        assert_eq!(
            code(check_admin(
                &[("admin", "s3")],
                Some("bearer  s3 "),
                lan,
                false
            )),
            "0000"
        );
    }

    /// Each operator token names its holder; without tokens a loopback caller is `local`.
    #[test]
    fn the_token_used_names_the_operator() {
        let lo = Some(IpAddr::from([127, 0, 0, 1]));
        let tokens = [("admin", "s3"), ("alice", "a1"), ("bob", "b2")];
        let who = |header| check_admin(&tokens, Some(header), lo, false);
        assert_eq!(who("Bearer a1").unwrap(), "alice");
        assert_eq!(who("Bearer b2").unwrap(), "bob");
        assert_eq!(who("Bearer s3").unwrap(), "admin");
        assert_eq!(who("Bearer a2").unwrap_err().code().code(), "0008");
        assert_eq!(check_admin(&[], None, lo, false).unwrap(), "local");
    }

    #[test]
    fn the_console_on_a_loopback_host_is_not_another_page() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, axum::http::HeaderValue::from_static(v));
            }
            from_other_page(&m)
        };
        assert!(!h(&[]), "curl");
        assert!(!h(&[
            ("host", "127.0.0.1:8091"),
            ("sec-fetch-site", "none")
        ]));
        assert!(!h(&[
            ("host", "127.0.0.1:8091"),
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:8091"),
        ]));
        assert!(!h(&[
            ("host", "localhost:8091"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(!h(&[
            ("host", "[::1]:8091"),
            ("origin", "http://[::1]:8091")
        ]));
        // Another site, or a rebound name, or a page of another port.
        assert!(h(&[
            ("host", "127.0.0.1:8091"),
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ]));
        assert!(h(&[
            ("host", "evil.example:8091"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(h(&[
            ("host", "127.0.0.1:8091"),
            ("sec-fetch-site", "same-site"),
            ("origin", "http://127.0.0.1:3000"),
        ]));
        assert!(h(&[
            ("host", "127.0.0.1:8091"),
            ("origin", "http://localhost:3000")
        ]));
        assert!(h(&[
            ("host", "10.0.0.5:8091"),
            ("origin", "http://10.0.0.5:8091")
        ]));
    }

    fn sign(secret: &str, claims: serde_json::Value) -> String {
        let key: Hmac<Sha256> = Hmac::new_from_slice(secret.as_bytes()).unwrap();
        let claims: BTreeMap<String, Value> = serde_json::from_value(claims).unwrap();
        claims.sign_with_key(&key).unwrap()
    }

    #[test]
    fn user_tokens() {
        let t = sign(
            "B*B^D%fe",
            serde_json::json!({"openId": "oxfA9w8", "exp": 2000}),
        );
        assert_eq!(verify_user_token("B*B^D%fe", &t, 1000).unwrap(), "oxfA9w8");
        let bearer = format!("Bearer {t}");
        assert_eq!(
            verify_user_token("B*B^D%fe", &bearer, 1000).unwrap(),
            "oxfA9w8"
        );
        let refused = |r: Result<String, Error>| r.unwrap_err().code().info();
        assert_eq!(
            refused(verify_user_token("other", &t, 1000)),
            "登录权限拦截"
        );
        assert_eq!(
            refused(verify_user_token("B*B^D%fe", &t, 2000)),
            "登录权限拦截"
        );
        let no_claim = sign("B*B^D%fe", serde_json::json!({"sub": "x"}));
        assert_eq!(
            refused(verify_user_token("B*B^D%fe", &no_claim, 1000)),
            "登录权限拦截"
        );
        let later = sign("B*B^D%fe", serde_json::json!({"openId": "u", "nbf": 5000}));
        assert_eq!(
            refused(verify_user_token("B*B^D%fe", &later, 1000)),
            "登录权限拦截"
        );
        let no_exp = sign("B*B^D%fe", serde_json::json!({"openId": "u"}));
        assert_eq!(
            verify_user_token("B*B^D%fe", &no_exp, i64::MAX).unwrap(),
            "u"
        );
        assert_eq!(
            refused(verify_user_token("B*B^D%fe", "garbage", 1)),
            "登录权限拦截"
        );
    }
}
