//! The outbox: a `task` row written in the same transaction as the business change, and
//! the upstream `EventMessage` JSON it carries.

use crate::id::{Inserted, Redraw};
use serde::Serialize;

/// Topics (queue names) as upstream.
pub mod topic {
    pub const SEND_AWARD: &str = "send_award";
    pub const SEND_REBATE: &str = "send_rebate";
    pub const CREDIT_ADJUST_SUCCESS: &str = "credit_adjust_success";
}

/// `task.state` values. `create`, `completed` and `fail` as upstream writes them;
/// `parked` (ours) marks a task that failed too often to retry automatically.
pub mod state {
    pub const CREATE: &str = "create";
    pub const COMPLETED: &str = "completed";
    pub const FAIL: &str = "fail";
    pub const PARKED: &str = "parked";
}

/// Upstream's `EventMessage{id, timestamp, data}`. Fields are declared in alphabetical
/// order and `None`s are skipped, so the JSON matches fastjson's output byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EventMessage<T> {
    pub data: T,
    pub id: String,
    pub timestamp: i64,
}

/// A new `task` row. The message is kept as its event so that an id that collides with
/// an existing `message_id` can be replaced before the row is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub user_id: String,
    pub topic: String,
    pub state: String,
    pub event: EventMessage<serde_json::Value>,
    /// The outcome's note (`task.last_error`) of a task written already `completed` (by
    /// the embedded store, which alone delivers prizes in the draw's transaction).
    pub note: Option<String>,
}

impl Task {
    /// The row as stored by a commit, for sending without reading it back.
    pub fn to_row(&self) -> TaskRow {
        TaskRow {
            user_id: self.user_id.clone(),
            topic: self.topic.clone(),
            message_id: self.event.id.clone(),
            message: self.message(),
            state: self.state.clone(),
            attempts: 0,
            lease: None,
        }
    }

    pub fn new<T: Serialize>(
        user_id: &str,
        topic: &str,
        message: EventMessage<T>,
    ) -> crate::Result<Self> {
        Ok(Self {
            user_id: user_id.to_owned(),
            topic: topic.to_owned(),
            state: state::CREATE.to_owned(),
            note: None,
            event: EventMessage {
                // `Value` objects keep keys sorted: fastjson's alphabetical order.
                data: serde_json::to_value(message.data).map_err(crate::Error::internal)?,
                id: message.id,
                timestamp: message.timestamp,
            },
        })
    }

    pub fn message_id(&self) -> &str {
        &self.event.id
    }

    /// The JSON stored in `task.message` and published to the topic.
    pub fn message(&self) -> String {
        serde_json::to_string(&self.event).unwrap_or_default()
    }
}

/// Writing tasks in a unit of work.
#[allow(async_fn_in_trait)]
pub trait TaskTx {
    /// Inserts the task, unless its message id is taken.
    async fn insert_task(&mut self, task: &Task) -> crate::Result<Inserted>;
}

/// Inserts `task`, drawing a new message id from `rng` while the id is taken.
pub async fn insert<T: TaskTx + ?Sized, R: rand::Rng + ?Sized>(
    tx: &mut T,
    task: &mut Task,
    rng: &mut R,
) -> crate::Result<()> {
    let mut redraw = Redraw::new(11);
    while tx.insert_task(task).await? == Inserted::IdTaken {
        task.event.id = redraw.next(rng)?;
    }
    Ok(())
}

/// A stored task, as the dispatcher reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub user_id: String,
    pub topic: String,
    pub message_id: String,
    pub message: String,
    pub state: String,
    pub attempts: i64,
    /// The lease its sender holds: `None` for a task never claimed (its dispatcher's),
    /// else the end of the claim, which the sender shows when it records the outcome.
    pub lease: Option<String>,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Delivered; an optional note (e.g. "duplicate, acknowledged").
    Completed(Option<String>),
    /// Failed; try again after `retry_after_secs`.
    Retry {
        error: String,
        retry_after_secs: u64,
    },
    /// Failed too often: left for an operator.
    Parked(String),
}

