//! 精准救助 (issue 15), the pure part: the declared sources and rulebook of the Xuhui data
//! folder, a small synthetic district fused and evaluated against its planted truth
//! (every policy finds its planted households and none of its decoys), explanations naming
//! source and import, conflicts shown, bad rows and bad rulebooks named by line, and
//! incremental re-evaluation equal to a full one.

use cityos_core::assistance::eval::Hardship;
use cityos_core::assistance::generate::{self, id_check, Community, District, Spec};
use cityos_core::assistance::measure::measure;
use cityos_core::assistance::{
    evaluate, evaluate_some, explain, parse_declarations, parse_rulebook, Declarations, IdKey,
    IdKind, Pool, Rulebook,
};
use cityos_core::time::Date;
use std::sync::OnceLock;

const SOURCES: &str = include_str!("../../../../data/xuhui/assistance/sources.toml");
const POLICIES: &str = include_str!("../../../../data/xuhui/assistance/policies.toml");

fn setup() -> (Declarations, Rulebook) {
    let decl = parse_declarations(SOURCES).unwrap();
    let book = parse_rulebook(POLICIES, &decl).unwrap();
    (decl, book)
}

fn key() -> IdKey {
    IdKey::new(b"test key for the assistance pool").unwrap()
}

fn as_of() -> Date {
    Date::new(2026, 11, 30).unwrap()
}

fn communities() -> Vec<Community> {
    (0..12)
        .map(|i| Community {
            code: format!("3101040{:02}{:03}", i / 4, i),
            subdistrict: format!("3101040{:02}", i / 4),
        })
        .collect()
}

/// One small district shared by the tests (generated once).
fn district() -> &'static District {
    static D: OnceLock<District> = OnceLock::new();
    D.get_or_init(|| {
        generate::generate(
            &communities(),
            &Spec {
                households: 4_000,
                seed: 7,
                as_of: as_of(),
            },
        )
    })
}

fn policy(book: &Rulebook, code: &str) -> usize {
    book.policy(code).unwrap()
}

#[test]
fn the_xuhui_declarations_and_rulebook_parse() {
    let (decl, book) = setup();
    assert_eq!(decl.sources.len(), 11);
    assert!(decl.sources[decl.membership()].name == "population");
    let codes: Vec<&str> = book.policies.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(codes, generate::POLICIES);
    for p in &book.policies {
        assert!(!p.when.is_empty() && p.benefit.is_some(), "{}", p.code);
    }
    // Every source names its owner; personal columns never feed a field.
    for s in &decl.sources {
        assert!(!s.owner.is_empty());
        assert!(s.columns.iter().all(|c| !(c.personal && c.field.is_some())));
    }
}

#[test]
fn every_policy_finds_its_planted_households_and_none_of_its_decoys() {
    let (decl, book) = setup();
    let d = district();
    let (pool, reports) = generate::fuse(&decl, key(), d).unwrap();
    for r in &reports {
        assert_eq!(r.problem_count, 0, "{}: {:?}", r.source, r.problems);
        assert_eq!(r.rows, r.accepted);
    }
    assert_eq!(pool.households(), 4_000);
    assert_eq!(pool.persons(), d.residents);
    let ev = evaluate(&decl, &pool, &book, d.as_of);
    let m = measure(&pool, &book, &ev, &d.truth, &d.decoys);
    for p in &m.policies {
        assert!(p.planted >= 3, "{}: {} planted", p.policy, p.planted);
        assert_eq!(p.planted_found, p.planted, "{}: planted missed", p.policy);
        assert!(p.decoys >= 3);
        assert_eq!(p.decoys_found, 0, "{}: a decoy was found", p.policy);
    }
    assert!(m.recall >= 0.95 && m.precision >= 0.8, "{m:?}");
    // Each hard case of the child allowance is among the planted and found.
    let child = policy(&book, "child_allowance");
    for hard in ["人户分离", "three generations", "残联"] {
        let t = d
            .truth
            .iter()
            .find(|t| t.policy == "child_allowance" && t.planted.contains(hard))
            .unwrap_or_else(|| panic!("no planted child case {hard}"));
        let h = pool.household_of(&t.household).unwrap();
        assert!(
            ev.results[h as usize].candidates & (1 << child) != 0,
            "{hard}"
        );
    }
    // Spending-type poverty is found only through medical spending against income.
    let sp = policy(&book, "spending_poverty");
    let t = d
        .truth
        .iter()
        .find(|t| t.policy == "spending_poverty" && !t.planted.is_empty())
        .unwrap();
    let h = pool.household_of(&t.household).unwrap();
    let x = explain(&decl, &pool, &book, d.as_of, h, sp);
    assert!(x.candidate);
    assert!(x.when[2]
        .facts
        .iter()
        .any(|f| f.field == "medical_oop" && f.source == "medical"));
}

