//! `/api/v1/raffle/erp/…`: the operator's back office (addendum §1.4), all behind
//! [`Admin`].

use crate::AppState;
use crate::auth::Admin;
use crate::response::{
    ApiResult, Envelope, JsonBody, QueryParams, lenient, query_limit, require_id,
};
use axum::extract::State;
use big_market_domain::Error;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(raffle_orders))
        .routes(routes!(stages))
        .routes(routes!(activate_stage))
        .routes(routes!(undelivered))
}

const AUTH: &str = "Bearer <admin token> when one is configured";

/// An optional `limit` query parameter within `1..=max`.
fn limit(
    params: &std::collections::HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, Error> {
    match params.get("limit") {
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Error::illegal(format!("limit must be an integer from 1 to {max}"))),
        None => Ok(default),
    }
}

/// Upstream's `ESUserRaffleOrderResponseDTO`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RaffleOrderResponse {
    user_id: String,
    activity_id: i64,
    activity_name: String,
    strategy_id: i64,
    order_id: String,
    /// ISO-8601 local time, e.g. `2024-10-19T08:00:00`.
    order_time: String,
    order_state: String,
    /// Not selected by upstream either: always null.
    create_time: Option<String>,
    update_time: Option<String>,
}

/// `GET erp/query_user_raffle_order?limit=`: the newest raffle orders of all users (from
/// SQL; upstream read Elasticsearch), newest first, 10 by default, at most 100.
#[utoipa::path(
    get,
    path = "/erp/query_user_raffle_order",
    tag = "erp",
    params(
        ("limit" = Option<u32>, Query, description = "1..=100, default 10"),
        ("Authorization" = Option<String>, Header, description = AUTH),
    ),
    responses((status = 200, body = Envelope<Vec<RaffleOrderResponse>>))
)]
async fn raffle_orders(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<Vec<RaffleOrderResponse>> {
    let limit = limit(&params, 10, big_market_domain::erp::MAX_ORDERS)?;
    let orders = app.erp.raffle_orders(limit).await?;
    Ok(Envelope::ok(
        orders
            .into_iter()
            .map(|o| RaffleOrderResponse {
                user_id: o.user_id,
                activity_id: o.activity_id,
                activity_name: o.activity_name,
                strategy_id: o.strategy_id,
                order_id: o.order_id,
                order_time: o.order_time.to_string(),
                order_state: o.order_state,
                create_time: None,
                update_time: None,
            })
            .collect(),
    ))
}

/// Upstream's `RaffleActivityStageResponseDTO`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StageResponse {
    id: i64,
    channel: String,
    source: String,
    activity_id: i64,
    /// `create`, `active` or `expire`.
    state: String,
}

/// `GET erp/query_raffle_activity_stage_list`: every stage, newest first.
#[utoipa::path(
    get,
    path = "/erp/query_raffle_activity_stage_list",
    tag = "erp",
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses((status = 200, body = Envelope<Vec<StageResponse>>))
)]
async fn stages(_: Admin, State(app): State<AppState>) -> ApiResult<Vec<StageResponse>> {
    Ok(Envelope::ok(
        app.erp
            .stages()
            .await?
            .into_iter()
            .map(|s| StageResponse {
                id: s.id,
                channel: s.channel,
                source: s.source,
                activity_id: s.activity_id,
                state: s.state,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
struct StageRequest {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = i64)]
    id: Option<i64>,
}

/// `POST erp/update_stage_activity_2_active {id}`: preheats the stage's activity and
/// strategy, then sets the stage `active`. An unknown id is `0002`.
#[utoipa::path(
    post,
    path = "/erp/update_stage_activity_2_active",
    tag = "erp",
    request_body = StageRequest,
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses((status = 200, body = Envelope<bool>))
)]
async fn activate_stage(
    _: Admin,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<StageRequest>,
) -> ApiResult<bool> {
    let id = require_id(req.id, "id")?;
    app.erp.activate_stage(id).await?;
    Ok(Envelope::ok(true))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct UndeliveredResponse {
    user_id: String,
    order_id: String,
    award_id: i32,
    award_title: String,
    award_time: String,
    note: Option<String>,
}

/// `GET erp/query_undelivered_award_list?limit=` (ours): award records still `create`
/// with the reason, for an operator.
#[utoipa::path(
    get,
    path = "/erp/query_undelivered_award_list",
    tag = "erp",
    params(
        ("limit" = Option<u32>, Query, description = "1..=1000, default 100"),
        ("Authorization" = Option<String>, Header, description = AUTH),
    ),
    responses((status = 200, body = Envelope<Vec<UndeliveredResponse>>))
)]
async fn undelivered(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(query): QueryParams,
) -> ApiResult<Vec<UndeliveredResponse>> {
    let list = app.award.undelivered(query_limit(&query)?).await?;
    Ok(Envelope::ok(
        list.into_iter()
            .map(|a| UndeliveredResponse {
                user_id: a.user_id,
                order_id: a.order_id,
                award_id: a.award_id,
                award_title: a.award_title,
                award_time: big_market_domain::time::format_datetime(&a.award_time),
                note: a.note,
            })
            .collect(),
    ))
}
