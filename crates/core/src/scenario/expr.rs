//! The condition language of scenario packs: a small typed expression language parsed by
//! recursive descent (in the style of `alerting.rs`) and evaluated as a pure function over
//! a [`Facts`] trait that the runtime implements.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | compare
//! compare := product (("<"|"<="|">"|">="|"=="|"!=") product)? ("for" DURATION)?
//!          | term "reaches" (LEVEL | NUMBER) "within" DURATION
//! product := term (("*"|"/") term)*
//! term    := NUMBER | "STRING" | true | false | LEVEL | "(" expr ")"
//!          | METRIC | DATASET "." COLUMN
//!          | (sum|avg|min|max|count|rate) "(" METRIC "," DURATION ")"
//!          | (count|rate) "(" cases "(" CATEGORY ("," CATEGORY)* ")" "," DURATION ("," same SCOPE)? ")"
//!          | distinct "(" DATASET "." COLUMN "," DURATION ("," same SCOPE)? ")"
//!          | level "(" INDICATOR ")" | trend "(" METRIC "," DURATION ")" | inside "(" FENCE ")"
//! ```
//!
//! Types are number, bool, level and string; comparing two different types, ordering
//! bools or strings, or combining non-bools with `and`/`or`/`not` is refused at parse time,
//! every problem with its byte offset inside the condition text.

use crate::indicators::WarnLevel;
use crate::time::Millis;
use std::collections::BTreeMap;

/// The type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Number,
    Bool,
    Level,
    Str,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Number => "number",
            Type::Bool => "bool",
            Type::Level => "level",
            Type::Str => "string",
        }
    }
    pub fn parse(s: &str) -> Option<Type> {
        [Type::Number, Type::Bool, Type::Level, Type::Str]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A value of the language.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Bool(bool),
    Level(WarnLevel),
    Str(String),
}

/// A dataset row as the runtime hands it over: column → value.
pub type Row = BTreeMap<String, Value>;

/// Aggregates over a sliding window of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    /// Increase per hour (for counters).
    Rate,
}

impl Agg {
    fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "count" => Agg::Count,
            "rate" => Agg::Rate,
            _ => return None,
        })
    }
}

/// Where cases or rows are counted, relative to the event being judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole district.
    Anywhere,
    SameAddress,
    SameBuilding,
    /// The same grid (网格).
    SameArea,
}

/// Comparison operators: the alert rules' own ([`crate::alerting::Op`]).
pub use crate::alerting::Op;

/// What `trend(...) reaches X within D` aims at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    Level(WarnLevel),
    Value(f64),
}

/// A parsed, type-checked expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    /// The latest value of a metric (or indicator) for the event judged.
    Metric(String),
    /// A column of the dataset row joined to the event by the dataset's key.
    Column(String, String),
    Window(Agg, String, Millis),
    Cases {
        agg: Agg,
        categories: Vec<String>,
        window: Millis,
        scope: Scope,
    },
    Distinct {
        dataset: String,
        column: String,
        window: Millis,
        scope: Scope,
    },
    Level(String),
    /// Slope per hour by least squares.
    Trend(String, Millis),
    Reaches {
        metric: String,
        window: Millis,
        target: Target,
        within: Millis,
    },
    Inside(String),
    Cmp(Box<Expr>, Op, Box<Expr>),
    /// Numbers multiplied (`true`) or divided (`false`).
    Arith(Box<Expr>, bool, Box<Expr>),
    /// Held continuously for a duration; `id` numbers the `for` clauses of a condition.
    For(Box<Expr>, Millis, usize),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

/// A parse or type error at a byte offset inside the condition text.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

/// What a condition may refer to, known when it is parsed: dataset columns and their
/// types, and fence names.
#[derive(Debug, Clone, Default)]
pub struct Scopes {
    pub datasets: BTreeMap<String, BTreeMap<String, Type>>,
    pub fences: Vec<String>,
}

