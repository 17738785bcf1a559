//! A walking network from GeoJSON lines: every `LineString` / `MultiLineString` feature's
//! vertices are nodes (vertices within a centimetre are one node, so lines meeting at a
//! shared vertex connect), consecutive vertices are edges of their metric length walked
//! both ways. Bounded multi-source Dijkstra answers the metres walked from a start to every
//! node within a limit; an isochrone is the nodes within a walk. Parts not connected to
//! the largest one are named (their size, a position and the first features in them).

use super::{dist, Plane};
use rstar::primitives::GeomWithData;
use rstar::RTree;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// A part of the network not connected to the largest part.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub nodes: usize,
    /// A position in it (lon, lat).
    pub at: [f64; 2],
    /// Up to five 1-based feature numbers whose lines are in it.
    pub features: Vec<usize>,
}

impl Part {
    pub fn describe(&self) -> String {
        format!(
            "a part of {} node(s) near ({:.6}, {:.6}) — feature(s) {} — cannot be reached from the rest",
            self.nodes,
            self.at[0],
            self.at[1],
            self.features.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", ")
        )
    }
}

pub struct Network {
    pub plane: Plane,
    /// Node positions in the plane (metres).
    pub xy: Vec<[f64; 2]>,
    start: Vec<u32>,
    adj: Vec<(u32, f32)>,
    /// Component of each node; component 0 is the largest.
    comp: Vec<u32>,
    /// The parts other than the largest.
    pub parts: Vec<Part>,
    edges: usize,
    tree: RTree<GeomWithData<[f64; 2], u32>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Network({} nodes, {} edges, {} unreachable parts)",
            self.xy.len(),
            self.edges,
            self.parts.len()
        )
    }
}

#[derive(Copy, Clone, PartialEq)]
struct Item(f64, u32);
impl Eq for Item {}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.partial_cmp(&self.0)
            .unwrap_or(Ordering::Equal)
            .then(o.1.cmp(&self.1))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Reusable memory for the bounded searches (one per thread).
#[derive(Default)]
pub struct Scratch {
    dist: Vec<f64>,
    touched: Vec<u32>,
    heap: BinaryHeap<Item>,
}

impl Network {
    /// Parses a GeoJSON FeatureCollection of lines. Refused, each named by feature: a
    /// geometry that is not a line, a line of fewer than two points, a coordinate that is
    /// not a number; and a file with no line at all.
    pub fn parse(text: &str, plane: Plane) -> Result<Network, Vec<String>> {
        let v: Value = serde_json::from_str(text).map_err(|e| vec![format!("not JSON: {e}")])?;
        let Some(features) = v.get("features").and_then(Value::as_array) else {
            return Err(vec![
                "not a GeoJSON FeatureCollection (no \"features\" array)".into(),
            ]);
        };
        let mut problems = Vec::new();
        let mut lines: Vec<(usize, Vec<[f64; 2]>)> = Vec::new();
        for (i, f) in features.iter().enumerate() {
            let n = i + 1;
            let g = f.get("geometry").unwrap_or(&Value::Null);
            let ty = g.get("type").and_then(Value::as_str).unwrap_or("missing");
            let c = g.get("coordinates");
            let parts: Vec<&Value> = match (ty, c.and_then(Value::as_array)) {
                ("LineString", Some(_)) => vec![c.unwrap()],
                ("MultiLineString", Some(a)) => a.iter().collect(),
                _ => {
                    problems.push(format!(
                        "feature {n}: geometry {ty} is not a LineString or MultiLineString"
                    ));
                    continue;
                }
            };
            for p in parts {
                let pts: Option<Vec<[f64; 2]>> = p.as_array().map(|a| {
                    a.iter()
                        .filter_map(|q| {
                            let q = q.as_array()?;
                            let (x, y) = (q.first()?.as_f64()?, q.get(1)?.as_f64()?);
                            (x.is_finite() && y.is_finite() && x.abs() <= 180.0 && y.abs() <= 90.0)
                                .then_some([x, y])
                        })
                        .collect()
                });
                match pts {
                    Some(pts)
                        if pts.len() == p.as_array().map_or(0, |a| a.len()) && pts.len() >= 2 =>
                    {
                        lines.push((n, pts))
                    }
                    Some(pts) if pts.len() == p.as_array().map_or(0, |a| a.len()) => {
                        problems.push(format!("feature {n}: a line needs at least two points"))
                    }
                    _ => problems.push(format!(
                        "feature {n}: a coordinate is not a longitude, latitude pair"
                    )),
                }
            }
        }
        if lines.is_empty() && problems.is_empty() {
            problems.push("the file has no lines".into());
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Network::build(plane, &lines))
    }

