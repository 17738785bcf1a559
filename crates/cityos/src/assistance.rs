//! `cityos assistance …` (精准救助, issue 15): `generate` writes a synthetic district's
//! source CSVs and its planted truth; `eval` generates (or reads such a folder), fuses,
//! evaluates the rulebook and reports precision and recall per policy against the truth.
//! The last line of `eval --json` is one JSON object.

use cityos_core::assistance::generate::{self, Community, Decoy, District, Spec, TruthRow};
use cityos_core::assistance::measure::measure;
use cityos_core::assistance::{
    evaluate, explain, parse_declarations, parse_rulebook, problems_text, Declarations, IdKey,
    Rulebook,
};
use cityos_core::time::Date;
use cityos_core::Level;
use cityos_engine::config::Config;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const SOURCES_TOML: &str = include_str!("../../../data/xuhui/assistance/sources.toml");
pub const POLICIES_TOML: &str = include_str!("../../../data/xuhui/assistance/policies.toml");

/// The key of the synthetic demo pool. A deployment passes its own secret (`--key-file`):
/// with a known key, anyone could hash guessed ID numbers and find them in the pool.
const DEMO_KEY: &[u8] = b"cityos synthetic assistance demo key - not for real data";

/// Options shared by the commands.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Source declarations (default: the embedded data/xuhui/assistance/sources.toml).
    #[arg(long)]
    pub sources: Option<PathBuf>,
    /// Policy rulebook (default: the embedded data/xuhui/assistance/policies.toml).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Households of the synthetic district.
    #[arg(long, default_value_t = 450_000)]
    pub households: usize,
    #[arg(long, default_value_t = 15)]
    pub seed: u64,
    /// The date the sources are as of and the policies are judged at (YYYY-MM-DD).
    #[arg(long, default_value = "2026-11-30")]
    pub as_of: String,
}

impl Common {
    pub fn spec(&self) -> Result<Spec, String> {
        let as_of = Date::parse(&self.as_of)
            .ok_or_else(|| format!("--as-of {:?} is not a date (YYYY-MM-DD)", self.as_of))?;
        if self.households == 0 {
            return Err("--households must be at least 1".into());
        }
        Ok(Spec {
            households: self.households,
            seed: self.seed,
            as_of,
        })
    }

    pub fn load(&self) -> Result<(Declarations, Rulebook), String> {
        let read = |p: &Option<PathBuf>, default: &str| -> Result<String, String> {
            match p {
                None => Ok(default.to_string()),
                Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())),
            }
        };
        let name = |p: &Option<PathBuf>, d: &str| {
            p.as_ref()
                .map_or(d.to_string(), |p| p.display().to_string())
        };
        let decl = parse_declarations(&read(&self.sources, SOURCES_TOML)?).map_err(|e| {
            format!(
                "{}:\n{}",
                name(&self.sources, "sources.toml"),
                problems_text(&e)
            )
        })?;
        let book = parse_rulebook(&read(&self.policies, POLICIES_TOML)?, &decl).map_err(|e| {
            format!(
                "{}:\n{}",
                name(&self.policies, "policies.toml"),
                problems_text(&e)
            )
        })?;
        Ok((decl, book))
    }
}

/// The communities of the Xuhui territory (306), with their sub-districts.
pub fn communities() -> Vec<Community> {
    let cfg = Config::xuhui();
    let t = &cfg.territory;
    t.regions()
        .filter(|(_, r)| r.level == Level::Community)
        .map(|(_, r)| Community {
            code: r.code.clone(),
            subdistrict: r
                .parent
                .map(|p| t.region(p).code.clone())
                .unwrap_or_default(),
        })
        .collect()
}

pub fn key(file: Option<&Path>) -> Result<IdKey, String> {
    match file {
        None => IdKey::new(DEMO_KEY),
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            IdKey::new(&bytes).map_err(|e| format!("{}: {e}", p.display()))
        }
    }
}

