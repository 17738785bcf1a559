//! The synthetic district (no real persons): households and residents across the given
//! communities, every source file of the pool as CSV, and the planted ground truth.
//!
//! Deterministic for a seed. Names are a surname, 「某」 and one character; ID numbers
//! have the province code 99 (none exists) with a valid check digit; household ids start
//! `XH`; addresses are on 「模拟路」. Rates are plausible for Xuhui (about 1.1 million
//! residents in 450,000 households; about 8,700 低保 recipients).
//!
//! Each household is drawn with its *true* state; the sources record it, except where the
//! generator deliberately lets them differ (informal income no source sees; medical
//! spending paid outside the insurance; a stale unemployment registration of someone now
//! contributing; a lone-elder roll naming an old community). The truth of each policy is
//! computed from the true state by [`qualifies`], written here apart from the rulebook, so
//! precision and recall measure the rulebook and the fusion against what a home visit
//! would find. In the background every household that qualifies already receives the
//! benefit; the planted households (never applied) are the silent minority to find, some
//! of them hard (人户分离; parents' disability in one source, the child in another; poverty
//! visible only from medical spending against income), and the decoys look close but do
//! not qualify.

use super::expr::age_years;
use super::pool::month_of;
use crate::rng::Rng;
use crate::time::Date;
use std::collections::HashMap;
use std::fmt::Write;

/// A community of the territory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    pub code: String,
    pub subdistrict: String,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub households: usize,
    pub seed: u64,
    pub as_of: Date,
}

impl Spec {
    /// The Xuhui-sized district.
    pub fn xuhui() -> Spec {
        Spec {
            households: 450_000,
            seed: 15,
            as_of: Date {
                year: 2026,
                month: 11,
                day: 30,
            },
        }
    }
}

/// The policies the generator knows, in the rulebook's order (codes).
pub const POLICIES: [&str; 6] = [
    "child_allowance",
    "low_income",
    "spending_poverty",
    "medical_aid",
    "graduate_jobs",
    "elder_care",
];

const BENEFITS: [&str; 8] = [
    "dibao",
    "low_income",
    "tekun",
    "child_allowance",
    "spending_poverty",
    "medical_aid",
    "graduate_jobs",
    "elder_care",
];
const DIBAO: u32 = 1;
const LOW: u32 = 2;
const TEKUN: u32 = 4;
const CHILD: u32 = 8;
const SPENDING: u32 = 16;
const MEDICAL: u32 = 32;
const GRADUATE: u32 = 64;
const ELDER: u32 = 128;
/// The benefit bit of each policy (POLICIES order).
const POLICY_BENEFIT: [u32; 6] = [CHILD, LOW, SPENDING, MEDICAL, GRADUATE, ELDER];

const DIBAO_LINE: i64 = 1510;
const LOW_LINE: i64 = 3020;
const OOP_HIGH: i64 = 10_000;

/// A household that qualifies for a policy and does not receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRow {
    pub household: String,
    pub policy: &'static str,
    /// The case this household was planted for ("" when it qualifies without being
    /// planted for this policy).
    pub planted: &'static str,
}

/// A household planted to look close to a policy without qualifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoy {
    pub household: String,
    pub policy: &'static str,
    pub why: &'static str,
}

/// The generated district.
#[derive(Debug, Clone)]
pub struct District {
    pub as_of: Date,
    /// (source name, CSV text) in the declaration's order, the membership source first.
    pub files: Vec<(&'static str, String)>,
    pub truth: Vec<TruthRow>,
    pub decoys: Vec<Decoy>,
    pub residents: usize,
    pub households: usize,
    pub dibao_persons: usize,
    /// Every resident's raw id and household id (for generating changes).
    pub persons: Vec<(String, String)>,
    pub household_ids: Vec<String>,
}

impl District {
    pub fn rows(&self) -> usize {
        self.files
            .iter()
            .map(|(_, t)| t.bytes().filter(|b| *b == b'\n').count().saturating_sub(1))
            .sum()
    }
    pub fn file(&self, source: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, t)| t.as_str())
    }
}

const SOURCES: [(&str, &str); 11] = [
    ("population", "person_id,household_id,name,sex,birth_date,relation,registered_community,actual_community,address"),
    ("assistance", "household_id,benefit,since"),
    ("disability", "person_id,grade,kind,certified_on"),
    ("employment", "person_id,status,monthly_income,since"),
    ("unemployment", "person_id,status,registered_on"),
    ("students", "person_id,school,graduating"),
    ("medical", "person_id,month,out_of_pocket"),
    ("chronic", "person_id,illness,diagnosed_on"),
    ("corrections", "person_id,active,since"),
    ("utilities", "household_id,month,arrears"),
    ("lone_elder", "person_id,community,lives_alone,water_alert,flagged_on"),
];

