//! The one masking module of cityos. Personal data inside free text: mainland phone
//! numbers (mobiles, landlines with their area code, a bare 7–8 digit local number right
//! after a word such as 电话), 18-digit resident ID numbers (the last may be X), bank card
//! numbers (16–19 digits passing the Luhn check) and e-mail addresses are found and masked
//! with `*`, so a description can be shown to people who may not see who reported it.
//! Structured fields are masked by what their column holds ([`column_kind`],
//! [`mask_field`]): a name keeps its surname, a phone or card its last four digits, an ID
//! number its first and last character. [`check_id_number`] validates an ID number's birth
//! date and check digit (GB 11643) and names what is wrong without repeating the number.
//!
//! A pure scan over characters (no regular expressions): a number only counts when it
//! stands alone — digits glued to Latin letters (case numbers such as `XH2026…`) or to a
//! decimal point (amounts, readings) are left alone, and so are dates and short numbers.
//! Full-width digits (`１３８…`) count as digits. CJK characters around a number are
//! boundaries, so `电话13812345678联系` is found.

/// The mask shown instead of a whole contact field.
pub const CONTACT_MASK: &str = "******";

/// A digit's value, ASCII or full-width.
fn digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '０'..='９' => Some((c as u32 - '０' as u32) as u8),
        _ => None,
    }
}

/// Letters and digits that glue to a number (ASCII or full-width Latin).
fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || digit(c).is_some() || matches!(c, 'Ａ'..='Ｚ' | 'ａ'..='ｚ')
}

fn sep(c: char) -> bool {
    matches!(c, '-' | ' ' | '－' | '—')
}

/// Does a number start at `i` (nothing glued before it)?
fn starts_free(t: &[char], i: usize) -> bool {
    if i == 0 {
        return true;
    }
    let p = t[i - 1];
    if word(p) || p == '_' {
        return false;
    }
    // A decimal point or a separator directly after digits: part of a longer number.
    if matches!(p, '.' | '．' | ',' | '/' | ':') || sep(p) {
        return !(i >= 2 && digit(t[i - 2]).is_some());
    }
    true
}

/// Does a number end at `j` (exclusive; nothing glued after it)?
fn ends_free(t: &[char], j: usize) -> bool {
    match t.get(j) {
        None => true,
        Some(&c) if word(c) || c == '_' => false,
        // `1381234567.5`, `2026/11`: the number goes on.
        Some('.' | '．' | ',' | '/' | ':' | '@') => t
            .get(j + 1)
            .is_none_or(|n| digit(*n).is_none() && !word(*n)),
        Some(_) => true,
    }
}

/// Reads exactly `n` digits from `i`, allowing one separator before any of the `gaps`
/// (digit counts at which a separator may appear). Returns the end and the digits.
fn digits_at(t: &[char], mut i: usize, n: usize, gaps: &[usize]) -> Option<(usize, Vec<u8>)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if gaps.contains(&out.len()) && t.get(i).is_some_and(|c| sep(*c)) {
            i += 1;
        }
        out.push(digit(*t.get(i)?)?);
        i += 1;
    }
    Some((i, out))
}

/// A mobile number at `i`: optional +86 / 86, then 1[3-9] and 9 more digits (3-4-4 with
/// optional separators). Returns its end.
fn mobile(t: &[char], i: usize) -> Option<usize> {
    let mut k = i;
    if t.get(k) == Some(&'+') {
        k += 1;
    }
    let mut starts = vec![k];
    if digit(*t.get(k)?) == Some(8) && t.get(k + 1).and_then(|c| digit(*c)) == Some(6) {
        let mut m = k + 2;
        if t.get(m).is_some_and(|c| sep(*c)) {
            m += 1;
        }
        starts.insert(0, m);
    } else if k != i {
        return None;
    }
    starts.into_iter().find_map(|s| {
        let (end, d) = digits_at(t, s, 11, &[3, 7])?;
        (d[0] == 1 && (3..=9).contains(&d[1]) && ends_free(t, end)).then_some(end)
    })
}

