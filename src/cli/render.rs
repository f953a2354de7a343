//! `shotlist render`.

use std::process::ExitCode;

/// Arguments of `shotlist render`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn execute(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`shotlist render` is being built"))
}
