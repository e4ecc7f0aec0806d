//! `big-market verify`: checks one fair draw against a running service. It asks
//! `activity/verify_draw` for the proof and the revealed seed, then recomputes the draw
//! here (the seed against the commitment, the documented number against the proof's
//! table), so the answer does not rest on the service's word.

use anyhow::Context;
use big_market_domain::strategy::fair::{Proof, Seed, recompute};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Base URL of the service, e.g. `http://127.0.0.1:8091`.
    pub url: String,
    pub activity_id: i64,
    pub user_id: String,
    pub order_id: String,
}

/// What `verify` found.
#[derive(Debug)]
pub struct VerifyReport {
    pub proof: Proof,
    /// `None` while the epoch's seed is not revealed.
    pub seed: Option<String>,
    pub commitment_matches: bool,
    pub recomputed_award_id: Option<i32>,
    /// The service's own verdict.
    pub service_verified: bool,
}

impl VerifyReport {
    /// Seed revealed, matching the commitment, and the local re-computation gives the
    /// proof's `sampledAwardId`.
    pub fn verified(&self) -> bool {
        self.commitment_matches && self.recomputed_award_id == Some(self.proof.sampled_award_id)
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.proof;
        writeln!(f, "order            {}", p.order_id)?;
        writeln!(
            f,
            "epoch            {} (commitment {})",
            p.epoch, p.commitment
        )?;
        writeln!(f, "drawNo           {}", p.draw_no)?;
        writeln!(f, "clientSeed       {:?}", p.client_seed)?;
        writeln!(f, "table            {} {:?}", p.table, p.weights)?;
        writeln!(f, "sampledAwardId   {}", p.sampled_award_id)?;
        writeln!(f, "awardId          {} ({})", p.award_id, p.reason)?;
        match &self.seed {
            None => writeln!(f, "seed             not yet revealed")?,
            Some(seed) => {
                writeln!(f, "seed             {seed}")?;
                writeln!(f, "commitment ok    {}", self.commitment_matches)?;
                writeln!(f, "recomputed       {:?}", self.recomputed_award_id)?;
            }
        }
        writeln!(f, "service says     {}", self.service_verified)?;
        write!(
            f,
            "{}",
            if self.verified() {
                "VERIFIED"
            } else {
                "NOT VERIFIED"
            }
        )
    }
}

/// Asks the service and recomputes.
pub async fn run(options: VerifyOptions) -> anyhow::Result<VerifyReport> {
    let url = format!(
        "{}/api/v1/raffle/activity/verify_draw",
        options.url.trim_end_matches('/')
    );
    let body: Value = reqwest::Client::new()
        .post(&url)
        .json(&json!({
            "userId": options.user_id,
            "activityId": options.activity_id,
            "orderId": options.order_id,
        }))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?
        .json()
        .await
        .with_context(|| format!("the answer of {url} is not JSON"))?;
    anyhow::ensure!(
        body["code"] == "0000",
        "{url}: {} {}",
        body["code"],
        body["info"]
    );
    let data = &body["data"];
    let proof: Proof =
        serde_json::from_value(data["proof"].clone()).context("the answer has no proof")?;
    let service_verified = data["verified"].as_bool().unwrap_or(false);
    let revealed = data["revealed"].as_bool().unwrap_or(false);
    let seed = revealed
        .then(|| data["seed"].as_str().map(str::to_owned))
        .flatten();
    let (commitment_matches, recomputed_award_id) = match &seed {
        Some(hex) => {
            let key = Seed::from_hex(hex)?;
            (
                key.commitment() == proof.commitment,
                recompute(&proof, &key, options.activity_id, &options.user_id)?,
            )
        }
        None => (false, None),
    };
    Ok(VerifyReport {
        proof,
        seed,
        commitment_matches,
        recomputed_award_id,
        service_verified,
    })
}
