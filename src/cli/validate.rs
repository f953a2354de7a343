//! `shotlist validate`.

use std::process::ExitCode;

/// Arguments of `shotlist validate`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn execute(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`shotlist validate` is being built"))
}
