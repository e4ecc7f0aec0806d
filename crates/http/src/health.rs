//! `GET /health` (the process answers) and `GET /ready` (every configured store answers).

use crate::AppState;
use crate::response::Envelope;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use big_market_domain::ResponseCode;

/// The process is up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operating",
    responses((status = 200, description = "always `ok`", content_type = "text/plain", body = String))
)]
pub async fn health() -> &'static str {
    "ok"
}

/// Every configured store is reachable: 200 with `data: "ready"`, else 503.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operating",
    responses(
        (status = 200, description = "ready", body = Envelope<String>),
        (status = 503, description = "a store is unreachable", body = Envelope<String>),
    )
)]
pub async fn ready(State(app): State<AppState>) -> Response {
    match app.probe.ready().await {
        Ok(()) => Envelope::ok("ready".to_owned()).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let mut res = Envelope::<String> {
                code: ResponseCode::UnError.code(),
                info: format!(
                    "{}: a configured store is unreachable",
                    ResponseCode::UnError.info()
                ),
                data: None,
            }
            .into_response();
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res
        }
    }
}