/// An 18-character resident ID at `i`: 17 digits and a digit or X, with a plausible
/// birth date (19xx/20xx, month 01–12, day 01–31).
fn id_card(t: &[char], i: usize) -> Option<usize> {
    let (end, d) = digits_at(t, i, 17, &[])?;
    let last = *t.get(end)?;
    if digit(last).is_none() && !matches!(last, 'X' | 'x' | 'Ｘ' | 'ｘ') {
        return None;
    }
    let n = |a: usize, b: usize| d[a..b].iter().fold(0u32, |acc, x| acc * 10 + *x as u32);
    let (year, month, day) = (n(6, 10), n(10, 12), n(12, 14));
    ((1900..=2099).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && ends_free(t, end + 1))
    .then_some(end + 1)
}

/// A bank card number at `i`: 16–19 digits (groups of four may be separated) that pass
/// the Luhn check.
fn bank_card(t: &[char], i: usize) -> Option<usize> {
    let mut k = i;
    let mut d: Vec<u8> = Vec::with_capacity(19);
    let mut best = None;
    while d.len() < 19 {
        if d.len().is_multiple_of(4) && !d.is_empty() && t.get(k).is_some_and(|c| sep(*c)) {
            if t.get(k + 1).and_then(|c| digit(*c)).is_none() {
                break;
            }
            k += 1;
        }
        let Some(x) = t.get(k).and_then(|c| digit(*c)) else {
            break;
        };
        d.push(x);
        k += 1;
        if d.len() >= 16 && ends_free(t, k) && luhn(&d) {
            best = Some(k);
        }
    }
    best
}

/// The Luhn check over digits (the last is the check digit).
pub fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, x)| {
            let x = *x as u32;
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    !d.is_empty() && sum.is_multiple_of(10)
}

/// What is wrong with a resident ID number. The messages never repeat the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdProblem {
    /// Not 18 characters.
    Length,
    /// Not 17 digits and a digit or X.
    Characters,
    /// The birth date (characters 7–14) is not a date.
    BirthDate,
    /// The check digit does not match.
    CheckDigit,
}

impl std::fmt::Display for IdProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdProblem::Length => "an ID number has 18 characters",
            IdProblem::Characters => "an ID number is 17 digits and a digit or X",
            IdProblem::BirthDate => "the ID number's birth date is not a date",
            IdProblem::CheckDigit => "the ID number's check digit does not match",
        })
    }
}

/// Validates an 18-character resident ID number: characters, birth date (1900–2099) and
/// the GB 11643 check digit.
pub fn check_id_number(s: &str) -> Result<(), IdProblem> {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let t: Vec<char> = s.trim().chars().collect();
    if t.len() != 18 {
        return Err(IdProblem::Length);
    }
    let d: Vec<u32> = t[..17]
        .iter()
        .map(|c| digit(*c).map(u32::from))
        .collect::<Option<_>>()
        .ok_or(IdProblem::Characters)?;
    let last = match t[17] {
        'x' | 'X' | 'ｘ' | 'Ｘ' => 'X',
        c => {
            let v = digit(c).ok_or(IdProblem::Characters)?;
            (b'0' + v) as char
        }
    };
    let n = |a: usize, b: usize| d[a..b].iter().fold(0u32, |acc, x| acc * 10 + *x);
    let (year, month, day) = (n(6, 10), n(10, 12), n(12, 14));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    };
    if !(1900..=2099).contains(&year) || day == 0 || day > days {
        return Err(IdProblem::BirthDate);
    }
    let sum: u32 = d.iter().zip(W).map(|(a, b)| a * b).sum();
    if CHECK[(sum % 11) as usize] != last {
        return Err(IdProblem::CheckDigit);
    }
    Ok(())
}

/// What a structured field holds, by its column's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personal {
    Name,
    Phone,
    IdNumber,
    BankCard,
    Email,
    Address,
}

impl Personal {
    pub fn as_str(self) -> &'static str {
        match self {
            Personal::Name => "name",
            Personal::Phone => "phone",
            Personal::IdNumber => "id_number",
            Personal::BankCard => "bank_card",
            Personal::Email => "email",
            Personal::Address => "address",
        }
    }
}

