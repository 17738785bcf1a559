//! Alert rules over vital signs, with Prometheus-like semantics: a rule's expression over
//! indicators (`underpass_water_depth >= orange`, `river_water_level > 4.5 and
//! rainfall_mm_h > 30`) holds in a region and keeps holding for `for`;
//! pending → firing → resolved; one alert per fingerprint (rule + region); silences (owner,
//! reason, expiry) and inhibition (a firing alert of one rule mutes the alerts of the
//! rules it names inside its region — region codes nest by prefix) suppress notices but
//! never the state itself. Pure: the service feeds levels and time, acts on the notices.

use crate::indicators::{Indicator, WarnLevel};
use crate::time::Millis;
use serde::Deserialize;
use std::collections::BTreeMap;

/// An alert rule: an expression over indicators, held for `for`, in each region where its
/// first indicator has a value.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub expr: Expr,
    pub for_ms: Millis,
    /// The alert's level when the first indicator has no thresholds of its own.
    pub level: Option<WarnLevel>,
    /// Levels at which a firing alert becomes a case (orange and red by default).
    pub case_levels: Vec<WarnLevel>,
    /// The taxonomy category of the case a firing alert opens (empty when it opens none).
    pub category: String,
    /// Alerts are listed in groups by this name (the rule's code unless given).
    pub group: String,
    /// Published as a CAP public warning, with this CAP category.
    pub public: Option<&'static str>,
    /// Rules whose alerts this one mutes inside its region while it fires.
    pub inhibits: Vec<String>,
}

/// What a rule sees in one region at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The expression holds.
    pub breach: bool,
    pub level: WarnLevel,
    /// The first indicator's value.
    pub value: f64,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    /// Whether `a op b` holds.
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }

    /// Whether the operator orders its operands (`<`, `<=`, `>`, `>=`), as opposed to
    /// testing (in)equality.
    pub fn orders(self) -> bool {
        !matches!(self, Op::Eq | Op::Ne)
    }
}

/// What an indicator is compared with: a number (its value) or a colour (its level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operand {
    Value(f64),
    Level(WarnLevel),
}

/// An alert expression: comparisons of indicators joined by `and`, `or` and parentheses,
/// e.g. `river_water_level >= yellow and rainfall_mm_h > 30`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Cmp(String, Op, Operand),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Parses an expression; the error names what was expected and where.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let toks = tokens(text)?;
        let mut p = Parser { toks, at: 0 };
        let e = p.or()?;
        match p.toks.get(p.at) {
            None => Ok(e),
            Some(t) => Err(format!("unexpected {t:?} after a complete expression")),
        }
    }

    /// The indicators named, first one first.
    pub fn indicators(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |c, _| {
            if !out.contains(&c) {
                out.push(c)
            }
        });
        out
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a str, &'a Operand)) {
        match self {
            Expr::Cmp(c, _, o) => f(c, o),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
        }
    }

    /// Does it hold, given each indicator's (value, level)? A comparison with an
    /// indicator that has no value does not hold.
    pub fn holds(&self, look: &impl Fn(&str) -> Option<(f64, WarnLevel)>) -> bool {
        match self {
            Expr::Cmp(c, op, o) => match (look(c), o) {
                (None, _) => false,
                (Some((v, _)), Operand::Value(x)) => op.holds(v, *x),
                (Some((_, l)), Operand::Level(x)) => op.holds(l, *x),
            },
            Expr::And(a, b) => a.holds(look) && b.holds(look),
            Expr::Or(a, b) => a.holds(look) || b.holds(look),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Op(Op),
    And,
    Or,
    Open,
    Close,
}

fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let (tok, len) = match (c, two) {
            (_, ">=") => (Tok::Op(Op::Ge), 2),
            (_, "<=") => (Tok::Op(Op::Le), 2),
            (_, "==") => (Tok::Op(Op::Eq), 2),
            (_, "!=") => (Tok::Op(Op::Ne), 2),
            ('>', _) => (Tok::Op(Op::Gt), 1),
            ('<', _) => (Tok::Op(Op::Lt), 1),
            ('(', _) => (Tok::Open, 1),
            (')', _) => (Tok::Close, 1),
            (c, _) if c.is_ascii_digit() || c == '-' || c == '.' => {
                let end = text[i + 1..]
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .map_or(b.len(), |e| i + 1 + e);
                let n: f64 = text[i..end]
                    .parse()
                    .map_err(|_| format!("{:?} is not a number", &text[i..end]))?;
                (Tok::Num(n), end - i)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                let end = text[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(b.len(), |e| i + e);
                let w = &text[i..end];
                let t = match w {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    _ => Tok::Ident(w.to_string()),
                };
                (t, end - i)
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(format!("unexpected character {ch:?} at {i}"));
            }
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        while self.peek() == Some(&Tok::And) {
            self.at += 1;
            e = Expr::And(Box::new(e), Box::new(self.atom()?));
        }
        Ok(e)
    }
    fn atom(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Open) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    other => Err(format!("expected \")\", found {other:?}")),
                }
            }
            Some(Tok::Ident(name)) => {
                let op = match self.next() {
                    Some(Tok::Op(op)) => op,
                    other => {
                        return Err(format!(
                        "expected a comparison (> >= < <= == !=) after {name:?}, found {other:?}"
                    ))
                    }
                };
                let rhs = match self.next() {
                    Some(Tok::Num(n)) => Operand::Value(n),
                    Some(Tok::Ident(w)) => match WarnLevel::ALL.iter().find(|l| l.as_str() == w) {
                        Some(l) => Operand::Level(*l),
                        None => {
                            return Err(format!(
                                "{w:?} is neither a number nor a level (normal, blue, yellow, orange, red)"
                            ))
                        }
                    },
                    other => return Err(format!("expected a number or a level, found {other:?}")),
                };
                Ok(Expr::Cmp(name, op, rhs))
            }
            other => Err(format!("expected an indicator or \"(\", found {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Pending { since: Millis },
    Firing { since: Millis, level: WarnLevel },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub rule: String,
    pub region: String,
    pub state: AlertState,
    pub value: f64,
    pub level: WarnLevel,
    /// Its firing was told (not silenced or inhibited at the time): its all-clear will be
    /// told too, whatever mutes it by then, so that nothing announced is left open.
    pub told: bool,
}

/// What the service is told (unless silenced or inhibited).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Fired {
        fingerprint: String,
        level: WarnLevel,
        value: f64,
    },
    LevelChanged {
        fingerprint: String,
        from: WarnLevel,
        to: WarnLevel,
        value: f64,
    },
    Resolved {
        fingerprint: String,
        value: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: u64,
    pub rule: String,
    /// A region code; the silence covers it and every region inside it.
    pub region: String,
    pub owner: String,
    pub reason: String,
    pub ends_at: Millis,
}

