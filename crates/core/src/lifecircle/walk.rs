//! Walking times: over a walking network when one is supplied, else straight-line distance
//! × a detour factor. Either way at a walking speed (4.5 km/h; 3.6 km/h for services
//! mostly used by elders). [`Walker::describe`] states the method in words — every answer
//! and the map carry it.

use super::network::Network;

/// The straight-line defaults: detour factor and speeds.
pub const DETOUR: f64 = 1.3;
pub const SPEED_KMH: f64 = 4.5;
pub const ELDER_SPEED_KMH: f64 = 3.6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Straight,
    Network,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Straight => "straight_line",
            Method::Network => "network",
        }
    }
}

#[derive(Debug)]
pub struct Walker {
    pub detour: f64,
    pub speed_kmh: f64,
    pub elder_speed_kmh: f64,
    pub network: Option<Network>,
}

impl Default for Walker {
    fn default() -> Walker {
        Walker {
            detour: DETOUR,
            speed_kmh: SPEED_KMH,
            elder_speed_kmh: ELDER_SPEED_KMH,
            network: None,
        }
    }
}

impl Walker {
    /// Straight lines with the given detour factor and speeds.
    pub fn straight(detour: f64, speed_kmh: f64, elder_speed_kmh: f64) -> Result<Walker, String> {
        if !(1.0..=3.0).contains(&detour) {
            return Err(format!("detour factor {detour} is outside 1.0–3.0"));
        }
        for s in [speed_kmh, elder_speed_kmh] {
            if !(1.0..=8.0).contains(&s) {
                return Err(format!("walking speed {s} km/h is outside 1–8 km/h"));
            }
        }
        Ok(Walker {
            detour,
            speed_kmh,
            elder_speed_kmh,
            network: None,
        })
    }

    /// Over a network (the detour factor is then unused).
    pub fn over(network: Network) -> Walker {
        Walker {
            network: Some(network),
            ..Walker::default()
        }
    }

    pub fn method(&self) -> Method {
        if self.network.is_some() {
            Method::Network
        } else {
            Method::Straight
        }
    }

    /// Metres walked per minute.
    pub fn m_per_min(&self, elders: bool) -> f64 {
        (if elders {
            self.elder_speed_kmh
        } else {
            self.speed_kmh
        }) * 1000.0
            / 60.0
    }

    /// The method in words: (Chinese, English).
    pub fn describe(&self) -> (String, String) {
        match &self.network {
            None => (
                format!(
                    "直线距离 × 绕行系数 {}，步行速度 {} km/h（老年人服务按 {} km/h）",
                    self.detour, self.speed_kmh, self.elder_speed_kmh
                ),
                format!(
                    "straight-line distance × detour factor {}, walking at {} km/h ({} km/h for services used by elders)",
                    self.detour, self.speed_kmh, self.elder_speed_kmh
                ),
            ),
            Some(n) => (
                format!(
                    "步行网络最短路径（{} 个节点、{} 条边），步行速度 {} km/h（老年人服务按 {} km/h）",
                    n.nodes(),
                    n.edges(),
                    self.speed_kmh,
                    self.elder_speed_kmh
                ),
                format!(
                    "shortest paths over the walking network ({} nodes, {} edges), walking at {} km/h ({} km/h for services used by elders)",
                    n.nodes(),
                    n.edges(),
                    self.speed_kmh,
                    self.elder_speed_kmh
                ),
            ),
        }
    }
}
