//! The integration tests, built as one binary. Each area is one module.

mod emulator;
mod emulator_cli;
mod emulator_conformance;
mod emulator_support;
