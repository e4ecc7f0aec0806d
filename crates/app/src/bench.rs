//! `big-market bench`: a load generator for `POST activity/draw` over HTTP.
//!
//! It recharges many distinct users first (one SKU recharge each through the additive
//! `sku_recharge` endpoint), then keeps `connections` requests in flight, cycling through
//! the users, and reports draws/s, latency percentiles and every non-`0000` code. Given
//! several nodes of one deployment, it spreads the connections over them in turn (a load
//! balancer's round robin), so 1, 2 and 3 nodes are measured the same way.

use anyhow::Context;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Base URLs of the service's nodes, e.g. `http://127.0.0.1:8091`: connection *i*
    /// goes to node *i* mod their number; set-up goes through the first.
    pub urls: Vec<String>,
    pub connections: usize,
    pub users: usize,
    pub activity_id: i64,
    pub sku: i64,
    /// Stop after this many draws…
    pub draws: u64,
    /// …or after this long, whichever comes first.
    pub duration: Duration,
    /// Measure `GET /health` for this long at the same connections just before the draws,
    /// and report draws/s as a fraction of it: the HTTP stack alone is the yardstick that
    /// makes runs on different machines and days comparable.
    pub baseline: Option<Duration>,
    /// Processes whose CPU time and resident memory are reported per draw (the server,
    /// MariaDB, Redis, RabbitMQ…), read from `/proc`.
    pub pids: Vec<u32>,
    /// After the load, wait up to this long for the outbox to deliver every task.
    pub drain: Duration,
}

/// Requests and their latencies over one phase of a run.
#[derive(Debug, Default)]
pub struct Phase {
    pub requests: u64,
    pub elapsed: Duration,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Answers other than the phase's success, by code.
    pub errors: u64,
    pub codes: BTreeMap<String, u64>,
}

/// One watched process over the draws.
#[derive(Debug)]
pub struct ProcessUse {
    pub pid: u32,
    pub name: String,
    pub cpu: Duration,
    /// Highest resident set sampled during the draws.
    pub max_rss_kib: u64,
    /// Bytes the process caused to be written to storage during the draws
    /// (`/proc/PID/io` `write_bytes`; `None` where the kernel does not say).
    pub written: Option<u64>,
}

#[derive(Debug)]
pub struct BenchReport {
    /// `GET /health` at the same connections, when asked for.
    pub baseline: Option<Phase>,
    pub processes: Vec<ProcessUse>,
    /// How long the outbox took to have no task left to deliver after the load; `None`
    /// when tasks were still waiting at the end of the drain window (or `/metrics` could
    /// not be read), with the count left.
    pub drained: Result<Duration, String>,
    /// The store's group commits over the draws (from `/metrics`), when it reports them.
    pub groups: Option<GroupFigures>,
    pub draws: u64,
    pub elapsed: Duration,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub errors: u64,
    pub codes: BTreeMap<String, u64>,
}

/// How the store grouped the draws' transactions (differences of its counters).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct GroupFigures {
    pub groups: i64,
    pub grouped: i64,
    pub regrouped: i64,
    pub slow: i64,
}

impl GroupFigures {
    fn since(self, before: Self) -> Self {
        Self {
            groups: self.groups - before.groups,
            grouped: self.grouped - before.grouped,
            regrouped: self.regrouped - before.regrouped,
            slow: self.slow - before.slow,
        }
    }
}

