//! `shotlist schema`.

use std::process::ExitCode;

/// Arguments of `shotlist schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn execute(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("`shotlist schema` is being built"))
}
