//! The scenarios room (应用场景): the registry of scenario packs the service runs. Every
//! pack is loaded at start — the seven embedded ones (`cityos_engine::demo::SCENARIO_PACKS`),
//! each replaced by a file of the same name from the scenarios directory when one is given
//! ([`sources`]) — parsed and validated against the running configuration (taxonomy,
//! indicators, the catalogue of device kinds and datasets). Each pack has a status
//! (enabled or disabled), its version, owner, names, playbook, when it was loaded and the
//! problems of its last refused reload.
//!
//! Administrators change packs through the API ([`admin`]): enable, disable, reload with
//! a new text. Every change is written to the store before it takes effect in memory — the
//! pack's state in `scenario_packs` and an entry of the audit trail in `scenario_audit`
//! (`ScenarioStore`) — and [`restore`] puts the state back at start, so the enabled flags
//! and the reloaded texts survive a restart.
//!
//! The runtime that evaluates the packs (facts from the bus, hits into cases) reads
//! [`Registry::enabled`].

pub mod admin;
pub mod facts;
pub mod runtime;

use cityos_core::scenario::{parse_pack, validate, Catalogue, District, Pack};
use cityos_core::time::Millis;
use cityos_engine::config::Config;
use cityos_engine::{ScenarioStore, StoreError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Where a pack's running text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary.
    Embedded,
    /// A `*.toml` file of the scenarios directory.
    Directory,
    /// A reload through the API (kept in the store).
    Reload,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Embedded => "embedded",
            Origin::Directory => "directory",
            Origin::Reload => "reload",
        }
    }
}

/// A pack's text as loaded at start, checked.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    pub pack: Pack,
    pub origin: Origin,
}

/// One pack of the registry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The running text.
    pub text: String,
    /// The running pack, parsed and validated.
    pub pack: Arc<Pack>,
    pub origin: Origin,
    pub enabled: bool,
    pub loaded_at: Millis,
    /// The problems of the last reload, when it was refused (`line:column: message`).
    pub problems: Vec<String>,
}

/// The scenario packs the service runs, by name (the pack's `code`).
pub struct Registry {
    catalogue: Catalogue,
    /// The runtime that judges the enabled packs and acts on their hits.
    pub live: runtime::Live,
    packs: Mutex<BTreeMap<String, Entry>>,
    /// Serialises changes (store first, then memory), so two reloads cannot interleave.
    pub(crate) changes: tokio::sync::Mutex<()>,
}

/// The district's catalogue of device kinds and datasets (embedded).
fn catalogue() -> Catalogue {
    Catalogue::from_toml(cityos_engine::demo::CATALOGUE_TOML)
        .expect("the embedded catalogue is valid (tested)")
}

/// Parses a pack's text and validates it against the configuration: the pack, or every
/// problem as `line:column: message`.
pub fn check(cfg: &Config, catalogue: &Catalogue, text: &str) -> Result<Pack, Vec<String>> {
    let show = |ps: Vec<cityos_core::taxonomy::Problem>| {
        ps.iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect::<Vec<_>>()
    };
    let pack = parse_pack(text).map_err(show)?;
    validate(
        &pack,
        &District {
            taxonomy: &cfg.taxonomy,
            indicators: &cfg.indicators,
            catalogue,
        },
    )
    .map_err(show)?;
    Ok(pack)
}

/// The embedded packs, checked (they are valid: a test validates them).
pub fn embedded(cfg: &Config) -> Vec<Source> {
    let cat = catalogue();
    cityos_engine::demo::SCENARIO_PACKS
        .iter()
        .map(|(file, text)| Source {
            pack: check(cfg, &cat, text)
                .unwrap_or_else(|p| panic!("embedded pack {file}: {}", p.join("; "))),
            text: text.to_string(),
            origin: Origin::Embedded,
        })
        .collect()
}

