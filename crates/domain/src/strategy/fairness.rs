//! The fairness service: which activities draw fairly, their epochs and seeds, and the
//! verification of a draw. The algorithm is in [`super::fair`]; storage behind
//! [`FairnessRepository`], shared by every node (a restart or another node uses the same
//! seed).
//!
//! Epochs: an epoch's row is written (with its seed) before its first draw, so its
//! commitment can be published; it ends at the next boundary (calendar days in the
//! service's zone by default, or `epoch_secs` counted from midnight) or early by
//! `rotate`. A seed is shown only once `end_time ≤ now`.

use super::fair::{FairDraw, FairSeed, Proof, Seed, recompute, validate_client_seed};
use crate::error::{Error, Result};
use crate::time::Clock;
use async_trait::async_trait;
use jiff::civil::{DateTime, Time};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// What an award record holds for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProof {
    pub activity_id: i64,
    /// `None` for a draw of an activity that was not fair then.
    pub proof: Option<String>,
}

/// Storage of fairness settings, seeds and proofs.
#[async_trait]
pub trait FairnessRepository: Send + Sync {
    /// Activities with fair draws on.
    async fn fair_activities(&self) -> Result<Vec<i64>>;
    /// Turns fair draws on for an activity (again: no change).
    async fn enable_fairness(&self, activity_id: i64) -> Result<()>;
    /// The activity's epoch with the highest number.
    async fn latest_epoch(&self, activity_id: i64) -> Result<Option<FairSeed>>;
    /// One epoch of the activity.
    async fn epoch(&self, activity_id: i64, epoch: i64) -> Result<Option<FairSeed>>;
    /// The activity's epochs that ended at or before `now`, newest first, at most `limit`.
    async fn ended_epochs(
        &self,
        activity_id: i64,
        now: DateTime,
        limit: usize,
    ) -> Result<Vec<FairSeed>>;
    /// Writes a new epoch; `false` when its number is taken (another node wrote it).
    async fn insert_epoch(&self, seed: &FairSeed) -> Result<bool>;
    /// Ends an epoch at `at` if it would end later; whether it changed.
    async fn end_epoch(&self, activity_id: i64, epoch: i64, at: DateTime) -> Result<bool>;
    /// The award record of a user's raffle order: its activity and proof.
    async fn stored_proof(&self, user_id: &str, order_id: &str) -> Result<Option<StoredProof>>;
}

/// The published state of an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochView {
    pub epoch: i64,
    pub commitment: String,
    pub begin_time: DateTime,
    pub end_time: DateTime,
}

/// A revealed epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedEpoch {
    pub epoch: i64,
    pub commitment: String,
    /// Lowercase hex of the 32 bytes.
    pub seed: String,
    pub begin_time: DateTime,
    pub end_time: DateTime,
}

/// `query_fairness`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FairnessView {
    pub activity_id: i64,
    pub enabled: bool,
    pub current: Option<EpochView>,
    pub revealed: Vec<RevealedEpoch>,
}

/// `verify_draw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub proof: Proof,
    /// The epoch's seed once revealed.
    pub seed: Option<String>,
    /// The award the documented algorithm gives with the revealed seed.
    pub recomputed_award_id: Option<i32>,
    /// The seed matches the commitment and recomputing gives `sampledAwardId`.
    pub verified: bool,
    pub detail: String,
}

/// Most revealed epochs `query_fairness` lists (newest first).
pub const MAX_REVEALED: usize = 100;

pub struct FairnessService {
    repo: Arc<dyn FairnessRepository>,
    clock: Arc<dyn Clock>,
    /// Length of an epoch in seconds, counted from local midnight; an epoch never
    /// crosses midnight.
    epoch_secs: i64,
    enabled: RwLock<HashSet<i64>>,
}

impl FairnessService {
    pub fn new(repo: Arc<dyn FairnessRepository>, clock: Arc<dyn Clock>, epoch_secs: u64) -> Self {
        Self {
            repo,
            clock,
            epoch_secs: i64::try_from(epoch_secs.clamp(1, 86_400)).unwrap_or(86_400),
            enabled: RwLock::new(HashSet::new()),
        }
    }

