//! The external account service that grants `openai_use_count` prizes (upstream's
//! `adjust_quota` call), over HTTP with a timeout. Retries are the outbox's: a failure
//! leaves the task to be retried with backoff, and the idempotency key makes a retry safe.

use async_trait::async_trait;
use big_market_domain::award::AwardGateway;
use big_market_domain::{Error, ResponseCode, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where and as whom to call the account service.
#[derive(Clone)]
pub struct AccountServiceConfig {
    /// e.g. `http://chatgpt-data-app:8091`.
    pub api_host: String,
    pub app_id: String,
    pub app_token: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for AccountServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountServiceConfig")
            .field("api_host", &self.api_host)
            .field("app_id", &self.app_id)
            .field("app_token", &"***")
            .finish()
    }
}

pub struct HttpAccountService {
    config: AccountServiceConfig,
    client: reqwest::Client,
}

impl HttpAccountService {
    pub fn new(config: AccountServiceConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(Error::internal)?;
        Ok(Self { config, client })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdjustQuotaRequest<'a> {
    app_id: &'a str,
    app_token: &'a str,
    openid: &'a str,
    increase_quota: i64,
}

#[derive(Deserialize)]
struct AdjustQuotaResponse {
    code: String,
    #[serde(default)]
    info: Option<String>,
}

#[async_trait]
impl AwardGateway for HttpAccountService {
    async fn adjust_quota(&self, openid: &str, quota: i64, idempotency_key: &str) -> Result<()> {
        let url = format!(
            "{}/api/v1/account/adjust_quota",
            self.config.api_host.trim_end_matches('/')
        );
        let gateway = |why: String| Error::biz(ResponseCode::GatewayError, why);
        let resp = self
            .client
            .post(&url)
            .header("Idempotency-Key", idempotency_key)
            .json(&AdjustQuotaRequest {
                app_id: &self.config.app_id,
                app_token: &self.config.app_token,
                openid,
                increase_quota: quota,
            })
            .send()
            .await
            .map_err(|e| gateway(format!("account service unreachable: {e}")))?;
        let status = resp.status();
        let body: AdjustQuotaResponse = resp.json().await.map_err(|e| {
            gateway(format!(
                "account service answered HTTP {status} without a valid body: {e}"
            ))
        })?;
        if body.code != "0000" {
            return Err(gateway(format!(
                "account service refused: {} {}",
                body.code,
                body.info.unwrap_or_default()
            )));
        }
        Ok(())
    }
}
