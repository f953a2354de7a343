//! `shotlist render`: render what the plan says is stale, two jobs at a time, within quota.

use std::process::ExitCode;
use std::sync::Arc;

use miette::{IntoDiagnostic, WrapErr};

use super::selection::{Planned, Selection};
use crate::api::{Auth, Client, ClientOptions, Endpoint};
use crate::endpoint::{self, Target};
use crate::engine::{self, Config, Stop};
use crate::exit_codes;
use crate::pacer::Pacer;
use crate::plan::Action;
use crate::recorder::Recorder;
use crate::reporter::{Event, Mode, Reporter};

/// How much faster than real time the built-in emulator runs: a 1 to 5 minute job
/// takes 0.5 to 2.5 seconds, so a storyboard renders in seconds.
pub const LOCAL_TIME_SCALE: f64 = 120.0;

/// Arguments of `shotlist render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub selection: Selection,
    /// Show the plan and stop: no request is made to the provider (the shared cache, if
    /// any, is looked up).
    #[arg(long)]
    pub dry_run: bool,
    /// Fail, before any request, if any shot would need a new job (for CI).
    #[arg(long)]
    pub locked: bool,
    /// Jobs running at once [default: the provider's documented limit, `shotlist models`;
    /// raise it if your account allows more].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// Requests per minute, all requests counted, bursts included [default: the
    /// provider's documented limit].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rpm: Option<u32>,
    /// The most this run may spend, in the models' currency: refused before any request
    /// when the estimate is higher, and no job starts that would pass it (also
    /// `budget: {max_per_run: ...}` in the manifest; the lower wins).
    #[arg(long, value_name = "AMOUNT", value_parser = parse_amount)]
    pub max_cost: Option<f64>,
    /// Under a cap, let jobs whose price is unknown start (else they count as over it).
    #[arg(long)]
    pub allow_unknown_price: bool,
    /// Do not save thumbnails beside the videos.
    #[arg(long)]
    pub no_thumbnails: bool,
    /// Do not refresh the contact sheet (`index.html` in the output folder) at the end.
    #[arg(long)]
    pub no_sheet: bool,
    /// Render into an output folder another manifest owns (only when no file name of
    /// the two collides).
    #[arg(long)]
    pub share_output: bool,
    /// Share the account's job slots and request pacing with every other shotlist that
    /// renders with the same account through this Redis (or Valkey):
    /// redis://[:PASSWORD@]HOST:PORT[/DB], rediss:// for TLS (also SHOTLIST_COORDINATOR).
    #[arg(long, value_name = "URL", env = crate::coordinate::ENV_COORDINATOR, hide_env_values = true)]
    pub coordinate: Option<String>,
    /// Take shots from the shared cache but publish nothing to it (for runs that must
    /// not be trusted to write, such as pull requests).
    #[arg(long)]
    pub cache_read_only: bool,
    /// Print NDJSON events on stdout instead of progress.
    #[arg(long)]
    pub json: bool,
    /// Clock speed-up of the service, for emulators (default: 120 for the built-in
    /// emulator, 1 for a service). Scales the request window and polling.
    #[arg(long, hide = true)]
    pub time_scale: Option<f64>,
}

fn parse_amount(s: &str) -> Result<f64, String> {
    match s.trim().trim_start_matches('$').parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not an amount such as `20` or `7.50`")),
    }
}

impl Args {
    /// The run's cap: `--max-cost`, the manifest's `budget.max_per_run`, the lower of both.
    fn budget_for(&self, storyboard: &crate::manifest::Storyboard) -> Option<crate::cost::Budget> {
        let max = match (self.max_cost, storyboard.max_cost_per_run) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(crate::cost::Budget {
            max,
            allow_unknown: self.allow_unknown_price,
        })
    }

    /// `--jobs`, else what the provider documents (the catalogue).
    fn jobs_for(&self, storyboard: &crate::manifest::Storyboard) -> usize {
        self.jobs.map_or_else(
            || {
                storyboard
                    .catalogue
                    .provider(storyboard.api)
                    .max_running_jobs
            },
            usize::from,
        )
    }

