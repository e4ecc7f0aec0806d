-- Outbox bookkeeping (additive): how often a task was tried, when to try again, why it
-- failed; and why an award record is not delivered (kept `create` for an operator).
ALTER TABLE task ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task ADD COLUMN next_attempt_time TEXT NULL;
ALTER TABLE task ADD COLUMN last_error TEXT NULL;
CREATE INDEX idx_task_state_next_attempt ON task (state, next_attempt_time);
ALTER TABLE user_award_record ADD COLUMN delivery_note TEXT NULL;