const RELATIONS: [&str; 6] = ["head", "spouse", "child", "parent", "grandchild", "other"];
const SCHOOLS: [&str; 5] = ["primary", "junior", "senior", "vocational", "college"];
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";
const GIVEN: &str = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯健俊帆帅旭宁琳欣怡佳雪晨阳";
const DISABILITY_KINDS: [&str; 5] = ["肢体", "视力", "听力", "智力", "精神"];

#[derive(Debug, Clone, Default)]
struct P {
    age: i32,
    sex: u8,
    rel: u8,
    reg: usize,
    act: usize,
    disability: u8,
    /// Recorded employment: 0 employed, 1 retired, 2 unemployed; None: no record.
    emp: Option<u8>,
    /// The true status when it differs from the record (a stale unemployment registration).
    unemp_reg: bool,
    income: i32,
    informal: i32,
    school: Option<u8>,
    graduating: bool,
    illness: u8,
    oop: [i32; 12],
    oop_hidden: i32,
    corrections: bool,
    lone: Option<(bool, bool)>,
    lone_comm: Option<usize>,
}

impl P {
    fn new(age: i32, rel: u8, comm: usize, rng: &mut Rng) -> P {
        P {
            age,
            sex: rng.below(2) as u8,
            rel,
            reg: comm,
            act: comm,
            ..Default::default()
        }
    }
    fn true_income(&self) -> i64 {
        self.income as i64 + self.informal as i64
    }
    fn true_oop(&self) -> i64 {
        self.oop.iter().map(|x| *x as i64).sum::<i64>() + self.oop_hidden as i64
    }
    fn employed(&self) -> bool {
        self.emp == Some(0)
    }
}

#[derive(Debug, Clone, Default)]
struct H {
    members: Vec<P>,
    receives: u32,
    arrears: [i32; 12],
}

/// The policies a household truly qualifies for and does not receive (bits in POLICIES
/// order), from its true state — the generator's own reading of the six policies.
fn qualifies(h: &H) -> u32 {
    let m = h.members.len() as i64;
    if m == 0 {
        return 0;
    }
    let r = |b: u32| h.receives & b != 0;
    let income: i64 = h.members.iter().map(P::true_income).sum();
    let oop: i64 = h.members.iter().map(P::true_oop).sum();
    let pc = income as f64 / m as f64;
    let mut q = 0;
    let severe = h
        .members
        .iter()
        .filter(|p| (18..60).contains(&p.age) && (1..=2).contains(&p.disability))
        .count();
    if h.members.iter().any(|p| p.age < 18) && severe >= 2 && !r(CHILD) && !r(TEKUN) {
        q |= 1;
    }
    if pc >= DIBAO_LINE as f64 && pc < LOW_LINE as f64 && !r(LOW | DIBAO | TEKUN) {
        q |= 2;
    }
    if oop > 0
        && pc >= DIBAO_LINE as f64
        && ((income * 12 - oop) as f64 / m as f64 / 12.0) < DIBAO_LINE as f64
        && !r(SPENDING | DIBAO | TEKUN)
    {
        q |= 4;
    }
    if h.members
        .iter()
        .any(|p| p.illness == 2 && p.true_oop() >= OOP_HIGH)
        && r(DIBAO | LOW | TEKUN | SPENDING)
        && !r(MEDICAL)
    {
        q |= 8;
    }
    if r(DIBAO | LOW) && h.members.iter().any(|p| p.graduating && !p.employed()) && !r(GRADUATE) {
        q |= 16;
    }
    let old_alone = h
        .members
        .iter()
        .any(|p| p.age >= 80 && p.lone.is_some_and(|l| l.0));
    let single_old = h.members.len() == 1 && h.members[0].age >= 80;
    if (old_alone || single_old) && !r(ELDER) {
        q |= 32;
    }
    q
}

