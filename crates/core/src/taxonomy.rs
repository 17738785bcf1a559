//! Taxonomy and departments: the categories of events (with domain, default priority,
//! dedup radius and window, the time limit of every step, the responsible functional
//! line(s) and the lowest level that handles them) and the departments (code, names,
//! functional line 条线, level, region), loaded from one TOML file.
//!
//! Categories form a tree; a child inherits every field it does not set from its parent,
//! so groups (GB/T 30428-style 大类) carry the defaults of their 小类. Department entries
//! with `each = "subdistrict"` / `each = "community"` are templates expanded into one
//! department per region of that level.
//!
//! Loading validates everything and reports every problem with its line and column in the
//! file, not just the first.
//!
//! Architecture Invariant: no IO — the caller passes the file's text and the territory.

use crate::calendar::{TimeLimit, WorkCalendar};
use crate::territory::{Level, Territory};
use crate::time::{Millis, HOUR};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use toml::Spanned;

/// The four domains of city-operation vital signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// 大平安 public safety
    Safety,
    /// 大建管 construction and infrastructure management
    Construction,
    /// 大市场 market supervision
    Market,
    /// 大民生 livelihood and public services
    Livelihood,
}

impl Domain {
    pub const ALL: [Domain; 4] = [
        Domain::Safety,
        Domain::Construction,
        Domain::Market,
        Domain::Livelihood,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Safety => "safety",
            Domain::Construction => "construction",
            Domain::Market => "market",
            Domain::Livelihood => "livelihood",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Domain::Safety => "大平安",
            Domain::Construction => "大建管",
            Domain::Market => "大市场",
            Domain::Livelihood => "大民生",
        }
    }
    pub fn parse(s: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// Case priority, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Priority::Low => "一般",
            Priority::Normal => "较急",
            Priority::High => "紧急",
            Priority::Urgent => "特急",
        }
    }
    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
    /// One step up (saturating at urgent).
    pub fn raised(self) -> Priority {
        match self {
            Priority::Low => Priority::Normal,
            Priority::Normal => Priority::High,
            _ => Priority::Urgent,
        }
    }
    pub fn rank(self) -> u8 {
        self as u8
    }
    pub fn from_rank(r: u8) -> Priority {
        Priority::ALL[(r as usize).min(3)]
    }
}

/// The steps of the closed loop that carry a time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// reported → filed (立案)
    File,
    /// filed → dispatched (派遣)
    Dispatch,
    /// dispatched → acknowledged (签收)
    Acknowledge,
    /// dispatched → handled (处置)
    Handle,
    /// handled → verified (核查)
    Verify,
    /// verified → closed (结案)
    Close,
}

impl Step {
    pub const ALL: [Step; 6] = [
        Step::File,
        Step::Dispatch,
        Step::Acknowledge,
        Step::Handle,
        Step::Verify,
        Step::Close,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Step::File => "file",
            Step::Dispatch => "dispatch",
            Step::Acknowledge => "acknowledge",
            Step::Handle => "handle",
            Step::Verify => "verify",
            Step::Close => "close",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Step::File => "立案",
            Step::Dispatch => "派遣",
            Step::Acknowledge => "签收",
            Step::Handle => "处置",
            Step::Verify => "核查",
            Step::Close => "结案",
        }
    }
}

