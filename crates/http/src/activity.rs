//! `/api/v1/raffle/activity/…`.

use crate::AppState;
use crate::auth::{Admin, TokenUser};
use crate::rebate::USER_TOKEN;
use crate::response::{
    ApiError, ApiResult, Envelope, JsonBody, QueryParams, lenient, query_id, require_id,
    require_text,
};
use axum::extract::State;
use big_market_domain::Error;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(armory))
        .routes(routes!(draw))
        .routes(routes!(draw_by_token))
        .routes(routes!(sku_recharge))
        .routes(routes!(account))
        .routes(routes!(account_by_token))
        .routes(routes!(sku_products))
        .routes(routes!(stage_activity_id))
        .routes(routes!(award_records))
        .routes(routes!(award_records_by_token))
}

const ADMIN: &str = "Bearer <admin token> when one is configured";

/// `GET activity/armory?activityId=`: an operator (admin token, or loopback without
/// one) reloads the activity and assembles its strategy. Anyone else gets `true` when
/// the activity is already assembled, with nothing reloaded (upstream's front end calls
/// it from the browser before its first draw), and the operator refusal `0008` otherwise.
#[utoipa::path(
    get,
    path = "/activity/armory",
    tag = "activity",
    params(
        ("activityId" = i64, Query),
        ("Authorization" = Option<String>, Header, description = ADMIN),
    ),
    responses((status = 200, body = Envelope<bool>))
)]
async fn armory(
    admin: Result<Admin, ApiError>,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<bool> {
    let activity_id = query_id(&params, "activityId")?;
    match admin {
        Ok(Admin { .. }) => app.activity.armory(activity_id).await?,
        Err(_) if app.activity.is_assembled(activity_id) => {}
        Err(refused) => return Err(refused),
    }
    Ok(Envelope::ok(true))
}

/// `{userId, activityId}`; the `*_by_token` variants take the user from the token.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserActivityRequest {
    pub(crate) user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    pub(crate) activity_id: Option<i64>,
}

/// `{userId, activityId, clientSeed}`: `clientSeed` (optional, at most 64 characters)
/// enters the random number of a provably fair activity's draw.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DrawRequest {
    pub(crate) user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    pub(crate) activity_id: Option<i64>,
    pub(crate) client_seed: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DrawResponse {
    award_id: i32,
    award_title: String,
    award_index: i32,
    /// Only for an activity with provably fair draws (see `verify_draw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    proof: Option<crate::fairness::ProofDto>,
}

/// `POST activity/draw {userId, activityId}`: guards first (degrade `0004`, rate limit
/// `0005`, circuit breaker `0006`), then the draw within the deadline (`0006`).
#[utoipa::path(
    post,
    path = "/activity/draw",
    tag = "activity",
    request_body = DrawRequest,
    responses((status = 200, body = Envelope<DrawResponse>))
)]
async fn draw(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<DrawRequest>,
) -> ApiResult<DrawResponse> {
    let user_id = require_text(req.user_id, "userId")?;
    guarded_draw(&app, user_id, req.activity_id, req.client_seed).await
}

/// `POST activity/draw_by_token {activityId}`: the same draw, guards included (upstream
/// skips them here by accident of its AOP).
#[utoipa::path(
    post,
    path = "/activity/draw_by_token",
    tag = "activity",
    request_body = DrawRequest,
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<DrawResponse>))
)]
async fn draw_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<DrawRequest>,
) -> ApiResult<DrawResponse> {
    guarded_draw(&app, user_id, req.activity_id, req.client_seed).await
}

/// The draw behind both endpoints: the guards, then the draw by its deadline
/// (`ActivityService::draw_by`: `0006` only when nothing was taken).
async fn guarded_draw(
    app: &AppState,
    user_id: String,
    activity_id: Option<i64>,
    client_seed: Option<String>,
) -> ApiResult<DrawResponse> {
    let activity_id = require_id(activity_id, "activityId")?;
    if let Some(seed) = &client_seed {
        big_market_domain::strategy::fair::validate_client_seed(seed)?;
    }
    let admission = app.guard.admit(&user_id).await?;
    let deadline = std::time::Instant::now() + app.guard.draw_timeout();
    let outcome = app
        .activity
        .draw_by(
            user_id,
            activity_id,
            client_seed,
            deadline,
            tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)),
        )
        .await;
    app.guard.finish(admission, &outcome);
    let r = outcome?;
    app.metrics.draw(activity_id, r.award_id);
    Ok(Envelope::ok(DrawResponse {
        award_id: r.award_id,
        award_title: r.award_title,
        award_index: r.award_index,
        proof: r.proof.map(crate::fairness::ProofDto::from),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SkuRechargeRequest {
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    sku: Option<i64>,
    out_business_no: Option<String>,
}

/// `POST activity/sku_recharge {userId, sku, outBusinessNo}` (not in upstream; operator):
/// a no-pay recharge, idempotent by `outBusinessNo`; `data` is the order id.
#[utoipa::path(
    post,
    path = "/activity/sku_recharge",
    tag = "activity",
    request_body = SkuRechargeRequest,
    params(("Authorization" = Option<String>, Header, description = ADMIN)),
    responses((status = 200, body = Envelope<String>))
)]
async fn sku_recharge(
    _: Admin,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<SkuRechargeRequest>,
) -> ApiResult<String> {
    let user_id = require_text(req.user_id, "userId")?;
    let sku = require_id(req.sku, "sku")?;
    let out_business_no = require_text(req.out_business_no, "outBusinessNo")?;
    let order = app
        .activity
        .recharge_no_pay(user_id, sku, out_business_no)
        .await?;
    Ok(Envelope::ok(order.order_id))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AccountResponse {
    total_count: i64,
    total_count_surplus: i64,
    day_count: i64,
    day_count_surplus: i64,
    month_count: i64,
    month_count_surplus: i64,
}

/// `POST activity/query_user_activity_account {userId, activityId}`.
#[utoipa::path(
    post,
    path = "/activity/query_user_activity_account",
    tag = "activity",
    request_body = UserActivityRequest,
    responses((status = 200, body = Envelope<AccountResponse>))
)]
async fn account(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<AccountResponse> {
    let user_id = require_text(req.user_id, "userId")?;
    account_of(&app, &user_id, req.activity_id).await
}

/// `POST activity/query_user_activity_account_by_token {activityId}`.
#[utoipa::path(
    post,
    path = "/activity/query_user_activity_account_by_token",
    tag = "activity",
    request_body = UserActivityRequest,
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<AccountResponse>))
)]
async fn account_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<AccountResponse> {
    account_of(&app, &user_id, req.activity_id).await
}

