//! Operator endpoints of the outbox (ours): what is stuck and why, and sending it again
//! once the cause is fixed.

use crate::AppState;
use crate::response::{ApiResult, Envelope, JsonBody, query_limit, require_text};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/erp/query_parked_task_list", get(parked))
        .route("/erp/requeue_task", post(requeue))
        .route("/erp/redeliver_award", post(redeliver))
}

#[derive(Serialize)]
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
async fn parked(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequeueRequest {
    message_id: Option<String>,
}

/// `POST erp/requeue_task {messageId}`: a parked task is sent again with a fresh retry
/// budget; anything else → `0002`.
async fn requeue(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RequeueRequest>,
) -> ApiResult<bool> {
    let message_id = require_text(req.message_id, "messageId")?;
    app.tasks.requeue(message_id.trim()).await?;
    Ok(Envelope::ok(true))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedeliverRequest {
    user_id: Option<String>,
    order_id: Option<String>,
}

/// `POST erp/redeliver_award {userId, orderId}`: an award record still `create` (see
/// `erp/query_undelivered_award_list`) is delivered again, e.g. after the account
/// service was configured.
async fn redeliver(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RedeliverRequest>,
) -> ApiResult<bool> {
    let user_id = require_text(req.user_id, "userId")?;
    let order_id = require_text(req.order_id, "orderId")?;
    app.award.redeliver(&user_id, &order_id).await?;
    Ok(Envelope::ok(true))
}
