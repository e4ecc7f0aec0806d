use big_market::config::Config;
use big_market::{Application, Seams, Services};
use big_market_domain::time::FixedClock;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: big_market_adapters::sqlite::SqliteStore,
    pub award: Arc<big_market_domain::award::AwardService>,
    /// The broker, when the test configured `amqp_url`.
    pub amqp: Option<big_market_adapters::amqp::AmqpBus>,
    pub rebate: Arc<big_market_domain::rebate::RebateService>,
    pub activity: Arc<big_market_domain::activity::ActivityService>,
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        addr: "127.0.0.1:0".into(),
        data_dir: dir.to_owned(),
        // Debug builds on a busy 2-core machine: deadline tests set their own.
        draw_timeout_ms: 10_000,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        Self::spawn_in(dir).await
    }

    /// Starts a server with adjusted configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let app = Application::build(config).await.expect("app builds");
        Self::start(app, dir)
    }

    /// Starts a server whose clock only moves when the test moves it.
    pub async fn spawn_at(now: &str) -> (Self, Arc<FixedClock>) {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let clock = Arc::new(FixedClock::new(zoned(now)));
        let app = Application::build_with_clock(test_config(dir.path()), clock.clone())
            .await
            .expect("app builds");
        (Self::start(app, dir), clock)
    }

    /// Starts a server with a fixed clock, adjusted configuration and test doubles.
    #[allow(dead_code)]
    pub async fn spawn_custom(
        now: &str,
        adjust: impl FnOnce(&mut Config),
        seams: Seams,
    ) -> (Self, Arc<FixedClock>) {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let clock = Arc::new(FixedClock::new(zoned(now)));
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let app = Application::build_with(config, clock.clone(), seams)
            .await
            .expect("app builds");
        (Self::start(app, dir), clock)
    }

    /// Restarts on an existing data dir with adjusted configuration.
    #[allow(dead_code)]
    pub async fn spawn_in_with(
        dir: Arc<tempfile::TempDir>,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let app = Application::build(config).await.expect("app builds");
        Self::start(app, dir)
    }

    /// Starts a server on an existing data dir (a restart).
    pub async fn spawn_in(dir: Arc<tempfile::TempDir>) -> Self {
        let app = Application::build(test_config(dir.path()))
            .await
            .expect("app builds");
        Self::start(app, dir)
    }

    fn start(app: Application, dir: Arc<tempfile::TempDir>) -> Self {
        let port = app.port();
        let store = app
            .services
            .store
            .sqlite()
            .expect("the API tests run on the embedded store")
            .clone();
        let (award, rebate, activity) = (
            app.services.award.clone(),
            app.services.rebate.clone(),
            app.services.activity.clone(),
        );
        let amqp = app.services.amqp.as_ref().map(|(bus, _)| bus.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            store,
            award,
            amqp,
            rebate,
            activity,
            dir,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Deletes the queues of a test's broker prefix.
    #[allow(dead_code)]
    pub async fn delete_amqp_queues(&self) {
        use big_market_domain::task::{RetryPolicy, topic};
        let Some(bus) = &self.amqp else { return };
        let policy = big_market_adapters::amqp::ConsumerPolicy::from(&RetryPolicy {
            max_attempts: Config::default().outbox_max_attempts,
            ..RetryPolicy::default()
        });
        for t in [
            topic::SEND_AWARD,
            topic::SEND_REBATE,
            topic::CREDIT_ADJUST_SUCCESS,
        ] {
            bus.delete_topic(t, &policy).await.expect("queues deleted");
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        self.dir.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/raffle/{path}", self.base)
    }

    /// POSTs a raw body; asserts HTTP 200 and returns the envelope.
    pub async fn post_raw(&self, path: &str, body: &str) -> Value {
        let resp = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        envelope(resp).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.post_raw(path, &body.to_string()).await
    }

    pub async fn get(&self, path_and_query: &str) -> Value {
        let resp = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request sent");
        envelope(resp).await
    }

    /// Runs SQL against the store (test setup only).
    pub async fn sql(&self, sql: &str) {
        let sql = sql.to_owned();
        self.store
            .write(move |conn| Ok(conn.execute_batch(&sql)?))
            .await
            .expect("sql runs");
    }
}

/// Checks the envelope's shape: HTTP 200, a string code, a non-null info.
pub async fn envelope(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "HTTP status");
    let v: Value = resp.json().await.expect("JSON envelope");
    assert!(v["code"].is_string(), "code: {v}");
    assert!(v["info"].is_string(), "info must never be null: {v}");
    v
}

pub fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// Builds services without a server (for restart checks).
#[allow(dead_code)]
pub async fn services(dir: &Path) -> Services {
    let zone = jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone");
    Services::build(
        &test_config(dir),
        Arc::new(big_market_domain::time::SystemClock::new(zone)),
    )
    .await
    .expect("services")
}

/// A local time in Asia/Shanghai, `yyyy-MM-dd HH:mm:ss`.
pub fn zoned(local: &str) -> jiff::Zoned {
    big_market_domain::time::parse_datetime(local)
        .expect("datetime")
        .in_tz("Asia/Shanghai")
        .expect("zone")
}

/// Runs `n` copies of a request concurrently and returns every envelope.
pub async fn concurrently(app: &TestApp, path: &str, bodies: Vec<Value>) -> Vec<Value> {
    let mut tasks = Vec::new();
    for body in bodies {
        let client = app.client.clone();
        let url = app.url(path);
        tasks.push(tokio::spawn(async move {
            let resp = client.post(url).json(&body).send().await.expect("sent");
            envelope(resp).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// Counts envelopes by code.
pub fn by_code(results: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for v in results {
        *m.entry(code(v).to_owned()).or_default() += 1;
    }
    m
}

impl TestApp {
    /// One integer from SQL.
    pub async fn count(&self, sql: &'static str) -> i64 {
        self.store
            .read(move |conn| Ok(conn.query_row(sql, [], |r| r.get(0))?))
            .await
            .expect("query")
    }
}

/// Polls `check` until it holds or 10 s pass (asynchronous delivery through the outbox).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
