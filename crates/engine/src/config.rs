//! The production configuration of a cityos district: territory (GeoJSON), taxonomy and
//! departments (TOML), working calendar (CSV), the sensing end's devices (CSV) and alarm
//! rules (TOML), the vital signs (TOML) and their alert rules (TOML), the intake settings
//! (TOML) and gazetteer (CSV) for reports without a category — loaded and
//! validated whole, or refused with one [`ConfigError`] variant per source file naming
//! the file and every problem in it. [`Config::xuhui`] is the embedded demo ([`crate::demo`]).

use cityos_core::territory::TerritoryError;
use cityos_core::{Taxonomy, Territory, WorkCalendar};
use std::sync::Arc;

/// The sensing end's registry: devices and their alarm rules.
#[derive(Debug, Default)]
pub struct Sensing {
    pub devices: Vec<cityos_core::sensing::Device>,
    pub rules: Vec<cityos_core::sensing::AlarmRule>,
    /// The payload shape each device kind speaks and each metric's unit (issue 22).
    pub payloads: cityos_core::payload::Payloads,
}

/// A district's configuration, loaded and validated.
#[derive(Clone)]
pub struct Config {
    pub territory: Arc<Territory>,
    pub taxonomy: Arc<Taxonomy>,
    pub calendar: Arc<WorkCalendar>,
    pub sensing: Arc<Sensing>,
    /// The vital signs (城运体征).
    pub indicators: Arc<Vec<cityos_core::indicators::Indicator>>,
    /// Alert rules over the vital signs.
    pub alert_rules: Arc<Vec<cityos_core::alerting::AlertRule>>,
    /// Intake of reports without a category (智能分拨): threshold, cues, gazetteer.
    pub intake: Arc<cityos_core::classify::intake::IntakeConfig>,
}