pub type CategoryId = u16;
pub type DepartmentId = u16;

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub domain: Domain,
    pub parent: Option<String>,
    /// A grouping node: not reportable itself.
    pub group: bool,
    pub priority: Priority,
    /// Functional line of the lead department.
    pub lead: String,
    /// Functional lines of the assisting departments (联勤联动).
    pub assist: Vec<String>,
    pub lowest_level: Level,
    pub dedup_radius_m: f64,
    pub dedup_window_ms: Millis,
    /// Reporter counts at which the case's priority is raised one step.
    pub merge_priority_at: Vec<u32>,
    /// Citizens may report it and follow it in public views (Open311, the anonymous case
    /// view). Only when the taxonomy says `public = true` (itself or a group above it):
    /// a category is non-public unless stated, so welfare checks and sensor-only cases
    /// never reach a public answer.
    pub public: bool,
    /// Its cases concern people's personal circumstances (a household found for
    /// assistance): listed, shown and streamed only to handlers of the lead line and
    /// officers in scope — never to analysts, inspectors, other lines or administrators
    /// (counts still include them). `restricted = true` on the category itself.
    pub restricted: bool,
    pub keywords: Vec<String>,
    /// Time limit per step, indexed like [`Step::ALL`].
    pub deadlines: [TimeLimit; 6],
    /// Extra questions asked of reporters (Open311 service attributes), in order.
    pub questions: Vec<Question>,
}

/// Reports of these categories close in space and time are one incident (e.g. a manhole
/// cover's tilt alarm and a citizen's "manhole cover missing").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correlation {
    pub categories: Vec<String>,
    pub radius_m: f64,
    pub window_ms: Millis,
}

/// A grouping node of categories (e.g. 公用设施), not reportable itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
}

/// The kinds of answer a question takes (Open311 GeoReport v2 attribute datatypes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    String,
    Number,
    Datetime,
    Text,
    Singlevaluelist,
    Multivaluelist,
}

impl Datatype {
    pub const ALL: [Datatype; 6] = [
        Datatype::String,
        Datatype::Number,
        Datatype::Datetime,
        Datatype::Text,
        Datatype::Singlevaluelist,
        Datatype::Multivaluelist,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Number => "number",
            Datatype::Datetime => "datetime",
            Datatype::Text => "text",
            Datatype::Singlevaluelist => "singlevaluelist",
            Datatype::Multivaluelist => "multivaluelist",
        }
    }
    pub fn parse(s: &str) -> Option<Datatype> {
        Datatype::ALL.into_iter().find(|d| d.as_str() == s)
    }
    /// Answers come from a fixed list of values.
    pub fn is_list(self) -> bool {
        matches!(self, Datatype::Singlevaluelist | Datatype::Multivaluelist)
    }
}

/// An extra question a category asks (e.g. "is anyone trapped?").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Question {
    pub code: String,
    pub datatype: Datatype,
    pub required: bool,
    /// The question as put to the reporter.
    pub description: String,
    /// How to answer, when the datatype alone does not say.
    pub datatype_description: String,
    /// (key, name) of each allowed value, for list datatypes.
    pub values: Vec<(String, String)>,
}

