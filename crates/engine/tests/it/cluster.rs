//! Several engines on one PostgreSQL database (issue 20): ids from sequences never
//! collide, a partition's lease moves when its owner stops renewing and the new owner
//! reloads the partition's open cases, an old owner that wakes after its lease expired
//! cannot commit (fencing by the lease epoch), and a due escalation fires once.
//! PostgreSQL only (SQLite is one process's file); skipped without
//! `CITYOS_TEST_POSTGRES_URL` unless `CITYOS_REQUIRE_SERVICES=1`.

use super::backend::{config, Backend};
use cityos_core::case::{Channel, State};
use cityos_core::time::{local, Date, Millis, MINUTE};
use cityos_core::workflow::{Action, Actor, Command, NewReport};
use cityos_core::{Level, Role};
use cityos_engine::engine::{Engine, EngineError, Partitioning};
use cityos_engine::StoreError;
use std::collections::HashSet;

fn t0() -> Millis {
    local(Date::new(2026, 11, 25).unwrap(), 10, 0)
}

/// Interior points of the grids of a sub-district.
fn spots(sub: &str) -> Vec<[f64; 2]> {
    let c = config();
    let t = &c.territory;
    let s = t.by_code(sub).unwrap();
    t.regions()
        .filter(|(id, r)| r.level == Level::Grid && t.is_within(*id, s))
        .map(|(id, _)| t.interior_point(id))
        .collect()
}

fn report(category: &str, p: [f64; 2], at: Millis, n: usize) -> NewReport {
    NewReport {
        channel: Channel::Sensor,
        category: category.into(),
        lon: p[0],
        lat: p[1],
        text: format!("{category} 集群测试 {n}"),
        contact: None,
        at,
        media: Vec::new(),
        priority: None,
        playbook: None,
        suggestion: None,
    }
}

fn officer() -> Actor {
    Actor {
        id: "zhang".into(),
        role: Role::DistrictOfficer,
        department: None,
        scope: None,
    }
}

fn node(b: &Backend, name: &str) -> Engine {
    let mut e = b.engine();
    e.join_cluster(name, Partitioning::Subdistrict);
    e
}

const TTL: i64 = 1_000;
const TIANPING: &str = "310104003";

#[test]
fn ids_are_unique_across_engines() {
    let Some(b) = Backend::postgres("cluster_ids") else {
        return;
    };
    let b = std::sync::Arc::new(b);
    let per = 150;
    let all_spots = spots(TIANPING);
    let runs: Vec<_> = (0..2)
        .map(|k| {
            let b = b.clone();
            let all_spots = all_spots.clone();
            std::thread::spawn(move || {
                let mut e = b.engine();
                let mut out = Vec::new();
                for i in 0..per {
                    let p = all_spots[(i * 2 + k) % all_spots.len()];
                    // Far apart in time: each report opens its own case.
                    let at = t0() + (i as i64) * 40 * 24 * 60 * MINUTE + k as i64;
                    let o = e.submit(report("lift_entrapment", p, at, i)).unwrap();
                    out.push((o.case.id, o.case.number.clone(), o.report_id, o.merged));
                }
                out
            })
        })
        .collect();
    let results: Vec<_> = runs.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(results.len(), 2 * per);
    let new: Vec<_> = results.iter().filter(|r| !r.3).collect();
    let ids: HashSet<i64> = new.iter().map(|r| r.0).collect();
    let numbers: HashSet<&str> = new.iter().map(|r| r.1.as_str()).collect();
    let reports: HashSet<i64> = results.iter().map(|r| r.2).collect();
    assert_eq!(ids.len(), new.len(), "case ids collided");
    assert_eq!(numbers.len(), new.len(), "case numbers collided");
    assert_eq!(reports.len(), results.len(), "report ids collided");
    let mut s = b.store();
    let stored = s.counts().unwrap();
    assert_eq!(stored.cases as usize, new.len());
    assert_eq!(stored.reports as usize, results.len());
    let dup = s
        .query_groups(&cityos_engine::query::Sql {
            text: "SELECT 'dup', COUNT(*) FROM (SELECT gseq FROM case_log GROUP BY gseq HAVING COUNT(*) > 1) d".into(),
            params: vec![],
        })
        .unwrap();
    assert_eq!(dup[0].1, 0, "event numbers collided");
    // A restarted engine never hands out an id another one used.
    let mut e = b.engine();
    let o = e
        .submit(report(
            "lift_entrapment",
            all_spots[0],
            t0() - 400 * 24 * 60 * MINUTE,
            0,
        ))
        .unwrap();
    assert!(!ids.contains(&o.case.id) && !reports.contains(&o.report_id));
}