    /// `--rpm`, else what the provider documents (the catalogue).
    fn rpm_for(&self, storyboard: &crate::manifest::Storyboard) -> u32 {
        self.rpm.unwrap_or_else(|| {
            storyboard
                .catalogue
                .provider(storyboard.api)
                .requests_per_minute
        })
    }
}

pub async fn execute(args: Args) -> miette::Result<ExitCode> {
    let storyboard = match args.selection.load()? {
        Ok(sb) => sb,
        Err(code) => return Ok(code),
    };
    let file = args.selection.file();
    if args.dry_run {
        let mut planned = args.selection.plan_for(storyboard)?;
        let cache = match open_cache(&args, &planned, true) {
            Ok(cache) => cache,
            Err(code) => return Ok(code),
        };
        if let Some(cache) = &cache {
            for (id, miss) in crate::cache::look_up_plan(cache, &mut planned.plan).await {
                eprintln!("warning: `{id}`: cache {miss}");
            }
        }
        print!("{}", super::plan::render_text(&file, &planned.plan));
        return Ok(ExitCode::from(exit_codes::SUCCESS));
    }

    // One render per output folder at a time, and the plan made under that lock, so the
    // lockfile this run updates is the one it planned from. Then clear what a killed run
    // left.
    let out_dir = storyboard.output_dir();
    // Videos go only where the manifest says: a symlinked output folder (or a folder on
    // the way) would send them, and the run lock, outside the board.
    if let Err(e) = crate::board_path::check_owned_dir(&storyboard.dir, &storyboard.output)
        .and_then(|()| crate::board_path::resolve_owned(&out_dir, RUN_LOCK).map(|_| ()))
    {
        eprintln!("error: refused to write into the output folder: {e}");
        eprintln!(
            "  help: make `{}` a plain folder inside the manifest's folder",
            storyboard.output.display()
        );
        return Ok(ExitCode::from(exit_codes::ERROR));
    }
    std::fs::create_dir_all(&out_dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("failed to create `{}`", out_dir.display()))?;
    let _run_lock = match lock_output(&out_dir) {
        Ok(lock) => lock,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(exit_codes::ERROR));
        }
    };
    remove_stale_temps(&out_dir);
    if let Err(message) = claim_output(&storyboard, &out_dir, args.share_output) {
        eprintln!("error: {message}");
        return Ok(ExitCode::from(exit_codes::ERROR));
    }
    let mut planned = args.selection.plan_for(storyboard)?;
    // The shared cache is looked up before anything else: a hit needs no job, so
    // `--locked` and the cap count only the misses.
    let cache = match open_cache(&args, &planned, args.cache_read_only) {
        Ok(cache) => cache,
        Err(code) => return Ok(code),
    };
    let cache_warnings = match &cache {
        Some(cache) => crate::cache::look_up_plan(cache, &mut planned.plan).await,
        None => Vec::new(),
    };
    let Planned {
        storyboard,
        lock,
        target,
        plan,
    } = planned;
    let lock_path = storyboard.lockfile_path();
    // A newer shotlist wrote it: rewriting would drop what it recorded. Before any request.
    if lock.revision > crate::lockfile::REVISION {
        return Err(miette::Report::new(
            crate::lockfile::LockError::NewerRevision {
                path: lock_path,
                found: lock.revision,
            },
        ));
    }

    // `--no-deps` with a shot whose upstream video is missing: nothing can start it.
    let blocked: Vec<String> = plan
        .shots
        .iter()
        .filter(|s| matches!(s.reason, crate::plan::Reason::UpstreamMissing { .. }))
        .map(|s| format!("  {}: {}", s.id, s.reason))
        .collect();
    if !blocked.is_empty() {
        eprintln!("error: --no-deps: these shots start from frames that are not rendered:");
        for line in &blocked {
            eprintln!("{line}");
        }
        eprintln!("  help: render the shots they start from first, or run without --no-deps");
        return Ok(ExitCode::from(exit_codes::ERROR));
    }

    if args.locked {
        let needs_jobs: Vec<String> = plan
            .shots
            .iter()
            .filter(|s| s.jobs_to_create > 0)
            .map(|s| format!("  {}: {}", s.id, s.reason))
            .collect();
        if !needs_jobs.is_empty() {
            eprintln!(
                "error: --locked: {} shot{} would need a new job:",
                needs_jobs.len(),
                if needs_jobs.len() == 1 { "" } else { "s" }
            );
            for line in &needs_jobs {
                eprintln!("{line}");
            }
            eprintln!(
                "  help: render without --locked and commit `{}`",
                lock_path.display()
            );
            return Ok(ExitCode::from(exit_codes::LOCKED));
        }
    }

    // The cap, before any request: the plan's estimate must fit it.
    let budget = args.budget_for(&storyboard);
    if let Some(budget) = &budget
        && let Err(message) = over_budget(&plan, budget)
    {
        eprintln!("error: {message}");
        eprintln!(
            "  help: raise --max-cost (or `budget.max_per_run`), render fewer shots (`shotlist render SHOT...`), or see `shotlist plan` for each shot's estimate"
        );
        return Ok(ExitCode::from(exit_codes::OVER_BUDGET));
    }

    let reporter = Arc::new(Reporter::new(Mode::detect(args.json)));
    let to_do = plan
        .shots
        .iter()
        .filter(|s| s.action != Action::Fresh)
        .count();
    reporter.emit(Event::Started {
        manifest: file.clone(),
        api: storyboard.api.to_string(),
        endpoint: target.lock_name().to_string(),
        shots: plan.shots.len(),
        to_do,
    });
    if let Some(cache) = &cache {
        reporter.emit(Event::Notice {
            message: format!(
                "cache: {}{}{}: {} hit{}, {} miss{}",
                cache.url(),
                if cache.read_only() {
                    " (read-only)"
                } else {
                    ""
                },
                if cache.signed() { " (signed)" } else { "" },
                plan.totals.cache_hits,
                if plan.totals.cache_hits == 1 { "" } else { "s" },
                plan.totals.cache_misses,
                if plan.totals.cache_misses == 1 {
                    ""
                } else {
                    "es"
                },
            ),
        });
    }
    for (id, miss) in &cache_warnings {
        reporter.emit(Event::Notice {
            message: format!("warning: `{id}`: cache {miss}"),
        });
    }
    if to_do == 0 {
        reporter.emit(Event::Summary(crate::reporter::Summary {
            skipped: plan.shots.len(),
            ..Default::default()
        }));
        if !args.no_sheet {
            refresh_sheet(storyboard, target.lock_name().to_owned(), &reporter).await;
        }
        return Ok(ExitCode::from(exit_codes::SUCCESS));
    }

    // Where requests go, and the run's timing.
    let time_scale = args
        .time_scale
        .unwrap_or(if target.is_local() {
            LOCAL_TIME_SCALE
        } else {
            1.0
        })
        .max(1e-3);
    let (client, emulator, coordinator) = match &target {
        Target::Local => {
            if args.coordinate.is_some() {
                reporter.emit(Event::Notice {
                    message: "--coordinate is not used with the built-in emulator: it is this process's own".into(),
                });
            }
            let (client, emulator) = start_local(&storyboard, &args, time_scale, &reporter).await?;
            (client, Some(emulator), None)
        }
        Target::Remote {
            base_url, source, ..
        } => {
            // The jobs API lives only on Azure (`{endpoint}/openai/v1`); the videos API is
            // Azure's when the endpoint is, else the base URL is taken as given.
            let sora = matches!(
                storyboard.api,
                crate::limits::Api::AzureJobs | crate::limits::Api::OpenaiVideos
            );
            let azure = sora
                && (storyboard.api == crate::limits::Api::AzureJobs
                    || *source == endpoint::ENV_AZURE_ENDPOINT
                    || base_url.contains(".azure.com"));
            // Every shot to render is in the cache: nothing is sent, so no key is needed
            // (a pull request's CI, say).
            let all_cached = plan.shots.iter().all(|s| {
                s.action == Action::Fresh
                    || matches!(s.cache, Some(crate::plan::CacheStatus::Hit { .. }))
            });
            match Auth::from_env(storyboard.api, azure, |k| std::env::var(k).ok()) {
                Some(auth) => {
                    let coordinator = match &args.coordinate {
                        None => None,
                        Some(url) => {
                            // Azure's limits are the resource's, whichever key or token
                            // is used: the account is the host alone there.
                            let account = crate::coordinate::account_key(
                                target.lock_name(),
                                if azure { None } else { auth.account_secret() },
                            );
                            let limits = crate::coordinate::Limits::new(
                                args.jobs_for(&storyboard),
                                args.rpm_for(&storyboard),
                                time_scale,
                            );
                            match crate::coordinate::Coordinator::connect(url, &account, limits)
                                .await
                            {
                                Ok(c) => Some(c),
                                Err(message) => {
                                    eprintln!(
                                        "error: the coordinator cannot be reached: {message}"
                                    );
                                    eprintln!(
                                        "  help: nothing was sent; start Redis, fix --coordinate (or SHOTLIST_COORDINATOR), or render without it"
                                    );
                                    return Ok(ExitCode::from(exit_codes::ERROR));
                                }
                            }
                        }
                    };
                    let endpoint = if azure {
                        Endpoint::azure(storyboard.api, base_url, auth)
                    } else {
                        Endpoint::new(storyboard.api, base_url, auth)
                    }
                    .into_diagnostic()?;
                    let pacer = Arc::new(Pacer::per_minute(args.rpm_for(&storyboard), time_scale));
                    if let Some(c) = &coordinator {
                        pacer.coordinate(Arc::clone(c));
                        let others = c.held_by_others(0).await.unwrap_or(0);
                        reporter.emit(Event::Notice {
                            message: format!(
                                "coordinated through {}: {} job slot{} and {} requests a minute for the account; other processes hold {others} slot{} now",
                                c.url(),
                                c.limits().jobs,
                                if c.limits().jobs == 1 { "" } else { "s" },
                                args.rpm_for(&storyboard),
                                if others == 1 { "" } else { "s" },
                            ),
                        });
                    }
                    let client = crate::api::connect(endpoint, pacer, &ClientOptions::default())
                        .into_diagnostic()?;
                    reporter.emit(Event::Notice {
                        message: format!("credential: {}", client.auth_description()),
                    });
                    (client, None, coordinator)
                }
                None if all_cached => {
                    reporter.emit(Event::Notice {
                        message: format!(
                            "no credential for {}: every shot to render is in the cache, and nothing is sent",
                            target.lock_name()
                        ),
                    });
                    let client: Client = Arc::new(crate::api::uncredentialed::Uncredentialed::new(
                        storyboard.api,
                    ));
                    (client, None, None)
                }
                None => {
                    eprintln!("error: no credential for {}", target.lock_name());
                    eprintln!("  help: {}", Auth::missing_help(storyboard.api));
                    return Ok(ExitCode::from(exit_codes::AUTH));
                }
            }
        }
    };
    let config = Config {
        max_jobs: args.jobs_for(&storyboard),
        thumbnails: !args.no_thumbnails,
        force: args.selection.force,
        verify: args.selection.verify,
        budget,
        cache: cache.map(Arc::new),
        coordinator: coordinator.clone(),
        locked: args.locked,
        ..Config::for_service().scaled(time_scale)
    };

    // First Ctrl-C: start nothing new, finish and record what runs. Second: abort now;
    // the lockfile is valid at every instant.
    let stop = Arc::new(Stop::default());
    let signals = {
        let stop = Arc::clone(&stop);
        let reporter = Arc::clone(&reporter);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                reporter.emit(Event::Notice {
                    message: "stopping: no new jobs; waiting for running jobs (they are paid for). Press Ctrl-C again to abort".into(),
                });
                stop.request();
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "aborted: running jobs are recorded in the lockfile; run again to resume them"
                );
                std::process::exit(i32::from(exit_codes::INTERRUPTED));
            }
        })
    };

    let recorder = Arc::new(Recorder::new(lock_path, lock));
    let credential = client.auth_description();
    let api = storyboard.api;
    let board = storyboard.clone();
    let lock_name = target.lock_name().to_owned();
    let report = engine::run(
        client,
        storyboard,
        plan,
        recorder,
        Arc::clone(&reporter),
        config,
        Arc::clone(&stop),
    )
    .await;
    signals.abort();
    if let Some(c) = &coordinator {
        c.settle().await;
    }
    reporter.emit(Event::Summary(report.summary.clone()));
    if let Some(emulator) = emulator {
        stop_local(emulator).await;
    }
    if !args.no_sheet {
        refresh_sheet(board, lock_name, &reporter).await;
    }

    let Some(error) = report.error() else {
        return Ok(ExitCode::from(exit_codes::SUCCESS));
    };
    match &error {
        engine::RenderError::CredentialRefused(_) => {
            eprintln!("error: {error}");
            eprintln!(
                "  help: the run stopped so nothing more is sent with the {credential}. {}, then run again: finished work is recorded",
                match api {
                    crate::limits::Api::AzureJobs | crate::limits::Api::OpenaiVideos =>
                        "Use a key of this resource (AZURE_OPENAI_API_KEY or OPENAI_API_KEY), or Microsoft Entra ID (AZURE_OPENAI_AD_TOKEN, or unset the key and `az login`)",
                    _ => crate::api::Auth::missing_help(api),
                }
            );
        }
        engine::RenderError::OutOfCredit(_) => {
            eprintln!("error: {error}");
            eprintln!(
                "  help: the run stopped and started nothing new; jobs already running were followed and recorded. \
                 Add credit at the provider (or raise the key's limit), then run again"
            );
        }
        engine::RenderError::OverBudget(_) => {
            eprintln!("error: {error}");
            eprintln!(
                "  help: what started is recorded; raise --max-cost (or `budget.max_per_run`) and run again to render the rest"
            );
        }
        engine::RenderError::ShotsFailed(_) => {
            eprintln!("error: {error}");
            eprintln!(
                "  help: each shot's reason is above; run again to retry them: finished work is recorded"
            );
        }
        engine::RenderError::CoordinatorGone(_) => {
            eprintln!("error: {error}");
            eprintln!(
                "  help: no new job was started without it; the jobs already running were followed and recorded. Start Redis again and run again: what finished is recorded"
            );
        }
        engine::RenderError::Interrupted => {}
    }
    Ok(ExitCode::from(error.exit_code()))
}

