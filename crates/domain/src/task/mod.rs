//! The outbox: a `task` row written in the same transaction as the business change, and
//! the upstream `EventMessage` JSON it carries.

use serde::Serialize;

/// Topics (queue names) as upstream.
pub mod topic {
    pub const SEND_AWARD: &str = "send_award";
    pub const SEND_REBATE: &str = "send_rebate";
    pub const CREDIT_ADJUST_SUCCESS: &str = "credit_adjust_success";
}

/// `task.state` values as upstream writes them.
pub mod state {
    pub const CREATE: &str = "create";
    pub const COMPLETED: &str = "completed";
    pub const FAIL: &str = "fail";
}

/// Upstream's `EventMessage{id, timestamp, data}`. Fields are declared in alphabetical
/// order and `None`s are skipped, so the JSON matches fastjson's output byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMessage<T: Serialize> {
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
}

impl Task {
    pub fn new<T: Serialize>(
        user_id: &str,
        topic: &str,
        message: EventMessage<T>,
    ) -> crate::Result<Self> {
        Ok(Self {
            user_id: user_id.to_owned(),
            topic: topic.to_owned(),
            state: state::CREATE.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::award::SendAwardMessage;

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
