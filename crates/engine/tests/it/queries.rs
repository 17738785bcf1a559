//! Case lists and statistics, checked against an in-memory oracle on both stores.

use super::backend::{config, Backend};
use crate::story;
use cityos_core::case::{Channel, State};
use cityos_core::rng::Rng;
use cityos_core::time::{local, Date, Millis, DAY, HOUR, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::{Case, Domain, Level, Priority, Role};
use cityos_engine::query::{CaseQuery, Cursor, Sort};
use cityos_engine::Store;

fn t0() -> Millis {
    local(Date::new(2026, 11, 25).unwrap(), 8, 0)
}

/// What a query should return, computed from all cases in memory.
fn oracle(all: &[Case], q: &CaseQuery) -> Vec<i64> {
    let mut v: Vec<&Case> = all
        .iter()
        .filter(|c| q.states.is_empty() || q.states.contains(&c.state))
        .filter(|c| q.categories.is_empty() || q.categories.contains(&c.category))
        .filter(|c| q.domains.is_empty() || q.domains.contains(&c.domain))
        .filter(|c| q.region.as_ref().is_none_or(|r| c.regions.contains(r)))
        .filter(|c| q.department.as_ref().is_none_or(|d| c.task(d).is_some()))
        .filter(|c| q.min_priority.is_none_or(|p| c.priority >= p))
        .filter(|c| {
            q.overdue
                .is_none_or(|o| c.due().is_some_and(|d| d < q.now) == o)
        })
        .filter(|c| q.created_from.is_none_or(|f| c.created_at >= f))
        .filter(|c| q.created_to.is_none_or(|t| c.created_at < t))
        .filter(|c| {
            q.text
                .as_ref()
                .is_none_or(|t| c.title.contains(t.as_str()) || c.number == *t)
        })
        .collect();
    let key = |c: &Case| match q.sort {
        Sort::Deadline => c.due().unwrap_or(i64::MAX),
        Sort::Created => c.created_at,
        Sort::Updated => c.updated_at,
    };
    v.sort_by_key(|c| (key(c), c.id));
    if q.descending {
        v.reverse();
    }
    v.iter().map(|c| c.id).collect()
}

/// Every page of a query, following the cursors.
fn all_pages(store: &mut dyn Store, q: &CaseQuery) -> Vec<i64> {
    let mut out = Vec::new();
    let mut q = q.clone();
    for _ in 0..1000 {
        let page = store.list_cases(&q).unwrap();
        assert!(page.cases.len() <= q.limit);
        out.extend(page.cases.iter().map(|c| c.id));
        match page.next {
            Some(c) => {
                assert_eq!(Cursor::decode(&c.encode()), Some(c));
                q.after = Some(c);
            }
            None => return out,
        }
    }
    panic!("pagination does not end");
}

story!(lists_and_stats_match_the_oracle);
fn lists_and_stats_match_the_oracle(b: &Backend) {
    let cfg = config();
    let mut e = b.engine();
    let mut rng = Rng::new(5);
    let cats: Vec<String> = cfg
        .taxonomy
        .categories
        .iter()
        .map(|c| c.code.clone())
        .collect();
    let subs: Vec<_> = cfg
        .territory
        .regions()
        .filter(|(_, r)| r.level == Level::Subdistrict)
        .map(|(id, _)| id)
        .collect();
    let mut now = t0();
    for i in 0..90 {
        now += 20 * MINUTE;
        let sub = subs[rng.below(subs.len() as u64) as usize];
        let p = cfg.territory.interior_point(sub);
        let r = NewReport {
            channel: [Channel::Citizen, Channel::Inspector, Channel::Sensor][i % 3],
            category: cats[rng.below(cats.len() as u64) as usize].clone(),
            lon: p[0] + rng.range_f64(-0.002, 0.002),
            lat: p[1] + rng.range_f64(-0.002, 0.002),
            text: format!("第{i}号 测试_100% 上报"),
            contact: None,
            at: now,
            media: Vec::new(),
            priority: None,
            playbook: None,
            suggestion: None,
        };
        let Ok(o) = e.submit(r) else { continue };
        if o.case.state == State::Reported && rng.chance(0.5) {
            let officer = Actor {
                id: "o".into(),
                role: Role::DistrictOfficer,
                department: None,
                scope: None,
            };
            e.transition(o.case.id, Command::new(Action::File, officer), now)
                .unwrap();
        }
    }
    e.tick(now + 2 * HOUR).unwrap();
    let store = e.store();
    let all = store.load_all_cases().unwrap();
    assert!(all.len() > 60);
    let some = &all[17];
    let lead = all
        .iter()
        .find_map(|c| c.lead_task().map(|t| t.department.clone()))
        .unwrap();
    let later = now + 3 * HOUR;
    let queries = vec![
        CaseQuery {
            limit: 7,
            ..Default::default()
        },
        CaseQuery {
            limit: 5,
            descending: true,
            sort: Sort::Created,
            ..Default::default()
        },
        CaseQuery {
            limit: 9,
            sort: Sort::Updated,
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            states: vec![State::Reported, State::Filed],
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            domains: vec![Domain::Safety, Domain::Market],
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            categories: vec![some.category.clone()],
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            region: some.regions.subdistrict.clone(),
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            region: some.regions.community.clone(),
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            region: some.regions.community.clone(),
            region_level: Some(Level::Community),
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            region: some.regions.subdistrict.clone(),
            region_level: Some(Level::Subdistrict),
            descending: true,
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            region: Some("310104".into()),
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            department: Some(lead.clone()),
            ..Default::default()
        },
        // The plan for a department with many tasks (walk the order, test each case).
        CaseQuery {
            limit: 4,
            department: Some(lead.clone()),
            department_busy: true,
            ..Default::default()
        },
        CaseQuery {
            limit: 4,
            min_priority: Some(Priority::High),
            ..Default::default()
        },
        CaseQuery {
            limit: 6,
            overdue: Some(true),
            now: later,
            ..Default::default()
        },
        CaseQuery {
            limit: 6,
            overdue: Some(false),
            now: later,
            ..Default::default()
        },
        CaseQuery {
            limit: 6,
            created_from: Some(t0() + 10 * HOUR),
            created_to: Some(t0() + 20 * HOUR),
            ..Default::default()
        },
        CaseQuery {
            limit: 3,
            text: Some("测试_100%".into()),
            ..Default::default()
        },
        CaseQuery {
            limit: 3,
            text: Some("第1号".into()),
            ..Default::default()
        },
        CaseQuery {
            limit: 3,
            text: Some(some.number.clone()),
            ..Default::default()
        },
        CaseQuery {
            limit: 3,
            text: Some("100%%".into()),
            ..Default::default()
        },
    ];
    for q in &queries {
        assert_eq!(all_pages(store, q), oracle(&all, q), "{q:?}");
    }
    // The escape works: "_" and "%" are not wildcards.
    assert!(oracle(&all, &queries[20]).is_empty());
    // Statistics agree with the oracle.
    let st = store
        .stats(
            &CaseQuery {
                now: later,
                ..Default::default()
            },
            t0() + DAY,
        )
        .unwrap();
    assert_eq!(st.total as usize, all.len());
    assert_eq!(
        st.by_state.iter().map(|r| r.1).sum::<i64>() as usize,
        all.len()
    );
    // Overdue: the open cases the deadline timer has marked.
    let open_overdue = all
        .iter()
        .filter(|c| c.state.is_open() && c.overdue)
        .count();
    assert!(open_overdue > 0);
    assert_eq!(st.overdue as usize, open_overdue);
    let today = all.iter().filter(|c| c.created_at >= t0() + DAY).count();
    assert_eq!(st.today_intake as usize, today);
    let reported = all.iter().filter(|c| c.state == State::Reported).count() as i64;
    assert_eq!(
        st.by_state
            .iter()
            .find(|r| r.0 == "reported")
            .map_or(0, |r| r.1),
        reported
    );
    let sub_q = CaseQuery {
        region: some.regions.subdistrict.clone(),
        now: later,
        ..Default::default()
    };
    let st2 = store.stats(&sub_q, t0()).unwrap();
    assert_eq!(st2.total as usize, oracle(&all, &sub_q).len());
    assert_eq!(st2.by_subdistrict.len(), 1);
    // The maintained counts give the same figures as counting the cases.
    super::stories::assert_counts(store);
    let sub = CaseQuery {
        region: some.regions.subdistrict.clone(),
        region_level: Some(Level::Subdistrict),
        now: later,
        ..Default::default()
    };
    let fast = store.stats(&sub, t0()).unwrap();
    let slow = store
        .stats(
            &CaseQuery {
                created_from: Some(i64::MIN + 1),
                ..sub.clone()
            },
            t0(),
        )
        .unwrap();
    assert_eq!(
        (fast.total, fast.overdue, fast.today_intake, fast.handled),
        (slow.total, slow.overdue, slow.today_intake, slow.handled)
    );
    assert_eq!(fast.total, st2.total);
}
