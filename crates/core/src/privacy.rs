//! Personal data inside free text: mainland phone numbers (mobiles, landlines with their
//! area code, a bare 7–8 digit local number right after a word such as 电话), 18-digit
//! resident ID numbers (the last may be X) and e-mail addresses are found and masked with
//! `*`, so a description can be shown to people who may not see who reported it.
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
    found.sort_unstable();
    found
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

/// `text` with every phone number, ID number and e-mail address replaced by `*`s.
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