/// The shared cache the run uses, opened (no request yet). `Err`: the exit code, after
/// saying why (a bad URL, a cloud configuration the library refuses).
fn open_cache(
    args: &Args,
    planned: &Planned,
    read_only: bool,
) -> Result<Option<crate::cache::Cache>, ExitCode> {
    let settings = args
        .selection
        .cache_settings(&planned.storyboard, &planned.target, read_only)
        .map_err(|message| {
            eprintln!("error: {message}");
            ExitCode::from(exit_codes::USAGE)
        })?;
    let Some(settings) = settings else {
        return Ok(None);
    };
    crate::cache::Cache::open(&settings).map(Some).map_err(|e| {
        eprintln!("error: the cache `{}` ({}) cannot be used: {e}", settings.url, settings.from);
        eprintln!(
            "  help: check its credentials and settings in the environment (AWS_*, AZURE_STORAGE_*, GOOGLE_*), or run with --no-cache"
        );
        ExitCode::from(exit_codes::ERROR)
    })
}

/// Writes the contact sheet for what the lockfile now says. A failure is reported and
/// changes nothing else: the renders and the lockfile are already safe.
async fn refresh_sheet(
    storyboard: crate::manifest::Storyboard,
    endpoint: String,
    reporter: &Reporter,
) {
    let written = tokio::task::spawn_blocking(move || {
        let page = super::sheet::default_page(&storyboard)?;
        let lock = crate::lockfile::Lockfile::read(&storyboard.lockfile_path())
            .map_err(|e| e.to_string())?;
        crate::sheet::write_for(&storyboard, &lock, &endpoint, &page).map_err(|e| e.to_string())
    })
    .await;
    let message = match written {
        Ok(Ok(w)) => format!("contact sheet: {}", w.path.display()),
        Ok(Err(e)) => format!("warning: the contact sheet was not written: {e}"),
        Err(e) => format!("warning: the contact sheet was not written: {e}"),
    };
    reporter.emit(Event::Notice { message });
}

