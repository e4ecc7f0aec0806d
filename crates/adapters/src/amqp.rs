//! RabbitMQ: the production message bus of the outbox (lapin 3, tokio, no TLS).
//!
//! Topology, compatible with upstream's Spring consumers and publishers: messages go to
//! the default exchange with the routing key `{prefix}{topic}`, into the durable queue of
//! the same name, declared without arguments exactly as `@Queue(topic)` declares it (so
//! either side may declare it first). Ours only, beside it:
//!
//! - `{prefix}{topic}.retry.{ms}`: one durable delay queue per backoff step, whose
//!   messages expire after `ms` and are dead-lettered back to the topic's queue. A queue
//!   per step (not one queue with per-message TTLs) because RabbitMQ expires messages
//!   only at the head of a queue: a 10-minute retry would hold back a 5-second one.
//! - `{prefix}{topic}.parked`: durable; messages that failed for good, with why, for an
//!   operator.
//!
//! Publishing ([`AmqpBus`] as an [`EventBus`]) is persistent, `mandatory` and confirmed:
//! `Ok` only once the broker has taken responsibility for the message. Consuming
//! ([`run_consumer`]) acks a message only after its consumer returned `Ok` (its effect
//! committed) or after the message was moved, confirmed, to a delay queue or the parked
//! queue: never an endless requeue loop, never a lost message.

use async_trait::async_trait;
use big_market_domain::error::ResponseCode;
use big_market_domain::task::{Consumer, EventBus, RetryPolicy};
use futures_util::TryStreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};

/// Header counting the failed attempts a message has behind it (absent: none).
pub const ATTEMPTS_HEADER: &str = "x-attempts";
/// Header of a retried or parked message: the last consumer error.
pub const ERROR_HEADER: &str = "x-last-error";
/// Header of a parked message: why it was parked.
pub const PARK_REASON_HEADER: &str = "x-park-reason";

/// Failures of the RabbitMQ adapter. Messages name the broker by `host:port` and vhost,
/// never with its credentials.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("invalid AMQP URL (expected amqp://user:password@host:port/vhost)")]
    Url,
    #[error("cannot reach RabbitMQ at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("RabbitMQ at {address} did not answer within {timeout:?}")]
    ConnectTimeout { address: String, timeout: Duration },
    #[error("RabbitMQ at {address}: {source}")]
    Broker {
        address: String,
        #[source]
        source: lapin::Error,
    },
    #[error("publish to {queue} not confirmed within {budget:?}")]
    PublishTimeout { queue: String, budget: Duration },
    #[error("RabbitMQ refused the message for {queue} (nack)")]
    Nacked { queue: String },
    #[error("message for {queue} could not be routed ({reply})")]
    Unroutable { queue: String, reply: String },
    #[error("publish to {queue} was not confirmed (channel not in confirm mode)")]
    NotConfirmed { queue: String },
    #[error("the broker cancelled the consumer of {queue}")]
    ConsumerCancelled { queue: String },
}

impl From<AmqpError> for big_market_domain::Error {
    /// Every broker failure is worth retrying: the outbox keeps the task.
    fn from(e: AmqpError) -> Self {
        big_market_domain::Error::internal(e)
    }
}

