//! The domain's state names under the names SQL of both stores interpolates, so a state
//! is spelled once (in the domain) and every statement says which column's states it
//! means.

pub(crate) use big_market_domain::activity::order_state::{
    COMPLETED as ORDER_COMPLETED, WAIT_PAY as ORDER_WAIT_PAY,
};
pub(crate) use big_market_domain::activity::raffle_state::{
    CREATE as RAFFLE_CREATE, USED as RAFFLE_USED,
};
pub(crate) use big_market_domain::award::state::{
    COMPLETED as AWARD_COMPLETED, CREATE as AWARD_CREATE,
};
pub(crate) use big_market_domain::credit::account_status::OPEN as ACCOUNT_OPEN;
pub(crate) use big_market_domain::task::state::{
    COMPLETED as TASK_COMPLETED, CREATE as TASK_CREATE, FAIL as TASK_FAIL, PARKED as TASK_PARKED,
};
