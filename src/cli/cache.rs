//! `shotlist cache push`: publishes the board's fresh renders to the shared cache, for
//! renders made before the cache was set up (or whose publish a crash cut short).
//! `render` publishes what it renders by itself.

use std::process::ExitCode;

use super::selection::Selection;
use crate::exit_codes;
use crate::plan::Action;

/// Arguments of `shotlist cache`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish every fresh shot's render to the shared cache (those already there are
    /// left as they are).
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub selection: Selection,
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let Command::Push(args) = args.command;
    let planned = match args.selection.plan()? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let settings = match args
        .selection
        .cache_settings(&planned.storyboard, &planned.target, false)
    {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            eprintln!("error: no cache to push to");
            eprintln!(
                "  help: pass --cache URL, set SHOTLIST_CACHE, or write `cache:` in the manifest"
            );
            return Ok(ExitCode::from(exit_codes::USAGE));
        }
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(exit_codes::USAGE));
        }
    };
    let cache = match crate::cache::Cache::open(&settings) {
        Ok(cache) => cache,
        Err(e) => {
            eprintln!("error: the cache `{}` cannot be used: {e}", settings.url);
            return Ok(ExitCode::from(exit_codes::ERROR));
        }
    };
    let (mut published, mut present, mut skipped, mut failed) = (0, 0, 0, 0);
    for sp in &planned.plan.shots {
        let Some(lock) = planned.lock.shots.get(&sp.id) else {
            continue;
        };
        let inputs = sp.inputs.clone();
        let entry = match (sp.action, inputs) {
            (Action::Fresh, Some(inputs)) => crate::cache::Entry::of_render(
                &planned.storyboard,
                &sp.shot,
                lock,
                &inputs,
                cache.realm(),
                jiff::Timestamp::now(),
            ),
            _ => None,
        };
        let Some((entry, files)) = entry else {
            if sp.action != Action::Fresh {
                println!("  skipped  {}: not fresh ({})", sp.id, sp.reason);
            } else if lock.from_cache() {
                println!("  skipped  {}: taken from a cache", sp.id);
            } else {
                println!("  skipped  {}: not a render of this realm", sp.id);
            }
            skipped += 1;
            continue;
        };
        match cache.publish(&entry, &files).await {
            Ok(true) => {
                println!("published  {}", sp.id);
                published += 1;
            }
            Ok(false) => {
                println!("  present  {}: already in the cache", sp.id);
                present += 1;
            }
            Err(message) => {
                eprintln!("   FAILED  {}: {message}", sp.id);
                failed += 1;
            }
        }
    }
    println!(
        "{}: {published} published ({} uploaded), {present} already there, {skipped} skipped, {failed} failed",
        cache.url(),
        crate::reporter::human_bytes(
            cache
                .stats
                .published_bytes
                .load(std::sync::atomic::Ordering::Relaxed)
        )
    );
    Ok(ExitCode::from(if failed > 0 {
        exit_codes::ERROR
    } else {
        exit_codes::SUCCESS
    }))
}