#[test]
fn a_partition_moves_and_its_old_owner_is_fenced() {
    let Some(b) = Backend::postgres("cluster_fence") else {
        return;
    };
    let mut a = node(&b, "a");
    let ch = a.lease_round("http://a", TTL).unwrap();
    let all = a.partitions();
    assert_eq!(
        ch.held.len(),
        all.len(),
        "alone, a node holds every partition"
    );
    assert!(all.iter().any(|p| p == TIANPING));
    // The background jobs' lease is one of them, held like any other.
    assert!(all.iter().any(|p| p == cityos_engine::engine::SINGLETON));
    let epoch_a = ch.held.iter().find(|(p, _)| p == TIANPING).unwrap().1;
    let spot = spots(TIANPING)[3];
    let o = a.submit(report("lift_entrapment", spot, t0(), 1)).unwrap();
    assert!(!o.merged);
    // A second node gets nothing while the first one's leases run.
    let mut bn = node(&b, "b");
    let chb = bn.lease_round("http://b", TTL).unwrap();
    assert!(chb.held.is_empty(), "{chb:?}");
    match bn.submit(report("lift_entrapment", spot, t0() + 1, 2)) {
        Err(EngineError::NotOwner { partition }) => assert_eq!(partition, TIANPING),
        other => panic!("expected NotOwner, got {other:?}"),
    }
    // The first node stops renewing (paused); after the lease time the second takes over
    // and reloads the partition's open cases.
    std::thread::sleep(std::time::Duration::from_millis(TTL as u64 + 200));
    let chb = bn.lease_round("http://b", TTL).unwrap();
    assert_eq!(chb.held.len(), all.len(), "{chb:?}");
    let epoch_b = chb.held.iter().find(|(p, _)| p == TIANPING).unwrap().1;
    assert!(epoch_b > epoch_a);
    assert!(
        bn.open_cases().any(|c| c.id == o.case.id),
        "the new owner loaded the partition's open case"
    );
    // The old owner wakes up still believing it holds the partition: it cannot commit.
    let before = b.store().counts().unwrap();
    let mut c = Command::new(Action::Note, officer());
    c.note = "迟到的写入".into();
    match a.transition(o.case.id, c.clone(), t0() + MINUTE) {
        Err(EngineError::Store(StoreError::Fenced { partition, epoch })) => {
            assert_eq!(partition, TIANPING);
            assert_eq!(epoch, epoch_a);
        }
        other => panic!("the stale owner must be fenced, got {other:?}"),
    }
    match a.submit(report("lift_entrapment", spots(TIANPING)[5], t0() + 2, 3)) {
        Err(EngineError::Store(StoreError::Fenced { .. })) => {}
        other => panic!("the stale owner must be fenced, got {other:?}"),
    }
    assert_eq!(b.store().counts().unwrap(), before, "nothing was written");
    // Its next lease round tells it what it lost; then it refuses by itself.
    let cha = a.lease_round("http://a", TTL).unwrap();
    assert!(cha.lost.iter().any(|p| p == TIANPING), "{cha:?}");
    assert!(cha.held.is_empty());
    assert!(matches!(
        a.transition(o.case.id, c.clone(), t0() + MINUTE),
        Err(EngineError::NotOwner { .. })
    ));
    // The new owner writes.
    let done = bn.transition(o.case.id, c, t0() + MINUTE).unwrap();
    assert_eq!(done.case.version, o.case.version + 1);
    // Both nodes alive: the one holding everything gives back what is over its share
    // and the other takes it.
    for _ in 0..3 {
        bn.lease_round("http://b", TTL).unwrap();
        a.lease_round("http://a", TTL).unwrap();
    }
    let (ha, hb) = (a.held().len(), bn.held().len());
    assert_eq!(ha + hb, all.len());
    assert!(ha.abs_diff(hb) <= 1, "shares {ha} and {hb}");
    let leases = b.store().leases().unwrap();
    assert_eq!(leases.len(), all.len());
    // Exactly one node runs the background jobs.
    let singles: Vec<_> = leases
        .iter()
        .filter(|l| l.partition == cityos_engine::engine::SINGLETON && l.remaining_ms > 0)
        .collect();
    assert_eq!(singles.len(), 1, "{leases:?}");
    for l in leases {
        assert!(l.owner == "a" || l.owner == "b");
        assert_eq!(l.address, format!("http://{}", l.owner));
    }
}