impl Category {
    pub fn limit(&self, step: Step) -> TimeLimit {
        self.deadlines[step as usize]
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Department {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub line: String,
    pub level: Level,
    /// Region code the department serves (the district's code for district departments).
    pub region: String,
}

/// A problem in the taxonomy file, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TaxonomyError {
    #[error("taxonomy does not parse: {0}")]
    Parse(String),
    #[error("taxonomy has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

#[derive(Debug, Clone)]
pub struct Taxonomy {
    pub categories: Vec<Category>,
    /// The grouping nodes (not reportable), in file order.
    pub groups: Vec<Group>,
    /// Related categories whose reports about one incident land in one case.
    pub correlations: Vec<Correlation>,
    pub departments: Vec<Department>,
    pub work_hours: Vec<String>,
    /// Deadline multiplier per priority, indexed by [`Priority::rank`].
    pub priority_factor: [f64; 4],
    pub escalation_repeat: TimeLimit,
    cat_by_code: HashMap<String, CategoryId>,
    dept_by_code: HashMap<String, DepartmentId>,
    /// line → region code → department
    by_line_region: HashMap<String, HashMap<String, DepartmentId>>,
}

// ---- raw TOML shapes ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    calendar: Option<RawCalendar>,
    priorities: Option<HashMap<String, f64>>,
    escalation: Option<RawEscalation>,
    #[serde(default)]
    department: Vec<RawDepartment>,
    #[serde(default)]
    category: Vec<RawCategory>,
    #[serde(default)]
    correlation: Vec<RawCorrelation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCorrelation {
    categories: Vec<Spanned<String>>,
    radius_m: Spanned<f64>,
    window_h: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    work_hours: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    repeat_every: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    code: Spanned<String>,
    name_zh: String,
    name_en: String,
    line: Spanned<String>,
    level: Spanned<String>,
    each: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    code: Spanned<String>,
    name_zh: String,
    name_en: String,
    domain: Option<Spanned<String>>,
    #[serde(default)]
    group: bool,
    parent: Option<Spanned<String>>,
    priority: Option<Spanned<String>>,
    lead: Option<Spanned<String>>,
    assist: Option<Vec<Spanned<String>>>,
    lowest_level: Option<Spanned<String>>,
    dedup_radius_m: Option<Spanned<f64>>,
    dedup_window_h: Option<Spanned<f64>>,
    merge_priority_at: Option<Vec<u32>>,
    public: Option<bool>,
    #[serde(default)]
    restricted: bool,
    keywords: Option<Vec<String>>,
    deadlines: Option<Spanned<RawDeadlines>>,
    #[serde(default)]
    questions: Vec<RawQuestion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    code: Spanned<String>,
    datatype: Spanned<String>,
    #[serde(default)]
    required: bool,
    description: String,
    datatype_description: Option<String>,
    #[serde(default)]
    values: Vec<RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValue {
    key: String,
    name: String,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawDeadlines {
    file: Option<Spanned<String>>,
    dispatch: Option<Spanned<String>>,
    acknowledge: Option<Spanned<String>>,
    handle: Option<Spanned<String>>,
    verify: Option<Spanned<String>>,
    close: Option<Spanned<String>>,
}

/// Resolved-but-unvalidated category fields while walking the inheritance chain.
#[derive(Clone, Default)]
struct Inherited {
    domain: Option<Domain>,
    priority: Option<Priority>,
    lead: Option<String>,
    assist: Option<Vec<String>>,
    lowest_level: Option<Level>,
    dedup_radius_m: Option<f64>,
    dedup_window_h: Option<f64>,
    merge_priority_at: Option<Vec<u32>>,
    public: Option<bool>,
    keywords: Option<Vec<String>>,
    deadlines: [Option<TimeLimit>; 6],
}

struct Ctx<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }
    fn span<T>(&mut self, s: &Spanned<T>, message: impl Into<String>) {
        self.at(s.span().start, message)
    }
}

fn valid_code(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Taxonomy {
    /// Parses and validates the taxonomy; department templates are expanded over the
    /// territory's sub-districts or communities.
    pub fn from_toml(text: &str, territory: &Territory) -> Result<Taxonomy, TaxonomyError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| TaxonomyError::Parse(e.to_string()))?;
        let mut cx = Ctx {
            text,
            problems: Vec::new(),
        };
        let (work_hours, priority_factor, escalation_repeat) =
            read_settings(raw.calendar, raw.priorities, raw.escalation, &mut cx);
        let (departments, dept_spans) = read_departments(&raw.department, territory, &mut cx);
        let (dept_by_code, by_line_region) = index_departments(&departments, &dept_spans, &mut cx);
        let district_lines: std::collections::HashSet<&str> = departments
            .iter()
            .filter(|d| d.level == Level::District)
            .map(|d| d.line.as_str())
            .collect();
        if !district_lines.contains("command") {
            cx.at(0, "there must be a district-level department of line \"command\" (the operations centre that receives escalations)");
        }
        let (categories, groups, cat_by_code) =
            read_categories(&raw.category, &district_lines, &mut cx);
        if categories.is_empty() && cx.problems.is_empty() {
            cx.at(0, "the taxonomy defines no reportable category");
        }
        let correlations = read_correlations(&raw.correlation, &cat_by_code, &mut cx);
        if !cx.problems.is_empty() {
            cx.problems.sort_by_key(|p| (p.line, p.column));
            return Err(TaxonomyError::Invalid(cx.problems));
        }
        Ok(Taxonomy {
            categories,
            groups,
            correlations,
            departments,
            work_hours,
            priority_factor,
            escalation_repeat,
            cat_by_code,
            dept_by_code,
            by_line_region,
        })
    }

    /// The other categories a category correlates with, and the rule that says so.
    pub fn correlated<'a>(
        &'a self,
        code: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Correlation)> + 'a {
        self.correlations
            .iter()
            .filter(move |c| c.categories.iter().any(|k| k == code))
            .flat_map(move |c| {
                c.categories
                    .iter()
                    .filter(move |k| k.as_str() != code)
                    .map(move |k| (k.as_str(), c))
            })
    }

    pub fn group(&self, code: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.code == code)
    }

    pub fn category(&self, code: &str) -> Option<&Category> {
        self.cat_by_code
            .get(code)
            .map(|&i| &self.categories[i as usize])
    }

    pub fn category_id(&self, code: &str) -> Option<CategoryId> {
        self.cat_by_code.get(code).copied()
    }

    pub fn department(&self, code: &str) -> Option<&Department> {
        self.dept_by_code
            .get(code)
            .map(|&i| &self.departments[i as usize])
    }

    /// The department of `line` serving exactly `region_code`, if any.
    pub fn department_for(&self, line: &str, region_code: &str) -> Option<&Department> {
        self.by_line_region
            .get(line)
            .and_then(|m| m.get(region_code))
            .map(|&i| &self.departments[i as usize])
    }

    pub fn factor(&self, p: Priority) -> f64 {
        self.priority_factor[p.rank() as usize]
    }

    /// The deadline multiplier for a case of `cat` at priority `p`: a category's limits
    /// are written for its own default priority, so that priority gives 1.0 and a raised
    /// priority shortens them by the ratio of the factors.
    pub fn relative_factor(&self, cat: &Category, p: Priority) -> f64 {
        self.factor(p) / self.factor(cat.priority)
    }

    /// The working calendar's hours as configured here, on top of a holiday calendar.
    pub fn calendar(
        &self,
        holidays_csv: &str,
    ) -> Result<WorkCalendar, crate::calendar::CalendarError> {
        WorkCalendar::weekdays_only()
            .with_holidays_csv(holidays_csv)?
            .with_work_hours(&self.work_hours)
    }
}

