//! The emulator's integration tests: one binary, one module per area.

mod conformance;
mod protocols;
mod support;
mod tools;
