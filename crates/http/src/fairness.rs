//! Fairness anyone can check: the published odds of an activity (`activity/query_award_odds`).

use crate::AppState;
use crate::response::{ApiResult, Envelope, QueryParams, query_id};
use axum::extract::State;
use big_market_domain::strategy::odds::{StrategyOdds, WeightedAward};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(award_odds))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AwardOddsDto {
    award_id: i32,
    award_title: String,
    sort: i32,
    /// Exact integer weight: the probability of a draw of the default table is
    /// `weight / totalWeight`.
    weight: u64,
    probability: f64,
    /// Today's draws needed before the award can be won (`rule_lock`), if any.
    lock_count: Option<i64>,
    /// The award given instead while it is locked.
    locked_award_id: Option<i32>,
    /// Whether winning it takes a unit of its stock.
    stock_checked: bool,
    /// The award given instead once its stock is gone.
    sold_out_award_id: Option<i32>,
    stock_left: i64,
    sold_out: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WeightedAwardDto {
    award_id: i32,
    weight: u64,
    probability: f64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WeightGroupDto {
    /// The group's table draws when the user has used exactly this many draws before.
    rule_weight_count: i64,
    total_weight: u64,
    awards: Vec<WeightedAwardDto>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RuleAwardDto {
    award_id: i32,
    award_title: String,
    /// What sends a draw to it: `locked`, `sold_out`, `blacklist`.
    reasons: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AwardOddsResponse {
    activity_id: i64,
    strategy_id: i64,
    total_weight: u64,
    awards: Vec<AwardOddsDto>,
    weight_groups: Vec<WeightGroupDto>,
    rule_awards: Vec<RuleAwardDto>,
}

fn weighted(a: WeightedAward) -> WeightedAwardDto {
    WeightedAwardDto {
        award_id: a.award_id,
        weight: a.weight,
        probability: a.probability,
    }
}

fn odds_response(activity_id: i64, odds: StrategyOdds) -> AwardOddsResponse {
    AwardOddsResponse {
        activity_id,
        strategy_id: odds.strategy_id,
        total_weight: odds.total_weight,
        awards: odds
            .awards
            .into_iter()
            .map(|a| AwardOddsDto {
                award_id: a.award_id,
                award_title: a.award_title,
                sort: a.sort,
                weight: a.weight,
                probability: a.probability,
                lock_count: a.lock_count,
                locked_award_id: a.locked_award_id,
                stock_checked: a.stock_checked,
                sold_out_award_id: a.sold_out_award_id,
                stock_left: a.stock_left,
                sold_out: a.sold_out,
            })
            .collect(),
        weight_groups: odds
            .weight_groups
            .into_iter()
            .map(|g| WeightGroupDto {
                rule_weight_count: g.threshold,
                total_weight: g.total_weight,
                awards: g.awards.into_iter().map(weighted).collect(),
            })
            .collect(),
        rule_awards: odds
            .rule_awards
            .into_iter()
            .map(|r| RuleAwardDto {
                award_id: r.award_id,
                award_title: r.award_title,
                reasons: r.reasons.into_iter().map(str::to_owned).collect(),
            })
            .collect(),
    }
}

/// `GET activity/query_award_odds?activityId=` (public): every award of the activity's
/// strategy with its exact weight, the weight groups, locks, the awards rules give
/// instead, and which awards are sold out now.
#[utoipa::path(
    get,
    path = "/activity/query_award_odds",
    tag = "activity",
    params(("activityId" = i64, Query)),
    responses((status = 200, body = Envelope<AwardOddsResponse>))
)]
async fn award_odds(
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<AwardOddsResponse> {
    let activity_id = query_id(&params, "activityId")?;
    let odds = app.strategy.award_odds(activity_id).await?;
    Ok(Envelope::ok(odds_response(activity_id, odds)))
}
