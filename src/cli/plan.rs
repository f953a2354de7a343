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
    /// Do not look the shots up in the shared cache (no request of any kind).
    #[arg(long)]
    pub offline: bool,
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let mut planned = match args.selection.plan()? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if !args.offline {
        let settings =
            match args
                .selection
                .cache_settings(&planned.storyboard, &planned.target, true)
            {
                Ok(settings) => settings,
                Err(message) => {
                    eprintln!("error: {message}");
                    return Ok(ExitCode::from(exit_codes::USAGE));
                }
            };
        if let Some(settings) = settings {
            match crate::cache::Cache::open(&settings) {
                Ok(cache) => {
                    for (id, miss) in crate::cache::look_up_plan(&cache, &mut planned.plan).await {
                        eprintln!("warning: `{id}`: cache {miss}");
                    }
                }
                Err(e) => eprintln!(
                    "warning: the cache `{}` was not looked up: {e}",
                    settings.url
                ),
            }
        }
    }
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
        let cached = match &s.cache {
            Some(crate::plan::CacheStatus::Hit { .. }) => "; cache hit".to_owned(),
            Some(crate::plan::CacheStatus::Miss { reason }) => format!("; cache miss ({reason})"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {action:<8}  {:<width$}  {}{cached}{after}{cost}",
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
    if t.cache_hits + t.cache_misses > 0 {
        let _ = writeln!(
            out,
            "cache: {} hit{}, {} miss{}",
            t.cache_hits,
            plural(t.cache_hits as u64),
            t.cache_misses,
            if t.cache_misses == 1 { "" } else { "es" }
        );
    }
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
