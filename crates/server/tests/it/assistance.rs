//! 精准救助 through the API: the declared sources imported (pseudonymised, kept across a
//! restart), found households opened as assistance cases for the sub-district's adviser
//! with their explanation, every role and anonymous on every endpoint, the purpose-bound
//! personal view with its audit entry, masked values for everyone else, the visit outcome,
//! no raising again for unchanged facts, and the analysts' counts with small cells
//! suppressed — on SQLite and PostgreSQL.

use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use cityos_core::assistance::generate::{self, Community, Spec};
use cityos_core::assistance::IdKey;
use cityos_core::time::Date;
use serde_json::Value;

/// 天平路 — the demo adviser zhou.adviser's sub-district.
const SUB: &str = "310104003";
const OTHER: &str = "310104004";

fn key() -> IdKey {
    IdKey::new(&[9u8; 32]).unwrap()
}

fn set_key(t: &TestApp) {
    t.svc.as_ref().unwrap().state.0.assistance.set_key(key());
}

fn district() -> generate::District {
    let cfg = crate::support::config();
    let t = &cfg.territory;
    let communities: Vec<Community> = [SUB, OTHER]
        .iter()
        .flat_map(|s| {
            let id = t.by_code(s).unwrap();
            t.children(id)
                .iter()
                .map(|c| Community {
                    code: t.region(*c).code.clone(),
                    subdistrict: s.to_string(),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    generate::generate(
        &communities,
        &Spec {
            households: 700,
            seed: 15,
            as_of: Date::new(2026, 11, 24).unwrap(),
        },
    )
}

async fn import(
    t: &TestApp,
    token: Option<&str>,
    source: &str,
    body: &str,
    hold: bool,
) -> (StatusCode, Value) {
    let auth = token.map(|k| format!("Bearer {k}"));
    let mut headers = vec![];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let (s, b, _) = t
        .raw_with(
            Method::POST,
            &format!("/api/v1/assistance/sources/{source}?as_of=2026-11-24&hold={hold}"),
            "text/csv",
            body,
            &headers,
        )
        .await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

/// Every raw person id, household id and name of the population file.
fn secrets(d: &generate::District) -> Vec<String> {
    let mut out = Vec::new();
    for l in d.file("population").unwrap().lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        out.push(f[0].to_string());
        out.push(f[1].to_string());
        out.push(f[2].to_string());
    }
    out
}

fn leaks(text: &str, secrets: &[String]) -> Option<String> {
    secrets
        .iter()
        .find(|s| s.chars().count() >= 3 && text.contains(s.as_str()))
        .cloned()
}

crate::api_story!(assistance_pool_cases_and_personal_data);
async fn assistance_pool_cases_and_personal_data(mut t: TestApp) {
    t.seed().await;
    let d = district();
    let secrets = secrets(&d);
    let civil = t.login("liu.civil").await;
    let adviser = t.login("zhou.adviser").await;
    let officer = t.login("zhang.district").await;
    let sub_officer = t.login("li.tianping").await;
    let analyst = t.login("sun.analyst").await;
    let urban = t.login("wang.urban").await;
    let inspector = t.login("zhao.inspector").await;
    let admin = t.login("admin").await;
    let citizen = t.login("elder_demo").await;

    // No key: a clear 503 naming it.
    t.svc.as_ref().unwrap().state.0.assistance.unset_key();
    let (s, v) = t.get("/api/v1/assistance/sources", Some(&civil)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v.to_string().contains("assistance-key-file"), "{v}");
    set_key(&t);

    // Who may import: the district civil-affairs bureau and administrators.
    let pop = d.file("population").unwrap();
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(&citizen), StatusCode::FORBIDDEN),
        ("handler", Some(&urban), StatusCode::FORBIDDEN),
        ("adviser", Some(&adviser), StatusCode::FORBIDDEN),
        ("analyst", Some(&analyst), StatusCode::FORBIDDEN),
        ("officer", Some(&officer), StatusCode::FORBIDDEN),
    ] {
        let (s, v) = import(&t, tok.map(|x| x.as_str()), "population", pop, true).await;
        assert_eq!(s, want, "{who}: {v}");
    }
    // Bad input: an undeclared source, a header not declared, a bad row named by line
    // without its values.
    let (s, v) = import(&t, Some(&civil), "horoscopes", pop, true).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("horoscopes"), "{v}");
    let (s, v) = import(
        &t,
        Some(&civil),
        "disability",
        "person_id,colour\n1,red\n",
        true,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("colour"), "{v}");
    let m = d.file("population").unwrap().split('\n').nth(1).unwrap();
    let id = m.split(',').next().unwrap();
    let (s, v) = import(
        &t,
        Some(&civil),
        "disability",
        &format!("person_id,grade,kind,certified_on\n{id},2,肢体,2020-01-01\n"),
        true,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["refused"], 1,
        "the person is not in the population yet: {v}"
    );
    assert!(
        v["problems"][0].as_str().unwrap().starts_with("line 2"),
        "{v}"
    );
    assert!(leaks(&v.to_string(), &secrets).is_none(), "{v}");

    // The delivery: the population first, the rest held until the last file.
    let m_ix = d
        .files
        .iter()
        .position(|(s, _)| *s == "population")
        .unwrap();
    let mut order: Vec<usize> = (0..d.files.len()).collect();
    order.sort_by_key(|i| *i != m_ix);
    let mut opened = Vec::new();
    for (n, i) in order.iter().enumerate() {
        let (source, text) = &d.files[*i];
        let (s, v) = import(&t, Some(&civil), source, text, n + 1 < order.len()).await;
        assert_eq!(s, StatusCode::OK, "{source}: {v}");
        assert!(leaks(&v.to_string(), &secrets).is_none(), "{v}");
        opened.extend(v["cases_opened"].as_array().unwrap().iter().cloned());
    }
    assert!(opened.len() >= 5, "candidates raised as cases: {opened:?}");

    // A row with a stray comma in a name, and a row refused for a bad date: neither
    // leaves anything of its values in the store (the stored file, the person rows).
    let good = pop.lines().nth(1).unwrap();
    let f: Vec<&str> = good.split(',').collect();
    let line = |pid: &str, hid: &str, name: &str, born: &str| {
        let mut g: Vec<String> = f.iter().map(|x| x.to_string()).collect();
        g[0] = pid.into();
        g[1] = hid.into();
        g[2] = name.into();
        g[4] = born.into();
        g[8] = format!("{name}路88号");
        g.join(",")
    };
    let header = pop.lines().next().unwrap();
    let bad = format!(
        "{header}\n{}\n{}\n",
        line("990000199001010011", "HNEWONE", "欧阳,奇奇", "1990-01-01"),
        line("990000199001010022", "HNEWTWO", "司马琪琪", "1990-13-45"),
    );
    let (s, v) = import(&t, Some(&civil), "population", &bad, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["accepted"].as_u64(), v["refused"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );
    let state = t.svc.as_ref().unwrap().state.clone();
    let stored = state
        .0
        .reads
        .run(|s| -> Result<_, cityos_engine::StoreError> {
            Ok((s.assistance_rows("import")?, s.assistance_rows("person")?))
        })
        .await
        .unwrap()
        .unwrap();
    let all_text: String = stored
        .0
        .iter()
        .chain(&stored.1)
        .map(|r| r.body.clone())
        .collect();
    for raw in [
        "欧阳",
        "奇奇",
        "司马琪琪",
        "990000199001010011",
        "990000199001010022",
        "HNEWONE",
        "HNEWTWO",
        "路88号",
    ] {
        assert!(!all_text.contains(raw), "{raw} is stored");
    }
    // Import ids: one more than the largest stored, whatever was read back.
    let ids: Vec<u64> = stored.0.iter().map(|r| r.id.parse().unwrap()).collect();
    let n_imports = ids.len();
    assert_eq!(ids.iter().max().copied(), Some(n_imports as u64 - 1));
    let junk = cityos_engine::store::AssistanceRow {
        kind: "import".into(),
        id: format!("{:08}", n_imports),
        body: "not an import".into(),
        at: 0,
    };
    state
        .0
        .reads
        .run(move |s| s.record_assistance(&[junk]))
        .await
        .unwrap()
        .unwrap();
    t.restart();
    set_key(&t);
    let civil = t.login("liu.civil").await;
    let (s, v) = import(&t, Some(&civil), "population", &bad, true).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let state = t.svc.as_ref().unwrap().state.clone();
    let imports = state
        .0
        .reads
        .run(|s| s.assistance_rows("import"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(imports.len(), n_imports + 2, "nothing overwritten");
    assert!(imports.iter().any(|r| r.body == "not an import"));

    // The lists: the adviser their sub-district's; the bureau and the district officer
    // every one; others refused.
    let list = |v: &Value| v["cases"].as_array().unwrap().clone();
    let (s, all) = t.get("/api/v1/assistance/cases", Some(&civil)).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(list(&all).len(), opened.len(), "{all}");
    let (s, mine) = t.get("/api/v1/assistance/cases", Some(&adviser)).await;
    assert_eq!(s, StatusCode::OK);
    let mine = list(&mine);
    assert!(!mine.is_empty() && mine.len() < opened.len(), "{mine:?}");
    assert!(mine.iter().all(|c| c["subdistrict"] == SUB), "{mine:?}");
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(&citizen), StatusCode::FORBIDDEN),
        ("handler", Some(&urban), StatusCode::FORBIDDEN),
        ("inspector", Some(&inspector), StatusCode::FORBIDDEN),
        ("analyst", Some(&analyst), StatusCode::FORBIDDEN),
        ("admin", Some(&admin), StatusCode::FORBIDDEN),
        ("officer", Some(&officer), StatusCode::OK),
        ("sub-district officer", Some(&sub_officer), StatusCode::OK),
    ] {
        let (s, v) = t
            .get("/api/v1/assistance/cases", tok.map(|x| x.as_str()))
            .await;
        assert_eq!(s, want, "{who}: {v}");
        assert!(leaks(&v.to_string(), &secrets).is_none(), "{who}: {v}");
    }
    let number = mine[0]["number"].as_str().unwrap().to_string();
    let other = list(&all)
        .into_iter()
        .find(|c| c["subdistrict"] == OTHER)
        .map(|c| c["number"].as_str().unwrap().to_string())
        .expect("a case in the other sub-district");

    // One case: the explanation names no one.
    let path = format!("/api/v1/assistance/cases/{number}");
    let (s, c) = t.get(&path, Some(&adviser)).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert!(!c["explanations"].as_array().unwrap().is_empty(), "{c}");
    let x = &c["explanations"][0];
    assert!(
        x["when"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["holds"] == true),
        "{x}"
    );
    assert!(x["when"][0]["facts"][0]["source"].is_string(), "{x}");
    assert!(c["member_list"][0]["position"] == 1, "{c}");
    assert!(leaks(&c.to_string(), &secrets).is_none(), "{c}");
    assert_eq!(c["may_open"], true);
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(&citizen), StatusCode::FORBIDDEN),
        ("handler", Some(&urban), StatusCode::FORBIDDEN),
        ("analyst", Some(&analyst), StatusCode::FORBIDDEN),
        ("officer", Some(&officer), StatusCode::OK),
    ] {
        let (s, v) = t.get(&path, tok.map(|x| x.as_str())).await;
        assert_eq!(s, want, "{who}: {v}");
        assert!(leaks(&v.to_string(), &secrets).is_none(), "{who}: {v}");
    }
    // The other sub-district's case does not exist for this adviser.
    let (s, _) = t
        .get(&format!("/api/v1/assistance/cases/{other}"), Some(&adviser))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The engine's case: not public, routed to the sub-district's civil-affairs line, its
    // text without personal data.
    let (s, ec) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&officer))
        .await;
    assert_eq!(s, StatusCode::OK, "{ec}");
    assert_eq!(ec["case"]["category"], "assistance_home_visit", "{ec}");
    assert!(leaks(&ec.to_string(), &secrets).is_none(), "{ec}");
    // The case text is generic: no policy, no hardship.
    let text = ec.to_string();
    for word in ["低保", "困难程度", "分）", "hardship"] {
        assert!(!text.contains(word), "{word}: {ec}");
    }
    let (s, _) = t.get(&format!("/api/v1/cases/{number}"), None).await;
    assert_ne!(s, StatusCode::OK, "an assistance case is not public");
    restricted_everywhere(
        &t,
        &number,
        &officer,
        &sub_officer,
        &[
            ("analyst", analyst.clone()),
            ("admin", admin.clone()),
            ("inspector", inspector.clone()),
            ("handler of another line", urban.clone()),
            (
                "another sub-district's officer",
                t.sign(&cityos_server::http::auth::Principal {
                    name: "officer.other".into(),
                    role: cityos_core::Role::SubdistrictOfficer,
                    department: None,
                    scope: Some(OTHER.into()),
                    channel: None,
                    expires_at: i64::MAX,
                }),
            ),
        ],
    )
    .await;

    // The personal view: purpose required, audited; masked for the officer.
    let personal = format!("{path}/personal");
    let (s, v) = t.get(&personal, Some(&adviser)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("purpose"), "{v}");
    let (s, v) = t
        .get(&format!("{personal}?purpose=%E4%B8%8A%E9%97%A8%E6%A0%B8%E5%AE%9E%E5%89%8D%E8%81%94%E7%B3%BB"), Some(&adviser))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["masked"], false);
    let name = v["members"][0]["name"].as_str().unwrap().to_string();
    let idn = v["members"][0]["id_number"].as_str().unwrap().to_string();
    assert!(secrets.contains(&name) && secrets.contains(&idn), "{v}");
    assert!(
        v["members"][0]["address"].as_str().unwrap().contains('室')
            || !v["members"][0]["address"].as_str().unwrap().is_empty(),
        "{v}"
    );
    let seq = v["audit_seq"].as_i64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let state = t.svc.as_ref().unwrap().state.clone();
    let entries = state
        .0
        .reads
        .run(move |s| s.audit_page(seq - 1, 10))
        .await
        .unwrap()
        .unwrap();
    let e = entries
        .iter()
        .find(|e| e.seq == seq)
        .expect("the view's audit entry");
    assert_eq!(e.actor, "zhou.adviser");
    assert_eq!(e.action, "assistance_personal_view");
    assert!(e.subject.starts_with("assistance_household:"), "{e:?}");
    assert!(
        e.detail.contains("上门核实前联系") && e.detail.contains(&number),
        "{e:?}"
    );
    assert!(leaks(&e.detail, &secrets).is_none(), "{e:?}");
    let (s, v) = t
        .get(&format!("{personal}?purpose=x"), Some(&officer))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["masked"], true);
    assert!(leaks(&v.to_string(), &secrets).is_none(), "{v}");
    assert!(
        v["members"][0]["name"].as_str().unwrap().ends_with('*'),
        "{v}"
    );
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(&citizen), StatusCode::FORBIDDEN),
        ("analyst", Some(&analyst), StatusCode::FORBIDDEN),
        ("inspector", Some(&inspector), StatusCode::FORBIDDEN),
        ("handler", Some(&urban), StatusCode::FORBIDDEN),
    ] {
        let (s, v) = t
            .get(
                &format!("{personal}?purpose=looking%20around"),
                tok.map(|x| x.as_str()),
            )
            .await;
        assert_eq!(s, want, "{who}: {v}");
        assert!(leaks(&v.to_string(), &secrets).is_none(), "{who}: {v}");
    }

    // Export: the same masked list as CSV.
    let auth = format!("Bearer {adviser}");
    let (s, csv, _) = t
        .raw_with(
            Method::GET,
            "/api/v1/assistance/cases?format=csv",
            "",
            "",
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        csv.contains("number,household") && csv.contains(&number),
        "{csv}"
    );
    assert!(leaks(&csv, &secrets).is_none(), "{csv}");

    // The visit: the adviser only; not eligible needs its reason; once.
    let visit = format!("{path}/visit");
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(&citizen), StatusCode::FORBIDDEN),
        ("officer", Some(&officer), StatusCode::FORBIDDEN),
        ("analyst", Some(&analyst), StatusCode::FORBIDDEN),
    ] {
        let (s, v) = t
            .post(
                &visit,
                tok.map(|x| x.as_str()),
                serde_json::json!({"outcome": "enrolled"}),
            )
            .await;
        assert_eq!(s, want, "{who}: {v}");
    }
    let (s, v) = t
        .post(
            &visit,
            Some(&adviser),
            serde_json::json!({"outcome": "not_eligible"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("reason"), "{v}");
    let (s, v) = t
        .post(
            &visit,
            Some(&adviser),
            serde_json::json!({"outcome": "moved"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .post(
            &visit,
            Some(&adviser),
            serde_json::json!({"outcome": "enrolled", "note": "已受理申请"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["open"], false);
    assert_eq!(v["case_state"], "handled", "{v}");
    // The engine's case log has the outcome, not the adviser's words.
    let (s, ec) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&officer))
        .await;
    assert_eq!(s, StatusCode::OK, "{ec}");
    assert!(!ec.to_string().contains("已受理申请"), "{ec}");
    assert!(ec.to_string().contains("enrolled"), "{ec}");
    let (s, _) = t
        .post(
            &visit,
            Some(&adviser),
            serde_json::json!({"outcome": "declined"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // The same facts again raise nothing.
    let asst = d.file("assistance").unwrap();
    let (s, v) = import(&t, Some(&civil), "assistance", asst, false).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["cases_opened"].as_array().unwrap().len(), 0, "{v}");

    // Analysts: counts only, cells under 5 suppressed.
    let (s, sum) = t.get("/api/v1/assistance/summary", Some(&analyst)).await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    let rows = sum["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        for k in ["found", "cases", "open", "enrolled"] {
            assert!(r[k].is_null() || r[k].as_u64().unwrap() >= 5, "{r}");
        }
    }
    assert!(
        rows.iter().any(|r| r["found"].is_null()),
        "some cell is small: {sum}"
    );
    // Complementary suppression: no group that adds up (the district with its
    // sub-districts; a sub-district with its policies) hides exactly one count.
    let subs: Vec<&Value> = rows.iter().filter(|r| r["policy"] == "*").collect();
    let mut groups = vec![subs.clone()];
    for sub in subs.iter().filter(|r| r["subdistrict"] != "*") {
        groups.push(
            rows.iter()
                .filter(|r| r["subdistrict"] == sub["subdistrict"])
                .collect(),
        );
    }
    for g in &groups {
        for k in ["found", "cases", "open", "enrolled"] {
            let hidden = g.iter().filter(|r| r[k].is_null()).count();
            assert_ne!(hidden, 1, "{k} found by subtraction in {g:?}");
        }
    }
    let auth = format!("Bearer {analyst}");
    let (s, csv, _) = t
        .raw_with(
            Method::GET,
            "/api/v1/assistance/summary?format=csv",
            "",
            "",
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(csv.contains("<5"), "{csv}");
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(&citizen), StatusCode::FORBIDDEN),
        ("handler", Some(&urban), StatusCode::FORBIDDEN),
        ("inspector", Some(&inspector), StatusCode::FORBIDDEN),
        ("adviser", Some(&adviser), StatusCode::OK),
        ("admin", Some(&admin), StatusCode::OK),
    ] {
        let (s, v) = t
            .get("/api/v1/assistance/summary", tok.map(|x| x.as_str()))
            .await;
        assert_eq!(s, want, "{who}: {v}");
        assert!(leaks(&v.to_string(), &secrets).is_none(), "{who}: {v}");
    }
    let machine = t.sign(&cityos_server::http::auth::Principal {
        name: "meters".into(),
        role: cityos_core::Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    });
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(&citizen), StatusCode::FORBIDDEN),
        ("analyst", Some(&analyst), StatusCode::FORBIDDEN),
        ("inspector", Some(&inspector), StatusCode::FORBIDDEN),
        (
            "handler of another line",
            Some(&urban),
            StatusCode::FORBIDDEN,
        ),
        ("machine token", Some(&machine), StatusCode::FORBIDDEN),
        ("adviser", Some(&adviser), StatusCode::OK),
        ("officer", Some(&officer), StatusCode::OK),
        ("sub-district officer", Some(&sub_officer), StatusCode::OK),
        ("admin", Some(&admin), StatusCode::OK),
    ] {
        let (s, v) = t
            .get("/api/v1/assistance/sources", tok.map(|x| x.as_str()))
            .await;
        assert_eq!(s, want, "{who}: {v}");
        assert!(leaks(&v.to_string(), &secrets).is_none(), "{who}: {v}");
    }

    // A restart keeps the pool, the cases and the visit.
    let (_, before) = t.get("/api/v1/assistance/sources", Some(&civil)).await;
    t.restart();
    set_key(&t);
    let civil = t.login("liu.civil").await;
    let adviser = t.login("zhou.adviser").await;
    let (s, after) = t.get("/api/v1/assistance/sources", Some(&civil)).await;
    assert_eq!(s, StatusCode::OK, "{after}");
    assert_eq!(before["households"], after["households"]);
    assert_eq!(before["persons"], after["persons"]);
    let (_, c) = t.get(&path, Some(&adviser)).await;
    assert_eq!(c["visit"]["outcome"], "enrolled", "{c}");
    let (s, v) = t
        .get(
            &format!("{personal}?purpose=%E5%A4%8D%E6%A0%B8%E5%90%8D%E5%8D%95"),
            Some(&adviser),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["members"][0]["name"], name.as_str());
    // The audit trail off: no whole values (a view must be written first).
    let state = t.svc.as_ref().unwrap().state.clone();
    state.0.audit.set_enabled(false);
    let (s, v) = t
        .get(
            &format!("{personal}?purpose=%E5%A4%8D%E6%A0%B8%E5%90%8D%E5%8D%95"),
            Some(&adviser),
        )
        .await;
    state.0.audit.set_enabled(true);
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("audit"), "{v}");
    // A week after the visit the view lapses: masked.
    t.clock.advance(8 * cityos_core::time::DAY);
    let adviser = t.login("zhou.adviser").await;
    let (s, v) = t
        .get(
            &format!("{personal}?purpose=%E5%A4%8D%E6%A0%B8%E5%90%8D%E5%8D%95"),
            Some(&adviser),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["masked"].as_bool(), v["lapsed"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    assert!(leaks(&v.to_string(), &secrets).is_none(), "{v}");
    let civil = t.login("liu.civil").await;
    let (_, v) = import(&t, Some(&civil), "assistance", asst, false).await;
    assert_eq!(
        v["cases_opened"].as_array().unwrap().len(),
        0,
        "nothing raised twice after a restart: {v}"
    );

    // Another key than the pool's is refused with a clear error (no silent split).
    t.restart();
    t.svc
        .as_ref()
        .unwrap()
        .state
        .0
        .assistance
        .set_key(IdKey::new(&[7u8; 32]).unwrap());
    let civil = t.login("liu.civil").await;
    let (s, v) = t.get("/api/v1/assistance/sources", Some(&civil)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("does not match"),
        "{v}"
    );
    set_key(&t);
    let (s, v) = t.get("/api/v1/assistance/sources", Some(&civil)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Restricted cases (`assistance_home_visit`) reach no one outside the civil-affairs
/// line and the officers in scope: not the case list, the detail, the event stream or
/// the evaluation drill-down.
async fn restricted_everywhere(
    t: &TestApp,
    number: &str,
    officer: &str,
    sub_officer: &str,
    others: &[(&str, String)],
) {
    let list = "/api/v1/cases?category=assistance_home_visit&limit=200";
    for (who, tok) in [("officer", officer), ("sub-district officer", sub_officer)] {
        let (s, v) = t.get(list, Some(tok)).await;
        assert_eq!(s, StatusCode::OK, "{who}: {v}");
        assert!(v.to_string().contains(number), "{who} sees it: {v}");
    }
    assert!(stream_text(t, officer)
        .await
        .contains("assistance_home_visit"));
    for (who, tok) in others {
        // Another sub-district's officer sees that sub-district's cases, not this one's;
        // everyone else none at all.
        let scoped = who.contains("sub-district");
        let bad = |text: &str| {
            text.contains(number) || (!scoped && text.contains("assistance_home_visit"))
        };
        let short = |v: &Value| v.to_string().chars().take(300).collect::<String>();
        let (s, v) = t.get(list, Some(tok)).await;
        assert!(!bad(&v.to_string()), "{who}: {s} {}", short(&v));
        let (s, v) = t.get("/api/v1/cases?limit=200", Some(tok)).await;
        assert!(!bad(&v.to_string()), "{who}: {s} {}", short(&v));
        let (s, v) = t.get(&format!("/api/v1/cases/{number}"), Some(tok)).await;
        assert_ne!(s, StatusCode::OK, "{who}: {}", short(&v));
        assert!(!bad(&stream_text(t, tok).await), "{who}: the stream");
        let (s, v) = t
            .get("/api/v1/map?level=grid&markers=1000", Some(tok))
            .await;
        assert!(!bad(&v.to_string()), "{who}: the map {s} {}", short(&v));
        let (s, v) = t.get("/api/v1/hot-topics?days=7", Some(tok)).await;
        assert!(!bad(&v.to_string()), "{who}: {s} {}", short(&v));
        let month = cityos_core::time::local_date(cityos_server::Clock::now(&*t.clock));
        let period = format!("{}-{:02}", month.year, month.month);
        for unit in [
            format!("subdistrict:{SUB}"),
            "department:sub-community-service-310104003".to_string(),
        ] {
            let (s, v) = t
                .get(
                    &format!(
                        "/api/v1/evaluation/cases?period={period}&unit={unit}&measure=received"
                    ),
                    Some(tok),
                )
                .await;
            assert!(!bad(&v.to_string()), "{who}: {s} {}", short(&v));
            let (s, v) = t
                .get(
                    &format!("/api/v1/evaluation?period={period}&unit={unit}"),
                    Some(tok),
                )
                .await;
            assert!(!bad(&v.to_string()), "{who}: {s} {}", short(&v));
        }
    }
}

/// What the event stream sends from the start within a second.
async fn stream_text(t: &TestApp, token: &str) -> String {
    use http_body_util::BodyExt;
    let mut body = crate::stream::open_stream(t, token, Some(0))
        .await
        .into_body();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text
}

/// Complementary suppression: a hidden count is never the only one hidden in a group
/// whose total is shown, so no subtraction gives it away.
#[test]
fn a_lone_small_cell_takes_the_next_smallest_with_it() {
    use cityos_server::assistance::api::suppressed;
    use std::collections::BTreeMap;
    let k = |s: &str, p: &str| (s.to_string(), p.to_string());
    let mut cells = BTreeMap::new();
    cells.insert(k("*", "*"), [40, 40, 40, 40]);
    cells.insert(k("A", "*"), [17, 17, 17, 17]);
    cells.insert(k("B", "*"), [15, 15, 15, 15]);
    cells.insert(k("C", "*"), [3, 30, 3, 3]);
    cells.insert(k("A", "p1"), [14, 14, 14, 14]);
    cells.insert(k("A", "p2"), [3, 3, 3, 3]);
    cells.insert(k("A", "p3"), [30, 30, 30, 30]);
    let h = suppressed(&cells);
    // The district total minus A and B would give C: B (the smaller) goes too.
    assert!(
        h.contains(&(k("C", "*"), 0)) && h.contains(&(k("B", "*"), 0)),
        "{h:?}"
    );
    assert!(
        !h.contains(&(k("A", "*"), 0)) && !h.contains(&(k("*", "*"), 0)),
        "{h:?}"
    );
    // A's total minus p1 and p3 would give p2: p1 (the next smallest) goes too.
    assert!(
        h.contains(&(k("A", "p2"), 0)) && h.contains(&(k("A", "p1"), 0)),
        "{h:?}"
    );
    assert!(!h.contains(&(k("A", "p3"), 0)), "{h:?}");
    // Nothing small in a group's column: nothing hidden there (C's cases are 30).
    for x in ["*", "A", "B", "C"] {
        assert!(!h.contains(&(k(x, "*"), 1)), "{h:?}");
    }
    // Every group hides none or at least two of each count.
    let groups: Vec<Vec<(String, String)>> = vec![
        vec![k("*", "*"), k("A", "*"), k("B", "*"), k("C", "*")],
        vec![k("A", "*"), k("A", "p1"), k("A", "p2"), k("A", "p3")],
    ];
    for g in &groups {
        for c in 0..4 {
            let n = g.iter().filter(|x| h.contains(&((*x).clone(), c))).count();
            assert_ne!(n, 1, "{g:?} column {c}: {h:?}");
        }
    }
}

/// Makes the room's case rows fail to write (as a full disk would), or lets them pass
/// again: a trigger on `assistance_rows`, installed from outside the service.
fn break_case_rows(db: &cityos_server::runtime::service::Database, broken: bool) {
    match db.clone() {
        cityos_server::runtime::service::Database::Sqlite(dir) => {
            let c = rusqlite::Connection::open(dir.join("cityos.db")).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let sql = if broken {
                "CREATE TRIGGER inject_full BEFORE INSERT ON assistance_rows \
                 WHEN NEW.kind = 'case' \
                 BEGIN SELECT RAISE(ABORT, 'injected: database or disk is full'); END;"
            } else {
                "DROP TRIGGER inject_full;"
            };
            c.execute_batch(sql).unwrap();
        }
        cityos_server::runtime::service::Database::Postgres(url) => {
            std::thread::spawn(move || {
                let (url, schema) = cityos_engine::split_schema(&url);
                let schema = schema.unwrap();
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let sql = if broken {
                    format!(
                        "CREATE FUNCTION {schema}.inject_full() RETURNS trigger AS $$ \
                         BEGIN RAISE EXCEPTION 'injected: could not extend file'; END $$ LANGUAGE plpgsql; \
                         CREATE TRIGGER inject_full BEFORE INSERT ON {schema}.assistance_rows \
                         FOR EACH ROW WHEN (NEW.kind = 'case') EXECUTE FUNCTION {schema}.inject_full();"
                    )
                } else {
                    format!(
                        "DROP TRIGGER inject_full ON {schema}.assistance_rows; \
                         DROP FUNCTION {schema}.inject_full();"
                    )
                };
                c.batch_execute(&sql).unwrap();
            })
            .join()
            .unwrap();
        }
    }
}

// A raise failing after the engine opened a case (the room's row not written): the
// import stands and is audited, the households stay pending, and the next import raises
// them without a second engine case for the same household.
crate::api_story!(assistance_raise_failing_midway_is_taken_up_once);
async fn assistance_raise_failing_midway_is_taken_up_once(t: TestApp) {
    t.seed().await;
    set_key(&t);
    let d = district();
    let civil = t.login("liu.civil").await;
    let officer = t.login("zhang.district").await;
    let m_ix = d
        .files
        .iter()
        .position(|(s, _)| *s == "population")
        .unwrap();
    let mut order: Vec<usize> = (0..d.files.len()).collect();
    order.sort_by_key(|i| *i != m_ix);
    break_case_rows(&t.db, true);
    for (n, i) in order.iter().enumerate() {
        let (source, text) = &d.files[*i];
        let (s, v) = import(&t, Some(&civil), source, text, n + 1 < order.len()).await;
        assert_eq!(s, StatusCode::OK, "{source}: {v}");
        if n + 1 == order.len() {
            assert!(v["raise_failed"].is_string(), "{v}");
            assert_eq!(v["cases_opened"].as_array().unwrap().len(), 0, "{v}");
        }
    }
    // The failed delivery's imports are audited.
    let state = t.svc.as_ref().unwrap().state.clone();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let entries = state
        .0
        .reads
        .run(|s| s.audit_page(0, 1000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "assistance_import")
            .count(),
        order.len()
    );
    break_case_rows(&t.db, false);
    // The next import (anything) raises the pending households.
    let asst = d.file("assistance").unwrap();
    let (s, v) = import(&t, Some(&civil), "assistance", asst, false).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let opened = v["cases_opened"].as_array().unwrap().len();
    assert!(opened >= 5, "{v}");
    let (_, room) = t.get("/api/v1/assistance/cases", Some(&civil)).await;
    let room_cases = room["cases"].as_array().unwrap().len();
    assert_eq!(room_cases, opened);
    let (s, eng) = t
        .get(
            "/api/v1/cases?category=assistance_home_visit&limit=200",
            Some(&officer),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{eng}");
    assert_eq!(
        eng["cases"].as_array().unwrap().len(),
        room_cases,
        "one engine case per raised household"
    );
}
