//! The HTTP API: upstream's paths under `/api/v1/raffle/…`, its `{code, info, data}`
//! envelope and HTTP 200 for every business outcome.
//!
//! Handlers parse and validate input, call one domain service and map the result; they
//! never touch storage. Errors are mapped to the envelope in one place ([`response`]).

mod activity;
mod rebate;
pub mod response;
mod strategy;
mod task;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method};
use big_market_domain::activity::ActivityService;
use big_market_domain::award::AwardService;
use big_market_domain::credit::CreditService;
use big_market_domain::rebate::RebateService;
use big_market_domain::strategy::StrategyService;
use big_market_domain::task::TaskService;
use std::collections::BTreeMap;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Everything handlers need, passed explicitly as `State<AppState>`.
#[derive(Clone)]
pub struct AppState {
    pub strategy: Arc<StrategyService>,
    pub activity: Arc<ActivityService>,
    pub award: Arc<AwardService>,
    pub credit: Arc<CreditService>,
    pub rebate: Arc<RebateService>,
    pub tasks: Arc<TaskService>,
    /// `appId → appToken` allowed to call `activity/behavior_rebate`.
    pub app_tokens: Arc<BTreeMap<String, String>>,
}

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Allowed CORS origins; `*` allows any (upstream's default).
    pub cors_origins: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            cors_origins: vec!["*".into()],
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(Any);
    if origins.iter().any(|o| o == "*") || origins.is_empty() {
        layer.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer.allow_origin(AllowOrigin::list(list))
    }
}

/// The whole API. Paths are matched with and without a trailing slash by the server.
pub fn router(state: AppState, options: &HttpOptions) -> Router {
    Router::new()
        .nest(
            "/api/v1/raffle",
            strategy::routes()
                .merge(activity::routes())
                .merge(rebate::routes())
                .merge(task::routes()),
        )
        .route("/health", axum::routing::get(|| async { "ok" }))
        .fallback(response::not_found)
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                        let id = req
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(cors(&options.cors_origins)),
        )
}

/// Serves `router` on `listener` until `shutdown` resolves, accepting paths with a
/// trailing slash as upstream's Spring mappings do.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::ServiceExt;
    use tower::Layer;
    let app = tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash().layer(router);
    axum::serve(
        listener,
        ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
