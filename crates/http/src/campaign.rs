//! `/api/v1/raffle/admin/campaign/…` (ours): campaigns as documents (export, list,
//! validate, simulate, apply, versions, rollback), behind [`Admin`] like `dcc/*`.
//!
//! An invalid document is `0002` with every error in `data.errors` (`validate` answers
//! `0000` with `valid: false` instead: checking is its job). Bodies are parsed here, not
//! by an extractor, so a malformed field is reported with its JSON path.

use crate::AppState;
use crate::auth::Admin;
use crate::response::{ApiError, ApiResult, Envelope, QueryParams, RawBody, lenient, query_id};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use big_market_domain::campaign::{
    Applied, CampaignDocument, CampaignKey, Finding, Report, Simulation, SimulationRequest,
    parse_document, simulate,
};
use big_market_domain::{Error, ResponseCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(list))
        .routes(routes!(validate))
        .routes(routes!(simulate_campaign))
        .routes(routes!(apply))
        .routes(routes!(versions))
        .routes(routes!(rollback))
}

const AUTH: &str = "Bearer <admin token> when one is configured";

/// `activityId` or `strategyId`, exactly one.
fn key_of(params: &HashMap<String, String>) -> Result<CampaignKey, Error> {
    match (
        params.contains_key("activityId"),
        params.contains_key("strategyId"),
    ) {
        (true, false) => Ok(CampaignKey::Activity(query_id(params, "activityId")?)),
        (false, true) => Ok(CampaignKey::Strategy(query_id(params, "strategyId")?)),
        _ => Err(Error::illegal("give exactly one of activityId, strategyId")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct FindingResponse {
    /// JSON path of the field, e.g. `strategy.awards[3].awardRate`.
    path: String,
    message: String,
}

fn findings(list: Vec<Finding>) -> Vec<FindingResponse> {
    list.into_iter()
        .map(|f| FindingResponse {
            path: f.path,
            message: f.message,
        })
        .collect()
}

/// `0002` with the errors in `data.errors`.
fn invalid<T: Serialize>(wrap: impl FnOnce(ErrorsResponse) -> T, errors: Vec<Finding>) -> Response {
    let n = errors.len();
    Envelope {
        code: ResponseCode::IllegalParameter.code(),
        info: format!(
            "{}: the campaign document has {n} error{}",
            ResponseCode::IllegalParameter.info(),
            if n == 1 { "" } else { "s" }
        ),
        data: Some(wrap(ErrorsResponse {
            errors: findings(errors),
        })),
    }
    .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
struct ErrorsResponse {
    errors: Vec<FindingResponse>,
}

/// `data` of `apply` and `rollback`: the new version, or the document's errors (`0002`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum ApplyAnswer {
    Applied(AppliedResponse),
    Invalid(ErrorsResponse),
}

/// `data` of `simulate`: the simulation, or the document's errors (`0002`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum SimulateAnswer {
    Simulation(SimulationResponse),
    Invalid(ErrorsResponse),
}

fn document(bytes: &[u8]) -> Result<CampaignDocument, Finding> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Finding {
            path: String::new(),
            message: "the body is empty; send the campaign document".into(),
        });
    }
    parse_document(bytes)
}

/// The campaign document (see docs/CAMPAIGNS.md).
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
struct DocumentResponse(serde_json::Value);

