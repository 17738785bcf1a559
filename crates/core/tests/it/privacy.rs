//! Personal data in free text: a table of texts and what a citizen may see of them.

use cityos_core::privacy::{find_personal, mask_personal, mask_title};
use cityos_core::workflow::TITLE_CHARS;

/// (text, masked)
const CASES: &[(&str, &str)] = &[
    // Mobiles, alone and inside Chinese text.
    ("13812345678", "***********"),
    ("电话13812345678联系", "电话***********联系"),
    (
        "请联系王先生13912345678，谢谢",
        "请联系王先生***********，谢谢",
    ),
    ("手机：138 1234 5678。", "手机：*** **** ****。"),
    ("手机 138-1234-5678", "手机 ***-****-****"),
    ("+86 13812345678", "*** ***********"),
    ("8613812345678", "*************"),
    ("全角１３８１２３４５６７８号", "全角***********号"),
    ("（13812345678）", "（***********）"),
    // Landlines with their area code; a bare local number after a phone word.
    ("物业电话021-64123456", "物业电话***-********"),
    ("02164123456", "***********"),
    ("(021)64123456转", "*************转"),
    ("0571-87654321", "****-********"),
    ("座机：64123456", "座机：********"),
    ("联系电话 6412 3456", "联系电话 **** ****"),
    // Resident ID numbers (18 characters, the last may be X).
    ("身份证310104198001011234", "身份证******************"),
    ("证件号31010419800101123X。", "证件号******************。"),
    ("id 31010419800101123x", "id ******************"),
    // E-mail addresses.
    (
        "邮箱zhang.san@example.com联系",
        "邮箱*********************联系",
    ),
    ("mail: a_b+c@mail.sh.cn.", "mail: ****************."),
    // Not personal data: case numbers, dates, amounts, readings, short numbers.
    ("案件XH2026112500001已受理", "案件XH2026112500001已受理"),
    ("XH20261125000123", "XH20261125000123"),
    ("2026-11-25 10:00", "2026-11-25 10:00"),
    ("20261125", "20261125"),
    ("金额12345678元", "金额12345678元"),
    ("罚款 3500000.00 元", "罚款 3500000.00 元"),
    ("用水 0.000 m³，近 12 小时", "用水 0.000 m³，近 12 小时"),
    (
        "住户 H-007（衡山路 283 弄 28 号）",
        "住户 H-007（衡山路 283 弄 28 号）",
    ),
    ("读数 13812345678.5", "读数 13812345678.5"),
    ("订单12345678901234567890", "订单12345678901234567890"),
    ("编号 123456789012345678", "编号 123456789012345678"),
    ("设备 WL-001 水深 18.5cm", "设备 WL-001 水深 18.5cm"),
    ("64123456", "64123456"),
    ("user@localhost", "user@localhost"),
    ("@someone 你好", "@someone 你好"),
    ("12345678901", "12345678901"),
];

