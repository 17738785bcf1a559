//! Store stories — what the store keeps beside cases: accounts and idempotency records, photos stored once by content, datasets replaced by a new import.

use super::*;

story!(accounts_and_idempotency_records);
fn accounts_and_idempotency_records(b: &Backend) {
    use cityos_engine::store::{IdempotentAnswer, User};
    let mut s = b.store();
    assert_eq!(s.user("zhang").unwrap(), None);
    let mut u = User {
        username: "zhang".into(),
        display_name: "张".into(),
        password_hash: "$argon2id$x".into(),
        role: "district_officer".into(),
        department: None,
        scope: Some("310104".into()),
        created_at: 1,
    };
    s.put_user(&u).unwrap();
    assert_eq!(s.user("zhang").unwrap().as_ref(), Some(&u));
    u.role = "analyst".into();
    s.put_user(&u).unwrap();
    assert_eq!(s.user("zhang").unwrap().unwrap().role, "analyst");
    let a = IdempotentAnswer {
        key: "k1".into(),
        request_hash: "h".into(),
        status: 201,
        body: "{}".into(),
        created_at: 5,
    };
    assert_eq!(s.put_idempotent(&a).unwrap(), None, "first answer stored");
    let again = IdempotentAnswer {
        body: "{\"x\":1}".into(),
        ..a.clone()
    };
    assert_eq!(
        s.put_idempotent(&again).unwrap(),
        Some(a.clone()),
        "the first answer wins"
    );
    assert_eq!(s.idempotent("k1").unwrap(), Some(a));
}

story!(photos_are_stored_once_by_content);
fn photos_are_stored_once_by_content(b: &Backend) {
    use cityos_engine::store::Media;
    let mut s = b.store();
    let m = Media {
        id: "ab12".into(),
        content_type: "image/png".into(),
        bytes: vec![0x89, b'P', b'N', b'G', 0, 1, 2, 255],
        created_at: t0(),
    };
    s.put_media(&m).unwrap();
    // The same photo again is a no-op, not an error.
    s.put_media(&Media {
        created_at: t0() + HOUR,
        ..m.clone()
    })
    .unwrap();
    assert_eq!(s.media("ab12").unwrap(), Some(m));
    assert_eq!(s.media("cd34").unwrap(), None);
}

story!(datasets_are_replaced_by_a_new_import);
fn datasets_are_replaced_by_a_new_import(b: &Backend) {
    use cityos_engine::store::Dataset;
    let mut s = b.store();
    let d = Dataset {
        name: "households".into(),
        owner: "dist-civil-affairs".into(),
        sensitivity: "sensitive".into(),
        columns: r#"["id","elder_alone"]"#.into(),
        rows: r#"[{"id":"H1","elder_alone":"1"}]"#.into(),
        row_count: 1,
        imported_at: t0(),
    };
    s.put_dataset(&d).unwrap();
    let again = Dataset {
        rows: r#"[{"id":"H1","elder_alone":"1"},{"id":"H2","elder_alone":"0"}]"#.into(),
        row_count: 2,
        imported_at: t0() + HOUR,
        ..d.clone()
    };
    s.put_dataset(&again).unwrap();
    assert_eq!(s.datasets().unwrap(), vec![again]);
}