#[test]
fn a_child_registered_elsewhere_is_not_hidden_and_the_explanation_names_sources_and_imports() {
    let (decl, book) = setup();
    let mut pool = Pool::new(&decl, key());
    let population = "person_id,household_id,name,sex,birth_date,relation,registered_community,actual_community,address\n\
        P1,H1,甲某一,M,1985-03-01,head,C-A,C-A,模拟路1号\n\
        P2,H1,乙某二,F,1987-05-01,spouse,C-A,C-A,模拟路1号\n\
        P3,H1,丙某三,M,2019-06-01,child,C-B,C-A,模拟路1号\n\
        P4,H2,丁某四,F,1990-01-01,head,C-A,C-A,模拟路2号\n";
    let r = pool
        .import_csv(
            &decl,
            decl.source("population").unwrap(),
            "pop-2026-11",
            as_of(),
            population,
            false,
        )
        .unwrap();
    assert_eq!(r.accepted, 4, "{:?}", r.problems);
    let disability =
        "person_id,grade,kind,certified_on\nP1,1,肢体,2020-01-01\nP2,2,视力,2021-01-01\n";
    pool.import_csv(
        &decl,
        decl.source("disability").unwrap(),
        "cdpf-2026-10",
        Date::new(2026, 10, 31).unwrap(),
        disability,
        false,
    )
    .unwrap();
    let ev = evaluate(&decl, &pool, &book, as_of());
    let child = policy(&book, "child_allowance");
    let h1 = pool.household_of("H1").unwrap();
    assert_eq!(ev.results[h1 as usize].candidates, 1 << child);
    assert_eq!(
        ev.results[pool.household_of("H2").unwrap() as usize].candidates,
        0
    );
    // Score: children 3 + health (severe disability) 1 + material (no income) 3.
    let r = ev.results[h1 as usize];
    assert_eq!(r.dims[5], 3);
    assert_eq!(r.hardship, Hardship::High);

    let x = explain(&decl, &pool, &book, as_of(), h1, child);
    assert!(x.candidate);
    assert_eq!(x.separated.len(), 1);
    assert_eq!(x.separated[0].relation.as_deref(), Some("child"));
    assert_eq!(x.separated[0].age, Some(7));
    // The matched facts name source, owner, import and its date.
    let grades: Vec<_> = x.when[1]
        .facts
        .iter()
        .filter(|f| f.field == "disability_grade")
        .collect();
    assert_eq!(grades.len(), 2);
    for f in grades {
        assert_eq!(f.source, "disability");
        assert_eq!(f.owner, "区残联");
        assert_eq!(f.import, "cdpf-2026-10");
        assert_eq!(f.as_of, "2026-10-31");
    }
    // The child's age is shown, not the birth date.
    let kid = x.when[0].facts.iter().find(|f| f.field == "age").unwrap();
    assert_eq!(kid.value, "7");
    assert!(!serde_json::to_string(&x).unwrap().contains("2019-06-01"));
    assert_eq!(kid.source, "population");
    assert_eq!(kid.import, "pop-2026-11");
    // What would rule it out: already receiving, or 特困 — neither holds, both shown.
    assert_eq!(x.rule_out.len(), 2);
    assert!(x.rule_out.iter().all(|c| !c.holds));
    assert_eq!(x.rule_out[0].text, "receives(\"child_allowance\")");
    assert_eq!(x.rule_out[0].facts[0].value, "(none)");
    // No name or raw id anywhere in the explanation.
    let json = serde_json::to_string(&x).unwrap();
    for s in ["甲某一", "丙某三", "P3", "H1", "模拟路"] {
        assert!(!json.contains(s), "{s} in {json}");
    }

    // Once the benefit is recorded, the household is ruled out and the explanation says so.
    let a = "household_id,benefit,since\nH1,child_allowance,2026-11-01\n";
    pool.import_csv(
        &decl,
        decl.source("assistance").unwrap(),
        "mz-2026-11",
        as_of(),
        a,
        false,
    )
    .unwrap();
    let x = explain(&decl, &pool, &book, as_of(), h1, child);
    assert!(!x.candidate);
    assert!(x.rule_out[0].holds);
    assert_eq!(x.rule_out[0].facts[0].value, "child_allowance");
    assert_eq!(x.rule_out[0].facts[0].import, "mz-2026-11");
}

