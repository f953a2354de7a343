//! Integration tests: one binary, one module per area.

mod cli;
mod corpus;
mod emulator;
mod emulator_cli;
mod emulator_conformance;
mod emulator_support;
mod render;
mod schema;
mod tools;