/// Name of the file a render holds locked in the output folder while it runs.
pub const RUN_LOCK: &str = ".shotlist-run";

/// Takes the output folder's run lock, so two renders never write the same files.
fn lock_output(out_dir: &std::path::Path) -> Result<std::fs::File, String> {
    let path = out_dir.join(RUN_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("failed to open `{}`: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another `shotlist render` is writing to `{}`; wait for it to finish",
            out_dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("failed to lock `{}`: {e}", path.display()))
        }
    }
}

/// The file in an output folder that names the manifest it belongs to.
pub const OWNER_FILE: &str = ".shotlist-owner";

/// One manifest per output folder: two would overwrite each other's videos and, once
/// their jobs expired, pay again on every run. The first render claims the folder; a
/// second manifest is refused unless `--share-output` and no file name of the two collides.
fn claim_output(
    storyboard: &crate::manifest::Storyboard,
    out_dir: &std::path::Path,
    share: bool,
) -> Result<(), String> {
    let ours = storyboard
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let owner_path =
        crate::board_path::resolve_owned(out_dir, OWNER_FILE).map_err(|e| e.to_string())?;
    let owner = match std::fs::read_to_string(&owner_path) {
        Ok(text) => text.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return crate::atomic_write::write(&owner_path, format!("{ours}\n").as_bytes())
                .map_err(|e| format!("failed to write `{}`: {e}", owner_path.display()));
        }
        Err(e) => return Err(format!("failed to read `{}`: {e}", owner_path.display())),
    };
    if owner == ours {
        return Ok(());
    }
    let folder = out_dir.display();
    if !share {
        return Err(format!(
            "`{folder}` holds the renders of `{owner}`; `{ours}` would overwrite them\n  help: give `{ours}` its own `output:` folder, or pass --share-output if no shot id of the two collides (if `{owner}` was renamed to `{ours}`, delete `{folder}/{OWNER_FILE}`)"
        ));
    }
    let other = crate::manifest::load(&storyboard.dir.join(&owner))
        .map_err(|_| format!("`{folder}` belongs to `{owner}`, which cannot be read to check that no file name collides; not sharing it"))?;
    let names = |sb: &crate::manifest::Storyboard| -> std::collections::HashSet<String> {
        sb.shots
            .iter()
            .flat_map(|s| (1..=s.variants).map(move |v| s.video_file_name(v)))
            .collect()
    };
    let theirs = names(&other);
    let mut clash: Vec<String> = names(storyboard).intersection(&theirs).cloned().collect();
    clash.sort();
    if clash.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "`{ours}` and `{owner}` would both write {} in `{folder}`; not sharing it\n  help: give `{ours}` its own `output:` folder",
            clash
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// Removes partial downloads (`.shotlist-*.part`) that a killed run left. Safe while the
/// run lock is held: no other render is writing here.
fn remove_stale_temps(out_dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".shotlist-") && name.ends_with(".part") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The built-in emulator, when this build has it.
#[cfg(feature = "emulator")]
type LocalEmulator = crate::emulator::Emulator;
#[cfg(not(feature = "emulator"))]
type LocalEmulator = std::convert::Infallible;