pub fn fingerprint(rule: &str, region: &str) -> String {
    format!("{rule}@{region}")
}

/// Region codes nest by prefix (district 310104 ⊃ sub-district 310104003 ⊃ …).
fn within(inner: &str, outer: &str) -> bool {
    inner.starts_with(outer)
}

#[derive(Debug, Default)]
pub struct Alerting {
    alerts: BTreeMap<String, Alert>,
    silences: Vec<Silence>,
    next_silence: u64,
}

impl Alerting {
    pub fn alerts(&self) -> impl Iterator<Item = (&String, &Alert)> {
        self.alerts.iter()
    }

    /// What `rule` sees in `region` at `now`; answers the notice to give, if any (already
    /// filtered by silences and inhibition).
    pub fn evaluate(
        &mut self,
        rules: &[AlertRule],
        rule: &AlertRule,
        region: &str,
        sample: Sample,
        now: Millis,
    ) -> Option<Notice> {
        let fp = fingerprint(&rule.code, region);
        let Sample {
            breach,
            level,
            value,
        } = sample;
        let notice = match (self.alerts.get(&fp).map(|a| a.state), breach) {
            (None, false) => None,
            (Some(_), false) => {
                let was = self.alerts.remove(&fp).expect("present");
                // Only an all-clear for a firing that was told; and it is always told.
                return match was.state {
                    AlertState::Firing { .. } if was.told => Some(Notice::Resolved {
                        fingerprint: fp.clone(),
                        value,
                    }),
                    _ => None,
                };
            }
            (None, true) => {
                let state = if rule.for_ms == 0 {
                    AlertState::Firing { since: now, level }
                } else {
                    AlertState::Pending { since: now }
                };
                self.alerts.insert(
                    fp.clone(),
                    Alert {
                        rule: rule.code.clone(),
                        region: region.to_string(),
                        state,
                        value,
                        level,
                        told: false,
                    },
                );
                matches!(state, AlertState::Firing { .. }).then(|| Notice::Fired {
                    fingerprint: fp.clone(),
                    level,
                    value,
                })
            }
            (Some(AlertState::Pending { since }), true) => {
                let a = self.alerts.get_mut(&fp).expect("present");
                a.value = value;
                if now - since >= rule.for_ms {
                    a.state = AlertState::Firing { since, level };
                    Some(Notice::Fired {
                        fingerprint: fp.clone(),
                        level,
                        value,
                    })
                } else {
                    None
                }
            }
            (Some(AlertState::Firing { since, level: from }), true) => {
                let a = self.alerts.get_mut(&fp).expect("present");
                a.value = value;
                a.state = AlertState::Firing { since, level };
                (from != level).then(|| Notice::LevelChanged {
                    fingerprint: fp.clone(),
                    from,
                    to: level,
                    value,
                })
            }
        };
        let muted =
            self.silenced(&rule.code, region, now) || self.inhibited(rules, &rule.code, region);
        let Some(a) = self.alerts.get_mut(&fp) else {
            return notice;
        };
        a.level = level;
        match notice {
            _ if muted => None,
            Some(Notice::Fired { .. }) => {
                a.told = true;
                notice
            }
            // Firing since a silence or an inhibition that has ended: now it is news.
            Some(Notice::LevelChanged { .. }) | None
                if !a.told && matches!(a.state, AlertState::Firing { .. }) =>
            {
                a.told = true;
                Some(Notice::Fired {
                    fingerprint: fp.clone(),
                    level,
                    value,
                })
            }
            other => other,
        }
    }