/// The `[calendar]`, `[priorities]` and `[escalation]` sections: working hours, priority
/// factors and the escalation repeat (defaults where absent).
fn read_settings(
    calendar: Option<RawCalendar>,
    priorities: Option<HashMap<String, f64>>,
    escalation: Option<RawEscalation>,
    cx: &mut Ctx,
) -> (Vec<String>, [f64; 4], TimeLimit) {
    let work_hours = calendar
        .map(|c| c.work_hours)
        .unwrap_or_else(|| vec!["09:00-12:00".into(), "13:00-18:00".into()]);
    if let Err(e) = WorkCalendar::weekdays_only().with_work_hours(&work_hours) {
        let off = cx.text.find("work_hours").unwrap_or(0);
        cx.at(off, e.to_string());
    }
    let mut priority_factor = [1.5, 1.0, 0.5, 0.25];
    if let Some(p) = priorities {
        for (k, v) in p {
            let off = cx.text.find("[priorities]").unwrap_or(0);
            match Priority::parse(&k) {
                Some(pr) if v > 0.0 && v.is_finite() => priority_factor[pr.rank() as usize] = v,
                Some(_) => cx.at(
                    off,
                    format!("priority factor for {k:?} must be a positive number"),
                ),
                None => cx.at(
                    off,
                    format!("unknown priority {k:?}; use low, normal, high, urgent"),
                ),
            }
        }
    }
    let escalation_repeat = match escalation {
        Some(e) => match TimeLimit::parse(e.repeat_every.get_ref()) {
            Ok(t) => t,
            Err(m) => {
                cx.span(&e.repeat_every, m);
                TimeLimit::parse("4wh").unwrap()
            }
        },
        None => TimeLimit::parse("4wh").unwrap(),
    };
    (work_hours, priority_factor, escalation_repeat)
}