impl BenchReport {
    /// Draws answered `0000` per second: refusals (`0006` past the deadline…) are fast
    /// answers, not draws.
    pub fn ok_per_second(&self) -> f64 {
        let ok = self.codes.get("0000").copied().unwrap_or(0);
        ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(b) = &self.baseline {
            writeln!(
                f,
                "baseline   GET /health {:.0} req/s, p50 {:.2?}, p99 {:.2?}, errors {}",
                b.per_second, b.p50, b.p99, b.errors
            )?;
        }
        writeln!(f, "draws      {}", self.draws)?;
        writeln!(f, "elapsed    {:.2?}", self.elapsed)?;
        writeln!(f, "draws/s    {:.0}", self.per_second)?;
        writeln!(
            f,
            "0000/s     {:.0} (draws answered 0000)",
            self.ok_per_second()
        )?;
        writeln!(f, "p50        {:.2?}", self.p50)?;
        writeln!(f, "p99        {:.2?}", self.p99)?;
        writeln!(f, "max        {:.2?}", self.max)?;
        writeln!(f, "errors     {}", self.errors)?;
        write!(f, "codes      {:?}", self.codes)?;
        if let Some(b) = &self.baseline {
            write!(
                f,
                "\nratio      {:.3} (0000 draws/s ÷ baseline req/s)",
                self.ok_per_second() / b.per_second
            )?;
        }
        for p in &self.processes {
            let per_draw = p.cpu.as_secs_f64() * 1e3 / (self.draws.max(1) as f64);
            write!(
                f,
                "\nprocess    {} ({}): CPU {:.2?} = {:.3} ms per draw, max RSS {} MiB",
                p.name,
                p.pid,
                p.cpu,
                per_draw,
                p.max_rss_kib / 1024
            )?;
            if let Some(w) = p.written {
                write!(
                    f,
                    ", wrote {} MiB = {:.1} KiB per draw",
                    w >> 20,
                    w as f64 / 1024.0 / (self.draws.max(1) as f64)
                )?;
            }
        }
        if let Some(g) = &self.groups {
            write!(
                f,
                "\ngroups     {} commits of {:.1} transactions on average, {} run again alone, {} slow (over 50 ms)",
                g.groups,
                g.grouped as f64 / g.groups.max(1) as f64,
                g.regrouped,
                g.slow
            )?;
        }
        match &self.drained {
            Ok(d) => write!(
                f,
                "\noutbox     every task delivered {d:.1?} after the load"
            ),
            Err(e) => write!(f, "\noutbox     {e}"),
        }
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
    anyhow::ensure!(!options.urls.is_empty(), "give at least one --url");
    let mut bases = Vec::new();
    let mut addrs = Vec::new();
    for u in &options.urls {
        let base = u.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base).with_context(|| format!("--url {u}"))?;
        anyhow::ensure!(
            url.scheme() == "http",
            "--url must be http://host:port, not {u}"
        );
        addrs.push(format!(
            "{}:{}",
            url.host_str()
                .with_context(|| format!("--url {u} has no host"))?,
            url.port_or_known_default().unwrap_or(80)
        ));
        bases.push(base);
    }
    let base = bases[0].clone();
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
    // Every node warms its own caches, as a deployment's start-up does.
    for other in &bases[1..] {
        let v = client
            .get(format!(
                "{other}/api/v1/raffle/activity/armory?activityId={}",
                options.activity_id
            ))
            .send()
            .await
            .with_context(|| format!("is the node at {other} running?"))?
            .json::<Value>()
            .await?;
        anyhow::ensure!(v["code"] == "0000", "armory on {other} failed: {v}");
    }
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

    let baseline = match options.baseline {
        Some(duration) => {
            eprintln!(
                "baseline: GET /health, {} connections, {duration:?} …",
                options.connections
            );
            let request = |_| get("/health");
            let phase = load(&addrs, options.connections, u64::MAX, duration, request).await?;
            Some(phase.with_success("ok"))
        }
        None => None,
    };

    eprintln!(
        "drawing: {} connections, up to {} draws or {:?} …",
        options.connections, options.draws, options.duration
    );
    let watch = Watch::start(&options.pids)?;
    let groups_before = group_figures(&client, &base).await;
    let activity_id = options.activity_id;
    let request = move |i: u64| {
        let user = &users[(i % users.len() as u64) as usize];
        let body = json!({"userId": user, "activityId": activity_id});
        post_json("/api/v1/raffle/activity/draw", &body)
    };
    let draws = load(
        &addrs,
        options.connections,
        options.draws,
        options.duration,
        request,
    )
    .await?
    .with_success("0000");
    let processes = watch.stop().await?;
    let groups = match (groups_before, group_figures(&client, &base).await) {
        (Some(before), Some(after)) => Some(after.since(before)),
        _ => None,
    };
    let drained = drain(&client, &bases, options.drain).await;
    Ok(BenchReport {
        baseline,
        processes,
        drained,
        groups,
        draws: draws.requests,
        elapsed: draws.elapsed,
        per_second: draws.per_second,
        p50: draws.p50,
        p99: draws.p99,
        max: draws.max,
        errors: draws.errors,
        codes: draws.codes,
    })
}

