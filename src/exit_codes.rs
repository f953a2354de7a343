//! Exit codes of the `shotlist` binary, in one place. Documented in the README.

/// Everything asked for is done: valid, fresh or rendered.
pub const SUCCESS: u8 = 0;
/// An error stopped the command (I/O, network, an unreadable lockfile, ...).
pub const ERROR: u8 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: u8 = 2;
/// The manifest has problems; every one is reported.
pub const INVALID_MANIFEST: u8 = 3;
/// `--locked` refused: some shot would need a new job.
pub const LOCKED: u8 = 4;
/// The service refused the credential (401/403).
pub const AUTH: u8 = 5;
/// The run finished but one or more shots failed.
pub const SHOTS_FAILED: u8 = 6;
/// The run's estimate is over `--max-cost` / `budget.max_per_run` (nothing was sent), or
/// the cap stopped jobs from starting during the run.
pub const OVER_BUDGET: u8 = 7;
/// The account is out of credit (402): the run stopped and started nothing new.
pub const OUT_OF_CREDIT: u8 = 8;
/// Stopped by Ctrl-C; what finished is recorded.
pub const INTERRUPTED: u8 = 130;