/// Names and limits of a bus.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// Put before every queue name: empty in production (upstream's names), unique per
    /// test run so runs do not see each other.
    pub prefix: String,
    /// Topics whose queues are declared at connect time.
    pub topics: Vec<String>,
    /// Bound on opening a connection (TCP, handshake, channel, declarations).
    pub connect_timeout: Duration,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        use big_market_domain::task::topic;
        Self {
            prefix: String::new(),
            topics: [
                topic::SEND_AWARD,
                topic::SEND_REBATE,
                topic::CREDIT_ADJUST_SUCCESS,
            ]
            .map(String::from)
            .to_vec(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// How a consumer runner takes deliveries and retries failures.
#[derive(Debug, Clone)]
pub struct ConsumerPolicy {
    /// Unacknowledged deliveries at a time (`basic.qos`), also the handling concurrency.
    pub prefetch: u16,
    /// Attempts before a message is parked.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt.
    pub base_delay: Duration,
    /// Longest retry delay.
    pub max_delay: Duration,
}

impl Default for ConsumerPolicy {
    fn default() -> Self {
        Self::from(&RetryPolicy::default())
    }
}

impl From<&RetryPolicy> for ConsumerPolicy {
    /// The outbox's policy, so a message is retried on the same schedule as a task.
    fn from(p: &RetryPolicy) -> Self {
        Self {
            prefetch: 256,
            max_attempts: u32::try_from(p.max_attempts.max(1)).unwrap_or(u32::MAX),
            base_delay: Duration::from_secs(p.base_delay_secs),
            max_delay: Duration::from_secs(p.max_delay_secs),
        }
    }
}

impl ConsumerPolicy {
    /// The delay after failed attempt number `attempt` (1-based), in whole milliseconds.
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        let delay = self.base_delay.saturating_mul(1u32 << shift);
        let ms = delay.min(self.max_delay).as_millis().max(1);
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// A connection with the channel opened on it.
struct Link {
    connection: Connection,
    channel: Channel,
}

impl Link {
    fn alive(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

struct Inner {
    uri: AMQPUri,
    address: String,
    options: AmqpOptions,
    /// The publishing link, opened again by the next publish after it broke.
    publisher: Mutex<Option<Link>>,
}

/// The RabbitMQ bus: publishes task messages with confirms, and knows the topology the
/// consumer runners use. Cheap to clone.
#[derive(Clone)]
pub struct AmqpBus {
    inner: Arc<Inner>,
}

impl AmqpBus {
    /// Connects (within `options.connect_timeout`) and declares the durable topology of
    /// `options.topics`. Fails fast with an error naming the broker.
    pub async fn connect(url: &str, options: AmqpOptions) -> Result<Self, AmqpError> {
        let uri: AMQPUri = url.parse().map_err(|_| AmqpError::Url)?;
        let address = format!(
            "{}:{} (vhost {})",
            uri.authority.host, uri.authority.port, uri.vhost
        );
        let bus = Self {
            inner: Arc::new(Inner {
                uri,
                address,
                options,
                publisher: Mutex::new(None),
            }),
        };
        let link = bus.open_publisher().await?;
        *bus.inner.publisher.lock().await = Some(link);
        Ok(bus)
    }

    /// Waits for the publisher's outstanding confirms and closes its connection (at
    /// shutdown, once nothing publishes any more). A later publish opens a new one.
    pub async fn close_publisher(&self) {
        let Some(link) = self.inner.publisher.lock().await.take() else {
            return;
        };
        match tokio::time::timeout(Duration::from_secs(5), link.channel.wait_for_confirms()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(broker = %self.inner.address, error = %e, "waiting for the last confirms failed")
            }
            Err(_) => {
                tracing::warn!(broker = %self.inner.address, "no confirms within 5 s; closing")
            }
        }
        self.close(link).await;
    }

    /// The broker accepts a TCP connection within `options.connect_timeout` (`/ready`;
    /// the consumers and the publisher reconnect on their own).
    pub async fn reachable(&self) -> Result<(), AmqpError> {
        let authority = &self.inner.uri.authority;
        let address = || self.inner.address.clone();
        let timeout = self.inner.options.connect_timeout;
        let connect = tokio::net::TcpStream::connect((authority.host.as_str(), authority.port));
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(AmqpError::Unreachable {
                address: address(),
                reason: e.to_string(),
            }),
            Err(_) => Err(AmqpError::ConnectTimeout {
                address: address(),
                timeout,
            }),
        }
    }

    /// The broker as `host:port (vhost v)` (no credentials).
    pub fn address(&self) -> &str {
        &self.inner.address
    }

    /// The queue (and routing key) of `topic`.
    pub fn queue(&self, topic: &str) -> String {
        format!("{}{topic}", self.inner.options.prefix)
    }

    /// Where messages of `topic` that failed for good are kept.
    pub fn parked_queue(&self, topic: &str) -> String {
        format!("{}.parked", self.queue(topic))
    }

    /// The delay queue of `topic` for one backoff step.
    pub fn retry_queue(&self, topic: &str, delay: Duration) -> String {
        format!("{}.retry.{}", self.queue(topic), delay.as_millis())
    }

    /// Deletes the queues of `topic` (main, parked and the delay queues of `policy`),
    /// messages included: for tests and tools, never called by the service.
    pub async fn delete_topic(
        &self,
        topic: &str,
        policy: &ConsumerPolicy,
    ) -> Result<(), AmqpError> {
        let link = self.open_link().await?;
        let mut queues = vec![self.queue(topic), self.parked_queue(topic)];
        for attempt in 1..policy.max_attempts {
            let q = self.retry_queue(topic, policy.delay(attempt));
            if !queues.contains(&q) {
                queues.push(q);
            }
        }
        for q in queues {
            link.channel
                .queue_delete(&q, QueueDeleteOptions::default())
                .await
                .map_err(|e| self.broker(e))?;
        }
        self.close(link).await;
        Ok(())
    }

    /// Opens a connection and a channel within the connect timeout.
    async fn open_link(&self) -> Result<Link, AmqpError> {
        let address = self.inner.address.clone();
        let timeout = self.inner.options.connect_timeout;
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current())
            .with_connection_name(LongString::from(format!(
                "big-market {}",
                self.inner.options.prefix
            )));
        let open = async {
            let connection = Connection::connect_uri(self.inner.uri.clone(), properties)
                .await
                .map_err(|e| AmqpError::Unreachable {
                    address: address.clone(),
                    reason: e.to_string(),
                })?;
            let channel = connection
                .create_channel()
                .await
                .map_err(|e| self.broker(e))?;
            Ok(Link {
                connection,
                channel,
            })
        };
        tokio::time::timeout(timeout, open)
            .await
            .unwrap_or(Err(AmqpError::ConnectTimeout { address, timeout }))
    }

    /// A link in confirm mode with the configured topics declared.
    async fn open_publisher(&self) -> Result<Link, AmqpError> {
        let link = self.open_link().await?;
        let timeout = self.inner.options.connect_timeout;
        let setup = async {
            link.channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| self.broker(e))?;
            for topic in &self.inner.options.topics {
                self.declare_topic(&link.channel, topic).await?;
            }
            Ok(())
        };
        let result =
            tokio::time::timeout(timeout, setup)
                .await
                .unwrap_or(Err(AmqpError::ConnectTimeout {
                    address: self.inner.address.clone(),
                    timeout,
                }));
        match result {
            Ok(()) => Ok(link),
            Err(e) => {
                self.close(link).await;
                Err(e)
            }
        }
    }

    /// Declares the topic's queue (as upstream: durable, no arguments) and its parked
    /// queue. Idempotent.
    async fn declare_topic(&self, channel: &Channel, topic: &str) -> Result<(), AmqpError> {
        for queue in [self.queue(topic), self.parked_queue(topic)] {
            channel
                .queue_declare(&queue, durable(), FieldTable::default())
                .await
                .map_err(|e| self.broker(e))?;
        }
        Ok(())
    }

    /// Declares the delay queue of one backoff step: expired messages go back to the
    /// topic's queue through the default exchange.
    async fn declare_retry(
        &self,
        channel: &Channel,
        topic: &str,
        delay: Duration,
    ) -> Result<String, AmqpError> {
        let queue = self.retry_queue(topic, delay);
        let mut args = FieldTable::default();
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(millis(delay)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.queue(topic).into()),
        );
        channel
            .queue_declare(&queue, durable(), args)
            .await
            .map_err(|e| self.broker(e))?;
        Ok(queue)
    }

    /// The publishing channel, reconnecting when the last one broke.
    async fn publisher(&self) -> Result<Channel, AmqpError> {
        let mut guard = self.inner.publisher.lock().await;
        if let Some(link) = guard.as_ref().filter(|link| link.alive()) {
            return Ok(link.channel.clone());
        }
        if let Some(dead) = guard.take() {
            tracing::warn!(broker = %self.inner.address, "RabbitMQ connection lost; reconnecting");
            self.close(dead).await;
        }
        let link = self.open_publisher().await?;
        let channel = link.channel.clone();
        *guard = Some(link);
        Ok(channel)
    }

    /// Publishes to a queue through the default exchange and waits for the confirm.
    async fn publish_confirmed(
        &self,
        channel: &Channel,
        queue: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), AmqpError> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = channel
            .basic_publish("", queue, options, payload, properties)
            .await
            .map_err(|e| self.broker(e))?
            .await
            .map_err(|e| self.broker(e))?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(AmqpError::Unroutable {
                    queue: queue.to_owned(),
                    reply: format!("{} {}", returned.reply_code, returned.reply_text),
                })
            }
            Confirmation::Nack(None) => Err(AmqpError::Nacked {
                queue: queue.to_owned(),
            }),
            Confirmation::NotRequested => Err(AmqpError::NotConfirmed {
                queue: queue.to_owned(),
            }),
        }
    }

    async fn close(&self, link: Link) {
        // Best effort: the link may already be gone.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            link.connection.close(200, "closing"),
        )
        .await;
    }

    fn broker(&self, source: lapin::Error) -> AmqpError {
        AmqpError::Broker {
            address: self.inner.address.clone(),
            source,
        }
    }
}

