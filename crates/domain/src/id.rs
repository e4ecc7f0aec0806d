//! Ids made of random digits, as upstream's (`RandomStringUtils.randomNumeric`): order ids
//! are 12 digits, message ids 11. Random ids collide rarely but surely at volume; a store
//! reports a taken id and the domain draws the next one here, from the generator its
//! caller passed, so every backend follows the one rule and a seeded generator decides
//! every id a unit of work writes.

use crate::error::{Error, Result};
use rand::Rng;

/// `n` random decimal digits.
pub fn random_digits<R: Rng + ?Sized>(rng: &mut R, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// What inserting a row with a random id found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Inserted {
    /// The row is written.
    Done,
    /// Another row holds the id; nothing was written.
    IdTaken,
}

/// How many ids are tried before the insert is given up as a fault: eight collisions in a
/// row among 10^11 ids mean a broken generator, not bad luck.
pub const ATTEMPTS: usize = 8;

/// The ids tried for one row: after the store reports one taken, the next comes from the
/// caller's generator.
///
/// ```ignore
/// let mut redraw = Redraw::new(12);
/// while tx.insert_raffle_order(&order).await? == Inserted::IdTaken {
///     order.order_id = redraw.next(rng)?;
/// }
/// ```
#[derive(Debug)]
pub struct Redraw {
    digits: usize,
    tried: usize,
}

impl Redraw {
    pub fn new(digits: usize) -> Self {
        Redraw { digits, tried: 1 }
    }

    /// A fresh id; a fault once [`ATTEMPTS`] ids were taken.
    pub fn next<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Result<String> {
        if self.tried >= ATTEMPTS {
            return Err(Error::internal(format!(
                "no free id of {} digits after {ATTEMPTS} attempts",
                self.digits
            )));
        }
        self.tried += 1;
        Ok(random_digits(rng, self.digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn a_taken_id_is_replaced_by_the_next_draw_of_the_callers_generator() {
        let mut expected = StdRng::seed_from_u64(9);
        let first = random_digits(&mut expected, 12);
        let second = random_digits(&mut expected, 12);

        let mut rng = StdRng::seed_from_u64(9);
        let mut id = random_digits(&mut rng, 12);
        assert_eq!(id, first);
        let taken = [first.clone()];
        let mut redraw = Redraw::new(12);
        while taken.contains(&id) {
            id = redraw.next(&mut rng).unwrap();
        }
        assert_eq!(id, second);
    }

    #[test]
    fn a_store_that_never_frees_an_id_is_a_fault_after_the_last_attempt() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut redraw = Redraw::new(11);
        let mut tries = 1;
        let err = loop {
            match redraw.next(&mut rng) {
                Ok(id) => {
                    assert_eq!(id.len(), 11);
                    tries += 1;
                }
                Err(e) => break e,
            }
        };
        assert_eq!(tries, ATTEMPTS);
        assert!(matches!(err, Error::Internal(m) if m.contains("11 digits")));
    }
}
