//! Demand points, walking times per point and service type, coverage per type and ring,
//! community cards, what-if and greedy siting.
//!
//! The demand points are the grids (网格), each weighted by its share (by area) of its
//! community's population; a community without grids is its own point. Times are kept
//! per point × type: the minutes to the nearest facility of the type when it is within
//! 15 minutes, else none. A point is covered for a ring when its time is within the ring;
//! a community reaches a type within a ring when at least half its people do.

use super::facility::Facility;
use super::network::Scratch;
use super::types::TypeTable;
use super::walk::Walker;
use super::{dist, Plane, RINGS};
use crate::territory::{Level, Territory};
use std::collections::HashMap;

/// Minutes beyond the life circle: no facility within 15 minutes.
pub const FAR: f32 = f32::INFINITY;
/// The largest ring, minutes.
pub const MAX_RING: f64 = 15.0;
/// The share of a community's people that must reach a type for the community to count.
pub const COMMUNITY_SHARE: f64 = 0.5;

/// A demand point.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The grid's (or community's) code.
    pub code: String,
    pub community: u32,
    pub lonlat: [f64; 2],
    pub xy: [f64; 2],
    pub population: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Community {
    pub code: String,
    pub name: String,
    pub subdistrict: u32,
    pub points: Vec<u32>,
    pub population: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subdistrict {
    pub code: String,
    pub name: String,
}

/// Parses `community,…,population` (comment lines `#` allowed) against the territory:
/// unknown communities, repeated rows and populations that are not non-negative numbers
/// are named by line.
pub fn parse_population(
    text: &str,
    territory: &Territory,
) -> Result<HashMap<String, f64>, Vec<String>> {
    let t = crate::classify::csv::parse(&super::strip_comments(text))
        .map_err(|e| vec![e.to_string()])?;
    let col = |n: &str| t.header.iter().position(|h| h == n);
    let (Some(c), Some(p)) = (col("community"), col("population")) else {
        return Err(vec![format!(
            "the header needs columns community and population (it has {})",
            t.header.join(",")
        )]);
    };
    let mut out = HashMap::new();
    let mut problems = Vec::new();
    for (line, row) in &t.rows {
        let (Some(code), Some(pop)) = (row.get(c), row.get(p)) else {
            problems.push(format!("line {line}: too few fields"));
            continue;
        };
        let code = code.trim();
        match territory.by_code(code) {
            Some(id) if territory.region(id).level == Level::Community => {}
            _ => {
                problems.push(format!(
                    "line {line}: {code:?} is not a community of the territory"
                ));
                continue;
            }
        }
        match pop.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => {
                if out.insert(code.to_string(), v).is_some() {
                    problems.push(format!("line {line}: community {code} repeats"));
                }
            }
            _ => problems.push(format!(
                "line {line}: population {pop:?} is not a number ≥ 0"
            )),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The planar area (m²) of a region's polygons.
fn area(territory: &Territory, id: crate::RegionId, plane: &Plane) -> f64 {
    let mut a = 0.0;
    for poly in &territory.region(id).polygons {
        for (k, ring) in poly.rings.iter().enumerate() {
            let mut s = 0.0;
            for w in ring.windows(2) {
                let p = plane.xy(w[0][0], w[0][1]);
                let q = plane.xy(w[1][0], w[1][1]);
                s += p[0] * q[1] - q[0] * p[1];
            }
            let s = s.abs() / 2.0;
            a += if k == 0 { s } else { -s };
        }
    }
    a.max(0.0)
}

/// Demand points from the territory's grids and a population per community.
pub fn demand_from(
    territory: &Territory,
    population: &HashMap<String, f64>,
    plane: &Plane,
) -> (Vec<Demand>, Vec<Community>, Vec<Subdistrict>) {
    let mut demand = Vec::new();
    let mut communities = Vec::new();
    let mut subs: Vec<Subdistrict> = Vec::new();
    let mut sub_index: HashMap<crate::RegionId, u32> = HashMap::new();
    let mut ids: Vec<(crate::RegionId, &crate::territory::Region)> = territory
        .regions()
        .filter(|(_, r)| r.level == Level::Community)
        .collect();
    ids.sort_by(|a, b| a.1.code.cmp(&b.1.code));
    for (cid, r) in ids {
        let sid = r.parent.unwrap_or(cid);
        let s = *sub_index.entry(sid).or_insert_with(|| {
            let sr = territory.region(sid);
            subs.push(Subdistrict {
                code: sr.code.clone(),
                name: sr.name_zh.clone(),
            });
            (subs.len() - 1) as u32
        });
        let pop = population.get(&r.code).copied().unwrap_or(0.0);
        let ci = communities.len() as u32;
        let grids: Vec<crate::RegionId> = territory
            .children(cid)
            .iter()
            .copied()
            .filter(|&g| territory.region(g).level == Level::Grid)
            .collect();
        let mut points = Vec::new();
        let areas: Vec<f64> = grids.iter().map(|&g| area(territory, g, plane)).collect();
        let total: f64 = areas.iter().sum();
        let places: Vec<(String, crate::RegionId, f64)> = if grids.is_empty() || total <= 0.0 {
            vec![(r.code.clone(), cid, pop)]
        } else {
            grids
                .iter()
                .zip(&areas)
                .map(|(&g, a)| (territory.region(g).code.clone(), g, pop * a / total))
                .collect()
        };
        for (code, id, p) in places {
            let ll = territory.interior_point(id);
            points.push(demand.len() as u32);
            demand.push(Demand {
                code,
                community: ci,
                lonlat: ll,
                xy: plane.xy(ll[0], ll[1]),
                population: p,
            });
        }
        communities.push(Community {
            code: r.code.clone(),
            name: r.name_zh.clone(),
            subdistrict: s,
            points,
            population: pop,
        });
    }
    (demand, communities, subs)
}

/// Everything the life circle answers from: types, facilities, demand and the times.
pub struct Model {
    pub table: TypeTable,
    pub walker: Walker,
    pub plane: Plane,
    pub demand: Vec<Demand>,
    pub communities: Vec<Community>,
    pub subdistricts: Vec<Subdistrict>,
    pub facilities: Vec<Facility>,
    fac_xy: Vec<[f64; 2]>,
    /// Straight lines: demand points bucketed by cell.
    cell: f64,
    buckets: HashMap<(i32, i32), Vec<u32>>,
    /// Network: each node's demand points with their access metres; points that found no node.
    at_node: HashMap<u32, Vec<(u32, f64)>>,
    pub off_network: Vec<u32>,
    /// Minutes per demand point × type (`FAR` beyond 15 minutes).
    pub times: Vec<f32>,
    /// The nearest facility per demand point × type (`u32::MAX`: none within 15 minutes).
    pub nearest: Vec<u32>,
}

/// A reached demand point: (index, metres walked).
type Reach = Vec<(u32, f64)>;

impl Model {
    pub fn new(
        table: TypeTable,
        walker: Walker,
        plane: Plane,
        demand: Vec<Demand>,
        communities: Vec<Community>,
        subdistricts: Vec<Subdistrict>,
        facilities: Vec<Facility>,
    ) -> Model {
        let cell = 500.0;
        let mut buckets: HashMap<(i32, i32), Vec<u32>> = HashMap::new();
        let mut at_node: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
        let mut off_network = Vec::new();
        for (i, d) in demand.iter().enumerate() {
            buckets.entry(key(d.xy, cell)).or_default().push(i as u32);
            if let Some(n) = &walker.network {
                match n.snap(d.xy) {
                    Some((node, m)) if m <= 500.0 => {
                        at_node.entry(node).or_default().push((i as u32, m))
                    }
                    _ => off_network.push(i as u32),
                }
            }
        }
        let fac_xy = facilities.iter().map(|f| plane.xy(f.lon, f.lat)).collect();
        let n = demand.len() * table.len();
        let mut m = Model {
            table,
            walker,
            plane,
            demand,
            communities,
            subdistricts,
            facilities,
            fac_xy,
            cell,
            buckets,
            at_node,
            off_network,
            times: vec![FAR; n],
            nearest: vec![u32::MAX; n],
        };
        m.compute();
        m
    }

    /// (Re)computes every time from the facilities.
    pub fn compute(&mut self) {
        let nt = self.table.len();
        self.times = vec![FAR; self.demand.len() * nt];
        self.nearest = vec![u32::MAX; self.demand.len() * nt];
        let mut s = Scratch::default();
        for f in 0..self.facilities.len() {
            let t = self.facilities[f].kind;
            let mpm = self.walker.m_per_min(self.table.get(t).elders);
            for (d, m) in self.reach(self.fac_xy[f], MAX_RING * mpm, &mut s) {
                let min = (m / mpm) as f32;
                let k = d as usize * nt + t;
                if min < self.times[k] {
                    self.times[k] = min;
                    self.nearest[k] = f as u32;
                }
            }
        }
    }

    /// The demand points within `max_m` metres of walking from a point (plane metres).
    pub fn reach(&self, from: [f64; 2], max_m: f64, s: &mut Scratch) -> Reach {
        let mut out = Vec::new();
        match &self.walker.network {
            None => {
                let r = max_m / self.walker.detour;
                let (x0, y0) = key([from[0] - r, from[1] - r], self.cell);
                let (x1, y1) = key([from[0] + r, from[1] + r], self.cell);
                for x in x0..=x1 {
                    for y in y0..=y1 {
                        if let Some(b) = self.buckets.get(&(x, y)) {
                            for &d in b {
                                let m = dist(from, self.demand[d as usize].xy) * self.walker.detour;
                                if m <= max_m {
                                    out.push((d, m));
                                }
                            }
                        }
                    }
                }
            }
            Some(n) => {
                let Some((node, access)) = n.snap(from) else {
                    return out;
                };
                for (u, m) in n.within(&[(node, access)], max_m, s) {
                    if let Some(ds) = self.at_node.get(&u) {
                        for &(d, a) in ds {
                            if m + a <= max_m {
                                out.push((d, m + a));
                            }
                        }
                    }
                }
            }
        }
        out
    }

    pub fn time(&self, d: usize, t: usize) -> f32 {
        self.times[d * self.table.len() + t]
    }

    /// Population covered by type `t` within `ring` minutes, among the points `keep` keeps:
    /// (covered, total).
    pub fn covered(&self, t: usize, ring: u32, keep: impl Fn(&Demand) -> bool) -> (f64, f64) {
        let mut c = 0.0;
        let mut all = 0.0;
        for (i, d) in self.demand.iter().enumerate() {
            if keep(d) {
                all += d.population;
                if self.time(i, t) <= ring as f32 {
                    c += d.population;
                }
            }
        }
        (c, all)
    }

    /// Share (0–1) of a community's people reaching type `t` within `ring`, by the given times.
    fn community_share(&self, times: &[f32], c: &Community, t: usize, ring: u32) -> f64 {
        let nt = self.table.len();
        let mut cov = 0.0;
        let mut all = 0.0;
        for &d in &c.points {
            let p = self.demand[d as usize].population;
            all += p;
            if times[d as usize * nt + t] <= ring as f32 {
                cov += p;
            }
        }
        if all > 0.0 {
            // Rounded so that shares split by area add up to whole halves.
            (cov / all * 1e9).round() / 1e9
        } else if c
            .points
            .iter()
            .any(|&d| times[d as usize * nt + t] <= ring as f32)
        {
            1.0
        } else {
            0.0
        }
    }

    /// Coverage of a type within a ring: population covered, share, communities reaching it
    /// and those not (their share of people reaching it).
    pub fn coverage(&self, t: usize, ring: u32) -> Coverage {
        let (covered, total) = self.covered(t, ring, |_| true);
        let mut reached = Vec::new();
        let mut gaps = Vec::new();
        for (i, c) in self.communities.iter().enumerate() {
            let s = self.community_share(&self.times, c, t, ring);
            if s >= COMMUNITY_SHARE {
                reached.push((i as u32, s));
            } else {
                gaps.push((i as u32, s));
            }
        }
        gaps.sort_by(|a, b| {
            let pa = self.communities[a.0 as usize].population * (1.0 - a.1);
            let pb = self.communities[b.0 as usize].population * (1.0 - b.1);
            pb.partial_cmp(&pa)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.0.cmp(&b.0))
        });
        Coverage {
            t,
            ring,
            covered,
            total,
            share: share(covered, total),
            reached,
            gaps,
        }
    }

    /// The share (0–1) of a sub-district's (or, with `None`, the district's) people reaching
    /// type `t` within `ring`.
    pub fn share_in(&self, t: usize, ring: u32, subdistrict: Option<u32>) -> f64 {
        let (c, a) = self.covered(t, ring, |d| {
            subdistrict.is_none_or(|s| self.communities[d.community as usize].subdistrict == s)
        });
        share(c, a)
    }

    /// A community's life-circle card.
    pub fn card(&self, c: usize) -> Card {
        let com = &self.communities[c];
        let nt = self.table.len();
        let mut lines = Vec::new();
        for t in 0..nt {
            let shares = RINGS.map(|r| self.community_share(&self.times, com, t, r));
            let mut best: Option<(f32, u32)> = None;
            for &d in &com.points {
                let k = d as usize * nt + t;
                if self.nearest[k] != u32::MAX && best.is_none_or(|(m, _)| self.times[k] < m) {
                    best = Some((self.times[k], self.nearest[k]));
                }
            }
            let target = self.table.get(t).target;
            let idx = RINGS.iter().position(|&r| r == target).unwrap_or(2);
            lines.push(CardLine {
                t,
                shares,
                met: shares[idx] >= COMMUNITY_SHARE,
                nearest: best,
            });
        }
        Card {
            community: c,
            lines,
        }
    }

    /// How coverage would change with candidate facilities (type index, lon, lat): per type
    /// of a candidate and ring, the population covered before and after and the communities
    /// that would newly reach it. Nothing in the model changes.
    pub fn what_if(&self, candidates: &[(usize, f64, f64)]) -> Vec<WhatIf> {
        let nt = self.table.len();
        let mut times = self.times.clone();
        let mut s = Scratch::default();
        let mut kinds: Vec<usize> = Vec::new();
        for &(t, lon, lat) in candidates {
            if !kinds.contains(&t) {
                kinds.push(t);
            }
            let mpm = self.walker.m_per_min(self.table.get(t).elders);
            for (d, m) in self.reach(self.plane.xy(lon, lat), MAX_RING * mpm, &mut s) {
                let k = d as usize * nt + t;
                times[k] = times[k].min((m / mpm) as f32);
            }
        }
        let mut out = Vec::new();
        for t in kinds {
            for ring in RINGS {
                let (mut before, mut after, mut total) = (0.0, 0.0, 0.0);
                for (i, d) in self.demand.iter().enumerate() {
                    total += d.population;
                    if self.times[i * nt + t] <= ring as f32 {
                        before += d.population;
                    }
                    if times[i * nt + t] <= ring as f32 {
                        after += d.population;
                    }
                }
                let mut newly = Vec::new();
                for (ci, c) in self.communities.iter().enumerate() {
                    let b = self.community_share(&self.times, c, t, ring);
                    let a = self.community_share(&times, c, t, ring);
                    if a > b + 1e-9 {
                        newly.push(Gain {
                            community: ci as u32,
                            before: b,
                            after: a,
                            people: (a - b) * c.population,
                        });
                    }
                }
                newly.sort_by(|a, b| {
                    b.people
                        .partial_cmp(&a.people)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                out.push(WhatIf {
                    t,
                    ring,
                    before,
                    after,
                    total,
                    communities: newly,
                });
            }
        }
        out
    }

    /// Greedy siting: up to `k` grid centres (demand points that `allow` allows) for a new
    /// facility of type `t`, each in turn the one adding the most people reaching the type
    /// within `ring` beyond the existing facilities and the sites already picked.
    pub fn greedy(
        &self,
        t: usize,
        ring: u32,
        k: usize,
        allow: impl Fn(&Demand) -> bool,
    ) -> Vec<Site> {
        let mpm = self.walker.m_per_min(self.table.get(t).elders);
        let limit = ring as f64 * mpm;
        let mut uncovered: Vec<bool> = (0..self.demand.len())
            .map(|d| self.time(d, t) > ring as f32)
            .collect();
        let mut s = Scratch::default();
        let cands: Vec<(u32, Vec<u32>)> = self
            .demand
            .iter()
            .enumerate()
            .filter(|(_, d)| allow(d))
            .map(|(i, d)| {
                let r: Vec<u32> = self
                    .reach(d.xy, limit, &mut s)
                    .into_iter()
                    .filter(|&(x, _)| uncovered[x as usize])
                    .map(|(x, _)| x)
                    .collect();
                (i as u32, r)
            })
            .filter(|(_, r)| !r.is_empty())
            .collect();
        let mut picked = Vec::new();
        for _ in 0..k {
            let mut best: Option<(f64, usize)> = None;
            for (j, (_, r)) in cands.iter().enumerate() {
                let g: f64 = r
                    .iter()
                    .filter(|&&x| uncovered[x as usize])
                    .map(|&x| self.demand[x as usize].population)
                    .sum();
                if g > 0.0 && best.is_none_or(|(bg, _)| g > bg + 1e-9) {
                    best = Some((g, j));
                }
            }
            let Some((gain, j)) = best else { break };
            let (site, r) = &cands[j];
            let mut comms: Vec<u32> = Vec::new();
            for &x in r {
                if uncovered[x as usize] {
                    uncovered[x as usize] = false;
                    let c = self.demand[x as usize].community;
                    if !comms.contains(&c) {
                        comms.push(c);
                    }
                }
            }
            picked.push(Site {
                point: *site,
                people: gain,
                communities: comms,
            });
        }
        picked
    }
}

fn key(p: [f64; 2], cell: f64) -> (i32, i32) {
    ((p[0] / cell).floor() as i32, (p[1] / cell).floor() as i32)
}

fn share(c: f64, a: f64) -> f64 {
    if a > 0.0 {
        c / a
    } else {
        0.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub t: usize,
    pub ring: u32,
    pub covered: f64,
    pub total: f64,
    pub share: f64,
    /// Communities reaching it (index, share of their people).
    pub reached: Vec<(u32, f64)>,
    /// Communities not reaching it, most people without it first.
    pub gaps: Vec<(u32, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CardLine {
    pub t: usize,
    /// Shares of the community's people within 5, 10 and 15 minutes.
    pub shares: [f64; 3],
    /// Reached within the type's target ring by at least half its people.
    pub met: bool,
    /// The nearest facility from any of its points: (minutes, facility index).
    pub nearest: Option<(f32, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub community: usize,
    pub lines: Vec<CardLine>,
}

impl Card {
    /// The types missing from the community's life circle.
    pub fn missing(&self) -> impl Iterator<Item = usize> + '_ {
        self.lines.iter().filter(|l| !l.met).map(|l| l.t)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gain {
    pub community: u32,
    pub before: f64,
    pub after: f64,
    /// People newly reaching it.
    pub people: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WhatIf {
    pub t: usize,
    pub ring: u32,
    pub before: f64,
    pub after: f64,
    pub total: f64,
    pub communities: Vec<Gain>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The demand point (grid centre) picked.
    pub point: u32,
    /// People it adds.
    pub people: f64,
    /// Communities of those people.
    pub communities: Vec<u32>,
}
