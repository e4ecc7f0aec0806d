//! `/api/v1/raffle/erp/…`: the operator's back office (addendum §1.4), all behind
//! [`Admin`].

use crate::AppState;
use crate::auth::Admin;
use crate::response::{
    ApiResult, Envelope, JsonBody, QueryParams, lenient, query_id, query_limit, require_id,
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
        .routes(routes!(strategy_list))
        .routes(routes!(award_stock))
        .routes(routes!(audit))
        .routes(routes!(user_detail))
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct StrategySummary {
    strategy_id: i64,
    /// The activity drawing from it, if any.
    activity_id: Option<i64>,
    awards: usize,
    /// Weight-group tables besides the default one.
    weight_groups: usize,
}

/// `GET erp/query_strategy_list` (ours): every strategy assembled on this node.
#[utoipa::path(
    get,
    path = "/erp/query_strategy_list",
    tag = "erp",
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses((status = 200, body = Envelope<Vec<StrategySummary>>))
)]
async fn strategy_list(_: Admin, State(app): State<AppState>) -> ApiResult<Vec<StrategySummary>> {
    let catalog = app.strategy.catalog();
    Ok(Envelope::ok(
        catalog
            .ids()
            .into_iter()
            .filter_map(|id| catalog.get(id).ok())
            .map(|s| StrategySummary {
                strategy_id: s.strategy_id(),
                activity_id: s.activity_id,
                awards: s.awards.len(),
                weight_groups: s.weight_groups().map_or(0, <[_]>::len),
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AwardStockResponse {
    award_id: i32,
    award_title: String,
    sort: i32,
    /// `award_rate` as configured (a decimal string, e.g. `"0.8000"`).
    award_rate: String,
    award_count: i64,
    award_count_surplus: i64,
}

/// `GET erp/query_strategy_award_stock?strategyId=` (ours): each award's stock and what
/// is left. On the production backend what is left is the SQL column, written back from
/// Redis every `stock_writeback_ms`.
#[utoipa::path(
    get,
    path = "/erp/query_strategy_award_stock",
    tag = "erp",
    params(
        ("strategyId" = i64, Query),
        ("Authorization" = Option<String>, Header, description = AUTH),
    ),
    responses((status = 200, body = Envelope<Vec<AwardStockResponse>>))
)]
async fn award_stock(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<Vec<AwardStockResponse>> {
    let strategy_id = query_id(&params, "strategyId")?;
    let awards = app.strategy.award_stock(strategy_id).await?;
    Ok(Envelope::ok(
        awards
            .into_iter()
            .map(|a| AwardStockResponse {
                award_id: a.award_id,
                award_title: a.award_title,
                sort: a.sort,
                award_rate: a.award_rate.to_string(),
                award_count: a.award_count,
                award_count_surplus: a.award_count_surplus,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AuditAward {
    award_id: i32,
    award_title: String,
    /// Configured rate normalised by the table's total.
    expected_probability: f64,
    observed: u64,
    observed_frequency: f64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AuditTable {
    /// `{strategyId}` (the default table) or `{strategyId}_{group}`.
    key: String,
    samples: u64,
    chi_square: f64,
    degrees_of_freedom: u64,
    p_value: f64,
    awards: Vec<AuditAward>,
}

/// The most samples one audit request draws.
const MAX_AUDIT_SAMPLES: u64 = 1_000_000;

/// `GET erp/audit_strategy?strategyId=&samples=` (ours; `big-market audit` over HTTP):
/// draws `samples` (default 100000, at most 1000000) from each table of the assembled
/// strategy and compares with the configured odds (chi-square p-value). Touches no store.
#[utoipa::path(
    get,
    path = "/erp/audit_strategy",
    tag = "erp",
    params(
        ("strategyId" = i64, Query),
        ("samples" = Option<u64>, Query, description = "1..=1000000, default 100000"),
        ("Authorization" = Option<String>, Header, description = AUTH),
    ),
    responses((status = 200, body = Envelope<Vec<AuditTable>>))
)]
async fn audit(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<Vec<AuditTable>> {
    let strategy_id = query_id(&params, "strategyId")?;
    let samples = match params.get("samples") {
        None => 100_000,
        Some(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_AUDIT_SAMPLES).contains(n))
            .ok_or_else(|| {
                Error::illegal(format!(
                    "samples must be an integer from 1 to {MAX_AUDIT_SAMPLES}"
                ))
            })?,
    };
    let strategy = app.strategy.catalog().get(strategy_id)?;
    let tables = tokio::task::spawn_blocking(move || {
        let tables = big_market_domain::strategy::audit::audit_strategy(
            &strategy,
            samples,
            &mut rand::rng(),
        );
        (strategy, tables)
    })
    .await
    .map_err(|e| Error::Internal(format!("audit task: {e}")))?;
    let (strategy, tables) = tables;
    Ok(Envelope::ok(
        tables
            .into_iter()
            .map(|t| AuditTable {
                key: t.key,
                samples: t.samples,
                chi_square: t.chi_square,
                degrees_of_freedom: t.degrees_of_freedom,
                p_value: t.p_value,
                awards: t
                    .awards
                    .into_iter()
                    .map(|a| AuditAward {
                        award_id: a.award_id,
                        award_title: strategy
                            .award(a.award_id)
                            .map(|s| s.award_title.clone())
                            .unwrap_or_default(),
                        expected_probability: a.expected_probability,
                        observed: a.observed,
                        observed_frequency: a.observed_frequency,
                    })
                    .collect(),
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreditLedgerResponse {
    order_id: String,
    trade_name: String,
    /// `forward` (credited) or `reverse` (paid).
    trade_type: String,
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64)]
    trade_amount: rust_decimal::Decimal,
    out_business_no: String,
    create_time: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct UserDetailResponse {
    user_id: String,
    /// Newest first, at most 100, every activity.
    raffle_orders: Vec<RaffleOrderResponse>,
    /// The points ledger, newest first, at most 100.
    credit_orders: Vec<CreditLedgerResponse>,
}

/// `GET erp/query_user_detail?userId=` (ours): one user's raffle orders and points
/// ledger, for an operator looking a user up.
#[utoipa::path(
    get,
    path = "/erp/query_user_detail",
    tag = "erp",
    params(
        ("userId" = String, Query),
        ("Authorization" = Option<String>, Header, description = AUTH),
    ),
    responses((status = 200, body = Envelope<UserDetailResponse>))
)]
async fn user_detail(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<UserDetailResponse> {
    let user_id = crate::response::require_text(params.get("userId").cloned(), "userId")?;
    let (orders, ledger) = app.erp.user_detail(&user_id).await?;
    Ok(Envelope::ok(UserDetailResponse {
        user_id,
        raffle_orders: orders
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
        credit_orders: ledger
            .into_iter()
            .map(|c| CreditLedgerResponse {
                order_id: c.order_id,
                trade_name: c.trade_name,
                trade_type: c.trade_type,
                trade_amount: c.trade_amount,
                out_business_no: c.out_business_no,
                create_time: big_market_domain::time::format_datetime(&c.create_time),
            })
            .collect(),
    }))
}