/// What the runtime knows when a condition is judged for one event (a reading, an alarm,
/// a row, a case, a tick). Every method answers `None` when it does not know; a
/// comparison with an unknown side does not hold.
pub trait Facts {
    /// An aggregate of `metric` over the last `window` for the event's device or place;
    /// `None` when the window is not covered by data.
    fn window(&self, metric: &str, window: Millis, agg: Agg) -> Option<f64>;
    /// The latest value of a metric or indicator.
    fn latest(&self, metric: &str) -> Option<f64>;
    /// The points of a metric over the last `window` (time, value), oldest first.
    fn series(&self, metric: &str, window: Millis) -> Vec<(Millis, f64)>;
    /// The row of `dataset` joined to the event by the dataset's key column.
    fn row(&self, dataset: &str) -> Option<&Row>;
    /// Cases of these categories opened in the last `window` within `scope`.
    fn case_count(&self, categories: &[String], window: Millis, scope: Scope) -> u64;
    /// Distinct values of a dataset column seen in the last `window` within `scope`.
    fn distinct(&self, dataset: &str, column: &str, window: Millis, scope: Scope) -> u64;
    /// An indicator's current level.
    fn level(&self, indicator: &str) -> Option<WarnLevel>;
    /// The value at which an indicator enters `level`.
    fn threshold(&self, indicator: &str, level: WarnLevel) -> Option<f64>;
    /// Where the event is (lon, lat).
    fn position(&self) -> Option<(f64, f64)>;
    /// A fence's ring by name.
    fn fence(&self, name: &str) -> Option<&[[f64; 2]]>;
}

/// When each `for` clause of a condition started holding, per event key; kept by the
/// runtime between evaluations so that evaluation stays a pure function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Held {
    /// (clause id, since when): a few clauses at most, kept without allocating while
    /// none holds.
    since: Vec<(usize, Millis)>,
}

impl Held {
    /// Is a `for` clause holding but not yet long enough? (Time alone may then make the
    /// condition hold: the runtime judges such keys again as time passes.)
    pub fn pending(&self) -> bool {
        !self.since.is_empty()
    }
}

impl Expr {
    /// Parses and type-checks a condition, which must be a bool.
    pub fn parse(text: &str, scopes: &Scopes) -> Result<Expr, ExprError> {
        let toks = tokens(text)?;
        let mut p = Parser {
            toks,
            at: 0,
            end: text.len(),
            scopes,
            fors: 0,
        };
        let (e, t) = p.or()?;
        if let Some(tok) = p.toks.get(p.at) {
            return Err(p.err_at(
                tok.at,
                format!("unexpected {} after a complete condition", tok.t.show()),
            ));
        }
        if t != Type::Bool {
            return Err(p.err_at(
                0,
                format!("a condition must be a bool, this is a {}", t.as_str()),
            ));
        }
        Ok(e)
    }

