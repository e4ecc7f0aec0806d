//! Operator endpoints of the outbox (ours): what is stuck and why, and sending it again
//! once the cause is fixed.

use crate::AppState;
use crate::auth::Admin;
use crate::response::{ApiResult, Envelope, JsonBody, QueryParams, query_limit, require_text};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(parked))
        .routes(routes!(requeue))
        .routes(routes!(redeliver))
}

const ADMIN: &str = "Bearer <admin token> when one is configured";

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ParkedTaskResponse {
    message_id: String,
    user_id: String,
    topic: String,
    attempts: i64,
    last_error: Option<String>,
    update_time: String,
}

/// `GET erp/query_parked_task_list?limit=`: tasks that failed too often (or can never
/// succeed as they are), oldest first, with the last error.
#[utoipa::path(
    get,
    path = "/erp/query_parked_task_list",
    tag = "erp",
    params(
        ("limit" = Option<u32>, Query, description = "1..=1000, default 100"),
        ("Authorization" = Option<String>, Header, description = ADMIN),
    ),
    responses((status = 200, body = Envelope<Vec<ParkedTaskResponse>>))
)]
async fn parked(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(query): QueryParams,
) -> ApiResult<Vec<ParkedTaskResponse>> {
    let list = app.tasks.parked(query_limit(&query)?).await?;
    Ok(Envelope::ok(
        list.into_iter()
            .map(|t| ParkedTaskResponse {
                message_id: t.message_id,
                user_id: t.user_id,
                topic: t.topic,
                attempts: t.attempts,
                last_error: t.last_error,
                update_time: t.update_time,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RequeueRequest {
    message_id: Option<String>,
}

/// `POST erp/requeue_task {messageId}`: a parked task is sent again with a fresh retry
/// budget; anything else → `0002`.
#[utoipa::path(
    post,
    path = "/erp/requeue_task",
    tag = "erp",
    request_body = RequeueRequest,
    params(("Authorization" = Option<String>, Header, description = ADMIN)),
    responses((status = 200, body = Envelope<bool>))
)]
async fn requeue(
    _: Admin,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RequeueRequest>,
) -> ApiResult<bool> {
    let message_id = require_text(req.message_id, "messageId")?;
    app.tasks.requeue(message_id.trim()).await?;
    Ok(Envelope::ok(true))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RedeliverRequest {
    user_id: Option<String>,
    order_id: Option<String>,
}

/// `POST erp/redeliver_award {userId, orderId}`: an award record still `create` (see
/// `erp/query_undelivered_award_list`) is delivered again, e.g. after the account
/// service was configured.
#[utoipa::path(
    post,
    path = "/erp/redeliver_award",
    tag = "erp",
    request_body = RedeliverRequest,
    params(("Authorization" = Option<String>, Header, description = ADMIN)),
    responses((status = 200, body = Envelope<bool>))
)]
async fn redeliver(
    _: Admin,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RedeliverRequest>,
) -> ApiResult<bool> {
    let user_id = require_text(req.user_id, "userId")?;
    let order_id = require_text(req.order_id, "orderId")?;
    app.award.redeliver(&user_id, &order_id).await?;
    Ok(Envelope::ok(true))
}
