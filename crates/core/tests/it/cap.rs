//! CAP 1.2 documents against the schema's required elements, their order and enumerations.

use cityos_core::cap::{identifier, CapAlert, MsgType, Reference, CAP_NS, CATEGORIES};
use cityos_core::indicators::WarnLevel;
use cityos_core::time::{local, Date};

/// The text of `<name>` (first occurrence).
fn el<'a>(x: &'a str, name: &str) -> Option<&'a str> {
    let (o, c) = (format!("<{name}>"), format!("</{name}>"));
    let i = x.find(&o)? + o.len();
    Some(&x[i..i + x[i..].find(&c)?])
}

/// Checks what the CAP 1.2 schema requires of an alert.
fn check(x: &str) -> Vec<String> {
    let mut p = Vec::new();
    if !x.contains(&format!("<alert xmlns=\"{CAP_NS}\">")) {
        p.push("namespace".into());
    }
    // Required elements, in the schema's sequence order.
    let order = [
        "identifier",
        "sender",
        "sent",
        "status",
        "msgType",
        "scope",
        "info",
    ];
    let mut last = 0;
    for e in order {
        match x.find(&format!("<{e}>")) {
            Some(i) if i >= last => last = i,
            Some(_) => p.push(format!("{e} out of order")),
            None => p.push(format!("{e} missing")),
        }
    }
    let enums: [(&str, &[&str]); 7] = [
        ("status", &["Actual", "Exercise", "System", "Test", "Draft"]),
        ("msgType", &["Alert", "Update", "Cancel", "Ack", "Error"]),
        ("scope", &["Public", "Restricted", "Private"]),
        ("category", &CATEGORIES),
        (
            "urgency",
            &["Immediate", "Expected", "Future", "Past", "Unknown"],
        ),
        (
            "severity",
            &["Extreme", "Severe", "Moderate", "Minor", "Unknown"],
        ),
        (
            "certainty",
            &["Observed", "Likely", "Possible", "Unlikely", "Unknown"],
        ),
    ];
    for (e, allowed) in enums {
        match el(x, e) {
            Some(v) if allowed.contains(&v) => {}
            v => p.push(format!("{e} = {v:?}")),
        }
    }
    for e in ["event", "areaDesc"] {
        if el(x, e).is_none_or(str::is_empty) {
            p.push(format!("{e} missing"));
        }
    }
    // sent: a dateTime with an explicit offset and no fractional seconds.
    let sent = el(x, "sent").unwrap_or("");
    let ok = sent.len() == 25
        && (sent.ends_with("+08:00") || sent.contains('-'))
        && !sent.contains('.')
        && !sent.ends_with('Z');
    if !ok {
        p.push(format!("sent {sent:?}"));
    }
    let id = el(x, "identifier").unwrap_or("");
    if id.contains([' ', ',', '<', '&']) {
        p.push("identifier has forbidden characters".into());
    }
    if let Some(poly) = el(x, "polygon") {
        let pts: Vec<&str> = poly.split(' ').collect();
        if pts.len() < 4 || pts.first() != pts.last() {
            p.push("polygon not closed or too short".into());
        }
        for pt in pts {
            let v: Vec<f64> = pt.split(',').filter_map(|n| n.parse().ok()).collect();
            if v.len() != 2 || v[0].abs() > 90.0 || v[1].abs() > 180.0 {
                p.push(format!("polygon point {pt:?} is not lat,lon"));
            }
        }
    }
    p
}

fn sample(t: MsgType) -> CapAlert {
    let sent = local(Date::new(2026, 7, 20).unwrap(), 16, 5);
    CapAlert {
        identifier: identifier("cityos-310104 flood/underpass#1"),
        sender: "ops@xuhui.cityos".into(),
        sent,
        msg_type: t,
        references: if t == MsgType::Alert {
            vec![]
        } else {
            vec![Reference {
                sender: "ops@xuhui.cityos".into(),
                identifier: "cityos-310104-flood-underpass-1".into(),
                sent: sent - 3_600_000,
            }]
        },
        category: "Met",
        event: "下立交积水 <暴雨> & 内涝".into(),
        level: WarnLevel::Orange,
        headline: "徐汇区发布下立交积水橙色预警".into(),
        description: "龙华中路下立交积水 32 cm。".into(),
        instruction: "请绕行。".into(),
        sender_name: "徐汇区城市运行管理中心".into(),
        area_desc: "徐汇区龙华街道".into(),
        polygon: vec![
            [121.44, 31.17],
            [121.46, 31.17],
            [121.46, 31.19],
            [121.44, 31.19],
        ],
        expires: Some(sent + 6 * 3_600_000),
    }
}

#[test]
fn alerts_updates_and_cancels_meet_the_schema() {
    for t in [MsgType::Alert, MsgType::Update, MsgType::Cancel] {
        let x = sample(t).to_xml();
        assert!(check(&x).is_empty(), "{t:?}: {:?}\n{x}", check(&x));
        assert_eq!(el(&x, "msgType"), Some(t.as_str()));
    }
    let x = sample(MsgType::Alert).to_xml();
    assert_eq!(
        el(&x, "identifier"),
        Some("cityos-310104-flood-underpass-1")
    );
    assert_eq!(el(&x, "sent"), Some("2026-07-20T16:05:00+08:00"));
    assert_eq!(el(&x, "severity"), Some("Severe"));
    assert!(
        el(&x, "references").is_none(),
        "a first alert references nothing"
    );
    assert!(
        x.contains("下立交积水 &lt;暴雨&gt; &amp; 内涝"),
        "text is escaped"
    );
    assert_eq!(el(&x, "polygon").unwrap().split(' ').count(), 5, "closed");
    let u = sample(MsgType::Update).to_xml();
    assert_eq!(
        el(&u, "references"),
        Some("ops@xuhui.cityos,cityos-310104-flood-underpass-1,2026-07-20T15:05:00+08:00")
    );
    assert_eq!(
        el(&sample(MsgType::Cancel).to_xml(), "urgency"),
        Some("Past")
    );
    // The checker itself catches what the schema forbids.
    assert!(!check(&x.replace("<scope>Public</scope>", "<scope>Everyone</scope>")).is_empty());
    assert!(!check(&x.replace("<status>Actual</status>", "")).is_empty());
}
