//! Fairness anyone can check: the published odds of an activity
//! (`activity/query_award_odds`), its committed and revealed seeds
//! (`activity/query_fairness`), the verification of a draw (`activity/verify_draw`), and
//! the operator's switches (`admin/fairness/enable`, `admin/fairness/rotate`).

use crate::AppState;
use crate::auth::Admin;
use crate::response::{
    ApiResult, Envelope, JsonBody, QueryParams, lenient, query_id, require_id, require_text,
};
use axum::extract::State;
use big_market_domain::Error;
use big_market_domain::strategy::fair::Proof;
use big_market_domain::strategy::fairness::{EpochView, RevealedEpoch, Verification};
use big_market_domain::strategy::odds::{StrategyOdds, WeightedAward};
use big_market_domain::time::format_datetime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(award_odds))
        .routes(routes!(query_fairness))
        .routes(routes!(verify_draw))
        .routes(routes!(enable))
        .routes(routes!(rotate))
}

/// The proof of a fair draw, as answered with the draw and by `verify_draw`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProofDto {
    order_id: String,
    epoch: i64,
    commitment: String,
    draw_no: i64,
    client_seed: String,
    /// `default`, `weight:N` or `blacklist`.
    table: String,
    /// `[awardId, weight]` in the table's order.
    #[schema(value_type = Vec<Vec<u64>>)]
    weights: Vec<(i32, u64)>,
    sampled_award_id: i32,
    award_id: i32,
    /// `drawn`, `locked`, `sold_out`, `luck_award` or `blacklist`.
    reason: String,
}

impl From<Proof> for ProofDto {
    fn from(p: Proof) -> Self {
        Self {
            order_id: p.order_id,
            epoch: p.epoch,
            commitment: p.commitment,
            draw_no: p.draw_no,
            client_seed: p.client_seed,
            table: p.table,
            weights: p.weights,
            sampled_award_id: p.sampled_award_id,
            award_id: p.award_id,
            reason: p.reason,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct EpochDto {
    epoch: i64,
    /// Lowercase hex of SHA-256 over the seed's 32 bytes.
    commitment: String,
    begin_time: String,
    end_time: String,
}

impl From<EpochView> for EpochDto {
    fn from(e: EpochView) -> Self {
        Self {
            epoch: e.epoch,
            commitment: e.commitment,
            begin_time: format_datetime(&e.begin_time),
            end_time: format_datetime(&e.end_time),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RevealedDto {
    epoch: i64,
    commitment: String,
    /// Lowercase hex of the 32 bytes.
    seed: String,
    begin_time: String,
    end_time: String,
}

impl From<RevealedEpoch> for RevealedDto {
    fn from(e: RevealedEpoch) -> Self {
        Self {
            epoch: e.epoch,
            commitment: e.commitment,
            seed: e.seed,
            begin_time: format_datetime(&e.begin_time),
            end_time: format_datetime(&e.end_time),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct FairnessResponse {
    activity_id: i64,
    enabled: bool,
    current: Option<EpochDto>,
    /// Newest first (at most 100).
    revealed: Vec<RevealedDto>,
}

/// `GET activity/query_fairness?activityId=` (public): the commitment of the current
/// epoch (published before its first draw) and the seeds of ended epochs.
#[utoipa::path(
    get,
    path = "/activity/query_fairness",
    tag = "activity",
    params(("activityId" = i64, Query)),
    responses((status = 200, body = Envelope<FairnessResponse>))
)]
async fn query_fairness(
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<FairnessResponse> {
    let activity_id = query_id(&params, "activityId")?;
    let view = app.activity.fairness()?.query(activity_id).await?;
    Ok(Envelope::ok(FairnessResponse {
        activity_id: view.activity_id,
        enabled: view.enabled,
        current: view.current.map(EpochDto::from),
        revealed: view.revealed.into_iter().map(RevealedDto::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct VerifyRequest {
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    activity_id: Option<i64>,
    order_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct VerifyResponse {
    proof: ProofDto,
    /// The epoch's seed (hex), or `not yet revealed`.
    seed: String,
    revealed: bool,
    /// The award the documented algorithm gives with the revealed seed.
    recomputed_award_id: Option<i32>,
    /// The seed matches the commitment and recomputing gives `sampledAwardId`.
    verified: bool,
    detail: String,
}

impl From<Verification> for VerifyResponse {
    fn from(v: Verification) -> Self {
        Self {
            proof: v.proof.into(),
            revealed: v.seed.is_some(),
            seed: v.seed.unwrap_or_else(|| "not yet revealed".to_owned()),
            recomputed_award_id: v.recomputed_award_id,
            verified: v.verified,
            detail: v.detail,
        }
    }
}

/// `POST activity/verify_draw {userId, activityId, orderId}` (public): the proof kept
/// with the draw's award record, the revealed seed, and whether recomputing gives
/// `sampledAwardId`.
#[utoipa::path(
    post,
    path = "/activity/verify_draw",
    tag = "activity",
    request_body = VerifyRequest,
    responses((status = 200, body = Envelope<VerifyResponse>))
)]
async fn verify_draw(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<VerifyRequest>,
) -> ApiResult<VerifyResponse> {
    let user_id = require_text(req.user_id, "userId")?;
    let activity_id = require_id(req.activity_id, "activityId")?;
    let order_id = require_text(req.order_id, "orderId")?;
    if user_id.chars().count() > 128 || order_id.chars().count() > 64 {
        return Err(Error::illegal("userId (128) or orderId (64) is too long").into());
    }
    let v = app
        .activity
        .fairness()?
        .verify(&user_id, activity_id, &order_id)
        .await?;
    Ok(Envelope::ok(v.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ActivityRequest {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    activity_id: Option<i64>,
}

const ADMIN: &str = "Bearer <admin token> when one is configured";

/// `POST admin/fairness/enable {activityId}` (operator): the activity's draws are
/// provably fair from the next one; answers the first epoch's commitment.
#[utoipa::path(
    post,
    path = "/admin/fairness/enable",
    tag = "activity",
    request_body = ActivityRequest,
    params(("Authorization" = Option<String>, Header, description = ADMIN)),
    responses((status = 200, body = Envelope<EpochDto>))
)]
async fn enable(
    _: Admin,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<ActivityRequest>,
) -> ApiResult<EpochDto> {
    let activity_id = require_id(req.activity_id, "activityId")?;
    let current = app.activity.enable_fairness(activity_id).await?;
    Ok(Envelope::ok(current.into()))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RotateResponse {
    revealed: RevealedDto,
    current: EpochDto,
}

/// `POST admin/fairness/rotate {activityId}` (operator): ends the current epoch now
/// (its seed is revealed) and commits the next one.
#[utoipa::path(
    post,
    path = "/admin/fairness/rotate",
    tag = "activity",
    request_body = ActivityRequest,
    params(("Authorization" = Option<String>, Header, description = ADMIN)),
    responses((status = 200, body = Envelope<RotateResponse>))
)]
async fn rotate(
    _: Admin,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<ActivityRequest>,
) -> ApiResult<RotateResponse> {
    let activity_id = require_id(req.activity_id, "activityId")?;
    let (revealed, current) = app.activity.rotate_fairness(activity_id).await?;
    Ok(Envelope::ok(RotateResponse {
        revealed: revealed.into(),
        current: current.into(),
    }))
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
    /// Release plan of a paced award: `even`, `1h:N` or `1d:N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    release_plan: Option<String>,
    /// Units its plan has released so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    released: Option<i64>,
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
                release_plan: a.release_plan,
                released: a.released,
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
