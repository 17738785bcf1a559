//! Generated citizen messages (issue 14): varied plain-Chinese reports for the taxonomy's
//! citizen (public) categories, from the project's own templates × place names × each
//! category's name and keywords — deterministic for a seed. The demo trains its model on
//! them and the simulator sends them as text-only reports; no real citizen's sentence is
//! involved.

use super::train::Example;
use crate::rng::Rng;
use crate::taxonomy::Category;
use crate::Taxonomy;

const OPENERS: &[&str] = &[
    "",
    "",
    "您好，",
    "你好，",
    "我要反映一个问题：",
    "市民反映，",
    "请问有人管吗？",
    "投诉：",
    "麻烦看一下，",
    "我是附近的居民，",
    "紧急反映，",
    "打扰了，",
];

const TIMES: &[&str] = &[
    "",
    "今天早上",
    "昨天晚上",
    "这几天",
    "最近一个月",
    "刚才",
    "从上周开始",
    "每天晚上",
    "今天下午",
    "已经好几天了，",
    "周末",
    "凌晨",
];

const PLACE_FORMS: &[&str] = &[
    "{p}",
    "{p}附近",
    "{p}门口",
    "{p}旁边",
    "在{p}",
    "{p}这边",
    "{p}对面",
    "{p}那里",
];

const BODIES: &[&str] = &[
    "{t}{at}{k}",
    "{at}{t}发现{k}",
    "{t}{at}有{k}的情况",
    "{at}{k}，{t}一直这样",
    "{t}看到{at}{k}",
    "{at}出现{n}的问题",
    "反映{n}：{at}{k}",
    "{at}{k}，很严重",
    "{t}路过{at}，{k}",
    "{at}这里{k}，没人管",
    "关于{n}，{at}{k}",
    "{at}{k}，{k2}",
];

const ASKS: &[&str] = &[
    "。",
    "，请尽快处理。",
    "，希望有关部门管一管。",
    "，麻烦派人来看看。",
    "，谢谢！",
    "，已经反映过好几次了，一直没人管。",
    "，影响居民生活。",
    "，存在安全隐患。",
    "，请相关部门核实处理。",
    "，希望尽快解决，谢谢。",
    "！",
    "，老人小孩都不方便。",
];

fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.below(xs.len() as u64) as usize]
}

/// The phrases a category is known by: its keywords and the parts of its Chinese name
/// (「井盖破损、移位」 gives 井盖破损 and 移位; parentheses dropped).
pub fn phrases(c: &Category) -> Vec<String> {
    let mut out: Vec<String> = c.keywords.clone();
    let name: String = c
        .name_zh
        .split(['（', '('])
        .next()
        .unwrap_or(&c.name_zh)
        .to_string();
    out.push(name.replace('、', ""));
    for part in name.split('、') {
        if part.chars().count() >= 2 && !out.iter().any(|x| x == part) {
            out.push(part.to_string());
        }
    }
    out
}

/// One message about category `c`, at `place` (a place name) or nowhere named.
pub fn message(rng: &mut Rng, c: &Category, place: Option<&str>) -> String {
    let ph = phrases(c);
    let k = ph[rng.below(ph.len() as u64) as usize].as_str();
    let k2 = ph[rng.below(ph.len() as u64) as usize].as_str();
    let name = c.name_zh.split(['（', '(']).next().unwrap_or(&c.name_zh);
    let at = match place {
        Some(p) => pick(rng, PLACE_FORMS).replace("{p}", p),
        None => String::new(),
    };
    let body = pick(rng, BODIES)
        .replace("{t}", pick(rng, TIMES))
        .replace("{at}", &at)
        .replace("{k2}", if k2 == k { "情况比较严重" } else { k2 })
        .replace("{k}", k)
        .replace("{n}", name);
    format!("{}{}{}", pick(rng, OPENERS), body, pick(rng, ASKS))
}

/// The citizen (public) categories a generator writes about, in taxonomy order.
pub fn citizen_categories(tax: &Taxonomy) -> Vec<&Category> {
    tax.categories
        .iter()
        .filter(|c| c.public && !c.group)
        .collect()
}

/// `n` labelled messages spread evenly over the citizen categories (label = category
/// code), each naming one of `places` four times in five — the same for the same seed.
pub fn messages(tax: &Taxonomy, places: &[String], n: usize, seed: u64) -> Vec<Example> {
    messages_for(&citizen_categories(tax), places, n, seed)
}

/// The place names messages mention: the gazetteer's roads, landmarks and regions.
pub fn place_names(g: &super::place::Gazetteer) -> Vec<String> {
    g.places.iter().map(|p| p.name.clone()).collect()
}

/// The commonest citizen categories of the simulated day and the urgent ones: the live
/// simulator sends their reports as text alone more often than the others'.
pub const DEMO_CATEGORIES: [&str; 24] = [
    "exposed_garbage",
    "illegal_parking",
    "street_vending",
    "noise",
    "shop_encroachment",
    "road_damage",
    "streetlight_fault",
    "illegal_construction",
    "food_safety",
    "price_complaint",
    "property_dispute",
    "manhole_cover_missing",
    "sewage_overflow",
    "tree_collapse",
    "waterlogging",
    "gas_alarm",
    "lift_entrapment",
    "fire_incident",
    "water_outage",
    "power_outage",
    "catering_fumes",
    "group_renting",
    "bike_disorder",
    "residential_leak",
];

/// `n` labelled messages spread evenly over `cats` (as [`messages`]).
pub fn messages_for(cats: &[&Category], places: &[String], n: usize, seed: u64) -> Vec<Example> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    if cats.is_empty() {
        return out;
    }
    for i in 0..n {
        let c = cats[i % cats.len()];
        let place = (!places.is_empty() && rng.chance(0.8))
            .then(|| places[rng.below(places.len() as u64) as usize].as_str());
        out.push(Example {
            text: message(&mut rng, c, place),
            label: c.code.clone(),
        });
    }
    out
}

/// The demo's model: trained on `n` generated messages about every citizen category,
/// deterministic for the seed.
pub fn demo_model(
    tax: &Taxonomy,
    g: &super::place::Gazetteer,
    n: usize,
    seed: u64,
) -> Result<super::Model, super::TrainError> {
    let cats = citizen_categories(tax);
    let examples = messages_for(&cats, &place_names(g), n, seed);
    super::train(
        &examples,
        &super::TrainOptions {
            seed,
            min_df: 2,
            // A hundred labels: the NBSVM alone and three calibration folds keep the
            // demo's start short (generated text separates well without the mix).
            plain_mix: 0.0,
            calib_folds: 3,
            ..Default::default()
        },
    )
}