#[test]
fn conflicting_sources_are_resolved_by_precedence_and_shown() {
    let (decl, book) = setup();
    let d = district();
    let (pool, _) = generate::fuse(&decl, key(), d).unwrap();
    let grad = policy(&book, "graduate_jobs");
    let decoy = d
        .decoys
        .iter()
        .find(|x| x.policy == "graduate_jobs")
        .unwrap();
    let h = pool.household_of(&decoy.household).unwrap();
    let x = explain(&decl, &pool, &book, d.as_of, h, grad);
    assert!(!x.candidate, "an employed graduate is not a candidate");
    let c = x
        .conflicts
        .iter()
        .find(|c| c.field == "employment")
        .expect("the conflict is shown");
    assert_eq!(c.kept.source, "employment");
    assert_eq!(c.kept.value, "employed");
    assert_eq!(c.overruled.len(), 1);
    assert_eq!(c.overruled[0].source, "unemployment");
    assert_eq!(c.overruled[0].value, "unemployed");

    // With the precedence turned round, the same decoy becomes a candidate: the
    // declaration decides.
    let flipped = SOURCES.replace(
        "precedence = [\"employment\", \"unemployment\"]",
        "precedence = [\"unemployment\", \"employment\"]",
    );
    let decl2 = parse_declarations(&flipped).unwrap();
    let book2 = parse_rulebook(POLICIES, &decl2).unwrap();
    let (pool2, _) = generate::fuse(&decl2, key(), d).unwrap();
    let h2 = pool2.household_of(&decoy.household).unwrap();
    assert!(explain(&decl2, &pool2, &book2, d.as_of, h2, grad).candidate);
}

