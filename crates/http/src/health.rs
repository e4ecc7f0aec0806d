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

/// Every configured server is reachable (the store; Redis and RabbitMQ when configured):
/// 200 with `data: "ready"`, else 503 naming the first one that is not.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operating",
    responses(
        (status = 200, description = "ready", body = Envelope<String>),
        (status = 503, description = "a server is unreachable (named in `info`)", body = Envelope<String>),
    )
)]
pub async fn ready(State(app): State<AppState>) -> Response {
    match app.probe.ready().await {
        Ok(()) => Envelope::ok("ready".to_owned()).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            // A probe names the server that is down ("Redis is unreachable"); other
            // failures are not shown.
            let what = match &e {
                big_market_domain::Error::Biz { message, .. } => message.as_str(),
                _ => "a configured store is unreachable",
            };
            let mut res = Envelope::<String> {
                code: ResponseCode::UnError.code(),
                info: format!("{}: {what}", ResponseCode::UnError.info()),
                data: None,
            }
            .into_response();
            *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            res
        }
    }
}