/// The `[[department]]` tables, templates (`each = …`) expanded over the territory's
/// regions; with each department the offset of its code (for problems found later).
fn read_departments(
    raw: &[RawDepartment],
    territory: &Territory,
    cx: &mut Ctx,
) -> (Vec<Department>, Vec<usize>) {
    let district = territory.region(territory.root()).code.clone();
    let mut departments: Vec<Department> = Vec::new();
    let mut dept_spans: Vec<usize> = Vec::new();
    for d in raw {
        let code = d.code.get_ref();
        if !valid_code(code) {
            cx.span(
                &d.code,
                format!("department code {code:?} must be lowercase letters, digits, '-' or '_'"),
            );
        }
        if !valid_code(d.line.get_ref()) {
            cx.span(
                &d.line,
                format!("line {:?} must be a snake_case word", d.line.get_ref()),
            );
        }
        let Some(level) = Level::parse(d.level.get_ref()).filter(|l| *l != Level::Grid) else {
            cx.span(
                &d.level,
                format!(
                    "level {:?} must be district, subdistrict or community",
                    d.level.get_ref()
                ),
            );
            continue;
        };
        match &d.each {
            Some(each) => {
                let Some(each_level) = Level::parse(each.get_ref())
                    .filter(|l| matches!(l, Level::Subdistrict | Level::Community))
                else {
                    cx.span(
                        each,
                        format!(
                            "each = {:?}: templates expand over \"subdistrict\" or \"community\"",
                            each.get_ref()
                        ),
                    );
                    continue;
                };
                if each_level != level {
                    cx.span(
                        each,
                        format!(
                            "each = {:?} but level = {:?}: they must agree",
                            each.get_ref(),
                            d.level.get_ref()
                        ),
                    );
                    continue;
                }
                if d.region.is_some() {
                    cx.span(each, "a template (each = …) cannot also name a region");
                }
                for (_, r) in territory.regions().filter(|(_, r)| r.level == level) {
                    let en = r.name_en.clone().unwrap_or_else(|| r.code.clone());
                    departments.push(Department {
                        code: format!("{code}-{}", r.code),
                        name_zh: d.name_zh.replace("{region}", &r.name_zh),
                        name_en: d
                            .name_en
                            .replace("{region_en}", &en)
                            .replace("{region}", &en),
                        line: d.line.get_ref().clone(),
                        level,
                        region: r.code.clone(),
                    });
                    dept_spans.push(d.code.span().start);
                }
            }
            None => {
                let region = match (&d.region, level) {
                    (None, Level::District) => district.clone(),
                    (Some(r), _) => match territory.by_code(r.get_ref()) {
                        Some(id) if territory.region(id).level == level => r.get_ref().clone(),
                        Some(id) => {
                            cx.span(
                                r,
                                format!(
                                    "region {:?} is a {}, but the department's level is {}",
                                    r.get_ref(),
                                    territory.region(id).level,
                                    level
                                ),
                            );
                            continue;
                        }
                        None => {
                            cx.span(
                                r,
                                format!("region {:?} is not in the territory", r.get_ref()),
                            );
                            continue;
                        }
                    },
                    (None, _) => {
                        cx.span(
                            &d.level,
                            format!("a {level} department needs a region (or each = \"{level}\")"),
                        );
                        continue;
                    }
                };
                departments.push(Department {
                    code: code.clone(),
                    name_zh: d.name_zh.clone(),
                    name_en: d.name_en.clone(),
                    line: d.line.get_ref().clone(),
                    level,
                    region,
                });
                dept_spans.push(d.code.span().start);
            }
        }
    }
    (departments, dept_spans)
}

