//! The draw and recharge ports in memory: one user's rows in maps, award stock in a map.
//! A unit of work that fails leaves nothing behind, as a database transaction would
//! ([`MemoryStore::unit`]). It lets the quota rules be tested without a database and a
//! campaign be simulated without touching one.

use super::quota::{DrawDeduction, DrawTx, QuotaRows, RechargeTx};
use super::{
    ActivityAccount, PeriodAccount, RaffleActivityCount, RaffleActivityOrder, UserRaffleOrder,
    order_state, raffle_state,
};
use crate::award::{AwardRecordTx, UserAwardRecord};
use crate::error::{Error, ResponseCode, Result};
use crate::id::Inserted;
use crate::strategy::StockStore;
use crate::task::{Task, TaskTx};
use crate::time::CalendarKeys;
use jiff::civil::DateTime;
use std::collections::BTreeMap;

type UserActivity = (String, i64);
type UserPeriod = (String, i64, String);

/// Every row the draw and recharge ports touch, in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStore {
    pub accounts: BTreeMap<UserActivity, ActivityAccount>,
    pub months: BTreeMap<UserPeriod, PeriodAccount>,
    pub days: BTreeMap<UserPeriod, PeriodAccount>,
    /// Raffle orders in insertion order.
    pub raffle_orders: Vec<UserRaffleOrder>,
    pub activity_orders: Vec<RaffleActivityOrder>,
    pub award_records: Vec<UserAwardRecord>,
    pub tasks: Vec<Task>,
    /// Award stock left, by (strategy, award); an award without an entry has none.
    pub award_stock: BTreeMap<(i64, i32), i64>,
    /// SKU stock left; a SKU without an entry has none.
    pub sku_stock: BTreeMap<i64, i64>,
}

impl MemoryStore {
    /// Runs `work` as one unit: when it fails, every row is as it was before.
    pub async fn unit<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut MemoryStore) -> Result<T>,
    ) -> Result<T> {
        let before = self.clone();
        let result = work(self).await;
        if result.is_err() {
            *self = before;
        }
        result
    }
}

fn period_key(user_id: &str, activity_id: i64, period: &str) -> UserPeriod {
    (user_id.to_owned(), activity_id, period.to_owned())
}

/// `surplus − 1` when it is above `floor` (units held back); whether it was.
fn take_above(surplus: &mut i64, floor: i64) -> bool {
    if *surplus > floor.max(0) {
        *surplus -= 1;
        true
    } else {
        false
    }
}

impl StockStore for MemoryStore {
    async fn take_award_stock(
        &mut self,
        strategy_id: i64,
        award_id: i32,
        held_back: i64,
    ) -> Result<bool> {
        Ok(self
            .award_stock
            .get_mut(&(strategy_id, award_id))
            .is_some_and(|left| take_above(left, held_back)))
    }
}

