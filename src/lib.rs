//! shotlist: render a whole storyboard of AI-generated video shots from one YAML manifest.
//!
//! Data flows one way: manifest → validated shots → plan → scheduler → lockfile + files.
//! See `ARCHITECTURE.md` for the map.

pub mod api;
pub mod cli;
pub mod download;
pub mod emulator;
pub mod exit_codes;
pub mod limits;
pub mod pacer;
