//! shotlist: render a whole storyboard of AI-generated video shots from one YAML manifest.
//!
//! Data flows one way: manifest → validated shots → plan → scheduler → lockfile + files.
//! See `ARCHITECTURE.md` for the map.

pub mod api;
pub mod atomic_write;
pub mod board_path;
pub mod cache;
pub mod cache_key;
pub mod cli;
pub mod coordinate;
pub mod cost;
pub mod diagnostic;
pub mod download;
/// The built-in emulator of every protocol shotlist speaks (its own crate).
#[cfg(feature = "emulator")]
pub use shotlist_emulator as emulator;
pub mod endpoint;
pub mod exit_codes;
pub mod export;
pub mod frames;
/// Every model shotlist knows, as data (the shared data crate).
pub use shotlist_models::catalogue;
/// What each API accepts (the shared data crate).
pub use shotlist_models::limits;
pub mod engine;
pub mod lockfile;
pub mod manifest;
pub mod media;
pub mod pacer;
pub mod plan;
pub mod recorder;
pub mod render_inputs;
pub mod reporter;
pub mod schema;
pub mod sheet;
pub mod shot;
pub mod slots;
pub mod yaml;