impl DrawTx for MemoryStore {
    async fn quota_rows(
        &mut self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<QuotaRows> {
        Ok(QuotaRows {
            account: self
                .accounts
                .get(&(user_id.to_owned(), activity_id))
                .cloned(),
            month: self
                .months
                .get(&period_key(user_id, activity_id, &keys.month))
                .cloned(),
            day: self
                .days
                .get(&period_key(user_id, activity_id, &keys.day))
                .cloned(),
        })
    }

    async fn deduct_draw(&mut self, d: DrawDeduction<'_>) -> Result<bool> {
        let rows = QuotaRows {
            account: self
                .accounts
                .get(&(d.user_id.to_owned(), d.activity_id))
                .cloned(),
            month: d.month.and_then(|m| {
                self.months
                    .get(&period_key(d.user_id, d.activity_id, m))
                    .cloned()
            }),
            day: d.day.and_then(|day| {
                self.days
                    .get(&period_key(d.user_id, d.activity_id, day))
                    .cloned()
            }),
        };
        if !d.fits(&rows) {
            return Ok(false);
        }
        if let Some(a) = self
            .accounts
            .get_mut(&(d.user_id.to_owned(), d.activity_id))
        {
            a.total_count_surplus -= 1;
            a.month_count_surplus = d.month_left;
            a.day_count_surplus = d.day_left;
        }
        for (rows, key) in [(&mut self.months, d.month), (&mut self.days, d.day)] {
            if let Some(row) =
                key.and_then(|k| rows.get_mut(&period_key(d.user_id, d.activity_id, k)))
            {
                row.count_surplus -= 1;
            }
        }
        Ok(true)
    }

    async fn insert_month(&mut self, row: &PeriodAccount) -> Result<()> {
        insert_period(&mut self.months, row)
    }

    async fn insert_day(&mut self, row: &PeriodAccount) -> Result<()> {
        insert_period(&mut self.days, row)
    }

    async fn unused_raffle_order(
        &mut self,
        user_id: &str,
        activity_id: i64,
    ) -> Result<Option<UserRaffleOrder>> {
        Ok(self
            .raffle_orders
            .iter()
            .rev()
            .find(|o| {
                o.user_id == user_id
                    && o.activity_id == activity_id
                    && o.order_state == raffle_state::CREATE
            })
            .cloned())
    }

    async fn insert_raffle_order(&mut self, order: &UserRaffleOrder) -> Result<Inserted> {
        if self
            .raffle_orders
            .iter()
            .any(|o| o.order_id == order.order_id)
        {
            return Ok(Inserted::IdTaken);
        }
        self.raffle_orders.push(order.clone());
        Ok(Inserted::Done)
    }

    async fn use_raffle_order(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let order = self.raffle_orders.iter_mut().find(|o| {
            o.user_id == user_id && o.order_id == order_id && o.order_state == raffle_state::CREATE
        });
        Ok(match order {
            Some(o) => {
                o.order_state = raffle_state::USED.to_owned();
                true
            }
            None => false,
        })
    }
}

fn insert_period(
    rows: &mut BTreeMap<UserPeriod, PeriodAccount>,
    row: &PeriodAccount,
) -> Result<()> {
    let key = period_key(&row.user_id, row.activity_id, &row.period);
    if rows.contains_key(&key) {
        return Err(Error::internal(format!("period row {key:?} exists")));
    }
    rows.insert(key, row.clone());
    Ok(())
}

impl RechargeTx for MemoryStore {
    async fn insert_activity_order(&mut self, order: &RaffleActivityOrder) -> Result<Inserted> {
        if self
            .activity_orders
            .iter()
            .any(|o| o.out_business_no == order.out_business_no)
        {
            return Err(Error::biz(
                ResponseCode::IndexDup,
                format!("outBusinessNo {} was already used", order.out_business_no),
            ));
        }
        if self
            .activity_orders
            .iter()
            .any(|o| o.order_id == order.order_id)
        {
            return Ok(Inserted::IdTaken);
        }
        self.activity_orders.push(order.clone());
        Ok(Inserted::Done)
    }

    async fn take_sku_stock(&mut self, sku: i64) -> Result<bool> {
        Ok(self
            .sku_stock
            .get_mut(&sku)
            .is_some_and(|left| take_above(left, 0)))
    }

    async fn add_quota(
        &mut self,
        user_id: &str,
        activity_id: i64,
        c: &RaffleActivityCount,
        keys: &CalendarKeys,
    ) -> Result<()> {
        let account = self
            .accounts
            .entry((user_id.to_owned(), activity_id))
            .or_insert_with(|| ActivityAccount {
                user_id: user_id.to_owned(),
                activity_id,
                ..ActivityAccount::default()
            });
        account.total_count += c.total_count;
        account.total_count_surplus += c.total_count;
        account.day_count += c.day_count;
        account.day_count_surplus += c.day_count;
        account.month_count += c.month_count;
        account.month_count_surplus += c.month_count;
        if let Some(day) = self
            .days
            .get_mut(&period_key(user_id, activity_id, &keys.day))
        {
            day.count += c.day_count;
            day.count_surplus += c.day_count;
        }
        if let Some(month) = self
            .months
            .get_mut(&period_key(user_id, activity_id, &keys.month))
        {
            month.count += c.month_count;
            month.count_surplus += c.month_count;
        }
        Ok(())
    }

