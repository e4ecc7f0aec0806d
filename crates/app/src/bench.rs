//! `big-market bench`: a load generator for `POST activity/draw` over HTTP.
//!
//! It recharges many distinct users first (one SKU recharge each through the additive
//! `sku_recharge` endpoint), then keeps `connections` requests in flight, cycling through
//! the users, and reports draws/s, latency percentiles and every non-`0000` code.

use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Base URL of the service, e.g. `http://127.0.0.1:8091`.
    pub url: String,
    pub connections: usize,
    pub users: usize,
    pub activity_id: i64,
    pub sku: i64,
    /// Stop after this many draws…
    pub draws: u64,
    /// …or after this long, whichever comes first.
    pub duration: Duration,
}

#[derive(Debug)]
pub struct BenchReport {
    pub draws: u64,
    pub elapsed: Duration,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub errors: u64,
    pub codes: BTreeMap<String, u64>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "draws      {}", self.draws)?;
        writeln!(f, "elapsed    {:.2?}", self.elapsed)?;
        writeln!(f, "draws/s    {:.0}", self.per_second)?;
        writeln!(f, "p50        {:.2?}", self.p50)?;
        writeln!(f, "p99        {:.2?}", self.p99)?;
        writeln!(f, "max        {:.2?}", self.max)?;
        writeln!(f, "errors     {}", self.errors)?;
        write!(f, "codes      {:?}", self.codes)
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let resp = client.post(url).json(body).send().await?;
    anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
    Ok(resp.json().await?)
}

/// Runs `n` jobs with at most `c` in flight.
async fn fan_out<F, Fut>(n: usize, c: usize, job: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let job = Arc::new(job);
    let mut workers = Vec::new();
    for _ in 0..c {
        let (next, job) = (next.clone(), job.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                job(i).await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

pub async fn run(options: BenchOptions) -> anyhow::Result<BenchReport> {
    // Armory and recharge are operator endpoints: send the admin token when one is set.
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("BIG_MARKET_ADMIN_TOKEN") {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .context("BIG_MARKET_ADMIN_TOKEN is not a valid header value")?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(options.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = options.url.trim_end_matches('/').to_owned();
    let run_id: u32 = rand::random();
    let users: Arc<Vec<String>> = Arc::new(
        (0..options.users)
            .map(|i| format!("bench-{run_id:08x}-{i}"))
            .collect(),
    );

    eprintln!(
        "recharging {} users with sku {} …",
        options.users, options.sku
    );
    let armory = client
        .get(format!(
            "{base}/api/v1/raffle/activity/armory?activityId={}",
            options.activity_id
        ))
        .send()
        .await
        .context("is the service running?")?
        .json::<Value>()
        .await?;
    anyhow::ensure!(armory["code"] == "0000", "armory failed: {armory}");
    {
        let (client, users, url, sku) = (
            client.clone(),
            users.clone(),
            format!("{base}/api/v1/raffle/activity/sku_recharge"),
            options.sku,
        );
        fan_out(options.users, options.connections, move |i| {
            let (client, users, url) = (client.clone(), users.clone(), url.clone());
            async move {
                let body = json!({"userId": users[i], "sku": sku, "outBusinessNo": format!("{}-r", users[i])});
                let v = post(&client, &url, &body).await?;
                anyhow::ensure!(v["code"] == "0000", "recharge failed: {v}");
                Ok(())
            }
        })
        .await?;
    }

    eprintln!(
        "drawing: {} connections, up to {} draws or {:?} …",
        options.connections, options.draws, options.duration
    );
    let url = format!("{base}/api/v1/raffle/activity/draw");
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + options.duration;
    let mut workers = Vec::new();
    for _ in 0..options.connections {
        let (client, users, url, next) = (client.clone(), users.clone(), url.clone(), next.clone());
        let (draws, activity_id) = (options.draws, options.activity_id);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut codes: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= draws || Instant::now() >= deadline {
                    break;
                }
                let user = &users[(i % users.len() as u64) as usize];
                let body = json!({"userId": user, "activityId": activity_id});
                let t = Instant::now();
                let code = match post(&client, &url, &body).await {
                    Ok(v) => v["code"].as_str().unwrap_or("?").to_owned(),
                    Err(e) => format!("transport: {e}"),
                };
                latencies.push(t.elapsed());
                *codes.entry(code).or_default() += 1;
            }
            (latencies, codes)
        }));
    }
    let mut latencies = Vec::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for w in workers {
        let (l, c) = w.await?;
        latencies.extend(l);
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let draws = latencies.len() as u64;
    Ok(BenchReport {
        draws,
        elapsed,
        per_second: draws as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        errors: codes
            .iter()
            .filter(|(k, _)| *k != "0000")
            .map(|(_, v)| v)
            .sum(),
        codes,
    })
}