async fn account_of(
    app: &AppState,
    user_id: &str,
    activity_id: Option<i64>,
) -> ApiResult<AccountResponse> {
    let activity_id = require_id(activity_id, "activityId")?;
    let v = app.activity.account(user_id, activity_id).await?;
    Ok(Envelope::ok(AccountResponse {
        total_count: v.total_count,
        total_count_surplus: v.total_count_surplus,
        day_count: v.day_count,
        day_count_surplus: v.day_count_surplus,
        month_count: v.month_count,
        month_count_surplus: v.month_count_surplus,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ActivityCountDto {
    total_count: i64,
    day_count: i64,
    month_count: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SkuProductResponse {
    sku: i64,
    activity_id: i64,
    activity_count_id: i64,
    stock_count: i64,
    stock_count_surplus: i64,
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64)]
    product_amount: Decimal,
    activity_count: ActivityCountDto,
}

/// `POST activity/query_sku_product_list_by_activity_id?activityId=` (GET works too).
#[utoipa::path(
    method(get, post),
    path = "/activity/query_sku_product_list_by_activity_id",
    tag = "activity",
    params(("activityId" = i64, Query)),
    responses((status = 200, body = Envelope<Vec<SkuProductResponse>>))
)]
async fn sku_products(
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<Vec<SkuProductResponse>> {
    let activity_id = query_id(&params, "activityId")?;
    let list = app.activity.sku_products(activity_id).await?;
    Ok(Envelope::ok(
        list.into_iter()
            .map(|(s, c)| SkuProductResponse {
                sku: s.sku,
                activity_id: s.activity_id,
                activity_count_id: s.activity_count_id,
                stock_count: s.stock_count,
                stock_count_surplus: s.stock_count_surplus,
                product_amount: s.product_amount,
                activity_count: ActivityCountDto {
                    total_count: c.total_count,
                    day_count: c.day_count,
                    month_count: c.month_count,
                },
            })
            .collect(),
    ))
}

/// `GET activity/query_stage_activity_id?channel=&source=`: the activity a front end
/// should show, or `null`.
#[utoipa::path(
    get,
    path = "/activity/query_stage_activity_id",
    tag = "activity",
    params(("channel" = String, Query), ("source" = String, Query)),
    responses((status = 200, body = Envelope<Option<i64>>))
)]
async fn stage_activity_id(
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<Option<i64>> {
    let text = |name: &str| {
        params
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
            .ok_or_else(|| Error::illegal(format!("query parameter {name} is required")))
    };
    let (channel, source) = (text("channel")?, text("source")?);
    let id = app.activity.stage_activity_id(&channel, &source).await?;
    Ok(Envelope::ok(id))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AwardRecordResponse {
    order_id: String,
    award_id: i32,
    award_title: String,
    /// `yyyy-MM-dd HH:mm:ss`, the service's time zone.
    award_time: String,
    /// `create` (not delivered yet) or `completed`.
    award_state: String,
    /// Why the award is not delivered, when delivery was tried and could not complete.
    delivery_note: Option<String>,
}

/// `POST activity/query_user_award_record_list {userId, activityId}` (ours): the user's
/// award records in the activity, newest first (at most 100), with their delivery state.
#[utoipa::path(
    post,
    path = "/activity/query_user_award_record_list",
    tag = "activity",
    request_body = UserActivityRequest,
    responses((status = 200, body = Envelope<Vec<AwardRecordResponse>>))
)]
async fn award_records(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<AwardRecordResponse>> {
    let user_id = require_text(req.user_id, "userId")?;
    award_records_of(&app, &user_id, req.activity_id).await
}

/// `POST activity/query_user_award_record_list_by_token {activityId}` (ours).
#[utoipa::path(
    post,
    path = "/activity/query_user_award_record_list_by_token",
    tag = "activity",
    request_body = UserActivityRequest,
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<Vec<AwardRecordResponse>>))
)]
async fn award_records_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<Vec<AwardRecordResponse>> {
    award_records_of(&app, &user_id, req.activity_id).await
}

async fn award_records_of(
    app: &AppState,
    user_id: &str,
    activity_id: Option<i64>,
) -> ApiResult<Vec<AwardRecordResponse>> {
    let activity_id = require_id(activity_id, "activityId")?;
    let list = app.award.user_award_records(user_id, activity_id).await?;
    Ok(Envelope::ok(
        list.into_iter()
            .map(|r| AwardRecordResponse {
                order_id: r.order_id,
                award_id: r.award_id,
                award_title: r.award_title,
                award_time: big_market_domain::time::format_datetime(&r.award_time),
                award_state: r.award_state,
                delivery_note: r.note,
            })
            .collect(),
    ))
}
