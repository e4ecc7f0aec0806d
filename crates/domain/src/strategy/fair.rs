//! Provably fair draws: commit–reveal seeds per activity and epoch, the documented
//! HMAC-SHA256 number of a draw, and the proof kept with the award record.
//!
//! Design rule: the algorithm here is the one `docs/FAIRNESS.md` states, byte for byte,
//! so anyone can recompute a draw from its proof and the revealed seed. A seed leaves
//! this module only through [`FairSeed::reveal`] (once its epoch has ended) and the
//! storage port; its `Debug` output never shows it.

#![cfg_attr(not(test), deny(clippy::as_conversions))]

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Length of a seed in bytes.
pub const SEED_LEN: usize = 32;
/// Longest `clientSeed`, in characters.
pub const MAX_CLIENT_SEED: usize = 64;

/// A secret seed. Cloning is allowed (a draw carries it into its transaction); printing
/// is not.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed([u8; SEED_LEN]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<secret>)")
    }
}

impl Seed {
    pub fn from_bytes(bytes: [u8; SEED_LEN]) -> Self {
        Self(bytes)
    }

    /// A new seed from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        use rand::TryRngCore;
        let mut bytes = [0u8; SEED_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| Error::internal(format!("the OS random generator failed: {e}")))?;
        Ok(Self(bytes))
    }

    /// Parses the lowercase (or uppercase) hex form of 32 bytes.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = decode_hex(text)
            .and_then(|b| <[u8; SEED_LEN]>::try_from(b).ok())
            .ok_or_else(|| Error::config("a stored fairness seed is not 64 hex digits"))?;
        Ok(Self(bytes))
    }

    /// The hex form, for storage (never for display before the reveal).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// `hex(SHA-256(seed))`: what is published before the epoch's first draw.
    pub fn commitment(&self) -> String {
        hex(&Sha256::digest(self.0))
    }

    pub fn as_bytes(&self) -> &[u8; SEED_LEN] {
        &self.0
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(*d));
            }
        }
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    let pairs = digits.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    Some(
        pairs
            .map(|pair| match pair {
                [hi, lo] => (hi << 4) | lo,
                _ => 0,
            })
            .collect(),
    )
}

/// One epoch of a fair activity: its seed and when it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FairSeed {
    pub activity_id: i64,
    /// 1, 2, 3, … per activity.
    pub epoch: i64,
    pub seed: Seed,
    pub begin_time: DateTime,
    /// When the epoch ends (or ended, if rotated early); its seed is revealed from then.
    pub end_time: DateTime,
}

impl FairSeed {
    pub fn commitment(&self) -> String {
        self.seed.commitment()
    }

    /// Whether the seed may be shown at `now`: only once its epoch has ended.
    pub fn is_revealed(&self, now: DateTime) -> bool {
        self.end_time <= now
    }

    /// The seed's hex form if it may be shown at `now`.
    pub fn reveal(&self, now: DateTime) -> Option<String> {
        self.is_revealed(now).then(|| self.seed.to_hex())
    }
}

/// What a draw of a fair activity uses in place of the process's random generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FairDraw {
    pub activity_id: i64,
    pub epoch: i64,
    pub seed: Seed,
    pub commitment: String,
    /// The player's string, empty when absent.
    pub client_seed: String,
}

/// Checks a player's `clientSeed`: at most [`MAX_CLIENT_SEED`] characters.
pub fn validate_client_seed(client_seed: &str) -> Result<()> {
    if client_seed.chars().count() > MAX_CLIENT_SEED {
        return Err(Error::illegal(format!(
            "clientSeed is longer than {MAX_CLIENT_SEED} characters"
        )));
    }
    Ok(())
}

/// The message of the `k`-th attempt: `{activityId}:{userId}:{drawNo}:{clientSeed}:{k}`.
pub fn message(activity_id: i64, user_id: &str, draw_no: i64, client_seed: &str, k: u64) -> String {
    format!("{activity_id}:{user_id}:{draw_no}:{client_seed}:{k}")
}

