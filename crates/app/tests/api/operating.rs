//! Operating the service: switches, guards, deadlines, auth, metrics, readiness, ERP.

use crate::helpers::{TestApp, code, envelope};
use async_trait::async_trait;
use big_market::Seams;
use big_market_domain::Result;
use big_market_domain::activity::quota::DrawOutcome;
use big_market_domain::activity::service::{AccountRows, DrawJob, RechargeJob};
use big_market_domain::activity::{
    ActivityConfig, ActivityRepository, RaffleActivityCount, RaffleActivityOrder,
    RaffleActivitySku, RaffleActivityStage,
};
use big_market_domain::task::Task;
use big_market_domain::time::{CalendarKeys, Clock};
use hmac::{Hmac, Mac};
use jwt::SignWithKey;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

const NOW: &str = "2026-03-01 10:00:00";

async fn recharge(app: &TestApp, user: &str, key: &str) {
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": user, "sku": 9013, "outBusinessNo": key}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
}

async fn draw(app: &TestApp, user: &str) -> Value {
    app.post(
        "activity/draw",
        json!({"userId": user, "activityId": 100301}),
    )
    .await
}

async fn total_surplus(app: &TestApp, user: &str) -> i64 {
    let v = app
        .post(
            "activity/query_user_activity_account",
            json!({"userId": user, "activityId": 100301}),
        )
        .await;
    v["data"]["totalCountSurplus"].as_i64().expect("surplus")
}

async fn set(app: &TestApp, key: &str, value: &str) -> Value {
    app.get(&format!("dcc/update_config?key={key}&value={value}"))
        .await
}

#[tokio::test]
async fn switches_flip_without_restart_and_survive_it() {
    let app = TestApp::spawn().await;
    let v = app.get("dcc/query_config").await;
    assert_eq!(
        v["data"],
        json!({"degradeSwitch": "close", "rateLimiterSwitch": "close"})
    );
    let v = set(&app, "degradeSwitch", "open").await;
    assert_eq!((code(&v), &v["data"]), ("0000", &Value::Null), "{v}");
    // Degraded: 0004 at once, even for a user without any quota (no store was asked).
    let v = draw(&app, "nobody").await;
    assert_eq!(code(&v), "0004", "{v}");
    assert_eq!(app.count_rows("user_raffle_order", "").await, 0);
    for bad in [
        "dcc/update_config?key=blackListSwitch&value=open",
        "dcc/update_config?key=degradeSwitch&value=maybe",
        "dcc/update_config?key=degradeSwitch",
    ] {
        let v = app.get(bad).await;
        assert_eq!(code(&v), "0002", "{bad}: {v}");
        assert!(v["info"].as_str().unwrap().len() > "非法参数".len(), "{v}");
    }
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir).await;
    assert_eq!(
        code(&draw(&app, "nobody").await),
        "0004",
        "kept across restart"
    );
    assert_eq!(code(&set(&app, "degradeSwitch", "close").await), "0000");
    recharge(&app, "u1", "k1").await;
    let v = draw(&app, "u1").await;
    assert_eq!(code(&v), "0000", "switched back without restart: {v}");
}

#[tokio::test]
async fn a_fast_drawer_is_limited_then_blocked_for_the_window_others_are_not() {
    let (app, clock) = TestApp::spawn_custom(
        NOW,
        |c| c.guards.rate_limit_block_secs = 60,
        Seams::default(),
    )
    .await;
    // Each node counts its own draws (as upstream's per-node limiter); the block list is shared.
    app.one_node();
    for user in ["fast", "calm"] {
        recharge(&app, user, &format!("{user}-1")).await;
    }
    // Closed switch: no limit.
    assert_eq!(code(&draw(&app, "fast").await), "0000");
    assert_eq!(code(&draw(&app, "fast").await), "0000");
    assert_eq!(code(&set(&app, "rateLimiterSwitch", "open").await), "0000");
    clock.set(crate::helpers::zoned("2026-03-01 10:00:05"));
    assert_eq!(code(&draw(&app, "fast").await), "0000");
    // The clock stands still: the second draw in the same second is refused, then the
    // user is rejected more than once and blocked.
    assert_eq!(code(&draw(&app, "fast").await), "0005");
    assert_eq!(code(&draw(&app, "fast").await), "0005");
    assert_eq!(code(&draw(&app, "calm").await), "0000", "others unaffected");
    clock.set(crate::helpers::zoned("2026-03-01 10:00:20"));
    let v = draw(&app, "fast").await;
    assert_eq!(
        code(&v),
        "0005",
        "still blocked after the limiter refilled: {v}"
    );
    assert_eq!(
        total_surplus(&app, "fast").await,
        2,
        "refusals take no quota"
    );
    clock.set(crate::helpers::zoned("2026-03-01 10:01:30"));
    assert_eq!(code(&draw(&app, "fast").await), "0000", "window over");
}