#[test]
fn bad_rows_are_named_by_line_and_nothing_recorded_is_lost() {
    let (decl, book) = setup();
    let pop = decl.source("population").unwrap();
    let mut pool = Pool::new(&decl, key());
    let ok = "person_id,household_id,name,sex,birth_date,relation,registered_community,actual_community,address\n\
        990104194001010011,H1,甲某一,M,1940-01-01,head,C-A,C-A,模拟路1号\n";
    pool.import_csv(&decl, pop, "p1", as_of(), ok, false)
        .unwrap();
    let bad = "\u{FEFF}person_id,household_id,name,sex,birth_date,relation,registered_community,actual_community,address\r\n\
        990104194001010011,H1,甲某一,M,1940-01-01,head,C-A,C-A,模拟路1号\r\n\
        990104199901010022,H2,乙某二,X,1999-01-01,head,C-A,C-A,模拟路2号\r\n\
        990104202701010033,H3,丙某三,M,2027-01-01,head,C-A,C-A,模拟路3号\r\n\
        990104199901010044,H4,丁某四,M,1999-01-01,head,C-A\r\n\
        ,H5,戊某五,M,1999-01-01,head,C-A,C-A,模拟路5号\r\n\
        990104199901010066,H6,\"己某, 六\",F,1999-01-01,head,C-A,C-A,\"模拟路6号\"\r\n";
    let r = pool
        .import_csv(&decl, pop, "p2", as_of(), bad, true)
        .unwrap();
    assert_eq!((r.rows, r.accepted, r.problem_count), (6, 2, 4));
    let lines: Vec<usize> = r.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6]);
    assert!(
        r.problems[0]
            .message
            .contains("the value is not one of M, F")
            && !r.problems[0].message.contains("\"X\""),
        "{:?}",
        r.problems[0]
    );
    assert!(r.problems[1]
        .message
        .contains("after the import's date 2026-11-30"));
    assert!(r.problems[2]
        .message
        .contains("7 fields where the header has 9"));
    assert!(r.problems[3]
        .message
        .contains("key column \"person_id\" is empty"));
    // No problem message repeats a raw id or a name.
    for p in &r.problems {
        assert!(
            !p.message.contains("990104") && !p.message.contains('某'),
            "{p}"
        );
    }
    assert_eq!(pool.persons(), 2);

    let dis = decl.source("disability").unwrap();
    let rows = "person_id,grade,kind,certified_on\n\
        990104194001010011,1,肢体,2020-01-01\n\
        990104000000000000,2,视力,2020-01-01\n\
        990104194001010011,two,视力,2020-01-01\n\
        990104194001010011,3,视力,2026-12-01\n";
    let r = pool
        .import_csv(&decl, dis, "d1", as_of(), rows, false)
        .unwrap();
    assert_eq!(r.accepted, 1);
    assert_eq!(r.problems[0].line, 3);
    assert!(r.problems[0]
        .message
        .starts_with("unknown person id (not in 户籍/实有人口)"));
    assert_eq!(r.problems[1].line, 4);
    assert!(r.problems[1].message.contains("not a whole number"));
    assert!(r.problems[2].message.contains("the date is after"));
    assert!(!r.problems[2].message.contains("2026-12-01"));
    // The refused rows changed nothing: the grade is still 1.
    let p = pool
        .person_of_hash(key().hash(IdKind::Person, "990104194001010011"))
        .unwrap();
    let f = decl.field("disability_grade").unwrap();
    assert_eq!(pool.resolve(&decl, f, p).unwrap().value, 1);

    // A header that does not match the declaration refuses the whole file.
    let before = pool.imports.len();
    let e = pool
        .import_csv(
            &decl,
            dis,
            "d2",
            as_of(),
            "person_id,grade,colour,certified_on\n1,1,x,2020-01-01\n",
            false,
        )
        .unwrap_err();
    assert!(
        e.contains("column \"colour\" is not declared for source \"disability\""),
        "{e}"
    );
    let e = pool
        .import_csv(&decl, dis, "d3", as_of(), "person_id,grade,kind\n", false)
        .unwrap_err();
    assert!(
        e.contains("lacks the declared column \"certified_on\""),
        "{e}"
    );
    assert_eq!(pool.imports.len(), before);
    assert_eq!(pool.resolve(&decl, f, p).unwrap().value, 1);
    let _ = book;
}

#[test]
fn a_rulebook_naming_a_missing_field_or_a_bad_condition_is_refused_by_line() {
    let (decl, _) = setup();
    let bad = POLICIES
        .replace("disability_grade <= 2) >= 2", "disability_level <= 2) >= 2")
        .replace(
            "when = [\"any(age >= 80 and lives_alone) or (members == 1 and any(age >= 80))\"]",
            "when = [\"lives_alone\"]",
        )
        .replace(
            "'any(illness == \"major\")'",
            "'any(illness == \"cancer\")'",
        );
    let e = parse_rulebook(&bad, &decl).unwrap_err();
    let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let msgs: Vec<String> = e.iter().map(|p| p.to_string()).collect();
    assert!(
        e.iter()
            .any(|p| p.line == line_of("disability_level <= 2) >= 2")
                && p.message
                    .contains("no field \"disability_level\" is declared")),
        "{msgs:?}"
    );
    assert!(
        e.iter()
            .any(|p| p.line == line_of("when = [\"lives_alone\"]")
                && p.message.contains("is a member's field")),
        "{msgs:?}"
    );
    assert!(
        e.iter().any(|p| p
            .message
            .contains("\"cancer\" is not a code of \"illness\"")),
        "{msgs:?}"
    );
    // Syntax and types, with the column.
    for (cond, want) in [
        ("any(age < )", "column 11"),
        ("members + 1", "not yes/no"),
        ("receives(\"villa\")", "not a code of \"receives\""),
        ("any(age < 18) and", "ends too early"),
        ("sum(any(age < 3)) > 1", "cannot be inside another"),
        ("members == \"x\"", "cannot compare"),
    ] {
        let text = POLICIES.replace("\"any(age < 18)\",", &format!("'{cond}',"));
        let e = parse_rulebook(&text, &decl).unwrap_err();
        assert!(e.iter().any(|p| p.message.contains(want)), "{cond}: {e:?}");
    }
    // A declaration with a field fed twice and no precedence, or an unknown field.
    let d = SOURCES.replace("precedence = [\"population\", \"lone_elder\"]\n", "");
    let e = parse_declarations(&d).unwrap_err();
    assert!(
        e[0].message.contains("its precedence must name them all"),
        "{e:?}"
    );
    let d = SOURCES.replace(
        "field = \"disability_grade\"",
        "field = \"grade_of_disability\"",
    );
    let e = parse_declarations(&d).unwrap_err();
    let p = e
        .iter()
        .find(|p| {
            p.message
                .contains("no field \"grade_of_disability\" is declared")
        })
        .unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(
        p.line,
        d.lines()
            .position(|l| l.contains("name = \"disability\""))
            .unwrap()
    );
    assert!(e
        .iter()
        .any(|p| p.message == "field \"disability_grade\" is fed by no source"));
}