    /// Reads which activities are fair (at start and when another node announces a
    /// change).
    pub async fn refresh(&self) -> Result<()> {
        let ids: HashSet<i64> = self.repo.fair_activities().await?.into_iter().collect();
        *self.enabled.write().unwrap_or_else(|p| p.into_inner()) = ids;
        Ok(())
    }

    pub fn is_fair(&self, activity_id: i64) -> bool {
        self.enabled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&activity_id)
    }

    /// Turns fair draws on and commits the first epoch's seed.
    pub async fn enable(&self, activity_id: i64) -> Result<EpochView> {
        self.repo.enable_fairness(activity_id).await?;
        self.enabled
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(activity_id);
        let current = self.current_epoch(activity_id).await?;
        tracing::info!(activity_id, epoch = current.epoch, "fair draws enabled");
        Ok(view(&current))
    }

    /// The end of the epoch that contains `now`.
    fn epoch_end(&self, now: DateTime) -> Result<DateTime> {
        let midnight = now.date().to_datetime(Time::midnight());
        let next_midnight = now
            .date()
            .tomorrow()
            .map_err(Error::internal)?
            .to_datetime(Time::midnight());
        let since = now.duration_since(midnight).as_secs().clamp(0, 86_399);
        let boundary = (since / self.epoch_secs + 1) * self.epoch_secs;
        let end = midnight
            .checked_add(jiff::Span::new().seconds(boundary))
            .map_err(Error::internal)?;
        Ok(end.min(next_midnight))
    }

    /// The epoch in force now, written with a fresh seed when there is none (the first
    /// of the activity, or the one after an ended epoch). Nodes racing to write it
    /// agree on the one stored first.
    pub async fn current_epoch(&self, activity_id: i64) -> Result<FairSeed> {
        for _ in 0..5 {
            let now = self.clock.now().datetime();
            let latest = self.repo.latest_epoch(activity_id).await?;
            if let Some(l) = latest
                .as_ref()
                .filter(|l| l.begin_time <= now && now < l.end_time)
            {
                return Ok(l.clone());
            }
            let next = FairSeed {
                activity_id,
                epoch: latest.as_ref().map_or(1, |l| l.epoch + 1),
                seed: Seed::generate()?,
                begin_time: now,
                end_time: self.epoch_end(now)?,
            };
            if self.repo.insert_epoch(&next).await? {
                tracing::info!(
                    activity_id,
                    epoch = next.epoch,
                    commitment = %next.commitment(),
                    end_time = %next.end_time,
                    "fairness seed committed"
                );
                return Ok(next);
            }
        }
        Err(Error::internal(format!(
            "activity {activity_id}: no current fairness epoch after five attempts"
        )))
    }

    /// What a draw of the activity uses: `None` unless it is fair.
    pub async fn draw_source(
        &self,
        activity_id: i64,
        client_seed: Option<&str>,
    ) -> Result<Option<FairDraw>> {
        let client_seed = client_seed.unwrap_or("");
        validate_client_seed(client_seed)?;
        if !self.is_fair(activity_id) {
            return Ok(None);
        }
        let epoch = self.current_epoch(activity_id).await?;
        Ok(Some(FairDraw {
            activity_id,
            epoch: epoch.epoch,
            commitment: epoch.commitment(),
            seed: epoch.seed,
            client_seed: client_seed.to_owned(),
        }))
    }

    /// `admin/fairness/rotate`: ends the current epoch now (its seed is revealed) and
    /// commits the next one.
    pub async fn rotate(&self, activity_id: i64) -> Result<(RevealedEpoch, EpochView)> {
        if !self.is_fair(activity_id) {
            return Err(Error::illegal(format!(
                "activity {activity_id} does not draw fairly; enable it first"
            )));
        }
        let current = self.current_epoch(activity_id).await?;
        let now = self.clock.now().datetime();
        self.repo.end_epoch(activity_id, current.epoch, now).await?;
        let ended = self
            .repo
            .epoch(activity_id, current.epoch)
            .await?
            .ok_or_else(|| Error::internal("an epoch vanished while rotating"))?;
        let next = self.current_epoch(activity_id).await?;
        tracing::info!(
            activity_id,
            ended = ended.epoch,
            next = next.epoch,
            "fairness epoch rotated"
        );
        let revealed = revealed(&ended, now)
            .ok_or_else(|| Error::internal("a rotated epoch is not revealed"))?;
        Ok((revealed, view(&next)))
    }

    /// `query_fairness`: the current commitment (written now if due) and the revealed
    /// seeds, newest first.
    pub async fn query(&self, activity_id: i64) -> Result<FairnessView> {
        let enabled = self.is_fair(activity_id);
        let current = if enabled {
            Some(view(&self.current_epoch(activity_id).await?))
        } else {
            None
        };
        let now = self.clock.now().datetime();
        let revealed = self
            .repo
            .ended_epochs(activity_id, now, MAX_REVEALED)
            .await?
            .iter()
            .filter_map(|e| revealed(e, now))
            .collect();
        Ok(FairnessView {
            activity_id,
            enabled,
            current,
            revealed,
        })
    }

    /// `verify_draw`: the proof of a user's draw, the seed if revealed, and whether the
    /// documented algorithm gives the proof's `sampledAwardId`.
    pub async fn verify(
        &self,
        user_id: &str,
        activity_id: i64,
        order_id: &str,
    ) -> Result<Verification> {
        let missing = || {
            Error::illegal(format!(
                "user {user_id} has no award record of order {order_id} in activity {activity_id}"
            ))
        };
        let stored = self
            .repo
            .stored_proof(user_id, order_id)
            .await?
            .filter(|s| s.activity_id == activity_id)
            .ok_or_else(missing)?;
        let proof = Proof::from_json(stored.proof.as_deref().ok_or_else(|| {
            Error::illegal(format!(
                "order {order_id} was not a fair draw (activity {activity_id} did not draw fairly then)"
            ))
        })?)?;
        let now = self.clock.now().datetime();
        let epoch = self.repo.epoch(activity_id, proof.epoch).await?;
        let Some(epoch) = epoch.filter(|e| e.is_revealed(now)) else {
            return Ok(Verification {
                proof,
                seed: None,
                recomputed_award_id: None,
                verified: false,
                detail: "not yet revealed".to_owned(),
            });
        };
        let commitment_ok = epoch.commitment() == proof.commitment;
        let recomputed = recompute(&proof, &epoch.seed, activity_id, user_id)?;
        let verified = commitment_ok && recomputed == Some(proof.sampled_award_id);
        let detail = if !commitment_ok {
            "the revealed seed does not match the proof's commitment".to_owned()
        } else if proof.table == "blacklist" {
            "a blacklisted user's draw uses no randomness".to_owned()
        } else if verified {
            "recomputing gives sampledAwardId".to_owned()
        } else {
            "recomputing does not give sampledAwardId".to_owned()
        };
        Ok(Verification {
            seed: Some(epoch.seed.to_hex()),
            proof,
            recomputed_award_id: recomputed,
            verified,
            detail,
        })
    }
}