/// Storage of the outbox.
///
/// A task is sent by one sender at a time, under a lease: a new `create` task belongs to
/// the dispatcher of the node that committed it for `lease_secs` after its commit; after
/// that (or after a failed attempt's backoff) the compensation job must [`claim`] it,
/// which renews the lease, before sending. Senders finish within half a lease, so two
/// never deliver the same task at once.
///
/// [`claim`]: TaskRepository::claim
#[async_trait::async_trait]
pub trait TaskRepository: Send + Sync {
    async fn task(&self, message_id: &str) -> crate::Result<Option<TaskRow>>;
    /// Tasks to re-send: `fail` ones whose retry time has come and `create` ones whose
    /// lease has run out (their first hand-off was lost, e.g. by a crash).
    async fn due_tasks(&self, lease_secs: u64, limit: usize) -> crate::Result<Vec<TaskRow>>;
    /// Takes a due task for `lease_secs`; `None` when it is no longer due (delivered,
    /// parked, or claimed by another sender since it was listed).
    async fn claim(&self, message_id: &str, lease_secs: u64) -> crate::Result<Option<TaskRow>>;
    /// Records an attempt's outcome, if `lease` is still the task's (a sender whose lease
    /// was taken over records nothing). A task already `completed` or `parked` is left as
    /// it is: a late failure never overwrites a delivery.
    async fn record(
        &self,
        message_id: &str,
        lease: Option<&str>,
        outcome: &TaskOutcome,
    ) -> crate::Result<()>;
    /// [`Self::claim`] knowing the task's user, so a sharded store asks one database.
    async fn claim_of(&self, task: &TaskRow, lease_secs: u64) -> crate::Result<Option<TaskRow>> {
        self.claim(&task.message_id, lease_secs).await
    }
    /// [`Self::record`] knowing the task's user, so a sharded store asks one database.
    async fn record_of(&self, task: &TaskRow, outcome: &TaskOutcome) -> crate::Result<()> {
        self.record(&task.message_id, task.lease.as_deref(), outcome)
            .await
    }
    /// Parked tasks, oldest first.
    async fn parked(&self, limit: usize) -> crate::Result<Vec<ParkedTask>>;
    /// `parked → fail` with its attempts reset, so the compensation job sends it again;
    /// whether the task was parked.
    async fn requeue(&self, message_id: &str) -> crate::Result<bool>;
}

/// A task left for an operator, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedTask {
    pub message_id: String,
    pub user_id: String,
    pub topic: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub update_time: String,
}

/// Where messages go: RabbitMQ in production, the in-process consumers when embedded.
/// `Ok` means the message is safely handed over (or, in process, consumed); the note is
/// kept on the task. A bus gives up (`Err`) once `budget` has passed, so that a sender
/// never outlives its lease on the task.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(
        &self,
        topic: &str,
        message: &str,
        budget: std::time::Duration,
    ) -> crate::Result<Option<String>>;
}

/// A consumer of one topic: `Ok` (with a note) when the message is done with, `Err` to
/// be retried later.
#[async_trait::async_trait]
pub trait Consumer: Send + Sync {
    async fn consume(&self, message: &str) -> crate::Result<Option<String>>;
}

/// Told about tasks committed by a service, so they are sent at once rather than at the
/// next compensation run.
pub trait TaskNotifier: Send + Sync {
    fn notify(&self, task: &Task);
}

/// A notifier that drops notices (tests, tools): the compensation job still sends.
pub struct NoNotifier;

impl TaskNotifier for NoNotifier {
    fn notify(&self, _: &Task) {}
}

/// Retry policy of the outbox.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a task is parked.
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt.
    pub base_delay_secs: u64,
    /// Longest retry delay.
    pub max_delay_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 20,
            base_delay_secs: 5,
            max_delay_secs: 600,
        }
    }
}

impl RetryPolicy {
    /// The outcome of a failed attempt number `attempt` (1-based).
    pub fn after_failure(&self, attempt: i64, error: String) -> TaskOutcome {
        if attempt >= self.max_attempts {
            return TaskOutcome::Parked(error);
        }
        let shift = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        let delay = self
            .base_delay_secs
            .saturating_mul(1u64 << shift)
            .min(self.max_delay_secs);
        TaskOutcome::Retry {
            error,
            retry_after_secs: delay,
        }
    }
}

/// Sends tasks: the dispatcher after a commit, the compensation job for the rest.
pub struct TaskService {
    repo: std::sync::Arc<dyn TaskRepository>,
    bus: std::sync::Arc<dyn EventBus>,
    policy: RetryPolicy,
    lease: std::time::Duration,
}

impl TaskService {
    /// `lease` is how long a sender owns a task; a send is cut off after half of it.
    pub fn new(
        repo: std::sync::Arc<dyn TaskRepository>,
        bus: std::sync::Arc<dyn EventBus>,
        policy: RetryPolicy,
        lease: std::time::Duration,
    ) -> Self {
        Self {
            repo,
            bus,
            policy,
            lease,
        }
    }

    fn send_budget(&self) -> std::time::Duration {
        self.lease / 2
    }

