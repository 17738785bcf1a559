//! The embedded Xuhui demo files: territory (generated GeoJSON), taxonomy and departments
//! (TOML), the 2026 working calendar (CSV), the sensing end's devices and alarm rules, the
//! vital signs and their alert rules — compiled into the binary so that the embedded
//! default ([`crate::config::Config::xuhui`]) needs no files at all.

pub const TERRITORY_GEOJSON: &str = include_str!("../../../data/xuhui/territory.geojson");
pub const TAXONOMY_TOML: &str = include_str!("../../../data/xuhui/taxonomy.toml");
pub const CALENDAR_CSV: &str = include_str!("../../../data/calendar/cn-2026.csv");
pub const SENSING_TOML: &str = include_str!("../../../data/xuhui/sensing.toml");
pub const DEVICES_CSV: &str = include_str!("../../../data/xuhui/devices.csv");
pub const INDICATORS_TOML: &str = include_str!("../../../data/xuhui/indicators.toml");
pub const ALERT_RULES_TOML: &str = include_str!("../../../data/xuhui/alert_rules.toml");
/// Synthetic households for the data end's lone-elder rule (invented, no real persons).
pub const LONE_ELDER_CSV: &str = include_str!("../../../data/xuhui/lone_elder_households.csv");
