//! The text helpers of smart intake (issue 14): the gazetteer matcher and locator, urgency
//! cues in simplified and traditional spelling with negations, the intake file's checks,
//! and the message generator's determinism — on the Xuhui data files.

use cityos_core::classify::cues::{self, Cue};
use cityos_core::classify::generate;
use cityos_core::classify::intake::{parse_intake, IntakeConfig};
use cityos_core::classify::place::{parse_gazetteer, Gazetteer, PlaceKind};
use cityos_core::{Level, Priority, Taxonomy, Territory};
use std::sync::OnceLock;

const TERRITORY: &str = include_str!("../../../../data/xuhui/territory.geojson");
const TAXONOMY: &str = include_str!("../../../../data/xuhui/taxonomy.toml");
const INTAKE: &str = include_str!("../../../../data/xuhui/intake.toml");
const GAZETTEER: &str = include_str!("../../../../data/xuhui/gazetteer.csv");

fn territory() -> &'static Territory {
    static T: OnceLock<Territory> = OnceLock::new();
    T.get_or_init(|| Territory::from_geojson(&[TERRITORY]).unwrap())
}

fn taxonomy() -> &'static Taxonomy {
    static T: OnceLock<Taxonomy> = OnceLock::new();
    T.get_or_init(|| Taxonomy::from_toml(TAXONOMY, territory()).unwrap())
}

fn intake() -> &'static IntakeConfig {
    static I: OnceLock<IntakeConfig> = OnceLock::new();
    I.get_or_init(|| {
        parse_intake(INTAKE, taxonomy(), territory(), &|n| {
            assert_eq!(n, "gazetteer.csv");
            Ok(GAZETTEER.to_string())
        })
        .unwrap()
    })
}

fn code_of(name: &str) -> String {
    let t = territory();
    t.regions()
        .find(|(_, r)| r.name_zh == name)
        .map(|(_, r)| r.code.clone())
        .unwrap_or_else(|| panic!("no region {name}"))
}

#[test]
fn the_shipped_intake_file_and_gazetteer_load() {
    let i = intake();
    assert_eq!(i.threshold, 0.6);
    assert_eq!(i.triage_category, "triage");
    assert_eq!(i.labels.len(), 7);
    assert!(i.cues.len() >= 6);
    let roads = i
        .gazetteer
        .places
        .iter()
        .filter(|p| p.kind == PlaceKind::Road)
        .count();
    let marks = i
        .gazetteer
        .places
        .iter()
        .filter(|p| p.kind == PlaceKind::Landmark)
        .count();
    assert!(
        roads >= 50 && marks >= 50,
        "{roads} roads, {marks} landmarks"
    );
    // A line label maps to its default category; a category code is itself.
    assert_eq!(
        i.category_of("环境保护", taxonomy()),
        Some(("noise".to_string(), Some("环境保护".to_string())))
    );
    assert_eq!(
        i.category_of("noise", taxonomy()),
        Some(("noise".to_string(), None))
    );
    assert_eq!(i.category_of("comp_public", taxonomy()), None, "a group");
    assert_eq!(i.category_of("外星人", taxonomy()), None);
}

#[test]
fn a_community_named_in_the_text_locates_the_report_there() {
    let g = &intake().gazetteer;
    let text = "您好，永康居委会门口的井盖不见了，请尽快处理";
    let m = g.matches(text);
    assert_eq!(m[0].word, "永康居委会");
    assert_eq!(m[0].kind, "community");
    assert_eq!(m[0].region.as_deref(), Some(code_of("永康居委会").as_str()));
    let l = g.locate(text).unwrap();
    assert_eq!(l.by.word, "永康居委会");
    let ch = territory().locate(l.lon, l.lat).unwrap();
    let id = territory().by_code(&code_of("永康居委会")).unwrap();
    assert_eq!(ch.at(Level::Community), Some(id), "inside the community");
}

