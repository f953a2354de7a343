//! `shotlist schema`: print the manifest's JSON Schema (the one committed under `schemas/`).

use std::process::ExitCode;

use crate::exit_codes;
use crate::schema;

/// Arguments of `shotlist schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn execute(_args: Args) -> miette::Result<ExitCode> {
    print!("{}", schema::manifest_schema_text());
    Ok(ExitCode::from(exit_codes::SUCCESS))
}
