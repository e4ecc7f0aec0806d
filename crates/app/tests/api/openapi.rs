//! The OpenAPI document and the router come from the same list of handlers; these tests
//! check the served document against the routes the server answers.

use crate::helpers::TestApp;
use serde_json::Value;

async fn document(app: &TestApp) -> Value {
    let resp = app
        .client
        .get(format!("{}/api-docs/openapi.json", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("JSON document")
}

/// Every documented operation is served (never the fallback), and every path the
/// server answers is documented, so the two cannot drift.
#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let url = format!("{}{path}", app.base);
            let req = match method {
                "get" => app.client.get(url),
                _ => app.client.post(url).body("{}"),
            };
            let resp = req.send().await.expect("sent");
            assert_ne!(
                resp.status(),
                404,
                "{method} {path} is documented but not served"
            );
            assert_ne!(
                resp.status(),
                405,
                "{method} {path} is documented but not served"
            );
        }
    }
    assert!(operations >= 38, "{operations} operations");
    // Paths the server must answer (upstream's endpoints, ours and the operating ones)
    // are all in the document.
    for path in [
        "/api/v1/raffle/strategy/strategy_armory",
        "/api/v1/raffle/strategy/query_raffle_award_list",
        "/api/v1/raffle/strategy/query_raffle_award_list_by_token",
        "/api/v1/raffle/strategy/query_raffle_strategy_rule_weight",
        "/api/v1/raffle/strategy/random_raffle",
        "/api/v1/raffle/random_raffle",
        "/api/v1/raffle/activity/armory",
        "/api/v1/raffle/activity/draw",
        "/api/v1/raffle/activity/draw_by_token",
        "/api/v1/raffle/activity/calendar_sign_rebate",
        "/api/v1/raffle/activity/calendar_sign_rebate_by_token",
        "/api/v1/raffle/activity/is_calendar_sign_rebate",
        "/api/v1/raffle/activity/is_calendar_sign_rebate_by_token",
        "/api/v1/raffle/activity/query_user_activity_account",
        "/api/v1/raffle/activity/query_user_activity_account_by_token",
        "/api/v1/raffle/activity/query_sku_product_list_by_activity_id",
        "/api/v1/raffle/activity/query_user_credit_account",
        "/api/v1/raffle/activity/query_user_credit_account_by_token",
        "/api/v1/raffle/activity/credit_pay_exchange_sku",
        "/api/v1/raffle/activity/credit_pay_exchange_sku_by_token",
        "/api/v1/raffle/activity/query_stage_activity_id",
        "/api/v1/raffle/activity/query_award_odds",
        "/api/v1/raffle/activity/query_fairness",
        "/api/v1/raffle/activity/verify_draw",
        "/api/v1/raffle/admin/fairness/enable",
        "/api/v1/raffle/admin/fairness/rotate",
        "/api/v1/raffle/activity/sku_recharge",
        "/api/v1/raffle/activity/behavior_rebate",
        "/api/v1/raffle/erp/query_user_raffle_order",
        "/api/v1/raffle/erp/query_strategy_list",
        "/api/v1/raffle/erp/query_strategy_award_stock",
        "/api/v1/raffle/erp/audit_strategy",
        "/api/v1/raffle/erp/query_user_detail",
        "/api/v1/raffle/activity/query_user_award_record_list",
        "/api/v1/raffle/activity/query_user_award_record_list_by_token",
        "/api/v1/raffle/erp/query_raffle_activity_stage_list",
        "/api/v1/raffle/erp/update_stage_activity_2_active",
        "/api/v1/raffle/erp/query_undelivered_award_list",
        "/api/v1/raffle/erp/query_parked_task_list",
        "/api/v1/raffle/erp/requeue_task",
        "/api/v1/raffle/erp/redeliver_award",
        "/api/v1/raffle/dcc/update_config",
        "/api/v1/raffle/dcc/query_config",
        "/health",
        "/ready",
        "/metrics",
        "/api-docs/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    // And a path that is not documented is not served.
    let resp = app
        .client
        .get(format!(
            "{}/api/v1/raffle/activity/no_such_endpoint",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn envelopes_are_described_with_their_data_types() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let draw = &doc["paths"]["/api/v1/raffle/activity/draw"]["post"];
    let schema = draw["responses"]["200"]["content"]["application/json"]["schema"].to_string();
    assert!(schema.contains("Envelope"), "{schema}");
    let text = doc.to_string();
    for name in [
        "DrawResponse",
        "AccountResponse",
        "SkuProductResponse",
        "UserActivityRequest",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
}
