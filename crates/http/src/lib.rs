//! The HTTP API: upstream's paths under `/api/v1/raffle/…`, its `{code, info, data}`
//! envelope and HTTP 200 for every business outcome.
//!
//! Handlers parse and validate input, call one domain service and map the result; they
//! never touch storage. Errors are mapped to the envelope in one place ([`response`]).

mod activity;
pub mod auth;
mod campaign;
mod dcc;
mod erp;
mod fairness;
mod health;
pub mod metrics;
pub mod pages;
mod rebate;
pub mod response;
mod strategy;
mod task;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use big_market_domain::activity::ActivityService;
use big_market_domain::award::AwardService;
use big_market_domain::campaign::CampaignService;
use big_market_domain::credit::CreditService;
use big_market_domain::dcc::DynamicConfig;
use big_market_domain::erp::ErpService;
use big_market_domain::guard::DrawGuard;
use big_market_domain::health::StoreProbe;
use big_market_domain::rebate::RebateService;
use big_market_domain::strategy::StrategyService;
use big_market_domain::task::TaskService;
use big_market_domain::time::Clock;
use std::collections::BTreeMap;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Everything handlers need, passed explicitly as `State<AppState>`. One `Arc` around
/// the services: the router clones the state several times per request, and one
/// reference count is cheaper to share between cores than seventeen.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    pub strategy: Arc<StrategyService>,
    pub activity: Arc<ActivityService>,
    pub award: Arc<AwardService>,
    pub credit: Arc<CreditService>,
    pub rebate: Arc<RebateService>,
    pub tasks: Arc<TaskService>,
    /// `appId → appToken` allowed to call `activity/behavior_rebate`.
    pub app_tokens: Arc<BTreeMap<String, String>>,
    /// Run-time switches (`dcc/…`).
    pub dcc: Arc<DynamicConfig>,
    /// Degrade, rate limit, circuit breaker and deadline of draws.
    pub guard: Arc<DrawGuard>,
    pub erp: Arc<ErpService>,
    /// Campaign documents (`admin/campaign/…`).
    pub campaign: Arc<CampaignService>,
    /// Readiness and load of the configured stores.
    pub probe: Arc<dyn StoreProbe>,
    pub auth: Arc<auth::AuthConfig>,
    pub metrics: Arc<metrics::Metrics>,
    pub clock: Arc<dyn Clock>,
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

/// Request ids as version 4 UUIDs drawn from the thread's generator: `MakeRequestUuid`
/// asks the kernel for every id, a system call per request.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut b: [u8; 16] = rand::random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let v = u128::from_be_bytes(b);
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            v >> 96,
            (v >> 80) & 0xffff,
            (v >> 64) & 0xffff,
            (v >> 48) & 0xffff,
            v & 0xffff_ffff_ffff
        );
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

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

/// The API base path.
pub const BASE: &str = "/api/v1/raffle";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "big-market",
        description = "Marketing raffle platform, compatible with bugstack's big-market. Business outcomes are HTTP 200 with a code in the `{code, info, data}` envelope."
    ),
    tags(
        (name = "strategy"), (name = "activity"), (name = "rebate"), (name = "credit"),
        (name = "dcc", description = "run-time switches (operator)"),
        (name = "erp", description = "back office (operator)"),
        (name = "campaign", description = "campaigns as documents: export, validate, simulate, apply, versions, rollback (operator)"),
        (name = "operating", description = "health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// `GET /api-docs/openapi.json`: this document, generated from the handlers.
#[utoipa::path(
    get,
    path = "/api-docs/openapi.json",
    tag = "operating",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
async fn openapi_json(
    axum::Extension(doc): axum::Extension<Arc<serde_json::Value>>,
) -> axum::Json<serde_json::Value> {
    axum::Json((*doc).clone())
}

/// Every route with its documentation; the router and the document come from the same
/// list, so they cannot drift.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            BASE,
            strategy::routes()
                .merge(activity::routes())
                .merge(rebate::routes())
                .merge(task::routes())
                .merge(dcc::routes())
                .merge(erp::routes())
                .merge(fairness::routes())
                .merge(campaign::routes()),
        )
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document as served: generated from the handlers, plus the strategy paths
/// served without `strategy/`, with every envelope's `data` nullable (it is `null` on
/// failure; utoipa drops `nullable` on generic fields).
pub fn openapi() -> serde_json::Value {
    let (_, doc) = api().split_for_parts();
    finish_document(doc)
}

fn finish_document(mut doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    for name in strategy::ALIASED {
        let Some(mut item) = doc
            .paths
            .paths
            .get(&format!("{BASE}/strategy/{name}"))
            .cloned()
        else {
            continue;
        };
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            op.operation_id = op.operation_id.as_ref().map(|id| format!("{id}_alias"));
        }
        doc.paths.paths.insert(format!("{BASE}/{name}"), item);
    }
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    if let Some(schemas) = value
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for (name, schema) in schemas.iter_mut() {
            if !name.starts_with("Envelope") {
                continue;
            }
            if let Some(data) = schema.pointer_mut("/properties/data") {
                let inner = data.take();
                *data = serde_json::json!({"anyOf": [{"type": "null"}, inner]});
            }
        }
    }
    value
}

/// The whole API. Paths are matched with and without a trailing slash by the server.
pub fn router(state: AppState, options: &HttpOptions) -> Router {
    let (router, doc) = api().split_for_parts();
    let doc = finish_document(doc);
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .merge(pages::routes())
        .fallback(response::not_found)
        .with_state(state)
        .layer(axum::Extension(Arc::new(doc)))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
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

/// Serves the strategy endpoints also without the `strategy/` segment, as some upstream
/// clones expose them, by rewriting the path before routing.
fn strategy_alias(mut req: Request) -> Request {
    let path = req.uri().path();
    let alias = path
        .strip_prefix(BASE)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|name| strategy::ALIASED.contains(name));
    if let Some(name) = alias {
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        if let Ok(uri) = format!("{BASE}/strategy/{name}{query}").parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Serves `router` on `listener` until `shutdown` resolves, accepting paths with a
/// trailing slash as upstream's Spring mappings do. Peers' addresses reach handlers as
/// `ConnectInfo` (the admin loopback rule).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::ServiceExt;
    use tower::Layer;
    let app = tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash()
        .layer(axum::middleware::map_request(strategy_alias_async).layer(router));
    axum::serve(
        listener,
        ServiceExt::<Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn strategy_alias_async(req: Request) -> Request {
    strategy_alias(req)
}

#[cfg(test)]
mod request_id_tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let req = axum::http::Request::new(());
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| {
                let id = RandomRequestId.make_request_id(&req).expect("an id");
                id.header_value().to_str().expect("ascii").to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let parts: Vec<&str> = id.split('-').collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('4'), "{id}");
            assert!("89ab".contains(&parts[3][..1]), "{id}");
        }
    }
}
