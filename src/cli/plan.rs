//! `shotlist plan`.

use std::process::ExitCode;

/// Arguments of `shotlist plan`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn execute(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`shotlist plan` is being built"))
}
