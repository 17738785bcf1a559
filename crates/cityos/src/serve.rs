//! `cityos serve` and the serving part of `cityos demo`: configuration (file < env <
//! flags), the token key in the data directory, the HTTP listener (`cityos_server::http::listen`:
//! read timeouts, a connection limit), graceful shutdown on
//! Ctrl-C or SIGTERM (the engine finishes and commits what it has queued).

use cityos_engine::config::Config;
use cityos_server::http::auth::TokenKey;
use cityos_server::runtime::service::{
    demo_accounts, seed_demo_accounts, Database, Service, DEMO_PASSWORD,
};
use cityos_server::{app, Clock, SystemClock};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Flags of `cityos serve`: the config file, and the settings (each can also come from
/// the environment or the config file).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A TOML file with any of: addr, data, database_url, log_format, mqtt_url, devices,
    /// alarm_rules, indicators, alert_rules, scenarios, metrics_token, tile_url,
    /// tile_attribution.
    #[arg(long, env = "CITYOS_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
}

/// The service's settings — the same struct for the flags (with their `CITYOS_*`
/// environment variables), the config file and what `cityos demo` passes; an absent one
/// takes its default (see the accessors) or the embedded demo file.
#[derive(clap::Args, serde::Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CITYOS_ADDR")]
    pub addr: Option<String>,
    /// Data directory: the SQLite database and the token key [default: cityos-data].
    #[arg(long, env = "CITYOS_DATA")]
    pub data: Option<PathBuf>,
    /// postgres://… to use PostgreSQL instead of SQLite in the data directory.
    #[arg(long, env = "CITYOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "CITYOS_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// mqtt://host:port of a broker: sensor readings arrive on cityos/readings/{device}.
    #[arg(long, env = "CITYOS_MQTT_URL")]
    pub mqtt_url: Option<String>,
    /// The device registry (CSV: id,kind,lon,lat,owner,tags) instead of the demo's.
    #[arg(long, env = "CITYOS_DEVICES")]
    pub devices: Option<PathBuf>,
    /// The sensing end's alarm rules (TOML) instead of the demo's.
    #[arg(long, env = "CITYOS_ALARM_RULES")]
    pub alarm_rules: Option<PathBuf>,
    /// The vital-sign indicators (TOML) instead of the demo's.
    #[arg(long, env = "CITYOS_INDICATORS")]
    pub indicators: Option<PathBuf>,
    /// Alert rules over the vital signs (TOML) instead of the demo's (also
    /// `--vital-rules`, `CITYOS_VITAL_RULES`, `vital_rules`: the old names).
    #[arg(long, env = "CITYOS_ALERT_RULES", alias = "vital-rules")]
    #[serde(alias = "vital_rules")]
    pub alert_rules: Option<PathBuf>,
    /// A directory of scenario packs (`*.toml`, one pack each, named by its code): each
    /// replaces the embedded pack of that name, or adds one.
    #[arg(long, env = "CITYOS_SCENARIOS")]
    pub scenarios: Option<PathBuf>,
    /// When set, GET /metrics asks for it: `Authorization: Bearer <token>` [default: open].
    #[arg(long, env = "CITYOS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// 精准救助: the pool key file (16–64 bytes, a deployment secret): person and household
    /// ids become keyed hashes under it. Without it the assistance endpoints answer 503
    /// (the demo makes a random one in its data directory).
    #[arg(long, env = "CITYOS_ASSISTANCE_KEY_FILE")]
    pub assistance_key_file: Option<PathBuf>,
    /// Several nodes: this node's name, unique in the cluster (needs a postgres://
    /// database; see README "Running several nodes") [default: one node owns everything].
    #[arg(long, env = "CITYOS_NODE")]
    pub node: Option<String>,
    /// Several nodes: where the other nodes reach this one [default: http://ADDR].
    #[arg(long, env = "CITYOS_ADVERTISE")]
    pub advertise: Option<String>,
    /// Several nodes: how case state is partitioned — subdistrict or district
    /// [default: subdistrict].
    #[arg(long, env = "CITYOS_PARTITION_BY")]
    pub partition_by: Option<String>,
    /// Several nodes: how long a partition lease lasts without renewal, in ms
    /// [default: 3000].
    #[arg(long, env = "CITYOS_LEASE_MS")]
    pub lease_ms: Option<i64>,
    /// Several nodes: nats://host:port of a NATS server with JetStream — the event bus
    /// (and the live stream) shared by every node [default: in-process, one node].
    #[arg(long, env = "CITYOS_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// The JetStream stream the bus uses (subjects `<name in lower case>.>`)
    /// [default: CITYOS].
    #[arg(long, env = "CITYOS_NATS_STREAM")]
    pub nats_stream: Option<String>,
    /// A raster tile base layer under the maps, from the district's own tile server: an
    /// http(s) URL template with {z}, {x} and {y} (Web Mercator), e.g.
    /// `https://tiles.example/{z}/{x}/{y}.png`; the pages' CSP then allows its origin
    /// for images [default: none — the maps fetch nothing from outside].
    #[arg(long, env = "CITYOS_TILE_URL")]
    pub tile_url: Option<String>,
    /// The attribution text the maps show with the tiles (e.g. "© 徐汇区测绘").
    #[arg(long, env = "CITYOS_TILE_ATTRIBUTION")]
    pub tile_attribution: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("data", &self.data)
            .field("database_url", &redacted(&self.database_url))
            .field("log_format", &self.log_format)
            .field("mqtt_url", &self.mqtt_url)
            .field("devices", &self.devices)
            .field("alarm_rules", &self.alarm_rules)
            .field("indicators", &self.indicators)
            .field("alert_rules", &self.alert_rules)
            .field("scenarios", &self.scenarios)
            .field("metrics_token", &redacted(&self.metrics_token))
            .field("assistance_key_file", &self.assistance_key_file)
            .field("node", &self.node)
            .field("advertise", &self.advertise)
            .field("partition_by", &self.partition_by)
            .field("lease_ms", &self.lease_ms)
            .field("nats_url", &redacted(&self.nats_url))
            .field("nats_stream", &self.nats_stream)
            .field("tile_url", &self.tile_url)
            .field("tile_attribution", &self.tile_attribution)
            .finish()
    }
}