#[test]
fn short_forms_match_only_when_unique_and_the_most_specific_place_wins() {
    let g = &intake().gazetteer;
    // 「永康社区」 and 「永康」 are the community's short forms.
    assert_eq!(g.matches("永康社区有人摆摊")[0].word, "永康社区");
    // 「天平」 is both 天平路街道 and 天平居委会: no match on it alone.
    assert!(
        g.matches("天平这里垃圾很多").is_empty(),
        "{:?}",
        g.matches("天平这里垃圾很多")
    );
    // 「天平街道」 is the sub-district's.
    let m = g.matches("天平街道有个井盖坏了");
    assert_eq!(m[0].word, "天平街道");
    assert_eq!(m[0].kind, "subdistrict");
    // Community beats sub-district; a landmark with a point beats both.
    let m = g.matches("徐家汇街道永康居委会附近");
    assert_eq!(m[0].kind, "community");
    assert_eq!(m[1].kind, "subdistrict");
    let l = g.locate("徐家汇街道上海体育场门口井盖缺失").unwrap();
    assert_eq!(l.by.word, "上海体育场");
    assert_eq!(l.by.kind, "landmark");
    // Longest match: 漕溪北路 is not read as 漕溪路.
    let m = g.matches("漕溪北路上路灯不亮");
    assert_eq!(m[0].word, "漕溪北路");
    assert_eq!(m[0].kind, "road");
    assert!(g.matches("今天天气很好").is_empty());
    assert!(g.locate("").is_none());
}

#[test]
fn full_width_text_matches_too() {
    let g = &intake().gazetteer;
    // Full-width spaces and letters are folded before matching.
    let m = g.matches("　漕溪北路　ＡＢＣ");
    assert_eq!(m[0].word, "漕溪北路");
}

#[test]
fn a_bad_gazetteer_is_refused_row_by_row() {
    let t = territory();
    let csv = "name,kind,region,lon,lat\n漕溪北路,road,,121.4365,31.193\n漕溪北路,road,,121.4365,31.193\nX,road,,121.43,31.19\n某某,river,,121.43,31.19\n远方,landmark,,0,0\n某处,landmark,999,,\n无处,landmark,,,\n坏数,landmark,,abc,31.1\n";
    let e = parse_gazetteer(csv, t).unwrap_err().0;
    let want = [
        "line 3: \"漕溪北路\" is listed already on line 2",
        "line 4: name \"X\" is shorter than 2 characters",
        "line 5: kind \"river\"",
        "line 6: position 0, 0 is outside the territory",
        "line 7: region \"999\" is not a region of the territory",
        "line 8: a place needs a region or a position",
        "line 9: lon \"abc\"",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, w) in e.iter().zip(want) {
        assert!(got.starts_with(w), "{got} / {w}");
    }
    let e = parse_gazetteer("名字,kind\n", t).unwrap_err().0;
    assert!(e[0].contains("name, region, lon, lat"), "{e:?}");
}

#[test]
fn a_bad_intake_file_names_each_problem_by_line() {
    let text = "threshold = 1.5\ntriage_category = \"nope\"\n[labels]\n\"城乡建设\" = \"comp_public\"\n[[cue]]\nwords = []\npriority = \"low\"\ncategory = \"x\"\n";
    let e = parse_intake(text, taxonomy(), territory(), &|_| Ok(String::new())).unwrap_err();
    let want = [
        "line 1: threshold 1.5",
        "line 2: triage_category \"nope\"",
        "line 4: label \"城乡建设\" maps to \"comp_public\"",
        "line 6: a cue needs words",
        "line 7: priority \"low\"",
        "line 8: category \"x\"",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, w) in e.iter().zip(want) {
        assert!(got.starts_with(w), "{got} / {w}");
    }
    let e = parse_intake("threshold = \"high\"\n", taxonomy(), territory(), &|_| {
        Ok(String::new())
    })
    .unwrap_err();
    assert!(e[0].starts_with("line 1:"), "{e:?}");
    let e = parse_intake("gazetteer = \"g.csv\"\n", taxonomy(), territory(), &|_| {
        Err("no such file".into())
    })
    .unwrap_err();
    assert_eq!(
        e,
        vec!["line 1: gazetteer \"g.csv\": no such file".to_string()]
    );
    let e = parse_intake("gazetteer = \"g.csv\"\n", taxonomy(), territory(), &|_| {
        Ok("name,kind,region,lon,lat\n某处,landmark,999,,\n".into())
    })
    .unwrap_err();
    assert_eq!(
        e,
        vec!["g.csv: line 2: region \"999\" is not a region of the territory".to_string()]
    );
    let e = parse_intake("colour = 1\n", taxonomy(), territory(), &|_| {
        Ok(String::new())
    })
    .unwrap_err();
    assert!(
        e[0].starts_with("line 1:") && e[0].contains("colour"),
        "{e:?}"
    );
}

fn fired(text: &str) -> Vec<String> {
    cues::find(&intake().cues, text)
        .into_iter()
        .map(|h| h.word)
        .collect()
}

