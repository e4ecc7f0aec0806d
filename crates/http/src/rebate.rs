//! Sign-in rebates, payment rebates, credits and paying credits for draws
//! (`/api/v1/raffle/activity/…`), and the operator's list of undelivered awards.

use crate::AppState;
use crate::response::{
    ApiResult, Envelope, JsonBody, RawBody, lenient, query_limit, require_id, require_text,
};
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use big_market_domain::rebate::Behavior;
use big_market_domain::{Error, ResponseCode};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/activity/calendar_sign_rebate", post(sign))
        .route("/activity/is_calendar_sign_rebate", post(is_signed))
        .route("/activity/behavior_rebate", post(behavior_rebate))
        .route("/activity/query_user_credit_account", post(credit_account))
        .route("/activity/credit_pay_exchange_sku", post(exchange))
        .route("/erp/query_undelivered_award_list", get(undelivered))
}

/// A request parameter as Spring's `@RequestParam` finds it: in the query string or in a
/// form-encoded body.
fn param(query: &HashMap<String, String>, body: &[u8], name: &str) -> Result<String, Error> {
    let from_body = || {
        serde_urlencoded::from_bytes::<HashMap<String, String>>(body)
            .ok()
            .and_then(|mut m| m.remove(name))
    };
    let value = query.get(name).cloned().or_else(from_body);
    require_text(value, name)
}

/// `POST calendar_sign_rebate?userId=`: today's sign-in; a second one → `0003`.
async fn sign(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    RawBody(body): RawBody,
) -> ApiResult<bool> {
    let user_id = param(&query, &body, "userId")?;
    app.rebate.sign(&user_id).await?;
    Ok(Envelope::ok(true))
}

/// `POST is_calendar_sign_rebate?userId=`.
async fn is_signed(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    RawBody(body): RawBody,
) -> ApiResult<bool> {
    let user_id = param(&query, &body, "userId")?;
    Ok(Envelope::ok(app.rebate.signed_today(&user_id).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RebateData {
    user_id: Option<String>,
    behavior_type: Option<String>,
    out_business_no: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RebateRequest {
    app_id: Option<String>,
    app_token: Option<String>,
    data: Option<RebateData>,
}

/// `POST behavior_rebate {appId, appToken, data: {userId, behaviorType, outBusinessNo}}`:
/// upstream's Dubbo `IRebateService.rebate` (payment rebates) over HTTP.
async fn behavior_rebate(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<RebateRequest>,
) -> ApiResult<bool> {
    let app_id = require_text(req.app_id, "appId")?;
    let app_token = require_text(req.app_token, "appToken")?;
    let data = req.data.ok_or_else(|| Error::illegal("data is required"))?;
    let behavior = Behavior {
        user_id: require_text(data.user_id, "data.userId")?,
        behavior_type: require_text(data.behavior_type, "data.behaviorType")?.to_lowercase(),
        out_business_no: require_text(data.out_business_no, "data.outBusinessNo")?,
    };
    let allowed = app
        .app_tokens
        .get(&app_id)
        .is_some_and(|t| constant_time_eq(t.as_bytes(), app_token.as_bytes()));
    if !allowed {
        return Err(Error::biz(
            ResponseCode::AppTokenError,
            format!("appId {app_id} is not allowed with this token"),
        )
        .into());
    }
    app.rebate.rebate(behavior).await?;
    Ok(Envelope::ok(true))
}

/// Compares secrets without leaking their common prefix length through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST query_user_credit_account?userId=`: available credits, 0 without an account.
async fn credit_account(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    RawBody(body): RawBody,
) -> ApiResult<CreditAmount> {
    let user_id = param(&query, &body, "userId")?;
    Ok(Envelope::ok(CreditAmount(
        app.credit.available(&user_id).await?,
    )))
}

/// A credit amount as a JSON number (upstream's `BigDecimal`).
#[derive(Serialize)]
struct CreditAmount(#[serde(with = "rust_decimal::serde::float")] Decimal);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeRequest {
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    sku: Option<i64>,
}

/// `POST credit_pay_exchange_sku {userId, sku}`: pays the SKU's price in credits; the
/// draws arrive when the payment event is consumed.
async fn exchange(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<ExchangeRequest>,
) -> ApiResult<bool> {
    let user_id = require_text(req.user_id, "userId")?;
    let sku = require_id(req.sku, "sku")?;
    app.activity.credit_pay_exchange(user_id, sku).await?;
    Ok(Envelope::ok(true))
}

#[derive(Serialize)]
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
async fn undelivered(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
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