#[test]
fn incremental_re_evaluation_equals_a_full_one() {
    let (decl, book) = setup();
    let d = district();
    let (mut pool, _) = generate::fuse(&decl, key(), d).unwrap();
    let mut ev = evaluate(&decl, &pool, &book, d.as_of);
    let mut batch = generate::changes(d, 3_000, 11);
    // A resident moves to another household, and one new household appears.
    let pop = d.file("population").unwrap();
    let mut moved = pop
        .lines()
        .nth(5)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect::<Vec<_>>();
    moved[1] = d.household_ids[100].clone();
    let mut born = pop
        .lines()
        .nth(9)
        .unwrap()
        .split(',')
        .map(String::from)
        .collect::<Vec<_>>();
    born[0] = "990104202601010017".into();
    born[1] = "XH999999999".into();
    born[4] = "2026-01-01".into();
    let header = pop.lines().next().unwrap();
    batch.push((
        "population",
        format!("{header}\n{}\n{}\n", moved.join(","), born.join(",")),
    ));
    let mut touched = Vec::new();
    let mut later = Vec::new();
    for (s, text) in &batch {
        let src = decl.source(s).unwrap();
        let r = pool
            .import_csv(&decl, src, &format!("{s} change"), d.as_of, text, true)
            .unwrap();
        assert_eq!(r.problem_count, 0, "{:?}", r.problems);
        touched.extend(r.touched);
        later.push((src, text.clone()));
    }
    touched.sort_unstable();
    touched.dedup();
    assert!(touched.len() > 1_000 && touched.len() < 4_001);
    let before = ev.clone();
    evaluate_some(&decl, &pool, &book, &mut ev, &touched);
    assert_eq!(ev.results.len(), 4_001);
    assert_ne!(ev, before, "the changes changed some result");

    // A pool built afresh from the same rows and evaluated whole gives the same results.
    let (mut fresh, _) = generate::fuse(&decl, key(), d).unwrap();
    for (src, text) in &later {
        fresh
            .import_csv(&decl, *src, "again", d.as_of, text, false)
            .unwrap();
    }
    let full = evaluate(&decl, &fresh, &book, d.as_of);
    assert_eq!(ev, full);
}

#[test]
fn ids_become_keyed_hashes_and_the_pool_holds_no_raw_id() {
    let (decl, _) = setup();
    let k1 = key();
    let k2 = IdKey::new(b"another key of the same length!!").unwrap();
    let id = "99010419400101001X";
    assert_ne!(k1.hash(IdKind::Person, id), k2.hash(IdKind::Person, id));
    assert_ne!(k1.hash(IdKind::Person, id), k1.hash(IdKind::Household, id));
    assert_eq!(
        k1.hash(IdKind::Person, id),
        k1.hash(IdKind::Person, " 99010419400101001x")
    );
    assert!(IdKey::new(b"short").is_err());
    let d = district();
    let (pool, _) = generate::fuse(&decl, key(), d).unwrap();
    let dump = format!("{pool:?}");
    for (p, h) in d.persons.iter().take(50) {
        assert!(!dump.contains(p.as_str()) && !dump.contains(h.as_str()));
    }
    assert!(!dump.contains('某'));
}