#[test]
fn cues_fire_in_simplified_and_traditional_spelling() {
    assert_eq!(fired("楼道里有很重的煤气味"), ["煤气味"]);
    assert_eq!(fired("樓道裡有很重的煤氣味"), ["煤气味"]);
    assert_eq!(fired("厨房燃氣洩漏了"), ["燃气泄漏"]);
    assert_eq!(fired("有人困在电梯里"), ["困在电梯"]);
    assert_eq!(fired("有人困在電梯裡"), ["困在电梯"]);
    assert_eq!(fired("配电箱漏電"), ["漏电"]);
    assert_eq!(fired("老人摔倒了"), ["老人摔倒"]);
    assert_eq!(fired("围墙坍塌"), ["坍塌"]);
    assert_eq!(fired("对面楼着火了"), ["着火"]);
    assert_eq!(fired("對面樓著火了"), ["着火"]);
    assert!(fired("小区绿化带有人种菜").is_empty());
    // A cue's priority and whether it skips triage come with it.
    let hits = cues::find(&intake().cues, "燃气泄漏");
    let c = &intake().cues[hits[0].cue];
    assert_eq!(c.priority, Priority::Urgent);
    assert!(c.skip_triage);
    assert_eq!(c.category.as_deref(), Some("gas_alarm"));
}

#[test]
fn a_negated_cue_does_not_fire() {
    assert!(fired("没有煤气味，只是想问一下燃气费").is_empty());
    assert!(fired("沒有聞到煤氣味").is_empty());
    assert!(fired("现在无煤气味了").is_empty());
    assert!(fired("不是着火，是烧烤的烟").is_empty());
    // A negation in another clause does not cancel it.
    assert_eq!(fired("没有人管，楼道煤气味很重"), ["煤气味"]);
    // Negation after the cue does not cancel it.
    assert_eq!(fired("困在电梯里出不去"), ["困在电梯"]);
}

#[test]
fn cues_match_each_cue_once_in_list_order() {
    let list = vec![
        Cue {
            words: vec!["漏水".into()],
            priority: Priority::High,
            skip_triage: false,
            category: None,
        },
        Cue {
            words: vec!["火".into(), "烟".into()],
            priority: Priority::Urgent,
            skip_triage: true,
            category: None,
        },
    ];
    let h = cues::find(&list, "冒烟了，又有火，还漏水");
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].cue, h[0].word.as_str()), (0, "漏水"));
    assert_eq!((h[1].cue, h[1].word.as_str()), (1, "火"));
    assert!(cues::find(&list, "").is_empty());
    assert_eq!(cues::to_simplified("電梯　關人"), "电梯 关人");
}

#[test]
fn the_generator_is_deterministic_and_covers_every_citizen_category() {
    let places = generate::place_names(&intake().gazetteer);
    let a = generate::messages(taxonomy(), &places, 500, 7);
    let b = generate::messages(taxonomy(), &places, 500, 7);
    let c = generate::messages(taxonomy(), &places, 500, 8);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let cats = generate::citizen_categories(taxonomy());
    assert!(cats.len() > 50);
    assert!(cats.iter().all(|c| c.public && c.code != "triage"));
    let labels: std::collections::BTreeSet<&str> = a.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels.len(), cats.len());
    // Varied: few messages repeat, each readable, most name a place.
    let texts: std::collections::BTreeSet<&str> = a.iter().map(|e| e.text.as_str()).collect();
    assert!(texts.len() > 480, "{} distinct", texts.len());
    assert!(a
        .iter()
        .all(|e| cityos_core::classify::readable(&e.text).is_ok()));
    let placed = a
        .iter()
        .filter(|e| !intake().gazetteer.matches(&e.text).is_empty())
        .count();
    assert!(placed > 350, "{placed} of 500 name a place");
}

#[test]
fn a_model_trained_on_generated_text_reads_plain_chinese() {
    let g = Gazetteer::new(territory(), Vec::new());
    let m = generate::demo_model(taxonomy(), &g, 1500, 3).unwrap();
    let p = m.predict("永康居委会门口井盖被盗了，很危险").unwrap();
    assert!(
        p.label.starts_with("manhole_cover"),
        "{} {}",
        p.label,
        p.score
    );
    let p = m.predict("楼上邻居装修噪音太吵了").unwrap();
    assert!(
        ["noise", "neighbour_dispute", "construction_noise"].contains(&p.label.as_str()),
        "{}",
        p.label
    );
}