impl Settings {
    /// These settings, each falling back to `other`'s where absent.
    fn or(self, other: Settings) -> Settings {
        Settings {
            addr: self.addr.or(other.addr),
            data: self.data.or(other.data),
            database_url: self.database_url.or(other.database_url),
            log_format: self.log_format.or(other.log_format),
            mqtt_url: self.mqtt_url.or(other.mqtt_url),
            devices: self.devices.or(other.devices),
            alarm_rules: self.alarm_rules.or(other.alarm_rules),
            indicators: self.indicators.or(other.indicators),
            alert_rules: self.alert_rules.or(other.alert_rules),
            scenarios: self.scenarios.or(other.scenarios),
            metrics_token: self.metrics_token.or(other.metrics_token),
            assistance_key_file: self.assistance_key_file.or(other.assistance_key_file),
            node: self.node.or(other.node),
            advertise: self.advertise.or(other.advertise),
            partition_by: self.partition_by.or(other.partition_by),
            lease_ms: self.lease_ms.or(other.lease_ms),
            nats_url: self.nats_url.or(other.nats_url),
            nats_stream: self.nats_stream.or(other.nats_stream),
            tile_url: self.tile_url.or(other.tile_url),
            tile_attribution: self.tile_attribution.or(other.tile_attribution),
        }
    }

    /// The tile base layer (`None`: no tiles), checked.
    pub fn tiles(&self) -> Result<Option<cityos_server::ui::Tiles>, String> {
        match self.tile_url.as_deref().map(str::trim) {
            None | Some("") => {
                if self.tile_attribution.is_some() {
                    return Err(
                        "--tile-attribution (CITYOS_TILE_ATTRIBUTION) needs --tile-url \
                         (CITYOS_TILE_URL): give the tile server's URL template too, or \
                         neither"
                            .into(),
                    );
                }
                Ok(None)
            }
            Some(u) => cityos_server::ui::Tiles::new(u, self.tile_attribution.as_deref()).map(Some),
        }
    }

    /// The bus on NATS JetStream (`None`: the in-process bus), checked.
    pub fn nats(&self) -> Result<Option<cityos_server::runtime::jetstream::NatsOptions>, String> {
        use cityos_server::runtime::jetstream as js;
        let Some(url) = &self.nats_url else {
            if self.nats_stream.is_some() {
                return Err("--nats-stream needs --nats-url".into());
            }
            return Ok(None);
        };
        js::parse_url(url)?;
        let stream = self
            .nats_stream
            .clone()
            .unwrap_or_else(|| js::DEFAULT_STREAM.into());
        js::check_stream(&stream)?;
        Ok(Some(js::NatsOptions {
            url: url.clone(),
            stream,
            node: self.node.clone().unwrap_or_else(|| "single".into()),
        }))
    }

