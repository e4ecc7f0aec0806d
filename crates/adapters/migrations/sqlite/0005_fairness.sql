-- Provably fair draws (docs/FAIRNESS.md). Activities an operator turned them on for;
-- one seed per activity and epoch (written before the epoch's first draw, revealed
-- once `end_time` has passed; the seed is secret until then); and the proof of each
-- fair draw, kept with its award record.
CREATE TABLE raffle_activity_fairness (
  activity_id INTEGER PRIMARY KEY,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE raffle_fairness_seed (
  activity_id INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  seed TEXT NOT NULL,
  begin_time TEXT NOT NULL,
  end_time TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (activity_id, epoch)
);

ALTER TABLE user_award_record ADD COLUMN fair_proof TEXT NULL;
