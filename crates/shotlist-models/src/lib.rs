//! The data every part of shotlist shares and nothing else: what each video API and
//! model accepts. The engine, the validator, the JSON Schema and the emulator all read
//! it; it knows nothing of any of them (no I/O, no HTTP, no engine types).

pub mod catalogue;
pub mod limits;
