//! Campaigns as documents through `admin/campaign/…`, on the backend `TEST_BACKEND` names:
//! round trips of upstream's sample, the validation catalogue writing nothing, stock
//! changed by its delta, rollback, simulation, and an apply while draws run.

use crate::helpers::{TestApp, by_code, code, concurrently};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Every configuration table's rows (ids and audit times left out), as text.
async fn config_dump(app: &TestApp) -> BTreeMap<&'static str, Vec<Vec<Option<String>>>> {
    let tables: [(&str, &[&str]); 12] = [
        (
            "award",
            &["award_id", "award_key", "award_config", "award_desc"],
        ),
        ("strategy", &["strategy_id", "strategy_desc", "rule_models"]),
        (
            "strategy_award",
            &[
                "strategy_id",
                "award_id",
                "award_title",
                "award_subtitle",
                "award_count",
                "award_count_surplus",
                "award_rate",
                "rule_models",
                "sort",
            ],
        ),
        (
            "strategy_rule",
            &[
                "strategy_id",
                "award_id",
                "rule_type",
                "rule_model",
                "rule_value",
                "rule_desc",
            ],
        ),
        (
            "rule_tree",
            &["tree_id", "tree_name", "tree_desc", "tree_node_rule_key"],
        ),
        (
            "rule_tree_node",
            &["tree_id", "rule_key", "rule_desc", "rule_value"],
        ),
        (
            "rule_tree_node_line",
            &[
                "tree_id",
                "rule_node_from",
                "rule_node_to",
                "rule_limit_type",
                "rule_limit_value",
            ],
        ),
        (
            "raffle_activity",
            &[
                "activity_id",
                "activity_name",
                "activity_desc",
                "begin_date_time",
                "end_date_time",
                "strategy_id",
                "state",
            ],
        ),
        (
            "raffle_activity_count",
            &[
                "activity_count_id",
                "total_count",
                "day_count",
                "month_count",
            ],
        ),
        (
            "raffle_activity_sku",
            &[
                "sku",
                "activity_id",
                "activity_count_id",
                "stock_count",
                "stock_count_surplus",
                "product_amount",
            ],
        ),
        (
            "daily_behavior_rebate",
            &[
                "behavior_type",
                "rebate_desc",
                "rebate_type",
                "rebate_config",
                "state",
            ],
        ),
        (
            "raffle_activity_stage",
            &["channel", "source", "activity_id", "state"],
        ),
    ];
    let mut out = BTreeMap::new();
    for (table, columns) in tables {
        let select = columns
            .iter()
            .map(|c| format!("CAST({c} AS CHAR)"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = app
            .config_query(
                &format!("SELECT {select} FROM {table} ORDER BY id"),
                columns.len(),
            )
            .await;
        out.insert(table, rows);
    }
    out
}

async fn export(app: &TestApp, query: &str) -> Value {
    let v = app.get(&format!("admin/campaign/export?{query}")).await;
    assert_eq!(code(&v), "0000", "{v}");
    v["data"].clone()
}

async fn apply(app: &TestApp, doc: &Value) -> Value {
    app.post("admin/campaign/apply", doc.clone()).await
}

#[tokio::test]
async fn every_sample_campaign_round_trips_to_the_same_document_and_rows() {
    let app = TestApp::spawn().await;
    let list = app.get("admin/campaign/list").await;
    assert_eq!(code(&list), "0000", "{list}");
    let items = list["data"].as_array().unwrap().clone();
    assert_eq!(items.len(), 7, "2 activities, 5 strategies alone: {list}");
    for item in items {
        let query = match item["activityId"].as_i64() {
            Some(a) => format!("activityId={a}"),
            None => format!("strategyId={}", item["strategyId"]),
        };
        let before_rows = config_dump(&app).await;
        let doc = export(&app, &query).await;
        let v = apply(&app, &doc).await;
        assert_eq!(code(&v), "0000", "{query}: {v}");
        assert_eq!(v["data"]["version"], 1, "{v}");
        assert_eq!(v["data"]["summary"], "no change", "{v}");
        assert_eq!(export(&app, &query).await, doc, "{query}: same document");
        assert_eq!(config_dump(&app).await, before_rows, "{query}: same rows");
    }
    let list = app.get("admin/campaign/list").await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["currentVersion"] == 1),
        "{list}"
    );
    // A strategy that has an activity exports as the activity.
    assert_eq!(
        export(&app, "strategyId=100006").await,
        export(&app, "activityId=100301").await
    );
}

