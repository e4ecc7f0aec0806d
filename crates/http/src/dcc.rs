//! `/api/v1/raffle/dcc/…`: read and change the run-time switches (operator only).

use crate::AppState;
use crate::auth::Admin;
use crate::response::{ApiResult, Envelope, QueryParams, require_text};
use axum::extract::State;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(update_config))
        .routes(routes!(query_config))
}

/// `GET dcc/update_config?key=&value=` (upstream's path): switches take effect at once
/// and survive a restart. Keys: `degradeSwitch`, `rateLimiterSwitch`; values: `open`,
/// `close`. Anything else is `0002`.
#[utoipa::path(
    get,
    path = "/dcc/update_config",
    tag = "dcc",
    params(
        ("key" = String, Query, description = "degradeSwitch or rateLimiterSwitch"),
        ("value" = String, Query, description = "open or close"),
        ("Authorization" = Option<String>, Header, description = "Bearer <admin token> when one is configured"),
    ),
    responses((status = 200, description = "`data` is null", body = Envelope<bool>))
)]
async fn update_config(
    _: Admin,
    State(app): State<AppState>,
    QueryParams(params): QueryParams,
) -> ApiResult<()> {
    let key = require_text(params.get("key").cloned(), "key")?;
    let value = require_text(params.get("value").cloned(), "value")?;
    app.dcc.update(key.trim(), &value).await?;
    Ok(Envelope {
        data: None,
        ..Envelope::ok(())
    })
}

/// `GET dcc/query_config` (ours): every key with its current value.
#[utoipa::path(
    get,
    path = "/dcc/query_config",
    tag = "dcc",
    params(("Authorization" = Option<String>, Header, description = "Bearer <admin token> when one is configured")),
    responses((status = 200, description = "key → value", body = Envelope<BTreeMap<String, String>>))
)]
async fn query_config(
    _: Admin,
    State(app): State<AppState>,
) -> ApiResult<BTreeMap<String, String>> {
    Ok(Envelope::ok(
        app.dcc
            .values()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    ))
}
