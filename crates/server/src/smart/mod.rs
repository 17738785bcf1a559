//! The smart room (智能分拨, issue 14): reads a report that came without a category. It
//! holds the classifier — the file `classifier.model` of the data directory, loaded at
//! start and reloaded when the file changes (looked at no more than every
//! [`RECHECK`]) — and applies the district's intake settings (`Config::intake`: threshold,
//! line labels, urgency cues, gazetteer).
//!
//! [`read`] answers the category to file under (the model's suggestion, or the 待分拨
//! triage category), the priority the urgency cues ask for, the [`Suggestion`] the case
//! records and the position (from the text's place names when the report has none). A
//! missing or unreadable model never fails an intake: every such report goes to triage
//! with the reason.
//!
//! Intake rooms (the API's `POST /api/v1/reports`, Open311's `POST requests`) call it;
//! the room sits below them and imports nothing but the root's items and `http`.

use crate::http::error::{ApiError, Problem};
use crate::AppState;
use cityos_core::case::{Scored, Suggestion};
use cityos_core::classify::{cues, Model, Scratch, TextError};
use cityos_core::Priority;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The model's file name in the data directory.
pub const MODEL_FILE: &str = "classifier.model";

/// How often, at most, the model file is looked at for a change.
pub const RECHECK: Duration = Duration::from_secs(10);

/// The model as last loaded.
#[derive(Default)]
struct Loaded {
    file: Option<PathBuf>,
    model: Option<Arc<Model>>,
    /// The model's id (file name and a hash of its bytes).
    id: String,
    /// Why there is no model, in words staff read.
    error: String,
    mtime: Option<SystemTime>,
    checked: Option<Instant>,
}

/// The smart room's state: the classifier.
#[derive(Default)]
pub struct Smart {
    loaded: Mutex<Loaded>,
}

impl Smart {
    /// Uses `file` as the model file from now on and loads it at once.
    pub fn set_model_file(&self, file: &Path) {
        let mut l = self.loaded.lock().expect("smart lock");
        l.file = Some(file.to_path_buf());
        load(&mut l);
    }

    /// The model, reloaded first when its file changed (looked at no more than every
    /// [`RECHECK`]); `Err` says why there is none.
    fn model(&self) -> Result<(Arc<Model>, String), String> {
        let mut l = self.loaded.lock().expect("smart lock");
        if l.checked.is_none_or(|t| t.elapsed() >= RECHECK) {
            let mtime = l
                .file
                .as_ref()
                .and_then(|f| std::fs::metadata(f).ok())
                .and_then(|m| m.modified().ok());
            if mtime != l.mtime || l.checked.is_none() {
                load(&mut l);
            }
            l.checked = Some(Instant::now());
        }
        match &l.model {
            Some(m) => Ok((m.clone(), l.id.clone())),
            None => Err(l.error.clone()),
        }
    }

    /// Is a model loaded, and its id or why not (for health and the demo's log).
    pub fn status(&self) -> Result<String, String> {
        self.model().map(|(_, id)| id)
    }
}

fn load(l: &mut Loaded) {
    l.checked = Some(Instant::now());
    l.model = None;
    let Some(file) = l.file.clone() else {
        l.error = "未配置模型文件".into();
        l.mtime = None;
        return;
    };
    l.mtime = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
    match std::fs::read(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            l.error = format!("模型文件 {MODEL_FILE} 不存在");
        }
        Err(e) => l.error = format!("模型文件 {MODEL_FILE} 读取失败：{e}"),
        Ok(bytes) => match Model::from_bytes(&bytes) {
            Ok(m) => {
                l.id = format!(
                    "{MODEL_FILE}#{:08x}",
                    cityos_core::rng::fnv1a(&bytes) as u32
                );
                l.model = Some(Arc::new(m));
                l.error.clear();
            }
            Err(e) => l.error = format!("模型文件 {MODEL_FILE} 无法读取：{e}"),
        },
    }
}

/// What reading a report's text gives intake.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The category to file under: the suggestion when routed, else the triage category.
    pub category: String,
    /// The priority the urgency cues ask for (at least the category's own).
    pub priority: Option<Priority>,
    pub suggestion: Suggestion,
    pub lon: f64,
    pub lat: f64,
}

impl Reading {
    /// What the reporter is told: passed on, or waiting for a person to pick.
    pub fn public_outcome(&self) -> &'static str {
        if self.suggestion.routed {
            "已转相关部门"
        } else {
            "待人工分拨"
        }
    }
}

/// Letters, digits or Chinese characters a text needs at least to be read without a
/// category.
pub const MIN_TEXT_CHARS: usize = 4;

/// Does the text say enough (at least [`MIN_TEXT_CHARS`] letters, digits or Chinese
/// characters) to be read without a category?
pub fn long_enough(text: &str) -> bool {
    text.chars().filter(|c| c.is_alphanumeric()).count() >= MIN_TEXT_CHARS
}

/// A text that cannot be read, as an invalid argument naming the problem.
pub fn text_error(e: TextError) -> ApiError {
    ApiError::new(
        Problem::InvalidArgument,
        match e {
            TextError::Empty => "text is empty: say what the problem is".to_string(),
            TextError::NoContent => {
                "text holds only punctuation, symbols or emoji: say in words what the problem is"
                    .to_string()
            }
        },
    )
}

