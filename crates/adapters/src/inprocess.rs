//! The embedded backend's message bus: a task's message is handed straight to the
//! consumer of its topic in this process. The task is `completed` only when the consumer
//! has finished, so a crash in between leaves it for the compensation job.

use async_trait::async_trait;
use big_market_domain::task::{Consumer, EventBus};
use big_market_domain::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
pub struct InProcessBus {
    consumers: HashMap<String, Arc<dyn Consumer>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn subscribe(mut self, topic: &str, consumer: Arc<dyn Consumer>) -> Self {
        self.consumers.insert(topic.to_owned(), consumer);
        self
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(
        &self,
        topic: &str,
        message: &str,
        budget: Duration,
    ) -> Result<Option<String>> {
        let consumer = self
            .consumers
            .get(topic)
            .ok_or_else(|| Error::internal(format!("no consumer for topic {topic}")))?;
        // Cut off at the budget: the consumer's own transactions are all-or-nothing and
        // idempotent, so a retry after a cut-off finishes the job exactly once.
        tokio::time::timeout(budget, consumer.consume(message))
            .await
            .unwrap_or_else(|_| {
                Err(Error::internal(format!(
                    "consumer of {topic} did not finish within {budget:?}"
                )))
            })
    }
}
