//! Hot topics (热点问题, issue 14): the last days' citizen messages grouped into what many
//! people are saying, ranked by how many said it.
//!
//! **Clustering: leaders, not union-find.** Messages are taken oldest first; each joins the
//! topic whose *leader* (first message) it is most like, or leads a new topic. A message is
//! like a leader when their texts' estimated Jaccard similarity ([`super::similar`])
//! reaches `threshold` (anywhere in the district: "共享单车乱停" is one topic in every
//! street), or, for the same category within `near_m`, reaches the lower `near_threshold`
//! (one place's complaint told in different words). Union-find on the same links would
//! chain: A like B, B like C, … until one topic covered a whole street of unrelated
//! complaints; comparing with the leader keeps every member close to one message. Reports
//! that the engine put in one case belong to one topic whatever their words.
//!
//! Candidates come from locality-sensitive hashing (16 bands of 4 minima: a pair at
//! similarity 0.5 shares a band with probability 0.64, at 0.7 with 0.98, at 0.2 with
//! 0.03) plus the leaders of the same category nearby, so the work grows with the number
//! of messages, not its square. Pure and deterministic: the input order does not matter.

use super::similar::{estimate_jaccard, Signature, K};
use crate::dedup::DedupIndex;
use crate::time::Millis;
use std::collections::HashMap;

/// One citizen message of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub report: i64,
    pub case: i64,
    /// The case number (samples link to cases).
    pub number: String,
    pub category: String,
    pub lon: f64,
    pub lat: f64,
    /// Where it is (e.g. the sub-district code).
    pub place: String,
    pub at: Millis,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub threshold: f64,
    pub near_m: f64,
    pub near_threshold: f64,
    /// Topics with fewer messages are left out.
    pub min_count: usize,
    /// At most this many topics (the first, by rank).
    pub limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: 0.5,
            near_m: 200.0,
            near_threshold: 0.3,
            min_count: 2,
            limit: 10,
        }
    }
}

/// Longest label, in characters.
pub const LABEL_CHARS: usize = 30;
/// Sample case numbers per topic.
pub const SAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    /// The most representative message's beginning, personal data masked.
    pub label: String,
    /// Messages.
    pub count: usize,
    /// Distinct cases they are in.
    pub cases: usize,
    /// Places by number of messages (most first, at most 3).
    pub places: Vec<(String, usize)>,
    pub first_seen: Millis,
    pub last_seen: Millis,
    /// Case numbers, newest message first, distinct, at most [`SAMPLES`].
    pub samples: Vec<String>,
    /// The most frequent category.
    pub category: String,
}

const BANDS: usize = 16;
const ROWS: usize = K / BANDS;

fn band_key(s: &Signature, b: usize) -> u64 {
    let mut h = b as u64;
    for &m in &s.mins[b * ROWS..(b + 1) * ROWS] {
        h = (h ^ u64::from(m)).wrapping_mul(0x0100_0000_01B3);
    }
    h
}

/// The messages' hot topics, ranked: most messages first, then most cases, then the most
/// recent, then by label.
pub fn hot_topics(messages: &[Message], o: &Options) -> Vec<Topic> {
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by_key(|&i| (messages[i].at, messages[i].report));
    let sigs: Vec<Signature> = messages.iter().map(|m| Signature::of(&m.text)).collect();
    let mut cat_ids: HashMap<&str, u16> = HashMap::new();
    // Topic of each message, leaders' message index per topic, members per topic.
    let mut leaders: Vec<usize> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut by_case: HashMap<i64, usize> = HashMap::new();
    let mut bands: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut near = DedupIndex::new();
    let mut seen: Vec<usize> = Vec::new();
    for &i in &order {
        let m = &messages[i];
        let next = cat_ids.len() as u16;
        let cat = *cat_ids.entry(m.category.as_str()).or_insert(next);
        let topic = by_case.get(&m.case).copied().or_else(|| {
            let mut best: Option<(f64, usize)> = None;
            let consider = |t: usize, min: f64, best: &mut Option<(f64, usize)>| {
                let s = estimate_jaccard(&sigs[i], &sigs[leaders[t]]);
                if s >= min && best.is_none_or(|(bs, bt)| s > bs || (s == bs && t < bt)) {
                    *best = Some((s, t));
                }
            };
            if sigs[i].is_comparable() {
                seen.clear();
                for b in 0..BANDS {
                    if let Some(ts) = bands.get(&band_key(&sigs[i], b)) {
                        seen.extend_from_slice(ts);
                    }
                }
                seen.sort_unstable();
                seen.dedup();
                for &t in &seen {
                    consider(t, o.threshold, &mut best);
                }
                for hit in near.within(cat, m.lon, m.lat, m.at, o.near_m, Millis::MAX / 4) {
                    consider(hit.case as usize, o.near_threshold, &mut best);
                }
            }
            best.map(|(_, t)| t)
        });
        let t = match topic {
            Some(t) => t,
            None => {
                let t = leaders.len();
                leaders.push(i);
                members.push(Vec::new());
                if sigs[i].is_comparable() {
                    for b in 0..BANDS {
                        bands.entry(band_key(&sigs[i], b)).or_default().push(t);
                    }
                }
                near.upsert(
                    cat,
                    crate::dedup::Entry {
                        case: t as i64,
                        lon: m.lon,
                        lat: m.lat,
                        last_report_at: m.at,
                    },
                );
                t
            }
        };
        members[t].push(i);
        by_case.entry(m.case).or_insert(t);
    }
    let mut topics: Vec<Topic> = members
        .iter()
        .filter(|v| v.len() >= o.min_count.max(1))
        .map(|v| describe(messages, &sigs, v))
        .collect();
    topics.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.cases.cmp(&a.cases))
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.label.cmp(&b.label))
    });
    topics.truncate(o.limit);
    topics
}