fn view(seed: &FairSeed) -> EpochView {
    EpochView {
        epoch: seed.epoch,
        commitment: seed.commitment(),
        begin_time: seed.begin_time,
        end_time: seed.end_time,
    }
}

fn revealed(seed: &FairSeed, now: DateTime) -> Option<RevealedEpoch> {
    Some(RevealedEpoch {
        epoch: seed.epoch,
        commitment: seed.commitment(),
        seed: seed.reveal(now)?,
        begin_time: seed.begin_time,
        end_time: seed.end_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::FixedClock;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Seeds and flags in maps; one instance may serve several services (two nodes on
    /// one store).
    #[derive(Default)]
    struct Memory {
        fair: Mutex<HashSet<i64>>,
        seeds: Mutex<BTreeMap<(i64, i64), FairSeed>>,
        proofs: Mutex<Vec<(String, String, StoredProof)>>,
    }

    #[async_trait]
    impl FairnessRepository for Memory {
        async fn fair_activities(&self) -> Result<Vec<i64>> {
            Ok(self.fair.lock().unwrap().iter().copied().collect())
        }
        async fn enable_fairness(&self, activity_id: i64) -> Result<()> {
            self.fair.lock().unwrap().insert(activity_id);
            Ok(())
        }
        async fn latest_epoch(&self, activity_id: i64) -> Result<Option<FairSeed>> {
            Ok(self
                .seeds
                .lock()
                .unwrap()
                .values()
                .filter(|s| s.activity_id == activity_id)
                .max_by_key(|s| s.epoch)
                .cloned())
        }
        async fn epoch(&self, activity_id: i64, epoch: i64) -> Result<Option<FairSeed>> {
            Ok(self
                .seeds
                .lock()
                .unwrap()
                .get(&(activity_id, epoch))
                .cloned())
        }
        async fn ended_epochs(
            &self,
            activity_id: i64,
            now: DateTime,
            limit: usize,
        ) -> Result<Vec<FairSeed>> {
            let mut ended: Vec<FairSeed> = self
                .seeds
                .lock()
                .unwrap()
                .values()
                .filter(|s| s.activity_id == activity_id && s.end_time <= now)
                .cloned()
                .collect();
            ended.sort_by_key(|s| -s.epoch);
            ended.truncate(limit);
            Ok(ended)
        }
        async fn insert_epoch(&self, seed: &FairSeed) -> Result<bool> {
            let mut seeds = self.seeds.lock().unwrap();
            let key = (seed.activity_id, seed.epoch);
            if seeds.contains_key(&key) {
                return Ok(false);
            }
            seeds.insert(key, seed.clone());
            Ok(true)
        }
        async fn end_epoch(&self, activity_id: i64, epoch: i64, at: DateTime) -> Result<bool> {
            let mut seeds = self.seeds.lock().unwrap();
            match seeds.get_mut(&(activity_id, epoch)) {
                Some(s) if s.end_time > at => {
                    s.end_time = at;
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        async fn stored_proof(&self, user_id: &str, order_id: &str) -> Result<Option<StoredProof>> {
            Ok(self
                .proofs
                .lock()
                .unwrap()
                .iter()
                .find(|(u, o, _)| u == user_id && o == order_id)
                .map(|(_, _, p)| p.clone()))
        }
    }

    fn clock(at: &str) -> Arc<FixedClock> {
        let zone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        let now = crate::time::parse_datetime(at)
            .unwrap()
            .to_zoned(zone)
            .unwrap();
        Arc::new(FixedClock::new(now))
    }

    fn set(clock: &FixedClock, at: &str) {
        let zone = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        clock.set(
            crate::time::parse_datetime(at)
                .unwrap()
                .to_zoned(zone)
                .unwrap(),
        );
    }

    fn at(s: &str) -> DateTime {
        crate::time::parse_datetime(s).unwrap()
    }

    /// A log sink for one thread.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Epochs follow calendar days; two nodes on one store share epoch and seed; a seed
    /// is shown only after its epoch, never in a log line or a `Debug` output before.
    #[test]
    fn epochs_are_shared_revealed_only_when_ended_and_never_logged() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let repo = Arc::new(Memory::default());
        let clock = clock("2026-12-02 10:00:00");
        let node_a = FairnessService::new(repo.clone(), clock.clone(), 86_400);
        let node_b = FairnessService::new(repo.clone(), clock.clone(), 86_400);
        let (first, shown) = tracing::subscriber::with_default(subscriber, || {
            pollster::block_on(async {
                let first = node_a.enable(100301).await.unwrap();
                node_b.refresh().await.unwrap();
                let draw_a = node_a
                    .draw_source(100301, Some("c"))
                    .await
                    .unwrap()
                    .unwrap();
                let draw_b = node_b.draw_source(100301, None).await.unwrap().unwrap();
                assert_eq!(draw_a.seed, draw_b.seed, "one seed for every node");
                assert_eq!((draw_a.epoch, draw_b.epoch), (1, 1));
                let query = node_b.query(100301).await.unwrap();
                assert!(query.revealed.is_empty());
                let shown = format!("{first:?}{draw_a:?}{query:?}");
                // The next day: epoch 1 ended at midnight and is revealed; epoch 2 is
                // written on first use.
                set(&clock, "2026-12-03 08:00:00");
                let query = node_b.query(100301).await.unwrap();
                let current = query.current.clone().unwrap();
                assert_eq!(current.epoch, 2);
                assert_eq!(
                    (current.begin_time, current.end_time),
                    (at("2026-12-03 08:00:00"), at("2026-12-04 00:00:00"))
                );
                assert_eq!(query.revealed.len(), 1);
                assert_eq!(query.revealed[0].seed, draw_a.seed.to_hex());
                let (revealed, next) = node_a.rotate(100301).await.unwrap();
                assert_eq!((revealed.epoch, next.epoch), (2, 3));
                assert_eq!(node_b.query(100301).await.unwrap().revealed.len(), 2);
                (first, shown)
            })
        });
        assert_eq!(first.epoch, 1);
        assert_eq!(first.end_time, at("2026-12-03 00:00:00"));
        let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("fairness seed committed"), "{logs}");
        for seed in repo.seeds.lock().unwrap().values() {
            let hex = seed.seed.to_hex();
            assert!(!logs.contains(&hex), "a seed in the logs: {logs}");
            assert!(!shown.contains(&hex), "a seed in Debug output: {shown}");
        }
    }

    /// Shorter epochs end at the next multiple of their length since midnight.
    #[test]
    fn hourly_epochs_end_on_the_hour() {
        let repo = Arc::new(Memory::default());
        let clock = clock("2026-12-02 10:20:00");
        let fair = FairnessService::new(repo, clock, 3_600);
        let current = pollster::block_on(fair.enable(7)).unwrap();
        assert_eq!(current.end_time, at("2026-12-02 11:00:00"));
    }

    /// A fair draw through the one-transaction draw keeps its proof with the award
    /// record, and `verify` recomputes it once the epoch is rotated.
    #[test]
    fn a_fair_draw_keeps_its_proof_and_verifies_after_rotation() {
        use crate::activity::memory::MemoryStore;
        use crate::activity::quota::{self, DrawInput};
        use crate::time::CalendarKeys;
        use rand::SeedableRng;

        let repo = Arc::new(Memory::default());
        let clock = clock("2026-12-02 10:00:00");
        let fair = FairnessService::new(repo.clone(), clock.clone(), 86_400);
        let data = crate::sample::SampleData::upstream();
        let activity = data
            .activities
            .iter()
            .find(|a| a.activity_id == 100301)
            .unwrap()
            .clone();
        let strategy = crate::sample::assembled(activity.strategy_id);
        let now = clock.now();
        let keys = CalendarKeys::of(&now);
        let mut store = MemoryStore::default();
        store.accounts.insert(
            ("fair_user".to_owned(), 100301),
            crate::activity::ActivityAccount {
                user_id: "fair_user".into(),
                activity_id: 100301,
                total_count: 10,
                total_count_surplus: 10,
                day_count: 10,
                day_count_surplus: 10,
                month_count: 10,
                month_count_surplus: 10,
            },
        );
        for award in &strategy.awards {
            store
                .award_stock
                .insert((strategy.strategy_id(), award.award_id), 100);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        pollster::block_on(async {
            fair.enable(100301).await.unwrap();
            let source = fair
                .draw_source(100301, Some("abc"))
                .await
                .unwrap()
                .unwrap();
            let input = DrawInput {
                activity: &activity,
                strategy: &strategy,
                user_id: "fair_user",
                now: now.datetime(),
                timestamp_ms: 0,
                keys: &keys,
                fair: Some(&source),
            };
            let outcome = store
                .unit(async |tx| quota::draw(tx, input, &mut rng).await)
                .await
                .unwrap();
            let proof = outcome.proof.clone().unwrap();
            assert_eq!((proof.draw_no, proof.table.as_str()), (1, "default"));
            assert_eq!(proof.award_id, outcome.award.award_id);
            let record = store.award_records.last().unwrap();
            let kept = Proof::from_json(record.fair_proof.as_deref().unwrap()).unwrap();
            assert_eq!(kept, proof);
            repo.proofs.lock().unwrap().push((
                "fair_user".into(),
                outcome.order_id.clone(),
                StoredProof {
                    activity_id: 100301,
                    proof: record.fair_proof.clone(),
                },
            ));
            let early = fair
                .verify("fair_user", 100301, &outcome.order_id)
                .await
                .unwrap();
            assert!(early.seed.is_none() && !early.verified);
            fair.rotate(100301).await.unwrap();
            let v = fair
                .verify("fair_user", 100301, &outcome.order_id)
                .await
                .unwrap();
            assert!(v.verified, "{v:?}");
            assert_eq!(v.recomputed_award_id, Some(proof.sampled_award_id));
            assert!(
                fair.verify("fair_user", 100401, &outcome.order_id)
                    .await
                    .is_err()
            );
        });
    }
}
