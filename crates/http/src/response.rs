//! The envelope `{code, info, data}` and the one mapping from domain errors to it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use big_market_domain::{Error, ResponseCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Upstream's `Response<T>`. `info` is never null.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Envelope<T: Serialize> {
    /// `0000` on success, else a code of upstream's table (README).
    pub code: &'static str,
    /// Upstream's text for the code, with the reason appended.
    pub info: String,
    /// The answer; `null` on failure.
    #[schema(nullable = true)]
    pub data: Option<T>,
}

/// The envelope code of a response, for metrics (set on every envelope response).
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeCode(pub &'static str);

fn json_with_code<T: Serialize>(code: &'static str, body: T) -> Response {
    let mut res = Json(body).into_response();
    res.extensions_mut().insert(EnvelopeCode(code));
    res
}

impl<T: Serialize> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Self {
            code: ResponseCode::Success.code(),
            info: ResponseCode::Success.info().into(),
            data: Some(data),
        }
    }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        json_with_code(self.code, self)
    }
}

/// A failed request. Always HTTP 200 with the code in the body, as upstream.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let info = match &self.0 {
            Error::Biz { message, .. } if message.is_empty() => code.info().to_owned(),
            Error::Biz { message, .. } => format!("{}: {message}", code.info()),
            Error::Config(m) => {
                tracing::error!(error = %m, "configuration error");
                format!("{}: invalid configuration: {m}", code.info())
            }
            // Internals are logged (with the request id from the span), never shown.
            Error::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                code.info().to_owned()
            }
        };
        if matches!(self.0, Error::Biz { .. }) {
            tracing::info!(code = code.code(), %info, "request refused");
        }
        Envelope::<()> {
            code: code.code(),
            info,
            data: None,
        }
        .into_response()
    }
}

pub type ApiResult<T> = Result<Envelope<T>, ApiError>;

/// A JSON body parsed whatever its content type (upstream's clients are not strict), with
/// parse failures reported as `0002` naming the problem instead of a bare HTTP 4xx.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::illegal(format!("request body could not be read: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::illegal("request body is empty; a JSON object is required").into());
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| Error::illegal(format!("malformed JSON body: {e}")).into())
    }
}

/// A raw body (form parameters of upstream's `@RequestParam` endpoints), with a body too
/// large or unreadable reported in the envelope like every other bad input.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| Error::illegal(format!("request body could not be read: {e}")).into())
    }
}

/// Lenient id fields: Spring's Jackson accepts `123` and `"123"` for a `Long`.
pub mod lenient {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(i64),
        Str(String),
    }

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<NumOrStr>::deserialize(d)? {
            None => Ok(None),
            Some(NumOrStr::Num(n)) => Ok(Some(n)),
            Some(NumOrStr::Str(s)) if s.trim().is_empty() => Ok(None),
            Some(NumOrStr::Str(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer id"))),
        }
    }
}

/// A required id: present, and an integer.
pub fn require_id(value: Option<i64>, name: &str) -> Result<i64, Error> {
    value.ok_or_else(|| Error::illegal(format!("{name} is required")))
}

/// A required, non-blank string.
pub fn require_text(value: Option<String>, name: &str) -> Result<String, Error> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(Error::illegal(format!("{name} is blank"))),
        None => Err(Error::illegal(format!("{name} is required"))),
    }
}

/// Query parameters by name; an undecodable query string is `0002`, not a bare 400.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .map(|pairs| QueryParams(pairs.into_iter().collect()))
            .map_err(|e| Error::illegal(format!("malformed query string: {e}")).into())
    }
}

/// A required integer query parameter.
pub fn query_id(params: &HashMap<String, String>, name: &str) -> Result<i64, Error> {
    let raw = params
        .get(name)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::illegal(format!("query parameter {name} is required")))?;
    raw.parse()
        .map_err(|_| Error::illegal(format!("query parameter {name}={raw:?} is not an integer")))
}

/// Unknown paths answer in the envelope too.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    let mut res = Envelope::<()> {
        code: ResponseCode::IllegalParameter.code(),
        info: format!("no endpoint at {}", uri.path()),
        data: None,
    }
    .into_response();
    *res.status_mut() = axum::http::StatusCode::NOT_FOUND;
    res
}

/// The optional `limit` of an operator listing: 1 to 1000, 100 when absent.
pub fn query_limit(params: &std::collections::HashMap<String, String>) -> Result<usize, Error> {
    match params.get("limit") {
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| Error::illegal("limit must be an integer from 1 to 1000")),
        None => Ok(100),
    }
}