/// Starts the built-in emulator on loopback with a throwaway key, and a client for it.
#[cfg(feature = "emulator")]
async fn start_local(
    storyboard: &crate::manifest::Storyboard,
    args: &Args,
    time_scale: f64,
    reporter: &Reporter,
) -> miette::Result<(Client, LocalEmulator)> {
    use crate::api::auth::{KeyHeader, Secret};
    use crate::emulator::{Emulator, EmulatorConfig};
    let key = local_key();
    let emulator = Emulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().expect("valid address"),
        api_key: Some(key.clone()),
        time_scale,
        rpm: args.rpm_for(storyboard),
        max_running: args.jobs_for(storyboard),
        log_requests: false,
        catalogue: std::sync::Arc::clone(&storyboard.catalogue),
        ..EmulatorConfig::default()
    })
    .await
    .into_diagnostic()
    .wrap_err("failed to start the built-in emulator")?;
    reporter.emit(Event::Notice {
        message: format!(
            "using the built-in emulator at {}: videos are placeholders. To render for real, {}",
            emulator.base_url(),
            match storyboard.api {
                crate::limits::Api::AzureJobs =>
                    "set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (or pass --endpoint)",
                crate::limits::Api::OpenaiVideos =>
                    "set OPENAI_API_KEY (and OPENAI_BASE_URL for a gateway, or pass --endpoint)",
                crate::limits::Api::Fal => "set FAL_KEY",
                crate::limits::Api::Replicate => "set REPLICATE_API_TOKEN",
                crate::limits::Api::Openrouter => "set OPENROUTER_API_KEY",
            }
        ),
    });
    // Each protocol where its service has it: Azure's under `/openai/v1`, OpenAI's and
    // Replicate's under `/v1`, fal's at the root (the model id is the path).
    let base = match storyboard.api {
        crate::limits::Api::AzureJobs => format!("{}/openai/v1", emulator.base_url()),
        crate::limits::Api::OpenaiVideos | crate::limits::Api::Replicate => {
            format!("{}/v1", emulator.base_url())
        }
        crate::limits::Api::Fal => emulator.base_url(),
        crate::limits::Api::Openrouter => format!("{}/api/v1", emulator.base_url()),
    };
    let auth = Auth::ApiKey {
        key: Secret::new(key),
        header: KeyHeader::of(storyboard.api),
        source: "the built-in emulator's throwaway key".into(),
    };
    let endpoint = Endpoint::new(storyboard.api, &base, auth).into_diagnostic()?;
    let pacer = Arc::new(Pacer::per_minute(args.rpm_for(storyboard), time_scale));
    let client =
        crate::api::connect(endpoint, pacer, &ClientOptions::default()).into_diagnostic()?;
    Ok((client, emulator))
}