/// Departments by code, and by line and region.
type DepartmentIndex = (
    HashMap<String, DepartmentId>,
    HashMap<String, HashMap<String, DepartmentId>>,
);

/// Indexes the departments; a code used twice, or two departments of one line serving
/// one region, are problems.
fn index_departments(
    departments: &[Department],
    dept_spans: &[usize],
    cx: &mut Ctx,
) -> DepartmentIndex {
    let mut dept_by_code = HashMap::new();
    let mut by_line_region = HashMap::new();
    for (i, d) in departments.iter().enumerate() {
        if dept_by_code
            .insert(d.code.clone(), i as DepartmentId)
            .is_some()
        {
            cx.at(
                dept_spans[i],
                format!("department code {:?} is used twice", d.code),
            );
        }
        if by_line_region
            .entry(d.line.clone())
            .or_insert_with(HashMap::new)
            .insert(d.region.clone(), i as DepartmentId)
            .is_some()
        {
            cx.at(
                dept_spans[i],
                format!(
                    "two departments of line {:?} serve region {}",
                    d.line, d.region
                ),
            );
        }
    }
    (dept_by_code, by_line_region)
}

/// The `[[category]]` tables in order: groups, and reportable categories with what they
/// inherit from the groups above them, their lines checked against `district_lines`.
fn read_categories(
    raw: &[RawCategory],
    district_lines: &std::collections::HashSet<&str>,
    cx: &mut Ctx,
) -> (Vec<Category>, Vec<Group>, HashMap<String, CategoryId>) {
    let mut categories: Vec<Category> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut resolved: HashMap<String, (Inherited, bool)> = HashMap::new();
    let mut cat_by_code = HashMap::new();
    for c in raw {
        let code = c.code.get_ref();
        if !valid_code(code) {
            cx.span(
                &c.code,
                format!("category code {code:?} must be lowercase letters, digits, '-' or '_'"),
            );
        }
        if resolved.contains_key(code) {
            cx.span(&c.code, format!("category code {code:?} is used twice"));
            continue;
        }
        let mut inh = Inherited::default();
        if let Some(p) = &c.parent {
            match resolved.get(p.get_ref()) {
                Some((parent, true)) => inh = parent.clone(),
                Some((_, false)) => cx.span(
                    p,
                    format!("parent {:?} is not a group (group = true)", p.get_ref()),
                ),
                None => cx.span(
                    p,
                    format!("parent {:?} is not declared before {code:?}", p.get_ref()),
                ),
            }
        }
        inherit(c, &mut inh, district_lines, cx);
        resolved.insert(code.clone(), (inh.clone(), c.group));
        if c.group {
            groups.push(Group {
                code: code.clone(),
                name_zh: c.name_zh.clone(),
                name_en: c.name_en.clone(),
            });
            if let Some(q) = c.questions.first() {
                cx.span(
                    &q.code,
                    format!("group {code:?} cannot ask questions: only reportable categories do"),
                );
            }
            continue;
        }
        let mut missing = Vec::new();
        macro_rules! need {
            ($f:ident) => {
                if inh.$f.is_none() {
                    missing.push(stringify!($f).to_string());
                }
            };
        }
        need!(domain);
        need!(priority);
        need!(lead);
        need!(lowest_level);
        need!(dedup_radius_m);
        need!(dedup_window_h);
        for (i, d) in inh.deadlines.iter().enumerate() {
            if d.is_none() {
                missing.push(format!("deadlines.{}", Step::ALL[i].as_str()));
            }
        }
        if !missing.is_empty() {
            cx.span(
                &c.code,
                format!(
                    "category {code:?} lacks (after inheritance): {}",
                    missing.join(", ")
                ),
            );
            continue;
        }
        let deadlines = inh.deadlines.map(|d| d.unwrap());
        let questions = read_questions(c, code, cx);
        cat_by_code.insert(code.clone(), categories.len() as CategoryId);
        categories.push(Category {
            code: code.clone(),
            name_zh: c.name_zh.clone(),
            name_en: c.name_en.clone(),
            domain: inh.domain.unwrap(),
            parent: c.parent.as_ref().map(|p| p.get_ref().clone()),
            group: false,
            priority: inh.priority.unwrap(),
            lead: inh.lead.clone().unwrap(),
            assist: inh.assist.clone().unwrap_or_default(),
            lowest_level: inh.lowest_level.unwrap(),
            dedup_radius_m: inh.dedup_radius_m.unwrap(),
            dedup_window_ms: (inh.dedup_window_h.unwrap() * HOUR as f64) as Millis,
            merge_priority_at: inh.merge_priority_at.clone().unwrap_or_default(),
            public: inh.public.unwrap_or(false),
            restricted: c.restricted,
            keywords: inh.keywords.clone().unwrap_or_default(),
            deadlines,
            questions,
        });
    }
    (categories, groups, cat_by_code)
}