/// Edits of 100301's document, one per entry of the validation catalogue, with the path
/// its error must name.
fn catalogue(doc: &Value) -> Vec<(&'static str, Value, String)> {
    let award_index = |id: i64| {
        doc["strategy"]["awards"]
            .as_array()
            .unwrap()
            .iter()
            .position(|a| a["awardId"] == id)
            .unwrap()
    };
    let rule_index = |model: &str| {
        doc["strategy"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["ruleModel"] == model)
            .unwrap()
    };
    let tree_index = |id: &str| {
        doc["strategy"]["ruleTrees"]
            .as_array()
            .unwrap()
            .iter()
            .position(|t| t["treeId"] == id)
            .unwrap()
    };
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        d
    };
    let i104 = award_index(104);
    let weight = rule_index("rule_weight");
    let black = rule_index("rule_blacklist");
    let lock1 = tree_index("tree_lock_1");
    // A copy of tree_lock_1 under a new id used by award 107, to edit freely.
    let with_own_tree = |f: &dyn Fn(&mut Value)| {
        edit(&|d| {
            let mut t = d["strategy"]["ruleTrees"][lock1].clone();
            t["treeId"] = json!("tree_custom");
            f(&mut t);
            let i = award_index(107);
            d["strategy"]["awards"][i]["ruleModels"] = json!("tree_custom");
            d["strategy"]["ruleTrees"][lock1] = t;
        })
    };
    vec![
        (
            "negative rate",
            edit(&|d| d["strategy"]["awards"][i104]["awardRate"] = json!("-0.01")),
            format!("strategy.awards[{i104}].awardRate"),
        ),
        (
            "rate not a number",
            edit(&|d| d["strategy"]["awards"][i104]["awardRate"] = json!("lots")),
            format!("strategy.awards[{i104}].awardRate"),
        ),
        (
            "all rates zero",
            edit(&|d| {
                for a in d["strategy"]["awards"].as_array_mut().unwrap() {
                    a["awardRate"] = json!(0);
                }
            }),
            "strategy.awards".into(),
        ),
        (
            "negative stock",
            edit(&|d| d["strategy"]["awards"][i104]["awardCount"] = json!(-1)),
            format!("strategy.awards[{i104}].awardCount"),
        ),
        (
            "duplicate award id",
            edit(&|d| {
                d["strategy"]["awards"][1]["awardId"] =
                    d["strategy"]["awards"][0]["awardId"].clone()
            }),
            "strategy.awards[1].awardId".into(),
        ),
        (
            "duplicate sort",
            edit(&|d| {
                d["strategy"]["awards"][1]["sort"] = d["strategy"]["awards"][0]["sort"].clone()
            }),
            "strategy.awards[1].sort".into(),
        ),
        (
            "undeliverable award key",
            edit(&|d| {
                d["strategy"]["awards"][i104]["awardId"] = json!(9104);
                d["strategy"]["awards"][i104]["awardKey"] = json!("teleport");
            }),
            format!("strategy.awards[{i104}].awardKey"),
        ),
        (
            "weight group names an award outside the strategy",
            edit(&|d| {
                d["strategy"]["rules"][weight]["weightGroups"][0]["awardIds"][0] = json!(999)
            }),
            format!("strategy.rules[{weight}].weightGroups[0].awardIds[0]"),
        ),
        (
            "luck award not in the award table",
            with_own_tree(&|t| t["nodes"][1]["ruleValue"] = json!("555:1,100")),
            format!("strategy.ruleTrees[{lock1}].nodes[1].ruleValue"),
        ),
        (
            "tree with a cycle",
            with_own_tree(&|t| {
                t["lines"].as_array_mut().unwrap().push(json!({
                    "ruleNodeFrom": "rule_luck_award", "ruleNodeTo": "rule_lock",
                    "ruleLimitType": "EQUAL", "ruleLimitValue": "TAKE_OVER"}))
            }),
            format!("strategy.ruleTrees[{lock1}].lines[3]"),
        ),
        (
            "tree with an unreachable node",
            with_own_tree(&|t| t["lines"][0]["ruleNodeTo"] = json!("rule_luck_award")),
            format!("strategy.ruleTrees[{lock1}].nodes[2]"),
        ),
        (
            "tree line to a missing node",
            with_own_tree(&|t| t["lines"][2]["ruleNodeTo"] = json!("rule_gone")),
            format!("strategy.ruleTrees[{lock1}].lines[2].ruleNodeTo"),
        ),
        (
            "lock threshold not a positive integer",
            with_own_tree(&|t| t["nodes"][0]["ruleValue"] = json!("0")),
            format!("strategy.ruleTrees[{lock1}].nodes[0].ruleValue"),
        ),
        (
            "blacklist without users",
            edit(&|d| d["strategy"]["rules"][black]["blacklist"]["users"] = json!([])),
            format!("strategy.rules[{black}].blacklist.users"),
        ),
        (
            "begin after end",
            edit(&|d| d["activity"]["beginDateTime"] = json!("2099-01-01 00:00:00")),
            "activity.beginDateTime".into(),
        ),
        (
            "SKU whose count row is missing",
            edit(&|d| d["skus"][0]["activityCountId"] = json!(424242)),
            "skus[0].activityCountId".into(),
        ),
        (
            "rebate granting a SKU of another activity",
            edit(&|d| {
                d["rebates"] = json!([{"behaviorType": "sign", "rebateDesc": "x", "rebateType": "sku",
                    "rebateConfig": "9901", "state": "open"}])
            }),
            "rebates[0].rebateConfig".into(),
        ),
        (
            "id out of its column's range",
            edit(&|d| d["strategy"]["awards"][i104]["awardId"] = json!(3_000_000_000i64)),
            format!("strategy.awards[{i104}].awardId"),
        ),
        (
            "string longer than its column",
            edit(&|d| d["activity"]["activityName"] = json!("n".repeat(65))),
            "activity.activityName".into(),
        ),
        (
            "stock below what was granted",
            edit(&|d| d["strategy"]["awards"][award_index(102)]["awardCount"] = json!(84)),
            format!("strategy.awards[{}].awardCount", award_index(102)),
        ),
    ]
}

