//! The one error type of the domain: a [`ResponseCode`] of upstream's code table and a
//! message. The HTTP edge maps it to the `{code, info, data}` envelope in one place.

use std::fmt;

/// Upstream's response codes (`ResponseCode.java`), with their verbatim `info` texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseCode {
    Success,
    UnError,
    IllegalParameter,
    IndexDup,
    DegradeSwitch,
    RateLimiter,
    Hystrix,
    GatewayError,
    AppTokenError,
    /// Upstream's nested `ResponseCode.Login.TOKEN_ERROR`: the same code as `IndexDup`.
    LoginTokenError,
    StrategyRuleWeightIsNull,
    UnAssembledStrategyArmory,
    ActivityStateError,
    ActivityDateError,
    ActivitySkuStockError,
    AccountQuotaError,
    AccountMonthQuotaError,
    AccountDayQuotaError,
    ActivityOrderError,
    AwardConfigError,
    UserCreditAccountNoAvailableAmount,
    /// Not upstream's: the embedded store has no space left (disk full or its size cap),
    /// so the write was refused and nothing was taken. Not a breaker failure: it fails
    /// fast and says why.
    StoreFull,
}

impl ResponseCode {
    /// The wire code, e.g. `"0000"` or `"ERR_BIZ_001"`.
    pub fn code(self) -> &'static str {
        use ResponseCode::*;
        match self {
            Success => "0000",
            UnError => "0001",
            IllegalParameter => "0002",
            IndexDup => "0003",
            DegradeSwitch => "0004",
            RateLimiter => "0005",
            Hystrix => "0006",
            GatewayError => "0007",
            AppTokenError => "0008",
            LoginTokenError => "0003",
            StrategyRuleWeightIsNull => "ERR_BIZ_001",
            UnAssembledStrategyArmory => "ERR_BIZ_002",
            ActivityStateError => "ERR_BIZ_003",
            ActivityDateError => "ERR_BIZ_004",
            ActivitySkuStockError => "ERR_BIZ_005",
            AccountQuotaError => "ERR_BIZ_006",
            AccountMonthQuotaError => "ERR_BIZ_007",
            AccountDayQuotaError => "ERR_BIZ_008",
            ActivityOrderError => "ERR_BIZ_009",
            AwardConfigError => "ERR_CONFIG_001",
            UserCreditAccountNoAvailableAmount => "ERR_CREDIT_001",
            StoreFull => "ERR_STORE_001",
        }
    }

    /// Upstream's `info` text for the code.
    pub fn info(self) -> &'static str {
        use ResponseCode::*;
        match self {
            Success => "调用成功",
            UnError => "调用失败",
            IllegalParameter => "非法参数",
            IndexDup => "唯一索引冲突",
            DegradeSwitch => "活动已降级",
            RateLimiter => "访问限流拦截",
            Hystrix => "访问熔断拦截",
            GatewayError => "网关接口调用失败",
            AppTokenError => "接口权限拦截",
            LoginTokenError => "登录权限拦截",
            StrategyRuleWeightIsNull => "业务异常，策略规则中 rule_weight 权重规则已适用但未配置",
            UnAssembledStrategyArmory => "抽奖策略配置未装配，请通过IStrategyArmory完成装配",
            ActivityStateError => "活动未开启（非open状态）",
            ActivityDateError => "非活动日期范围",
            ActivitySkuStockError => "活动库存不足",
            AccountQuotaError => "账户总额度不足",
            AccountMonthQuotaError => "账户月额度不足",
            AccountDayQuotaError => "账户日额度不足",
            ActivityOrderError => "用户抽奖单已使用过，不可重复抽奖",
            AwardConfigError => "award_config 配置不是一个范围值，如 1,100",
            UserCreditAccountNoAvailableAmount => "用户积分账户额度不足",
            StoreFull => "存储空间不足",
        }
    }
}

/// A domain failure. `Internal` failures (storage, bugs) are logged at the edge and shown
/// to clients only as `0001`; every other kind carries a message safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A business outcome with its code, e.g. `ERR_BIZ_006`.
    Biz { code: ResponseCode, message: String },
    /// Operator configuration that cannot be used (a malformed rule value, a missing tree).
    Config(String),
    /// Anything unexpected: storage failures, broken invariants.
    Internal(String),
}

impl Error {
    pub fn biz(code: ResponseCode, message: impl Into<String>) -> Self {
        Error::Biz {
            code,
            message: message.into(),
        }
    }

    /// `0002` naming the offending field.
    pub fn illegal(message: impl Into<String>) -> Self {
        Error::biz(ResponseCode::IllegalParameter, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    pub fn internal(message: impl fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }

    /// The response code this error is reported with.
    pub fn code(&self) -> ResponseCode {
        match self {
            Error::Biz { code, .. } => *code,
            Error::Config(_) | Error::Internal(_) => ResponseCode::UnError,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Biz { code, message } => write!(f, "{}: {message}", code.code()),
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