    /// The address to listen on.
    pub fn addr(&self) -> &str {
        self.addr.as_deref().unwrap_or("127.0.0.1:8080")
    }

    /// The data directory.
    pub fn data(&self) -> &Path {
        self.data.as_deref().unwrap_or(Path::new("cityos-data"))
    }

    /// Several nodes: how this node joins (`None`: one node owns everything), checked.
    pub fn cluster(
        &self,
    ) -> Result<Option<cityos_server::runtime::cluster::ClusterOptions>, String> {
        let Some(node) = &self.node else {
            if self.advertise.is_some() || self.partition_by.is_some() || self.lease_ms.is_some() {
                return Err(
                    "--advertise, --partition-by and --lease-ms need --node (several nodes)".into(),
                );
            }
            return Ok(None);
        };
        if node.is_empty()
            || node.len() > 64
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "node name {node:?} must be 1 to 64 letters, digits, '-' or '_'"
            ));
        }
        if !self
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            return Err("several nodes (--node) need a shared PostgreSQL database: --database-url postgres://…".into());
        }
        let by = cityos_engine::engine::Partitioning::parse(
            self.partition_by.as_deref().unwrap_or("subdistrict"),
        )?;
        let ttl_ms = self
            .lease_ms
            .unwrap_or(cityos_server::runtime::cluster::DEFAULT_TTL_MS);
        if !(500..=60_000).contains(&ttl_ms) {
            return Err(format!("--lease-ms {ttl_ms} must be between 500 and 60000"));
        }
        let address = self
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr()));
        if !address.starts_with("http://") {
            return Err(format!(
                "--advertise {address:?} must be http://host:port (where the other nodes reach this one)"
            ));
        }
        Ok(Some(cityos_server::runtime::cluster::ClusterOptions {
            node: node.clone(),
            address,
            by,
            ttl_ms,
        }))
    }

    /// The log format: text or json.
    pub fn log_format(&self) -> &str {
        self.log_format.as_deref().unwrap_or("text")
    }
}

impl ServeArgs {
    /// Flags (and environment) over the config file; the values checked.
    pub fn resolve(self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                toml::from_str::<Settings>(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => Settings::default(),
        };
        let old_env = Settings {
            alert_rules: std::env::var_os("CITYOS_VITAL_RULES").map(PathBuf::from),
            ..Settings::default()
        };
        let mut s = self.settings.or(old_env).or(file);
        if !matches!(s.log_format(), "text" | "json") {
            return Err(format!(
                "log format must be text or json, not {:?}",
                s.log_format()
            ));
        }
        if let Some(u) = &s.mqtt_url {
            cityos_server::intake::sensor::mqtt::parse_url(u)?;
        }
        s.metrics_token = s.metrics_token.filter(|t| !t.trim().is_empty());
        s.tiles()?;
        s.cluster()?;
        s.nats()?;
        Ok(s)
    }
}

pub struct DemoOptions {
    pub live: bool,
    pub seed: u64,
}

