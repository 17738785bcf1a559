//! Taxonomy loading, template expansion, validation with places.

use super::fixture::{self, TAXONOMY};
use cityos_core::taxonomy::{Priority, TaxonomyError};
use cityos_core::{Level, Taxonomy};

#[test]
fn loads_with_inheritance_and_templates() {
    let f = fixture::fx();
    let sv = f.tax.category("street_vending").unwrap();
    assert_eq!(sv.lead, "urban_management");
    assert_eq!(sv.lowest_level, Level::Subdistrict);
    assert_eq!(sv.deadlines[3].to_string(), "1wd");
    assert_eq!(sv.merge_priority_at, vec![2, 3]);
    assert!(
        f.tax.category("street").is_none(),
        "groups are not reportable"
    );
    // 1 + 2 (sub-ccc) + 1 + 2 (um) + roads + water + rc-fallback + 4 communities
    assert_eq!(f.tax.departments.len(), 13);
    let um = f.tax.department("um-310002").unwrap();
    assert_eq!(um.name_zh, "第2街道城管中队");
    assert_eq!(um.level, Level::Subdistrict);
    assert_eq!(
        f.tax.department("rc-310001002").unwrap().name_zh,
        "第1-2居委会"
    );
    assert_eq!(f.tax.relative_factor(sv, Priority::High), 0.5);
    let le = f.tax.category("lone_elder").unwrap();
    assert_eq!(f.tax.relative_factor(le, Priority::High), 1.0);
    // Public only where the taxonomy says so (here: inherited from the group).
    assert!(sv.public && f.tax.category("road_damage").unwrap().public);
    assert!(!le.public, "a category is non-public unless stated");
}

