//! `shotlist emulator`.

use std::process::ExitCode;

/// Arguments of `shotlist emulator`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn execute(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`shotlist emulator` is being built"))
}
