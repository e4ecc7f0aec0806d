-- Dynamic configuration (upstream's DCC, kept in ZooKeeper there): switch values set
-- through `dcc/update_config`, so they survive a restart.
CREATE TABLE dcc_config (
  config_key TEXT PRIMARY KEY,
  config_value TEXT NOT NULL,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