#[async_trait]
impl EventBus for AmqpBus {
    /// `Ok` once the broker confirmed the persistent message; a nack, a returned
    /// (unroutable) message, a lost connection or the end of `budget` is an `Err`, and
    /// the outbox sends the task again.
    async fn publish(
        &self,
        topic: &str,
        message: &str,
        budget: Duration,
    ) -> big_market_domain::Result<Option<String>> {
        let queue = self.queue(topic);
        let send = async {
            let channel = self.publisher().await?;
            self.publish_confirmed(&channel, &queue, message.as_bytes(), message_properties())
                .await
        };
        match tokio::time::timeout(budget, send).await {
            Ok(Ok(())) => Ok(None),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(AmqpError::PublishTimeout { queue, budget }.into()),
        }
    }
}

/// Properties of a new message: persistent JSON, like Spring's `convertAndSend` of a
/// JSON string except for the content type.
fn message_properties() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_content_encoding(ShortString::from("UTF-8"))
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Failed attempts a delivery has behind it, from its `x-attempts` header.
pub fn attempts_of(properties: &BasicProperties) -> u32 {
    let value = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPTS_HEADER).cloned());
    let n: i64 = match value {
        Some(AMQPValue::LongLongInt(n)) => n,
        Some(AMQPValue::LongInt(n)) => n.into(),
        Some(AMQPValue::LongUInt(n)) => n.into(),
        Some(AMQPValue::ShortInt(n)) => n.into(),
        Some(AMQPValue::ShortUInt(n)) => n.into(),
        Some(AMQPValue::ShortShortInt(n)) => n.into(),
        Some(AMQPValue::ShortShortUInt(n)) => n.into(),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Errors that fail the same way every time: parked at once instead of retried, as the
/// outbox does (`0002` and unusable configuration).
fn is_permanent(e: &big_market_domain::Error) -> bool {
    matches!(
        e,
        big_market_domain::Error::Config(_)
            | big_market_domain::Error::Biz {
                code: ResponseCode::IllegalParameter,
                ..
            }
    )
}

/// What became of one delivery, before it is acked.
enum Verdict {
    Done,
    Retry { attempt: u32, error: String },
    Park { attempt: u32, reason: String },
}

/// Consumes `topic` until `shutdown` flips (or its sender is dropped), on its own
/// connection, reconnecting with backoff when the connection drops.
///
/// Each delivery is acked only after `consumer` returned `Ok`. A retryable `Err` moves
/// the message (confirmed) to the delay queue of its backoff step with `x-attempts`
/// counted up, then acks it; after `policy.max_attempts` attempts, or on a permanent
/// error, the message goes to `{topic}.parked` with the reason instead. A message whose
/// move failed is nacked back to its queue and the connection is opened again.
pub async fn run_consumer(
    bus: &AmqpBus,
    topic: &str,
    consumer: Arc<dyn Consumer>,
    policy: ConsumerPolicy,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AmqpError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let mut established = false;
        match consume_session(
            bus,
            topic,
            &consumer,
            &policy,
            &mut shutdown,
            &mut established,
        )
        .await
        {
            Ok(()) => return Ok(()),
            Err(e) => {
                if established {
                    backoff = Duration::from_millis(100);
                }
                tracing::warn!(topic, broker = %bus.address(), error = %e, retry_in = ?backoff, "consumer connection failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut shutdown) => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Resolves when shutdown is asked for (or no one can ask any more).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// One connection's worth of consuming: `Ok` on shutdown, `Err` when the link broke.
async fn consume_session(
    bus: &AmqpBus,
    topic: &str,
    consumer: &Arc<dyn Consumer>,
    policy: &ConsumerPolicy,
    shutdown: &mut watch::Receiver<bool>,
    established: &mut bool,
) -> Result<(), AmqpError> {
    let link = bus.open_link().await?;
    let result = async {
        let channel = &link.channel;
        let queue = bus.queue(topic);
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| bus.broker(e))?;
        bus.declare_topic(channel, topic).await?;
        channel
            .basic_qos(policy.prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(|e| bus.broker(e))?;
        let tag = format!("big-market-{queue}");
        let deliveries = channel
            .basic_consume(
                &queue,
                &tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| bus.broker(e))?;
        *established = true;
        tracing::info!(topic, %queue, broker = %bus.address(), "consuming");
        let work = deliveries
            .map_err(|e| bus.broker(e))
            .try_for_each_concurrent(usize::from(policy.prefetch.max(1)), |delivery| {
                handle(bus, channel, topic, consumer, policy, delivery)
            });
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => {
                r?;
                Err(AmqpError::ConsumerCancelled { queue })
            }
            _ = stopped(shutdown) => {
                // Take no more deliveries, let the ones in hand finish (bounded); the
                // rest go back to the queue when the connection closes.
                let _ = channel.basic_cancel(&tag, BasicCancelOptions::default()).await;
                let _ = tokio::time::timeout(Duration::from_secs(30), &mut work).await;
                Ok(())
            }
        }
    }
    .await;
    bus.close(link).await;
    result
}

/// Runs the consumer on one delivery and settles it (see [`run_consumer`]).
async fn handle(
    bus: &AmqpBus,
    channel: &Channel,
    topic: &str,
    consumer: &Arc<dyn Consumer>,
    policy: &ConsumerPolicy,
    delivery: Delivery,
) -> Result<(), AmqpError> {
    let attempt = attempts_of(&delivery.properties).saturating_add(1);
    let verdict = match std::str::from_utf8(&delivery.data) {
        Err(_) => Verdict::Park {
            attempt,
            reason: "message is not UTF-8".into(),
        },
        Ok(body) => match consumer.consume(body).await {
            Ok(_) => Verdict::Done,
            Err(e) if is_permanent(&e) => Verdict::Park {
                attempt,
                reason: e.to_string(),
            },
            Err(e) if attempt >= policy.max_attempts => Verdict::Park {
                attempt,
                reason: format!("gave up after {attempt} attempts: {e}"),
            },
            Err(e) => Verdict::Retry {
                attempt,
                error: e.to_string(),
            },
        },
    };
    let moved = match &verdict {
        Verdict::Done => Ok(()),
        Verdict::Retry { attempt, error } => {
            let delay = policy.delay(*attempt);
            tracing::warn!(topic, attempt, retry_in = ?delay, %error, "message failed; retrying later");
            async {
                let queue = bus.declare_retry(channel, topic, delay).await?;
                let properties =
                    with_headers(&delivery.properties, *attempt, &[(ERROR_HEADER, error)])
                        .with_expiration(ShortString::from(millis(delay).to_string()));
                bus.publish_confirmed(channel, &queue, &delivery.data, properties)
                    .await
            }
            .await
        }
        Verdict::Park { attempt, reason } => {
            tracing::error!(topic, attempt, %reason, "message parked");
            let properties = with_headers(
                &delivery.properties,
                *attempt,
                &[(PARK_REASON_HEADER, reason)],
            );
            bus.publish_confirmed(
                channel,
                &bus.parked_queue(topic),
                &delivery.data,
                properties,
            )
            .await
        }
    };
    if let Err(e) = moved {
        // Back to the queue as it was; the session restarts, so no hot loop.
        let _ = delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await;
        return Err(e);
    }
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .map_err(|e| bus.broker(e))?;
    Ok(())
}

/// The delivery's properties, persistent, with `x-attempts` and `extra` headers set.
fn with_headers(
    properties: &BasicProperties,
    attempts: u32,
    extra: &[(&str, &String)],
) -> BasicProperties {
    let mut headers = properties.headers().clone().unwrap_or_default();
    headers.insert(
        ATTEMPTS_HEADER.into(),
        AMQPValue::LongLongInt(attempts.into()),
    );
    for (key, value) in extra {
        headers.insert((*key).into(), AMQPValue::LongString(value.as_str().into()));
    }
    let mut properties = properties
        .clone()
        .with_headers(headers)
        .with_delivery_mode(2);
    if properties.content_type().is_none() {
        properties = properties.with_content_type(ShortString::from("application/json"));
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = ConsumerPolicy {
            prefetch: 1,
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let ms: Vec<u128> = (1..=5).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn attempts_header_round_trips() {
        let p = with_headers(&message_properties(), 3, &[]);
        assert_eq!(attempts_of(&p), 3);
        assert_eq!(attempts_of(&message_properties()), 0);
        assert_eq!(*p.delivery_mode(), Some(2));
    }

    #[test]
    fn permanent_errors_are_the_outboxs() {
        assert!(is_permanent(&big_market_domain::Error::illegal("x")));
        assert!(is_permanent(&big_market_domain::Error::config("x")));
        assert!(!is_permanent(&big_market_domain::Error::internal("x")));
        assert!(!is_permanent(&big_market_domain::Error::biz(
            ResponseCode::IndexDup,
            "x"
        )));
    }

    #[test]
    fn errors_do_not_show_credentials() {
        let e = AmqpError::Url;
        assert!(!e.to_string().contains("guest"));
    }
}
