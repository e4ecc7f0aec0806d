-- Ours: every campaign document applied through `campaign/apply` (or the CLI), so an
-- operator can see who changed what and apply an old version again. `campaign_type` is
-- `activity` or `strategy` (a strategy without an activity); `version` grows per campaign.
CREATE TABLE campaign_version (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign_type TEXT NOT NULL,
  campaign_id INTEGER NOT NULL,
  version INTEGER NOT NULL,
  document TEXT NOT NULL,
  author TEXT NOT NULL,
  summary TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_campaign_version ON campaign_version (campaign_type, campaign_id, version);
