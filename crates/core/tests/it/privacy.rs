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