/// One category's own settings over what it inherits (`inh`).
fn inherit(
    c: &RawCategory,
    inh: &mut Inherited,
    district_lines: &std::collections::HashSet<&str>,
    cx: &mut Ctx,
) {
    if let Some(d) = &c.domain {
        match Domain::parse(d.get_ref()) {
            Some(x) => inh.domain = Some(x),
            None => cx.span(
                d,
                format!(
                    "domain {:?} is not one of safety, construction, market, livelihood",
                    d.get_ref()
                ),
            ),
        }
    }
    if let Some(p) = &c.priority {
        match Priority::parse(p.get_ref()) {
            Some(x) => inh.priority = Some(x),
            None => cx.span(
                p,
                format!(
                    "priority {:?} is not one of low, normal, high, urgent",
                    p.get_ref()
                ),
            ),
        }
    }
    let check_line = |cx: &mut Ctx, l: &Spanned<String>| {
        if !district_lines.contains(l.get_ref().as_str()) {
            cx.span(
                l,
                format!("no district-level department serves line {:?}", l.get_ref()),
            );
        }
    };
    if let Some(l) = &c.lead {
        check_line(cx, l);
        inh.lead = Some(l.get_ref().clone());
    }
    if let Some(a) = &c.assist {
        for l in a {
            check_line(cx, l);
        }
        inh.assist = Some(a.iter().map(|l| l.get_ref().clone()).collect());
    }
    if let Some(l) = &c.lowest_level {
        match Level::parse(l.get_ref()).filter(|l| *l != Level::Grid) {
            Some(x) => inh.lowest_level = Some(x),
            None => cx.span(
                l,
                format!(
                    "lowest_level {:?} must be community, subdistrict or district",
                    l.get_ref()
                ),
            ),
        }
    }
    if let Some(r) = &c.dedup_radius_m {
        if !(0.0..=10_000.0).contains(r.get_ref()) {
            cx.span(r, "dedup_radius_m must be between 0 and 10000");
        }
        inh.dedup_radius_m = Some(*r.get_ref());
    }
    if let Some(w) = &c.dedup_window_h {
        if !(0.0..=8760.0).contains(w.get_ref()) {
            cx.span(w, "dedup_window_h must be between 0 and 8760");
        }
        inh.dedup_window_h = Some(*w.get_ref());
    }
    if let Some(m) = &c.merge_priority_at {
        if m.windows(2).any(|w| w[0] >= w[1]) || m.first() == Some(&0) {
            cx.span(
                &c.code,
                "merge_priority_at must be increasing positive reporter counts",
            );
        }
        inh.merge_priority_at = Some(m.clone());
    }
    if c.public.is_some() {
        inh.public = c.public;
    }
    if c.keywords.is_some() {
        inh.keywords = c.keywords.clone();
    }
    if let Some(d) = &c.deadlines {
        let r = d.get_ref();
        let steps = [
            &r.file,
            &r.dispatch,
            &r.acknowledge,
            &r.handle,
            &r.verify,
            &r.close,
        ];
        for (i, s) in steps.into_iter().enumerate() {
            if let Some(s) = s {
                match TimeLimit::parse(s.get_ref()) {
                    Ok(t) => inh.deadlines[i] = Some(t),
                    Err(m) => cx.span(s, format!("deadlines.{}: {m}", Step::ALL[i].as_str())),
                }
            }
        }
    }
}