/// Why a configuration does not load: one variant per source file, each naming its file
/// and the problems found in it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("territory: {0}")]
    Territory(#[from] TerritoryError),
    #[error("{0}")]
    Taxonomy(#[from] cityos_core::taxonomy::TaxonomyError),
    #[error("calendar: {0}")]
    Calendar(#[from] cityos_core::calendar::CalendarError),
    /// The device registry (CSV), one problem per bad row.
    #[error("devices: {}", .0.join("; "))]
    Devices(Vec<String>),
    /// The sensing end's alarm rules (TOML).
    #[error("alarm rules: {}", .0.join("; "))]
    SensingRules(Vec<String>),
    /// The sensing file's payload declarations (`[[payload]]`, `[units]`), each problem
    /// as `line:column: message`.
    #[error("payload declarations: {}", .0.join("; "))]
    Payloads(Vec<String>),
    /// The vital-sign indicator registry (TOML).
    #[error("indicators: {}", .0.join("; "))]
    Indicators(Vec<String>),
    /// The alert rules over the vital signs (TOML).
    #[error("alert rules: {}", .0.join("; "))]
    AlertRules(Vec<String>),
    /// The intake settings (TOML) and the gazetteer (CSV) they name.
    #[error("intake: {}", .0.join("; "))]
    Intake(Vec<String>),
}

impl Config {
    /// Loads a configuration from texts (territory GeoJSON, taxonomy TOML, calendar CSV).
    pub fn from_texts(
        territory: &str,
        taxonomy: &str,
        calendar: &str,
    ) -> Result<Config, ConfigError> {
        let territory = Territory::from_geojson(&[territory])?;
        let taxonomy = Taxonomy::from_toml(taxonomy, &territory)?;
        let calendar = taxonomy.calendar(calendar)?;
        Ok(Config {
            taxonomy: Arc::new(taxonomy),
            calendar: Arc::new(calendar),
            sensing: Arc::new(Sensing::default()),
            indicators: Arc::new(Vec::new()),
            alert_rules: Arc::new(Vec::new()),
            intake: Arc::new(cityos_core::classify::intake::IntakeConfig::plain(
                &territory,
            )),
            territory: Arc::new(territory),
        })
    }

    /// Adds the vital-sign registry (TOML); every problem is an error here, as is a
    /// category counted by a `per_100_devices` statistic that the taxonomy does not know.
    pub fn with_indicators(mut self, text: &str) -> Result<Config, ConfigError> {
        let all =
            cityos_core::indicators::parse_indicators(text).map_err(ConfigError::Indicators)?;
        let unknown: Vec<String> = all
            .iter()
            .filter_map(|i| match &i.source {
                cityos_core::indicators::Source::Cases {
                    rate: Some(rate), ..
                } => Some((i, rate)),
                _ => None,
            })
            .flat_map(|(i, rate)| {
                rate.categories
                    .iter()
                    .filter(|c| self.taxonomy.category(c).is_none())
                    .map(move |c| format!("indicator {:?}: unknown category {c:?}", i.code))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(ConfigError::Indicators(unknown));
        }
        self.indicators = Arc::new(all);
        Ok(self)
    }

    /// Adds alert rules (TOML) over the indicators already added; every problem is an
    /// error here.
    pub fn with_alert_rules(mut self, text: &str) -> Result<Config, ConfigError> {
        let tax = self.taxonomy.clone();
        let rules = cityos_core::alerting::parse_alert_rules(text, &self.indicators, &|c| {
            tax.category(c).is_some()
        })
        .map_err(ConfigError::AlertRules)?;
        self.alert_rules = Arc::new(rules);
        Ok(self)
    }

    /// Adds the sensing end: alarm rules (TOML) and devices (CSV). Every problem is an
    /// error here: a configuration loads whole or not at all.
    pub fn with_sensing(mut self, rules: &str, devices: &str) -> Result<Config, ConfigError> {
        let tax = self.taxonomy.clone();
        let rules_text = rules;
        let rules = cityos_core::sensing::parse_rules(rules, &|c| tax.category(c).is_some())
            .map_err(ConfigError::SensingRules)?;
        let (devices, errors) = cityos_core::sensing::parse_devices_csv(devices, &self.territory);
        if !errors.is_empty() {
            return Err(ConfigError::Devices(
                errors.iter().map(|e| e.to_string()).collect(),
            ));
        }
        let catalogue = cityos_core::scenario::Catalogue::from_toml(crate::demo::CATALOGUE_TOML)
            .map_err(|e| ConfigError::SensingRules(vec![format!("catalogue: {}", e.join("; "))]))?;
        let rules_ = &rules;
        let kind_known = |k: &str| {
            devices.iter().any(|d| d.kind == k)
                || rules_.iter().any(|r| r.kind == k)
                || catalogue.device_kinds.contains_key(k)
        };
        let metric_known = |k: &str, m: &str| {
            rules_.iter().any(|r| r.kind == k && r.metric == m)
                || catalogue
                    .device_kinds
                    .get(k)
                    .is_some_and(|ms| ms.iter().any(|x| x == m))
        };
        let payloads = cityos_core::payload::parse_payloads(rules_text, &kind_known, &metric_known)
            .map_err(|e| ConfigError::Payloads(e.iter().map(|p| p.to_string()).collect()))?;
        self.sensing = Arc::new(Sensing {
            devices,
            rules,
            payloads,
        });
        Ok(self)
    }

    /// Adds the intake settings (TOML); `read` gives the text of the gazetteer file they
    /// name. Every problem is an error here, each named by line.
    pub fn with_intake(
        mut self,
        text: &str,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Config, ConfigError> {
        let intake = cityos_core::classify::intake::parse_intake(
            text,
            &self.taxonomy,
            &self.territory,
            read,
        )
        .map_err(ConfigError::Intake)?;
        self.intake = Arc::new(intake);
        Ok(self)
    }

    /// The embedded Xuhui intake settings and gazetteer.
    pub fn with_embedded_intake(self) -> Result<Config, ConfigError> {
        self.with_intake(crate::demo::INTAKE_TOML, &|name| match name {
            "gazetteer.csv" => Ok(crate::demo::GAZETTEER_CSV.to_string()),
            other => Err(format!("no embedded file {other:?}")),
        })
    }

    /// An engine over `store` with this configuration.
    pub fn engine(
        &self,
        store: Box<dyn crate::Store>,
    ) -> Result<crate::Engine, crate::EngineError> {
        crate::Engine::open(
            store,
            self.territory.clone(),
            self.taxonomy.clone(),
            self.calendar.clone(),
            crate::EngineConfig::default(),
        )
    }

    /// The embedded Xuhui demo.
    pub fn xuhui() -> Config {
        use crate::demo::*;
        Config::from_texts(TERRITORY_GEOJSON, TAXONOMY_TOML, CALENDAR_CSV)
            .and_then(|c| c.with_sensing(SENSING_TOML, DEVICES_CSV))
            .and_then(|c| c.with_indicators(INDICATORS_TOML))
            .and_then(|c| c.with_alert_rules(ALERT_RULES_TOML))
            .and_then(|c| c.with_embedded_intake())
            .expect("the embedded demo configuration is valid (tested)")
    }
}