/// The packs to load: the embedded ones, each replaced (or joined) by the `*.toml` files of
/// `dir` with the same name. A file must hold the pack its name says (`flooding.toml` →
/// `code = "flooding"`) and validate; otherwise every problem is answered, by file.
pub fn sources(cfg: &Config, dir: Option<&Path>) -> Result<Vec<Source>, String> {
    let mut out = embedded(cfg);
    let Some(dir) = dir else {
        return Ok(out);
    };
    let cat = catalogue();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("scenarios directory {}: {e}", dir.display()))?;
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut problems = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match check(cfg, &cat, &text) {
            Ok(pack) if pack.code != stem => problems.push(format!(
                "{}: holds pack {:?}, not {stem:?}",
                path.display(),
                pack.code
            )),
            Ok(pack) => {
                out.retain(|s| s.pack.code != pack.code);
                out.push(Source {
                    text,
                    pack,
                    origin: Origin::Directory,
                });
            }
            Err(ps) => problems.push(format!("{}: {}", path.display(), ps.join("; "))),
        }
    }
    if problems.is_empty() {
        out.sort_by(|a, b| a.pack.code.cmp(&b.pack.code));
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

impl Registry {
    /// A registry of `sources`, all enabled, with its runtime over `cfg`'s devices.
    pub fn new(cfg: &Config, sources: Vec<Source>, now: Millis) -> Registry {
        let r = Registry {
            catalogue: catalogue(),
            live: runtime::Live::new(cfg, catalogue()),
            packs: Mutex::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
        };
        r.load(sources, now);
        r
    }

    /// Replaces every pack by `sources`, all enabled (at start, before [`restore`]).
    pub fn load(&self, sources: Vec<Source>, now: Millis) {
        let mut m = self.packs.lock().expect("lock");
        m.clear();
        for s in sources {
            m.insert(
                s.pack.code.clone(),
                Entry {
                    text: s.text,
                    pack: Arc::new(s.pack),
                    origin: s.origin,
                    enabled: true,
                    loaded_at: now,
                    problems: Vec::new(),
                },
            );
        }
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Every pack, by name.
    pub fn all(&self) -> Vec<(String, Entry)> {
        self.packs
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<Entry> {
        self.packs.lock().expect("lock").get(name).cloned()
    }

    /// The parsed packs enabled now, by name: what the runtime evaluates.
    pub fn enabled(&self) -> Vec<Arc<Pack>> {
        self.packs
            .lock()
            .expect("lock")
            .values()
            .filter(|e| e.enabled)
            .map(|e| e.pack.clone())
            .collect()
    }

    /// Applies `f` to a pack, if there is one by that name.
    pub(crate) fn update(&self, name: &str, f: impl FnOnce(&mut Entry)) -> bool {
        match self.packs.lock().expect("lock").get_mut(name) {
            Some(e) => {
                f(e);
                true
            }
            None => false,
        }
    }
}

/// Puts back what administrators changed (before anything is served): each known pack's
/// enabled flag, and the text its last good reload put in force — unless that text no
/// longer validates against this configuration, in which case the loaded pack runs and
/// the problems are shown.
pub fn restore(
    st: &crate::AppState,
    store: &mut (impl ScenarioStore + ?Sized),
) -> Result<(), StoreError> {
    let reg = &st.0.scenarios;
    for row in store.scenario_packs()? {
        let reloaded = row
            .text
            .as_deref()
            .map(|t| (t, check(&st.0.cfg, reg.catalogue(), t)));
        reg.update(&row.name, |e| {
            e.enabled = row.enabled;
            match reloaded {
                Some((text, Ok(pack))) => {
                    e.text = text.to_string();
                    e.pack = Arc::new(pack);
                    e.origin = Origin::Reload;
                    e.loaded_at = row.updated_at;
                }
                Some((_, Err(ps))) => {
                    e.problems = ps
                        .into_iter()
                        .map(|p| format!("the stored reload no longer validates: {p}"))
                        .collect()
                }
                None => {}
            }
        });
    }
    Ok(())
}