/// The token key: `CITYOS_TOKEN_KEY` (hex), else `token.key` in the data directory,
/// created on first start.
/// The demo's pool key file in the data directory, made (random) when missing.
fn demo_assistance_key(data: &Path) -> Result<PathBuf, String> {
    let path = data.join("assistance.key");
    if !path.exists() {
        std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
        // Made readable by its owner only from the start (never world-readable, not
        // even for a moment).
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        use std::io::Write;
        o.open(&path)
            .and_then(|mut f| f.write_all(TokenKey::random().to_hex().as_bytes()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}

pub fn token_key(data: &Path) -> Result<TokenKey, String> {
    if let Ok(k) = std::env::var("CITYOS_TOKEN_KEY") {
        return TokenKey::from_hex(&k)
            .ok_or_else(|| "CITYOS_TOKEN_KEY must be 64 hex digits".to_string());
    }
    let path = data.join("token.key");
    match std::fs::read_to_string(&path) {
        Ok(s) => TokenKey::from_hex(&s)
            .ok_or_else(|| format!("{} is not a token key (64 hex digits)", path.display())),
        Err(_) => {
            std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
            let k = TokenKey::random();
            std::fs::write(&path, k.to_hex()).map_err(|e| format!("{}: {e}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            Ok(k)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub fn run(s: Settings, demo: Option<DemoOptions>) -> Result<(), String> {
    cityos_server::http::log::set_format(s.log_format() == "json");
    let cfg = if s.devices.is_some()
        || s.alarm_rules.is_some()
        || s.indicators.is_some()
        || s.alert_rules.is_some()
    {
        let read = |p: &Option<PathBuf>, embedded: &'static str| -> Result<String, String> {
            match p {
                Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())),
                None => Ok(embedded.to_string()),
            }
        };
        use cityos_engine::demo as d;
        let (rules, devices, indicators, alert_rules) = (
            read(&s.alarm_rules, d::SENSING_TOML)?,
            read(&s.devices, d::DEVICES_CSV)?,
            read(&s.indicators, d::INDICATORS_TOML)?,
            read(&s.alert_rules, d::ALERT_RULES_TOML)?,
        );
        Config::from_texts(d::TERRITORY_GEOJSON, d::TAXONOMY_TOML, d::CALENDAR_CSV)
            .and_then(|c| c.with_sensing(&rules, &devices))
            .and_then(|c| c.with_indicators(&indicators))
            .and_then(|c| c.with_alert_rules(&alert_rules))
            .and_then(|c| c.with_embedded_intake())
            .map_err(|e| format!("configuration: {e}"))?
    } else {
        Config::xuhui()
    };
    let key = token_key(s.data())?;
    let db = Database::from_url_or_dir(s.database_url.as_deref(), s.data());
    let clock: Arc<dyn Clock> = match skew_ms()? {
        0 => Arc::new(SystemClock),
        ms => Arc::new(SkewedClock(ms)),
    };
    let packs = cityos_server::scenarios::sources(&cfg, s.scenarios.as_deref())
        .map_err(|e| format!("scenario packs: {e}"))?;
    let which = match &db {
        Database::Postgres(_) => "cannot reach PostgreSQL (--database-url)".to_string(),
        Database::Sqlite(dir) => format!("cannot open the SQLite database in {}", dir.display()),
    };
    // The bus: NATS JetStream when given (unreachable: the error names NATS and the URL),
    // else in-process.
    let bus: Arc<dyn cityos_server::bus::Bus> = match s.nats()? {
        Some(o) => {
            let b = cityos_server::runtime::jetstream::JetStreamBus::connect(&o)?;
            println!(
                "event bus: NATS JetStream at {} (stream {})",
                o.url, o.stream
            );
            Arc::new(b)
        }
        None => Arc::new(cityos_server::runtime::bus::InProcessBus::default()),
    };
    let mut svc = Service::start_on_bus(cfg.clone(), &db, clock.clone(), key, 4, packs, bus)
        .map_err(|e| format!("{which}: {e}"))?;
    let mut readings_queue = None;
    if let Some(c) = s.cluster()? {
        svc.join_cluster(&c)?;
        // Several nodes on NATS: readings heard by any node's MQTT bridge go through one
        // work queue to the holder of the singleton lease.
        if let Some(o) = s.nats()? {
            let q = Arc::new(cityos_server::runtime::readings::ReadingsQueue::new(&o)?);
            let _ = svc.state.0.readings_queue.set(q.clone());
            readings_queue = Some(q);
        }
        println!(
            "node {} of a cluster (partitions by {:?}, leases of {} ms), reached at {}",
            c.node, c.by, c.ttl_ms, c.address
        );
    }
    if let Some(t) = &s.metrics_token {
        let _ = svc.state.0.metrics_token.set(t.clone());
    }
    if let Some(t) = s.tiles()? {
        println!("maps draw tiles from {} under the regions", t.origin);
        let _ = svc.state.0.tiles.set(t);
    }
    // 精准救助's pool key: the deployment's file, or the demo's own random one.
    let assistance_key = match (&s.assistance_key_file, &demo) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => Some(demo_assistance_key(s.data())?),
        (None, None) => None,
    };
    if let Some(p) = &assistance_key {
        let bytes =
            std::fs::read(p).map_err(|e| format!("assistance key file {}: {e}", p.display()))?;
        let key = cityos_core::assistance::IdKey::new(&bytes)
            .map_err(|e| format!("assistance key file {}: {e}", p.display()))?;
        svc.state.0.assistance.set_key(key);
    }
    // The life circle builds its model and feeds its vital signs in the background.
    cityos_server::lifecircle::start(&svc.state);
    // The classifier for reports without a category (reloaded when the file changes).
    svc.state
        .0
        .smart
        .set_model_file(&s.data().join(cityos_server::smart::MODEL_FILE));
    if let Err(why) = svc.state.0.smart.status() {
        println!("智能分拨：{why} — reports without a category go to the 待分拨 queue");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let stop_live = Arc::new(AtomicBool::new(false));
    let mut live = None;
    let mut scenario_rows = serde_json::Value::Null;
    let result = rt.block_on(async {
        // A pool key other than the one the pool was built with is refused at start.
        if assistance_key.is_some() {
            cityos_server::assistance::check_key(&svc.state).await.map_err(|e| e.detail)?;
        }
        if let Some(d) = &demo {
            let now = clock.now();
            svc.state.0.reads.run(move |st| seed_demo_accounts(st, now)).await.map_err(|e| e.detail)?.map_err(|e| e.to_string())?;
            // The water meters' recent history, then the data end's demo dataset: the
            // lone-elder rule joins them at import and raises its welfare check at once.
            cityos_sim::devices::backfill_meters(&svc.state, 13, d.seed).await.map_err(|e| e.detail)?;
            cityos_server::intake::data::store_dataset(&svc.state, cityos_server::intake::data::LONE_ELDER_DATASET, "dist-civil-affairs", "sensitive", cityos_engine::demo::LONE_ELDER_CSV.as_bytes(), false).await.map_err(|e| e.detail)?;
            // Sharing (数据归集共享): road maintenance holds a grant of civil affairs' dataset.
            cityos_server::intake::data::grants::seed_demo_grant(&svc.state).await.map_err(|e| e.detail)?;
            // The scenario packs' datasets (lifts, flats, residence registrations) and the
            // flats' meters' last two weeks, through the same data end.
            scenario_rows = cityos_sim::devices::load_scenario_data(&svc.state, d.seed).await.map_err(|e| e.detail)?;
            // 为老助餐: about 3,000 elders, menus, the demo's elder, family and canteen links.
            let seed = cityos_sim::meals::seed(&cfg.territory, 3000, now);
            cityos_server::meals::demo::seed(&svc.state, seed, now).await.map_err(|e| e.detail)?;
            // 精准救助: a small synthetic district's sources, fused; its candidates wait as cases.
            let started = std::time::Instant::now();
            let opened = cityos_server::assistance::demo::seed(&svc.state, cityos_server::assistance::demo::DEMO_HOUSEHOLDS, d.seed, now).await.map_err(|e| e.detail)?;
            if !opened.is_empty() {
                println!("精准救助: {} households fused, {} assistance cases opened for the advisers (zhou.adviser: 天平路) in {:.1} s", cityos_server::assistance::demo::DEMO_HOUSEHOLDS, opened.len(), started.elapsed().as_secs_f64());
            }
            if d.live {
                live = Some(cityos_sim::live::start(svc.state.clone(), clock.clone(), stop_live.clone(), d.seed));
                // The demo's sensors report every 10 seconds over the embedded path.
                tokio::spawn(cityos_sim::devices::simulate_devices(svc.state.clone(), d.seed, std::time::Duration::from_secs(10), stop_live.clone(), s.mqtt_url.clone()));
                // External feeds (rain, river, crowds, power…), with an episode every 15 minutes.
                tokio::spawn(cityos_sim::devices::simulate_feeds(svc.state.clone(), d.seed, std::time::Duration::from_secs(10), stop_live.clone()));
                // 为老助餐 through the day: orders, rounds, handovers, the welfare check.
                tokio::spawn(cityos_sim::meals::live(svc.state.clone(), std::time::Duration::from_secs(15), stop_live.clone()));
            }
        }
        if let Some(url) = s.mqtt_url.clone() {
            // The topics' prefix: `cityos`, or CITYOS_MQTT_PREFIX (several districts, or
            // tests, on one broker).
            let prefix = std::env::var("CITYOS_MQTT_PREFIX").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "cityos".into());
            if prefix.contains(['+', '#']) || prefix.ends_with('/') {
                return Err(format!("CITYOS_MQTT_PREFIX {prefix:?} may not hold + or # nor end with /"));
            }
            println!("sensor readings over MQTT: {url} topic {prefix}/readings/{{device}}");
            let (st, stop) = (svc.state.clone(), stop_live.clone());
            tokio::spawn(async move {
                if let Err(e) = cityos_server::intake::sensor::mqtt::run(st, url, prefix, stop).await {
                    eprintln!("MQTT bridge stopped: {e}");
                }
            });
        }
        if let Some(q) = readings_queue.clone() {
            tokio::spawn(cityos_server::runtime::readings::apply(svc.state.clone(), q, stop_live.clone()));
        }
        tokio::spawn(cityos_server::runtime::tickers::sensing(svc.state.clone(), std::time::Duration::from_secs(30), stop_live.clone()));
        // Vital signs: case statistics, alert rules, rollups to the store.
        tokio::spawn(cityos_server::runtime::tickers::alerts(svc.state.clone(), std::time::Duration::from_secs(5), stop_live.clone()));
        // 为老助餐's welfare check: lone elders who missed their usual meal two days running.
        tokio::spawn(cityos_server::runtime::tickers::meals(svc.state.clone(), std::time::Duration::from_secs(600), stop_live.clone()));
        tokio::spawn(cityos_server::runtime::tickers::audit_head(svc.state.clone(), std::time::Duration::from_secs(300), stop_live.clone()));
        tokio::spawn(cityos_server::runtime::tickers::data_quality(svc.state.clone(), std::time::Duration::from_secs(600), stop_live.clone()));
        // The evaluation's monthly report: last month's, saved once for download.
        tokio::spawn(cityos_server::runtime::tickers::evaluation(svc.state.clone(), std::time::Duration::from_secs(600), stop_live.clone()));
        let listener = tokio::net::TcpListener::bind(s.addr()).await.map_err(|e| format!("cannot listen on {}: {e}", s.addr()))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("cityos listening on http://{local}  (API: http://{local}/api/v1, health: http://{local}/healthz)");
        if demo.is_some() {
            println!("demo accounts (password {DEMO_PASSWORD:?}):");
            for (user, name, role, dept, scope) in demo_accounts() {
                let extra = dept.or(scope).map(|x| format!(" [{x}]")).unwrap_or_default();
                println!("  {user:<16} {role:<20} {name}{extra}");
            }
            println!("citizens (Open311 GeoReport v2): http://{local}/open311/v2/services.json");
            println!("public warnings (CAP 1.2 Atom feed): http://{local}/cap/feed.atom");
            println!(
                "scenario packs: datasets lifts {}, flats {}, residence_registrations {} rows; every 10 minutes each pack's pattern and a near miss (docs/scenarios.md, \"In the demo\")",
                scenario_rows["lifts"], scenario_rows["flats"], scenario_rows["residence_registrations"]
            );
            println!("try: curl -s -X POST http://{local}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"username\":\"zhang.district\",\"password\":\"{DEMO_PASSWORD}\"}}'");
        }
        if demo.as_ref().is_some_and(|d| d.live) {
            // The citizens' and inspectors' ends, over HTTP to this very listener.
            let seed = demo.as_ref().map_or(0, |d| d.seed);
            tokio::spawn(cityos_sim::live_ends::run(svc.state.clone(), local.to_string(), cfg.clone(), seed, std::time::Duration::from_secs(15), stop_live.clone()));
        }
        println!("Ctrl-C stops the server; queued work is committed first.");
        // Header and body read timeouts, a connection limit; the peer address reaches
        // handlers (Open311's anonymous rate limit).
        cityos_server::http::listen::serve(listener, app(svc.state.clone()), cityos_server::http::listen::Limits::default(), shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    stop_live.store(true, Ordering::SeqCst);
    if let Some(t) = live {
        let _ = t.join();
    }
    svc.stop();
    println!("cityos stopped");
    result
}

/// `CITYOS_CLOCK_SKEW_MS` (drills and tests of several nodes, issue 20): this node's clock
/// runs this far ahead (or, negative, behind) of the system's. Leases never read it (they
/// go by the database's clock); see README "Running several nodes" for the bound.
fn skew_ms() -> Result<i64, String> {
    match std::env::var("CITYOS_CLOCK_SKEW_MS") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|ms| ms.abs() <= 3_600_000)
            .ok_or_else(|| {
                format!(
                    "CITYOS_CLOCK_SKEW_MS={v:?} is not a number of milliseconds within ±3,600,000"
                )
            }),
        _ => Ok(0),
    }
}

/// The system clock, `0` milliseconds off.
struct SkewedClock(i64);

impl Clock for SkewedClock {
    fn now(&self) -> cityos_core::time::Millis {
        SystemClock.now() + self.0
    }
}
