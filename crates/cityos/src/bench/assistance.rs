//! `cityos bench assistance`: the synthetic Xuhui district (about 1.1 million residents in
//! 450,000 households, about 16 million source rows) generated in memory (not timed), then
//! timed: the whole district recomputed — every source CSV parsed, every id hashed with the
//! key, fused and every household evaluated against the rulebook — and an incremental
//! import of changed rows (10,000 by default: medical spending, incomes, utility bills)
//! re-evaluating only the households they touch.

use crate::assistance::{communities, key, Common};
use cityos_core::assistance::generate;
use cityos_core::assistance::{evaluate, evaluate_some};
use serde_json::json;
use std::time::Instant;

pub fn assistance(common: &Common, changes: usize, json: bool) -> Result<(), String> {
    let (decl, book) = common.load()?;
    let spec = common.spec()?;
    let t = Instant::now();
    let d = generate::generate(&communities(), &spec);
    let generate_s = t.elapsed().as_secs_f64();
    let rows = d.rows();
    println!(
        "generated {} households, {} residents, {} source rows in {generate_s:.1} s (not timed)",
        d.households, d.residents, rows
    );
    let t = Instant::now();
    let (mut pool, reports) = generate::fuse(&decl, key(None)?, &d)?;
    let fuse_s = t.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let mut ev = evaluate(&decl, &pool, &book, d.as_of);
    let evaluate_s = t2.elapsed().as_secs_f64();
    let full_s = t.elapsed().as_secs_f64();
    let refused: usize = reports.iter().map(|r| r.problem_count).sum();
    println!(
        "full: {rows} rows parsed, hashed and fused in {fuse_s:.2} s, {} households evaluated in {evaluate_s:.2} s — {full_s:.2} s ({refused} refused)",
        pool.households()
    );
    let batch = generate::changes(&d, changes, spec.seed);
    let changed: usize = batch
        .iter()
        .map(|(_, t)| t.lines().count().saturating_sub(1))
        .sum();
    let t = Instant::now();
    let mut touched = Vec::new();
    for (s, text) in &batch {
        let src = decl
            .source(s)
            .ok_or_else(|| format!("no source {s:?} in the declarations"))?;
        let r = pool.import_csv(&decl, src, &format!("{s} change"), d.as_of, text, true)?;
        touched.extend(r.touched);
    }
    touched.sort_unstable();
    touched.dedup();
    evaluate_some(&decl, &pool, &book, &mut ev, &touched);
    let incremental_s = t.elapsed().as_secs_f64();
    println!(
        "incremental: {changed} changed rows, {} households re-evaluated in {incremental_s:.3} s",
        touched.len()
    );
    if json {
        println!(
            "{}",
            json!({
                "bench": "assistance",
                "rows": rows,
                "full_s": full_s,
                "incremental_s": incremental_s,
                "households": pool.households(),
                "residents": pool.persons(),
                "fuse_s": fuse_s,
                "evaluate_s": evaluate_s,
                "changed_rows": changed,
                "touched": touched.len(),
                "generate_s": generate_s,
            })
        );
    }
    Ok(())
}