/// `GET admin/campaign/export?activityId=|strategyId=`: the campaign's document. A
/// strategy that has an activity exports as that activity.
#[utoipa::path(
    get,
    path = "/admin/campaign/export",
    tag = "campaign",
    params(
        ("activityId" = Option<i64>, Query, description = "the activity, or"),
        ("strategyId" = Option<i64>, Query, description = "the strategy"),
        ("Authorization" = Option<String>, Header, description = AUTH),
    ),
    responses((status = 200, body = Envelope<DocumentResponse>))
)]
async fn export(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<DocumentResponse> {
    let doc = app.campaign.export(key_of(&params)?).await?;
    Ok(Envelope::ok(DocumentResponse(
        serde_json::to_value(doc).map_err(Error::internal)?,
    )))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct CampaignListItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    activity_id: Option<i64>,
    strategy_id: i64,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    begin_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_date_time: Option<String>,
    /// Newest applied version; null when never applied through a document.
    current_version: Option<i64>,
}

/// `GET admin/campaign/list`: every activity, then every strategy without one.
#[utoipa::path(
    get,
    path = "/admin/campaign/list",
    tag = "campaign",
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses((status = 200, body = Envelope<Vec<CampaignListItem>>))
)]
async fn list(_: Admin, State(app): State<AppState>) -> ApiResult<Vec<CampaignListItem>> {
    Ok(Envelope::ok(
        app.campaign
            .list()
            .await?
            .into_iter()
            .map(|c| CampaignListItem {
                activity_id: c.activity_id,
                strategy_id: c.strategy_id,
                name: c.name,
                state: c.state,
                begin_date_time: c.begin_date_time,
                end_date_time: c.end_date_time,
                current_version: c.current_version,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
struct ValidateResponse {
    valid: bool,
    errors: Vec<FindingResponse>,
    /// Problems the stored configuration already has: kept, not added.
    warnings: Vec<FindingResponse>,
}

fn report(r: Report) -> ValidateResponse {
    ValidateResponse {
        valid: r.valid,
        errors: findings(r.errors),
        warnings: findings(r.warnings),
    }
}

/// `POST admin/campaign/validate` (body: the document): every error at once, each with
/// its JSON path. Writes nothing.
#[utoipa::path(
    post,
    path = "/admin/campaign/validate",
    tag = "campaign",
    request_body(content = Object, description = "the campaign document"),
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses((status = 200, body = Envelope<ValidateResponse>))
)]
async fn validate(
    _: Admin,
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> ApiResult<ValidateResponse> {
    let r = match document(&body) {
        Ok(doc) => app.campaign.validate(&doc).await?,
        Err(f) => Report {
            valid: false,
            errors: vec![f],
            warnings: Vec::new(),
        },
    };
    Ok(Envelope::ok(report(r)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SimulateRequest {
    /// A document to simulate (validated first), or else
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    document: Option<serde_json::Value>,
    /// the stored campaign of this activity, or
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    activity_id: Option<i64>,
    /// of this strategy.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    strategy_id: Option<i64>,
    users: Option<u32>,
    draws_per_user: Option<u32>,
    /// The random generator's seed: the same input gives the same answer.
    seed: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ByRuleResponse {
    default: u64,
    weight: u64,
    luck: u64,
    blacklist: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AwardOutcomeResponse {
    award_id: i32,
    award_title: String,
    /// Draws × the award's share of the rates.
    expected: f64,
    granted: u64,
    /// The draw that took the last unit; null when stock lasted.
    stock_out_at_draw: Option<u64>,
    by_rule: ByRuleResponse,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SimulationResponse {
    strategy_id: i64,
    users: u32,
    draws_per_user: u32,
    seed: u64,
    draws: u64,
    awards: Vec<AwardOutcomeResponse>,
}

fn simulation(s: Simulation) -> SimulationResponse {
    SimulationResponse {
        strategy_id: s.strategy_id,
        users: s.users,
        draws_per_user: s.draws_per_user,
        seed: s.seed,
        draws: s.draws,
        awards: s
            .awards
            .into_iter()
            .map(|a| AwardOutcomeResponse {
                award_id: a.award_id,
                award_title: a.award_title,
                expected: a.expected,
                granted: a.granted,
                stock_out_at_draw: a.stock_out_at_draw,
                by_rule: ByRuleResponse {
                    default: a.by_rule.default,
                    weight: a.by_rule.weight,
                    luck: a.by_rule.luck,
                    blacklist: a.by_rule.blacklist,
                },
            })
            .collect(),
    }
}

/// `POST admin/campaign/simulate {document | activityId | strategyId, users,
/// drawsPerUser, seed}`: runs the real chain, tree and stock rules on an in-memory copy
/// of the stock, seeded; nothing is stored. Per award: expected and granted counts, the
/// draw at which stock ran out, and the rule that decided each win.
#[utoipa::path(
    post,
    path = "/admin/campaign/simulate",
    tag = "campaign",
    request_body = SimulateRequest,
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses(
        (status = 200, description = "the simulation; an invalid document is 0002 with `data.errors`", body = Envelope<SimulateAnswer>),
    )
)]
async fn simulate_campaign(
    _: Admin,
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req: SimulateRequest = serde_json::from_slice(&body)
        .map_err(|e| Error::illegal(format!("malformed simulate request: {e}")))?;
    let doc = match req.document {
        Some(v) => {
            let bytes = serde_json::to_vec(&v).map_err(Error::internal)?;
            match parse_document(&bytes) {
                Ok(d) => Some(d),
                Err(mut f) => {
                    f.path = if f.path.is_empty() {
                        "document".into()
                    } else {
                        format!("document.{}", f.path)
                    };
                    return Ok(invalid(SimulateAnswer::Invalid, vec![f]));
                }
            }
        }
        None => None,
    };
    let key = match (req.activity_id, req.strategy_id) {
        (Some(a), None) => Some(CampaignKey::Activity(a)),
        (None, Some(s)) => Some(CampaignKey::Strategy(s)),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(Error::illegal("give activityId or strategyId, not both").into());
        }
    };
    let request = SimulationRequest {
        users: req
            .users
            .ok_or_else(|| Error::illegal("users is required"))?,
        draws_per_user: req
            .draws_per_user
            .ok_or_else(|| Error::illegal("drawsPerUser is required"))?,
        seed: req.seed.unwrap_or(0),
    };
    let input = match app.campaign.simulation_input(doc, key, &request).await? {
        Ok(input) => input,
        Err(errors) => return Ok(invalid(SimulateAnswer::Invalid, errors)),
    };
    // CPU-bound (up to MAX_SIMULATED_DRAWS draws): off the async workers.
    let result = tokio::task::spawn_blocking(move || simulate(&input, &request))
        .await
        .map_err(|e| Error::internal(format!("simulation task failed: {e}")))??;
    Ok(Envelope::ok(SimulateAnswer::Simulation(simulation(result))).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AppliedResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    activity_id: Option<i64>,
    strategy_id: i64,
    version: i64,
    /// What changed, in words.
    summary: String,
}

fn applied(a: Applied) -> Response {
    Envelope::ok(ApplyAnswer::Applied(AppliedResponse {
        activity_id: a.activity_id,
        strategy_id: a.strategy_id,
        version: a.version,
        summary: a.summary,
    }))
    .into_response()
}

/// `POST admin/campaign/apply` (body: the document): validated, written in one
/// transaction with a new version (author, time, summary), then published to every node
/// (armory). Stock totals changed by Δ change what is left by Δ. Invalid: `0002` with
/// `data.errors`, nothing written.
#[utoipa::path(
    post,
    path = "/admin/campaign/apply",
    tag = "campaign",
    request_body(content = Object, description = "the campaign document"),
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses(
        (status = 200, description = "the new version; an invalid document is 0002 with `data.errors`", body = Envelope<ApplyAnswer>),
    )
)]
async fn apply(
    admin: Admin,
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let doc = match document(&body) {
        Ok(d) => d,
        Err(f) => return Ok(invalid(ApplyAnswer::Invalid, vec![f])),
    };
    Ok(match app.campaign.apply(doc, &admin.name).await? {
        Ok(a) => applied(a),
        Err(errors) => invalid(ApplyAnswer::Invalid, errors),
    })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct VersionResponse {
    version: i64,
    /// `yyyy-MM-dd HH:mm:ss`, UTC.
    create_time: String,
    author: String,
    summary: String,
}

/// `GET admin/campaign/versions?activityId=|strategyId=`: newest first.
#[utoipa::path(
    get,
    path = "/admin/campaign/versions",
    tag = "campaign",
    params(
        ("activityId" = Option<i64>, Query, description = "the activity, or"),
        ("strategyId" = Option<i64>, Query, description = "the strategy"),
        ("Authorization" = Option<String>, Header, description = AUTH),
    ),
    responses((status = 200, body = Envelope<Vec<VersionResponse>>))
)]
async fn versions(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<Vec<VersionResponse>> {
    Ok(Envelope::ok(
        app.campaign
            .versions(key_of(&params)?)
            .await?
            .into_iter()
            .map(|v| VersionResponse {
                version: v.version,
                create_time: v.create_time,
                author: v.author,
                summary: v.summary,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RollbackRequest {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    activity_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = Option<i64>)]
    strategy_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    #[schema(value_type = i64)]
    version: Option<i64>,
}

/// `POST admin/campaign/rollback {activityId | strategyId, version}`: that version's
/// document applied again, as a new version (checked like any apply).
#[utoipa::path(
    post,
    path = "/admin/campaign/rollback",
    tag = "campaign",
    request_body = RollbackRequest,
    params(("Authorization" = Option<String>, Header, description = AUTH)),
    responses(
        (status = 200, description = "the new version; a document no longer valid is 0002 with `data.errors`", body = Envelope<ApplyAnswer>),
    )
)]
async fn rollback(
    admin: Admin,
    State(app): State<AppState>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let req: RollbackRequest = serde_json::from_slice(&body)
        .map_err(|e| Error::illegal(format!("malformed rollback request: {e}")))?;
    let key = match (req.activity_id, req.strategy_id) {
        (Some(a), None) => CampaignKey::Activity(a),
        (None, Some(s)) => CampaignKey::Strategy(s),
        _ => return Err(Error::illegal("give exactly one of activityId, strategyId").into()),
    };
    let version = req
        .version
        .ok_or_else(|| Error::illegal("version is required"))?;
    Ok(
        match app.campaign.rollback(key, version, &admin.name).await? {
            Ok(a) => applied(a),
            Err(errors) => invalid(ApplyAnswer::Invalid, errors),
        },
    )
}
