//! `frontdesk serve`: bring the appliance up, in dependency order, failing early with a message
//! that says what to fix: config → data dir → encrypted store (and practice seed) → model bundle
//! (signature and hashes) → engines (health) → SIP endpoint → web UI → READY.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use fd_store::{Actor, Store};
use fd_voice::endpoint::{Endpoint, EndpointConfig};

use crate::call::{self, CallDeps};
use crate::clock::{self, Clock};
use crate::config::Config;
use crate::engines::{EngineConfig, EngineSet};
use crate::models_cmd;
use crate::ServeArgs;

pub fn run(args: ServeArgs) -> Result<()> {
    init_tracing();
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(a) = args.sip_listen {
        cfg.sip.listen = a;
    }
    if let Some(a) = args.http_listen {
        cfg.http.listen = a;
    }
    // The engine processes and their clients are async; two workers match the target hardware
    // and keep one free while a call blocks briefly on the store.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(args, cfg))
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FRONTDESK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}

pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // PHI lives here: owner only.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Opens the store, seeding it from `practice` when no practice has been imported yet.
pub fn open_store(data_dir: &Path, practice: Option<&Path>) -> Result<Store> {
    let mut store = Store::open(data_dir)?;
    let has_practice = store.practice_summary().is_ok();
    match (practice, has_practice) {
        (Some(p), false) => {
            let report = store.import_practice_file(p, Actor::Cli)?;
            tracing::info!(?report, "practice imported");
        }
        (Some(_), true) => tracing::info!("practice already imported; --practice ignored (use `frontdesk practice import` to update)"),
        (None, false) => bail!(
            "no practice is set up in {}: start with --practice PRACTICE.toml or run `frontdesk practice import PRACTICE.toml`",
            data_dir.display()
        ),
        (None, true) => {}
    }
    Ok(store)
}

struct Status {
    practice: String,
    bundle: String,
    sip_uri: String,
    active: Arc<AtomicUsize>,
    engines: Arc<EngineSet>,
}

impl fd_web::StatusSource for Status {
    fn status(&self) -> fd_web::Status {
        fd_web::Status {
            version: env!("CARGO_PKG_VERSION").into(),
            practice: self.practice.clone(),
            model_bundle: Some(self.bundle.clone()),
            engines: self
                .engines
                .kinds()
                .iter()
                .map(|k| fd_web::EngineStatus { name: k.name().into(), healthy: self.engines.pid(*k).is_some() })
                .collect(),
            sip_uri: self.sip_uri.clone(),
            active_calls: self.active.load(Ordering::Relaxed),
        }
    }
}