/// Distinct keys by how often they occur (most first, then by key).
fn ranked<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<(&'a str, usize)> {
    let mut n: HashMap<&str, usize> = HashMap::new();
    for k in keys {
        *n.entry(k).or_default() += 1;
    }
    let mut n: Vec<(&str, usize)> = n.into_iter().collect();
    n.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    n
}

/// A topic from its members (oldest first).
fn describe(messages: &[Message], sigs: &[Signature], v: &[usize]) -> Topic {
    let places = ranked(v.iter().map(|&i| messages[i].place.as_str()));
    let cats = ranked(v.iter().map(|&i| messages[i].category.as_str()));
    let mut cases: Vec<i64> = v.iter().map(|&i| messages[i].case).collect();
    cases.sort_unstable();
    cases.dedup();
    let mut samples: Vec<String> = Vec::new();
    for &i in v.iter().rev() {
        let n = &messages[i].number;
        if samples.len() < SAMPLES && !samples.contains(n) {
            samples.push(n.clone());
        }
    }
    // The most representative: the highest summed similarity to the others (among the
    // first 50 members), the earliest on a tie.
    let pool = &v[..v.len().min(50)];
    let rep = pool
        .iter()
        .map(|&i| {
            let s: f64 = pool
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| estimate_jaccard(&sigs[i], &sigs[j]))
                .sum();
            (s, i)
        })
        .fold(None, |best: Option<(f64, usize)>, (s, i)| match best {
            Some((bs, _)) if bs >= s => best,
            _ => Some((s, i)),
        })
        .map_or(v[0], |(_, i)| i);
    Topic {
        label: label(&messages[rep].text),
        count: v.len(),
        cases: cases.len(),
        places: places
            .into_iter()
            .take(3)
            .map(|(p, n)| (p.to_string(), n))
            .collect(),
        first_seen: v.iter().map(|&i| messages[i].at).min().unwrap_or(0),
        last_seen: v.iter().map(|&i| messages[i].at).max().unwrap_or(0),
        samples,
        category: cats.first().map_or_else(String::new, |c| c.0.to_string()),
    }
}