    /// Builds the graph from lines of lon/lat points, each with its feature number.
    pub fn build(plane: Plane, lines: &[(usize, Vec<[f64; 2]>)]) -> Network {
        let mut ids: HashMap<(i64, i64), u32> = HashMap::new();
        let mut xy: Vec<[f64; 2]> = Vec::new();
        let mut feat_of: Vec<usize> = Vec::new();
        let mut pairs: Vec<(u32, u32, f32)> = Vec::new();
        for (n, pts) in lines {
            let mut prev: Option<u32> = None;
            for p in pts {
                let key = ((p[0] * 1e7).round() as i64, (p[1] * 1e7).round() as i64);
                let id = *ids.entry(key).or_insert_with(|| {
                    xy.push(plane.xy(p[0], p[1]));
                    feat_of.push(*n);
                    (xy.len() - 1) as u32
                });
                if let Some(a) = prev {
                    if a != id {
                        pairs.push((a, id, dist(xy[a as usize], xy[id as usize]) as f32));
                    }
                }
                prev = Some(id);
            }
        }
        let nn = xy.len();
        let mut deg = vec![0u32; nn + 1];
        for &(a, b, _) in &pairs {
            deg[a as usize] += 1;
            deg[b as usize] += 1;
        }
        let mut start = vec![0u32; nn + 1];
        for i in 0..nn {
            start[i + 1] = start[i] + deg[i];
        }
        let mut fill = start.clone();
        let mut adj = vec![(0u32, 0f32); pairs.len() * 2];
        for &(a, b, w) in &pairs {
            adj[fill[a as usize] as usize] = (b, w);
            fill[a as usize] += 1;
            adj[fill[b as usize] as usize] = (a, w);
            fill[b as usize] += 1;
        }
        // Components by breadth-first search, then renumbered largest first.
        let mut comp = vec![u32::MAX; nn];
        let mut sizes: Vec<(usize, u32, u32)> = Vec::new(); // (size, raw id, first node)
        let mut queue = Vec::new();
        for s in 0..nn {
            if comp[s] != u32::MAX {
                continue;
            }
            let c = sizes.len() as u32;
            comp[s] = c;
            queue.clear();
            queue.push(s as u32);
            let mut k = 0;
            while k < queue.len() {
                let u = queue[k] as usize;
                k += 1;
                for &(v, _) in &adj[start[u] as usize..start[u + 1] as usize] {
                    if comp[v as usize] == u32::MAX {
                        comp[v as usize] = c;
                        queue.push(v);
                    }
                }
            }
            sizes.push((queue.len(), c, s as u32));
        }
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        order.sort_by(|&a, &b| sizes[b].0.cmp(&sizes[a].0).then(a.cmp(&b)));
        let mut rank = vec![0u32; sizes.len()];
        for (r, &c) in order.iter().enumerate() {
            rank[c] = r as u32;
        }
        for c in comp.iter_mut() {
            *c = rank[*c as usize];
        }
        let mut feats: Vec<Vec<usize>> = vec![Vec::new(); sizes.len()];
        for (i, &c) in comp.iter().enumerate() {
            let f = &mut feats[c as usize];
            if f.len() < 5 && !f.contains(&feat_of[i]) {
                f.push(feat_of[i]);
            }
        }
        let parts = order
            .iter()
            .skip(1)
            .map(|&c| Part {
                nodes: sizes[c].0,
                at: plane.lonlat(xy[sizes[c].2 as usize]),
                features: feats[rank[c] as usize].clone(),
            })
            .collect();
        let tree = RTree::bulk_load(
            xy.iter()
                .enumerate()
                .map(|(i, p)| GeomWithData::new(*p, i as u32))
                .collect(),
        );
        Network {
            plane,
            xy,
            start,
            adj,
            comp,
            parts,
            edges: pairs.len(),
            tree,
        }
    }

