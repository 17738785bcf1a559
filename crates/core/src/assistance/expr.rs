//! The rulebook's condition language. One condition is a line of text:
//!
//! ```text
//! any(age < 18 and registered_community != actual_community)
//! count(age >= 18 and disability_grade <= 2) >= 2
//! (sum(monthly_income) * 12 - sum(medical_oop)) / members / 12 < dibao_line
//! receives("dibao") or receives("low_income")
//! ```
//!
//! * over the household's members: `any(c)`, `all(c)`, `no(c)`, `count(c)` (a number),
//!   `sum(e)` (missing values count as nothing); inside them a person field names the
//!   member's value, outside them only household fields may be named;
//! * `age` (whole years at the evaluation date, from the person field `birth_date`),
//!   `members` (how many live in the household), a monthly field is its sum over the twelve
//!   months up to the evaluation date and `months(f)` counts the months above zero;
//!   a set field is asked `field("code")`; a code field is compared with `==`/`!=` to one
//!   of its codes in quotes; parameters of the rulebook are numbers;
//! * `and`, `or`, `not`, parentheses, `+ - * /`, `< <= > >= == !=`.
//!
//! A missing value (no source has it) makes a comparison false — `x != y` too — and a
//! missing yes/no field is "no". Every name is checked when the rulebook is read.

use super::pool::{month_of, Pool};
use super::sources::{Declarations, FieldType, Level};
use crate::time::Date;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    Any,
    All,
    No,
    Count,
    Sum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A compiled condition or expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Num(f64),
    /// A field; `member` reads the current member (person fields).
    Field {
        field: usize,
        member: bool,
    },
    MonthSum {
        field: usize,
        member: bool,
    },
    MonthCount {
        field: usize,
        member: bool,
    },
    /// The member's age from the birth-date field.
    Age(usize),
    Members,
    Has {
        field: usize,
        member: bool,
        bit: i32,
    },
    Quant(Quant, Box<Node>),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArOp, Box<Node>, Box<Node>),
    Neg(Box<Node>),
}

/// A fact read while evaluating (for explanations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// The field (`usize::MAX`: the household's members).
    pub field: usize,
    /// A person index for person fields, else the household index.
    pub entity: u32,
    /// Read as an age (the explanation shows the age, not the birth date).
    pub as_age: bool,
}

/// Collects the facts read, when on.
#[derive(Debug, Default)]
pub struct Tracer {
    pub on: bool,
    pub reads: Vec<Read>,
}

impl Tracer {
    fn read(&mut self, field: usize, entity: u32) {
        self.push(field, entity, false);
    }
    fn push(&mut self, field: usize, entity: u32, as_age: bool) {
        if self.on {
            let r = Read {
                field,
                entity,
                as_age,
            };
            if !self.reads.contains(&r) {
                self.reads.push(r);
            }
        }
    }
}

/// What an evaluation needs besides the condition.
pub struct Cx<'a> {
    pub decl: &'a Declarations,
    pub pool: &'a Pool,
    pub as_of: Date,
    pub as_of_days: i32,
    pub as_of_month: i32,
}

impl<'a> Cx<'a> {
    pub fn new(decl: &'a Declarations, pool: &'a Pool, as_of: Date) -> Cx<'a> {
        Cx {
            decl,
            pool,
            as_of,
            as_of_days: as_of.days() as i32,
            as_of_month: month_of(as_of),
        }
    }
    fn value(&self, field: usize, entity: u32) -> f64 {
        match self.pool.resolve(self.decl, field, entity) {
            Some(c) => c.value as f64,
            None => match self.decl.fields[field].ty {
                FieldType::Bool | FieldType::Set(_) => 0.0,
                _ => f64::NAN,
            },
        }
    }
    fn month_sum(&self, field: usize, entity: u32, count: bool) -> f64 {
        let ms = self.pool.months(field, entity);
        let lo = self.as_of_month - 12;
        let mut s = 0.0;
        for m in ms {
            if m.month > lo && m.month <= self.as_of_month {
                s += if count {
                    f64::from(u8::from(m.value > 0))
                } else {
                    m.value as f64
                };
            }
        }
        s
    }
}

fn truthy(x: f64) -> bool {
    x != 0.0 && !x.is_nan()
}

fn b(x: bool) -> f64 {
    if x {
        1.0
    } else {
        0.0
    }
}

/// Whole years between a birth date (days) and the evaluation date (days).
pub fn age_years(birth_days: i32, as_of_days: i32) -> i32 {
    age_at(birth_days, Date::from_days(as_of_days as i64))
}

