//! `cityos demo`: the Xuhui demo on the embedded default. A simulated day of history goes
//! into the data directory first (yesterday, or the day after the last one already there),
//! then the service runs with the demo accounts and, unless `--no-live`, the live
//! simulators.

use crate::serve;
use cityos_engine::config::Config;
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use std::path::{Path, PathBuf};

/// The `demo` command's arguments.
pub struct Options {
    pub addr: String,
    pub data: PathBuf,
    pub seed: u64,
    pub no_serve: bool,
    pub no_live: bool,
    pub mqtt_url: Option<String>,
}

pub fn run(o: Options) -> Result<(), String> {
    let Options {
        addr,
        data,
        seed,
        no_serve,
        no_live,
        mqtt_url,
    } = o;
    std::fs::create_dir_all(&data)
        .map_err(|e| format!("cannot create data directory {}: {e}", data.display()))?;
    let cfg = Config::xuhui();
    println!("cityos demo — 徐汇区 (Xuhui): {} sub-districts, {} communities, {} grids; {} categories, {} departments",
        cfg.territory.count(cityos_core::Level::Subdistrict), cfg.territory.count(cityos_core::Level::Community), cfg.territory.count(cityos_core::Level::Grid),
        cfg.taxonomy.categories.len(), cfg.taxonomy.departments.len());
    let db = data.join("cityos.db");
    demo_model(&cfg, &data, seed)?;
    history(&cfg, &db, seed, no_serve)?;
    if no_serve {
        println!("\nstored in {}", db.display());
        return Ok(());
    }
    serve::run(
        serve::Settings {
            addr: Some(addr),
            data: Some(data),
            mqtt_url,
            metrics_token: std::env::var("CITYOS_METRICS_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
            // The deployment's tile base layer, when the environment names one.
            tile_url: std::env::var("CITYOS_TILE_URL")
                .ok()
                .filter(|t| !t.trim().is_empty()),
            tile_attribution: std::env::var("CITYOS_TILE_ATTRIBUTION").ok(),
            ..Default::default()
        },
        Some(serve::DemoOptions {
            live: !no_live,
            seed,
        }),
    )
}

/// Messages the demo's model is trained on (generated: see `classify::generate`).
pub const DEMO_MESSAGES: usize = 4000;

/// Trains the demo's classifier on generated messages into the data directory when it
/// has none (a model trained with `cityos classify train` is kept).
fn demo_model(cfg: &Config, data: &Path, seed: u64) -> Result<(), String> {
    let path = data.join(crate::classify::MODEL_FILE);
    if path.exists() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let model = cityos_core::classify::generate::demo_model(
        &cfg.taxonomy,
        &cfg.intake.gazetteer,
        DEMO_MESSAGES,
        seed,
    )
    .map_err(|e| format!("demo classifier: {e}"))?;
    let tmp = data.join(format!("{}.tmp", crate::classify::MODEL_FILE));
    std::fs::write(&tmp, model.to_bytes())
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "trained the demo classifier on {DEMO_MESSAGES} generated messages ({} categories) in {:.1} s: {}",
        model.labels.len(),
        started.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}

/// Simulates a day into the SQLite file `db` when it holds no cases yet, or always with
/// `--no-serve` (then the day after the last case's); otherwise says it continues.
fn history(cfg: &Config, db: &Path, seed: u64, no_serve: bool) -> Result<(), String> {
    let store = SqliteStore::open(db, Durability::Normal).map_err(|e| e.to_string())?;
    let mut engine = cfg.engine(Box::new(store)).map_err(|e| e.to_string())?;
    let before = engine.store().counts().map_err(|e| e.to_string())?;
    if before.cases == 0 || no_serve {
        // Yesterday, so that the live service continues where the history ends.
        let today =
            cityos_core::time::local_date(cityos_server::Clock::now(&cityos_server::SystemClock));
        let mut day = cityos_core::time::Date::from_days(today.days() - 1);
        if before.cases > 0 {
            // Another simulated day for a data directory that has one already.
            let last = engine
                .store()
                .load_all_cases()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|c| c.created_at)
                .max()
                .unwrap_or(0);
            day = cityos_core::time::local_date(last).succ();
        }
        println!("simulating {day} (seed {seed}) into {} …", db.display());
        let s = cityos_sim::simulate::run(
            &mut engine,
            &cityos_sim::simulate::Options {
                seed,
                day,
                tail_days: 0,
                progress: true,
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
        println!("{s}");
    } else {
        println!(
            "continuing with the {} cases already in {}",
            before.cases,
            db.display()
        );
    }
    Ok(())
}