    pub fn nodes(&self) -> usize {
        self.xy.len()
    }
    pub fn edges(&self) -> usize {
        self.edges
    }
    /// Is the whole network one connected part?
    pub fn connected(&self) -> bool {
        self.parts.is_empty()
    }
    /// The component of a node (0 = the largest).
    pub fn component(&self, node: u32) -> u32 {
        self.comp[node as usize]
    }

    /// The nearest node of the largest part to a point in the plane, and its distance.
    pub fn snap(&self, p: [f64; 2]) -> Option<(u32, f64)> {
        self.tree
            .nearest_neighbor_iter(&p)
            .find(|n| self.comp[n.data as usize] == 0)
            .map(|n| (n.data, dist(p, *n.geom())))
    }

    /// Bounded multi-source shortest paths: every node reached within `max_m` metres from
    /// the sources (node, metres already walked), with its metres, in order of distance.
    pub fn within(&self, sources: &[(u32, f64)], max_m: f64, s: &mut Scratch) -> Vec<(u32, f64)> {
        if s.dist.len() != self.xy.len() {
            s.dist = vec![f64::INFINITY; self.xy.len()];
            s.touched.clear();
        }
        for &t in &s.touched {
            s.dist[t as usize] = f64::INFINITY;
        }
        s.touched.clear();
        s.heap.clear();
        for &(n, d) in sources {
            if d <= max_m && d < s.dist[n as usize] {
                if s.dist[n as usize].is_infinite() {
                    s.touched.push(n);
                }
                s.dist[n as usize] = d;
                s.heap.push(Item(d, n));
            }
        }
        let mut out = Vec::new();
        while let Some(Item(d, u)) = s.heap.pop() {
            if d > s.dist[u as usize] {
                continue;
            }
            out.push((u, d));
            let u = u as usize;
            for &(v, w) in &self.adj[self.start[u] as usize..self.start[u + 1] as usize] {
                let nd = d + w as f64;
                if nd <= max_m && nd < s.dist[v as usize] {
                    if s.dist[v as usize].is_infinite() {
                        s.touched.push(v);
                    }
                    s.dist[v as usize] = nd;
                    s.heap.push(Item(nd, v));
                }
            }
        }
        out
    }

    /// The walking distance in metres between two points over the network (the legs to and
    /// from the nearest nodes walked straight), or `None` beyond `max_m` or when unreachable.
    pub fn distance(&self, a: [f64; 2], b: [f64; 2], max_m: f64) -> Option<f64> {
        let (na, da) = self.snap(a)?;
        let (nb, db) = self.snap(b)?;
        let mut s = Scratch::default();
        self.within(&[(na, da)], max_m, &mut s)
            .into_iter()
            .find(|&(n, _)| n == nb)
            .map(|(_, d)| d + db)
            .filter(|&d| d <= max_m)
    }

    /// An isochrone: the positions (lon, lat) of the nodes within `max_m` metres of walking
    /// from a point.
    pub fn isochrone(&self, lon: f64, lat: f64, max_m: f64) -> Vec<[f64; 2]> {
        let Some((n, d)) = self.snap(self.plane.xy(lon, lat)) else {
            return Vec::new();
        };
        let mut s = Scratch::default();
        self.within(&[(n, d)], max_m, &mut s)
            .into_iter()
            .map(|(n, _)| self.plane.lonlat(self.xy[n as usize]))
            .collect()
    }
}