#[cfg(not(feature = "emulator"))]
async fn start_local(
    _storyboard: &crate::manifest::Storyboard,
    _args: &Args,
    _time_scale: f64,
    _reporter: &Reporter,
) -> miette::Result<(Client, LocalEmulator)> {
    Err(miette::miette!(
        help = "pass --endpoint URL (or set AZURE_OPENAI_ENDPOINT / OPENAI_BASE_URL), or build shotlist with its default features",
        "this shotlist was built without the built-in emulator and no endpoint is configured"
    ))
}

#[cfg(feature = "emulator")]
async fn stop_local(emulator: LocalEmulator) {
    emulator.shutdown().await;
}

#[cfg(not(feature = "emulator"))]
async fn stop_local(emulator: LocalEmulator) {
    match emulator {}
}

/// Why `plan` does not fit `budget`: its estimate is over the cap (naming the most
/// expensive shots), or a shot to render has no known price and unknown prices are not
/// allowed.
fn over_budget(plan: &crate::plan::Plan, budget: &crate::cost::Budget) -> Result<(), String> {
    let currency = plan.totals.currency.as_deref().unwrap_or("USD");
    let money = |a: f64| crate::cost::Money::new(a, currency).to_string();
    if !plan.totals.unknown_price.is_empty() && !budget.allow_unknown {
        return Err(format!(
            "under a cap of {}, {} would be rendered with no known price ({}); an unknown price counts as over any cap (--allow-unknown-price to go ahead)",
            money(budget.max),
            if plan.totals.unknown_price.len() == 1 {
                "1 shot"
            } else {
                "shots"
            },
            plan.totals.unknown_price.join(", ")
        ));
    }
    let total = plan.totals.estimated_cost;
    if total <= budget.max + 1e-9 {
        return Ok(());
    }
    let mut costly: Vec<(&str, f64)> = plan
        .shots
        .iter()
        .filter(|s| s.jobs_to_create > 0)
        .filter_map(|s| Some((s.id.as_str(), s.estimated_cost?)))
        .collect();
    costly.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let named: Vec<String> = costly
        .iter()
        .take(3)
        .map(|(id, c)| format!("{id} ~{}", money(*c)))
        .collect();
    Err(format!(
        "this run would cost about {}, over the cap of {}; the most expensive: {}",
        money(total),
        money(budget.max),
        named.join(", ")
    ))
}

/// A throwaway key for the in-process emulator: the client and server agree on it, and
/// nothing else on the machine can drive the emulator without it.
#[cfg(feature = "emulator")]
fn local_key() -> String {
    let mut rng = fastrand::Rng::new();
    (0..32).map(|_| rng.alphanumeric()).collect()
}
