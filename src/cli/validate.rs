//! `shotlist validate`: check a manifest, report every problem with its line and column.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::diagnostic::{JsonProblem, use_color};
use crate::exit_codes;
use crate::manifest::{self, LoadError};

/// Arguments of `shotlist validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest to check.
    #[arg(default_value = manifest::DEFAULT_FILE)]
    pub manifest: PathBuf,
    /// `human` (default) or `json` (for editors and CI: file, line, column, message, help).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Serialize)]
struct JsonReport {
    file: String,
    valid: bool,
    shots: usize,
    diagnostics: Vec<JsonProblem>,
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let file = args.manifest.display().to_string();
    let result = manifest::load(&args.manifest);
    if args.format == Format::Json {
        let (valid, shots, diagnostics) = match &result {
            Ok(sb) => (true, sb.shots.len(), Vec::new()),
            Err(LoadError::Invalid(d)) => (false, 0, d.to_json()),
            Err(err @ LoadError::Read { .. }) => (
                false,
                0,
                vec![JsonProblem {
                    file: file.clone(),
                    line: 0,
                    column: 0,
                    end_line: 0,
                    end_column: 0,
                    severity: "error",
                    message: format!(
                        "{err}: {}",
                        std::error::Error::source(err)
                            .map(|s| s.to_string())
                            .unwrap_or_default()
                    ),
                    help: None,
                }],
            ),
        };
        let report = JsonReport {
            file,
            valid,
            shots,
            diagnostics,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
        return Ok(ExitCode::from(match result {
            Ok(_) => exit_codes::SUCCESS,
            Err(LoadError::Invalid(_)) => exit_codes::INVALID_MANIFEST,
            Err(LoadError::Read { .. }) => exit_codes::ERROR,
        }));
    }
    match result {
        Ok(sb) => {
            let n = sb.shots.len();
            println!(
                "{file}: valid, {n} shot{} for `{}`",
                if n == 1 { "" } else { "s" },
                sb.api
            );
            Ok(ExitCode::from(exit_codes::SUCCESS))
        }
        Err(err) => Ok(super::report_load_error(err)),
    }
}

/// Prints a manifest's problems to stderr and returns the matching exit code.
pub(crate) fn print_invalid(d: &crate::diagnostic::Diagnostics) {
    eprint!("{}", d.render(use_color(std::io::stderr().is_terminal())));
    let n = d.problems.len();
    eprintln!(
        "error: `{}` has {n} problem{}",
        d.path.display(),
        if n == 1 { "" } else { "s" }
    );
}