/// Reads a report's text: the suggested category and department, the urgency cues, the
/// places named, and whether it routes or waits in triage (see the module doc).
/// `position` is the report's own (lon, lat), if it has one.
pub fn read(st: &AppState, text: &str, position: Option<(f64, f64)>) -> Result<Reading, ApiError> {
    cityos_core::classify::readable(text).map_err(text_error)?;
    if !long_enough(text) {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            format!(
                "text is too short to read without a category: say in at least {MIN_TEXT_CHARS} characters what the problem is and where, or choose a category"
            ),
        ));
    }
    let cfg = &st.0.cfg;
    let intake = &cfg.intake;
    let tax = &cfg.taxonomy;
    let territory = &cfg.territory;

    // Places, and the position when the report has none.
    let places = intake.gazetteer.matches(text);
    let located = match position {
        Some(_) => None,
        None => intake.gazetteer.locate(text),
    };
    let (lon, lat, located_by_text, no_place) = match (position, &located) {
        (Some((x, y)), _) => (x, y, false, false),
        (None, Some(l)) => (l.lon, l.lat, true, false),
        (None, None) => {
            let [x, y] = territory.interior_point(territory.root());
            (x, y, false, true)
        }
    };

    // Urgency cues.
    let hits = cues::find(&intake.cues, text);
    let cue_words: Vec<String> = hits.iter().map(|h| h.word.clone()).collect();
    let cue_priority = hits
        .iter()
        .map(|h| intake.cues[h.cue].priority)
        .max_by_key(|p| p.rank());
    let skip = hits.iter().find(|h| intake.cues[h.cue].skip_triage);

    // The model's suggestion.
    let mut top: Vec<Scored> = Vec::new();
    let mut line = None;
    let mut model_id = String::new();
    let mut claimed = true;
    let model_problem = match st.0.smart.model() {
        Err(why) => Some(format!("无可用模型：{why}")),
        Ok((model, id)) => {
            model_id = id;
            let p = model
                .predict_with(text, 5, &mut Scratch::default())
                .map_err(text_error)?;
            claimed = p.margin > 0.0;
            for (label, score) in &p.top {
                if let Some((cat, l)) = intake.category_of(label, tax) {
                    if top.is_empty() {
                        line = l;
                    }
                    if !top.iter().any(|s| s.category == cat) && top.len() < 3 {
                        top.push(Scored {
                            category: cat,
                            score: *score,
                        });
                    }
                }
            }
            top.is_empty()
                .then(|| format!("模型标签「{}」没有对应的类别", p.label))
        }
    };
    let score = top.first().map_or(0.0, |s| s.score);
    let threshold = intake.threshold;

    // Route or triage, and why.
    let (category, routed, mut reason) = if no_place {
        (
            None,
            false,
            "未给出位置，文中也未找到地名：定位于区代表点，转待分拨".to_string(),
        )
    } else if let Some(h) = skip {
        let cue = &intake.cues[h.cue];
        match cue
            .category
            .clone()
            .or_else(|| top.first().map(|s| s.category.clone()))
        {
            Some(c) => (Some(c), true, format!("紧急线索「{}」：跳过分拨", h.word)),
            None => (
                None,
                false,
                format!(
                    "紧急线索「{}」，但{}，转待分拨",
                    h.word,
                    model_problem.clone().unwrap_or_default()
                ),
            ),
        }
    } else if let Some(why) = &model_problem {
        (None, false, format!("{why}，转待分拨"))
    } else if score >= threshold && !claimed {
        // Calibrated scores share 1 out among the labels the model knows; text unlike
        // any of them can still get a high share. No scorer claiming it is the tell.
        (
            None,
            false,
            format!("模型建议 {score:.2}，但没有类别认领这段文字（判别值均不为正），转待分拨"),
        )
    } else if score >= threshold {
        (
            top.first().map(|s| s.category.clone()),
            true,
            format!("模型建议 {score:.2} ≥ 阈值 {threshold:.2}"),
        )
    } else {
        (
            None,
            false,
            format!("置信度 {score:.2} < 阈值 {threshold:.2}，转待分拨"),
        )
    };
    if let Some(l) = &located {
        reason.push_str(&format!("；按文中地名「{}」定位", l.by.word));
    }

    // The suggested category (the routed one, else the model's best) and its department.
    let suggested = category
        .clone()
        .or_else(|| top.first().map(|s| s.category.clone()))
        .unwrap_or_else(|| intake.triage_category.clone());
    let department = tax.category(&suggested).and_then(|c| {
        let chain = territory.locate(lon, lat).ok()?;
        let codes = territory.codes(chain);
        cityos_core::routing::route(tax, c, &codes)
            .ok()?
            .first()
            .map(|a| a.department.clone())
    });
    let filed = category.unwrap_or_else(|| intake.triage_category.clone());
    let own = tax.category(&filed).map(|c| c.priority);
    let priority = cue_priority.map(|p| match own {
        Some(o) if o.rank() > p.rank() => o,
        _ => p,
    });
    Ok(Reading {
        category: filed,
        priority,
        suggestion: Suggestion {
            category: suggested,
            line,
            department,
            score,
            top,
            model: model_id,
            routed,
            reason,
            places,
            located_by_text,
            cues: cue_words,
        },
        lon,
        lat,
    })
}