async fn serve(args: ServeArgs, cfg: Config) -> Result<()> {
    ensure_data_dir(&args.data_dir)?;

    // Store and practice.
    let store = open_store(&args.data_dir, args.practice.as_deref())?;
    let summary = store.practice_summary()?;
    let tz = store.timezone()?;
    let clock = match &args.now {
        Some(s) => {
            tracing::warn!("--now is set: the clock is simulated (tests and demos only)");
            Clock::starting_at(clock::parse_local(s)?, tz)?
        }
        None => Clock::system(),
    };
    let facts = crate::tools::practice_facts(&store)?;
    drop(store);

    // Models: verify the bundle before any engine reads a byte of it.
    let trusted = models_cmd::trusted_keys(&cfg.models.trusted_keys_dir, args.dev)?;
    let bundle = tokio::task::block_in_place(|| models_cmd::prepare(&args.data_dir, args.bundle.as_deref(), &trusted))?;
    let bundle_desc = format!("{} v{}", bundle.manifest().name, bundle.version());
    tracing::info!(bundle = %bundle_desc, key = bundle.key_id(), "model bundle verified");

    // Engines.
    let runtime_dir = std::env::var_os("RUNTIME_DIRECTORY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| args.data_dir.join("run"));
    let engine_cfg = EngineConfig { threads: cfg.engines.threads.map(|t| t as u32), ..EngineConfig::default() };
    let engines = Arc::new(
        EngineSet::start(cfg.engines.bin_dir.clone(), bundle.model_paths(), runtime_dir, engine_cfg)
            .await
            .context("the speech engines did not start")?,
    );
    // Fixed prompts start instantly when pre-synthesized.
    crate::call::preload_fixed_speech(&engines.tts(), &facts).await;

    // The LLM's static prompt is evaluated once and stays cached for every turn of every call.
    if let Err(e) = engines.llm().set_system_prompt(&fd_receptionist::llm_system_prompt(&facts)).await {
        tracing::warn!(error = %e, "could not load the LLM system prompt; calls continue on the rules alone");
    }

    // SIP.
    let public_ip: Option<IpAddr> = match &cfg.sip.public_host {
        Some(h) => Some(h.parse().with_context(|| format!("sip.public_host '{h}' must be an IP address"))?),
        None => None,
    };
    let ep_cfg = EndpointConfig {
        listen: cfg.sip.listen,
        public_ip,
        rtp_ports: cfg.sip.rtp_ports,
        max_calls: cfg.sip.max_calls,
        trusted_sources: cfg.sip.trusted_sources.iter().filter_map(|t| t.parse().ok()).collect(),
        user: cfg.sip.user.clone(),
        refer_uri_template: cfg.sip.refer_uri_template.clone(),
        accept_any_user: cfg.sip.accept_any_user,
        registration: match &cfg.sip.register {
            Some(r) => Some(registration(r).await?),
            None => None,
        },
        // Validated at load: an unparsable registrar URI never gets here.
        registrar_transport: cfg.sip.register.as_ref().and_then(|r| r.registrar.parse::<fd_voice::sip::ua::RegistrarUri>().ok()).map_or(fd_voice::sip::ua::Transport::Udp, |u| u.transport),
        tls_ca_file: cfg.sip.register.as_ref().and_then(|r| r.tls_ca_file.clone()),
        // Config validation guarantees both files when tls_listen is set.
        tls: match (cfg.sip.tls_listen, &cfg.sip.tls_cert_file, &cfg.sip.tls_key_file) {
            (Some(listen), Some(cert_file), Some(key_file)) => Some(fd_voice::endpoint::TlsConfig { listen, cert_file: cert_file.clone(), key_file: key_file.clone() }),
            _ => None,
        },
        ..EndpointConfig::default()
    };
    let mut endpoint = Endpoint::bind(ep_cfg).await?;
    let sip_addr = endpoint.local_addr();
    let sip_uri = format!("sip:{}@{}", cfg.sip.user, display_addr(sip_addr, public_ip));

    // Web.
    let active = Arc::new(AtomicUsize::new(0));
    let status = Arc::new(Status {
        practice: summary.name.clone(),
        bundle: bundle_desc.clone(),
        sip_uri: sip_uri.clone(),
        active: active.clone(),
        engines: engines.clone(),
    });
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} for the web UI (http.listen / --http-listen): is the port in use?", cfg.http.listen))?;
    let http_addr = listener.local_addr()?;
    let app = fd_web::router(status);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "web UI stopped");
        }
    });

    let deps = CallDeps {
        data_dir: args.data_dir.clone(),
        clock: clock.clone(),
        asr: engines.asr(),
        llm: engines.llm(),
        tts: engines.tts(),
        vad: engines.vad(),
        names: engines.names(),
        spellings: name_spellings(&bundle.model_paths()),
        turn: Default::default(),
    };

    notify(systemd::daemon::STATE_READY);
    println!("Front Desk is up: {} ({bundle_desc})", summary.name);
    println!("  web UI:   http://{http_addr}/");
    println!("  call:     {sip_uri}");
    println!("  clock:    {} ({tz})", clock.now().with_timezone(&tz).format("%Y-%m-%d %H:%M:%S"));

    let watchdog = watchdog_interval();
    let mut ticker = tokio::time::interval(watchdog.unwrap_or(std::time::Duration::from_secs(3600)));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { bail!("the SIP endpoint stopped unexpectedly") };
                let deps = deps.clone();
                let active = active.clone();
                active.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    // Count down on every exit path, including a panic inside the call.
                    struct Guard(Arc<AtomicUsize>);
                    impl Drop for Guard { fn drop(&mut self) { self.0.fetch_sub(1, Ordering::Relaxed); } }
                    let _g = Guard(active);
                    call::run(incoming, deps).await;
                });
            }
            _ = ticker.tick() => {
                if watchdog.is_some() {
                    notify(systemd::daemon::STATE_WATCHDOG);
                }
            }
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                notify(systemd::daemon::STATE_STOPPING);
                break;
            }
        }
    }
    endpoint.shutdown().await;
    if let Ok(e) = Arc::try_unwrap(engines) {
        e.shutdown().await;
    }
    Ok(())
}