#[test]
fn personal_data_is_masked_and_nothing_else() {
    let mut wrong = Vec::new();
    for (text, want) in CASES {
        let got = mask_personal(text);
        if got != *want {
            wrong.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn masking_keeps_length_and_finds_each_item_once() {
    let t = "张三 13812345678，李四 zhang@example.org，身份证 310104198001011234";
    assert_eq!(find_personal(t).len(), 3);
    assert_eq!(mask_personal(t).chars().count(), t.chars().count());
    assert_eq!(mask_personal("没有个人信息"), "没有个人信息");
}

#[test]
fn a_title_cut_inside_a_number_hides_the_number_s_head() {
    let pad = |tail: &str| {
        let n = TITLE_CHARS - tail.chars().count();
        "路".repeat(n) + tail
    };
    for (tail, want) in [
        ("身份证 3101041", "身份证 *******"),
        ("电话 138 12", "电话 *** **"),
        ("XH2026112", "XH2026112"),
        ("共 12", "共 12"),
    ] {
        assert_eq!(mask_title(&pad(tail)), pad(want), "{tail}");
    }
    // A title that was not cut keeps a number it ends in.
    assert_eq!(mask_title("金额 3101041"), "金额 3101041");
}

#[test]
fn bank_cards_passing_luhn_are_masked_in_text() {
    use cityos_core::privacy::luhn;
    assert!(luhn(&[4, 5, 3, 9, 1, 4, 8, 8, 0, 3, 4, 3, 6, 4, 6, 7]));
    assert_eq!(
        mask_personal("退款卡号6222021234567890128，谢谢"),
        "退款卡号*******************，谢谢"
    );
    assert_eq!(
        mask_personal("卡 6217 0012 3456 7893 尾号"),
        "卡 **** **** **** **** 尾号"
    );
    // One digit off fails Luhn: an order number, not a card.
    assert_eq!(
        mask_personal("订单6222021234567890127"),
        "订单6222021234567890127"
    );
}

#[test]
fn id_numbers_are_checked_by_date_and_check_digit_without_echoing_them() {
    use cityos_core::privacy::{check_id_number, IdProblem};
    assert_eq!(check_id_number("310104198001011239"), Ok(()));
    assert_eq!(check_id_number("11010519491231002X"), Ok(()));
    assert_eq!(check_id_number("11010519491231002x"), Ok(()));
    assert_eq!(
        check_id_number("310104198001011234"),
        Err(IdProblem::CheckDigit)
    );
    assert_eq!(
        check_id_number("310104198002301239"),
        Err(IdProblem::BirthDate)
    );
    assert_eq!(check_id_number("3101041980010112"), Err(IdProblem::Length));
    assert_eq!(
        check_id_number("31010419800101123Y"),
        Err(IdProblem::Characters)
    );
    for p in [
        IdProblem::Length,
        IdProblem::Characters,
        IdProblem::BirthDate,
        IdProblem::CheckDigit,
    ] {
        // The message names the problem, never the number.
        assert!(!p.to_string().contains("310104"), "{p}");
    }
}

#[test]
fn structured_fields_are_masked_by_their_column() {
    use cityos_core::privacy::{column_kind, mask_column, mask_field, Personal};
    assert_eq!(column_kind("name"), Some(Personal::Name));
    assert_eq!(column_kind("elder_name"), Some(Personal::Name));
    assert_eq!(column_kind("姓名"), Some(Personal::Name));
    assert_eq!(column_kind("phone"), Some(Personal::Phone));
    assert_eq!(column_kind("id_number"), Some(Personal::IdNumber));
    assert_eq!(column_kind("bank_card"), Some(Personal::BankCard));
    assert_eq!(column_kind("address"), Some(Personal::Address));
    assert_eq!(column_kind("email"), Some(Personal::Email));
    assert_eq!(column_kind("household"), None);
    assert_eq!(column_kind("water_m3"), None);
    assert_eq!(mask_field(Personal::Name, "王秀英"), "王**");
    assert_eq!(mask_field(Personal::Name, "李"), "李*");
    assert_eq!(mask_field(Personal::Phone, "13812345678"), "*******5678");
    assert_eq!(
        mask_field(Personal::IdNumber, "310104198001011239"),
        "3****************9"
    );
    assert_eq!(
        mask_field(Personal::BankCard, "6222 0212 3456 7890 128"),
        "**** **** **** ***0 128"
    );
    assert_eq!(
        mask_field(Personal::Email, "zhang.san@example.com"),
        "z***@example.com"
    );
    assert_eq!(
        mask_field(Personal::Address, "衡山路283弄28号501室"),
        "衡山路***"
    );
    assert_eq!(
        mask_field(Personal::Address, "吴兴路 78 弄 26 号"),
        "吴兴路***"
    );
    assert_eq!(mask_field(Personal::Address, "某小区"), "******");
    // A free-text column still has its numbers masked.
    assert_eq!(mask_column("note", "电话13812345678"), "电话***********");
}

// Names in free text: after a cue word, a known surname's given name is hidden and the
// surname kept; words that only look like a cue and a surname are left alone.
#[test]
fn names_after_a_cue_are_masked_in_text() {
    for (text, want) in [
        ("我叫张伟，住在天平路", "我叫张*，住在天平路"),
        ("联系人：李秀英 电话见备注", "联系人：李** 电话见备注"),
        ("独居老人王桂兰三天没出门", "独居老人王**三天没出门"),
        ("申请人欧阳娜娜", "申请人欧阳**"),
        ("户主王先生不在家", "户主王先生不在家"),
        ("老人张大爷摔倒了", "老人张大爷摔倒了"),
        ("本人反映噪音问题", "本人反映噪音问题"),
        ("姓名为赵敏。", "姓名为赵*。"),
    ] {
        assert_eq!(mask_personal(text), want, "{text}");
    }
}

// A contact person's column is a name (not a phone number kept to its last four
// characters, which showed short names whole); a "phone" too short to be one is hidden.
#[test]
fn contact_person_columns_are_names_and_short_phones_are_hidden() {
    use cityos_core::privacy::{column_kind, mask_column, Personal, CONTACT_MASK};
    for c in [
        "联系人",
        "contact_person",
        "contact_name",
        "申请人",
        "监护人姓名",
    ] {
        assert_eq!(column_kind(c), Some(Personal::Name), "{c}");
    }
    assert_eq!(column_kind("联系电话"), Some(Personal::Phone));
    assert_eq!(mask_column("联系人", "王秀英"), "王**");
    assert_eq!(mask_column("contact", "王秀英"), CONTACT_MASK);
    assert_eq!(mask_column("phone", "13812345678"), "*******5678");
}