/// A reportable category's extra questions (Open311 attributes).
fn read_questions(c: &RawCategory, code: &str, cx: &mut Ctx) -> Vec<Question> {
    let mut questions: Vec<Question> = Vec::new();
    for q in &c.questions {
        let qc = q.code.get_ref();
        if !valid_code(qc) {
            cx.span(
                &q.code,
                format!("question code {qc:?} must be lowercase letters, digits, '-' or '_'"),
            );
        }
        if questions.iter().any(|x| &x.code == qc) {
            cx.span(
                &q.code,
                format!("question {qc:?} is asked twice in {code:?}"),
            );
        }
        let Some(datatype) = Datatype::parse(q.datatype.get_ref()) else {
            cx.span(
                &q.datatype,
                format!(
                    "unknown datatype {:?}: expected one of {}",
                    q.datatype.get_ref(),
                    Datatype::ALL.map(|d| d.as_str()).join(", ")
                ),
            );
            continue;
        };
        if datatype.is_list() && q.values.is_empty() {
            cx.span(
                &q.datatype,
                format!(
                    "question {qc:?} is a {} but lists no values",
                    datatype.as_str()
                ),
            );
        }
        if !datatype.is_list() && !q.values.is_empty() {
            cx.span(
                &q.datatype,
                format!(
                    "question {qc:?} lists values but is a {}",
                    datatype.as_str()
                ),
            );
        }
        questions.push(Question {
            code: qc.clone(),
            datatype,
            required: q.required,
            description: q.description.clone(),
            datatype_description: q.datatype_description.clone().unwrap_or_default(),
            values: q
                .values
                .iter()
                .map(|v| (v.key.clone(), v.name.clone()))
                .collect(),
        });
    }
    questions
}

/// The `[[correlation]]` tables: groups of related categories with a radius and window.
fn read_correlations(
    raw: &[RawCorrelation],
    cat_by_code: &HashMap<String, CategoryId>,
    cx: &mut Ctx,
) -> Vec<Correlation> {
    let mut correlations = Vec::new();
    for c in raw {
        let mut ok = true;
        for k in &c.categories {
            if !cat_by_code.contains_key(k.get_ref()) {
                cx.span(
                    k,
                    format!("correlation names unknown category {:?}", k.get_ref()),
                );
                ok = false;
            }
        }
        if c.categories.len() < 2 {
            cx.span(&c.radius_m, "a correlation relates at least two categories");
            ok = false;
        }
        if c.radius_m.get_ref().is_nan() || *c.radius_m.get_ref() <= 0.0 {
            cx.span(&c.radius_m, "correlation radius_m must be above 0");
            ok = false;
        }
        if c.window_h.get_ref().is_nan() || *c.window_h.get_ref() <= 0.0 {
            cx.span(&c.window_h, "correlation window_h must be above 0");
            ok = false;
        }
        if ok {
            correlations.push(Correlation {
                categories: c.categories.iter().map(|k| k.get_ref().clone()).collect(),
                radius_m: *c.radius_m.get_ref(),
                window_ms: (*c.window_h.get_ref() * HOUR as f64) as Millis,
            });
        }
    }
    correlations
}