/// A message's beginning as a label: personal data masked first (so a cut cannot leave
/// half a phone number readable), whitespace folded, at most [`LABEL_CHARS`] characters.
pub fn label(text: &str) -> String {
    let masked = crate::privacy::mask_personal(text);
    let folded = super::normalise(&masked);
    let mut out: String = folded.chars().take(LABEL_CHARS).collect();
    if folded.chars().count() > LABEL_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::similar::tests::{at, PAIRS, PLACES};
    use super::*;
    use crate::rng::Rng;
    use crate::time::HOUR;

    fn msg(i: usize, text: &str, category: &str, place: usize, at: Millis) -> Message {
        Message {
            report: i as i64,
            case: i as i64,
            number: format!("XH{i:05}"),
            category: category.into(),
            lon: 121.43 + place as f64 * 0.01,
            lat: 31.19,
            place: format!("31010400{place}"),
            at,
            text: text.into(),
        }
    }

    /// Generated week: complaint k said (either way) by 12 − k people in places spread
    /// around, plus one-off messages.
    fn week() -> Vec<Message> {
        let mut r = Rng::new(7);
        let mut out = Vec::new();
        for (k, (x, y)) in PAIRS.iter().enumerate().take(6) {
            for n in 0..(12 - k) {
                let place = r.below(4) as usize;
                let t = if n % 2 == 0 { x } else { y };
                let i = out.len();
                out.push(msg(
                    i,
                    &at(t, PLACES[n % 2]),
                    &format!("cat{k}"),
                    place,
                    r.below(7 * 24) as Millis * HOUR,
                ));
            }
        }
        for (j, (x, _)) in PAIRS.iter().enumerate().skip(6) {
            let i = out.len();
            out.push(msg(i, &at(x, PLACES[j % 8]), "other", 3, 5 * HOUR));
        }
        out
    }

    #[test]
    fn generated_complaints_cluster_into_ranked_topics() {
        let m = week();
        let t = hot_topics(&m, &Options::default());
        assert!(t.len() >= 5, "{t:#?}");
        // The biggest complaint leads; each topic holds one complaint only.
        assert_eq!(t[0].category, "cat0");
        assert!(t[0].count >= 6, "{:#?}", t[0]);
        assert!(t[0].label.contains("井盖"), "{}", t[0].label);
        for x in &t {
            assert!(x.count >= 2);
            assert!(x.samples.len() <= SAMPLES);
            assert!(x.first_seen <= x.last_seen);
            assert!(x.places.len() <= 3);
            assert_eq!(x.cases, x.count, "one case per message here");
        }
        for w in t.windows(2) {
            assert!(w[0].count >= w[1].count);
        }
        // One-off messages are no topic.
        assert!(t.iter().all(|x| x.category != "other"));
        // Deterministic whatever the input order.
        let mut rev = m.clone();
        rev.reverse();
        assert_eq!(hot_topics(&rev, &Options::default()), t);
        // The limit.
        let one = hot_topics(
            &m,
            &Options {
                limit: 1,
                ..Options::default()
            },
        );
        assert_eq!(one, t[..1]);
    }

    #[test]
    fn topics_keep_complaints_apart_and_cases_together() {
        let mut m = vec![
            msg(0, "学校后门的路灯坏了晚上一片漆黑", "light", 1, 0),
            msg(1, "学校后门路灯不亮了，晚上很黑", "light", 1, HOUR),
            msg(2, "学校后门垃圾堆了好几天没人清理", "garbage", 1, HOUR),
        ];
        // A report the engine joined to case 2 by category: same topic whatever it says.
        let mut joined = msg(3, "这里太脏了", "garbage", 1, 2 * HOUR);
        joined.case = 2;
        joined.number = "XH00002".into();
        m.push(joined);
        let t = hot_topics(
            &m,
            &Options {
                min_count: 1,
                ..Options::default()
            },
        );
        assert_eq!(t.len(), 2, "{t:#?}");
        let light = t.iter().find(|x| x.category == "light").unwrap();
        assert_eq!(light.count, 2);
        assert_eq!(light.samples, vec!["XH00001", "XH00000"]);
        let garbage = t.iter().find(|x| x.category == "garbage").unwrap();
        assert_eq!((garbage.count, garbage.cases), (2, 1));
        assert_eq!(garbage.samples, vec!["XH00002"]);
        assert_eq!(garbage.last_seen, 2 * HOUR);
    }

    #[test]
    fn labels_are_masked_before_they_are_cut() {
        let l = label(
            "我的电话13812345678，身份证310104199001011234，小区门口井盖没了很危险请尽快处理",
        );
        assert!(!l.contains("13812345678"), "{l}");
        assert!(!l.contains("5678"), "{l}");
        assert!(!l.contains("1234"), "{l}");
        assert!(l.chars().count() <= LABEL_CHARS + 1);
        // A phone number cut by the label's end is masked all the same.
        let l = label("小区门口井盖没了很危险很危险很危险请联系13812345678");
        assert!(!l.contains("138123"), "{l}");
    }

    #[test]
    fn no_messages_no_topics() {
        assert!(hot_topics(&[], &Options::default()).is_empty());
        let m = vec![msg(0, "！！！", "x", 0, 0), msg(1, "？？", "x", 0, 0)];
        assert!(hot_topics(&m, &Options::default()).is_empty());
    }

    /// Many messages, most of them noise: the paraphrased complaints still come out on top.
    #[test]
    fn topics_stand_out_of_noise() {
        let mut r = Rng::new(3);
        let chars: Vec<char> = "小区门口井盖路灯垃圾停车噪音施工水管漏水树枝电线污水共享单车人行道学校医院公园菜市场地铁站晚上很危险没人清理堵住影响休息"
            .chars()
            .collect();
        let m: Vec<Message> = (0..3_000)
            .map(|i| {
                let text: String = if i % 3 == 0 {
                    let (x, y) = PAIRS[r.below(10) as usize];
                    at(
                        if r.chance(0.5) { x } else { y },
                        PLACES[r.below(8) as usize],
                    )
                } else {
                    (0..20)
                        .map(|_| chars[r.below(chars.len() as u64) as usize])
                        .collect()
                };
                let mut x = msg(
                    i,
                    &text,
                    &format!("c{}", r.below(40)),
                    r.below(13) as usize,
                    r.below(7 * 24) as Millis * HOUR,
                );
                x.lon += r.range_f64(-0.01, 0.01);
                x
            })
            .collect();
        let t = hot_topics(&m, &Options::default());
        assert_eq!(t.len(), 10);
        // The leading topics are the generated complaints (about 100 messages each, spread
        // over several topics by place wording), not the noise.
        for x in &t[..5] {
            assert!(x.count >= 10, "{x:#?}");
            assert!(PLACES.iter().any(|p| x.label.starts_with(p)), "{x:#?}");
        }
    }
}