/// `cityos assistance generate --out DIR`.
pub fn generate_cmd(common: &Common, out: &Path) -> Result<(), String> {
    let spec = common.spec()?;
    let started = Instant::now();
    let d = generate::generate(&communities(), &spec);
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: &str, text: &str| {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    for (s, text) in &d.files {
        write(&format!("{s}.csv"), text)?;
    }
    let mut truth = String::from("household_id,policy,planted\n");
    for t in &d.truth {
        truth.push_str(&format!("{},{},{}\n", t.household, t.policy, t.planted));
    }
    write("truth.csv", &truth)?;
    let mut decoys = String::from("household_id,policy,why\n");
    for x in &d.decoys {
        decoys.push_str(&format!("{},{},{}\n", x.household, x.policy, x.why));
    }
    write("decoys.csv", &decoys)?;
    write("as_of.txt", &format!("{}\n", d.as_of))?;
    println!(
        "{} households, {} residents ({} 低保), {} source rows in {} files, {} truths, {} decoys → {} ({:.1} s)",
        d.households,
        d.residents,
        d.dibao_persons,
        d.rows(),
        d.files.len(),
        d.truth.len(),
        d.decoys.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    println!("synthetic data: no real persons (ID numbers of province 99, names 「某」, 模拟路)");
    Ok(())
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Reads a folder written by `generate` back into a district.
fn read_district(dir: &Path, decl: &Declarations) -> Result<District, String> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    let as_of = read("as_of.txt")?;
    let as_of = Date::parse(as_of.trim())
        .ok_or_else(|| format!("{}: not a date", dir.join("as_of.txt").display()))?;
    let mut files = Vec::new();
    for s in &decl.sources {
        files.push((leak(&s.name), read(&format!("{}.csv", s.name))?));
    }
    let mut truth = Vec::new();
    for (i, line) in read("truth.csv")?.lines().enumerate().skip(1) {
        let mut it = line.splitn(3, ',');
        match (it.next(), it.next()) {
            (Some(h), Some(p)) => truth.push(TruthRow {
                household: h.to_string(),
                policy: leak(p),
                planted: leak(it.next().unwrap_or("")),
            }),
            _ => {
                return Err(format!(
                    "truth.csv line {}: household_id,policy,planted",
                    i + 1
                ))
            }
        }
    }
    let mut decoys = Vec::new();
    if let Ok(text) = read("decoys.csv") {
        for line in text.lines().skip(1) {
            let mut it = line.splitn(3, ',');
            if let (Some(h), Some(p)) = (it.next(), it.next()) {
                decoys.push(Decoy {
                    household: h.to_string(),
                    policy: leak(p),
                    why: leak(it.next().unwrap_or("")),
                });
            }
        }
    }
    Ok(District {
        as_of,
        files,
        truth,
        decoys,
        residents: 0,
        households: 0,
        dibao_persons: 0,
        persons: Vec::new(),
        household_ids: Vec::new(),
    })
}

/// Is this the synthetic district: does every person id of the membership file begin
/// with 99 (no real province)?
fn synthetic(d: &District) -> bool {
    d.file("population").is_some_and(|t| {
        t.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.trim_start_matches('"').starts_with("99"))
    })
}

/// `cityos assistance eval`.
pub fn eval_cmd(
    common: &Common,
    data: Option<&Path>,
    key_file: Option<&Path>,
    explain_one: bool,
    json: bool,
) -> Result<(), String> {
    let (decl, book) = common.load()?;
    let started = Instant::now();
    let d = match data {
        Some(dir) => read_district(dir, &decl)?,
        None => generate::generate(&communities(), &common.spec()?),
    };
    let generated_s = started.elapsed().as_secs_f64();
    let t = Instant::now();
    // Real data needs the deployment's key: the built-in key is for the synthetic
    // district only (every ID number of province 99, which does not exist).
    if let Some(dir) = data {
        if key_file.is_none() && !synthetic(&d) {
            return Err(format!(
                "--data {}: no --key-file given, and the folder is not the synthetic district (its population.csv holds ID numbers outside province 99). The built-in key is only for synthetic data: pass the deployment's pool key with --key-file FILE",
                dir.display()
            ));
        }
    }
    let (pool, reports) = generate::fuse(&decl, key(key_file)?, &d)?;
    let fuse_s = t.elapsed().as_secs_f64();
    let problems: usize = reports.iter().map(|r| r.problem_count).sum();
    for r in reports.iter().filter(|r| r.problem_count > 0) {
        eprintln!("{}: {} row(s) refused", r.source, r.problem_count);
        for p in r.problems.iter().take(10) {
            eprintln!("  {p}");
        }
    }
    let t = Instant::now();
    let ev = evaluate(&decl, &pool, &book, d.as_of);
    let evaluate_s = t.elapsed().as_secs_f64();
    let m = measure(&pool, &book, &ev, &d.truth, &d.decoys);
    let rows: usize = reports.iter().map(|r| r.rows).sum();
    let mut hardship = [0usize; 3];
    for r in &ev.results {
        hardship[r.hardship as usize] += 1;
    }
    println!(
        "{} households, {} residents, {} source rows ({} refused); generated {:.1} s, fused {:.1} s, evaluated {:.1} s",
        pool.households(),
        pool.persons(),
        rows,
        problems,
        generated_s,
        fuse_s,
        evaluate_s
    );
    println!(
        "{:<18} {:>6} {:>6} {:>6} {:>9} {:>8} {:>8} {:>7}",
        "policy", "truth", "found", "hits", "precision", "recall", "planted", "decoys"
    );
    for p in &m.policies {
        println!(
            "{:<18} {:>6} {:>6} {:>6} {:>9.3} {:>8.3} {:>4}/{:<3} {:>3}/{:<3} {}",
            p.policy,
            p.truth,
            p.found,
            p.hits,
            p.precision,
            p.recall,
            p.planted_found,
            p.planted,
            p.decoys_found,
            p.decoys,
            p.name
        );
    }
    println!(
        "overall: precision {:.3}, recall {:.3}; hardship high {}, medium {}, low {}",
        m.precision, m.recall, hardship[2], hardship[1], hardship[0]
    );
    if data.is_none() {
        println!(
            "synthetic district: {} 低保 recipients (persons), {} planted truths, {} decoys",
            d.dibao_persons,
            d.truth.iter().filter(|t| !t.planted.is_empty()).count(),
            d.decoys.len()
        );
    }
    if explain_one {
        for (k, p) in book.policies.iter().enumerate() {
            let planted = d
                .truth
                .iter()
                .filter(|t| t.policy == p.code && !t.planted.is_empty())
                .filter_map(|t| pool.household_of(&t.household))
                .find(|h| ev.results[*h as usize].candidates & (1 << k) != 0);
            if let Some(h) = planted {
                let x = explain(&decl, &pool, &book, d.as_of, h, k);
                println!("{}", serde_json::to_string(&x).map_err(|e| e.to_string())?);
            }
        }
    }
    if json {
        let out = json!({
            "precision": m.precision,
            "recall": m.recall,
            "truth": m.truth,
            "found": m.found,
            "hits": m.hits,
            "households": pool.households(),
            "residents": pool.persons(),
            "rows": rows,
            "refused": problems,
            "hardship": {"high": hardship[2], "medium": hardship[1], "low": hardship[0]},
            "policies": m.policies,
        });
        println!("{out}");
    }
    Ok(())
}