/// Grants every benefit the household qualifies for (but policy `except`), until nothing
/// more qualifies (a benefit granted can open another: medical aid for a recipient).
fn cover(h: &mut H, except: usize) {
    for _ in 0..6 {
        let q = qualifies(h);
        let mut changed = false;
        for (k, b) in POLICY_BENEFIT.iter().enumerate() {
            if k != except && q & (1 << k) != 0 {
                h.receives |= b;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

fn wage(rng: &mut Rng) -> i32 {
    (4_000.0 + rng.exp(6_000.0)).min(60_000.0) as i32
}

fn pension(rng: &mut Rng) -> i32 {
    (2_600.0 + rng.exp(2_000.0)).min(15_000.0) as i32
}

/// Fills a background person's attributes by age.
fn fill(p: &mut P, rng: &mut Rng) {
    let a = p.age;
    if (6..=22).contains(&a) {
        let s = match a {
            6..=11 => Some(0),
            12..=14 => Some(1),
            15..=17 => Some(if rng.chance(0.15) { 3 } else { 2 }),
            _ => rng.chance(0.7).then_some(4),
        };
        p.school = s;
        p.graduating = s == Some(4) && a == 22;
    }
    if (18..60).contains(&a) && p.school.is_none() {
        let x = rng.f64();
        if x < 0.88 {
            p.emp = Some(0);
            p.income = wage(rng);
        } else if x < 0.93 {
            p.emp = Some(2);
            p.unemp_reg = rng.chance(0.7);
        }
        p.corrections = rng.chance(0.001);
    } else if a >= 60 {
        p.emp = Some(1);
        p.income = pension(rng);
    }
    if a >= 16 && rng.chance(0.03) {
        p.disability = [1, 2, 2, 3, 3, 3, 4, 4, 4, 4][rng.below(10) as usize];
    }
    if a >= 45 {
        let (c, m) = if a >= 60 { (0.45, 0.03) } else { (0.2, 0.012) };
        let x = rng.f64();
        p.illness = if x < m {
            2
        } else if x < m + c {
            1
        } else {
            0
        };
    }
    let visit = match a {
        0..=17 => 0.35,
        18..=59 => 0.55,
        _ => 0.95,
    };
    let extra = [0, 300, 1_100][p.illness as usize];
    for m in 0..12 {
        if rng.chance(visit) {
            p.oop[m] = 20 + rng.below(280) as i32 + rng.below(extra + 1) as i32;
        }
    }
}

fn income_pc(h: &H) -> f64 {
    h.members.iter().map(|p| p.income as f64).sum::<f64>() / h.members.len() as f64
}

/// Sets recorded incomes so the household's monthly income per head is `target`.
fn set_income_pc(h: &mut H, target: f64, rng: &mut Rng) {
    let total = (target * h.members.len() as f64).round() as i64;
    let earners: Vec<usize> = (0..h.members.len())
        .filter(|i| matches!(h.members[*i].emp, Some(0) | Some(1)))
        .collect();
    let earners = if earners.is_empty() {
        let i = (0..h.members.len())
            .find(|i| h.members[*i].age >= 18)
            .unwrap_or(0);
        let p = &mut h.members[i];
        p.emp = Some(if p.age >= 60 { 1 } else { 0 });
        vec![i]
    } else {
        earners
    };
    for p in h.members.iter_mut() {
        p.income = 0;
    }
    let mut left = total;
    for (k, &i) in earners.iter().enumerate() {
        let share = if k + 1 == earners.len() {
            left
        } else {
            (left as f64 * rng.range_f64(0.3, 0.7)) as i64
        };
        h.members[i].income = share.max(0) as i32;
        left -= share;
    }
}

fn age_in(rng: &mut Rng, lo: i32, hi: i32) -> i32 {
    lo + rng.below((hi - lo + 1) as u64) as i32
}

/// A background household of a drawn type.
fn background(comm: usize, ncomm: usize, rng: &mut Rng) -> H {
    let mut h = H::default();
    let x = rng.f64();
    let add = |age: i32, rel: u8, rng: &mut Rng, h: &mut H| {
        let mut p = P::new(age, rel, comm, rng);
        fill(&mut p, rng);
        h.members.push(p);
    };
    if x < 0.12 {
        add(age_in(rng, 22, 59), 0, rng, &mut h);
    } else if x < 0.25 {
        add(age_in(rng, 60, 96), 0, rng, &mut h);
    } else if x < 0.35 {
        let a = age_in(rng, 24, 59);
        add(a, 0, rng, &mut h);
        add((a + age_in(rng, 0, 6) - 3).clamp(20, 62), 1, rng, &mut h);
    } else if x < 0.55 {
        let a = age_in(rng, 60, 92);
        add(a, 0, rng, &mut h);
        add((a + age_in(rng, 0, 8) - 4).clamp(58, 96), 1, rng, &mut h);
    } else if x < 0.85 {
        let a = age_in(rng, 28, 56);
        add(a, 0, rng, &mut h);
        add((a + age_in(rng, 0, 6) - 3).clamp(24, 59), 1, rng, &mut h);
        let kids = if x < 0.80 { 1 } else { 2 };
        for _ in 0..kids {
            add(age_in(rng, 0, (a - 24).min(22)), 2, rng, &mut h);
        }
    } else {
        let a = age_in(rng, 30, 50);
        add(a, 0, rng, &mut h);
        add((a + age_in(rng, 0, 6) - 3).clamp(26, 55), 1, rng, &mut h);
        add(age_in(rng, 0, (a - 26).min(20)), 2, rng, &mut h);
        let g = age_in(rng, a + 22, (a + 38).min(98));
        add(g, 3, rng, &mut h);
        if rng.chance(0.5) {
            add((g + age_in(rng, 0, 6) - 3).min(98), 3, rng, &mut h);
        }
    }
    for p in h.members.iter_mut() {
        if rng.chance(0.12) {
            p.reg = rng.below(ncomm as u64) as usize;
        }
    }
    if h.members.len() == 1 && h.members[0].age >= 70 {
        let lone = &mut h.members[0];
        lone.lone = Some((true, rng.chance(0.05)));
        if rng.chance(0.03) {
            lone.lone_comm = Some(rng.below(ncomm as u64) as usize);
        }
    }
    if rng.chance(0.03) {
        for _ in 0..1 + rng.below(6) {
            h.arrears[rng.below(12) as usize] = 50 + rng.below(550) as i32;
        }
    }
    h
}

/// Keeps background spending below what would make poverty (the insurance pays the rest).
fn cap_oop(h: &mut H, cap: i64) {
    for p in h.members.iter_mut() {
        let mut total: i64 = p.oop.iter().map(|x| *x as i64).sum();
        for m in (0..12).rev() {
            if total <= cap {
                break;
            }
            let cut = (total - cap).min(p.oop[m] as i64);
            p.oop[m] -= cut as i32;
            total -= cut;
        }
    }
}

/// Spreads an amount over the twelve months (every month gets a share).
fn spread(total: i64, rng: &mut Rng) -> [i32; 12] {
    let w: Vec<f64> = (0..12).map(|_| rng.range_f64(0.5, 1.5)).collect();
    let s: f64 = w.iter().sum();
    let mut out = [0i32; 12];
    let mut left = total;
    for m in 0..12 {
        let v = if m == 11 {
            left
        } else {
            (total as f64 * w[m] / s) as i64
        };
        out[m] = v as i32;
        left -= v;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    Truth(usize, u8),
    Decoy(usize, u8),
    Informal,
}

/// Planted households per policy at the full size (450,000 households): truths, decoys.
const PLANTED: [(usize, usize); 6] = [
    (40, 40),
    (300, 300),
    (120, 120),
    (150, 150),
    (50, 50),
    (200, 200),
];

fn adult(age: i32, rel: u8, comm: usize, rng: &mut Rng) -> P {
    let mut p = P::new(age, rel, comm, rng);
    fill(&mut p, rng);
    p.disability = 0;
    p.corrections = false;
    p
}

/// A planted household: the truth or decoy variant `v` of policy `k`.
fn planted(k: usize, truth: bool, v: u8, comm: usize, ncomm: usize, rng: &mut Rng) -> H {
    let mut h = H::default();
    let other =
        |rng: &mut Rng| (comm + 1 + rng.below(ncomm.max(2) as u64 - 1) as usize) % ncomm.max(1);
    match k {
        0 => {
            // 困境儿童: both parents severely disabled.
            let a = age_in(rng, 28, 45);
            let three = v % 3 == 1;
            let (pr, cr) = if three { (2, 4) } else { (0, 2) };
            if three {
                h.members.push(adult(a + 26, 0, comm, rng));
            }
            let mut p1 = adult(a, pr, comm, rng);
            let mut p2 = adult(a - 2, if three { 5 } else { 1 }, comm, rng);
            p1.disability = 1 + rng.below(2) as u8;
            p2.disability = if truth {
                1 + rng.below(2) as u8
            } else {
                3 + rng.below(2) as u8
            };
            let kid_age = if !truth && v % 2 == 1 {
                18
            } else {
                age_in(rng, 3, 15)
            };
            if !truth && v % 2 == 1 {
                p2.disability = 2;
            }
            p1.emp = None;
            p1.income = 0;
            p2.emp = Some(0);
            p2.income = 4_200 + rng.below(4_000) as i32;
            let mut kid = P::new(kid_age, cr, comm, rng);
            fill(&mut kid, rng);
            if v.is_multiple_of(3) {
                // 人户分离: the child's household registration is with grandparents elsewhere.
                kid.reg = other(rng);
            }
            h.members.push(p1);
            h.members.push(p2);
            h.members.push(kid);
            let pc = income_pc(&h);
            if pc < 3_300.0 {
                set_income_pc(&mut h, 3_300.0 + rng.below(800) as f64, rng);
                h.members
                    .iter_mut()
                    .filter(|p| p.age < 18)
                    .for_each(|p| p.income = 0);
            }
        }
        1 => {
            // 低收入: income per head between the lines, or just above (decoy).
            for p in background(comm, ncomm, rng).members {
                h.members.push(p);
            }
            let pc = if truth {
                rng.range_f64(1_600.0, 2_950.0)
            } else {
                rng.range_f64(3_040.0, 3_290.0)
            };
            set_income_pc(&mut h, pc, rng);
            cap_oop(&mut h, 2_000);
        }
        2 => {
            // 支出型贫困: medical spending against income.
            let a = age_in(rng, 45, 75);
            h.members.push(adult(a, 0, comm, rng));
            h.members.push(adult(a - 2, 1, comm, rng));
            if v.is_multiple_of(2) {
                let mut kid = P::new(age_in(rng, 8, 20), 2, comm, rng);
                fill(&mut kid, rng);
                h.members.push(kid);
            }
            let pc = if truth && v.is_multiple_of(3) {
                rng.range_f64(1_700.0, 2_900.0)
            } else {
                rng.range_f64(3_100.0, 4_500.0)
            };
            set_income_pc(&mut h, pc, rng);
            cap_oop(&mut h, 1_500);
            let m = h.members.len() as f64;
            let income: f64 = h.members.iter().map(|p| p.income as f64).sum();
            let need = 12.0 * m * (income / m - DIBAO_LINE as f64);
            let total = if truth {
                need + rng.range_f64(3_000.0, 30_000.0)
            } else {
                (need - rng.range_f64(3_000.0, 10_000.0)).max(12_000.0)
            };
            let already: i64 = h
                .members
                .iter()
                .map(|p| p.oop.iter().map(|x| *x as i64).sum::<i64>())
                .sum();
            let ill = &mut h.members[0];
            ill.illness = 2;
            let add = spread((total as i64 - already).max(0), rng);
            for (o, a) in ill.oop.iter_mut().zip(add) {
                *o += a;
            }
            if truth && v % 20 == 7 {
                // Part of the spending was paid outside the insurance: no source sees it.
                let moved = (total * 0.5) as i64;
                ill.oop_hidden = moved as i32;
                let cut = spread(moved, rng);
                for (o, c) in ill.oop.iter_mut().zip(cut) {
                    *o = (*o - c).max(0);
                }
            }
        }
        3 => {
            // 医疗救助: a recipient household with a major illness and large spending.
            let a = age_in(rng, 40, 80);
            h.members.push(adult(a, 0, comm, rng));
            if v.is_multiple_of(2) {
                h.members.push(adult(a - 3, 1, comm, rng));
            }
            h.receives = if v.is_multiple_of(3) { LOW } else { DIBAO };
            let pc = if h.receives == DIBAO {
                rng.range_f64(600.0, 1_450.0)
            } else {
                rng.range_f64(1_600.0, 2_900.0)
            };
            set_income_pc(&mut h, pc, rng);
            cap_oop(&mut h, 1_000);
            let ill = &mut h.members[0];
            ill.illness = if !truth && v % 2 == 1 { 1 } else { 2 };
            let total = if truth || v % 2 == 1 {
                rng.range_f64(11_000.0, 40_000.0)
            } else {
                rng.range_f64(4_000.0, 9_500.0)
            };
            ill.oop = spread(total as i64, rng);
            if h.receives == LOW {
                // Large spending on a low income would also be spending-type poverty:
                // that benefit is already granted.
                h.receives |= SPENDING;
            }
        }
        4 => {
            // 低保家庭应届毕业生.
            let a = age_in(rng, 45, 58);
            h.members.push(adult(a, 0, comm, rng));
            if v.is_multiple_of(2) {
                h.members.push(adult(a - 2, 1, comm, rng));
            }
            let mut g = P::new(22, 2, comm, rng);
            g.school = Some(4);
            g.graduating = true;
            if !truth {
                // Now contributing (employed), while an old unemployment registration
                // says otherwise: the sources conflict and the precedence must keep
                // "employed".
                g.emp = Some(0);
                g.income = 3_000 + rng.below(2_000) as i32;
                g.unemp_reg = true;
            } else if v % 2 == 1 {
                g.emp = Some(2);
                g.unemp_reg = true;
            }
            let gi = g.income;
            h.members.push(g);
            h.receives = if v % 4 == 3 { LOW } else { DIBAO };
            let target = if h.receives == DIBAO {
                1_200.0
            } else {
                2_400.0
            };
            set_income_pc(&mut h, target, rng);
            if !truth {
                let last = h.members.len() - 1;
                h.members[last].income = gi;
                h.members[last].emp = Some(0);
                let others = h.members.len() - 1;
                let keep = (target * h.members.len() as f64) as i32 - gi;
                let per = (keep.max(0) / others as i32).max(0);
                for p in h.members[..others].iter_mut() {
                    p.income = per;
                    p.emp = Some(if p.age >= 60 { 1 } else { 0 });
                }
            }
            cap_oop(&mut h, 1_000);
        }
        _ => {
            // 高龄独居.
            let age = if truth {
                age_in(rng, 80, 98)
            } else if v.is_multiple_of(2) {
                79
            } else {
                age_in(rng, 82, 95)
            };
            let mut e = adult(age, 0, comm, rng);
            e.emp = Some(1);
            e.income = 3_400 + rng.below(2_000) as i32;
            if truth || v.is_multiple_of(2) {
                e.lone = Some((true, rng.chance(0.3)));
            }
            h.members.push(e);
            if (truth && v % 4 == 1) || (!truth && v % 2 == 1) {
                // Registered with a relative who does not live there (truth: only the
                // lone-elder roll says he lives alone) — or a decoy living with family.
                let mut s = adult(age_in(rng, 45, 60), 2, comm, rng);
                s.emp = Some(0);
                s.income = 6_000;
                h.members.push(s);
            }
            cap_oop(&mut h, 2_000);
        }
    }
    h
}

/// Check digit of an 18-character resident ID (ISO 7064 MOD 11-2).
pub fn id_check(first17: &str) -> char {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let s: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    b"10X98765432"[(s % 11) as usize] as char
}

struct Out {
    bufs: Vec<String>,
}

impl Out {
    fn row(&mut self, s: usize) -> &mut String {
        &mut self.bufs[s]
    }
}

/// Generates the district over the communities (at least one).
pub fn generate(communities: &[Community], spec: &Spec) -> District {
    let mut rng = Rng::new(spec.seed ^ 0xA551_57A1);
    let n = spec.households.max(1);
    let nc = communities.len().max(1);
    let scale = n as f64 / 450_000.0;
    let as_of = spec.as_of;
    let as_of_days = as_of.days();
    let am = month_of(as_of);
    // Plant.
    let mut plan: HashMap<usize, Plant> = HashMap::new();
    let place = |p: Plant, rng: &mut Rng, plan: &mut HashMap<usize, Plant>| loop {
        let i = rng.below(n as u64) as usize;
        if plan.len() >= n {
            break;
        }
        if let std::collections::hash_map::Entry::Vacant(e) = plan.entry(i) {
            e.insert(p);
            break;
        }
    };
    for (k, (t, d)) in PLANTED.iter().enumerate() {
        let t = ((*t as f64 * scale).round() as usize).max(3);
        let d = ((*d as f64 * scale).round() as usize).max(3);
        for v in 0..t {
            place(Plant::Truth(k, v as u8), &mut rng, &mut plan);
        }
        for v in 0..d {
            place(Plant::Decoy(k, v as u8), &mut rng, &mut plan);
        }
    }
    let informal = ((90.0 * scale).round() as usize).max(1);
    for _ in 0..informal {
        place(Plant::Informal, &mut rng, &mut plan);
    }
    let mut out = Out {
        bufs: SOURCES
            .iter()
            .map(|(_, h)| {
                let mut s = String::with_capacity(64);
                s.push_str(h);
                s.push('\n');
                s
            })
            .collect(),
    };
    let surnames: Vec<char> = SURNAMES.chars().collect();
    let given: Vec<char> = GIVEN.chars().collect();
    let mut seq: HashMap<i64, u16> = HashMap::new();
    let mut truth = Vec::new();
    let mut decoys = Vec::new();
    let mut persons = Vec::with_capacity(n * 5 / 2);
    let mut household_ids = Vec::with_capacity(n);
    let (mut residents, mut dibao_persons) = (0usize, 0usize);
    let month_str = |m: i32| format!("{:04}-{:02}", m / 12, m % 12 + 1);
    let months: Vec<String> = (0..12).map(|i| month_str(am - 11 + i)).collect();
    let past =
        |rng: &mut Rng, max_days: u64| Date::from_days(as_of_days - 1 - rng.below(max_days) as i64);
    for i in 0..n {
        let comm = rng.below(nc as u64) as usize;
        let plant = plan.get(&i).copied();
        let mut h = match plant {
            Some(Plant::Truth(k, v)) => planted(k, true, v, comm, nc, &mut rng),
            Some(Plant::Decoy(k, v)) => planted(k, false, v, comm, nc, &mut rng),
            _ => {
                let mut h = background(comm, nc, &mut rng);
                let x = rng.f64();
                if x < 0.0073 {
                    h.receives = DIBAO;
                    set_income_pc(&mut h, rng.range_f64(300.0, 1_480.0), &mut rng);
                } else if x < 0.0073 + 0.009 {
                    h.receives = LOW;
                    set_income_pc(&mut h, rng.range_f64(1_560.0, 2_980.0), &mut rng);
                } else if x < 0.0178 && h.members.len() == 1 && h.members[0].age >= 60 {
                    h.receives = TEKUN;
                    set_income_pc(&mut h, 0.0, &mut rng);
                    h.members[0].emp = None;
                } else if income_pc(&h) < 3_300.0 {
                    let target = 3_300.0 + rng.below(3_000) as f64;
                    set_income_pc(&mut h, target, &mut rng);
                }
                cap_oop(&mut h, 20_000);
                if plant == Some(Plant::Informal) {
                    // Part of the income is informal: no source sees it, so the recorded
                    // income per head looks low while the true one is not.
                    let true_pc = income_pc(&h).max(3_400.0);
                    set_income_pc(&mut h, true_pc, &mut rng);
                    let shown = rng.range_f64(1_700.0, 2_900.0) / true_pc;
                    for p in h.members.iter_mut() {
                        let kept = (p.income as f64 * shown) as i32;
                        p.informal = p.income - kept;
                        p.income = kept;
                    }
                }
                // Everyone in the background who qualifies already receives it.
                cover(&mut h, usize::MAX);
                h
            }
        };
        if let Some(Plant::Decoy(k, _)) = plant {
            // A decoy qualifying for something else already receives it; never for its own.
            debug_assert!(
                qualifies(&h) & (1 << k) == 0,
                "decoy qualifies for its own policy {k}"
            );
            cover(&mut h, k);
        }
        let hid = format!("XH{:09}", i + 1);
        let q = qualifies(&h);
        for (k, code) in POLICIES.iter().enumerate() {
            if q & (1 << k) != 0 {
                let planted = match plant {
                    Some(Plant::Truth(j, v)) if j == k => plant_label(k, v),
                    _ => "",
                };
                truth.push(TruthRow {
                    household: hid.clone(),
                    policy: code,
                    planted,
                });
            }
        }
        if let Some(Plant::Decoy(k, v)) = plant {
            decoys.push(Decoy {
                household: hid.clone(),
                policy: POLICIES[k],
                why: decoy_label(k, v),
            });
        }
        if h.receives & DIBAO != 0 {
            dibao_persons += h.members.len();
        }
        // Rows.
        for (b, code) in BENEFITS.iter().enumerate() {
            if h.receives & (1 << b) != 0 {
                let d = past(&mut rng, 2_000);
                let _ = writeln!(out.row(1), "{hid},{code},{d}");
            }
        }
        for (m, v) in h.arrears.iter().enumerate() {
            let _ = writeln!(out.row(9), "{hid},{},{v}", months[m]);
        }
        let road = rng.below(800) + 1;
        let flat = 101 + rng.below(1_800);
        for p in &h.members {
            residents += 1;
            let t = Date::from_days(as_of_days - rng.below(365) as i64);
            let birth = Date::new(t.year - p.age, t.month, t.day.min(28)).unwrap_or(t);
            debug_assert_eq!(age_years(birth.days() as i32, as_of_days as i32), p.age);
            let bd = birth.days();
            let s = seq.entry(bd).or_insert(0);
            *s += 1;
            // The sequence's last digit is odd for men, even for women.
            let sn = (*s as u32 * 2 + u32::from(p.sex == 0)) % 1000;
            let first = format!(
                "990104{:04}{:02}{:02}{:03}",
                birth.year, birth.month, birth.day, sn
            );
            let pid = format!("{first}{}", id_check(&first));
            let name = format!(
                "{}某{}",
                surnames[rng.below(surnames.len() as u64) as usize],
                given[rng.below(given.len() as u64) as usize]
            );
            let _ = writeln!(
                out.row(0),
                "{pid},{hid},{name},{},{birth},{},{},{},模拟路{road}号{flat}室",
                if p.sex == 0 { "M" } else { "F" },
                RELATIONS[p.rel as usize],
                communities[p.reg.min(nc - 1)].code,
                communities[p.act.min(nc - 1)].code,
            );
            if p.disability > 0 {
                let d = past(&mut rng, 5_000);
                let kind = DISABILITY_KINDS[rng.below(5) as usize];
                let _ = writeln!(out.row(2), "{pid},{},{kind},{d}", p.disability);
            }
            if let Some(e) = p.emp {
                if e != 2 {
                    let d = past(&mut rng, 3_000);
                    let st = if e == 0 { "employed" } else { "retired" };
                    let _ = writeln!(out.row(3), "{pid},{st},{},{d}", p.income);
                }
            }
            if p.unemp_reg {
                let d = past(&mut rng, 700);
                let _ = writeln!(out.row(4), "{pid},unemployed,{d}");
            }
            if let Some(s) = p.school {
                let _ = writeln!(
                    out.row(5),
                    "{pid},{},{}",
                    SCHOOLS[s as usize],
                    u8::from(p.graduating)
                );
            }
            for (m, v) in p.oop.iter().enumerate() {
                if *v > 0 {
                    let _ = writeln!(out.row(6), "{pid},{},{v}", months[m]);
                }
            }
            if p.illness > 0 {
                let d = past(&mut rng, 4_000);
                let il = if p.illness == 2 { "major" } else { "chronic" };
                let _ = writeln!(out.row(7), "{pid},{il},{d}");
            }
            if p.corrections {
                let d = past(&mut rng, 700);
                let _ = writeln!(out.row(8), "{pid},1,{d}");
            }
            if let Some((alone, water)) = p.lone {
                let d = past(&mut rng, 1_500);
                let c = &communities[p.lone_comm.unwrap_or(p.act).min(nc - 1)].code;
                let _ = writeln!(
                    out.row(10),
                    "{pid},{c},{},{},{d}",
                    u8::from(alone),
                    u8::from(water)
                );
            }
            persons.push((pid, hid.clone()));
        }
        household_ids.push(hid);
    }
    District {
        as_of,
        files: SOURCES.iter().map(|(s, _)| *s).zip(out.bufs).collect(),
        truth,
        decoys,
        residents,
        households: n,
        dibao_persons,
        persons,
        household_ids,
    }
}

fn plant_label(k: usize, v: u8) -> &'static str {
    match k {
        0 => match v % 3 {
            0 => "child: 人户分离 (registered elsewhere)",
            1 => "child: three generations (parents are the head's children)",
            _ => "child: parents' disability in 残联, child in 教育",
        },
        1 => "low income, never applied",
        2 => {
            if v % 20 == 7 {
                "spending: half the spending outside the insurance (no source sees it)"
            } else {
                "spending: poverty only from medical spending against income"
            }
        }
        3 => "medical: recipient with a major illness and large spending",
        4 => "graduate of a 低保/低收入 family without a job",
        _ => {
            if v % 4 == 1 {
                "elder: registered with a relative, only the lone-elder roll says alone"
            } else {
                "elder: 80+ living alone"
            }
        }
    }
}

fn decoy_label(k: usize, v: u8) -> &'static str {
    match k {
        0 => {
            if v % 2 == 1 {
                "child: both parents severely disabled but the child is 18"
            } else {
                "child: one parent's disability is not severe"
            }
        }
        1 => "low income: income per head just above the line",
        2 => "spending: large spending but enough income",
        3 => {
            if v % 2 == 1 {
                "medical: large spending on a chronic (not major) illness"
            } else {
                "medical: major illness but spending under the threshold"
            }
        }
        4 => "graduate: employed (contributing) despite an old unemployment registration",
        _ => {
            if v.is_multiple_of(2) {
                "elder: 79, living alone"
            } else {
                "elder: over 80 living with family"
            }
        }
    }
}

/// A batch of changed rows (valid, as of the district's date): new monthly medical
/// spending, new incomes and new utility bills for random residents and households.
pub fn changes(d: &District, rows: usize, seed: u64) -> Vec<(&'static str, String)> {
    let mut rng = Rng::new(seed ^ 0x0C4A_96E5);
    let am = month_of(d.as_of);
    let mut med = String::from("person_id,month,out_of_pocket\n");
    let mut emp = String::from("person_id,status,monthly_income,since\n");
    let mut utl = String::from("household_id,month,arrears\n");
    let since = Date::from_days(d.as_of.days() - 30);
    for _ in 0..rows {
        let x = rng.f64();
        let m = am - rng.below(12) as i32;
        let ms = format!("{:04}-{:02}", m / 12, m % 12 + 1);
        if x < 0.6 {
            let (p, _) = &d.persons[rng.below(d.persons.len() as u64) as usize];
            let _ = writeln!(med, "{p},{ms},{}", 50 + rng.below(8_000));
        } else if x < 0.9 {
            let (p, _) = &d.persons[rng.below(d.persons.len() as u64) as usize];
            let _ = writeln!(emp, "{p},employed,{},{since}", 2_690 + rng.below(12_000));
        } else {
            let h = &d.household_ids[rng.below(d.household_ids.len() as u64) as usize];
            let _ = writeln!(utl, "{h},{ms},{}", rng.below(900));
        }
    }
    vec![("medical", med), ("employment", emp), ("utilities", utl)]
}

/// Imports every file of a district into a new pool (each file one import labelled
/// `{source} {as_of}`), the membership source first.
pub fn fuse(
    decl: &super::sources::Declarations,
    key: super::keyed::IdKey,
    d: &District,
) -> Result<(super::pool::Pool, Vec<super::pool::ImportReport>), String> {
    let mut pool = super::pool::Pool::new(decl, key);
    let mut reports = Vec::new();
    let m = decl.membership();
    let mut order: Vec<&(&str, String)> = d.files.iter().collect();
    order.sort_by_key(|(s, _)| decl.source(s) != Some(m));
    for (s, text) in order {
        let src = decl
            .source(s)
            .ok_or_else(|| format!("the declarations have no source {s:?}"))?;
        reports.push(pool.import_csv(
            decl,
            src,
            &format!("{s} {}", d.as_of),
            d.as_of,
            text,
            false,
        )?);
    }
    Ok((pool, reports))
}
