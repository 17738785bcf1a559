#!/usr/bin/env python3
"""Writes xuhui_residents_committees_en.csv: each residents' committee's English name in
pinyin, for the UI's English mode (issue 21). Run once by hand (needs PyPI `pypinyin`);
the output is committed and read by `cityos territory generate`, nothing runs at build
time. Polyphonic characters are fixed in OVERRIDES after reading the output by eye.

Rules: the committee suffix (居委会, 居民委员会) becomes " Community"; the rest is one
capitalised word of toneless pinyin (as the sub-districts are: "Tianpinglu Subdistrict"),
with an apostrophe before a syllable starting with a, o or e ("Kang'an"); a trailing
第N (第一、二) becomes " No. N" ("No. 1 & 2"); 、 between numbers becomes "-".
"""
import csv
import os
import re

from pypinyin import Style, lazy_pinyin

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "xuhui_residents_committees_2020.csv")
OUT = os.path.join(HERE, "xuhui_residents_committees_en.csv")

# Characters read differently in these names than pypinyin's default (checked by eye).
OVERRIDES = {
    "弄": "long",  # Shanghai lanes: 张家弄, 九弄 (lòng)
    "番禺": "panyu",
    "天钥": "tianyao",  # 天钥桥路 Tianyaoqiao Road
    "莘": "xin",  # 联莘 (as 莘庄 Xinzhuang)
    "乐": "le",  # 乐山, 康乐, 舒乐, 家乐
    "长": "chang",  # 长桥, 长春, 长虹 …
    "角": "jiao",  # 殷家角 (as 朱家角 Zhujiajiao)
    "浜": "bang",  # 肇嘉浜, 张家浜, 沙家浜
    "缝": "feng",
    "盛": "sheng",
    "强": "qiang",
    "华": "hua",
    "大": "da",
    "和": "he",
}
# Whole names with an established spelling.
NAMES = {
    "陕西居委会": "Shaanxi Community",  # 陕西南路 Shaanxi Road (not 山西 Shanxi)
}
NUMERALS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


def syllables(text):
    out = []
    i = 0
    while i < len(text):
        for n in (2, 1):
            part = text[i : i + n]
            if len(part) == n and part in OVERRIDES:
                out.extend(re.findall(r"[a-z]+?(?:ng|n|r)?(?=[^aeiouv]|$)", OVERRIDES[part]) if n > 1 else [OVERRIDES[part]])
                i += n
                break
        else:
            out.extend(lazy_pinyin(text[i], style=Style.NORMAL, v_to_u=True))
            i += 1
    return out


def word(text):
    """One capitalised word of pinyin; 、 becomes '-'."""
    pieces = []
    for chunk in text.split("、"):
        s = ""
        for syl in syllables(chunk):
            if s and syl[0] in "aoe":
                s += "'"
            s += syl
        pieces.append(s)
    w = "-".join(p for p in pieces if p)
    return w[:1].upper() + w[1:]


def number(zh):
    if zh == "十":
        return 10
    if zh.startswith("十"):
        return 10 + NUMERALS[zh[1]]
    if len(zh) == 2 and zh[1] == "十":
        return NUMERALS[zh[0]] * 10
    if len(zh) == 3 and zh[1] == "十":
        return NUMERALS[zh[0]] * 10 + NUMERALS[zh[2]]
    return NUMERALS[zh]


def english(name):
    if name in NAMES:
        return NAMES[name]
    stem = re.sub(r"(居委会|居民委员会)$", "", name)
    m = re.match(r"^(.+?)第([一二三四五六七八九十、]+)$", stem)
    if m:
        nums = " & ".join(str(number(n)) for n in m.group(2).split("、"))
        return f"{word(m.group(1))} No. {nums} Community"
    return f"{word(stem)} Community"


def main():
    with open(SOURCE, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(OUT, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["rc_code_12", "rc_name", "name_en"])
        for r in rows:
            w.writerow([r["rc_code_12"], r["rc_name"], english(r["rc_name"])])


if __name__ == "__main__":
    main()
