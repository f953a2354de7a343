//! `shotlist plan`: what `render` would do for each shot and why. Offline: no request.

use std::process::ExitCode;

use super::selection::Selection;
use crate::exit_codes;
use crate::plan::Plan;

/// Arguments of `shotlist plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let planned = match args.selection.plan()? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&planned.plan).expect("plans serialize")
        );
    } else {
        print!("{}", render_text(&args.selection.file(), &planned.plan));
    }
    Ok(ExitCode::from(exit_codes::SUCCESS))
}

/// The human form of a plan: one line per shot, then totals.
pub fn render_text(file: &str, plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan for {file} ({}, endpoint: {})",
        plan.api, plan.endpoint
    );
    let width = plan.shots.iter().map(|s| s.id.len()).max().unwrap_or(0);
    let currency = plan.totals.currency.as_deref().unwrap_or("USD");
    let money = |amount: f64| crate::cost::Money::new(amount, currency).to_string();
    for s in &plan.shots {
        let action = s.action.as_str();
        let cost = match (s.jobs_to_create, s.estimated_cost) {
            (0, _) => String::new(),
            (_, Some(c)) => format!("  ~{}", money(c)),
            (_, None) => "  price unknown".to_owned(),
        };
        let after = match s.after.as_slice() {
            [] => String::new(),
            ids => format!(
                ", after {}",
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let _ = writeln!(
            out,
            "  {action:<8}  {:<width$}  {}{after}{cost}",
            s.id, s.reason
        );
    }
    let t = &plan.totals;
    let _ = writeln!(
        out,
        "{} shot{}: {} fresh, {} to render, {} to resume, {} to download, {} to reuse; {} job{} to create, {} video-second{} to generate",
        t.shots,
        plural(t.shots as u64),
        t.fresh,
        t.render,
        t.resume,
        t.download,
        t.reuse,
        t.jobs_to_create,
        plural(t.jobs_to_create),
        t.video_seconds,
        plural(t.video_seconds)
    );
    let unknown = match t.unknown_price.len() {
        0 => String::new(),
        n => format!(
            "; {n} shot{} of unknown price ({})",
            plural(n as u64),
            t.unknown_price.join(", ")
        ),
    };
    // Never a 0 for what has no known price.
    let part = |amount: f64, unknown: usize, known: bool| match (known, unknown) {
        (false, 0) => money(0.0),
        (false, _) => "price unknown".to_owned(),
        (true, 0) => money(amount),
        (true, n) => format!(
            "{} + {n} shot{} of unknown price",
            money(amount),
            plural(n as u64)
        ),
    };
    let known = t.currency.is_some();
    let to_create = if t.unknown_price.is_empty() || known {
        format!("{}{unknown}", money(t.estimated_cost))
    } else {
        format!("price unknown{unknown}")
    };
    let _ = writeln!(
        out,
        "estimated cost to create: {to_create}; of the fresh shots: {}",
        part(t.fresh_cost, t.fresh_unknown_price, known)
    );
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