    /// Is there an alert (pending or firing) with this fingerprint?
    pub fn has(&self, fingerprint: &str) -> bool {
        self.alerts.contains_key(fingerprint)
    }

    /// Is a notice of `rule` in `region` silenced at `now`?
    pub fn silenced(&self, rule: &str, region: &str, now: Millis) -> bool {
        self.silences
            .iter()
            .any(|s| s.rule == rule && within(region, &s.region) && now < s.ends_at)
    }

    /// Is `rule` in `region` muted by a firing alert of a rule that inhibits it?
    pub fn inhibited(&self, rules: &[AlertRule], rule: &str, region: &str) -> bool {
        self.alerts.values().any(|a| {
            matches!(a.state, AlertState::Firing { .. })
                && within(region, &a.region)
                && rules
                    .iter()
                    .any(|r| r.code == a.rule && r.inhibits.iter().any(|x| x == rule))
        })
    }

    /// Adds a silence; answers its id. An expiry in the past or no reason is refused.
    pub fn silence(
        &mut self,
        rule: &str,
        region: &str,
        owner: &str,
        reason: &str,
        ends_at: Millis,
        now: Millis,
    ) -> Result<u64, String> {
        if ends_at <= now {
            return Err("a silence must end in the future".into());
        }
        if reason.trim().is_empty() || owner.trim().is_empty() {
            return Err("a silence names its owner and its reason".into());
        }
        self.silences.retain(|s| s.ends_at > now);
        self.next_silence += 1;
        self.silences.push(Silence {
            id: self.next_silence,
            rule: rule.to_string(),
            region: region.to_string(),
            owner: owner.to_string(),
            reason: reason.to_string(),
            ends_at,
        });
        Ok(self.next_silence)
    }

    /// Ends a silence now.
    pub fn expire(&mut self, id: u64, now: Millis) -> bool {
        match self
            .silences
            .iter_mut()
            .find(|s| s.id == id && s.ends_at > now)
        {
            Some(s) => {
                s.ends_at = now;
                true
            }
            None => false,
        }
    }

    /// The silence `id` if it is still in force.
    pub fn silence_in_force(&self, id: u64, now: Millis) -> Option<&Silence> {
        self.silences.iter().find(|s| s.id == id && s.ends_at > now)
    }

    /// Silences still in force.
    pub fn silences(&self, now: Millis) -> impl Iterator<Item = &Silence> {
        self.silences.iter().filter(move |s| s.ends_at > now)
    }

    /// Puts back an alert kept from before a restart.
    pub fn restore_alert(&mut self, fingerprint: String, alert: Alert) {
        self.alerts.insert(fingerprint, alert);
    }

    /// Puts back a silence kept from before a restart; later ids follow the largest seen
    /// (ended silences too, so that an id is never given twice).
    pub fn restore_silence(&mut self, s: Silence, now: Millis) {
        self.next_silence = self.next_silence.max(s.id);
        if s.ends_at > now {
            self.silences.push(s);
        }
    }
}

impl AlertRule {
    /// What the rule sees, given each indicator's (value, level) in one region; `None`
    /// when its first indicator has no value there.
    pub fn sample(&self, look: &impl Fn(&str) -> Option<(f64, WarnLevel)>) -> Option<Sample> {
        let first = self.expr.indicators()[0];
        let (value, own) = look(first)?;
        let breach = self.expr.holds(look);
        // A breach is at least the rule's level, and never "normal".
        let level = match self.level {
            _ if !breach => own,
            Some(l) => l.max(own),
            None => own.max(WarnLevel::Blue),
        };
        Some(Sample {
            breach,
            level,
            value,
        })
    }