impl Phase {
    fn with_success(mut self, success: &str) -> Self {
        self.errors = self
            .codes
            .iter()
            .filter(|(k, _)| *k != success)
            .map(|(_, v)| v)
            .sum();
        self
    }
}

type BenchRequest = hyper::Request<http_body_util::Full<axum::body::Bytes>>;

fn get(path: &str) -> BenchRequest {
    let mut req = hyper::Request::new(http_body_util::Full::default());
    *req.uri_mut() = hyper::Uri::try_from(path).unwrap_or_default();
    req
}

fn post_json(path: &str, body: &Value) -> BenchRequest {
    let mut req = hyper::Request::new(http_body_util::Full::new(axum::body::Bytes::from(
        body.to_string(),
    )));
    *req.method_mut() = hyper::Method::POST;
    *req.uri_mut() = hyper::Uri::try_from(path).unwrap_or_default();
    req.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    req
}

/// One kept-alive HTTP/1.1 connection, as `wrk` uses: nothing between the request and
/// the socket but hyper's codec, so the generator costs little beside the server.
async fn connect(
    addr: &str,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<axum::body::Bytes>>>
{
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The envelope's `code`, `ok` for a plain-text 200, or what went wrong.
async fn answer(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<axum::body::Bytes>>,
    mut req: BenchRequest,
    host: &hyper::header::HeaderValue,
) -> String {
    use http_body_util::BodyExt;
    req.headers_mut().insert(hyper::header::HOST, host.clone());
    if let Err(e) = sender.ready().await {
        return format!("transport: {e}");
    }
    let resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => return format!("transport: {e}"),
    };
    let status = resp.status();
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return format!("transport: {e}"),
    };
    if !status.is_success() {
        return format!("HTTP {status}");
    }
    #[derive(serde::Deserialize)]
    struct Code<'a> {
        code: &'a str,
    }
    match serde_json::from_slice::<Code<'_>>(&body) {
        Ok(c) => c.code.to_owned(),
        Err(_) => "ok".to_owned(),
    }
}