/// The number of a draw in `[0, total)`: for `k = 0, 1, …`, `r` = the first 8 bytes of
/// `HMAC-SHA256(seed, message(k))` big-endian; the first `r < 2^64 − (2^64 mod total)`
/// gives `r mod total` (rejection sampling, so every value is exactly as likely).
pub fn fair_number(
    seed: &Seed,
    activity_id: i64,
    user_id: &str,
    draw_no: i64,
    client_seed: &str,
    total: u64,
) -> Result<u64> {
    if total == 0 {
        return Err(Error::config(
            "a fair draw needs a table with a positive total weight",
        ));
    }
    // 2^64 mod total, computed in u64: (2^64 − total) mod total.
    let rem = (u64::MAX - total + 1) % total;
    let limit = u128::from(u64::MAX) + 1 - u128::from(rem);
    // The chance of a rejection is below 1/2 per attempt, so this ends at once in
    // practice; the bound only keeps the loop finite.
    for k in 0..1_000u64 {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(seed.as_bytes())
            .map_err(|e| Error::internal(format!("HMAC key: {e}")))?;
        mac.update(message(activity_id, user_id, draw_no, client_seed, k).as_bytes());
        let digest = mac.finalize().into_bytes();
        let first: [u8; 8] = digest
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::internal("HMAC-SHA256 gave fewer than 8 bytes"))?;
        let r = u64::from_be_bytes(first);
        if u128::from(r) < limit {
            return Ok(r % total);
        }
    }
    Err(Error::internal("no fair number after 1000 attempts"))
}

/// The award whose cumulative interval `[c_{i−1}, c_i)` holds `x`, the awards in the
/// table's order.
pub fn pick(weights: &[(i32, u64)], x: u64) -> Option<i32> {
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut sum = 0u64;
    for (_, w) in weights {
        sum = sum.checked_add(*w)?;
        cumulative.push(sum);
    }
    // The first award whose upper bound exceeds `x`.
    let index = cumulative.partition_point(|c| *c <= x);
    weights.get(index).map(|(award_id, _)| *award_id)
}

/// The proof kept with a fair draw's award record (`user_award_record.fair_proof`,
/// JSON) and answered with the draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    pub order_id: String,
    pub epoch: i64,
    pub commitment: String,
    pub draw_no: i64,
    pub client_seed: String,
    /// `default`, `weight:N` (the group of threshold N) or `blacklist` (no randomness).
    pub table: String,
    /// `[awardId, weight]` in the table's order.
    pub weights: Vec<(i32, u64)>,
    /// The award the number picked (for `blacklist`, the blacklist award).
    pub sampled_award_id: i32,
    /// The award given: `sampledAwardId`, or another one a rule gave instead.
    pub award_id: i32,
    /// `drawn`, `locked`, `sold_out`, `luck_award` (the award's rule tree) or
    /// `blacklist`.
    pub reason: String,
}

impl Proof {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(Error::internal)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::internal(format!("a stored proof: {e}")))
    }
}