    /// Every metric named (bare, in windows and trends), in order of appearance.
    pub fn metrics(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            let m = match e {
                Expr::Metric(m) | Expr::Window(_, m, _) | Expr::Trend(m, _) => m,
                Expr::Reaches { metric, .. } => metric,
                _ => return,
            };
            if !out.contains(&m.as_str()) {
                out.push(m.as_str());
            }
        });
        out
    }

    /// Every (metric, window) the condition reads back in time — aggregates, trends and
    /// `reaches` — so that the runtime keeps that much of each series and no more.
    pub fn windows(&self) -> Vec<(&str, Millis)> {
        let mut out = Vec::new();
        self.walk(&mut |e| match e {
            Expr::Window(_, m, w) | Expr::Trend(m, w) => out.push((m.as_str(), *w)),
            Expr::Reaches { metric, window, .. } => out.push((metric.as_str(), *window)),
            _ => {}
        });
        out
    }

    /// The longest window over which cases are counted (0 when none are).
    pub fn case_window(&self) -> Millis {
        let mut w = 0;
        self.walk(&mut |e| {
            if let Expr::Cases { window, .. } = e {
                w = w.max(*window)
            }
        });
        w
    }

    /// Does the expression hold a `for` clause?
    pub fn has_for(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Expr::For(..)));
        found
    }

    /// Does the condition read nothing but latest values, joined rows and fences — no
    /// windows, trends, case or distinct counts, no indicator levels? Then judging it
    /// again on unchanged values gives the same answer (but for `for` clauses waiting).
    pub fn is_instant(&self) -> bool {
        let mut instant = true;
        self.walk(&mut |e| {
            instant &= !matches!(
                e,
                Expr::Window(..)
                    | Expr::Cases { .. }
                    | Expr::Distinct { .. }
                    | Expr::Level(_)
                    | Expr::Trend(..)
                    | Expr::Reaches { .. }
            )
        });
        instant
    }

    /// Every indicator named by `level(...)`.
    pub fn indicators(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Level(i) = e {
                out.push(i.as_str())
            }
        });
        out
    }

    /// Every case category named by `cases(...)`.
    pub fn categories(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Cases { categories, .. } = e {
                out.extend(categories.iter().map(|c| c.as_str()))
            }
        });
        out
    }

    /// Calls `f` on this expression and every sub-expression, parents first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Cmp(a, _, b) | Expr::Arith(a, _, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::For(a, _, _) | Expr::Not(a) => a.walk(f),
            _ => {}
        }
    }

    /// Evaluates at `now`; `held` remembers when `for` clauses began holding. Unknown
    /// facts give `None` (a comparison with them is false).
    pub fn eval(&self, facts: &dyn Facts, now: Millis, held: &mut Held) -> Option<Value> {
        Some(match self {
            Expr::Lit(v) => v.clone(),
            Expr::Metric(m) => Value::Number(facts.latest(m)?),
            Expr::Column(d, c) => facts.row(d)?.get(c)?.clone(),
            Expr::Window(agg, m, w) => Value::Number(facts.window(m, *w, *agg)?),
            Expr::Cases {
                agg,
                categories,
                window,
                scope,
            } => {
                let n = facts.case_count(categories, *window, *scope) as f64;
                Value::Number(match agg {
                    Agg::Rate => n * 3_600_000.0 / (*window as f64),
                    _ => n,
                })
            }
            Expr::Distinct {
                dataset,
                column,
                window,
                scope,
            } => Value::Number(facts.distinct(dataset, column, *window, *scope) as f64),
            Expr::Level(i) => Value::Level(facts.level(i)?),
            Expr::Trend(m, w) => Value::Number(slope_per_hour(&facts.series(m, *w))?),
            Expr::Reaches {
                metric,
                window,
                target,
                within,
            } => {
                let s = facts.series(metric, *window);
                let slope = slope_per_hour(&s)?;
                let last = s.last()?.1;
                let goal = match target {
                    Target::Value(v) => *v,
                    Target::Level(l) => facts.threshold(metric, *l)?,
                };
                let projected = last + slope * (*within as f64) / 3_600_000.0;
                Value::Bool(last >= goal || projected >= goal)
            }
            Expr::Inside(f) => {
                let (p, ring) = (facts.position()?, facts.fence(f)?);
                Value::Bool(point_in_ring(p, ring))
            }
            Expr::Cmp(a, op, b) => {
                let (a, b) = (a.eval(facts, now, held), b.eval(facts, now, held));
                Value::Bool(match (a, b) {
                    (Some(Value::Number(x)), Some(Value::Number(y))) => op.holds(x, y),
                    (Some(Value::Level(x)), Some(Value::Level(y))) => op.holds(x, y),
                    (Some(Value::Bool(x)), Some(Value::Bool(y))) => op.holds(x, y),
                    (Some(Value::Str(x)), Some(Value::Str(y))) => op.holds(x, y),
                    _ => false,
                })
            }
            Expr::Arith(a, mul, b) => {
                match (a.eval(facts, now, held)?, b.eval(facts, now, held)?) {
                    (Value::Number(x), Value::Number(y)) if *mul => Value::Number(x * y),
                    (Value::Number(x), Value::Number(y)) if y != 0.0 => Value::Number(x / y),
                    _ => return None,
                }
            }
            Expr::For(a, d, id) => {
                let now_holds = a.eval(facts, now, held) == Some(Value::Bool(true));
                if !now_holds {
                    held.since.retain(|(k, _)| k != id);
                    Value::Bool(false)
                } else {
                    let since = match held.since.iter().find(|(k, _)| k == id) {
                        Some((_, t)) => *t,
                        None => {
                            held.since.push((*id, now));
                            now
                        }
                    };
                    Value::Bool(now - since >= *d)
                }
            }
            Expr::And(a, b) => {
                let x = a.eval(facts, now, held) == Some(Value::Bool(true));
                // The right side is evaluated even when the left decides, if it holds a
                // `for` clause: its memory must follow every judgement.
                if !x && !b.has_for() {
                    return Some(Value::Bool(false));
                }
                let y = b.eval(facts, now, held) == Some(Value::Bool(true));
                Value::Bool(x && y)
            }
            Expr::Or(a, b) => {
                let x = a.eval(facts, now, held) == Some(Value::Bool(true));
                if x && !b.has_for() {
                    return Some(Value::Bool(true));
                }
                let y = b.eval(facts, now, held) == Some(Value::Bool(true));
                Value::Bool(x || y)
            }
            Expr::Not(a) => Value::Bool(a.eval(facts, now, held) != Some(Value::Bool(true))),
        })
    }

    /// Does the condition hold at `now`?
    pub fn holds(&self, facts: &dyn Facts, now: Millis, held: &mut Held) -> bool {
        self.eval(facts, now, held) == Some(Value::Bool(true))
    }
}