#[tokio::test]
async fn each_catalogue_error_is_reported_with_its_path_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let doc = export(&app, "activityId=100301").await;
    let before = config_dump(&app).await;
    for (what, bad, path) in catalogue(&doc) {
        let v = app.post("admin/campaign/validate", bad.clone()).await;
        assert_eq!(code(&v), "0000", "{what}: {v}");
        assert_eq!(v["data"]["valid"], false, "{what}: {v}");
        let v = apply(&app, &bad).await;
        assert_eq!(code(&v), "0002", "{what}: {v}");
        let errors = v["data"]["errors"].as_array().expect("data.errors");
        assert!(
            errors.iter().any(|e| e["path"] == path.as_str()),
            "{what}: no error at {path}: {v}"
        );
    }
    assert_eq!(
        config_dump(&app).await,
        before,
        "rejected applies wrote nothing"
    );
    let versions = app.get("admin/campaign/versions?activityId=100301").await;
    assert_eq!(versions["data"], json!([]), "{versions}");
    // The sample document itself is valid (its own defects are warnings).
    let v = app.post("admin/campaign/validate", doc).await;
    assert_eq!(v["data"]["valid"], true, "{v}");
    assert!(!v["data"]["warnings"].as_array().unwrap().is_empty(), "{v}");
}