#[test]
fn an_escalation_due_during_a_takeover_fires_once() {
    let Some(b) = Backend::postgres("cluster_escalation") else {
        return;
    };
    let mut a = node(&b, "a");
    a.lease_round("http://a", TTL).unwrap();
    let o = a
        .submit(report("lift_entrapment", spots(TIANPING)[6], t0(), 1))
        .unwrap();
    assert_eq!(o.case.state, State::Dispatched);
    let due = o.case.due().unwrap();
    // The owner stalls past its lease; the second node takes over and fires the
    // escalation once.
    let mut bn = node(&b, "b");
    std::thread::sleep(std::time::Duration::from_millis(TTL as u64 + 200));
    bn.lease_round("http://b", TTL).unwrap();
    assert_eq!(
        bn.next_timer(),
        Some(due),
        "the new owner's timers know the case"
    );
    let fired = bn.tick(due + MINUTE).unwrap();
    assert_eq!(fired.len(), 1);
    // The old owner's timer fires too, but its write is refused.
    assert!(matches!(
        a.tick(due + MINUTE),
        Err(EngineError::Store(StoreError::Fenced { .. }))
    ));
    assert!(bn.tick(due + 2 * MINUTE).unwrap().is_empty());
    let log = b.store().load_log(o.case.id).unwrap();
    assert_eq!(log.iter().filter(|l| l.action == "escalate").count(), 1);
}

/// A node paused inside a transaction keeps its row locks (`FOR SHARE` on its lease rows
/// stops every takeover) only until the database ends its idle session; a lock wait gives
/// up instead of waiting forever. Every session the store opens says so.
#[test]
fn a_session_paused_in_a_transaction_does_not_keep_its_locks() {
    let Some(b) = Backend::postgres("cluster_idle") else {
        return;
    };
    let mut s = b.store();
    let sql = cityos_engine::query::Sql {
        text: "SELECT current_setting('idle_in_transaction_session_timeout') || ' ' \
               || current_setting('lock_timeout'), 0::bigint"
            .into(),
        params: Vec::new(),
    };
    let g = s.query_groups(&sql).unwrap();
    assert_eq!(g[0].0, "5s 5s", "{g:?}");
    // Behaviour, with the same setting on a plain session: a transaction left idle
    // holding `FOR SHARE` on a lease row is ended by the database and its lock released.
    let mut a = node(&b, "a");
    a.lease_round("http://a", TTL).unwrap();
    let Backend::Postgres { url, schema } = &b else {
        unreachable!()
    };
    let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "SET search_path TO {schema}; SET idle_in_transaction_session_timeout = 500; \
         BEGIN; SELECT 1 FROM partition_leases FOR SHARE"
    ))
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    assert!(
        c.batch_execute("SELECT 1").is_err(),
        "the idle transaction's session was ended"
    );
    // The lock is gone: another session takes the rows for update at once.
    let mut d = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    d.batch_execute(&format!(
        "SET search_path TO {schema}; SET lock_timeout = 200; BEGIN; \
         SELECT 1 FROM partition_leases FOR UPDATE; ROLLBACK"
    ))
    .unwrap();
}