fn age_at(birth_days: i32, a: Date) -> i32 {
    let b = Date::from_days(birth_days as i64);
    let mut y = a.year - b.year;
    if (a.month, a.day) < (b.month, b.day) {
        y -= 1;
    }
    y
}

/// Evaluates a node for a household (`member` = NONE outside a quantifier).
pub fn eval(n: &Node, cx: &Cx, hh: u32, member: u32, t: &mut Tracer) -> f64 {
    let ent = |m: bool| if m { member } else { hh };
    match n {
        Node::Num(x) => *x,
        Node::Field { field, member: m } => {
            t.read(*field, ent(*m));
            cx.value(*field, ent(*m))
        }
        Node::MonthSum { field, member: m } => {
            t.read(*field, ent(*m));
            cx.month_sum(*field, ent(*m), false)
        }
        Node::MonthCount { field, member: m } => {
            t.read(*field, ent(*m));
            cx.month_sum(*field, ent(*m), true)
        }
        Node::Age(field) => {
            t.push(*field, member, true);
            let v = cx.value(*field, member);
            if v.is_nan() {
                v
            } else {
                age_at(v as i32, cx.as_of) as f64
            }
        }
        Node::Members => {
            t.read(usize::MAX, hh);
            cx.pool.members[hh as usize].len() as f64
        }
        Node::Has {
            field,
            member: m,
            bit,
        } => {
            t.read(*field, ent(*m));
            let v = cx.value(*field, ent(*m));
            b(!v.is_nan() && (v as i64 as i32) & (1 << bit) != 0)
        }
        Node::Quant(q, body) => {
            let members = &cx.pool.members[hh as usize];
            let mut acc = 0.0;
            let mut seen = 0usize;
            // Tracing: keep the facts of the members that satisfied the condition (any,
            // count, sum), or of every member when none did (they show why not).
            let start = t.reads.len();
            let mut kept: Vec<Read> = Vec::new();
            for &m in members {
                let mark = t.reads.len();
                let v = eval(body, cx, hh, m, t);
                let keep = match q {
                    Quant::Any | Quant::Count => truthy(v),
                    Quant::Sum => !v.is_nan(),
                    Quant::All | Quant::No => true,
                };
                if t.on && keep {
                    kept.extend_from_slice(&t.reads[mark..]);
                }
                match q {
                    Quant::Any => {
                        if truthy(v) {
                            if t.on {
                                t.reads.truncate(start);
                                t.reads.extend(kept);
                            }
                            return 1.0;
                        }
                    }
                    Quant::All => {
                        if !truthy(v) && !t.on {
                            return 0.0;
                        }
                        seen += usize::from(truthy(v));
                    }
                    Quant::No => {
                        if truthy(v) && !t.on {
                            return 0.0;
                        }
                        seen += usize::from(truthy(v));
                    }
                    Quant::Count => acc += b(truthy(v)),
                    Quant::Sum => {
                        if !v.is_nan() {
                            acc += v;
                        }
                    }
                }
            }
            if t.on && !kept.is_empty() {
                t.reads.truncate(start);
                for r in kept {
                    if !t.reads.contains(&r) {
                        t.reads.push(r);
                    }
                }
            }
            match q {
                Quant::Any => 0.0,
                Quant::All => b(seen == members.len()),
                Quant::No => b(seen == 0),
                Quant::Count | Quant::Sum => acc,
            }
        }
        Node::Not(x) => b(!truthy(eval(x, cx, hh, member, t))),
        Node::And(xs) => {
            for x in xs {
                if !truthy(eval(x, cx, hh, member, t)) {
                    return 0.0;
                }
            }
            1.0
        }
        Node::Or(xs) => {
            for x in xs {
                if truthy(eval(x, cx, hh, member, t)) {
                    return 1.0;
                }
            }
            0.0
        }
        Node::Cmp(op, a, c) => {
            let (x, y) = (eval(a, cx, hh, member, t), eval(c, cx, hh, member, t));
            if x.is_nan() || y.is_nan() {
                return 0.0;
            }
            b(match op {
                CmpOp::Lt => x < y,
                CmpOp::Le => x <= y,
                CmpOp::Gt => x > y,
                CmpOp::Ge => x >= y,
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
            })
        }
        Node::Arith(op, a, c) => {
            let (x, y) = (eval(a, cx, hh, member, t), eval(c, cx, hh, member, t));
            match op {
                ArOp::Add => x + y,
                ArOp::Sub => x - y,
                ArOp::Mul => x * y,
                ArOp::Div => {
                    if y == 0.0 {
                        f64::NAN
                    } else {
                        x / y
                    }
                }
            }
        }
        Node::Neg(x) => -eval(x, cx, hh, member, t),
    }
}