#[tokio::test]
async fn bad_input_is_0002_with_a_reason() {
    let app = TestApp::spawn().await;
    for (path, body) in [
        ("admin/campaign/apply", ""),
        ("admin/campaign/apply", "{"),
        ("admin/campaign/apply", "[1,2]"),
        (
            "admin/campaign/apply",
            r#"{"strategy": {"strategyId": "x"}}"#,
        ),
        ("admin/campaign/simulate", "{}"),
        (
            "admin/campaign/simulate",
            r#"{"activityId": 100301, "users": 0, "drawsPerUser": 1}"#,
        ),
        (
            "admin/campaign/simulate",
            r#"{"activityId": 100301, "users": 100000, "drawsPerUser": 100000}"#,
        ),
        (
            "admin/campaign/simulate",
            r#"{"document": {}, "users": 1, "drawsPerUser": 1}"#,
        ),
        ("admin/campaign/rollback", r#"{"activityId": 100301}"#),
        (
            "admin/campaign/rollback",
            r#"{"activityId": 100301, "version": 9}"#,
        ),
        (
            "admin/campaign/rollback",
            r#"{"activityId": 1, "version": 1}"#,
        ),
    ] {
        let v = app.post_raw(path, body).await;
        assert_eq!(code(&v), "0002", "{path} {body}: {v}");
        assert!(v["info"].as_str().unwrap().len() > "非法参数".len(), "{v}");
    }
    for query in [
        "",
        "activityId=x",
        "activityId=1&strategyId=2",
        "activityId=424242",
    ] {
        let v = app.get(&format!("admin/campaign/export?{query}")).await;
        assert_eq!(code(&v), "0002", "{query}: {v}");
    }
    let v = app.post_raw("admin/campaign/validate", "{").await;
    assert_eq!(
        (code(&v), &v["data"]["valid"]),
        ("0000", &json!(false)),
        "{v}"
    );
}

fn award_mut(doc: &mut Value, award_id: i64) -> &mut Value {
    doc["strategy"]["awards"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|a| a["awardId"] == award_id)
        .unwrap()
}

#[tokio::test]
async fn stock_changes_by_its_delta_and_rollback_restores_rows_and_odds() {
    let app = TestApp::spawn().await;
    let original = export(&app, "activityId=100301").await;
    let rows_before = config_dump(&app).await;
    let sim = json!({"activityId": 100301, "users": 50, "drawsPerUser": 40, "seed": 9});
    let odds_before = app.post("admin/campaign/simulate", sim.clone()).await;
    assert_eq!(code(&odds_before), "0000", "{odds_before}");
    assert_eq!(apply(&app, &original).await["data"]["version"], 1);

    assert_eq!(app.award_stock(100006, 104).await, (100, 28));
    assert_eq!(app.sku_stock(9011).await, (100000, 99887));
    let mut changed = original.clone();
    award_mut(&mut changed, 104)["awardCount"] = json!(150);
    award_mut(&mut changed, 101)["awardRate"] = json!("0.5000");
    changed["skus"][0]["stockCount"] = json!(99900);
    let v = apply(&app, &changed).await;
    assert_eq!(code(&v), "0000", "{v}");
    assert_eq!(v["data"]["version"], 2);
    let summary = v["data"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("award 104 stock 100 → 150 (+50)"),
        "{summary}"
    );
    assert!(
        summary.contains("SKU 9011 stock 100000 → 99900 (-100)"),
        "{summary}"
    );
    assert_eq!(
        app.award_stock(100006, 104).await,
        (150, 78),
        "left grows by Δ"
    );
    assert_eq!(
        app.sku_stock(9011).await,
        (99900, 99787),
        "left shrinks by Δ"
    );
    assert_eq!(export(&app, "activityId=100301").await, changed);
    let odds_changed = app.post("admin/campaign/simulate", sim.clone()).await;
    assert_ne!(odds_changed["data"], odds_before["data"], "new odds serve");

    let v = app
        .post(
            "admin/campaign/rollback",
            json!({"activityId": 100301, "version": 1}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    assert_eq!(v["data"]["version"], 3);
    assert_eq!(export(&app, "activityId=100301").await, original);
    assert_eq!(config_dump(&app).await, rows_before, "the old rows");
    let odds_after = app.post("admin/campaign/simulate", sim).await;
    assert_eq!(odds_after["data"], odds_before["data"], "the old odds");

    let versions = app.get("admin/campaign/versions?strategyId=100006").await;
    let list = versions["data"].as_array().unwrap();
    assert_eq!(
        list.iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![3, 2, 1],
        "{versions}"
    );
    assert!(
        list[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("rollback to version 1"),
        "{versions}"
    );
    assert_eq!(list[0]["author"], "local");
    assert!(!list[0]["createTime"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn simulate_is_seeded_and_runs_documents_without_storing_them() {
    let app = TestApp::spawn().await;
    let mut doc = export(&app, "activityId=100301").await;
    award_mut(&mut doc, 102)["awardCount"] = json!(1000);
    let body = json!({"document": doc, "users": 30, "drawsPerUser": 100, "seed": 5});
    let a = app.post("admin/campaign/simulate", body.clone()).await;
    assert_eq!(code(&a), "0000", "{a}");
    assert_eq!(a["data"]["draws"], 3000);
    assert_eq!(
        app.post("admin/campaign/simulate", body).await,
        a,
        "same seed, same answer"
    );
    let weight: u64 = a["data"]["awards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["byRule"]["weight"].as_u64().unwrap())
        .sum();
    assert!(
        weight > 0 && weight <= 27 * 2,
        "draws 10 and 70 of 27 users: {a}"
    );
    assert_eq!(
        app.award_stock(100006, 102).await,
        (100, 15),
        "nothing stored"
    );
    let mut bad = doc.clone();
    award_mut(&mut bad, 103)["awardRate"] = json!("x");
    let v = app
        .post(
            "admin/campaign/simulate",
            json!({"document": bad, "users": 1, "drawsPerUser": 1, "seed": 1}),
        )
        .await;
    assert_eq!(code(&v), "0002", "{v}");
    assert!(
        v["data"]["errors"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("awardRate"),
        "{v}"
    );
}

/// A new activity 900300 created by a document: one SKU, award 102 (rate 1, `stock`,
/// tree_luck_award) and the zero-rate luck award 101, from the sample's own award rows.
fn new_campaign(sample: &Value, stock: i64) -> Value {
    let pick = |id: i64| {
        let mut a = sample["strategy"]["awards"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["awardId"] == id)
            .unwrap()
            .clone();
        a["ruleModels"] = json!("tree_luck_award");
        a
    };
    let mut a102 = pick(102);
    a102["awardRate"] = json!("1");
    a102["awardCount"] = json!(stock);
    a102["sort"] = json!(1);
    let mut a101 = pick(101);
    a101["awardRate"] = json!("0");
    a101["awardCount"] = json!(0);
    a101["sort"] = json!(2);
    let tree = sample["strategy"]["ruleTrees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["treeId"] == "tree_luck_award")
        .unwrap()
        .clone();
    json!({
        "activity": {"activityId": 900300, "activityName": "campaign test", "activityDesc": "test",
            "beginDateTime": "2020-01-01 00:00:00", "endDateTime": "2099-01-01 00:00:00", "state": "open"},
        "counts": [{"activityCountId": 990300, "totalCount": 10, "dayCount": 10, "monthCount": 10}],
        "skus": [{"sku": 990300, "activityCountId": 990300, "productAmount": "1.00", "stockCount": 10000}],
        "strategy": {"strategyId": 900300, "strategyDesc": "campaign test", "ruleModels": null,
            "awards": [a102, a101], "ruleTrees": [tree]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_while_64_draws_run_conserves_stock_exactly() {
    let app = TestApp::spawn().await;
    let sample = export(&app, "activityId=100301").await;
    let doc = new_campaign(&sample, 40);
    let v = apply(&app, &doc).await;
    assert_eq!(code(&v), "0000", "{v}");
    assert_eq!(v["data"]["version"], 1);
    for i in 0..64 {
        let r = app
            .post(
                "activity/sku_recharge",
                json!({"userId": format!("c{i}"), "sku": 990300, "outBusinessNo": format!("c{i}")}),
            )
            .await;
        assert_eq!(code(&r), "0000", "{r}");
    }
    let bodies: Vec<Value> = (0..64)
        .map(|i| json!({"userId": format!("c{i}"), "activityId": 900300}))
        .collect();
    // Raise 102's stock by 30 while the draws run, then lower it by 10.
    let mut raised = doc.clone();
    award_mut(&mut raised, 102)["awardCount"] = json!(70);
    let mut lowered = doc.clone();
    award_mut(&mut lowered, 102)["awardCount"] = json!(60);
    let draws = concurrently(&app, "activity/draw", bodies.clone());
    let applies = async {
        let a = apply(&app, &raised).await;
        let b = apply(&app, &lowered).await;
        (a, b)
    };
    let (first, (a, b)) = tokio::join!(draws, applies);
    assert_eq!(code(&a), "0000", "{a}");
    let second = concurrently(&app, "activity/draw", bodies).await;
    let results: Vec<Value> = first.into_iter().chain(second).collect();
    assert_eq!(
        by_code(&results),
        BTreeMap::from([("0000".into(), 128)]),
        "no draw fails because of an apply"
    );
    let granted = app
        .count_rows(
            "user_award_record",
            "strategy_id = 900300 AND award_id = 102",
        )
        .await;
    let (total, left) = app.award_stock(900300, 102).await;
    // Lowering by 10 is refused only if fewer than 10 were left at that moment.
    let expected_total = if code(&b) == "0000" { 60 } else { 70 };
    assert_eq!(total, expected_total, "{b}");
    assert_eq!(granted + left, total, "granted + left = stock");
    let wins = results
        .iter()
        .filter(|v| v["data"]["awardId"] == 102)
        .count() as i64;
    assert_eq!(wins, granted);
}