/// Leases renewed on a connection of their own (not the engine's), the result handed to
/// the engine: it owns what its node holds, loads the cases of what it gained, and the
/// same result again changes nothing.
#[test]
fn leases_renewed_elsewhere_are_handed_to_the_engine() {
    let Some(b) = Backend::postgres("cluster_apply") else {
        return;
    };
    let mut a = node(&b, "a");
    a.lease_round("http://a", TTL).unwrap();
    let spot = spots(TIANPING)[2];
    let o = a.submit(report("lift_entrapment", spot, t0(), 1)).unwrap();
    // Node b's engine, its leases taken by another connection once a's ran out.
    let mut bn = node(&b, "b");
    std::thread::sleep(std::time::Duration::from_millis(TTL as u64 + 200));
    let parts = bn.partitions();
    let mut lease_conn = b.store();
    let round = |held: &[(String, i64)], s: &mut dyn cityos_engine::Store| {
        s.lease_round(&cityos_engine::store::LeaseRound {
            node: "b",
            address: "http://b",
            partitions: &parts,
            held,
            ttl_ms: TTL,
        })
        .unwrap()
    };
    let leases = round(&[], &mut *lease_conn);
    assert_eq!(leases.len(), parts.len());
    assert!(bn.held().is_empty(), "nothing owned before the hand-over");
    let ch = bn.apply_leases(leases.clone()).unwrap();
    assert_eq!(ch.gained.len(), parts.len());
    assert!(bn.open_cases().any(|c| c.id == o.case.id), "cases loaded");
    let again = bn.apply_leases(leases).unwrap();
    assert!(
        again.gained.is_empty() && again.lost.is_empty(),
        "{again:?}"
    );
    // Renewed elsewhere at the same epochs: still the same, and b writes.
    let held = bn.held();
    let renewed = round(&held, &mut *lease_conn);
    let ch = bn.apply_leases(renewed).unwrap();
    assert!(ch.gained.is_empty() && ch.lost.is_empty(), "{ch:?}");
    let mut c = Command::new(Action::Note, officer());
    c.note = "新主人写入".into();
    bn.transition(o.case.id, c, t0() + MINUTE).unwrap();
}

/// The first node records the cluster's settings; a node with others is refused while a
/// node runs with them, and accepted (the record replaced) once none does.
#[test]
fn a_node_with_other_settings_is_refused_while_others_run() {
    let Some(b) = Backend::postgres("cluster_settings") else {
        return;
    };
    let mut a = node(&b, "a");
    let mut s = b.store();
    assert_eq!(
        s.join_settings("a", "partition-by=subdistrict;k=1", TTL)
            .unwrap(),
        Ok(())
    );
    a.lease_round("http://a", TTL).unwrap();
    assert_eq!(
        s.join_settings("b", "partition-by=subdistrict;k=1", TTL)
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.join_settings("b", "partition-by=district;k=1", TTL)
            .unwrap(),
        Err("partition-by=subdistrict;k=1".to_string())
    );
    // Node a stops: its settings no longer bind anyone.
    std::thread::sleep(std::time::Duration::from_millis(TTL as u64 + 200));
    assert_eq!(
        s.join_settings("b", "partition-by=district;k=1", TTL)
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        s.join_settings("c", "partition-by=subdistrict;k=1", TTL)
            .unwrap(),
        Ok(()),
        "nobody live yet: b has not run a lease round"
    );
    // The leases' node count ignores the settings' row.
    let ch = a.lease_round("http://a", TTL).unwrap();
    assert_eq!(ch.held.len(), a.partitions().len());
}