    /// Does a firing alert at `level` become a case?
    pub fn opens_case(&self, level: WarnLevel) -> bool {
        self.case_levels.contains(&level)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    code: String,
    name_zh: String,
    name_en: String,
    expr: String,
    #[serde(rename = "for", default)]
    for_: Option<String>,
    level: Option<WarnLevel>,
    case_levels: Option<Vec<WarnLevel>>,
    #[serde(default)]
    category: String,
    group: Option<String>,
    /// A CAP category (Geo, Met, Safety, …) makes the rule public.
    cap_category: Option<String>,
    #[serde(default)]
    inhibits: Vec<String>,
}

/// Reads alert rules (TOML `[[rule]]` tables) against the indicator registry; every
/// problem is reported, naming the rule: expressions that do not parse, unknown indicators,
/// a colour compared with an indicator that has no thresholds, unknown categories (by
/// `known_category`), unknown inhibited rules, bad durations.
pub fn parse_alert_rules(
    text: &str,
    indicators: &[Indicator],
    known_category: &dyn Fn(&str) -> bool,
) -> Result<Vec<AlertRule>, Vec<String>> {
    let raw: RawRules =
        toml::from_str(text).map_err(|e| vec![format!("alert rules do not parse: {e}")])?;
    let mut out: Vec<AlertRule> = Vec::new();
    let mut problems = Vec::new();
    for r in &raw.rule {
        let mut bad = |m: String| problems.push(format!("alert rule {:?}: {m}", r.code));
        if out.iter().any(|x| x.code == r.code) {
            bad("the code is used twice".into());
            continue;
        }
        let expr = match Expr::parse(&r.expr) {
            Ok(e) => e,
            Err(m) => {
                bad(format!("expression {:?} does not parse: {m}", r.expr));
                continue;
            }
        };
        let mut ok = true;
        expr.walk(
            &mut |name, operand| match indicators.iter().find(|i| i.code == name) {
                None => {
                    ok = false;
                    bad(format!("unknown indicator {name:?}"))
                }
                Some(i) if i.thresholds.is_none() && matches!(operand, Operand::Level(_)) => {
                    ok = false;
                    bad(format!(
                        "indicator {name:?} has no warning levels to compare with a colour"
                    ))
                }
                Some(_) => {}
            },
        );
        let first = expr.indicators()[0];
        let first_has_levels = indicators
            .iter()
            .any(|i| i.code == first && i.thresholds.is_some());
        if ok && !first_has_levels && r.level.is_none() {
            bad(format!(
                "indicator {first:?} has no warning levels: give the rule a level"
            ));
            ok = false;
        }
        let for_ms = match r.for_.as_deref() {
            None => Some(0),
            Some(d) => crate::sensing::parse_duration(d),
        };
        let Some(for_ms) = for_ms else {
            bad(format!("for {:?} is not a duration such as \"5m\"", r.for_));
            continue;
        };
        let case_levels = r
            .case_levels
            .clone()
            .unwrap_or_else(|| vec![WarnLevel::Orange, WarnLevel::Red]);
        if !case_levels.is_empty() && !known_category(&r.category) {
            bad(format!(
                "unknown category {:?} (a rule that opens cases names their category)",
                r.category
            ));
            ok = false;
        }
        let public = match r.cap_category.as_deref() {
            None => None,
            Some(c) => match crate::cap::CATEGORIES.iter().find(|x| **x == c) {
                Some(c) => Some(*c),
                None => {
                    bad(format!(
                        "cap_category {c:?} is not one of {}",
                        crate::cap::CATEGORIES.join(", ")
                    ));
                    ok = false;
                    None
                }
            },
        };
        if !ok {
            continue;
        }
        out.push(AlertRule {
            code: r.code.clone(),
            name_zh: r.name_zh.clone(),
            name_en: r.name_en.clone(),
            expr,
            for_ms,
            level: r.level,
            case_levels,
            category: r.category.clone(),
            group: r.group.clone().unwrap_or_else(|| r.code.clone()),
            public,
            inhibits: r.inhibits.clone(),
        });
    }
    for r in &raw.rule {
        for x in &r.inhibits {
            if !raw.rule.iter().any(|o| &o.code == x) {
                problems.push(format!(
                    "alert rule {:?}: inhibits unknown rule {x:?}",
                    r.code
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