// ---------------------------------------------------------------- parsing

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Id(String),
    Op(&'static str),
}

fn lex(s: &str) -> Result<Vec<(Tok, usize)>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let st = i;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.' || cs[i] == '_') {
                i += 1;
            }
            let t: String = cs[st..i].iter().filter(|c| **c != '_').collect();
            let v = t
                .parse()
                .map_err(|_| format!("column {col}: {t:?} is not a number"))?;
            out.push((Tok::Num(v), col));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let st = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push((Tok::Id(cs[st..i].iter().collect()), col));
        } else if c == '"' {
            let st = i + 1;
            i += 1;
            while i < cs.len() && cs[i] != '"' {
                i += 1;
            }
            if i == cs.len() {
                return Err(format!("column {col}: the quoted code is never closed"));
            }
            out.push((Tok::Str(cs[st..i].iter().collect()), col));
            i += 1;
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let op = ["<=", ">=", "==", "!="]
                .into_iter()
                .find(|o| *o == two)
                .or_else(|| {
                    ["(", ")", "+", "-", "*", "/", "<", ">", ","]
                        .into_iter()
                        .find(|o| o.starts_with(c))
                });
            match op {
                Some(o) => {
                    i += o.len();
                    out.push((Tok::Op(o), col));
                }
                None => return Err(format!("column {col}: unexpected character {c:?}")),
            }
        }
    }
    Ok(out)
}

/// The type of a compiled sub-expression.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Num,
    Bool,
    Code(usize),
    Tag,
    Str(String),
}

impl Ty {
    fn name(&self) -> &'static str {
        match self {
            Ty::Num => "a number",
            Ty::Bool => "a yes/no condition",
            Ty::Code(_) => "a code",
            Ty::Tag => "a tag",
            Ty::Str(_) => "a quoted code",
        }
    }
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    i: usize,
    decl: &'a Declarations,
    params: &'a BTreeMap<String, f64>,
    in_member: bool,
    end_col: usize,
}

type R<T> = Result<T, String>;

