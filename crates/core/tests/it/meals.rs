//! 为老助餐's pure rules: the subsidy file, the ledger to the fen, checkout, cut-offs,
//! capacity, cancellation, ages.

use cityos_core::meals::*;
use cityos_core::time::{local, Date, MINUTE};

const RULES: &str = "\
# 徐汇区助餐补贴（分）
age 60-69 lunch 200 district
age 70-79 lunch 300 district
age 80+ lunch 500 district
age 60+ breakfast 100 district
status dibao lunch 500 civil_affairs   # 低保
min_self_pay lunch 200
";

fn rules() -> SubsidyRules {
    parse_rules(RULES).expect("rules")
}

fn menu() -> Vec<Dish> {
    vec![
        Dish {
            id: "d1".into(),
            name: "红烧鱼块套餐".into(),
            price: 1500,
            tags: vec!["soft".into()],
        },
        Dish {
            id: "d2".into(),
            name: "清蒸鸡蛋羹".into(),
            price: 333,
            tags: vec!["low_salt".into()],
        },
    ]
}

fn slot(capacity: u32) -> MealSlot {
    MealSlot {
        date: Date::new(2026, 12, 7).unwrap(),
        meal: Meal::Lunch,
        cutoff_min: 9 * 60 + 30,
        capacity,
    }
}

fn req<'a>(
    menu: &'a [Dish],
    lines: &'a [Line],
    statuses: &'a [String],
    age: u32,
    balance: Fen,
) -> Request<'a> {
    Request {
        age,
        statuses,
        slot: slot(100),
        menu,
        lines,
        balance,
        used: SlotUse::default(),
        now: local(Date::new(2026, 12, 7).unwrap(), 8, 0),
    }
}

#[test]
fn rules_parse_and_subsidy_by_band_and_status() {
    let r = rules();
    assert_eq!(r.bands.len(), 4);
    assert_eq!(
        r.subsidy(65, &[], Meal::Lunch, 1500),
        vec![("district".to_string(), 200)]
    );
    assert_eq!(
        r.subsidy(79, &[], Meal::Lunch, 1500),
        vec![("district".to_string(), 300)]
    );
    assert_eq!(
        r.subsidy(80, &[], Meal::Lunch, 1500),
        vec![("district".to_string(), 500)]
    );
    let dibao = vec!["dibao".to_string()];
    assert_eq!(
        r.subsidy(85, &dibao, Meal::Lunch, 1500),
        vec![
            ("district".to_string(), 500),
            ("civil_affairs".to_string(), 500)
        ]
    );
    // Capped so the elder pays the minimum 2 yuan: 8 yuan meal → 6 yuan subsidy at most.
    assert_eq!(
        r.subsidy(85, &dibao, Meal::Lunch, 800),
        vec![
            ("district".to_string(), 500),
            ("civil_affairs".to_string(), 100)
        ]
    );
    // Breakfast has no min self-pay and no status rate.
    assert_eq!(
        r.subsidy(90, &dibao, Meal::Breakfast, 50),
        vec![("district".to_string(), 50)]
    );
}

#[test]
fn rules_problems_are_named_by_line() {
    let bad = "age 60-69 lunch 200 district\nage 65-75 lunch 100 district\nage 70-79 lunch 3.5 district\nagee 80+ lunch 1 x\nstatus dibao supper 5 civil\nage 50-59 lunch 1 district\nmin_self_pay lunch\n";
    let p = parse_rules(bad).unwrap_err();
    let lines: Vec<usize> = p.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7], "{p:?}");
    assert!(
        p[0].message.contains("overlaps 60-69 of line 1"),
        "{}",
        p[0]
    );
    assert!(p[1].message.contains("whole fen"), "{}", p[1]);
    assert!(p[2].message.contains("unknown rule `agee`"), "{}", p[2]);
    assert!(p[3].message.contains("unknown meal `supper`"), "{}", p[3]);
    assert!(p[4].message.contains("60"), "{}", p[4]);
    assert!(p[5]
        .to_string()
        .starts_with("line 7: `min_self_pay` takes 2 fields"));
    assert!(parse_rules("# nothing\n").is_err());
}

#[test]
fn ledger_is_exact_to_the_fen() {
    let mut l = Ledger::new();
    let e = l.top_up(10_000, "family", 1).unwrap();
    l.apply(e);
    // 0.01 yuan a hundred times is exactly 1 yuan: integers, never floats.
    for i in 0..100 {
        let e = l.pay(1, &format!("o{i}"), 2).unwrap().unwrap();
        l.apply(e);
    }
    assert_eq!(l.balance(), 9_900);
    let e = l.pay(333, "big", 3).unwrap().unwrap();
    l.apply(e);
    assert_eq!(l.balance(), 9_567);
    let r = l.refund("big", 4).unwrap();
    assert_eq!(r.amount, 333);
    l.apply(r);
    assert_eq!(l.balance(), 9_900);
    // Refunding twice gives nothing more.
    assert!(l.refund("big", 5).is_none());
    assert_eq!(
        l.pay(10_000, "x", 6),
        Err(ledger::LedgerError::Insufficient(9_900, 10_000))
    );
    assert!(l.top_up(0, "family", 7).is_err());
    assert!(l.top_up(ledger::MAX_TOP_UP + 1, "family", 7).is_err());
    assert_eq!(l.pay(0, "free", 8), Ok(None));
    let back = Ledger::from_entries(l.entries().iter().rev().cloned().collect());
    assert_eq!(back.balance(), l.balance());
    assert_eq!(yuan(9_900), "99.00");
    assert_eq!(yuan(-5), "-0.05");
    assert_eq!(yuan(333), "3.33");
}