/// The real store behind a delay before each draw's transaction is handed over, as when
/// the writer is backed up. Counts the draws that reached it.
struct SlowDraws {
    inner: Arc<dyn ActivityRepository>,
    delay_ms: Arc<AtomicU64>,
    draws: Arc<AtomicUsize>,
}

#[async_trait]
impl ActivityRepository for SlowDraws {
    async fn activity_ids(&self) -> Result<Vec<i64>> {
        self.inner.activity_ids().await
    }
    async fn activity_config(&self, activity_id: i64) -> Result<Option<ActivityConfig>> {
        self.inner.activity_config(activity_id).await
    }
    async fn activity_of_sku(&self, sku: i64) -> Result<Option<i64>> {
        self.inner.activity_of_sku(sku).await
    }
    async fn recharge(&self, job: RechargeJob) -> Result<RaffleActivityOrder> {
        self.inner.recharge(job).await
    }
    async fn draw(&self, job: DrawJob) -> Result<DrawOutcome> {
        self.draws.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.inner.draw(job).await
    }
    async fn exchange(
        &self,
        job: RechargeJob,
        timestamp_ms: i64,
    ) -> Result<(RaffleActivityOrder, Task)> {
        self.inner.exchange(job, timestamp_ms).await
    }
    async fn deliver_paid_order(
        &self,
        user_id: &str,
        out_business_no: &str,
        keys: &CalendarKeys,
    ) -> Result<bool> {
        self.inner
            .deliver_paid_order(user_id, out_business_no, keys)
            .await
    }
    async fn account_rows(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<AccountRows> {
        self.inner.account_rows(user_id, activity_id, keys).await
    }
    async fn sku_products(
        &self,
        activity_id: i64,
    ) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>> {
        self.inner.sku_products(activity_id).await
    }
    async fn stages(&self) -> Result<Vec<RaffleActivityStage>> {
        self.inner.stages().await
    }
    async fn has_order(&self, user_id: &str, sku: i64, out_business_no: &str) -> Result<bool> {
        self.inner.has_order(user_id, sku, out_business_no).await
    }
}

#[tokio::test]
async fn a_slow_store_answers_0006_opens_the_breaker_and_recovers() {
    let delay_ms = Arc::new(AtomicU64::new(0));
    let draws = Arc::new(AtomicUsize::new(0));
    let (d, n) = (delay_ms.clone(), draws.clone());
    let seams = Seams {
        activity_repository: Some(Arc::new(move |inner| {
            Arc::new(SlowDraws {
                inner,
                delay_ms: d.clone(),
                draws: n.clone(),
            }) as Arc<dyn ActivityRepository>
        })),
    };
    let (app, clock) = TestApp::spawn_custom(
        NOW,
        |c| {
            c.guards.draw_timeout_ms = 100;
            c.guards.breaker_failure_threshold = 2;
            c.guards.breaker_cooldown_ms = 5_000;
        },
        seams,
    )
    .await;
    // The breaker is each node's own.
    app.one_node();
    recharge(&app, "u1", "k1").await;
    // The store would take 2 s; the answer comes at the 100 ms deadline, not after it.
    delay_ms.store(2_000, Ordering::SeqCst);
    for _ in 0..2 {
        let asked = std::time::Instant::now();
        let v = draw(&app, "u1").await;
        assert_eq!(code(&v), "0006", "{v}");
        assert!(
            asked.elapsed() < Duration::from_millis(1_500),
            "0006 is answered at the deadline, not when the slow store gets to it"
        );
    }
    assert_eq!(
        total_surplus(&app, "u1").await,
        5,
        "a draw answered 0006 took nothing"
    );
    // The breaker is open: the store is not asked at all.
    let v = draw(&app, "u1").await;
    assert_eq!(code(&v), "0006", "{v}");
    assert_eq!(draws.load(Ordering::SeqCst), 2);
    // The store recovers; after the cool-down one probe goes through and closes it.
    delay_ms.store(0, Ordering::SeqCst);
    clock.set(crate::helpers::zoned("2026-03-01 10:00:06"));
    assert_eq!(code(&draw(&app, "u1").await), "0000");
    assert_eq!(code(&draw(&app, "u1").await), "0000");
    assert_eq!(total_surplus(&app, "u1").await, 3);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("big_market_draw_breaker_open 0"),
        "{metrics}"
    );
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut req = app.client.request(method, app.url(path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    envelope(req.send().await.expect("sent")).await
}

#[tokio::test]
async fn operator_endpoints_need_the_configured_admin_token() {
    let app = TestApp::spawn_with(|c| {
        c.http.admin_token = Some(big_market::config::Secret("adm-s3cret".into()));
    })
    .await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let calls: Vec<(reqwest::Method, &str, Option<Value>)> = vec![
        (get.clone(), "activity/armory?activityId=999", None),
        (get.clone(), "strategy/strategy_armory?strategyId=999", None),
        (
            post.clone(),
            "activity/sku_recharge",
            Some(json!({"userId": "a1", "sku": 9013, "outBusinessNo": "adm-1"})),
        ),
        (get.clone(), "dcc/query_config", None),
        (
            get.clone(),
            "dcc/update_config?key=degradeSwitch&value=close",
            None,
        ),
        (get.clone(), "erp/query_user_raffle_order", None),
        (get.clone(), "erp/query_raffle_activity_stage_list", None),
        (get.clone(), "erp/query_undelivered_award_list", None),
        (get.clone(), "erp/query_parked_task_list", None),
        (
            post.clone(),
            "erp/update_stage_activity_2_active",
            Some(json!({"id": 1})),
        ),
        (get.clone(), "admin/campaign/list", None),
        (get.clone(), "admin/campaign/export?activityId=100301", None),
        (
            get.clone(),
            "admin/campaign/versions?activityId=100301",
            None,
        ),
        (post.clone(), "admin/campaign/validate", Some(json!({}))),
        (
            post.clone(),
            "admin/campaign/simulate",
            Some(json!({"activityId": 100301, "users": 2, "drawsPerUser": 2, "seed": 1})),
        ),
    ];
    for (method, path, body) in calls {
        let v = send(&app, method.clone(), path, None, body.clone()).await;
        assert_eq!(code(&v), "0008", "{path} without a token: {v}");
        assert!(v["info"].as_str().unwrap().contains("Bearer"), "{v}");
        let v = send(
            &app,
            method.clone(),
            path,
            Some("Bearer wrong"),
            body.clone(),
        )
        .await;
        assert_eq!(code(&v), "0008", "{path} with a wrong token: {v}");
        let v = send(&app, method, path, Some("Bearer adm-s3cret"), body).await;
        if path.contains("=999") {
            // Past the token check: the operator is told what is wrong.
            assert_eq!(code(&v), "0002", "{path} with the token: {v}");
            assert!(v["info"].as_str().unwrap().contains("999"), "{v}");
        } else {
            assert_eq!(code(&v), "0000", "{path} with the token: {v}");
        }
    }
    // A campaign applied with the token is recorded as the admin's.
    let doc = send(
        &app,
        get.clone(),
        "admin/campaign/export?strategyId=100001",
        Some("Bearer adm-s3cret"),
        None,
    )
    .await["data"]
        .clone();
    let v = send(
        &app,
        post.clone(),
        "admin/campaign/apply",
        None,
        Some(doc.clone()),
    )
    .await;
    assert_eq!(code(&v), "0008", "apply without a token: {v}");
    let v = send(
        &app,
        post.clone(),
        "admin/campaign/apply",
        Some("Bearer adm-s3cret"),
        Some(doc),
    )
    .await;
    assert_eq!(code(&v), "0000", "{v}");
    let v = send(
        &app,
        get.clone(),
        "admin/campaign/versions?strategyId=100001",
        Some("Bearer adm-s3cret"),
        None,
    )
    .await;
    assert_eq!(v["data"][0]["author"], "admin", "{v}");
    // User endpoints stay open.
    let v = send(
        &app,
        post,
        "activity/query_user_activity_account",
        None,
        Some(json!({"userId": "a1", "activityId": 100301})),
    )
    .await;
    assert_eq!(code(&v), "0000", "{v}");
}

const SECRET: &str = "B*B^D%fe";

fn token(secret: &str, claims: Value) -> String {
    let key: Hmac<Sha256> = Hmac::new_from_slice(secret.as_bytes()).unwrap();
    let claims: std::collections::BTreeMap<String, Value> = serde_json::from_value(claims).unwrap();
    claims.sign_with_key(&key).unwrap()
}

/// Every `*_by_token` endpoint with a body that works for a user with quota.
fn token_calls() -> Vec<(&'static str, Option<Value>)> {
    vec![
        (
            "activity/draw_by_token",
            Some(json!({"activityId": 100301})),
        ),
        ("activity/calendar_sign_rebate_by_token", None),
        ("activity/is_calendar_sign_rebate_by_token", None),
        (
            "activity/query_user_activity_account_by_token",
            Some(json!({"activityId": 100301})),
        ),
        ("activity/query_user_credit_account_by_token", None),
        (
            "activity/credit_pay_exchange_sku_by_token",
            Some(json!({"sku": 9014})),
        ),
        (
            "strategy/query_raffle_award_list_by_token",
            Some(json!({"activityId": 100301})),
        ),
        (
            "strategy/query_raffle_strategy_rule_weight_by_token",
            Some(json!({"activityId": 100301})),
        ),
    ]
}

#[tokio::test]
async fn user_tokens_name_the_user_on_every_by_token_endpoint() {
    let (app, clock) = TestApp::spawn_custom(
        NOW,
        |c| c.http.jwt_secret = Some(big_market::config::Secret(SECRET.into())),
        Seams::default(),
    )
    .await;
    let now = clock.now().timestamp().as_second();
    let user = "oxfA9w8-23yvwTmo2ombz0E4zJv4";
    recharge(&app, user, "tok-1").await;
    // Credits to pay for SKU 9014 (5.00).
    app.user_sql("user_credit_account", Some(user), |t| {
        format!(
            "INSERT INTO {t} (user_id, total_amount, available_amount, account_status) VALUES ('{user}', '100.00', '100.00', 'open')"
        )
    })
    .await;
    let good = token(
        SECRET,
        json!({"openId": user, "sub": "chatgpt", "iat": now, "exp": now + 3600}),
    );
    for (path, body) in token_calls() {
        for (i, auth) in [good.clone(), format!("Bearer {good}")].iter().enumerate() {
            let v = send(&app, reqwest::Method::POST, path, Some(auth), body.clone()).await;
            if i == 1 && path == "activity/calendar_sign_rebate_by_token" {
                // Accepted, and the same user: the second sign-in today is a duplicate.
                assert!(
                    v["info"].as_str().unwrap().starts_with("唯一索引冲突"),
                    "{v}"
                );
            } else {
                assert_eq!(code(&v), "0000", "{path}: {v}");
            }
            if path == "activity/credit_pay_exchange_sku_by_token" {
                // The payment is delivered before the next exchange (an unpaid order
                // would be reused, and its credit trade is already made).
                crate::helpers::eventually("payment delivered", || async {
                    app.count_rows(
                        "raffle_activity_order",
                        &format!("user_id = '{user}' AND state = 'wait_pay'"),
                    )
                    .await
                        == 0
                })
                .await;
            }
        }
    }
    // The token's user drew and signed in: the account and sign-in show it.
    let v = app
        .post(
            "activity/query_user_activity_account",
            json!({"userId": user, "activityId": 100301}),
        )
        .await;
    let used = v["data"]["totalCount"].as_i64().unwrap()
        - v["data"]["totalCountSurplus"].as_i64().unwrap();
    assert_eq!(used, 2, "two draws by token: {v}");
    let v = app
        .post_raw(
            &format!("activity/is_calendar_sign_rebate?userId={user}"),
            "",
        )
        .await;
    assert_eq!(v["data"], json!(true), "{v}");

    let bad = [
        token("another secret", json!({"openId": user})),
        token(SECRET, json!({"openId": user, "exp": now - 1})),
        token(SECRET, json!({"openId": user, "nbf": now + 600})),
        token(SECRET, json!({"sub": "no openId"})),
        "not-a-jwt".to_owned(),
    ];
    for (path, body) in token_calls() {
        for auth in bad.iter().map(String::as_str).chain([""]) {
            let v = send(&app, reqwest::Method::POST, path, Some(auth), body.clone()).await;
            assert_eq!(
                (code(&v), v["info"].as_str().unwrap()),
                ("0003", "登录权限拦截"),
                "{path} with {auth:?}: {v}"
            );
        }
        let v = send(&app, reqwest::Method::POST, path, None, body.clone()).await;
        assert_eq!(v["info"], "登录权限拦截", "{path} without a header: {v}");
    }
}

#[tokio::test]
async fn token_endpoints_without_a_secret_say_so() {
    let app = TestApp::spawn().await;
    let t = token(SECRET, json!({"openId": "u"}));
    let v = send(
        &app,
        reqwest::Method::POST,
        "activity/is_calendar_sign_rebate_by_token",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(code(&v), "0001", "{v}");
    assert!(v["info"].as_str().unwrap().contains("jwt_secret"), "{v}");
}

#[tokio::test]
async fn metrics_show_requests_draws_outbox_and_store_after_traffic() {
    let app = TestApp::spawn().await;
    // `/metrics` counts the node's own requests.
    app.one_node();
    recharge(&app, "m1", "m-1").await;
    let v = draw(&app, "m1").await;
    assert_eq!(code(&v), "0000", "{v}");
    let award = v["data"]["awardId"].as_i64().unwrap();
    assert_eq!(
        code(&app.post("activity/draw", json!({"userId": "m1"})).await),
        "0002"
    );
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for series in [
        r#"big_market_http_requests_total{code="0000",endpoint="/api/v1/raffle/activity/draw",method="POST"} 1"#,
        r#"big_market_http_requests_total{code="0002",endpoint="/api/v1/raffle/activity/draw",method="POST"} 1"#,
        r#"big_market_http_request_duration_seconds_bucket{code="0000",endpoint="/api/v1/raffle/activity/draw""#,
        &format!(r#"big_market_draws_total{{activity_id="100301",award_id="{award}"}} 1"#),
        "big_market_outbox_tasks{state=",
        "big_market_outbox_oldest_pending_seconds ",
        "big_market_store_writer_queue ",
        "big_market_store_idle_read_connections ",
        "big_market_draw_breaker_open 0",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
}

#[tokio::test]
async fn ready_reports_a_closed_store_as_unavailable() {
    let app = TestApp::spawn().await;
    let ready = |app: &TestApp| {
        let (client, url) = (app.client.clone(), format!("{}/ready", app.base));
        async move { client.get(url).send().await.expect("sent") }
    };
    let resp = ready(&app).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["data"], "ready");
    let health = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");

    app.close_store().await;
    // The writer stops after the no-op that woke it; until then readiness may still pass.
    crate::helpers::eventually("the writer to stop", || {
        let r = ready(&app);
        async move { r.await.status() == 503 }
    })
    .await;
    let v: Value = ready(&app).await.json().await.unwrap();
    assert_eq!(code(&v), "0001", "{v}");
}

#[tokio::test]
async fn erp_lists_orders_and_stages_and_activates_a_stage() {
    let app = TestApp::spawn().await;
    recharge(&app, "e1", "e-1").await;
    for _ in 0..3 {
        assert_eq!(code(&draw(&app, "e1").await), "0000");
    }
    let v = app.get("erp/query_user_raffle_order?limit=2").await;
    let orders = v["data"].as_array().expect("list");
    assert_eq!(orders.len(), 2, "{v}");
    assert_eq!(orders[0]["userId"], "e1");
    assert_eq!(orders[0]["activityId"], 100301);
    assert_eq!(orders[0]["orderState"], "used");
    assert!(
        orders[0]["orderTime"].as_str().unwrap().contains('T'),
        "{v}"
    );
    assert_eq!(
        code(&app.get("erp/query_user_raffle_order?limit=0").await),
        "0002"
    );

    app.config_sql(
        "INSERT INTO raffle_activity_stage (id, channel, source, activity_id, state) VALUES (2, 'c02', 's02', 100301, 'create')",
    )
    .await;
    let v = app.get("erp/query_raffle_activity_stage_list").await;
    assert_eq!(v["data"][0]["id"], 2, "newest first: {v}");
    assert_eq!(v["data"][0]["state"], "create");
    let v = app
        .get("activity/query_stage_activity_id?channel=c02&source=s02")
        .await;
    assert_eq!(v["data"], Value::Null);

    let v = app
        .post("erp/update_stage_activity_2_active", json!({"id": 2}))
        .await;
    assert_eq!((code(&v), &v["data"]), ("0000", &json!(true)), "{v}");
    let v = app
        .get("activity/query_stage_activity_id?channel=c02&source=s02")
        .await;
    assert_eq!(v["data"], 100301);

    let v = app
        .post("erp/update_stage_activity_2_active", json!({"id": 999}))
        .await;
    assert_eq!(code(&v), "0002", "{v}");
    assert!(v["info"].as_str().unwrap().contains("999"), "{v}");
}

#[tokio::test]
async fn without_a_token_a_web_page_on_the_host_gets_no_operator_rights() {
    // No admin token: loopback scripts may operate, a browser page (also loopback) not.
    let app = TestApp::spawn().await;
    // One node: the checks are on one request to one node (its switches are read back there).
    app.one_node();
    let url = app.url("dcc/update_config?key=degradeSwitch&value=open");
    let script = app.client.get(&url).send().await.unwrap();
    assert_eq!(code(&script.json::<Value>().await.unwrap()), "0000");
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let page = app
            .client
            .get(&url)
            .header(name, value)
            .send()
            .await
            .unwrap();
        let v: Value = page.json().await.unwrap();
        assert_eq!(code(&v), "0008", "{name}: {v}");
    }
    let v = app.get("dcc/query_config").await;
    assert_eq!(
        v["data"]["degradeSwitch"], "open",
        "only the script's change"
    );
}

async fn award_titles(app: &TestApp) -> Vec<String> {
    let v = app
        .post(
            "strategy/query_raffle_award_list",
            json!({"userId": "t1", "activityId": 100301}),
        )
        .await;
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|a| a["awardTitle"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn armory_answers_anyone_when_assembled_and_only_an_operator_reloads() {
    let app = TestApp::spawn_with(|c| {
        c.http.admin_token = Some(big_market::config::Secret("adm-s3cret".into()));
    })
    .await;
    let get = reqwest::Method::GET;
    app.config_sql(
        "UPDATE strategy_award SET award_title = '新台灯' WHERE strategy_id = 100006 AND award_id = 104",
    )
    .await;
    // Upstream's front end calls these from the browser before its first draw.
    for path in [
        "activity/armory?activityId=100301",
        "strategy/strategy_armory?strategyId=100006",
        "strategy_armory?strategyId=100006",
    ] {
        let v = send(&app, get.clone(), path, None, None).await;
        assert_eq!(
            (code(&v), &v["data"]),
            ("0000", &json!(true)),
            "{path}: {v}"
        );
        let v = send(&app, get.clone(), path, Some("Bearer wrong"), None).await;
        assert_eq!(code(&v), "0000", "{path}: {v}");
    }
    let titles = award_titles(&app).await;
    assert!(
        titles.contains(&"小米台灯".to_owned()),
        "nothing reloaded: {titles:?}"
    );
    // Not assembled: the operator refusal, whatever the id.
    let v = send(
        &app,
        get.clone(),
        "activity/armory?activityId=424242",
        None,
        None,
    )
    .await;
    assert_eq!(code(&v), "0008", "{v}");
    // A bad id is still a bad id.
    let v = send(
        &app,
        get.clone(),
        "activity/armory?activityId=x",
        None,
        None,
    )
    .await;
    assert_eq!(code(&v), "0002", "{v}");
    // The operator's call reloads.
    let v = send(
        &app,
        get,
        "activity/armory?activityId=100301",
        Some("Bearer adm-s3cret"),
        None,
    )
    .await;
    assert_eq!(code(&v), "0000", "{v}");
    app.settle_config("activity/armory").await;
    let titles = award_titles(&app).await;
    assert!(
        titles.contains(&"新台灯".to_owned()),
        "reloaded: {titles:?}"
    );
}

#[tokio::test]
async fn the_console_opened_at_a_loopback_address_may_operate_without_a_token() {
    let app = TestApp::spawn().await;
    // The console is opened on the first node (its origin); its switches are read back there.
    app.one_node();
    let url = app.url("dcc/update_config?key=rateLimiterSwitch&value=open");
    let host = app.base.trim_start_matches("http://").to_owned();
    // What Chromium sends for a same-origin fetch of the console at 127.0.0.1.
    let v: Value = app
        .client
        .get(&url)
        .header("origin", app.base.clone())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code(&v), "0000", "{v}");
    // The same request through a name rebound to 127.0.0.1 is another site's page.
    let port = host.rsplit(':').next().unwrap();
    let v: Value = app
        .client
        .get(app.url("dcc/update_config?key=rateLimiterSwitch&value=close"))
        .header("host", format!("rebound.example:{port}"))
        .header("origin", format!("http://rebound.example:{port}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code(&v), "0008", "{v}");
    let v = app.get("dcc/query_config").await;
    assert_eq!(v["data"]["rateLimiterSwitch"], "open", "{v}");
}

/// Named operator tokens: each works as the admin token does, and the campaign versions
/// record which operator applied them.
#[tokio::test]
async fn a_named_operator_token_is_recorded_as_the_author() {
    let app = TestApp::spawn_with(|c| {
        c.http.admin_token = Some(big_market::config::Secret("adm-s3cret".into()));
        c.http.admin_tokens.insert(
            "alice".into(),
            big_market::config::Secret("alice-s3cret".into()),
        );
    })
    .await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let exported = send(
        &app,
        get.clone(),
        "admin/campaign/export?activityId=100301",
        Some("Bearer alice-s3cret"),
        None,
    )
    .await;
    assert_eq!(exported["code"], "0000", "{exported}");
    let mut doc = exported["data"].clone();
    doc["activity"]["activityDesc"] = json!("applied by alice");
    let wrong = send(
        &app,
        post.clone(),
        "admin/campaign/apply",
        Some("Bearer mallory"),
        Some(doc.clone()),
    )
    .await;
    assert_eq!(wrong["code"], "0008", "{wrong}");
    let applied = send(
        &app,
        post.clone(),
        "admin/campaign/apply",
        Some("Bearer alice-s3cret"),
        Some(doc.clone()),
    )
    .await;
    assert_eq!(applied["code"], "0000", "{applied}");
    doc["activity"]["activityDesc"] = json!("applied by admin");
    let applied = send(
        &app,
        post,
        "admin/campaign/apply",
        Some("Bearer adm-s3cret"),
        Some(doc),
    )
    .await;
    assert_eq!(applied["code"], "0000", "{applied}");
    let versions = send(
        &app,
        get,
        "admin/campaign/versions?activityId=100301",
        Some("Bearer alice-s3cret"),
        None,
    )
    .await;
    let authors: Vec<&str> = versions["data"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["author"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(authors, vec!["admin", "alice"], "{versions}");
}