impl Parser<'_> {
    fn col(&self) -> usize {
        self.toks.get(self.i).map_or(self.end_col, |t| t.1)
    }
    fn peek_op(&self, o: &str) -> bool {
        matches!(self.toks.get(self.i), Some((Tok::Op(x), _)) if *x == o)
    }
    fn peek_kw(&self, k: &str) -> bool {
        matches!(self.toks.get(self.i), Some((Tok::Id(x), _)) if x == k)
    }
    fn expect(&mut self, o: &str) -> R<()> {
        if self.peek_op(o) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("column {}: expected {o:?}", self.col()))
        }
    }

    fn or(&mut self) -> R<(Node, Ty)> {
        let (first, ty) = self.and()?;
        if !self.peek_kw("or") {
            return Ok((first, ty));
        }
        self.want_bool(&ty)?;
        let mut xs = vec![first];
        while self.peek_kw("or") {
            self.i += 1;
            let (n, t) = self.and()?;
            self.want_bool(&t)?;
            xs.push(n);
        }
        Ok((Node::Or(xs), Ty::Bool))
    }
    fn and(&mut self) -> R<(Node, Ty)> {
        let (first, ty) = self.not()?;
        if !self.peek_kw("and") {
            return Ok((first, ty));
        }
        self.want_bool(&ty)?;
        let mut xs = vec![first];
        while self.peek_kw("and") {
            self.i += 1;
            let (n, t) = self.not()?;
            self.want_bool(&t)?;
            xs.push(n);
        }
        Ok((Node::And(xs), Ty::Bool))
    }
    fn want_bool(&self, t: &Ty) -> R<()> {
        if *t == Ty::Bool {
            Ok(())
        } else {
            Err(format!(
                "column {}: and/or/not join yes/no conditions, not {}",
                self.col(),
                t.name()
            ))
        }
    }
    fn not(&mut self) -> R<(Node, Ty)> {
        if self.peek_kw("not") {
            self.i += 1;
            let (n, t) = self.not()?;
            self.want_bool(&t)?;
            return Ok((Node::Not(Box::new(n)), Ty::Bool));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> R<(Node, Ty)> {
        let col = self.col();
        let (a, ta) = self.add()?;
        let op = match self.toks.get(self.i) {
            Some((Tok::Op(o), _)) => match *o {
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                ">=" => CmpOp::Ge,
                "==" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                _ => return Ok((a, ta)),
            },
            _ => return Ok((a, ta)),
        };
        self.i += 1;
        let (c, tc) = self.add()?;
        let eq = matches!(op, CmpOp::Eq | CmpOp::Ne);
        let resolve = |f: usize, s: &str, decl: &Declarations| -> R<Node> {
            let codes = decl.fields[f].ty.codes();
            codes
                .iter()
                .position(|x| x == s)
                .map(|i| Node::Num(i as f64))
                .ok_or_else(|| {
                    format!(
                        "column {col}: {s:?} is not a code of {:?} ({})",
                        decl.fields[f].name,
                        codes.join(", ")
                    )
                })
        };
        let (a, c) = match (&ta, &tc) {
            (Ty::Num, Ty::Num) => (a, c),
            (Ty::Code(f), Ty::Str(s)) if eq => (a, resolve(*f, s, self.decl)?),
            (Ty::Str(s), Ty::Code(f)) if eq => (resolve(*f, s, self.decl)?, c),
            (Ty::Code(f), Ty::Code(g)) if eq && f == g => (a, c),
            (Ty::Tag, Ty::Tag) | (Ty::Bool, Ty::Bool) if eq => (a, c),
            _ => {
                return Err(format!(
                    "column {col}: cannot compare {} with {}",
                    ta.name(),
                    tc.name()
                ))
            }
        };
        Ok((Node::Cmp(op, Box::new(a), Box::new(c)), Ty::Bool))
    }
    fn num(&self, t: &Ty, col: usize) -> R<()> {
        if *t == Ty::Num {
            Ok(())
        } else {
            Err(format!(
                "column {col}: arithmetic needs numbers, not {}",
                t.name()
            ))
        }
    }
    fn add(&mut self) -> R<(Node, Ty)> {
        let col = self.col();
        let (mut a, ta) = self.mul()?;
        let mut ty = ta;
        while self.peek_op("+") || self.peek_op("-") {
            let op = if self.peek_op("+") {
                ArOp::Add
            } else {
                ArOp::Sub
            };
            self.num(&ty, col)?;
            self.i += 1;
            let c2 = self.col();
            let (c, tc) = self.mul()?;
            self.num(&tc, c2)?;
            a = Node::Arith(op, Box::new(a), Box::new(c));
            ty = Ty::Num;
        }
        Ok((a, ty))
    }
    fn mul(&mut self) -> R<(Node, Ty)> {
        let col = self.col();
        let (mut a, ta) = self.unary()?;
        let mut ty = ta;
        while self.peek_op("*") || self.peek_op("/") {
            let op = if self.peek_op("*") {
                ArOp::Mul
            } else {
                ArOp::Div
            };
            self.num(&ty, col)?;
            self.i += 1;
            let c2 = self.col();
            let (c, tc) = self.unary()?;
            self.num(&tc, c2)?;
            a = Node::Arith(op, Box::new(a), Box::new(c));
            ty = Ty::Num;
        }
        Ok((a, ty))
    }
    fn unary(&mut self) -> R<(Node, Ty)> {
        if self.peek_op("-") {
            let col = self.col();
            self.i += 1;
            let (n, t) = self.unary()?;
            self.num(&t, col)?;
            return Ok((Node::Neg(Box::new(n)), Ty::Num));
        }
        self.primary()
    }
    fn field_ref(&self, name: &str, col: usize) -> R<(usize, bool)> {
        let f = self
            .decl
            .field(name)
            .ok_or_else(|| format!("column {col}: no field {name:?} is declared in the sources"))?;
        let member = self.decl.fields[f].level == Level::Person;
        if member && !self.in_member {
            return Err(format!(
                "column {col}: {name:?} is a member's field: use it inside any(…), all(…), no(…), count(…) or sum(…)"
            ));
        }
        Ok((f, member))
    }
    fn primary(&mut self) -> R<(Node, Ty)> {
        let col = self.col();
        let Some((tok, _)) = self.toks.get(self.i).cloned() else {
            return Err(format!("column {col}: the condition ends too early"));
        };
        self.i += 1;
        match tok {
            Tok::Num(x) => Ok((Node::Num(x), Ty::Num)),
            Tok::Str(s) => Ok((Node::Num(f64::NAN), Ty::Str(s))),
            Tok::Op("(") => {
                let r = self.or()?;
                self.expect(")")?;
                Ok(r)
            }
            Tok::Op(o) => Err(format!("column {col}: unexpected {o:?}")),
            Tok::Id(id) => {
                let quant = match id.as_str() {
                    "any" => Some(Quant::Any),
                    "all" => Some(Quant::All),
                    "no" => Some(Quant::No),
                    "count" => Some(Quant::Count),
                    "sum" => Some(Quant::Sum),
                    _ => None,
                };
                if let Some(q) = quant {
                    if self.in_member {
                        return Err(format!(
                            "column {col}: {id}(…) cannot be inside another member quantifier"
                        ));
                    }
                    self.expect("(")?;
                    self.in_member = true;
                    let c2 = self.col();
                    let r = self.or();
                    self.in_member = false;
                    let (body, t) = r?;
                    self.expect(")")?;
                    if q == Quant::Sum {
                        self.num(&t, c2)?;
                        return Ok((Node::Quant(q, Box::new(body)), Ty::Num));
                    }
                    self.want_bool(&t).map_err(|_| {
                        format!(
                            "column {c2}: {id}(…) needs a yes/no condition, not {}",
                            t.name()
                        )
                    })?;
                    let ty = if q == Quant::Count { Ty::Num } else { Ty::Bool };
                    return Ok((Node::Quant(q, Box::new(body)), ty));
                }
                match id.as_str() {
                    "true" => return Ok((Node::Num(1.0), Ty::Bool)),
                    "false" => return Ok((Node::Num(0.0), Ty::Bool)),
                    "members" => return Ok((Node::Members, Ty::Num)),
                    "age" => {
                        let (f, _) = self.field_ref("birth_date", col).map_err(|e| {
                            format!("{e} (age is computed from the person field \"birth_date\")")
                        })?;
                        if self.decl.fields[f].ty != FieldType::Date {
                            return Err(format!(
                                "column {col}: age needs birth_date to be a date field"
                            ));
                        }
                        return Ok((Node::Age(f), Ty::Num));
                    }
                    "months" => {
                        self.expect("(")?;
                        let c2 = self.col();
                        let name = match self.toks.get(self.i) {
                            Some((Tok::Id(n), _)) => n.clone(),
                            _ => {
                                return Err(format!("column {c2}: months(…) takes a monthly field"))
                            }
                        };
                        self.i += 1;
                        self.expect(")")?;
                        let (f, member) = self.field_ref(&name, c2)?;
                        if !self.decl.fields[f].monthly {
                            return Err(format!("column {c2}: {name:?} is not a monthly field"));
                        }
                        return Ok((Node::MonthCount { field: f, member }, Ty::Num));
                    }
                    _ => {}
                }
                if let Some(v) = self.params.get(&id) {
                    return Ok((Node::Num(*v), Ty::Num));
                }
                let (f, member) = self.field_ref(&id, col)?;
                let fd = &self.decl.fields[f];
                if let FieldType::Set(codes) = &fd.ty {
                    self.expect("(")?;
                    let c2 = self.col();
                    let code = match self.toks.get(self.i) {
                        Some((Tok::Str(s), _)) => s.clone(),
                        _ => return Err(format!("column {c2}: {id}(…) takes a quoted code")),
                    };
                    self.i += 1;
                    self.expect(")")?;
                    let bit = codes.iter().position(|c| *c == code).ok_or_else(|| {
                        format!(
                            "column {c2}: {code:?} is not a code of {id:?} ({})",
                            codes.join(", ")
                        )
                    })? as i32;
                    return Ok((
                        Node::Has {
                            field: f,
                            member,
                            bit,
                        },
                        Ty::Bool,
                    ));
                }
                if fd.monthly {
                    return Ok((Node::MonthSum { field: f, member }, Ty::Num));
                }
                let ty = match &fd.ty {
                    FieldType::Int | FieldType::Date => Ty::Num,
                    FieldType::Bool => Ty::Bool,
                    FieldType::Code(_) => Ty::Code(f),
                    FieldType::Tag => Ty::Tag,
                    FieldType::Set(_) => unreachable!(),
                };
                Ok((Node::Field { field: f, member }, ty))
            }
        }
    }
}

/// Compiles one condition (it must be yes/no). Errors name the column.
pub fn compile(
    text: &str,
    decl: &Declarations,
    params: &BTreeMap<String, f64>,
) -> Result<Node, String> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        i: 0,
        decl,
        params,
        in_member: false,
        end_col: text.chars().count() + 1,
    };
    let (n, t) = p.or()?;
    if p.i < p.toks.len() {
        return Err(format!(
            "column {}: unexpected text after the condition",
            p.col()
        ));
    }
    if t != Ty::Bool {
        return Err(format!("the condition is {}, not yes/no", t.name()));
    }
    Ok(n)
}
