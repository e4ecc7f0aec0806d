//! `/api/v1/raffle/activity/…`.

use crate::AppState;
use crate::response::{ApiResult, Envelope, JsonBody, lenient, query_id, require_id, require_text};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use big_market_domain::Error;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/activity/armory", get(armory))
        .route("/activity/draw", post(draw))
        .route("/activity/sku_recharge", post(sku_recharge))
        .route("/activity/query_user_activity_account", post(account))
        .route(
            "/activity/query_sku_product_list_by_activity_id",
            post(sku_products).get(sku_products),
        )
        .route("/activity/query_stage_activity_id", get(stage_activity_id))
}

/// `GET activity/armory?activityId=`: reloads the activity and assembles its strategy.
async fn armory(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<bool> {
    let activity_id = query_id(&params, "activityId")?;
    app.activity.armory(activity_id).await?;
    Ok(Envelope::ok(true))
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
struct DrawResponse {
    award_id: i32,
    award_title: String,
    award_index: i32,
}

/// `POST activity/draw {userId, activityId}`.
async fn draw(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<DrawResponse> {
    let user_id = require_text(req.user_id, "userId")?;
    let activity_id = require_id(req.activity_id, "activityId")?;
    let r = app.activity.draw(user_id, activity_id).await?;
    Ok(Envelope::ok(DrawResponse {
        award_id: r.award_id,
        award_title: r.award_title,
        award_index: r.award_index,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkuRechargeRequest {
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    sku: Option<i64>,
    out_business_no: Option<String>,
}

/// `POST activity/sku_recharge {userId, sku, outBusinessNo}` (not in upstream): a no-pay
/// recharge, idempotent by `outBusinessNo`; `data` is the order id.
async fn sku_recharge(
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

#[derive(Serialize)]
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
async fn account(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<UserActivityRequest>,
) -> ApiResult<AccountResponse> {
    let user_id = require_text(req.user_id, "userId")?;
    let activity_id = require_id(req.activity_id, "activityId")?;
    let v = app.activity.account(&user_id, activity_id).await?;
    Ok(Envelope::ok(AccountResponse {
        total_count: v.total_count,
        total_count_surplus: v.total_count_surplus,
        day_count: v.day_count,
        day_count_surplus: v.day_count_surplus,
        month_count: v.month_count,
        month_count_surplus: v.month_count_surplus,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActivityCountDto {
    total_count: i64,
    day_count: i64,
    month_count: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SkuProductResponse {
    sku: i64,
    activity_id: i64,
    activity_count_id: i64,
    stock_count: i64,
    stock_count_surplus: i64,
    #[serde(with = "rust_decimal::serde::float")]
    product_amount: Decimal,
    activity_count: ActivityCountDto,
}

/// `POST activity/query_sku_product_list_by_activity_id?activityId=`.
async fn sku_products(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
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
async fn stage_activity_id(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
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
