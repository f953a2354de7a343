//! `shotlist export`: the chosen take of every shot, in manifest order, handed to an
//! editor as an OpenTimelineIO timeline (`--otio`) or one joined MP4 (`--mp4`, with
//! ffmpeg). See `export.rs`. Offline: no request.

use std::path::PathBuf;
use std::process::ExitCode;

use miette::IntoDiagnostic;

use crate::exit_codes;
use crate::export::{self, ExportError};
use crate::lockfile::Lockfile;
use crate::manifest;

/// Arguments of `shotlist export`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["otio", "mp4"])))]
pub struct Args {
    /// The manifest.
    #[arg(default_value = manifest::DEFAULT_FILE)]
    pub manifest: PathBuf,
    /// Write an OpenTimelineIO timeline (`.otio`) of the chosen takes.
    #[arg(long, value_name = "FILE")]
    pub otio: Option<PathBuf>,
    /// Join the chosen takes into one MP4 (needs ffmpeg).
    #[arg(long, value_name = "FILE")]
    pub mp4: Option<PathBuf>,
    /// Let shots that are not rendered through: a slate of their length stands in.
    #[arg(long)]
    pub allow_missing: bool,
    /// Size of the joined MP4 [default: the size most takes have]; takes of another
    /// shape are letterboxed, never stretched.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// Frame rate of the joined MP4 [default: the rate most takes have].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub fps: Option<u32>,
    /// The service the board renders on, which decides what is stale (as for `plan`).
    #[arg(long, env = "SHOTLIST_ENDPOINT")]
    pub endpoint: Option<String>,
    /// As rendered by the built-in emulator.
    #[arg(long, conflicts_with = "endpoint")]
    pub local: bool,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not a size like 1280x720 (even numbers, 2 to 7680)");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(2..=7680).contains(&w) || !(2..=7680).contains(&h) || w % 2 == 1 || h % 2 == 1 {
        return Err(bad());
    }
    Ok((w, h))
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let storyboard = match manifest::load(&args.manifest) {
        Ok(sb) => sb,
        Err(err) => return Ok(super::report_load_error(err)),
    };
    let lock = Lockfile::read(&storyboard.lockfile_path())?;
    let target = crate::endpoint::resolve(storyboard.api, args.endpoint.as_deref(), args.local)?;
    let name = storyboard
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "storyboard".into());
    let result = tokio::task::spawn_blocking(move || -> Result<Vec<String>, ExportError> {
        let clips = export::picked(&storyboard, &lock)?;
        export::check_missing(&clips, args.allow_missing)?;
        // A take of a shot changed since it was rendered is exported as it is, and said.
        let options = crate::plan::Options {
            endpoint: target.lock_name().to_owned(),
            ..Default::default()
        };
        let stale = export::stale(&clips, &crate::plan::plan(&storyboard, &lock, &options));
        for (shot, why) in &stale {
            eprintln!("warning: `{shot}` is stale ({why}): its take on disk is exported as it is");
        }
        if !stale.is_empty() {
            eprintln!("  help: run `shotlist render` first to export what the manifest says now");
        }
        let missing = clips
            .iter()
            .filter(|c| matches!(c.source, export::Source::Missing { .. }))
            .count();
        let mut lines = Vec::new();
        if let Some(file) = &args.otio {
            export::write_otio(&name, &clips, file)?;
            lines.push(format!(
                "wrote {}: {} clip{}{}",
                file.display(),
                clips.len(),
                if clips.len() == 1 { "" } else { "s" },
                if missing > 0 {
                    format!(" ({missing} with missing media)")
                } else {
                    String::new()
                }
            ));
        }
        if let Some(file) = &args.mp4 {
            let mut format = export::common_format(&clips);
            if let Some((width, height)) = args.size {
                (format.width, format.height) = (width, height);
            }
            if let Some(fps) = args.fps {
                format.fps = fps;
            }
            let joined = export::write_mp4(&clips, format, file)?;
            lines.push(format!(
                "wrote {}: {} shot{}, {:.2} s, {}x{} at {} fps{}",
                file.display(),
                joined.clips,
                if joined.clips == 1 { "" } else { "s" },
                joined.seconds,
                joined.format.width,
                joined.format.height,
                joined.format.fps,
                if joined.slates > 0 {
                    format!(
                        " ({} slate{})",
                        joined.slates,
                        if joined.slates == 1 { "" } else { "s" }
                    )
                } else {
                    String::new()
                }
            ));
        }
        Ok(lines)
    })
    .await
    .into_diagnostic()?;
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            Ok(ExitCode::from(exit_codes::SUCCESS))
        }
        Err(e @ ExportError::Missing(_)) => {
            eprintln!("error: {e}");
            eprintln!(
                "  help: render them (`shotlist render`), or pass --allow-missing to put a slate in their place"
            );
            Ok(ExitCode::from(exit_codes::ERROR))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(exit_codes::ERROR))
        }
    }
}