/// Recomputes a proof's sampled award from the revealed seed, by the documented
/// algorithm; `None` for a draw that used no randomness (`blacklist`).
pub fn recompute(
    proof: &Proof,
    seed: &Seed,
    activity_id: i64,
    user_id: &str,
) -> Result<Option<i32>> {
    if proof.table == "blacklist" {
        return Ok(None);
    }
    let total = proof
        .weights
        .iter()
        .try_fold(0u64, |acc, (_, w)| acc.checked_add(*w))
        .ok_or_else(|| Error::illegal("the proof's weights overflow"))?;
    let x = fair_number(
        seed,
        activity_id,
        user_id,
        proof.draw_no,
        &proof.client_seed,
        total,
    )?;
    Ok(pick(&proof.weights, x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(byte: u8) -> Seed {
        Seed::from_bytes([byte; SEED_LEN])
    }

    #[test]
    fn hex_round_trips_and_the_commitment_is_sha256_of_the_bytes() {
        let s = Seed::from_bytes(std::array::from_fn(|i| u8::try_from(i).unwrap()));
        assert_eq!(
            s.to_hex(),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert_eq!(Seed::from_hex(&s.to_hex()).unwrap(), s);
        assert!(Seed::from_hex("abc").is_err());
        assert!(Seed::from_hex(&"zz".repeat(32)).is_err());
        // SHA-256 of 32 zero bytes (a well-known value).
        assert_eq!(
            seed(0).commitment(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert_eq!(format!("{:?}", seed(7)), "Seed(<secret>)");
    }

    #[test]
    fn pick_uses_half_open_cumulative_intervals() {
        let w = [(101, 3), (102, 0), (103, 2)];
        let picked: Vec<_> = (0..5).map(|x| pick(&w, x).unwrap()).collect();
        assert_eq!(picked, [101, 101, 101, 103, 103]);
        assert_eq!(pick(&w, 5), None);
    }

    /// The number is below the total, depends on every input, and the rejection bound is
    /// right at the edges (a total of 1 and of 2^63 + 1, where about half the values of
    /// `r` are rejected).
    #[test]
    fn fair_numbers_are_in_range_and_depend_on_every_input() {
        let base = fair_number(&seed(1), 100301, "alice", 1, "", 10_000).unwrap();
        assert!(base < 10_000);
        let variants = [
            fair_number(&seed(2), 100301, "alice", 1, "", 10_000).unwrap(),
            fair_number(&seed(1), 100302, "alice", 1, "", 10_000).unwrap(),
            fair_number(&seed(1), 100301, "bob", 1, "", 10_000).unwrap(),
            fair_number(&seed(1), 100301, "alice", 2, "", 10_000).unwrap(),
            fair_number(&seed(1), 100301, "alice", 1, "x", 10_000).unwrap(),
        ];
        assert!(variants.iter().filter(|v| **v == base).count() <= 1);
        assert_eq!(fair_number(&seed(1), 1, "u", 1, "", 1).unwrap(), 0);
        let huge = (1u64 << 63) + 1;
        for n in 1..50 {
            assert!(fair_number(&seed(3), 1, "u", n, "", huge).unwrap() < huge);
        }
        assert!(fair_number(&seed(1), 1, "u", 1, "", 0).is_err());
    }

    /// The test vectors of `docs/FAIRNESS.md` (computed there by the Python reference
    /// verifier): seed bytes 0x00..0x1f, strategy 100006's default table.
    #[test]
    fn the_documented_test_vectors_pass() {
        let seed = Seed::from_bytes(std::array::from_fn(|i| u8::try_from(i).unwrap()));
        assert_eq!(
            seed.commitment(),
            "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
        );
        let table = [
            (101, 7900),
            (102, 300),
            (103, 300),
            (104, 300),
            (105, 300),
            (106, 300),
            (107, 300),
            (108, 3),
        ];
        let strategy = crate::sample::assembled(100006);
        assert_eq!(
            strategy.default_weights, table,
            "the sample's exact weights"
        );
        let total = 9703;
        for (user, draw_no, client_seed, x, award) in [
            ("xiaofuge", 1, "", 1791, 101),
            ("xiaofuge", 2, "", 8019, 102),
            ("xiaofuge", 1, "lucky", 4976, 101),
            ("用户", 7, "clé ✓", 2124, 101),
        ] {
            let got = fair_number(&seed, 100301, user, draw_no, client_seed, total).unwrap();
            assert_eq!(got, x, "{user} {draw_no} {client_seed:?}");
            assert_eq!(pick(&table, got), Some(award));
        }
        // A rejected first attempt: total 2^63 + 1, activity 1, user `u`, draw 2.
        let half = 1u64 << 62;
        let wide = [(1, half), (2, half + 1)];
        let x = fair_number(&seed, 1, "u", 2, "", (1u64 << 63) + 1).unwrap();
        assert_eq!(x, 220_047_933_657_541_813);
        assert_eq!(pick(&wide, x), Some(1));
    }

    /// Fair numbers over many draws follow the table: a chi-square test of strategy
    /// 100001's default table (nine awards down to 1 in 10 000) on 200 000 draws.
    #[test]
    fn hmac_draws_follow_the_configured_rates() {
        use crate::strategy::audit::chi_square_survival;
        let strategy = crate::sample::assembled(100001);
        let weights = &strategy.default_weights;
        let total: u64 = weights.iter().map(|(_, w)| w).sum();
        let mut counts = vec![0u64; weights.len()];
        let key = seed(9);
        let n = 200_000u64;
        for i in 0..n {
            let user = format!("user{}", i % 1000);
            let draw_no = i64::try_from(i / 1000).unwrap() + 1;
            let x = fair_number(&key, 100301, &user, draw_no, "", total).unwrap();
            let award = pick(weights, x).unwrap();
            let index = weights.iter().position(|(a, _)| *a == award).unwrap();
            counts[index] += 1;
        }
        let mut chi = 0.0;
        for ((_, w), observed) in weights.iter().zip(&counts) {
            let expected = n as f64 * *w as f64 / total as f64;
            chi += (*observed as f64 - expected).powi(2) / expected;
        }
        let p = chi_square_survival(chi, (weights.len() - 1) as f64);
        assert!(p > 1e-6, "chi2 {chi} p {p}: {counts:?}");
    }

    #[test]
    fn client_seeds_are_limited_to_64_characters() {
        assert!(validate_client_seed(&"é".repeat(64)).is_ok());
        assert!(validate_client_seed(&"a".repeat(65)).is_err());
    }

    #[test]
    fn a_proof_round_trips_as_json_with_weights_as_pairs() {
        let proof = Proof {
            order_id: "123".into(),
            epoch: 2,
            commitment: seed(0).commitment(),
            draw_no: 3,
            client_seed: "lucky".into(),
            table: "default".into(),
            weights: vec![(101, 5), (102, 5)],
            sampled_award_id: 102,
            award_id: 101,
            reason: "sold_out".into(),
        };
        let json = proof.to_json().unwrap();
        assert!(json.contains("\"weights\":[[101,5],[102,5]]"), "{json}");
        assert_eq!(Proof::from_json(&json).unwrap(), proof);
    }
}
