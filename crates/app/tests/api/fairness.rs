//! Published odds (and, below, provably fair draws).

use crate::helpers::{TestApp, code};
use big_market_domain::sample::SampleData;
use rust_decimal::Decimal;
use serde_json::Value;

/// `weight / total == rate / rate_sum`, exactly.
fn same_fraction(weight: &Value, total: &Value, rate: Decimal, rate_sum: Decimal) -> bool {
    let w = Decimal::from(weight.as_u64().expect("weight"));
    let t = Decimal::from(total.as_u64().expect("totalWeight"));
    w * rate_sum == rate * t
}

/// Every sample activity publishes its strategy's rates, normalised, as exact integer
/// weights summing to `totalWeight`; groups as configured; a sold-out award is flagged.
#[tokio::test]
async fn published_odds_are_the_configured_rates_of_every_sample_activity() {
    let app = TestApp::spawn().await;
    let data = SampleData::upstream();
    let mut checked = 0;
    for activity in &data.activities {
        let strategy_id = activity.strategy_id;
        let v = app
            .get(&format!(
                "activity/query_award_odds?activityId={}",
                activity.activity_id
            ))
            .await;
        assert_eq!(code(&v), "0000", "{v}");
        let odds = &v["data"];
        assert_eq!(odds["strategyId"].as_i64(), Some(strategy_id));
        let configured: Vec<_> = data
            .strategy_awards
            .iter()
            .filter(|a| a.strategy_id == strategy_id)
            .collect();
        let rate_sum: Decimal = configured.iter().map(|a| a.award_rate).sum();
        let awards = odds["awards"].as_array().expect("awards");
        assert_eq!(awards.len(), configured.len(), "{odds}");
        let sum: u64 = awards.iter().map(|a| a["weight"].as_u64().unwrap()).sum();
        assert_eq!(Some(sum), odds["totalWeight"].as_u64(), "{odds}");
        for a in awards {
            let id = a["awardId"].as_i64().unwrap();
            let rate = configured
                .iter()
                .find(|c| i64::from(c.award_id) == id)
                .expect("published award is configured")
                .award_rate;
            assert!(
                same_fraction(&a["weight"], &odds["totalWeight"], rate, rate_sum),
                "activity {} award {id}: {a}",
                activity.activity_id
            );
        }
        for g in odds["weightGroups"].as_array().expect("groups") {
            let members = g["awards"].as_array().unwrap();
            let sum: u64 = members.iter().map(|a| a["weight"].as_u64().unwrap()).sum();
            assert_eq!(Some(sum), g["totalWeight"].as_u64());
            let rate = |id: i64| {
                configured
                    .iter()
                    .find(|c| i64::from(c.award_id) == id)
                    .unwrap()
                    .award_rate
            };
            let group_sum: Decimal = members
                .iter()
                .map(|a| rate(a["awardId"].as_i64().unwrap()))
                .sum();
            for a in members {
                let r = rate(a["awardId"].as_i64().unwrap());
                assert!(same_fraction(&a["weight"], &g["totalWeight"], r, group_sum));
            }
        }
        checked += 1;
    }
    assert!(checked >= 2);

    // 100301 (strategy 100006): groups and rule awards published; emptying 102's stock
    // makes it sold out, with the luck award named.
    let v = app.get("activity/query_award_odds?activityId=100301").await;
    assert_eq!(v["data"]["weightGroups"].as_array().unwrap().len(), 3);
    let luck = v["data"]["ruleAwards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["awardId"] == 101)
        .cloned()
        .expect("luck award published");
    assert!(luck["reasons"].to_string().contains("sold_out"), "{luck}");
    app.set_award_stock(100006, 102, 0).await;
    let v = app.get("activity/query_award_odds?activityId=100301").await;
    let a102 = v["data"]["awards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["awardId"] == 102)
        .cloned()
        .unwrap();
    assert_eq!(a102["soldOut"], true, "{a102}");
    assert_eq!(a102["soldOutAwardId"], 101, "{a102}");
}

#[tokio::test]
async fn odds_of_a_missing_or_malformed_activity_are_refused_with_a_code() {
    let app = TestApp::spawn().await;
    for (query, expected) in [
        ("activity/query_award_odds", "0002"),
        ("activity/query_award_odds?activityId=abc", "0002"),
        ("activity/query_award_odds?activityId=999999", "ERR_BIZ_002"),
    ] {
        let v = app.get(query).await;
        assert_eq!(code(&v), expected, "{query}: {v}");
        assert!(!v["info"].as_str().unwrap().is_empty());
    }
}
