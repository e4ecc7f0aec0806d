use crate::helpers::{TestApp, code};
use serde_json::json;

async fn strategy_rows(app: &TestApp) -> i64 {
    app.config_i64("SELECT COUNT(*) FROM strategy").await
}

#[tokio::test]
async fn restart_keeps_data_and_loads_the_sample_once() {
    let app = TestApp::spawn().await;
    assert_eq!(strategy_rows(&app).await, 7);
    app.set_award_stock(100006, 102, 5).await;
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir).await;
    assert_eq!(strategy_rows(&app).await, 7, "sample not loaded twice");
    assert_eq!(app.award_stock(100006, 102).await, (5, 5), "data kept");
    let v = app
        .post("strategy/random_raffle", json!({"strategyId": 100001}))
        .await;
    assert_eq!(code(&v), "0000", "strategies assembled at start-up: {v}");
}

#[tokio::test]
async fn ended_sample_activity_is_moved_ten_years_out() {
    let app = TestApp::spawn().await;
    let end = app
        .config_text(
            "end_date_time",
            "raffle_activity WHERE activity_id = 100401",
        )
        .await;
    // Upstream ends 100401 on 2026-10-06; a passed end moves ten years out.
    let now = jiff::Zoned::now().datetime();
    let end = big_market_domain::time::parse_datetime(&end).unwrap();
    assert!(end > now, "sample activity is open today: {end}");
    assert_eq!((end.month(), end.day(), end.hour()), (10, 6, 12));
}
