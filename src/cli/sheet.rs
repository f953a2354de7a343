//! `shotlist sheet`: the contact sheet, a static HTML page to review the board by eye
//! (see `sheet.rs`). Offline: no request.

use std::path::PathBuf;
use std::process::ExitCode;

use miette::IntoDiagnostic;

use crate::exit_codes;
use crate::lockfile::Lockfile;
use crate::manifest::{self, Storyboard};

/// Arguments of `shotlist sheet`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifest.
    #[arg(default_value = manifest::DEFAULT_FILE)]
    pub manifest: PathBuf,
    /// The page to write [default: `index.html` in the output folder].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The service the board renders on, which decides what is stale (as for `plan`).
    #[arg(long, env = "SHOTLIST_ENDPOINT")]
    pub endpoint: Option<String>,
    /// As rendered by the built-in emulator.
    #[arg(long, conflicts_with = "endpoint")]
    pub local: bool,
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let storyboard = match manifest::load(&args.manifest) {
        Ok(sb) => sb,
        Err(err) => return Ok(super::report_load_error(err)),
    };
    let lock = Lockfile::read(&storyboard.lockfile_path())?;
    let target = crate::endpoint::resolve(storyboard.api, args.endpoint.as_deref(), args.local)?;
    let page = match args.output {
        Some(p) => p,
        None => match default_page(&storyboard) {
            Ok(p) => p,
            Err(message) => {
                eprintln!("error: {message}");
                return Ok(ExitCode::from(exit_codes::ERROR));
            }
        },
    };
    let endpoint = target.lock_name().to_owned();
    let written = tokio::task::spawn_blocking(move || {
        crate::sheet::write_for(&storyboard, &lock, &endpoint, &page)
    })
    .await
    .into_diagnostic()?
    .into_diagnostic()?;
    println!(
        "wrote {}: {} shot{}, {} take{}",
        written.path.display(),
        written.shots,
        if written.shots == 1 { "" } else { "s" },
        written.takes,
        if written.takes == 1 { "" } else { "s" },
    );
    Ok(ExitCode::from(exit_codes::SUCCESS))
}

/// `index.html` in the output folder, which must be a plain folder inside the board;
/// in a folder another manifest owns (`render --share-output`), `STEM.html`, so the two
/// sheets never overwrite each other.
pub fn default_page(storyboard: &Storyboard) -> Result<PathBuf, String> {
    crate::board_path::check_owned_dir(&storyboard.dir, &storyboard.output).map_err(|e| {
        format!(
            "refused to write into the output folder: {e}; make `{}` a plain folder inside the manifest's folder, or give `-o FILE`",
            storyboard.output.display()
        )
    })?;
    let out_dir = storyboard.output_dir();
    let ours = storyboard
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let owner = std::fs::read_to_string(out_dir.join(super::render::OWNER_FILE))
        .ok()
        .map(|t| t.trim().to_owned());
    let name = match (owner, ours) {
        (Some(owner), Some(ours)) if owner != ours => {
            let stem = storyboard
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "storyboard".into());
            format!("{stem}.html")
        }
        _ => crate::sheet::DEFAULT_FILE.to_owned(),
    };
    Ok(out_dir.join(name))
}