    async fn send(&self, task: &TaskRow) -> crate::Result<TaskOutcome> {
        let published = self
            .bus
            .publish(&task.topic, &task.message, self.send_budget())
            .await;
        let outcome = match published {
            Ok(note) => TaskOutcome::Completed(note),
            // A malformed message or unusable configuration fails the same way every
            // time: parked for an operator at once instead of retried.
            Err(
                e @ (crate::Error::Config(_)
                | crate::Error::Biz {
                    code: crate::error::ResponseCode::IllegalParameter,
                    ..
                }),
            ) => {
                tracing::error!(message_id = %task.message_id, topic = %task.topic, error = %e, "task cannot be delivered; parked");
                TaskOutcome::Parked(e.to_string())
            }
            Err(e) => {
                tracing::warn!(message_id = %task.message_id, topic = %task.topic, error = %e, "task delivery failed");
                self.policy.after_failure(task.attempts + 1, e.to_string())
            }
        };
        self.repo.record_of(task, &outcome).await?;
        Ok(outcome)
    }

    /// Sends a task its service has just committed (no read back: the row is known).
    /// `committed` is when the commit was seen. The lease runs from the row's stamp,
    /// a little before the commit; a send starting within a quarter of the lease and cut
    /// off after half of it ends before the lease does. A task handed over later is left
    /// to the compensation job rather than raced with it.
    pub async fn dispatch(
        &self,
        task: &TaskRow,
        committed: std::time::Instant,
    ) -> crate::Result<Option<TaskOutcome>> {
        if committed.elapsed() >= self.lease / 4 {
            tracing::warn!(message_id = %task.message_id, "dispatcher too far behind; leaving the task to compensation");
            return Ok(None);
        }
        Ok(Some(self.send(task).await?))
    }

    /// Parked tasks for an operator.
    pub async fn parked(&self, limit: usize) -> crate::Result<Vec<ParkedTask>> {
        self.repo.parked(limit).await
    }

    /// Sends a parked task again (after its cause was fixed), with a fresh retry budget.
    pub async fn requeue(&self, message_id: &str) -> crate::Result<()> {
        if self.repo.requeue(message_id).await? {
            tracing::info!(%message_id, "parked task requeued by an operator");
            Ok(())
        } else {
            Err(crate::Error::illegal(format!(
                "task {message_id} does not exist or is not parked"
            )))
        }
    }

    /// Tasks no sender holds, oldest first (see [`TaskRepository::due_tasks`]).
    pub async fn due(&self, limit: usize) -> crate::Result<Vec<TaskRow>> {
        self.repo
            .due_tasks(self.lease.as_secs().max(1), limit)
            .await
    }

    /// Claims a due task and sends it; `None` when another sender took it first.
    pub async fn resend(&self, task: &TaskRow) -> crate::Result<Option<TaskOutcome>> {
        match self
            .repo
            .claim_of(task, self.lease.as_secs().max(1))
            .await?
        {
            Some(claimed) => Ok(Some(self.send(&claimed).await?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::award::SendAwardMessage;

    #[test]
    fn retries_back_off_then_park() {
        let p = RetryPolicy {
            max_attempts: 4,
            base_delay_secs: 5,
            max_delay_secs: 15,
        };
        let delays: Vec<TaskOutcome> = (1..=4).map(|a| p.after_failure(a, "x".into())).collect();
        assert_eq!(
            delays,
            vec![
                TaskOutcome::Retry {
                    error: "x".into(),
                    retry_after_secs: 5
                },
                TaskOutcome::Retry {
                    error: "x".into(),
                    retry_after_secs: 10
                },
                TaskOutcome::Retry {
                    error: "x".into(),
                    retry_after_secs: 15
                },
                TaskOutcome::Parked("x".into()),
            ]
        );
    }

    #[test]
    fn message_json_matches_upstream_shape() {
        let t = Task::new(
            "xiaofuge",
            topic::SEND_AWARD,
            EventMessage {
                data: SendAwardMessage {
                    award_config: None,
                    award_id: 110,
                    award_title: "1次使用次数".into(),
                    order_id: "629553450287".into(),
                    user_id: "xiaofuge".into(),
                },
                id: "04244520328".into(),
                timestamp: 1729301756922,
            },
        )
        .unwrap();
        assert_eq!(
            t.message(),
            r#"{"data":{"awardId":110,"awardTitle":"1次使用次数","orderId":"629553450287","userId":"xiaofuge"},"id":"04244520328","timestamp":1729301756922}"#
        );
        assert_eq!(t.message_id(), "04244520328");
    }
}