#[test]
fn checkout_applies_subsidy_once_and_checks_balance() {
    let r = rules();
    let m = menu();
    let dibao = vec!["dibao".to_string()];
    let lines = vec![
        Line {
            dish: "d1".into(),
            qty: 1,
        },
        Line {
            dish: "d2".into(),
            qty: 1,
        },
    ];
    let b = checkout(&r, &req(&m, &lines, &dibao, 82, 10_000)).unwrap();
    assert_eq!(b.total, 1833);
    assert_eq!(b.subsidy_total(), 1000);
    assert_eq!(b.pay, 833);
    assert_eq!(b.pay + b.subsidy_total(), b.total);
    // Balance too small by one fen.
    assert_eq!(
        checkout(&r, &req(&m, &lines, &dibao, 82, 832)),
        Err(CheckoutError::Insufficient(832, 833))
    );
    // Exactly enough.
    assert_eq!(
        checkout(&r, &req(&m, &lines, &dibao, 82, 833)).unwrap().pay,
        833
    );
    // A second order of the same meal that day: no second subsidy.
    let mut q = req(&m, &lines, &dibao, 82, 10_000);
    q.used.subsidised = true;
    assert_eq!(checkout(&r, &q).unwrap().pay, 1833);
}

#[test]
fn checkout_refuses_menu_quantity_cutoff_capacity() {
    let r = rules();
    let m = menu();
    let none: Vec<String> = vec![];
    let stranger = vec![Line {
        dish: "d9".into(),
        qty: 1,
    }];
    assert_eq!(
        checkout(&r, &req(&m, &stranger, &none, 70, 9_999)),
        Err(CheckoutError::NotOnMenu("d9".into()))
    );
    assert_eq!(
        checkout(&r, &req(&m, &[], &none, 70, 9_999)),
        Err(CheckoutError::Empty)
    );
    let four = vec![Line {
        dish: "d1".into(),
        qty: 4,
    }];
    assert_eq!(
        checkout(&r, &req(&m, &four, &none, 70, 99_999)),
        Err(CheckoutError::Quantity(4))
    );
    let one = vec![Line {
        dish: "d1".into(),
        qty: 1,
    }];
    let mut q = req(&m, &one, &none, 70, 9_999);
    q.now = q.slot.cutoff();
    assert_eq!(
        checkout(&r, &q),
        Err(CheckoutError::AfterCutoff(q.slot.cutoff()))
    );
    q.now = q.slot.cutoff() - 1;
    assert!(checkout(&r, &q).is_ok());
    q.used.portions = 100;
    assert_eq!(checkout(&r, &q), Err(CheckoutError::OverCapacity(0)));
    q.used.portions = 99;
    assert!(checkout(&r, &q).is_ok());
    let two = vec![Line {
        dish: "d1".into(),
        qty: 2,
    }];
    let mut q2 = req(&m, &two, &none, 70, 9_999);
    q2.used.portions = 99;
    assert_eq!(checkout(&r, &q2), Err(CheckoutError::OverCapacity(1)));
}

#[test]
fn breakfast_cutoff_the_evening_before() {
    let s = MealSlot {
        date: Date::new(2026, 12, 7).unwrap(),
        meal: Meal::Breakfast,
        cutoff_min: -240,
        capacity: 5,
    };
    assert_eq!(s.cutoff(), local(Date::new(2026, 12, 6).unwrap(), 20, 0));
}

#[test]
fn cancel_before_cutoff_staff_after() {
    let cut = local(Date::new(2026, 12, 7).unwrap(), 9, 30);
    assert_eq!(cancel(OrderState::Placed, cut, cut - MINUTE, false), Ok(()));
    assert_eq!(
        cancel(OrderState::Placed, cut, cut, false),
        Err(CancelError::AfterCutoff(cut))
    );
    assert_eq!(
        cancel(OrderState::Placed, cut, cut + 60 * MINUTE, true),
        Ok(())
    );
    assert_eq!(
        cancel(OrderState::Served, cut, cut - MINUTE, true),
        Err(CancelError::State(OrderState::Served))
    );
    assert_eq!(
        cancel(OrderState::Cancelled, cut, 0, true),
        Err(CancelError::State(OrderState::Cancelled))
    );
}

#[test]
fn order_keys_are_per_elder() {
    assert_eq!(order_key("e1", "k"), order_key("e1", "k"));
    assert_ne!(order_key("e1", "k"), order_key("e2", "k"));
}

#[test]
fn ages_are_checked_kindly() {
    let today = Date::new(2026, 12, 6).unwrap();
    assert_eq!(age_on(Date::new(1946, 12, 7).unwrap(), today), 79);
    assert_eq!(age_on(Date::new(1946, 12, 6).unwrap(), today), 80);
    assert_eq!(check_age(Date::new(1946, 12, 6).unwrap(), today), Ok(80));
    assert_eq!(
        check_age(Date::new(2027, 1, 1).unwrap(), today),
        Err(AgeError::Future)
    );
    assert_eq!(
        check_age(Date::new(1990, 1, 1).unwrap(), today),
        Err(AgeError::TooYoung(36))
    );
    assert_eq!(
        check_age(Date::new(1880, 1, 1).unwrap(), today),
        Err(AgeError::Impossible(146))
    );
}