/// The kind of personal data a column holds, from its name (English or Chinese); `None`
/// for columns that hold none.
pub fn column_kind(column: &str) -> Option<Personal> {
    let c = column.to_ascii_lowercase();
    let has = |ws: &[&str]| ws.iter().any(|w| c.contains(w));
    if has(&["id_number", "id_card", "idcard", "id_no", "身份证", "证件"]) {
        Some(Personal::IdNumber)
    } else if has(&["bank", "card_no", "card_number", "银行卡", "账号"]) {
        Some(Personal::BankCard)
    } else if c == "name"
        || c.ends_with("_name")
        || c.starts_with("name_")
        || has(&[
            "person",
            "姓名",
            "联系人",
            "户主",
            "申请人",
            "监护人",
            "家属",
        ])
    {
        // Before the phone words: 联系人 / contact_person is a name, not a number.
        Some(Personal::Name)
    } else if has(&["phone", "mobile", "tel", "contact", "电话", "手机", "联系"]) {
        Some(Personal::Phone)
    } else if has(&["email", "e-mail", "mail", "邮箱"]) {
        Some(Personal::Email)
    } else if has(&["address", "addr", "住址", "地址"]) {
        Some(Personal::Address)
    } else {
        None
    }
}

/// A name masked: the first character (the surname) kept, the rest `*`.
pub fn mask_name(name: &str) -> String {
    let mut cs = name.trim().chars();
    match cs.next() {
        None => String::new(),
        Some(first) => {
            let rest = cs.count().max(1);
            format!("{first}{}", "*".repeat(rest))
        }
    }
}

/// Every digit but the last `keep` replaced by `*` (separators and letters other than a
/// final X count as digits to hide).
fn keep_last(value: &str, keep: usize) -> String {
    let n = value.chars().filter(|c| !sep(*c)).count();
    value
        .chars()
        .scan(0usize, |i, c| {
            if sep(c) {
                return Some(c);
            }
            *i += 1;
            Some(if *i + keep > n { c } else { '*' })
        })
        .collect()
}

/// A structured field's value masked as its kind says: names keep the surname, phones and
/// bank cards their last four digits, ID numbers their first and last character, e-mail
/// addresses the first letter and the domain, addresses the road's name before any number.
pub fn mask_field(kind: Personal, value: &str) -> String {
    let v = value.trim();
    if v.is_empty() {
        return String::new();
    }
    match kind {
        Personal::Name => mask_name(v),
        // Fewer than 7 digits is no phone or card number: nothing of it is shown.
        Personal::Phone | Personal::BankCard
            if v.chars().filter(|c| digit(*c).is_some()).count() < 7 =>
        {
            CONTACT_MASK.to_string()
        }
        Personal::Phone | Personal::BankCard => keep_last(v, 4),
        Personal::IdNumber => {
            let t: Vec<char> = v.chars().collect();
            t.iter()
                .enumerate()
                .map(|(i, c)| if i == 0 || i + 1 == t.len() { *c } else { '*' })
                .collect()
        }
        Personal::Email => match v.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => CONTACT_MASK.to_string(),
        },
        Personal::Address => {
            // The road's name at most (before the first number): never a house number.
            let head: String = v
                .chars()
                .take_while(|c| digit(*c).is_none())
                .take(6)
                .collect();
            let head = head.trim_end();
            if head.is_empty() || head.chars().count() == v.chars().count() {
                CONTACT_MASK.to_string()
            } else {
                format!("{head}***")
            }
        }
    }
}

/// A column's value masked for someone who may not see it: by the column's kind when it
/// holds personal data, and through [`mask_personal`] in any case (a number inside a
/// note column).
pub fn mask_column(column: &str, value: &str) -> String {
    match column_kind(column) {
        Some(kind) => mask_field(kind, value),
        None => mask_personal(value),
    }
}

/// A landline with its area code at `i`: `0` and 2–3 more digits (in parentheses or
/// followed by a separator, or glued), then a 7–8 digit local number starting 2–9.
fn landline(t: &[char], i: usize) -> Option<usize> {
    let open = matches!(t.get(i), Some('(' | '（'));
    let s = i + open as usize;
    if digit(*t.get(s)?) != Some(0) {
        return None;
    }
    for area in [3usize, 4] {
        let Some((mut k, a)) = digits_at(t, s, area, &[]) else {
            continue;
        };
        if a[1] == 0 {
            return None;
        }
        if open {
            if !matches!(t.get(k), Some(')' | '）')) {
                continue;
            }
            k += 1;
        }
        if t.get(k).is_some_and(|c| sep(*c)) {
            k += 1;
        }
        for local in [8usize, 7] {
            if let Some((end, d)) = digits_at(t, k, local, &[3, 4]) {
                if d[0] >= 2 && ends_free(t, end) {
                    return Some(end);
                }
            }
        }
    }
    None
}

