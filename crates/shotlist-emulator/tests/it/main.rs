//! The emulator's integration tests: one binary, one module per area.

mod conformance;
mod fal;
mod openrouter;
mod protocols;
mod replicate;
mod support;
mod tls;
mod tools;