/// Keeps `connections` connections (spread over `addrs` in turn) busy with the requests
/// made by `request(i)` until `limit` requests were sent or `duration` passed.
async fn load<F>(
    addrs: &[String],
    connections: usize,
    limit: u64,
    duration: Duration,
    request: F,
) -> anyhow::Result<Phase>
where
    F: Fn(u64) -> BenchRequest + Send + Sync + 'static,
{
    let mut senders = Vec::with_capacity(connections);
    for i in 0..connections {
        let addr = &addrs[i % addrs.len()];
        let host = hyper::header::HeaderValue::from_str(addr)?;
        senders.push((connect(addr).await?, host));
    }
    let request = Arc::new(request);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for (mut sender, host) in senders {
        let (request, next, host) = (request.clone(), next.clone(), host.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut codes: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit || Instant::now() >= deadline {
                    break;
                }
                let req = request(i);
                let t = Instant::now();
                let code = answer(&mut sender, req, &host).await;
                latencies.push(t.elapsed());
                let broken = code.starts_with("transport");
                *codes.entry(code).or_default() += 1;
                if broken {
                    // A connection the server closed is replaced, as a client would.
                    match connect(host.to_str().unwrap_or_default()).await {
                        Ok(s) => sender = s,
                        Err(_) => break,
                    }
                }
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
    let requests = latencies.len() as u64;
    Ok(Phase {
        requests,
        elapsed,
        per_second: requests as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        errors: 0,
        codes,
    })
}

/// Samples watched processes' resident memory while the draws run.
struct Watch {
    start: Vec<(u32, String, Duration, Option<u64>)>,
    max_rss: Arc<std::sync::Mutex<BTreeMap<u32, u64>>>,
    stop: tokio::sync::watch::Sender<bool>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Watch {
    fn start(pids: &[u32]) -> anyhow::Result<Self> {
        let start = pids
            .iter()
            .map(|&pid| Ok((pid, proc_name(pid)?, proc_cpu(pid)?, proc_written(pid))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let max_rss = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let sampler = tokio::spawn({
            let (pids, max_rss) = (pids.to_vec(), max_rss.clone());
            async move {
                loop {
                    for &pid in &pids {
                        if let Ok(kib) = proc_rss_kib(pid) {
                            let mut m = max_rss.lock().unwrap_or_else(|p| p.into_inner());
                            let e = m.entry(pid).or_insert(0);
                            *e = (*e).max(kib);
                        }
                    }
                    tokio::select! {
                        _ = stopped.changed() => return,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
            }
        });
        Ok(Watch {
            start,
            max_rss,
            stop,
            sampler,
        })
    }

    async fn stop(self) -> anyhow::Result<Vec<ProcessUse>> {
        let _ = self.stop.send(true);
        self.sampler.await?;
        let max_rss = self.max_rss.lock().unwrap_or_else(|p| p.into_inner());
        self.start
            .into_iter()
            .map(|(pid, name, before, written)| {
                Ok(ProcessUse {
                    pid,
                    name,
                    cpu: proc_cpu(pid)?.saturating_sub(before),
                    max_rss_kib: max_rss.get(&pid).copied().unwrap_or(0),
                    written: written
                        .zip(proc_written(pid))
                        .map(|(a, b)| b.saturating_sub(a)),
                })
            })
            .collect()
    }
}

fn proc_name(pid: u32) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .with_context(|| format!("process {pid} (--pid reads /proc)"))?
        .trim()
        .to_owned())
}

/// User plus system CPU time of a process, from `/proc/PID/stat` (in the kernel's
/// `USER_HZ` ticks, 100 per second on Linux).
fn proc_cpu(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} (--pid reads /proc)"))?;
    // The name in parentheses may hold spaces: fields are counted after its `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .with_context(|| format!("/proc/{pid}/stat is short"))?
            .parse()?)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Ok(Duration::from_millis((tick(11)? + tick(12)?) * 10))
}

/// `write_bytes` of `/proc/PID/io`: what reached the block layer on the process's behalf
/// (for a store: its WAL or redo log, its data files, and their fsyncs' flushes).
fn proc_written(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

fn proc_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// Waits for `/metrics` to show no outbox task waiting (`create` or `fail`) on any node
/// that reports the outbox (the job's leader does; the others may not).
async fn drain(
    client: &reqwest::Client,
    bases: &[String],
    window: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut left;
    loop {
        left = pending_on_nodes(client, bases).await;
        match &left {
            Ok(0) => return Ok(start.elapsed()),
            Ok(_) | Err(_) if start.elapsed() >= window => break,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Err(match left {
        Ok(n) => format!("{n} tasks still waiting {window:?} after the load"),
        Err(e) => format!("could not read the outbox from /metrics: {e}"),
    })
}

/// The most tasks waiting that a node reports; an error when none reports the outbox.
async fn pending_on_nodes(client: &reqwest::Client, bases: &[String]) -> anyhow::Result<i64> {
    let mut most: Option<i64> = None;
    let mut last_error = None;
    for base in bases {
        match pending_tasks(client, base).await {
            Ok(n) => most = Some(most.map_or(n, |m| m.max(n))),
            Err(e) => last_error = Some(e),
        }
    }
    most.ok_or_else(|| last_error.unwrap_or_else(|| anyhow::anyhow!("no node")))
}

async fn metrics_text(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    Ok(client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The store's group-commit counters, if `/metrics` has them.
async fn group_figures(client: &reqwest::Client, base: &str) -> Option<GroupFigures> {
    let text = metrics_text(client, base).await.ok()?;
    let mut g = GroupFigures::default();
    let mut seen = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("big_market_store_group_commits{kind=\"") else {
            continue;
        };
        let (kind, value) = rest.split_once("\"} ")?;
        let n = value.trim().parse::<f64>().ok()? as i64;
        seen = true;
        match kind {
            "groups" => g.groups = n,
            "grouped" => g.grouped = n,
            "regrouped" => g.regrouped = n,
            "slow" => g.slow = n,
            _ => {}
        }
    }
    seen.then_some(g)
}

async fn pending_tasks(client: &reqwest::Client, base: &str) -> anyhow::Result<i64> {
    let text = metrics_text(client, base).await?;
    let mut seen = false;
    let mut sum = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("big_market_outbox_tasks{") {
            seen = true;
            if rest.starts_with("state=\"create\"") || rest.starts_with("state=\"fail\"") {
                let n: f64 = rest
                    .rsplit_once(' ')
                    .and_then(|(_, v)| v.parse().ok())
                    .context("unreadable outbox_tasks value")?;
                sum += n as i64;
            }
        }
    }
    anyhow::ensure!(seen, "no big_market_outbox_tasks series");
    Ok(sum)
}
