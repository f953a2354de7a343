//! What shots cost: estimates from the catalogue's prices (and a board's own), per job,
//! per shot and per plan, and the run's budget.
//!
//! Video is billed per second of output, each take counted: an estimate is seconds ×
//! takes × the model's rate at the shot's size and params. A model with no known price
//! has no estimate (never 0): a budget counts it as over any cap unless the user allows
//! unknown prices. Amounts are in the price's currency (the catalogue's are USD).

use serde::{Deserialize, Serialize};

use crate::catalogue::Catalogue;
use crate::limits::Api;
use crate::shot::Shot;

/// An amount of money in one currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Money {
    pub amount: f64,
    /// ISO 4217, e.g. `USD`.
    pub currency: String,
}

impl Money {
    pub fn new(amount: f64, currency: &str) -> Money {
        Money {
            amount,
            currency: currency.to_owned(),
        }
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let symbol = match self.currency.as_str() {
            "USD" => "$",
            "EUR" => "€",
            "GBP" => "£",
            _ => "",
        };
        if symbol.is_empty() {
            write!(f, "{:.2} {}", self.amount, self.currency)
        } else if self.amount != 0.0 && self.amount.abs() < 0.01 {
            write!(f, "{symbol}{:.4}", self.amount)
        } else {
            write!(f, "{symbol}{:.2}", self.amount)
        }
    }
}

/// The rate of one second of one take of `shot`, if its model's price is known.
pub fn rate(catalogue: &Catalogue, api: Api, shot: &Shot) -> Option<Money> {
    let model = catalogue.find(api, &shot.model)?;
    let (rate, currency) = model.price_per_second(shot.size, &shot.params)?;
    Some(Money::new(rate, currency))
}

/// The estimated charge of `video_seconds` of `shot` (seconds × takes of what is made).
pub fn estimate(catalogue: &Catalogue, api: Api, shot: &Shot, video_seconds: u64) -> Option<Money> {
    rate(catalogue, api, shot).map(|r| Money::new(r.amount * video_seconds as f64, &r.currency))
}

/// A run's spending cap: `render --max-cost`, or the manifest's `budget.max_per_run`
/// (the lower of the two when both are set).
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub max: f64,
    /// Count a job of unknown price as free rather than as over the cap.
    pub allow_unknown: bool,
}

/// Whether a job of `estimate` may start when `committed` is already spoken for.
pub fn fits(budget: &Budget, committed: f64, estimate: Option<&Money>) -> Result<(), String> {
    match estimate {
        None if !budget.allow_unknown => Err(format!(
            "its price is unknown, which counts as over any cap (--allow-unknown-price to start it anyway); cap {:.2}",
            budget.max
        )),
        None => Ok(()),
        // A cent's thousandth of slack: sums of rates are not exact in binary.
        Some(e) if committed + e.amount > budget.max + 1e-9 => Err(format!(
            "it would cost about {e}, and {:.2} of the cap of {:.2} is already committed this run",
            committed, budget.max
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_well() {
        assert_eq!(Money::new(1.5, "USD").to_string(), "$1.50");
        assert_eq!(Money::new(0.004, "USD").to_string(), "$0.0040");
        assert_eq!(Money::new(3.0, "CHF").to_string(), "3.00 CHF");
    }

    #[test]
    fn a_budget_admits_what_fits_and_refuses_the_unknown_unless_allowed() {
        let b = Budget {
            max: 1.0,
            allow_unknown: false,
        };
        assert!(fits(&b, 0.5, Some(&Money::new(0.5, "USD"))).is_ok());
        assert!(fits(&b, 0.6, Some(&Money::new(0.5, "USD"))).is_err());
        assert!(fits(&b, 0.0, None).unwrap_err().contains("unknown"));
        let b = Budget {
            allow_unknown: true,
            ..b
        };
        assert!(fits(&b, 0.9, None).is_ok());
    }
}
