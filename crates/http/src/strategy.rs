//! `/api/v1/raffle/strategy/…` (also served without the `strategy/` segment, as some
//! upstream clones expose it).

use crate::AppState;
use crate::activity::UserActivityRequest;
use crate::auth::{Admin, TokenUser};
use crate::rebate::USER_TOKEN;
use crate::response::{
    ApiError, ApiResult, Envelope, JsonBody, QueryParams, lenient, query_id, require_id,
    require_text,
};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Endpoints also served without the `strategy/` segment, as some upstream clones do.
pub const ALIASED: &[&str] = &[
    "strategy_armory",
    "random_raffle",
    "query_raffle_award_list",
    "query_raffle_strategy_rule_weight",
];

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(armory))
        .routes(routes!(random_raffle))
        .routes(routes!(award_list))
        .routes(routes!(award_list_by_token))
        .routes(routes!(rule_weight))
        .routes(routes!(rule_weight_by_token))
}

/// `GET strategy_armory?strategyId=`: an operator (re)builds the strategy's tables;
/// anyone else gets `true` when the strategy is already assembled, with nothing rebuilt,
/// and the operator refusal `0008` otherwise.
#[utoipa::path(
    get,
    path = "/strategy/strategy_armory",
    tag = "strategy",
    params(
        ("strategyId" = i64, Query),
        ("Authorization" = Option<String>, Header, description = "Bearer <admin token> when one is configured"),
    ),
    responses((status = 200, body = Envelope<bool>))
)]
async fn armory(
    admin: Result<Admin, ApiError>,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<bool> {
    let strategy_id = query_id(&params, "strategyId")?;
    match admin {
        Ok(Admin { .. }) => {
            app.strategy.armory(strategy_id).await?;
        }
        Err(_) if app.strategy.catalog().get(strategy_id).is_ok() => {}
        Err(refused) => return Err(refused),
    }
    Ok(Envelope::ok(true))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RaffleStrategyRequest {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    strategy_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RaffleStrategyResponse {
    award_id: i32,
    award_index: i32,
}

/// `POST random_raffle {strategyId}`: one draw as user `system`.
#[utoipa::path(
    post,
    path = "/strategy/random_raffle",
    tag = "strategy",
    request_body = RaffleStrategyRequest,
    responses((status = 200, body = Envelope<RaffleStrategyResponse>))
)]
async fn random_raffle(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RaffleStrategyRequest>,
) -> ApiResult<RaffleStrategyResponse> {
    let strategy_id = require_id(req.strategy_id, "strategyId")?;
    let award = app.strategy.random_raffle(strategy_id).await?;
    Ok(Envelope::ok(RaffleStrategyResponse {
        award_id: award.award_id,
        award_index: award.sort,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AwardListResponse {
    award_id: i32,
    award_title: String,
    award_subtitle: Option<String>,
    sort: i32,
    /// Ours, additive: the configured rate; the probability is the rate over the sum of
    /// the strategy's rates.
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64)]
    award_rate: rust_decimal::Decimal,
    award_rule_lock_count: Option<i64>,
    is_award_unlock: bool,
    #[serde(rename = "waitUnLockCount")]
    wait_unlock_count: i64,
}

/// `POST query_raffle_award_list {userId, activityId}`.
#[utoipa::path(
    post,
    path = "/strategy/query_raffle_award_list",
    tag = "strategy",
    request_body = UserActivityRequest,
    responses((status = 200, body = Envelope<Vec<AwardListResponse>>))
)]
async fn award_list(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<AwardListResponse>> {
    let user_id = require_text(req.user_id, "userId")?;
    award_list_of(&app, &user_id, req.activity_id).await
}

/// `POST query_raffle_award_list_by_token {activityId}`.
#[utoipa::path(
    post,
    path = "/strategy/query_raffle_award_list_by_token",
    tag = "strategy",
    request_body = UserActivityRequest,
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<Vec<AwardListResponse>>))
)]
async fn award_list_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<AwardListResponse>> {
    award_list_of(&app, &user_id, req.activity_id).await
}

async fn award_list_of(
    app: &AppState,
    user_id: &str,
    activity_id: Option<i64>,
) -> ApiResult<Vec<AwardListResponse>> {
    let activity_id = require_id(activity_id, "activityId")?;
    let list = app.strategy.award_list(user_id, activity_id).await?;
    Ok(Envelope::ok(
        list.into_iter()
            .map(|a| AwardListResponse {
                award_id: a.award_id,
                award_title: a.award_title,
                award_subtitle: a.award_subtitle,
                sort: a.sort,
                award_rate: a.award_rate,
                award_rule_lock_count: a.award_rule_lock_count,
                is_award_unlock: a.is_award_unlock,
                wait_unlock_count: a.wait_unlock_count,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StrategyAwardDto {
    award_id: i32,
    award_title: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RuleWeightResponse {
    rule_weight_count: i64,
    user_activity_account_total_use_count: i64,
    strategy_awards: Vec<StrategyAwardDto>,
}

/// `POST query_raffle_strategy_rule_weight {userId, activityId}`: groups sorted by
/// threshold.
#[utoipa::path(
    post,
    path = "/strategy/query_raffle_strategy_rule_weight",
    tag = "strategy",
    request_body = UserActivityRequest,
    responses((status = 200, body = Envelope<Vec<RuleWeightResponse>>))
)]
async fn rule_weight(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<RuleWeightResponse>> {
    let user_id = require_text(req.user_id, "userId")?;
    rule_weight_of(&app, &user_id, req.activity_id).await
}

/// `POST query_raffle_strategy_rule_weight_by_token {activityId}` (ours: upstream has no
/// token variant of this one).
#[utoipa::path(
    post,
    path = "/strategy/query_raffle_strategy_rule_weight_by_token",
    tag = "strategy",
    request_body = UserActivityRequest,
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<Vec<RuleWeightResponse>>))
)]
async fn rule_weight_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<RuleWeightResponse>> {
    rule_weight_of(&app, &user_id, req.activity_id).await
}

async fn rule_weight_of(
    app: &AppState,
    user_id: &str,
    activity_id: Option<i64>,
) -> ApiResult<Vec<RuleWeightResponse>> {
    let activity_id = require_id(activity_id, "activityId")?;
    let groups = app.strategy.rule_weight(user_id, activity_id).await?;
    Ok(Envelope::ok(
        groups
            .into_iter()
            .map(|g| RuleWeightResponse {
                rule_weight_count: g.rule_weight_count,
                user_activity_account_total_use_count: g.user_activity_account_total_use_count,
                strategy_awards: g
                    .strategy_awards
                    .into_iter()
                    .map(|(award_id, award_title)| StrategyAwardDto {
                        award_id,
                        award_title,
                    })
                    .collect(),
            })
            .collect(),
    ))
}
