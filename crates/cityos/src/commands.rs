//! The small commands: `simulate` (one synthetic day, printed), `territory generate`,
//! `check` (configuration files, every problem with its place) and `token` (a machine's
//! API token signed with the data directory's key).

use cityos_engine::config::Config;
use cityos_engine::store::sqlite::SqliteStore;
use cityos_engine::Store;
use std::path::{Path, PathBuf};

/// `cityos simulate`: one day of Xuhui through the engine on `db` (default: in memory),
/// its summary as text or JSON.
pub fn simulate(
    seed: u64,
    reports: usize,
    tail_days: u32,
    db: Option<String>,
    json: bool,
) -> Result<(), String> {
    let cfg = Config::xuhui();
    let store: Box<dyn Store> = match db {
        Some(url) => cityos_engine::open_store(&url).map_err(|e| e.to_string())?,
        None => Box::new(SqliteStore::in_memory().map_err(|e| e.to_string())?),
    };
    let mut engine = cfg.engine(store).map_err(|e| e.to_string())?;
    let s = cityos_sim::simulate::run(
        &mut engine,
        &cityos_sim::simulate::Options {
            seed,
            reports,
            tail_days,
            progress: !json,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "reports": s.reports, "cases": s.cases, "merged_reports": s.merged_reports, "by_state": s.by_state,
                "returns": s.returns, "reworks": s.reworks, "escalations": s.escalations, "overdue_open": s.overdue_open,
                "on_time_rate": s.on_time_rate(), "digest": format!("{:016x}", s.digest)
            })
        );
    } else {
        println!("{s}");
    }
    Ok(())
}

/// `cityos territory generate`: the territory GeoJSON from the source files, written to
/// `out` and loaded back once as a check.
pub fn generate_territory(
    sources: &Path,
    seed: u64,
    grids: usize,
    out: &Path,
) -> Result<(), String> {
    let src = cityos_sim::territory::load_sources(sources)
        .map_err(|e| format!("{}: {e}", sources.display()))?;
    let text = cityos_sim::territory::generate(&src, seed, grids)?;
    std::fs::write(out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
    cityos_core::Territory::from_geojson(&[&text])
        .map_err(|e| format!("generated territory does not load: {e}"))?;
    println!("wrote {} ({} bytes)", out.display(), text.len());
    Ok(())
}

/// Writes the canteens and meal points file (为老助餐) from the embedded territory.
pub fn generate_canteens(out: &Path) -> Result<(), String> {
    let cfg = cityos_engine::config::Config::xuhui();
    let text = cityos_sim::meals::canteens_csv(&cfg.territory);
    cityos_server::meals::demo::parse_canteens(&text)?;
    if let Some(d) = out.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    std::fs::write(out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("wrote {} ({} lines)", out.display(), text.lines().count());
    Ok(())
}

/// The files `cityos check` validates; each absent one is the embedded default.
pub struct CheckFiles {
    pub territory: Option<PathBuf>,
    pub taxonomy: Option<PathBuf>,
    pub calendar: Option<PathBuf>,
    pub indicators: Option<PathBuf>,
    pub alert_rules: Option<PathBuf>,
    /// The evaluation's scoring scheme (issue 17).
    pub scoring: Option<PathBuf>,
}

/// `cityos check`: loads the configuration from the files and reports what it holds, or
/// every problem with its place.
pub fn check(f: &CheckFiles) -> Result<(), String> {
    let read = |p: &Option<PathBuf>, default: &str| -> Result<String, String> {
        match p {
            Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())),
            None => Ok(default.to_string()),
        }
    };
    use cityos_engine::demo::{
        ALERT_RULES_TOML, CALENDAR_CSV, INDICATORS_TOML, TAXONOMY_TOML, TERRITORY_GEOJSON,
    };
    let (ind_text, rules_text) = (
        read(&f.indicators, INDICATORS_TOML)?,
        read(&f.alert_rules, ALERT_RULES_TOML)?,
    );
    let cfg = Config::from_texts(
        &read(&f.territory, TERRITORY_GEOJSON)?,
        &read(&f.taxonomy, TAXONOMY_TOML)?,
        &read(&f.calendar, CALENDAR_CSV)?,
    )
    .and_then(|c| c.with_indicators(&ind_text))
    .and_then(|c| c.with_alert_rules(&rules_text))
    .map_err(|e| e.to_string())?;
    let scoring = read(&f.scoring, cityos_engine::demo::SCORING_TOML)?;
    let scheme = cityos_server::evaluation::parse_scheme(&cfg, &scoring).map_err(|e| {
        format!(
            "{}: {e}",
            f.scoring
                .as_ref()
                .map_or("the embedded scoring.toml".into(), |p| p
                    .display()
                    .to_string())
        )
    })?;
    println!(
        "ok: {} regions, {} categories, {} departments, calendar years {:?}, {} indicators, {} alert rules, scoring: {} weights, {} deductions, {} classes",
        cfg.territory.regions().count(),
        cfg.taxonomy.categories.len(),
        cfg.taxonomy.departments.len(),
        cfg.calendar.years_covered(),
        cfg.indicators.len(),
        cfg.alert_rules.len(),
        scheme.weights.len(),
        scheme.deductions.len(),
        scheme.classes.len()
    );
    Ok(())
}

/// What `cityos token` is asked for.
pub struct TokenRequest {
    pub name: String,
    pub role: String,
    pub channel: String,
    pub scope: Option<String>,
    pub department: Option<String>,
    pub days: u32,
    pub data: PathBuf,
}

/// `cityos token`: checks the request against the demo configuration and prints the
/// token signed with the data directory's key.
pub fn token(t: TokenRequest) -> Result<(), String> {
    let TokenRequest {
        name,
        role,
        channel,
        scope,
        department,
        days,
        data,
    } = t;
    let cfg = Config::xuhui();
    let role = cityos_core::Role::parse(&role).ok_or_else(|| format!("unknown role {role:?}"))?;
    if role == cityos_core::Role::System && !matches!(channel.as_str(), "sensor" | "data") {
        return Err(format!(
            "a system token reports on the sensor or data channel, not {channel:?}"
        ));
    }
    if let Some(s) = &scope {
        cfg.territory
            .by_code(s)
            .ok_or_else(|| format!("unknown region {s:?}"))?;
    }
    if let Some(d) = &department {
        cfg.taxonomy
            .department(d)
            .ok_or_else(|| format!("unknown department {d:?}"))?;
    }
    if name.trim().is_empty() {
        return Err("the token needs a name".into());
    }
    let key = crate::serve::token_key(&data)?;
    let now = cityos_server::Clock::now(&cityos_server::SystemClock);
    let token = key.sign(&cityos_server::http::auth::Principal {
        name,
        role,
        department,
        scope,
        channel: (role == cityos_core::Role::System).then_some(channel),
        expires_at: now + days as i64 * cityos_core::time::DAY,
    });
    println!("{token}");
    Ok(())
}