#[test]
fn the_generator_is_deterministic_synthetic_and_plausible() {
    let c = communities();
    let s = Spec {
        households: 1_500,
        seed: 3,
        as_of: as_of(),
    };
    let a = generate::generate(&c, &s);
    let b = generate::generate(&c, &s);
    assert_eq!(a.files, b.files);
    assert_eq!(a.truth, b.truth);
    let other = generate::generate(
        &c,
        &Spec {
            seed: 4,
            ..s.clone()
        },
    );
    assert_ne!(a.files, other.files);
    for (id, _) in &a.persons {
        assert_eq!(id.len(), 18);
        assert!(
            id.starts_with("99"),
            "province 99 does not exist: obviously synthetic"
        );
        assert_eq!(id.chars().last().unwrap(), id_check(&id[..17]));
    }
    let mut address = std::collections::HashMap::new();
    for line in a.file("population").unwrap().lines().skip(1).take(2_000) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(f[2].contains('某'), "{}", f[2]);
        assert!(f[8].starts_with("模拟路"));
        // One address per household; the ID's sequence digit is odd for men.
        assert_eq!(*address.entry(f[1]).or_insert(f[8]), f[8]);
        let odd = (f[0].as_bytes()[16] - b'0') % 2 == 1;
        assert_eq!(odd, f[3] == "M", "{line}");
    }
    // About 2.5 residents a household, 低保 near 0.8 % of residents, every source filled.
    let per = a.residents as f64 / 1_500.0;
    assert!((2.2..2.8).contains(&per), "{per}");
    let rate = a.dibao_persons as f64 / a.residents as f64;
    assert!((0.003..0.02).contains(&rate), "{rate}");
    for (s, text) in &a.files {
        assert!(text.lines().count() > 1, "{s} is empty");
    }
    assert!(a.rows() > 1_500 * 30, "{}", a.rows());
    // The check digit: a known-good example of the scheme.
    assert_eq!(id_check("11010519491231002"), 'X');
}

/// A name with an unquoted comma shifts every field after it: the pseudonymised copy
/// keeps nothing of that row (nor of any refused row once blanked) and no personal row
/// comes from it.
#[test]
fn a_row_with_a_stray_comma_or_refused_keeps_nothing_personal() {
    use cityos_core::assistance::pool::{blank_lines, pseudonymise};
    let (decl, _) = setup();
    let d = district();
    let src = decl.membership();
    let pop = d.file("population").unwrap();
    let mut lines = pop.lines();
    let header = lines.next().unwrap();
    let good = lines.next().unwrap();
    let f: Vec<&str> = good.split(',').collect();
    // 张,三 with an unquoted comma: one field more than the header.
    let mut bad: Vec<String> = f.iter().map(|s| s.to_string()).collect();
    bad[2] = "张,三丰".into();
    let bad = bad.join(",");
    let text = format!("{header}\n{good}\n{bad}\n");
    let (csv, personal) = pseudonymise(&decl, src, &key(), &text).unwrap();
    assert!(!csv.contains("三丰") && !csv.contains('张'), "{csv}");
    for v in &f[3..] {
        if v.chars().count() >= 4 && !v.chars().all(|c| c.is_ascii_digit() || c == '-') {
            assert!(!csv.lines().nth(2).unwrap().contains(v), "{v}: {csv}");
        }
    }
    assert_eq!(personal.len(), 1, "only the readable row: {personal:?}");
    assert_eq!(personal[0].line, 2);
    // Replayed: the blanked row is refused again, named by its line.
    let mut pool = Pool::new(&decl, key());
    pool.set_prehashed(true);
    let rep = pool
        .import_csv(&decl, src, "t", as_of(), &csv, false)
        .unwrap();
    assert_eq!((rep.accepted, rep.refused_lines.clone()), (1, vec![3]));
    // Refused rows blanked: the line stays (lines keep their numbers), its values go.
    let blanked = blank_lines(&csv, &[2]);
    assert_eq!(blanked.lines().count(), csv.lines().count());
    assert!(blanked.lines().nth(1).unwrap().chars().all(|c| c == ','));
    assert_eq!(blanked.lines().next(), csv.lines().next());
}