    async fn unpaid_order(
        &mut self,
        user_id: &str,
        sku: i64,
        since: DateTime,
    ) -> Result<Option<RaffleActivityOrder>> {
        Ok(self
            .activity_orders
            .iter()
            .rev()
            .find(|o| {
                o.user_id == user_id
                    && o.sku == sku
                    && o.state == order_state::WAIT_PAY
                    && o.order_time >= since
            })
            .cloned())
    }

    async fn activity_order_by_business_no(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<Option<RaffleActivityOrder>> {
        Ok(self
            .activity_orders
            .iter()
            .find(|o| o.user_id == user_id && o.out_business_no == out_business_no)
            .cloned())
    }

    async fn complete_activity_order(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<bool> {
        let order = self.activity_orders.iter_mut().find(|o| {
            o.user_id == user_id
                && o.out_business_no == out_business_no
                && o.state == order_state::WAIT_PAY
        });
        Ok(match order {
            Some(o) => {
                o.state = order_state::COMPLETED.to_owned();
                true
            }
            None => false,
        })
    }
}

impl AwardRecordTx for MemoryStore {
    async fn insert_award_record(&mut self, record: &UserAwardRecord) -> Result<()> {
        self.award_records.push(record.clone());
        Ok(())
    }
}

impl TaskTx for MemoryStore {
    async fn insert_task(&mut self, task: &Task) -> Result<Inserted> {
        if self
            .tasks
            .iter()
            .any(|t| t.message_id() == task.message_id())
        {
            return Ok(Inserted::IdTaken);
        }
        self.tasks.push(task.clone());
        Ok(Inserted::Done)
    }
}

#[cfg(test)]
mod tests {
    //! The quota rules against a model that says what must happen: a draw succeeds when
    //! the user has an unused order, or draws left in total, this month and today, where
    //! a new month or day starts from everything granted so far (upstream's lazily made
    //! rows), and a grant also tops up today's and this month's rows. A refused draw
    //! changes nothing.
    use super::*;
    use crate::activity::quota::{self, DrawInput};
    use crate::activity::{RaffleActivity, state};
    use crate::strategy::{AssembledStrategy, StrategyAward, StrategyConfig};
    use jiff::civil::date;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashMap;

    const USER: &str = "u1";
    const ACTIVITY: i64 = 1;
    const STRATEGY: i64 = 10;

    #[derive(Debug, Clone)]
    enum Op {
        /// A SKU's counts added to the account (and today's and this month's rows).
        Grant {
            total: i64,
            month: i64,
            day: i64,
        },
        /// The calendar moves on by this many days (the start is 2026-01-29, so months
        /// change too).
        Advance(i64),
        /// A `create` raffle order left by an earlier failed draw (its quota was taken).
        LeftOrder,
        Draw,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        prop_oneof![
            3 => (0i64..4, 0i64..4, 0i64..4).prop_map(|(total, month, day)| Op::Grant { total, month, day }),
            2 => (0i64..3).prop_map(Op::Advance),
            1 => Just(Op::LeftOrder),
            6 => Just(Op::Draw),
        ]
    }

    fn strategy() -> AssembledStrategy {
        AssembledStrategy::assemble(StrategyConfig {
            strategy: Some(crate::strategy::Strategy {
                strategy_id: STRATEGY,
                strategy_desc: "quota".into(),
                rule_models: None,
            }),
            awards: vec![StrategyAward {
                strategy_id: STRATEGY,
                award_id: 101,
                award_title: "a".into(),
                award_subtitle: None,
                award_count: 1_000,
                award_count_surplus: 1_000,
                award_rate: rust_decimal::Decimal::ONE,
                rule_models: None,
                sort: 1,
            }],
            activity_id: Some(ACTIVITY),
            ..StrategyConfig::default()
        })
        .expect("the test strategy assembles")
    }

    fn activity() -> RaffleActivity {
        RaffleActivity {
            activity_id: ACTIVITY,
            activity_name: "quota".into(),
            activity_desc: "quota".into(),
            begin_date_time: date(2020, 1, 1).at(0, 0, 0, 0),
            end_date_time: date(2099, 1, 1).at(0, 0, 0, 0),
            strategy_id: STRATEGY,
            state: state::OPEN.into(),
        }
    }

    fn keys(day: i64) -> (DateTime, CalendarKeys) {
        let now = date(2026, 1, 29)
            .at(12, 0, 0, 0)
            .checked_add(jiff::Span::new().days(day))
            .expect("in range");
        let zoned = now.to_zoned(jiff::tz::TimeZone::UTC).expect("in range");
        (now, CalendarKeys::of(&zoned))
    }

    /// What the model expects of the rows.
    #[derive(Default)]
    struct Model {
        granted: (i64, i64, i64),
        counted: i64,
        per_month: HashMap<String, i64>,
        per_day: HashMap<String, i64>,
        left_orders: usize,
    }

    impl Model {
        /// `None` when a draw must succeed, else the code it must be refused with.
        fn refusal(&self, keys: &CalendarKeys) -> Option<ResponseCode> {
            if self.left_orders > 0 {
                return None;
            }
            let month_used = self.per_month.get(&keys.month).copied().unwrap_or(0);
            let day_used = self.per_day.get(&keys.day).copied().unwrap_or(0);
            if self.granted.0 - self.counted <= 0 {
                Some(ResponseCode::AccountQuotaError)
            } else if self.granted.1 - month_used <= 0 {
                Some(ResponseCode::AccountMonthQuotaError)
            } else if self.granted.2 - day_used <= 0 {
                Some(ResponseCode::AccountDayQuotaError)
            } else {
                None
            }
        }
    }

    fn run(ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
        let (strategy, activity) = (strategy(), activity());
        let mut store = MemoryStore::default();
        store.award_stock.insert((STRATEGY, 101), 1_000);
        let mut model = Model::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut day = 0;
        for op in ops {
            let (now, keys) = keys(day);
            match op {
                Op::Grant { total, month, day } => {
                    let counts = RaffleActivityCount {
                        activity_count_id: 1,
                        total_count: total,
                        day_count: day,
                        month_count: month,
                    };
                    pollster::block_on(store.add_quota(USER, ACTIVITY, &counts, &keys))
                        .expect("add_quota");
                    model.granted.0 += total;
                    model.granted.1 += month;
                    model.granted.2 += day;
                }
                Op::Advance(days) => day += days,
                Op::LeftOrder => {
                    store.raffle_orders.push(UserRaffleOrder {
                        user_id: USER.into(),
                        activity_id: ACTIVITY,
                        activity_name: "quota".into(),
                        strategy_id: STRATEGY,
                        order_id: format!("left{}", store.raffle_orders.len()),
                        order_time: now,
                        order_state: raffle_state::CREATE.into(),
                    });
                    model.left_orders += 1;
                }
                Op::Draw => {
                    let before = store.clone();
                    let input = DrawInput {
                        activity: &activity,
                        strategy: &strategy,
                        user_id: USER,
                        now,
                        timestamp_ms: 0,
                        keys: &keys,
                        fair: None,
                    };
                    let result = pollster::block_on(
                        store.unit(async |tx| quota::draw(tx, input, &mut rng).await),
                    );
                    match (model.refusal(&keys), result) {
                        (None, Ok(outcome)) => {
                            prop_assert_eq!(
                                store.award_records.len(),
                                before.award_records.len() + 1
                            );
                            prop_assert_eq!(store.tasks.len(), before.tasks.len() + 1);
                            let order = store
                                .raffle_orders
                                .iter()
                                .find(|o| o.order_id == outcome.order_id)
                                .expect("the draw's order");
                            prop_assert_eq!(order.order_state.as_str(), raffle_state::USED);
                            if model.left_orders > 0 {
                                model.left_orders -= 1;
                                prop_assert_eq!(
                                    store.raffle_orders.len(),
                                    before.raffle_orders.len()
                                );
                                prop_assert_eq!(
                                    &store.accounts,
                                    &before.accounts,
                                    "a reused order takes no quota"
                                );
                            } else {
                                model.counted += 1;
                                *model.per_month.entry(keys.month.clone()).or_default() += 1;
                                *model.per_day.entry(keys.day.clone()).or_default() += 1;
                            }
                        }
                        (Some(code), Err(e)) => {
                            prop_assert_eq!(e.code(), code, "{}", e);
                            prop_assert_eq!(&store, &before, "a refused draw changes nothing");
                        }
                        (want, got) => {
                            prop_assert!(
                                false,
                                "expected {:?}, got {:?}",
                                want,
                                got.map(|o| o.order_id)
                            );
                        }
                    }
                }
            }
            // The rows always agree with the model.
            if let Some(a) = store.accounts.get(&(USER.into(), ACTIVITY)) {
                prop_assert_eq!((a.total_count, a.used()), (model.granted.0, model.counted));
                prop_assert!(a.total_count_surplus >= 0);
            }
            for row in store.months.values() {
                prop_assert!(row.count_surplus >= 0, "{:?}", row);
                prop_assert_eq!(
                    row.used(),
                    model.per_month.get(&row.period).copied().unwrap_or(0)
                );
            }
            for row in store.days.values() {
                prop_assert!(row.count_surplus >= 0, "{:?}", row);
                prop_assert_eq!(
                    row.used(),
                    model.per_day.get(&row.period).copied().unwrap_or(0)
                );
            }
        }
        Ok(())
    }

    /// A draw whose order id and message id are taken draws new ones from the generator
    /// it was given: the same seed and the same taken ids give the same rows.
    #[test]
    fn taken_ids_are_redrawn_from_the_draws_generator() {
        let (strategy, activity) = (strategy(), activity());
        let (now, keys) = keys(0);
        let mut fresh = MemoryStore::default();
        fresh.award_stock.insert((STRATEGY, 101), 10);
        let counts = RaffleActivityCount {
            activity_count_id: 1,
            total_count: 5,
            day_count: 5,
            month_count: 5,
        };
        pollster::block_on(fresh.add_quota(USER, ACTIVITY, &counts, &keys)).expect("add_quota");
        let draw = |store: &mut MemoryStore| {
            let input = DrawInput {
                activity: &activity,
                strategy: &strategy,
                user_id: USER,
                now,
                timestamp_ms: 0,
                keys: &keys,
                fair: None,
            };
            let mut rng = StdRng::seed_from_u64(42);
            pollster::block_on(store.unit(async |tx| quota::draw(tx, input, &mut rng).await))
                .expect("the draw succeeds")
        };

        // Where nothing is taken, the seed's first ids.
        let mut free = fresh.clone();
        let first = draw(&mut free);
        let first_task = free.tasks.first().cloned().expect("a task");

        // The same ids held by other rows.
        let mut crowded = fresh.clone();
        crowded.raffle_orders.push(UserRaffleOrder {
            user_id: "someone else".into(),
            order_state: raffle_state::USED.into(),
            ..free.raffle_orders.first().cloned().expect("an order")
        });
        crowded.tasks.push(first_task.clone());
        let mut again = crowded.clone();
        let redrawn = draw(&mut crowded);
        assert_ne!(redrawn.order_id, first.order_id);
        let task = crowded.tasks.last().expect("the draw's task");
        assert_ne!(task.message_id(), first_task.message_id());
        assert_eq!(crowded.tasks.len(), 2);

        // Replayed with the same seed: the same replacements.
        let replayed = draw(&mut again);
        assert_eq!(replayed.order_id, redrawn.order_id);
        assert_eq!(
            again.tasks.last().map(|t| t.message_id().to_owned()),
            Some(task.message_id().to_owned())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn draws_follow_the_total_month_and_day_quota(ops in proptest::collection::vec(op(), 1..60)) {
            run(ops)?;
        }
    }
}
