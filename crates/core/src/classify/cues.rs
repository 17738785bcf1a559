//! Urgency cues (issue 14, item 4): district-editable words (煤气味, 困在电梯, 老人摔倒 …)
//! that raise a report's priority and, for the worst, let it skip the 待分拨 triage queue.
//!
//! Texts arrive in simplified or traditional characters; both are folded to simplified
//! with a small table ([`to_simplified`], covering the cue words' characters and the
//! negations) before matching. A cue right after a negation in the same clause
//! (「没有煤气味」, 「沒有聞到煤氣味」, 「不是着火」) does not count.

use super::normalise;
use crate::Priority;

/// One cue of the district's list.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Any of these words (simplified) in the text fires the cue.
    pub words: Vec<String>,
    /// The priority a report with the cue gets at least (high or urgent).
    pub priority: Priority,
    /// Route on the model's (or the hint's) category even below the threshold.
    pub skip_triage: bool,
    /// The category the cue points to, when the words say it plainly.
    pub category: Option<String>,
}

/// A cue found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Index into the cue list.
    pub cue: usize,
    /// The cue word that matched (simplified).
    pub word: String,
}

/// Traditional → simplified, for the characters of the cue words, the negations and a few
/// common ones around them. A character not listed stays as it is.
const TRAD_SIMP: &[(char, char)] = &[
    ('氣', '气'),
    ('電', '电'),
    ('災', '灾'),
    ('煙', '烟'),
    ('樓', '楼'),
    ('斷', '断'),
    ('觸', '触'),
    ('暈', '晕'),
    ('關', '关'),
    ('聞', '闻'),
    ('險', '险'),
    ('濃', '浓'),
    ('積', '积'),
    ('沒', '没'),
    ('無', '无'),
    ('洩', '泄'),
    ('著', '着'),
    ('墜', '坠'),
    ('線', '线'),
    ('傷', '伤'),
    ('門', '门'),
    ('裡', '里'),
    ('裏', '里'),
    ('牆', '墙'),
    ('體', '体'),
    ('車', '车'),
    ('場', '场'),
    ('開', '开'),
    ('發', '发'),
    ('現', '现'),
    ('請', '请'),
    ('處', '处'),
    ('這', '这'),
    ('們', '们'),
    ('時', '时'),
    ('個', '个'),
    ('報', '报'),
    ('爐', '炉'),
    ('燈', '灯'),
    ('壓', '压'),
    ('塊', '块'),
    ('廈', '厦'),
    ('倉', '仓'),
    ('廠', '厂'),
    ('滅', '灭'),
    ('喪', '丧'),
    ('應', '应'),
    ('剛', '刚'),
    ('嚴', '严'),
    ('陽', '阳'),
    ('臺', '台'),
    ('內', '内'),
    ('頭', '头'),
    ('腦', '脑'),
    ('廚', '厨'),
    ('鍋', '锅'),
    ('燒', '烧'),
    ('搶', '抢'),
    ('緊', '紧'),
    ('護', '护'),
    ('醫', '医'),
    ('鄰', '邻'),
    ('並', '并'),
    ('還', '还'),
    ('聽', '听'),
    ('說', '说'),
    ('見', '见'),
    ('從', '从'),
    ('歲', '岁'),
    ('兒', '儿'),
    ('動', '动'),
    ('東', '东'),
    ('區', '区'),
    ('號', '号'),
    ('層', '层'),
    ('單', '单'),
    ('側', '侧'),
];

fn simplified(c: char) -> char {
    // The table is small; a linear scan costs less than building a map per call.
    TRAD_SIMP
        .iter()
        .find(|(t, _)| *t == c)
        .map_or(c, |(_, s)| *s)
}

/// The text normalised (full-width → half-width, whitespace folded) with traditional
/// characters of [`TRAD_SIMP`] folded to simplified.
pub fn to_simplified(text: &str) -> String {
    normalise(text).chars().map(simplified).collect()
}

/// Negations that cancel a cue when they come shortly before it in the same clause.
const NEGATIONS: [&str; 6] = ["没有", "没", "无", "不是", "并非", "未见"];

/// How many characters before a cue word a negation is looked for.
const NEGATION_REACH: usize = 4;

/// Characters that end a clause.
fn ends_clause(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | '!' | '?' | '，' | '。' | '；' | '！' | '？' | '、' | ' ' | '\n'
    )
}

/// Is the word at `at` (chars) negated by a negation in the clause just before it?
fn negated(chars: &[char], at: usize) -> bool {
    let mut start = at;
    while start > 0 && at - start < NEGATION_REACH && !ends_clause(chars[start - 1]) {
        start -= 1;
    }
    let before: String = chars[start..at].iter().collect();
    NEGATIONS.iter().any(|n| before.contains(n))
}

/// The cues the text fires, each once, in the order of the list, with the word that fired
/// it (its first un-negated occurrence).
pub fn find(cues: &[Cue], text: &str) -> Vec<Hit> {
    let chars: Vec<char> = to_simplified(text).chars().collect();
    let mut out = Vec::new();
    for (i, cue) in cues.iter().enumerate() {
        'words: for w in &cue.words {
            let wc: Vec<char> = w.chars().map(simplified).collect();
            if wc.is_empty() || wc.len() > chars.len() {
                continue;
            }
            for at in 0..=chars.len() - wc.len() {
                if chars[at..at + wc.len()] == wc[..] && !negated(&chars, at) {
                    out.push(Hit {
                        cue: i,
                        word: w.clone(),
                    });
                    break 'words;
                }
            }
        }
    }
    out
}
