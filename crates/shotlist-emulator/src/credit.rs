//! An account's credit (OpenRouter's prepaid balance): each create charges its estimated
//! cost up front, and a create the balance does not cover is refused (402).
//!
//! `None` is an account without limit. Amounts are US dollars. This module only counts;
//! it never prices a job (the handler does, from the catalogue) and never answers a
//! request.

use std::sync::Mutex;

#[derive(Debug)]
pub struct Credit {
    left: Mutex<Option<f64>>,
}

impl Credit {
    pub fn new(usd: Option<f64>) -> Credit {
        Credit {
            left: Mutex::new(usd),
        }
    }

    /// Takes `usd` from the balance, or says what is left when it does not cover it.
    pub fn charge(&self, usd: f64) -> Result<(), f64> {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        match *left {
            None => Ok(()),
            // A little slack for sums of rounded prices.
            Some(balance) if usd <= balance + 1e-9 => {
                *left = Some((balance - usd).max(0.0));
                Ok(())
            }
            Some(balance) => Err(balance),
        }
    }

    /// Gives back a charge whose job was not made.
    pub fn refund(&self, usd: f64) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(balance) = left.as_mut() {
            *balance += usd;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_until_the_balance_runs_out() {
        let credit = Credit::new(Some(1.0));
        assert!(credit.charge(0.56).is_ok());
        assert_eq!(credit.charge(0.56), Err(0.43999999999999995));
        assert!(credit.charge(0.0).is_ok());
        credit.refund(0.56);
        assert!(credit.charge(1.0).is_ok());
        let unlimited = Credit::new(None);
        assert!((0..100).all(|_| unlimited.charge(1e6).is_ok()));
    }
}