/// The rooms whose state only the holder of the singleton lease keeps (the readings
/// work queue's alarm states and mark, the meal book) write only while they hold it: a
/// holder that was paused past its lease writes nothing when it wakes, and the work
/// queue's mark is written with the alarm states in one transaction and read back whole.
#[test]
fn a_singleton_rooms_writes_are_fenced_and_its_mark_read_back_whole() {
    use cityos_engine::store::{AlarmRow, Fence, MealRow, QueueMark};
    let Some(b) = Backend::postgres("cluster_room_fence") else {
        return;
    };
    let single = cityos_engine::engine::SINGLETON;
    let mut a = node(&b, "a");
    let ch = a.lease_round("http://a", TTL).unwrap();
    let epoch_a = ch.held.iter().find(|(p, _)| p == single).unwrap().1;
    let fence_a = Fence {
        node: "a".into(),
        leases: vec![(single.to_string(), epoch_a)],
    };
    let alarm = |state: &str, since: i64| AlarmRow {
        device: "MH-001".into(),
        rule: "manhole_tilted".into(),
        state: state.into(),
        since,
        case_id: None,
    };
    let mark = |seq: i64| QueueMark {
        queue: "READINGS@2026-12-07T08:00:00Z".into(),
        seq,
        above: if seq > 0 {
            format!("{}-{},{}", seq + 2, seq + 9, seq + 20)
        } else {
            String::new()
        },
    };
    let stored = |s: &mut Box<dyn cityos_engine::Store>| s.queue_mark(&mark(0).queue).unwrap();
    let mut s = b.store();
    assert_eq!(stored(&mut s), None);
    s.put_alarm_states_fenced(&[alarm("firing", 10)], Some(&mark(500)), &fence_a)
        .unwrap();
    assert_eq!(stored(&mut s), Some(mark(500)), "read back whole");
    // The holder replaces its mark whole; another queue's is its own.
    s.put_alarm_states_fenced(&[], Some(&mark(510)), &fence_a)
        .unwrap();
    assert_eq!(stored(&mut s), Some(mark(510)));
    assert_eq!(s.queue_mark("READINGS@another").unwrap(), None);
    // A lease the node never held fences like one it lost.
    let wrong = Fence {
        node: "a".into(),
        leases: vec![(single.to_string(), epoch_a + 7)],
    };
    assert!(matches!(
        s.put_alarm_states_fenced(&[alarm("normal", 0)], Some(&mark(900)), &wrong),
        Err(StoreError::Fenced { .. })
    ));
    // a is paused past its lease; b takes the singleton over.
    std::thread::sleep(std::time::Duration::from_millis(TTL as u64 + 200));
    let mut bn = node(&b, "b");
    let chb = bn.lease_round("http://b", TTL).unwrap();
    let epoch_b = chb.held.iter().find(|(p, _)| p == single).unwrap().1;
    assert!(epoch_b > epoch_a);
    // a wakes: neither its alarm states nor its mark nor its meal rows are written.
    match s.put_alarm_states_fenced(&[alarm("normal", 0)], Some(&mark(900)), &fence_a) {
        Err(StoreError::Fenced { partition, epoch }) => {
            assert_eq!(partition, single);
            assert_eq!(epoch, epoch_a);
        }
        other => panic!("the old holder must be fenced, got {other:?}"),
    }
    let order = MealRow {
        kind: "order".into(),
        id: "O-1".into(),
        body: "{}".into(),
        at: t0(),
    };
    assert!(matches!(
        s.record_meals_fenced(std::slice::from_ref(&order), &[], &fence_a),
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(
        stored(&mut s),
        Some(mark(510)),
        "the old holder's mark not written"
    );
    let rows = s.alarm_states().unwrap();
    assert_eq!(
        rows,
        vec![alarm("firing", 10)],
        "nothing of the old holder's"
    );
    assert!(s.meal_rows("order").unwrap().is_empty());
    // The new holder writes.
    let fence_b = Fence {
        node: "b".into(),
        leases: vec![(single.to_string(), epoch_b)],
    };
    s.put_alarm_states_fenced(&[alarm("normal", 0)], Some(&mark(900)), &fence_b)
        .unwrap();
    s.record_meals_fenced(std::slice::from_ref(&order), &[], &fence_b)
        .unwrap();
    assert_eq!(stored(&mut s), Some(mark(900)));
    assert_eq!(s.alarm_states().unwrap(), vec![alarm("normal", 0)]);
    assert_eq!(s.meal_rows("order").unwrap(), vec![order]);
}

/// A node's lease renewal and its own commits lock the lease rows in one order (by
/// partition): a group commit whose batches name their partitions in another order than
/// the renewal's never deadlocks with it — PostgreSQL aborted the renewal as the deadlock's
/// victim, the lease lapsed, and the node's next commits were refused as fenced ("this part
/// of the district just moved") though no other node was there.
#[test]
fn a_lease_renewal_and_a_group_commit_never_deadlock() {
    use cityos_engine::store::{Batch, Fence};
    let Some(b) = Backend::postgres("cluster_deadlock") else {
        return;
    };
    let mut a = node(&b, "a");
    let held = a.lease_round("http://a", 60_000).unwrap().held;
    assert!(held.len() > 3, "{held:?}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Commits: groups of batches, each fenced by one lease, the group in reverse order of
    // the partitions (as queued batches of several sub-districts come).
    let committer = {
        let (b, stop, held) = (b.store(), stop.clone(), held.clone());
        std::thread::spawn(move || {
            let mut s = b;
            let fences: Vec<Fence> = held
                .iter()
                .rev()
                .map(|l| Fence {
                    node: "a".into(),
                    leases: vec![l.clone()],
                })
                .collect();
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let group: Vec<Batch<'_>> = fences
                    .iter()
                    .map(|f| Batch {
                        fence: Some(f),
                        ..Batch::default()
                    })
                    .collect();
                match s.commit(&group) {
                    Ok(()) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    let started = std::time::Instant::now();
    let mut rounds = 0;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        a.lease_round("http://a", 60_000)
            .unwrap_or_else(|e| panic!("lease round {rounds} failed: {e}"));
        rounds += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, failed) = committer.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} commits failed: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(ok > 10 && rounds > 10, "commits {ok}, rounds {rounds}");
}
