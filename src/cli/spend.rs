//! `shotlist spend`: what the board's jobs cost, from the lockfile's ledger: spent,
//! delivered, wasted by cause, by shot, model and run. Offline: no request.
//!
//! Amounts are the estimates recorded when each job was created (the catalogue's price
//! then), not the provider's invoice. Wasted jobs are listed with the service's words,
//! the evidence a refund request needs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;
use serde::Serialize;

use crate::cost::Money;
use crate::exit_codes;
use crate::lockfile::{LedgerEntry, LedgerOutcome, Lockfile};

/// Arguments of `shotlist spend`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest (its lockfile is read).
    #[arg(default_value = crate::manifest::DEFAULT_FILE)]
    pub manifest: PathBuf,
    /// Only jobs created on or after this date (`YYYY-MM-DD`) or instant (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<Timestamp>,
    /// Print the totals as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_since(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| format!("{d}T00:00:00Z").parse::<Timestamp>().ok())
        .ok_or_else(|| {
            format!("`{s}` is not a date like 2026-12-01 or an instant like 2026-12-01T10:00:00Z")
        })
}

/// Sums of estimates, and how many jobs each covers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    pub amount: f64,
    pub jobs: u64,
    /// Jobs of unknown price (not in `amount`).
    pub unknown_price_jobs: u64,
}

impl Tally {
    fn add(&mut self, e: &LedgerEntry, currency: Option<&str>) {
        self.jobs += 1;
        match &e.estimated_cost {
            // Another currency than the ledger's first is not added to it.
            Some(m) if currency.is_none_or(|c| c == m.currency) => self.amount += m.amount,
            _ => self.unknown_price_jobs += 1,
        }
    }
}

/// A shot's, model's or run's share.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Share {
    pub spent: Tally,
    pub delivered: Tally,
    pub wasted: Tally,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Spend {
    pub currency: Option<String>,
    /// Every job created (and so billed, or about to be).
    pub spent: Tally,
    pub delivered: Tally,
    /// Paid for and not delivered, by cause (`failed`, `moderated`, `expired`, `cancelled`).
    pub wasted: BTreeMap<String, Tally>,
    /// Still running, or finished and not saved yet.
    pub in_flight: Tally,
    pub by_shot: BTreeMap<String, Share>,
    pub by_model: BTreeMap<String, Share>,
    /// By the start of the run that created the jobs.
    pub by_run: BTreeMap<String, Share>,
    /// The wasted jobs themselves, oldest first: evidence for a refund request.
    pub wasted_jobs: Vec<LedgerEntry>,
}

/// The totals of `ledger`, from `since` on.
pub fn tally(ledger: &[LedgerEntry], since: Option<Timestamp>) -> Spend {
    let mut s = Spend::default();
    for e in ledger
        .iter()
        .filter(|e| since.is_none_or(|t| e.created_at >= t))
    {
        if let Some(m) = &e.estimated_cost {
            s.currency.get_or_insert_with(|| m.currency.clone());
        }
        let currency = s.currency.clone();
        let currency = currency.as_deref();
        s.spent.add(e, currency);
        let run = e
            .run
            .map_or_else(|| "unknown".to_owned(), |t| t.to_string());
        let add = |share: &mut Share| {
            share.spent.add(e, currency);
            if e.outcome == LedgerOutcome::Delivered {
                share.delivered.add(e, currency);
            } else if e.outcome.is_waste() {
                share.wasted.add(e, currency);
            }
        };
        add(s.by_shot.entry(e.shot.clone()).or_default());
        add(s.by_model.entry(e.model.clone()).or_default());
        add(s.by_run.entry(run).or_default());
        match e.outcome {
            LedgerOutcome::Delivered => s.delivered.add(e, currency),
            o if o.is_waste() => {
                s.wasted
                    .entry(o.as_str().to_owned())
                    .or_default()
                    .add(e, currency);
                s.wasted_jobs.push(e.clone());
            }
            _ => s.in_flight.add(e, currency),
        }
    }
    s
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let lock_path = crate::manifest::lockfile_path_for(&args.manifest);
    if !lock_path.exists() {
        eprintln!(
            "error: no lockfile `{}`: nothing has been rendered for `{}` yet",
            lock_path.display(),
            args.manifest.display()
        );
        return Ok(ExitCode::from(exit_codes::ERROR));
    }
    let lock = Lockfile::read(&lock_path).map_err(miette::Report::new)?;
    let spend = tally(&lock.ledger, args.since);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&spend).expect("totals serialize")
        );
    } else {
        print!("{}", text(&lock_path.display().to_string(), &spend));
    }
    Ok(ExitCode::from(exit_codes::SUCCESS))
}

fn text(file: &str, s: &Spend) -> String {
    use std::fmt::Write;
    let currency = s.currency.as_deref().unwrap_or("USD");
    let money = |t: &Tally| {
        let mut out = Money::new(t.amount, currency).to_string();
        if t.unknown_price_jobs > 0 {
            let _ = write!(out, " + {} of unknown price", t.unknown_price_jobs);
        }
        out
    };
    let jobs = |n: u64| format!("{n} job{}", if n == 1 { "" } else { "s" });
    let mut out = String::new();
    let _ = writeln!(out, "spend recorded in {file} (estimates at creation):");
    let _ = writeln!(
        out,
        "  spent      {}  ({})",
        money(&s.spent),
        jobs(s.spent.jobs)
    );
    let _ = writeln!(
        out,
        "  delivered  {}  ({})",
        money(&s.delivered),
        jobs(s.delivered.jobs)
    );
    let wasted = s.wasted.values().fold(Tally::default(), |mut a, t| {
        a.amount += t.amount;
        a.jobs += t.jobs;
        a.unknown_price_jobs += t.unknown_price_jobs;
        a
    });
    let causes: Vec<String> = s
        .wasted
        .iter()
        .map(|(cause, t)| format!("{cause} {} ({})", money(t), jobs(t.jobs)))
        .collect();
    let _ = writeln!(
        out,
        "  wasted     {}  ({}){}{}",
        money(&wasted),
        jobs(wasted.jobs),
        if causes.is_empty() { "" } else { ": " },
        causes.join(", ")
    );
    if s.in_flight.jobs > 0 {
        let _ = writeln!(
            out,
            "  in flight  {}  ({})",
            money(&s.in_flight),
            jobs(s.in_flight.jobs)
        );
    }
    for (title, map) in [
        ("shot", &s.by_shot),
        ("model", &s.by_model),
        ("run", &s.by_run),
    ] {
        if map.is_empty() {
            continue;
        }
        let _ = writeln!(out, "by {title}:");
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (name, share) in map {
            let _ = writeln!(
                out,
                "  {name:<width$}  {}  {}{}",
                money(&share.spent),
                jobs(share.spent.jobs),
                if share.wasted.jobs > 0 {
                    format!(", wasted {}", money(&share.wasted))
                } else {
                    String::new()
                }
            );
        }
    }
    if !s.wasted_jobs.is_empty() {
        let _ = writeln!(out, "paid for and not delivered (for a refund request):");
        for e in &s.wasted_jobs {
            let cost = e
                .estimated_cost
                .as_ref()
                .map_or_else(|| "price unknown".to_owned(), |m| m.to_string());
            let _ = writeln!(
                out,
                "  {} job {} of `{}` ({}, {}), created {}: {}{}",
                e.outcome.as_str(),
                e.job,
                e.shot,
                e.api,
                e.model,
                e.created_at,
                cost,
                e.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
    }
    out
}
