//! The web pages as files (compression, validators, headers) and the endpoints added for
//! them: a user's award records, award stock, strategy list and the odds audit.

use crate::helpers::{TestApp, code, eventually};
use serde_json::{Value, json};

#[tokio::test]
async fn pages_are_served_compressed_with_validators() {
    let app = TestApp::spawn().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/activity/100301", "text/html"),
        ("/admin", "text/html"),
        ("/admin/", "text/html"),
        ("/assets/player.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let plain = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        let h = plain.headers().clone();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        assert!(h.get("content-encoding").is_none(), "{path}");
        let etag = h["etag"].to_str().unwrap().to_owned();
        let body = plain.bytes().await.unwrap();
        assert!(body.len() > 100, "{path}");

        // A client that accepts gzip gets it (reqwest here has no decoder: raw bytes).
        let zipped = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(zipped.headers()["vary"], "Accept-Encoding");
        let gz_etag = zipped.headers()["etag"].to_str().unwrap().to_owned();
        assert_ne!(gz_etag, etag);
        let gz = zipped.bytes().await.unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "{path}: gzip magic");
        assert!(gz.len() < body.len(), "{path}");

        // Revalidation: 304 without a body.
        let again = app
            .client
            .get(format!("{}{path}", app.base))
            .header("if-none-match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let page = app.client.get(&app.base).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"zh-CN\""), "Chinese by default");
    assert!(html.contains("/assets/player.js"), "{html}");
    // An unknown file is a 404, and the API's unknown paths keep their envelope.
    let missing = app
        .client
        .get(format!("{}/assets/nothing.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let v: Value = app
        .client
        .get(format!("{}/api/v1/raffle/nothing", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(code(&v), "0002");
}

#[tokio::test]
async fn player_page_first_load_is_under_100_kb_gzip() {
    let app = TestApp::spawn().await;
    let mut total = 0;
    for path in [
        "/",
        "/assets/style.css",
        "/assets/api.js",
        "/assets/i18n.js",
        "/assets/player.js",
        "/favicon.ico",
    ] {
        let resp = app
            .client
            .get(format!("{}{path}", app.base))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        total += resp.bytes().await.unwrap().len();
    }
    assert_eq!(
        total,
        big_market_http::pages::player_first_load_gzip_bytes()
    );
    assert!(total < 100_000, "{total} bytes");
}

#[tokio::test]
async fn a_users_award_records_newest_first_with_their_delivery_state() {
    let app = TestApp::spawn().await;
    let body = json!({"userId": "rec1", "activityId": 100301});
    let v = app
        .post("activity/query_user_award_record_list", body.clone())
        .await;
    assert_eq!((code(&v), &v["data"]), ("0000", &json!([])), "{v}");
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": "rec1", "sku": 9013, "outBusinessNo": "rec-1"}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let mut drawn = Vec::new();
    for _ in 0..3 {
        let v = app.post("activity/draw", body.clone()).await;
        assert_eq!(code(&v), "0000", "{v}");
        drawn.push(v["data"]["awardId"].as_i64().unwrap());
    }
    // Another user's and another activity's records are not listed.
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": "rec2", "sku": 9013, "outBusinessNo": "rec-2"}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let v = app
        .post(
            "activity/draw",
            json!({"userId": "rec2", "activityId": 100301}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");

    let records = || async {
        let v = app
            .post("activity/query_user_award_record_list", body.clone())
            .await;
        v["data"].as_array().cloned().unwrap_or_default()
    };
    eventually("every award delivered or noted", || async {
        let list = records().await;
        list.len() == 3
            && list
                .iter()
                .all(|r| r["awardState"] == "completed" || !r["deliveryNote"].is_null())
    })
    .await;
    let list = records().await;
    let mut ids: Vec<i64> = list
        .iter()
        .map(|r| r["awardId"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    drawn.sort_unstable();
    assert_eq!(ids, drawn);
    let times: Vec<&str> = list
        .iter()
        .map(|r| r["awardTime"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    for r in &list {
        assert_eq!(r["orderId"].as_str().unwrap().len(), 12, "{r}");
        assert!(!r["awardTitle"].as_str().unwrap().is_empty(), "{r}");
        // Points are credited; other sample awards have no distributor and say why.
        match r["awardId"].as_i64().unwrap() {
            101 => assert_eq!(r["awardState"], "completed", "{r}"),
            _ => assert!(r["deliveryNote"].as_str().is_some(), "{r}"),
        }
    }
    let other = app
        .post(
            "activity/query_user_award_record_list",
            json!({"userId": "rec1", "activityId": 100401}),
        )
        .await;
    assert_eq!(other["data"], json!([]), "{other}");
    for bad in [
        json!({"activityId": 100301}),
        json!({"userId": "rec1"}),
        json!({"userId": " ", "activityId": 100301}),
        json!({"userId": "rec1", "activityId": "x"}),
    ] {
        let v = app.post("activity/query_user_award_record_list", bad).await;
        assert_eq!(code(&v), "0002", "{v}");
    }
    let v = app
        .post(
            "activity/query_user_award_record_list_by_token",
            json!({"activityId": 100301}),
        )
        .await;
    assert_eq!(
        code(&v),
        "0001",
        "token endpoints are off without jwt_secret: {v}"
    );
}

#[tokio::test]
async fn operators_see_strategies_stock_and_audited_odds() {
    let app = TestApp::spawn().await;
    let v = app.get("erp/query_strategy_list").await;
    let list = v["data"].as_array().unwrap_or_else(|| panic!("{v}"));
    let s = list
        .iter()
        .find(|s| s["strategyId"] == 100006)
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(s["activityId"], 100301);
    assert_eq!(s["awards"], 8);
    assert_eq!(s["weightGroups"], 3, "{s}");

    let v = app
        .get("erp/query_strategy_award_stock?strategyId=100006")
        .await;
    let awards = v["data"].as_array().unwrap_or_else(|| panic!("{v}"));
    let lamp = awards.iter().find(|a| a["awardId"] == 104).unwrap();
    assert_eq!(
        (&lamp["awardTitle"], &lamp["awardCount"], &lamp["awardRate"]),
        (&json!("小米台灯"), &json!(100), &json!("0.0300"))
    );
    let left = lamp["awardCountSurplus"].as_i64().unwrap();
    assert_eq!(left, app.award_stock(100006, 104).await.1, "{lamp}");
    let sorts: Vec<i64> = awards.iter().map(|a| a["sort"].as_i64().unwrap()).collect();
    assert!(sorts.windows(2).all(|w| w[0] <= w[1]), "{sorts:?}");

    let v = app
        .get("erp/audit_strategy?strategyId=100001&samples=20000")
        .await;
    let tables = v["data"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(tables[0]["key"], "100001");
    assert_eq!(tables[0]["samples"], 20000);
    let awards = tables[0]["awards"].as_array().unwrap();
    let expected: f64 = awards
        .iter()
        .map(|a| a["expectedProbability"].as_f64().unwrap())
        .sum();
    assert!((expected - 1.0).abs() < 1e-9, "{expected}");
    let observed: u64 = awards.iter().map(|a| a["observed"].as_u64().unwrap()).sum();
    assert_eq!(observed, 20000);
    assert!(
        awards
            .iter()
            .all(|a| a["awardTitle"].as_str().is_some_and(|t| !t.is_empty()))
    );
    for bad in [
        "erp/audit_strategy?strategyId=100001&samples=0",
        "erp/audit_strategy?strategyId=100001&samples=2000000",
        "erp/audit_strategy",
        "erp/query_strategy_award_stock?strategyId=31337",
    ] {
        assert_eq!(code(&app.get(bad).await), "0002", "{bad}");
    }
    assert_eq!(
        code(&app.get("erp/audit_strategy?strategyId=31337").await),
        "ERR_BIZ_002"
    );
}

#[tokio::test]
async fn operators_look_a_user_up_orders_and_points_ledger() {
    let app = TestApp::spawn().await;
    let v = app.get("erp/query_user_detail?userId=nobody").await;
    assert_eq!(
        v["data"],
        json!({"userId": "nobody", "raffleOrders": [], "creditOrders": []}),
        "{v}"
    );
    assert_eq!(code(&app.get("erp/query_user_detail").await), "0002");
    assert_eq!(
        code(&app.get("erp/query_user_detail?userId=%20").await),
        "0002"
    );
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": "lk", "sku": 9013, "outBusinessNo": "lk-1"}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let mut orders = Vec::new();
    for _ in 0..2 {
        let v = app
            .post(
                "activity/draw",
                json!({"userId": "lk", "activityId": 100301}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
    }
    let v = app
        .post("activity/calendar_sign_rebate?userId=lk", json!({}))
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    // The sign-in credits 10 points through the outbox.
    eventually("the sign-in's points in the ledger", || async {
        let v = app.get("erp/query_user_detail?userId=lk").await;
        v["data"]["creditOrders"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["tradeAmount"] == json!(10.0)))
    })
    .await;
    let v = app.get("erp/query_user_detail?userId=lk").await;
    for o in v["data"]["raffleOrders"].as_array().unwrap() {
        assert_eq!(o["userId"], "lk", "{o}");
        assert_eq!(o["activityId"], 100301, "{o}");
        orders.push(o["orderId"].as_str().unwrap().to_owned());
    }
    assert_eq!(orders.len(), 2, "{v}");
    let records = app
        .post(
            "activity/query_user_award_record_list",
            json!({"userId": "lk", "activityId": 100301}),
        )
        .await;
    let mut from_records: Vec<String> = records["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["orderId"].as_str().unwrap().to_owned())
        .collect();
    from_records.sort();
    orders.sort();
    assert_eq!(orders, from_records, "one award record per raffle order");
    let ledger = v["data"]["creditOrders"].as_array().unwrap();
    assert!(ledger.iter().all(|c| c["tradeType"] == "forward"), "{v}");
}