/// Words after which a bare local number is a telephone number.
const PHONE_WORDS: [&str; 8] = ["电话", "手机", "座机", "联系", "号码", "tel", "Tel", "TEL"];

/// A bare 7–8 digit local number right after a phone word (a few characters between).
fn local_after_word(t: &[char], i: usize) -> Option<usize> {
    let before: String = t[i.saturating_sub(8)..i].iter().collect();
    if !PHONE_WORDS.iter().any(|w| before.contains(w)) {
        return None;
    }
    for local in [8usize, 7] {
        if let Some((end, d)) = digits_at(t, i, local, &[4]) {
            if d[0] >= 2 && ends_free(t, end) {
                return Some(end);
            }
        }
    }
    None
}

fn email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// The e-mail address around the `@` at `at`: (start, end).
fn email(t: &[char], at: usize) -> Option<(usize, usize)> {
    let mut s = at;
    while s > 0 && email_local(t[s - 1]) {
        s -= 1;
    }
    let mut e = at + 1;
    while e < t.len() && email_domain(t[e]) {
        e += 1;
    }
    // A trailing dot ends the sentence, not the domain.
    while e > at + 1 && t[e - 1] == '.' {
        e -= 1;
    }
    let domain: String = t[at + 1..e].iter().collect();
    let tld = domain.rsplit('.').next().unwrap_or("");
    (s < at
        && domain.contains('.')
        && !domain.starts_with('.')
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic()))
    .then_some((s, e))
}

/// The character ranges of personal data in `text` (as char indices, in order).
pub fn find_personal(text: &str) -> Vec<(usize, usize)> {
    let t: Vec<char> = text.chars().collect();
    let mut found: Vec<(usize, usize)> = Vec::new();
    for (at, _) in t.iter().enumerate().filter(|(_, c)| **c == '@') {
        if let Some(r) = email(&t, at) {
            if found.last().is_none_or(|l| l.1 <= r.0) {
                found.push(r);
            }
        }
    }
    let emails = found.clone();
    let in_email = |i: usize| emails.iter().any(|(s, e)| (*s..*e).contains(&i));
    let mut i = 0;
    while i < t.len() {
        let c = t[i];
        let candidate = digit(c).is_some() || matches!(c, '+' | '(' | '（');
        if !candidate || in_email(i) || !starts_free(&t, i) {
            i += 1;
            continue;
        }
        let hit = mobile(&t, i)
            .or_else(|| id_card(&t, i))
            .or_else(|| bank_card(&t, i))
            .or_else(|| landline(&t, i))
            .or_else(|| digit(c).and_then(|_| local_after_word(&t, i)));
        match hit {
            Some(end) => {
                found.push((i, end));
                i = end;
            }
            None if digit(c).is_none() => i += 1,
            None => {
                // Skip the rest of this number so that its tail is not read as one.
                i += 1;
                while i < t.len() && (word(t[i]) || matches!(t[i], '.' | '．')) {
                    i += 1;
                }
            }
        }
    }
    names(&t, &mut found);
    found.sort_unstable();
    found
}

/// Words after which a person's name follows in free text (「我叫张伟」, 「联系人：李秀英」,
/// 「老人王桂兰」).
const NAME_CUES: [&str; 12] = [
    "我叫",
    "名叫",
    "叫做",
    "姓名",
    "名字是",
    "联系人",
    "本人",
    "户主",
    "老人",
    "家属",
    "申请人",
    "监护人",
];

/// Common Chinese surnames (the single-character ones that cover most people, and the
/// usual compound ones): a name after a cue must start with one.
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";
const COMPOUND_SURNAMES: [&str; 8] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙",
];

/// Characters that end a name (or show the words after a cue are not one).
fn name_stop(c: char) -> bool {
    !('\u{4e00}'..='\u{9fff}').contains(&c)
        || "的是在住了和与及说家先生女士阿姨师傅老师同志大爷大妈奶奶爷爷电话联系反映投诉要求需要已经没有不也都就还你我他她们这那".contains(c)
}

