//! The command line: one file per subcommand, each with its clap `Args` and `execute`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit_codes;

pub mod cache;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod export;
pub mod models;
pub mod plan;
pub mod render;
pub mod schema;
pub mod selection;
pub mod sheet;
pub mod spend;
pub mod validate;

/// Render a whole storyboard of AI-generated video shots from one YAML manifest.
#[derive(Debug, Parser)]
#[command(name = "shotlist", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render the shots that are not fresh (the main job).
    Render(render::Args),
    /// Show what `render` would do and why, without any request.
    Plan(plan::Args),
    /// Check a manifest and report every problem with its line and column.
    Validate(validate::Args),
    /// Print the JSON Schema of the manifest format.
    Schema(schema::Args),
    /// List the models shotlist knows: limits, prices and the source of every fact.
    Models(models::Args),
    /// Write the contact sheet: every shot and take on one HTML page, to review by eye.
    Sheet(sheet::Args),
    /// Hand the chosen takes to an editor: an OpenTimelineIO timeline or one joined MP4.
    Export(export::Args),
    /// What the board's jobs cost: spent, delivered, wasted (from the lockfile).
    Spend(spend::Args),
    /// The shared render cache: `push` publishes the board's fresh renders to it.
    Cache(cache::Args),
    /// Run the local emulator of the video APIs (placeholder videos, no account).
    #[cfg(feature = "emulator")]
    Emulator(emulator::Args),
}

/// Prints why a manifest could not be loaded; returns the exit code for it.
pub(crate) fn report_load_error(err: crate::manifest::LoadError) -> ExitCode {
    match err {
        crate::manifest::LoadError::Invalid(d) => {
            validate::print_invalid(&d);
            ExitCode::from(exit_codes::INVALID_MANIFEST)
        }
        other => {
            eprintln!("{:?}", miette::Report::new(other));
            ExitCode::from(exit_codes::ERROR)
        }
    }
}

/// Refuses shot ids on the command line that the manifest does not have.
pub(crate) fn check_selection(
    storyboard: &crate::manifest::Storyboard,
    ids: &[String],
) -> miette::Result<()> {
    for id in ids {
        if !storyboard.shots.iter().any(|s| &s.id == id) {
            let known = storyboard.shots.iter().map(|s| s.id.as_str());
            let hint = crate::diagnostic::did_you_mean(id, known)
                .map(|m| format!("did you mean `{m}`?"))
                .unwrap_or_else(|| "run `shotlist plan` to list the shots".into());
            return Err(miette::miette!(
                help = hint,
                "no shot `{id}` in `{}`",
                storyboard.path.display()
            ));
        }
    }
    Ok(())
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: failed to start the async runtime: {err}");
            return ExitCode::from(exit_codes::ERROR);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Render(args) => render::execute(args).await,
            Command::Plan(args) => plan::execute(args).await,
            Command::Validate(args) => validate::execute(args).await,
            Command::Schema(args) => schema::execute(args).await,
            Command::Models(args) => models::execute(args).await,
            Command::Spend(args) => spend::execute(args).await,
            Command::Cache(args) => cache::execute(args).await,
            Command::Sheet(args) => sheet::execute(args).await,
            Command::Export(args) => export::execute(args).await,
            #[cfg(feature = "emulator")]
            Command::Emulator(args) => emulator::execute(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(exit_codes::ERROR)
        }
    }
}
