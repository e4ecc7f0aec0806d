//! `/api/v1/raffle/strategy/…` (also served without the `strategy/` segment, as some
//! upstream clones expose it).

use crate::AppState;
use crate::response::{ApiResult, Envelope, JsonBody, lenient, query_id, require_id, require_text};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for prefix in ["/strategy", ""] {
        r = r
            .route(&format!("{prefix}/strategy_armory"), get(armory))
            .route(&format!("{prefix}/random_raffle"), post(random_raffle))
            .route(
                &format!("{prefix}/query_raffle_award_list"),
                post(award_list),
            )
            .route(
                &format!("{prefix}/query_raffle_strategy_rule_weight"),
                post(rule_weight),
            );
    }
    r
}

/// `GET strategy_armory?strategyId=`: (re)builds the strategy's tables.
async fn armory(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<bool> {
    let strategy_id = query_id(&params, "strategyId")?;
    app.strategy.armory(strategy_id).await?;
    Ok(Envelope::ok(true))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RaffleStrategyRequest {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    strategy_id: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RaffleStrategyResponse {
    award_id: i32,
    award_index: i32,
}

/// `POST random_raffle {strategyId}`: one draw as user `system`.
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserActivityRequest {
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    activity_id: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AwardListResponse {
    award_id: i32,
    award_title: String,
    award_subtitle: Option<String>,
    sort: i32,
    award_rule_lock_count: Option<i64>,
    is_award_unlock: bool,
    #[serde(rename = "waitUnLockCount")]
    wait_unlock_count: i64,
}

/// `POST query_raffle_award_list {userId, activityId}`.
async fn award_list(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<AwardListResponse>> {
    let user_id = require_text(req.user_id, "userId")?;
    let activity_id = require_id(req.activity_id, "activityId")?;
    let list = app.strategy.award_list(&user_id, activity_id).await?;
    Ok(Envelope::ok(
        list.into_iter()
            .map(|a| AwardListResponse {
                award_id: a.award_id,
                award_title: a.award_title,
                award_subtitle: a.award_subtitle,
                sort: a.sort,
                award_rule_lock_count: a.award_rule_lock_count,
                is_award_unlock: a.is_award_unlock,
                wait_unlock_count: a.wait_unlock_count,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StrategyAwardDto {
    award_id: i32,
    award_title: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleWeightResponse {
    rule_weight_count: i64,
    user_activity_account_total_use_count: i64,
    strategy_awards: Vec<StrategyAwardDto>,
}

/// `POST query_raffle_strategy_rule_weight {userId, activityId}`: groups sorted by
/// threshold.
async fn rule_weight(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<RuleWeightResponse>> {
    let user_id = require_text(req.user_id, "userId")?;
    let activity_id = require_id(req.activity_id, "activityId")?;
    let groups = app.strategy.rule_weight(&user_id, activity_id).await?;
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
