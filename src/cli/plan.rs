//! `shotlist plan`: what `render` would do for each shot and why. Offline: no request.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::endpoint;
use crate::exit_codes;
use crate::lockfile::Lockfile;
use crate::manifest;
use crate::plan::{self, Action, Plan};

/// Arguments of `shotlist plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest.
    #[arg(default_value = manifest::DEFAULT_FILE)]
    pub manifest: PathBuf,
    /// Only these shots (all when none are given).
    pub shots: Vec<String>,
    /// Only shots with this tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Hash every recorded output instead of trusting size and modification time.
    #[arg(long)]
    pub verify: bool,
    /// Plan as if `render --force`.
    #[arg(long)]
    pub force: bool,
    /// Plan for this service URL (default: as `render` would pick).
    #[arg(long, env = "SHOTLIST_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Plan for the built-in emulator.
    #[arg(long, conflicts_with = "endpoint")]
    pub local: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let storyboard = match manifest::load(&args.manifest) {
        Ok(sb) => sb,
        Err(err) => return Ok(super::report_load_error(err)),
    };
    super::check_selection(&storyboard, &args.shots)?;
    let lock = Lockfile::read(&storyboard.lockfile_path())?;
    let target = endpoint::resolve(storyboard.api, args.endpoint.as_deref(), args.local)?;
    let options = plan::Options {
        endpoint: target.lock_name().to_string(),
        verify: args.verify,
        force: args.force,
        only: args.shots,
        tags: args.tags,
        now: None,
    };
    let plan = plan::plan(&storyboard, &lock, &options);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("plans serialize")
        );
    } else {
        print!(
            "{}",
            render_text(&args.manifest.display().to_string(), &plan)
        );
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
    for s in &plan.shots {
        let action = match s.action {
            Action::Fresh => "fresh",
            Action::Render => "render",
            Action::Resume => "resume",
            Action::Download => "download",
        };
        let _ = writeln!(out, "  {action:<8}  {:<width$}  {}", s.id, s.reason);
    }
    let t = &plan.totals;
    let _ = writeln!(
        out,
        "{} shot{}: {} fresh, {} to render, {} to resume, {} to download; {} job{} to create, {} video-second{} to generate",
        t.shots,
        plural(t.shots as u64),
        t.fresh,
        t.render,
        t.resume,
        t.download,
        t.jobs_to_create,
        plural(t.jobs_to_create),
        t.video_seconds,
        plural(t.video_seconds)
    );
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
