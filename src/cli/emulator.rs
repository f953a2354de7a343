//! `shotlist emulator`: run the local emulator of every video API until Ctrl-C.
//!
//! Prints the bound address as the first line on stdout (scripts read it) and the media
//! host's as the second, then one log line per request on stderr unless `--quiet`. It
//! must never print the API key.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::emulator::{self, Emulator, EmulatorConfig, FaultSpec, TlsFiles};
use crate::exit_codes;

/// Arguments of `shotlist emulator`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value_t = emulator::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Address of the media host (fal's and Replicate's output files); port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value_t = emulator::DEFAULT_MEDIA_LISTEN)]
    pub media_listen: SocketAddr,
    /// Serve both addresses over HTTPS with this PEM certificate chain (with `--tls-key`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Require this key on every API request, in each service's scheme (`api-key: KEY` or
    /// `Authorization: Bearer KEY`; fal `Authorization: Key KEY`; Replicate `Bearer`/`Token`).
    #[arg(
        long,
        value_name = "KEY",
        env = "SHOTLIST_EMULATOR_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Request quota per emulated minute (all requests count); 0 for none.
    #[arg(long, value_name = "N", default_value_t = EmulatorConfig::default().rpm)]
    pub rpm: u32,
    /// Replicate creates per emulated minute, apart from `--rpm`; 0 for none (default: the catalogue's).
    #[arg(long, value_name = "N")]
    pub create_rpm: Option<u32>,
    /// Jobs that may run at once per account: Azure/OpenAI refuse one more with 429, fal
    /// and Replicate queue it.
    #[arg(long, value_name = "N", default_value_t = EmulatorConfig::default().max_running)]
    pub max_running: usize,
    /// Run the emulated clock this many times faster (job durations, expiry, quota window).
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub time_scale: f64,
    /// How long jobs and their videos stay available, in emulated seconds (fal and
    /// Replicate: after completion, at most the catalogue's hour).
    #[arg(long, value_name = "SECONDS", default_value_t = EmulatorConfig::default().retention.as_secs())]
    pub retention: u64,
    /// How long the media host serves a fal output after completion, in emulated seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = emulator::DEFAULT_MEDIA_RETENTION.as_secs())]
    pub media_retention: u64,
    /// Seed of fault injection and ids: the same seed and requests give the same faults.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Faults to inject, e.g. `429=0.1,500=0.05,drop=0.02,slow=0.1,slow-ms=1500,truncate=0.05,fail=0.1,moderation=0.05`.
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub faults: FaultSpec,
    /// A prompt containing this word (any case) always fails moderation.
    #[arg(long, value_name = "W", default_value = emulator::DEFAULT_MODERATION_WORD)]
    pub moderation_word: String,
    /// Do not log requests.
    #[arg(long)]
    pub quiet: bool,
    /// Also serve the models of the board in DIR (its `shotlist.models.yaml`).
    #[arg(long, value_name = "DIR")]
    pub board: Option<std::path::PathBuf>,
    /// OpenRouter: the account's credit in USD; a create that would pass it gets 402.
    #[arg(long, value_name = "USD")]
    pub credit_usd: Option<f64>,
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let catalogue = match &args.board {
        Some(dir) => match crate::manifest::board_catalogue(dir) {
            Ok(c) => c,
            Err(err) => return Ok(super::report_load_error(err)),
        },
        None => std::sync::Arc::new(crate::catalogue::Catalogue::builtin().clone()),
    };
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        // clap requires both or neither.
        _ => None,
    };
    let cfg = EmulatorConfig {
        catalogue,
        listen: args.listen,
        media_listen: args.media_listen,
        tls,
        api_key: args.api_key,
        rpm: args.rpm,
        create_rpm: args.create_rpm,
        max_running: args.max_running,
        time_scale: args.time_scale,
        retention: Duration::from_secs(args.retention),
        media_retention: Duration::from_secs(args.media_retention),
        credit_usd: args.credit_usd,
        seed: args.seed,
        faults: args.faults,
        moderation_word: Some(args.moderation_word).filter(|w| !w.is_empty()),
        log_requests: !args.quiet,
    };
    let emulator = Emulator::start(cfg).await?;
    {
        let mut out = std::io::stdout().lock();
        // Best effort: a closed stdout must not stop the server.
        let _ = writeln!(out, "listening on {}", emulator.base_url());
        let _ = writeln!(out, "media host on {}", emulator.media_base_url());
        let _ = out.flush();
    }
    tokio::signal::ctrl_c().await.map_err(|e| {
        miette::miette!(
            help = "run it where Ctrl-C can be delivered",
            "failed to wait for Ctrl-C: {e}"
        )
    })?;
    if !args.quiet {
        eprintln!("shutting down");
    }
    emulator.shutdown().await;
    Ok(ExitCode::from(exit_codes::SUCCESS))
}
