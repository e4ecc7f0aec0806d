//! Sign-in rebates, payment rebates, credits and paying credits for draws
//! (`/api/v1/raffle/activity/…`), each also `*_by_token` for the user of a JWT.

use crate::AppState;
use crate::auth::{TokenUser, constant_time_eq};
use crate::response::{
    ApiResult, Envelope, JsonBody, QueryParams, RawBody, lenient, require_id, require_text,
};
use axum::extract::State;
use big_market_domain::rebate::Behavior;
use big_market_domain::{Error, ResponseCode};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign))
        .routes(routes!(sign_by_token))
        .routes(routes!(is_signed))
        .routes(routes!(is_signed_by_token))
        .routes(routes!(behavior_rebate))
        .routes(routes!(credit_account))
        .routes(routes!(credit_account_by_token))
        .routes(routes!(exchange))
        .routes(routes!(exchange_by_token))
}

/// Description of the user token header of `*_by_token` endpoints.
pub(crate) const USER_TOKEN: &str =
    "HS256 JWT with an openId claim, raw (as upstream's front end sends it) or `Bearer <jwt>`";

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
#[utoipa::path(
    post,
    path = "/activity/calendar_sign_rebate",
    tag = "rebate",
    params(("userId" = String, Query, description = "also accepted as a form field")),
    responses((status = 200, body = Envelope<bool>))
)]
async fn sign(
    State(app): State<AppState>,
    QueryParams(query): QueryParams,
    RawBody(body): RawBody,
) -> ApiResult<bool> {
    let user_id = param(&query, &body, "userId")?;
    app.rebate.sign(&user_id).await?;
    Ok(Envelope::ok(true))
}

/// `POST calendar_sign_rebate_by_token`: as `calendar_sign_rebate` for the token's user.
#[utoipa::path(
    post,
    path = "/activity/calendar_sign_rebate_by_token",
    tag = "rebate",
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<bool>))
)]
async fn sign_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
) -> ApiResult<bool> {
    app.rebate.sign(&user_id).await?;
    Ok(Envelope::ok(true))
}

/// `POST is_calendar_sign_rebate?userId=`.
#[utoipa::path(
    post,
    path = "/activity/is_calendar_sign_rebate",
    tag = "rebate",
    params(("userId" = String, Query, description = "also accepted as a form field")),
    responses((status = 200, body = Envelope<bool>))
)]
async fn is_signed(
    State(app): State<AppState>,
    QueryParams(query): QueryParams,
    RawBody(body): RawBody,
) -> ApiResult<bool> {
    let user_id = param(&query, &body, "userId")?;
    Ok(Envelope::ok(app.rebate.signed_today(&user_id).await?))
}

/// `POST is_calendar_sign_rebate_by_token`.
#[utoipa::path(
    post,
    path = "/activity/is_calendar_sign_rebate_by_token",
    tag = "rebate",
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<bool>))
)]
async fn is_signed_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
) -> ApiResult<bool> {
    Ok(Envelope::ok(app.rebate.signed_today(&user_id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RebateData {
    user_id: Option<String>,
    behavior_type: Option<String>,
    out_business_no: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RebateRequest {
    app_id: Option<String>,
    app_token: Option<String>,
    data: Option<RebateData>,
}

/// `POST behavior_rebate {appId, appToken, data: {userId, behaviorType, outBusinessNo}}`:
/// upstream's Dubbo `IRebateService.rebate` (payment rebates) over HTTP.
#[utoipa::path(
    post,
    path = "/activity/behavior_rebate",
    tag = "rebate",
    request_body = RebateRequest,
    responses((status = 200, body = Envelope<bool>))
)]
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

/// `POST query_user_credit_account?userId=`: available credits, 0 without an account.
#[utoipa::path(
    post,
    path = "/activity/query_user_credit_account",
    tag = "credit",
    params(("userId" = String, Query, description = "also accepted as a form field")),
    responses((status = 200, body = Envelope<CreditAmount>))
)]
async fn credit_account(
    State(app): State<AppState>,
    QueryParams(query): QueryParams,
    RawBody(body): RawBody,
) -> ApiResult<CreditAmount> {
    let user_id = param(&query, &body, "userId")?;
    Ok(Envelope::ok(CreditAmount(
        app.credit.available(&user_id).await?,
    )))
}

/// `POST query_user_credit_account_by_token`.
#[utoipa::path(
    post,
    path = "/activity/query_user_credit_account_by_token",
    tag = "credit",
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<CreditAmount>))
)]
async fn credit_account_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
) -> ApiResult<CreditAmount> {
    Ok(Envelope::ok(CreditAmount(
        app.credit.available(&user_id).await?,
    )))
}

/// A credit amount as a JSON number (upstream's `BigDecimal`).
#[derive(Serialize, ToSchema)]
#[schema(value_type = f64)]
struct CreditAmount(#[serde(with = "rust_decimal::serde::float")] Decimal);

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ExchangeRequest {
    /// Ignored by `credit_pay_exchange_sku_by_token` (the token names the user).
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    sku: Option<i64>,
}

/// `POST credit_pay_exchange_sku {userId, sku}`: pays the SKU's price in credits; the
/// draws arrive when the payment event is consumed.
#[utoipa::path(
    post,
    path = "/activity/credit_pay_exchange_sku",
    tag = "credit",
    request_body = ExchangeRequest,
    responses((status = 200, body = Envelope<bool>))
)]
async fn exchange(
    State(app): State<AppState>,
    JsonBody(req): JsonBody<ExchangeRequest>,
) -> ApiResult<bool> {
    let user_id = require_text(req.user_id, "userId")?;
    let sku = require_id(req.sku, "sku")?;
    app.activity.credit_pay_exchange(user_id, sku).await?;
    Ok(Envelope::ok(true))
}

/// `POST credit_pay_exchange_sku_by_token {sku}`.
#[utoipa::path(
    post,
    path = "/activity/credit_pay_exchange_sku_by_token",
    tag = "credit",
    request_body = ExchangeRequest,
    params(("Authorization" = String, Header, description = USER_TOKEN)),
    responses((status = 200, body = Envelope<bool>))
)]
async fn exchange_by_token(
    TokenUser(user_id): TokenUser,
    State(app): State<AppState>,
    JsonBody(req): JsonBody<ExchangeRequest>,
) -> ApiResult<bool> {
    let sku = require_id(req.sku, "sku")?;
    app.activity.credit_pay_exchange(user_id, sku).await?;
    Ok(Envelope::ok(true))
}
