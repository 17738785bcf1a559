//! A district's intake settings for reports that come without a category (智能分拨,
//! issue 14): the confidence threshold above which a model's suggestion routes the case,
//! the triage category the rest wait in, what the model's labels mean when they are
//! functional lines (条线) rather than categories, the urgency cues, and the gazetteer of
//! roads and landmarks. Read from one TOML file (every problem named by line) and the CSV
//! gazetteer it names.

use super::cues::Cue;
use super::place::{parse_gazetteer, Gazetteer};
use crate::{Priority, Taxonomy, Territory};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The intake settings, checked against the taxonomy and territory.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// A suggestion scoring at least this routes the case; below, it waits in triage.
    pub threshold: f32,
    /// The category of the 待分拨 queue.
    pub triage_category: String,
    /// A model label that is a functional line → the category suggested for it.
    pub labels: BTreeMap<String, String>,
    pub cues: Vec<Cue>,
    pub gazetteer: Gazetteer,
}

impl IntakeConfig {
    /// Threshold 0.6, the `triage` category, no line labels, no cues, and a gazetteer of
    /// the territory's own region names.
    pub fn plain(territory: &Territory) -> IntakeConfig {
        IntakeConfig {
            threshold: 0.6,
            triage_category: "triage".into(),
            labels: BTreeMap::new(),
            cues: Vec::new(),
            gazetteer: Gazetteer::new(territory, Vec::new()),
        }
    }

    /// The category a model label suggests, and the line when the label is one: a label
    /// that is a category's code is that category; a line label maps through `[labels]`.
    pub fn category_of(&self, label: &str, tax: &Taxonomy) -> Option<(String, Option<String>)> {
        if tax.category(label).is_some_and(|c| !c.group) {
            return Some((label.to_string(), None));
        }
        self.labels
            .get(label)
            .map(|c| (c.clone(), Some(label.to_string())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntake {
    threshold: Option<Spanned<f64>>,
    triage_category: Option<Spanned<String>>,
    gazetteer: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    cue: Vec<Spanned<RawCue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCue {
    words: Spanned<Vec<String>>,
    priority: Spanned<String>,
    #[serde(default)]
    skip_triage: bool,
    category: Option<Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses the intake file. `read` gives the text of the gazetteer file it names (the
/// caller's IO); every problem is returned, each naming its line (and file).
pub fn parse_intake(
    text: &str,
    tax: &Taxonomy,
    territory: &Territory,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<IntakeConfig, Vec<String>> {
    let raw: RawIntake = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        vec![format!("line {line}: {}", e.message())]
    })?;
    let mut problems = Vec::new();
    macro_rules! at {
        ($offset:expr, $m:expr $(,)?) => {
            problems.push(format!("line {}: {}", line_of(text, $offset), $m))
        };
    }
    let mut cfg = IntakeConfig::plain(territory);
    if let Some(t) = &raw.threshold {
        let v = *t.get_ref();
        if !(0.0..=1.0).contains(&v) {
            at!(t.span().start, format!("threshold {v} is not within 0..=1"));
        }
        cfg.threshold = v as f32;
    }
    let reportable = |c: &str| tax.category(c).is_some_and(|c| !c.group);
    if let Some(t) = &raw.triage_category {
        if !reportable(t.get_ref()) {
            at!(
                t.span().start,
                format!(
                    "triage_category {:?} is not a category of the taxonomy",
                    t.get_ref()
                ),
            );
        }
        cfg.triage_category = t.get_ref().clone();
    } else if !reportable(&cfg.triage_category) {
        at!(
            0,
            "the taxonomy has no category \"triage\"; name one with triage_category"
        );
    }
    for (label, cat) in &raw.labels {
        if !reportable(cat.get_ref()) {
            at!(
                cat.span().start,
                format!(
                    "label {label:?} maps to {:?}, which is not a category of the taxonomy",
                    cat.get_ref()
                ),
            );
        }
        cfg.labels.insert(label.clone(), cat.get_ref().clone());
    }
    for c in &raw.cue {
        let c = c.get_ref();
        let words: Vec<String> = c
            .words
            .get_ref()
            .iter()
            .map(|w| w.trim().to_string())
            .collect();
        if words.is_empty() || words.iter().any(|w| w.is_empty()) {
            at!(
                c.words.span().start,
                "a cue needs words, none of them empty"
            );
        }
        let priority = match Priority::parse(c.priority.get_ref()) {
            Some(p @ (Priority::High | Priority::Urgent)) => p,
            _ => {
                at!(
                    c.priority.span().start,
                    format!("priority {:?} is not high or urgent", c.priority.get_ref()),
                );
                Priority::High
            }
        };
        if let Some(cat) = &c.category {
            if !reportable(cat.get_ref()) {
                at!(
                    cat.span().start,
                    format!(
                        "category {:?} is not a category of the taxonomy",
                        cat.get_ref()
                    ),
                );
            }
        }
        cfg.cues.push(Cue {
            words,
            priority,
            skip_triage: c.skip_triage,
            category: c.category.as_ref().map(|s| s.get_ref().clone()),
        });
    }
    if let Some(g) = &raw.gazetteer {
        match read(g.get_ref()) {
            Ok(csv) => match parse_gazetteer(&csv, territory) {
                Ok(places) => cfg.gazetteer = Gazetteer::new(territory, places),
                Err(e) => {
                    for p in e.0 {
                        problems.push(format!("{}: {p}", g.get_ref()));
                    }
                }
            },
            Err(e) => at!(g.span().start, format!("gazetteer {:?}: {e}", g.get_ref())),
        }
    }
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}