fn problems(text: &str) -> Vec<String> {
    let f = fixture::fx();
    match Taxonomy::from_toml(text, &f.territory) {
        Err(TaxonomyError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
        Err(e) => vec![e.to_string()],
        Ok(_) => vec![],
    }
}

#[test]
fn syntax_errors_carry_the_position() {
    let p = problems("[[category]]\ncode = \"x\"\nname_zh = \n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("taxonomy does not parse"), "{p:?}");
    assert!(p[0].contains("line 3"), "{p:?}");
    let p = problems(
        "[[category]]\ncode = \"x\"\nname_zh = \"x\"\nname_en = \"x\"\ncolour = \"red\"\n",
    );
    assert!(p[0].contains("unknown field `colour`"), "{p:?}");
}

#[test]
fn every_semantic_problem_is_reported_with_its_line() {
    let bad = TAXONOMY
        .replace("lead = \"roads\"", "lead = \"bridges\"")
        .replace("handle = \"4h\"", "handle = \"4 hours\"")
        .replace(
            "parent = \"street\"\nmerge_priority_at",
            "parent = \"streets\"\nmerge_priority_at",
        )
        + "\n[[category]]\ncode = \"lone_elder\"\nname_zh = \"重复\"\nname_en = \"dup\"\n";
    let p = problems(&bad);
    let line_of = |needle: &str| bad.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let expect = [
        (
            line_of("parent = \"streets\""),
            "parent \"streets\" is not declared before",
        ),
        (
            line_of("lead = \"bridges\""),
            "no district-level department serves line \"bridges\"",
        ),
        (line_of("handle = \"4 hours\""), "deadlines.handle"),
    ];
    for (line, msg) in expect {
        assert!(
            p.iter()
                .any(|x| x.starts_with(&format!("line {line},")) && x.contains(msg)),
            "expected line {line}: {msg} in {p:#?}"
        );
    }
    assert!(
        p.iter().any(|x| x.contains("\"lone_elder\" is used twice")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|x| x.contains("lacks (after inheritance)")),
        "{p:#?}"
    );
    assert!(p.len() >= 5, "{p:#?}");
}

#[test]
fn department_problems() {
    let bad = TAXONOMY.replace(
        "code = \"roads\"\nname_zh = \"区道路管理所\"\nname_en = \"Roads\"\nline = \"roads\"\nlevel = \"district\"",
        "code = \"roads\"\nname_zh = \"区道路管理所\"\nname_en = \"Roads\"\nline = \"roads\"\nlevel = \"subdistrict\"\nregion = \"999\"",
    );
    let p = problems(&bad);
    assert!(
        p.iter()
            .any(|x| x.contains("region \"999\" is not in the territory")),
        "{p:#?}"
    );
    let no_ccc = TAXONOMY.replace(
        "line = \"command\"\nlevel = \"district\"",
        "line = \"ops\"\nlevel = \"district\"",
    );
    let p = problems(&no_ccc);
    assert!(p.iter().any(|x| x.contains("line \"command\"")), "{p:#?}");
    let tmpl = TAXONOMY.replacen("each = \"subdistrict\"", "each = \"grid\"", 1);
    let p = problems(&tmpl);
    assert!(
        p.iter().any(|x| x.contains("templates expand over")),
        "{p:#?}"
    );
}

#[test]
fn questions_are_checked_and_kept_in_order() {
    let good = format!(
        "{TAXONOMY}\n[[category.questions]]\ncode = \"alone\"\ndatatype = \"singlevaluelist\"\nrequired = true\ndescription = \"独居？\"\nvalues = [{{ key = \"yes\", name = \"是\" }}, {{ key = \"no\", name = \"否\" }}]\n\n[[category.questions]]\ncode = \"age\"\ndatatype = \"number\"\ndescription = \"年龄\"\n"
    );
    let f = fixture::fx();
    let tax = Taxonomy::from_toml(&good, &f.territory).unwrap();
    let c = tax.category("lone_elder").unwrap();
    assert_eq!(c.questions.len(), 2);
    assert_eq!(c.questions[0].code, "alone");
    assert!(c.questions[0].required && !c.questions[1].required);
    assert_eq!(c.questions[0].values[1], ("no".into(), "否".into()));
    assert!(tax.category("road_damage").unwrap().questions.is_empty());
    assert_eq!(tax.group("street").unwrap().name_en, "Street order");

    let bad = format!(
        "{TAXONOMY}\n[[category.questions]]\ncode = \"a\"\ndatatype = \"colour\"\ndescription = \"?\"\n\n[[category.questions]]\ncode = \"b\"\ndatatype = \"multivaluelist\"\ndescription = \"?\"\n\n[[category.questions]]\ncode = \"b\"\ndatatype = \"number\"\ndescription = \"?\"\nvalues = [{{ key = \"1\", name = \"one\" }}]\n"
    );
    let p = problems(&bad);
    for needle in [
        "unknown datatype \"colour\"",
        "\"b\" is a multivaluelist but lists no values",
        "\"b\" is asked twice",
        "lists values but is a number",
    ] {
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:#?}");
    }
    assert!(p.iter().all(|x| x.starts_with("line ")), "{p:#?}");
}

#[test]
fn correlations_name_known_categories() {
    let f = fixture::fx();
    let good = format!("{TAXONOMY}\n[[correlation]]\ncategories = [\"road_damage\", \"street_vending\"]\nradius_m = 50\nwindow_h = 2\n");
    let tax = Taxonomy::from_toml(&good, &f.territory).unwrap();
    let rel: Vec<&str> = tax.correlated("road_damage").map(|(c, _)| c).collect();
    assert_eq!(rel, vec!["street_vending"]);
    assert_eq!(tax.correlated("lone_elder").count(), 0);
    let bad = format!("{TAXONOMY}\n[[correlation]]\ncategories = [\"road_damage\", \"potholes\"]\nradius_m = 0\nwindow_h = 2\n\n[[correlation]]\ncategories = [\"road_damage\"]\nradius_m = 10\nwindow_h = 1\n");
    let p = problems(&bad);
    for needle in [
        "correlation names unknown category \"potholes\"",
        "radius_m must be above 0",
        "relates at least two categories",
    ] {
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:#?}");
    }
}