/// Least-squares slope of the points, per hour; `None` with fewer than two distinct times.
pub fn slope_per_hour(points: &[(Millis, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let t0 = points[0].0;
    let xs: Vec<f64> = points
        .iter()
        .map(|(t, _)| (t - t0) as f64 / 3_600_000.0)
        .collect();
    let mx = xs.iter().sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = xs
        .iter()
        .zip(points)
        .map(|(x, p)| (x - mx) * (p.1 - my))
        .sum();
    Some(sxy / sxx)
}

/// Ray casting; the ring is closed (first point repeated last), points are [lon, lat].
pub fn point_in_ring((x, y): (f64, f64), ring: &[[f64; 2]]) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ([x1, y1], [x2, y2]) = (w[0], w[1]);
        if (y1 > y) != (y2 > y) && x < (x2 - x1) * (y - y1) / (y2 - y1) + x1 {
            inside = !inside;
        }
    }
    inside
}

#[derive(Debug, Clone, PartialEq)]
enum T {
    Ident(String),
    Num(f64),
    Str(String),
    Dur(Millis),
    Op(Op),
    Open,
    Close,
    Comma,
    Dot,
    Mul,
    Div,
}

impl T {
    fn show(&self) -> String {
        match self {
            T::Ident(w) => format!("{w:?}"),
            T::Num(n) => format!("number {n}"),
            T::Str(s) => format!("string {s:?}"),
            T::Dur(_) => "a duration".into(),
            T::Op(_) => "a comparison".into(),
            T::Open => "\"(\"".into(),
            T::Close => "\")\"".into(),
            T::Comma => "\",\"".into(),
            T::Dot => "\".\"".into(),
            T::Mul => "\"*\"".into(),
            T::Div => "\"/\"".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Tok {
    t: T,
    at: usize,
}

fn tokens(text: &str) -> Result<Vec<Tok>, ExprError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset, message: String| ExprError { offset, message };
    while i < b.len() {
        let c = b[i] as char;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let (t, len) = match (c, two) {
            (_, ">=") => (T::Op(Op::Ge), 2),
            (_, "<=") => (T::Op(Op::Le), 2),
            (_, "==") => (T::Op(Op::Eq), 2),
            (_, "!=") => (T::Op(Op::Ne), 2),
            ('>', _) => (T::Op(Op::Gt), 1),
            ('<', _) => (T::Op(Op::Lt), 1),
            ('=', _) => (T::Op(Op::Eq), 1),
            ('(', _) => (T::Open, 1),
            (')', _) => (T::Close, 1),
            (',', _) => (T::Comma, 1),
            ('.', _) => (T::Dot, 1),
            ('*', _) => (T::Mul, 1),
            ('/', _) => (T::Div, 1),
            ('"', _) => {
                let end = text[i + 1..]
                    .find('"')
                    .ok_or_else(|| err(i, "a string is not closed".into()))?;
                (T::Str(text[i + 1..i + 1 + end].to_string()), end + 2)
            }
            (c, _) if c.is_ascii_digit() || c == '-' => {
                let end = text[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                    .map_or(b.len(), |e| i + 1 + e);
                let w = &text[i..end];
                let t = match w.parse::<f64>() {
                    Ok(n) => T::Num(n),
                    Err(_) => match crate::sensing::parse_duration(w) {
                        Some(d) if d > 0 => T::Dur(d),
                        _ => {
                            return Err(err(
                                i,
                                format!("{w:?} is neither a number nor a duration such as \"10m\""),
                            ))
                        }
                    },
                };
                (t, end - i)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                let end = text[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(b.len(), |e| i + e);
                (T::Ident(text[i..end].to_string()), end - i)
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(err(i, format!("unexpected character {ch:?}")));
            }
        };
        out.push(Tok { t, at: i });
        i += len;
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    end: usize,
    scopes: &'a Scopes,
    fors: usize,
}

type R = Result<(Expr, Type), ExprError>;

fn level_named(w: &str) -> Option<WarnLevel> {
    WarnLevel::ALL.into_iter().find(|l| l.as_str() == w)
}

impl Parser<'_> {
    fn err_at(&self, offset: usize, message: String) -> ExprError {
        ExprError { offset, message }
    }
    /// Where the next token is (the end of the text when there is none).
    fn here(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |t| t.at)
    }
    fn peek(&self) -> Option<&T> {
        self.toks.get(self.at).map(|t| &t.t)
    }
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(T::Ident(x)) if x == w)
    }
    fn next(&mut self) -> Option<T> {
        let t = self.toks.get(self.at).map(|t| t.t.clone());
        self.at += 1;
        t
    }
    fn found(&self) -> String {
        self.peek().map_or("the end".into(), |t| t.show())
    }
    fn expect(&mut self, want: T, what: &str) -> Result<(), ExprError> {
        if self.peek() == Some(&want) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err_at(
                self.here(),
                format!("expected {what}, found {}", self.found()),
            ))
        }
    }
    fn ident(&mut self, what: &str) -> Result<String, ExprError> {
        match self.peek() {
            Some(T::Ident(w)) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => Err(self.err_at(
                self.here(),
                format!("expected {what}, found {}", self.found()),
            )),
        }
    }
    fn duration(&mut self) -> Result<Millis, ExprError> {
        match self.peek() {
            Some(T::Dur(d)) => {
                let d = *d;
                self.at += 1;
                Ok(d)
            }
            _ => Err(self.err_at(
                self.here(),
                format!(
                    "expected a duration such as \"10m\", found {}",
                    self.found()
                ),
            )),
        }
    }
    fn bool_side(&self, at: usize, t: Type, word: &str) -> Result<(), ExprError> {
        if t == Type::Bool {
            Ok(())
        } else {
            Err(self.err_at(at, format!("{word} needs a bool, this is a {}", t.as_str())))
        }
    }
    fn or(&mut self) -> R {
        let at = self.here();
        let (mut e, t) = self.and()?;
        while self.peek_word("or") {
            self.bool_side(at, t, "\"or\"")?;
            self.at += 1;
            let at2 = self.here();
            let (r, t2) = self.and()?;
            self.bool_side(at2, t2, "\"or\"")?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok((e, t))
    }
    fn and(&mut self) -> R {
        let at = self.here();
        let (mut e, t) = self.unary()?;
        while self.peek_word("and") {
            self.bool_side(at, t, "\"and\"")?;
            self.at += 1;
            let at2 = self.here();
            let (r, t2) = self.unary()?;
            self.bool_side(at2, t2, "\"and\"")?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
        Ok((e, t))
    }
    fn unary(&mut self) -> R {
        if self.peek_word("not") {
            self.at += 1;
            let at = self.here();
            let (e, t) = self.unary()?;
            self.bool_side(at, t, "\"not\"")?;
            return Ok((Expr::Not(Box::new(e)), Type::Bool));
        }
        self.compare()
    }
    fn compare(&mut self) -> R {
        let at = self.here();
        let (mut e, mut t) = self.product()?;
        if let Some(T::Op(op)) = self.peek().cloned() {
            let op_at = self.here();
            self.at += 1;
            let (r, rt) = self.product()?;
            if t != rt {
                return Err(self.err_at(
                    op_at,
                    format!("cannot compare a {} with a {}", t.as_str(), rt.as_str()),
                ));
            }
            if op.orders() && matches!(t, Type::Bool | Type::Str) {
                return Err(self.err_at(
                    op_at,
                    format!("a {} can only be compared with == or !=", t.as_str()),
                ));
            }
            e = Expr::Cmp(Box::new(e), op, Box::new(r));
            t = Type::Bool;
        } else if self.peek_word("reaches") {
            let Expr::Trend(metric, window) = e else {
                return Err(self.err_at(self.here(), "\"reaches\" follows a trend(...)".into()));
            };
            self.at += 1;
            let target = match self.next() {
                Some(T::Num(n)) => Target::Value(n),
                Some(T::Ident(w)) if level_named(&w).is_some() => {
                    Target::Level(level_named(&w).expect("checked"))
                }
                _ => {
                    self.at -= 1;
                    return Err(self.err_at(
                        self.here(),
                        format!(
                            "expected a level or a number after \"reaches\", found {}",
                            self.found()
                        ),
                    ));
                }
            };
            if !self.peek_word("within") {
                return Err(self.err_at(
                    self.here(),
                    format!("expected \"within\", found {}", self.found()),
                ));
            }
            self.at += 1;
            let within = self.duration()?;
            e = Expr::Reaches {
                metric,
                window,
                target,
                within,
            };
            t = Type::Bool;
        }
        if self.peek_word("for") {
            self.bool_side(at, t, "\"for\"")?;
            self.at += 1;
            let d = self.duration()?;
            self.fors += 1;
            e = Expr::For(Box::new(e), d, self.fors);
        }
        Ok((e, t))
    }
    fn product(&mut self) -> R {
        let at = self.here();
        let (mut e, t) = self.term()?;
        while let Some(T::Mul | T::Div) = self.peek() {
            let mul = self.peek() == Some(&T::Mul);
            if t != Type::Number {
                return Err(self.err_at(
                    at,
                    format!("only numbers multiply or divide, this is a {}", t.as_str()),
                ));
            }
            self.at += 1;
            let at2 = self.here();
            let (r, t2) = self.term()?;
            if t2 != Type::Number {
                return Err(self.err_at(
                    at2,
                    format!("only numbers multiply or divide, this is a {}", t2.as_str()),
                ));
            }
            e = Expr::Arith(Box::new(e), mul, Box::new(r));
        }
        Ok((e, t))
    }
    fn scope(&mut self) -> Result<Scope, ExprError> {
        if self.peek() != Some(&T::Comma) {
            return Ok(Scope::Anywhere);
        }
        self.at += 1;
        if !self.peek_word("same") {
            return Err(self.err_at(
                self.here(),
                format!(
                    "expected \"same address|building|area\", found {}",
                    self.found()
                ),
            ));
        }
        self.at += 1;
        let at = self.here();
        match self.ident("address, building or area")?.as_str() {
            "address" => Ok(Scope::SameAddress),
            "building" => Ok(Scope::SameBuilding),
            "area" => Ok(Scope::SameArea),
            other => Err(self.err_at(at, format!("{other:?} is not address, building or area"))),
        }
    }
    fn column(&mut self, dataset: String, at: usize) -> Result<(String, Type), ExprError> {
        self.expect(T::Dot, "\".\"")?;
        let col_at = self.here();
        let column = self.ident("a column")?;
        let Some(cols) = self.scopes.datasets.get(&dataset) else {
            return Err(self.err_at(
                at,
                format!("dataset {dataset:?} is not among the pack's needs"),
            ));
        };
        match cols.get(&column) {
            Some(t) => Ok((column, *t)),
            None => Err(self.err_at(
                col_at,
                format!("dataset {dataset:?} has no column {column:?} in the pack's needs"),
            )),
        }
    }
    fn term(&mut self) -> R {
        let at = self.here();
        let Some(tok) = self.next() else {
            return Err(self.err_at(at, "expected a value, found the end".into()));
        };
        match tok {
            T::Num(n) => Ok((Expr::Lit(Value::Number(n)), Type::Number)),
            T::Str(s) => Ok((Expr::Lit(Value::Str(s)), Type::Str)),
            T::Open => {
                let r = self.or()?;
                self.expect(T::Close, "\")\"")?;
                Ok(r)
            }
            T::Ident(w) => self.word(w, at),
            other => Err(self.err_at(at, format!("expected a value, found {}", other.show()))),
        }
    }
    fn word(&mut self, w: String, at: usize) -> R {
        if w == "true" || w == "false" {
            return Ok((Expr::Lit(Value::Bool(w == "true")), Type::Bool));
        }
        if let Some(l) = level_named(&w) {
            return Ok((Expr::Lit(Value::Level(l)), Type::Level));
        }
        if self.peek() == Some(&T::Dot) {
            let (c, t) = self.column(w.clone(), at)?;
            return Ok((Expr::Column(w, c), t));
        }
        if self.peek() != Some(&T::Open) {
            if ["and", "or", "not", "for", "reaches", "within", "same"].contains(&w.as_str()) {
                return Err(self.err_at(at, format!("expected a value, found {w:?}")));
            }
            return Ok((Expr::Metric(w), Type::Number));
        }
        self.at += 1;
        let out = match w.as_str() {
            "level" => (Expr::Level(self.ident("an indicator")?), Type::Level),
            "inside" => {
                let f_at = self.here();
                let f = self.ident("a fence")?;
                if !self.scopes.fences.contains(&f) {
                    return Err(self.err_at(f_at, format!("no fence {f:?} in the pack")));
                }
                (Expr::Inside(f), Type::Bool)
            }
            "trend" => {
                let m = self.ident("a metric")?;
                self.expect(T::Comma, "\",\"")?;
                (Expr::Trend(m, self.duration()?), Type::Number)
            }
            "distinct" => {
                let d_at = self.here();
                let d = self.ident("a dataset")?;
                let (c, _) = self.column(d.clone(), d_at)?;
                self.expect(T::Comma, "\",\"")?;
                let window = self.duration()?;
                let scope = self.scope()?;
                (
                    Expr::Distinct {
                        dataset: d,
                        column: c,
                        window,
                        scope,
                    },
                    Type::Number,
                )
            }
            f => {
                let Some(agg) = Agg::parse(f) else {
                    return Err(self.err_at(
                        at,
                        format!("unknown function {f:?} (sum, avg, min, max, count, rate, distinct, level, trend, inside)"),
                    ));
                };
                if self.peek_word("cases") {
                    if !matches!(agg, Agg::Count | Agg::Rate) {
                        return Err(self.err_at(
                            self.here(),
                            format!("cases can be counted (count, rate), not {f}"),
                        ));
                    }
                    self.at += 1;
                    self.expect(T::Open, "\"(\"")?;
                    if self.peek_word("category") {
                        self.at += 1;
                        self.expect(T::Op(Op::Eq), "\"=\"")?;
                    }
                    let mut categories = vec![self.ident("a category")?];
                    while self.peek() == Some(&T::Comma) {
                        self.at += 1;
                        categories.push(self.ident("a category")?);
                    }
                    self.expect(T::Close, "\")\"")?;
                    self.expect(T::Comma, "\",\"")?;
                    let window = self.duration()?;
                    let scope = self.scope()?;
                    (
                        Expr::Cases {
                            agg,
                            categories,
                            window,
                            scope,
                        },
                        Type::Number,
                    )
                } else {
                    let m = self.ident("a metric or cases(...)")?;
                    self.expect(T::Comma, "\",\"")?;
                    (Expr::Window(agg, m, self.duration()?), Type::Number)
                }
            }
        };
        self.expect(T::Close, "\")\"")?;
        Ok(out)
    }
}