/// Names after a cue word: the given name (1–2 characters after a known surname) is
/// added to `found`; the surname stays, as in [`mask_name`].
fn names(t: &[char], found: &mut Vec<(usize, usize)>) {
    let text: String = t.iter().collect();
    for cue in NAME_CUES {
        let mut from = 0;
        while let Some(pos) = text[from..].find(cue) {
            let byte = from + pos + cue.len();
            from = byte;
            let mut i = text[..byte].chars().count();
            while i < t.len() && matches!(t[i], ':' | '：' | ' ' | '\u{3000}' | '为' | '是') {
                i += 1;
            }
            let rest: String = t[i..t.len().min(i + 2)].iter().collect();
            let surname = if COMPOUND_SURNAMES.contains(&rest.as_str()) {
                2
            } else if i < t.len() && SURNAMES.contains(t[i]) {
                1
            } else {
                continue;
            };
            let start = i + surname;
            let mut end = start;
            while end < t.len() && end - start < 2 && !name_stop(t[end]) {
                end += 1;
            }
            if end > start && !found.iter().any(|(s, e)| start < *e && *s < end) {
                found.push((start, end));
            }
        }
    }
}

/// A case title (the report's text cut at [`crate::workflow::TITLE_CHARS`]) masked: as
/// [`mask_personal`], and when the title was cut, a number it ends in (3 digits or more)
/// too — it may be the head of a phone or ID number the cut made unrecognisable.
pub fn mask_title(title: &str) -> String {
    let mut t: Vec<char> = mask_personal(title).chars().collect();
    if t.len() < crate::workflow::TITLE_CHARS {
        return t.into_iter().collect();
    }
    let mut s = t.len();
    while s > 0
        && (digit(t[s - 1]).is_some() || (sep(t[s - 1]) && s >= 2 && digit(t[s - 2]).is_some()))
    {
        s -= 1;
    }
    let digits = t[s..].iter().filter(|c| digit(**c).is_some()).count();
    if digits >= 3 && starts_free(&t, s) {
        for c in &mut t[s..] {
            if digit(*c).is_some() {
                *c = '*';
            }
        }
    }
    t.into_iter().collect()
}

/// `text` with every phone number, ID number, bank card number and e-mail address
/// replaced by `*`s, and a person's given name after a cue word (「我叫张伟」 →
/// 「我叫张*」).
pub fn mask_personal(text: &str) -> String {
    let found = find_personal(text);
    if found.is_empty() {
        return text.to_string();
    }
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if found.iter().any(|(s, e)| (*s..*e).contains(&i)) && !sep(c) {
                '*'
            } else {
                c
            }
        })
        .collect()
}

/// Counts under this are not shown to analysts (a household or an elder could be told
/// apart), nor any count that would give one away by subtraction.
pub const MIN_CELL: usize = 5;

/// The key of a total in a table of counts ([`suppressed`]).
pub const ALL: &str = "*";

/// A cell of a table of counts: (region, column).
pub type CellKey = (String, String);

/// The cells of a table of counts (keyed by (region, column), with [`ALL`] for totals)
/// and which of their four counts are not shown: every count under [`MIN_CELL`], and — complementary suppression — whenever a group that adds up (the
/// district total with its sub-district totals; a sub-district total with its policy
/// cells) has exactly one count hidden, the smallest other count of the group as well,
/// until no group has a lone hidden count: no hidden count is found by subtraction.
pub fn suppressed(
    cells: &std::collections::BTreeMap<CellKey, [usize; 4]>,
) -> std::collections::BTreeSet<(CellKey, usize)> {
    let mut hidden = std::collections::BTreeSet::new();
    for (key, n) in cells {
        for (k, v) in n.iter().enumerate() {
            if *v < MIN_CELL {
                hidden.insert((key.clone(), k));
            }
        }
    }
    let mut groups: Vec<Vec<CellKey>> =
        vec![cells.keys().filter(|(_, p)| p == ALL).cloned().collect()];
    for (s, p) in cells.keys() {
        if s != ALL && p == ALL {
            groups.push(cells.keys().filter(|(s2, _)| s2 == s).cloned().collect());
        }
    }
    loop {
        let mut changed = false;
        for g in &groups {
            for k in [0usize, 1, 2, 3] {
                let lone = g
                    .iter()
                    .filter(|c| hidden.contains(&((*c).clone(), k)))
                    .count()
                    == 1;
                if !lone {
                    continue;
                }
                if let Some(next) = g
                    .iter()
                    .filter(|c| !hidden.contains(&((*c).clone(), k)))
                    .min_by_key(|c| cells[*c][k])
                {
                    hidden.insert((next.clone(), k));
                    changed = true;
                }
            }
        }
        if !changed {
            return hidden;
        }
    }
}
