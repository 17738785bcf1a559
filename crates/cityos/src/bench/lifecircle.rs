//! `cityos bench lifecircle`: the 15-minute life circle on the Xuhui demo data.
//!
//! * `coverage_s` — straight-line walking: the model built from the embedded files (3,000
//!   grid demand points, the OSM facilities, every point × type time) and then every type ×
//!   the three rings' coverage and every community's card (target ≤ 1 s);
//! * `network_s` — the same over a synthetic walking network of ≥ 50,000 edges (a street
//!   lattice over the district's box, written as GeoJSON lines and parsed): parse, build,
//!   coverage of every type × ring (target ≤ 10 s);
//! * `whatif_ms` — one what-if with a candidate of each of three types, straight-line, the
//!   mean of several (target ≤ 200 ms). The greedy suggestion's time is printed too.

use cityos_core::lifecircle::coverage::Model;
use cityos_core::lifecircle::{Network, Walker, RINGS};
use cityos_engine::config::Config;
use std::time::Instant;

fn everything(m: &Model) -> usize {
    let mut n = 0;
    for t in 0..m.table.len() {
        for r in RINGS {
            n += m.coverage(t, r).reached.len();
        }
    }
    for c in 0..m.communities.len() {
        n += m.card(c).lines.len();
    }
    n
}

/// A street lattice over the box with at least `edges` edges, as GeoJSON lines.
fn lattice(bbox: [f64; 4], edges: usize) -> (String, usize) {
    // (nx − 1)·ny + nx·(ny − 1) ≈ 2·n² edges for an n × n lattice.
    let n = ((edges as f64 / 2.0).sqrt().ceil() as usize + 1).max(2);
    let (nx, ny) = (n, n);
    let x = |i: usize| bbox[0] + (bbox[2] - bbox[0]) * i as f64 / (nx - 1) as f64;
    let y = |j: usize| bbox[1] + (bbox[3] - bbox[1]) * j as f64 / (ny - 1) as f64;
    let mut f = Vec::new();
    for j in 0..ny {
        let pts: Vec<String> = (0..nx)
            .map(|i| format!("[{:.6},{:.6}]", x(i), y(j)))
            .collect();
        f.push(format!(r#"{{"type":"Feature","properties":{{}},"geometry":{{"type":"LineString","coordinates":[{}]}}}}"#, pts.join(",")));
    }
    for i in 0..nx {
        let pts: Vec<String> = (0..ny)
            .map(|j| format!("[{:.6},{:.6}]", x(i), y(j)))
            .collect();
        f.push(format!(r#"{{"type":"Feature","properties":{{}},"geometry":{{"type":"LineString","coordinates":[{}]}}}}"#, pts.join(",")));
    }
    (
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            f.join(",")
        ),
        (nx - 1) * ny + nx * (ny - 1),
    )
}

pub fn lifecircle(edges: usize, json: bool) -> Result<(), String> {
    let cfg = Config::xuhui();
    let t = &cfg.territory;

    let start = Instant::now();
    let loaded = cityos_server::lifecircle::build(t, &[])?;
    let built = start.elapsed().as_secs_f64();
    let n = everything(&loaded.model);
    let coverage_s = start.elapsed().as_secs_f64();
    let m = &loaded.model;
    println!(
        "straight line: {} demand points × {} types, {} facilities: built in {built:.3} s, + every type × ring and {} cards ({n} rows) = {coverage_s:.3} s",
        m.demand.len(),
        m.table.len(),
        m.facilities.len(),
        m.communities.len()
    );

    let shares: Vec<String> = m
        .table
        .types
        .iter()
        .enumerate()
        .map(|(i, ty)| {
            format!(
                "{} {:.1}% ≤{}′",
                ty.code,
                100.0 * m.share_in(i, ty.target, None),
                ty.target
            )
        })
        .collect();
    println!(
        "district shares at each type's target: {}",
        shares.join(", ")
    );
    let root = t.region(t.root());
    let (text, want) = lattice(root.bbox, edges);
    let start = Instant::now();
    let net = Network::parse(&text, m.plane).map_err(|e| e.join("; "))?;
    let parsed = start.elapsed().as_secs_f64();
    let (nodes, nedges) = (net.nodes(), net.edges());
    let facilities = m.facilities.clone();
    let rebuilt = Model::new(
        m.table.clone(),
        Walker::over(net),
        m.plane,
        m.demand.clone(),
        m.communities.clone(),
        m.subdistricts.clone(),
        facilities,
    );
    let n2 = everything(&rebuilt);
    let network_s = start.elapsed().as_secs_f64();
    println!(
        "network: {nodes} nodes, {nedges} edges (asked {edges}, lattice {want}): parsed in {parsed:.3} s, built and every type × ring and card ({n2} rows) in {network_s:.3} s"
    );

    let types: Vec<usize> = ["pharmacy", "elder_care", "food_market"]
        .iter()
        .filter_map(|c| m.table.index(c))
        .collect();
    let centre = [
        (root.bbox[0] + root.bbox[2]) / 2.0,
        (root.bbox[1] + root.bbox[3]) / 2.0,
    ];
    let rounds = 20;
    let start = Instant::now();
    let mut k = 0;
    for r in 0..rounds {
        let cands: Vec<(usize, f64, f64)> = types
            .iter()
            .enumerate()
            .map(|(i, &ty)| (ty, centre[0] + 0.002 * (i + r) as f64, centre[1]))
            .collect();
        k += m.what_if(&cands).len();
    }
    let whatif_ms = start.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
    let start = Instant::now();
    let sites = m.greedy(types[0], 10, 5, |_| true);
    let greedy_ms = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        "what-if: 3 candidates, {k} ring answers over {rounds} rounds, {whatif_ms:.1} ms each; greedy 5 sites among {} grid centres: {greedy_ms:.0} ms ({} sites)",
        m.demand.len(),
        sites.len()
    );
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "lifecircle", "coverage_s": (coverage_s * 1000.0).round() / 1000.0,
                "network_s": (network_s * 1000.0).round() / 1000.0, "whatif_ms": (whatif_ms * 10.0).round() / 10.0})
        );
    }
    Ok(())
}
