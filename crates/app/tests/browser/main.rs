#![cfg(feature = "browser-tests")]
//! The player page and the operator console in a real browser: Debian's Chromium,
//! headless, driven by `playwright-core` (Node) against the real server on a random
//! port. Asked for with `cargo test -p big-market --features browser-tests --test
//! browser` (`.ci/run` does); they fail, never skip, when Chromium, Node or the test
//! directory's `node_modules` (`npm ci` in `crates/app/tests/browser`) are missing.
//!
//! Each scenario is a Node script in this directory that prints `ok - <step>` lines and
//! exits non-zero on the first failure. Screenshots go to the target directory, and to
//! `docs/screenshots` as well when `UPDATE_SCREENSHOTS=1`.

use big_market::Application;
use big_market::config::{Config, Secret};
use big_market_domain::time::SystemClock;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

const ADMIN_TOKEN: &str = "browser-admin-token";
const JWT_SECRET: &str = "browser-jwt-secret";

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Chromium, Node and the Node modules, or a failure naming what is missing.
fn tools() -> (PathBuf, PathBuf) {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "Chromium is missing at {}: install Debian's package (apt-get install -y chromium) or set CHROMIUM",
        chromium.display()
    );
    let node = std::env::var_os("NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("node"));
    let version = Command::new(&node).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "Node is missing ({}): install Node 20 or later, or set NODE",
        node.display()
    );
    let modules = here().join("node_modules/playwright-core");
    assert!(
        modules.join("package.json").exists(),
        "{} is missing: run `npm ci` in {}",
        modules.display(),
        here().display()
    );
    (chromium, node)
}

/// A fake of the external account service (`openai_use_count` prizes): answers with the
/// code in `answer`, which a scenario changes through `POST /control?code=`.
async fn account_service() -> String {
    use axum::extract::Query;
    use axum::routing::post;
    use std::collections::HashMap;
    let answer = Arc::new(Mutex::new("0001".to_owned()));
    let (a1, a2) = (answer.clone(), answer);
    let app = axum::Router::new()
        .route(
            "/api/v1/account/adjust_quota",
            post(move || {
                let code = a1.lock().unwrap().clone();
                async move {
                    axum::Json(serde_json::json!({"code": code, "info": "fake", "data": {"totalQuota": 1, "surplusQuota": 1}}))
                }
            }),
        )
        .route(
            "/control",
            post(move |Query(q): Query<HashMap<String, String>>| {
                if let Some(code) = q.get("code") {
                    *a2.lock().unwrap() = code.clone();
                }
                async { "ok" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

struct Server {
    base: String,
    account: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let account = account_service().await;
        let mut config = Config::default();
        config.http.addr = "127.0.0.1:0".into();
        config.embedded.data_dir = dir.path().to_owned();
        config.guards.draw_timeout_ms = 10_000;
        config.http.admin_token = Some(Secret(ADMIN_TOKEN.into()));
        config.http.jwt_secret = Some(Secret(JWT_SECRET.into()));
        config.openai.api_host = Some(account.clone());
        config.openai.timeout_ms = 500;
        config.outbox.interval_secs = 1;
        config.outbox.retry_base_secs = 1;
        config.outbox.stale_secs = 3;
        config.outbox.max_attempts = 1;
        let zone = jiff::tz::TimeZone::get(&config.time_zone).expect("zone");
        let app = Application::build_with_clock(config, Arc::new(SystemClock::new(zone)))
            .await
            .expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            base,
            account,
            stop: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

/// One browser at a time: the machine's cores are few and Chromium is heavy.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `script` against a fresh server; fails with the script's output.
async fn scenario(script: &str) {
    let (chromium, node) = tools();
    let _one = BROWSER.lock().await;
    let server = Server::start().await;
    let mut shots = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")];
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        shots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots"));
    }
    let shots = std::env::join_paths(&shots).expect("screenshot dirs");
    let mut cmd = Command::new(node);
    cmd.arg(here().join(script))
        .current_dir(here())
        .env("BASE_URL", &server.base)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("JWT_SECRET", JWT_SECRET)
        .env("ACCOUNT_SERVICE", &server.account)
        .env("CHROMIUM", chromium)
        .env("SCREENSHOT_DIRS", shots);
    let output = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("node runs")
        .expect("node starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    server.stop().await;
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("ok - "), "{script} ran no step:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_page() {
    scenario("player.mjs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_console() {
    scenario("console.mjs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_in_the_console() {
    scenario("campaign.mjs").await;
}
