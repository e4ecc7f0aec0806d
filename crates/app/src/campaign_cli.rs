//! `big-market campaign …`: the campaign endpoints' functions on the command line, on
//! the store the configuration names (embedded data directory or MariaDB/MySQL), so
//! campaigns can live in an operator's git repository and be applied from CI.
//!
//! Every command prints JSON on stdout (the same shapes as the endpoints' `data`) and
//! exits non-zero when the document is invalid or the command failed.

use crate::Services;
use anyhow::{Context, bail};
use big_market_domain::campaign::{CampaignKey, Finding, SimulationRequest, parse_document};
use serde_json::json;
use std::path::Path;

/// One `campaign` command.
pub enum CampaignCommand {
    Export(CampaignKey),
    Validate(std::path::PathBuf),
    Simulate {
        file: Option<std::path::PathBuf>,
        key: Option<CampaignKey>,
        request: SimulationRequest,
    },
    Apply {
        file: std::path::PathBuf,
        author: String,
    },
    Versions(CampaignKey),
    Rollback {
        key: CampaignKey,
        version: i64,
        author: String,
    },
}

fn read(
    file: &Path,
) -> anyhow::Result<Result<big_market_domain::campaign::CampaignDocument, Finding>> {
    let bytes = if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("reading stdin")?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
    };
    Ok(parse_document(&bytes))
}

fn print(value: serde_json::Value) -> anyhow::Result<()> {
    use std::io::Write;
    // An error (a closed pipe), not a panic, when the reader went away.
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&value)?
    )
    .context("writing to stdout")
}

fn invalid(errors: Vec<Finding>) -> anyhow::Result<()> {
    let n = errors.len();
    print(json!({ "valid": false, "errors": errors }))?;
    bail!("the campaign document has {n} error(s)")
}

/// Runs `command` against `services`. Applies are announced to running nodes of the
/// production backend before returning.
pub async fn run(services: &Services, command: CampaignCommand) -> anyhow::Result<()> {
    let campaign = &services.campaign;
    match command {
        CampaignCommand::Export(key) => print(serde_json::to_value(campaign.export(key).await?)?),
        CampaignCommand::Validate(file) => {
            let report = match read(&file)? {
                Ok(doc) => campaign.validate(&doc).await?,
                Err(f) => return invalid(vec![f]),
            };
            let valid = report.valid;
            print(serde_json::to_value(&report)?)?;
            if !valid {
                bail!("the campaign document has {} error(s)", report.errors.len());
            }
            Ok(())
        }
        CampaignCommand::Simulate { file, key, request } => {
            let doc = match file {
                Some(f) => match read(&f)? {
                    Ok(d) => Some(d),
                    Err(e) => return invalid(vec![e]),
                },
                None => None,
            };
            match campaign.simulate(doc, key, request).await? {
                Ok(s) => print(serde_json::to_value(s)?),
                Err(errors) => invalid(errors),
            }
        }
        CampaignCommand::Apply { file, author } => {
            let doc = match read(&file)? {
                Ok(d) => d,
                Err(e) => return invalid(vec![e]),
            };
            match campaign.apply(doc, &author).await? {
                Ok(a) => {
                    announce(services, a.strategy_id, a.activity_id).await?;
                    print(serde_json::to_value(a)?)
                }
                Err(errors) => invalid(errors),
            }
        }
        CampaignCommand::Versions(key) => {
            print(serde_json::to_value(campaign.versions(key).await?)?)
        }
        CampaignCommand::Rollback {
            key,
            version,
            author,
        } => match campaign.rollback(key, version, &author).await? {
            Ok(a) => {
                announce(services, a.strategy_id, a.activity_id).await?;
                print(serde_json::to_value(a)?)
            }
            Err(errors) => invalid(errors),
        },
    }
}

/// Tells running nodes to reload (production backend); waits for Redis, since this
/// process ends right after. The embedded store has no other nodes: a server running on
/// the same data directory reloads on its next `activity/armory` or restart.
async fn announce(
    services: &Services,
    strategy_id: i64,
    activity_id: Option<i64>,
) -> anyhow::Result<()> {
    use big_market_adapters::redis_store::invalidation::kinds;
    let Some(redis) = &services.redis else {
        return Ok(());
    };
    if let Some(id) = activity_id {
        redis.invalidation.publish(kinds::ACTIVITY, id).await?;
    }
    redis
        .invalidation
        .publish(kinds::STRATEGY, strategy_id)
        .await?;
    Ok(())
}