/// `[sip.register]` → the endpoint's registration: resolve the registrar once at start (the SIP
/// core does no DNS) and read the digest password from its root-only file.
async fn registration(r: &crate::config::RegisterConfig) -> Result<fd_voice::sip::ua::RegistrationConfig> {
    let uri: fd_voice::sip::ua::RegistrarUri = r.registrar.parse().map_err(|e: String| anyhow::anyhow!("sip.register.registrar: {e}"))?;
    let host = uri.host.as_str();
    let addr = tokio::net::lookup_host((host, uri.port))
        .await
        .with_context(|| format!("sip.register.registrar: cannot resolve {host}: check the PBX host name and DNS"))?
        .next()
        .with_context(|| format!("sip.register.registrar: {host} has no address"))?;
    let password = match &r.password_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("sip.register.password_file: cannot read {}", p.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        None => String::new(),
    };
    Ok(fd_voice::sip::ua::RegistrationConfig {
        registrar: addr,
        domain: if host.contains(':') { format!("[{host}]") } else { host.to_owned() },
        user: r.user.clone(),
        auth_user: r.auth_user.clone().unwrap_or_else(|| r.user.clone()),
        password,
        expires: r.expires_secs,
    })
}

fn display_addr(addr: SocketAddr, public_ip: Option<IpAddr>) -> String {
    let ip = public_ip.unwrap_or(addr.ip());
    SocketAddr::new(ip, addr.port()).to_string()
}

/// Tells systemd (Type=notify) about readiness, liveness and shutdown; a no-op outside systemd.
fn notify(state: &str) {
    if let Err(e) = systemd::daemon::notify([(state, "1")].iter()) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

fn watchdog_interval() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    Some(std::time::Duration::from_micros(usec / 2))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The bundle's lists of real name spellings, when it has both. They only refine how heard names
/// are spelled, so a list that cannot be read is logged (path only) and the calls go on without.
fn name_spellings(paths: &fd_models::ModelPaths) -> Option<Arc<fd_receptionist::spellings::NameSpellings>> {
    let (Some(sur), Some(first)) = (&paths.surnames, &paths.first_names) else { return None };
    let t0 = std::time::Instant::now();
    let read = |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| tracing::warn!(path = %p.display(), error = %e, "name spellings not read; names are kept as heard")).ok();
    let mut s = fd_receptionist::spellings::NameSpellings::new(&read(sur)?, &read(first)?);
    // The homophone tables are optional on their own: without them rare spellings are kept.
    if let (Some(sur_h), Some(first_h)) = (paths.surname_homophones.as_deref().and_then(read), paths.first_name_homophones.as_deref().and_then(read)) {
        s = s.with_homophones(&sur_h, &first_h);
    }
    let (n_sur, n_first) = s.sizes();
    let (h_sur, h_first) = s.homophone_sizes();
    tracing::info!(surnames = n_sur, first_names = n_first, surname_homophones = h_sur, first_name_homophones = h_first, ms = t0.elapsed().as_millis() as u64, "name spellings loaded");
    Some(Arc::new(s))
}
