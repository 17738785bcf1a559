//! Evaluation reports as files: XLSX (rust_xlsxwriter: one sheet per table, the trend
//! with a line chart), CSV (RFC 4180, UTF-8 with a BOM so spreadsheets read the Chinese)
//! and a print-ready HTML page (no script; its one `<style>` allowed by the answer's own
//! CSP; the trend as an SVG line).
//!
//! A report holds case numbers, categories, regions, departments and figures only: the
//! facts it is made from carry no report text, no contact and no title.

use super::{name_of, Table, Unit};
use crate::http::error::{ApiError, Problem};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cityos_core::evaluation::measures::{behind, CaseFacts, Kind};
use cityos_core::evaluation::{Figures, Measure, Period, Scheme};
use cityos_core::time::{format_local, Millis};
use cityos_engine::config::Config;

/// A file format of the exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    Csv,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, ApiError> {
        match s {
            "xlsx" => Ok(Format::Xlsx),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(ApiError::new(
                Problem::InvalidParameter,
                format!("format {other:?} is not xlsx, csv or html"),
            )),
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
            Format::Html => "html",
        }
    }
}

/// A cell: text or a number (None: nothing to judge).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Num(Option<f64>),
}

/// One table of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// A report: its tables and its trend.
#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    pub period: String,
    pub generated_at: Millis,
    pub scheme: String,
    pub sections: Vec<Section>,
    /// Whose trend: a unit's name.
    pub trend_of: String,
    /// (period, score, figures), oldest first.
    pub trend: Vec<(String, Option<f64>, Figures)>,
}

/// A measure's value as shown: rates in percent, hours and counts as they are.
pub fn shown(m: Measure, v: Option<f64>) -> Option<f64> {
    v.map(|x| match m.kind() {
        Kind::Rate => (x * 1000.0).round() / 10.0,
        _ => (x * 10.0).round() / 10.0,
    })
}

/// A measure's column header.
pub fn header(m: Measure) -> String {
    match m.kind() {
        Kind::Rate => format!("{}(%)", m.name_zh()),
        Kind::MeanHours | Kind::P90Hours => format!("{}(工时)", m.name_zh()),
        Kind::Count => m.name_zh().to_string(),
    }
}

fn definitions() -> Section {
    Section {
        title: "指标定义".into(),
        header: vec![
            "指标".into(),
            "代码".into(),
            "定义".into(),
            "Definition".into(),
        ],
        rows: Measure::ALL
            .iter()
            .map(|m| {
                vec![
                    Cell::Text(m.name_zh().into()),
                    Cell::Text(m.code().into()),
                    Cell::Text(m.definition_zh().into()),
                    Cell::Text(m.definition_en().into()),
                ]
            })
            .collect(),
    }
}

fn trend_section(trend: &[(String, Option<f64>, Figures)], of: &str) -> Section {
    let ms = [
        Measure::Received,
        Measure::AckOnTime,
        Measure::HandleOnTime,
        Measure::CloseOnTime,
        Measure::Satisfaction,
        Measure::OverdueNow,
    ];
    let mut header = vec!["周期".to_string(), "得分".to_string()];
    header.extend(ms.iter().map(|m| self::header(*m)));
    Section {
        title: format!("趋势：{of}"),
        header,
        rows: trend
            .iter()
            .map(|(p, s, f)| {
                let mut r = vec![Cell::Text(p.clone()), Cell::Num(*s)];
                r.extend(ms.iter().map(|m| Cell::Num(shown(*m, f.get(*m).value))));
                r
            })
            .collect(),
    }
}

/// The report of a dimension's ranking.
pub fn table_report(
    scheme: &Scheme,
    per: &Period,
    t: &Table,
    trend_of: &str,
    trend: Vec<(String, Option<f64>, Figures)>,
    now: Millis,
) -> Report {
    let mut header: Vec<String> = ["排名", "类别", "代码", "单位", "得分", "榜单"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for m in Measure::ALL {
        header.push(self::header(*m));
        if matches!(m.kind(), Kind::Rate) {
            header.push(format!("{}样本", m.name_zh()));
        }
    }
    let rows = t
        .rows
        .iter()
        .map(|r| {
            let mut v = vec![
                Cell::Num(r.ranked.rank.map(|x| x as f64)),
                Cell::Text(r.ranked.class.clone()),
                Cell::Text(r.code.clone()),
                Cell::Text(r.name.clone()),
                Cell::Num(r.score.score),
                Cell::Text(
                    match r.ranked.list {
                        "red" => "红榜",
                        "black" => "黑榜",
                        _ => "",
                    }
                    .into(),
                ),
            ];
            for m in Measure::ALL {
                let x = r.figures.get(*m);
                v.push(Cell::Num(shown(*m, x.value)));
                if matches!(m.kind(), Kind::Rate) {
                    v.push(Cell::Num(Some(x.samples as f64)));
                }
            }
            v
        })
        .collect();
    let trend_s = trend_section(&trend, trend_of);
    Report {
        title: format!("{} · {}排名 · {per}", scheme.name, t.dim.name_zh()),
        period: per.to_string(),
        generated_at: now,
        scheme: scheme.name.clone(),
        sections: vec![
            Section {
                title: format!("{}排名", t.dim.name_zh()),
                header,
                rows,
            },
            trend_s,
            definitions(),
        ],
        trend_of: trend_of.to_string(),
        trend,
    }
}

/// The report of one unit: the score explained line by line, every case behind it.
pub fn unit_report(
    cfg: &Config,
    scheme: &Scheme,
    per: &Period,
    facts: &[CaseFacts],
    u: &Unit,
    trend: Vec<(String, Option<f64>, Figures)>,
    now: Millis,
) -> Report {
    let district = cfg.territory.region(cfg.territory.root()).code.clone();
    let figs = cityos_core::evaluation::measures::figures(facts, u.dim, &district)
        .remove(&u.code)
        .unwrap_or_default();
    let score = scheme.score(&figs);
    let name = name_of(cfg, u.dim, &u.code);
    let lines = Section {
        title: format!(
            "得分说明：{}",
            score.score.map_or("—".to_string(), |s| format!("{s:.2}"))
        ),
        header: [
            "指标",
            "计分方式",
            "数值",
            "分子",
            "样本",
            "权重/扣分",
            "得分",
            "说明",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows: score
            .lines
            .iter()
            .map(|l| {
                vec![
                    Cell::Text(l.measure.name_zh().into()),
                    Cell::Text(
                        if l.kind == "weight" {
                            "权重"
                        } else {
                            "扣分"
                        }
                        .into(),
                    ),
                    Cell::Num(shown(l.measure, l.value)),
                    Cell::Num(Some(l.numerator)),
                    Cell::Num(Some(l.samples as f64)),
                    Cell::Num(Some(l.factor)),
                    Cell::Num(Some(l.points)),
                    Cell::Text(l.note.clone()),
                ]
            })
            .collect(),
    };
    let all = Section {
        title: "全部指标".into(),
        header: vec!["指标".into(), "数值".into(), "分子".into(), "样本".into()],
        rows: Measure::ALL
            .iter()
            .map(|m| {
                let v = figs.get(*m);
                vec![
                    Cell::Text(header(*m)),
                    Cell::Num(shown(*m, v.value)),
                    Cell::Num(Some(v.numerator)),
                    Cell::Num(Some(v.samples as f64)),
                ]
            })
            .collect(),
    };
    let mut cases = Vec::new();
    for m in Measure::ALL {
        for (c, v) in behind(facts, u.dim, &district, &u.code, *m) {
            // An exported report names no case of a restricted category (counted above).
            if cfg
                .taxonomy
                .category(&c.category)
                .is_some_and(|x| x.restricted)
            {
                continue;
            }
            cases.push(vec![
                Cell::Text(m.name_zh().into()),
                Cell::Text(c.number.clone()),
                Cell::Num(Some(v)),
                Cell::Text(c.category.clone()),
                Cell::Text(c.state.name_zh().into()),
                Cell::Text(format_local(c.created_at)),
            ]);
        }
    }
    let cases = Section {
        title: "案件明细（每个指标背后的案件；比率类 1 = 计为是，0 = 计为否）".into(),
        header: ["指标", "案件编号", "计入", "类别", "状态", "受理时间"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows: cases,
    };
    let trend_s = trend_section(&trend, &name);
    Report {
        title: format!("{} · {name} · {per}", scheme.name),
        period: per.to_string(),
        generated_at: now,
        scheme: scheme.name.clone(),
        sections: vec![lines, all, trend_s, cases, definitions()],
        trend_of: name,
        trend,
    }
}

fn num_text(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{}", x as i64),
        Some(x) => format!("{x}"),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV: the title, then each section (its title, header and rows) after a blank line.
pub fn csv(r: &Report) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(&csv_field(&r.title));
    out.push_str("\r\n");
    out.push_str(&format!("生成时间,{}\r\n", format_local(r.generated_at)));
    for s in &r.sections {
        out.push_str("\r\n");
        out.push_str(&csv_field(&s.title));
        out.push_str("\r\n");
        out.push_str(
            &s.header
                .iter()
                .map(|h| csv_field(h))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
        for row in &s.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c {
                    Cell::Text(t) => csv_field(t),
                    Cell::Num(v) => num_text(*v),
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// XLSX: one sheet per section; the trend sheet carries a line chart of the score.
pub fn xlsx(r: &Report) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Chart, ChartType, Format as XFormat, Workbook};
    let mut wb = Workbook::new();
    let bold = XFormat::new().set_bold();
    for (i, s) in r.sections.iter().enumerate() {
        let name = format!("{}{}", i + 1, sheet_name(&s.title));
        let ws = wb.add_worksheet();
        ws.set_name(&name)?;
        ws.write_string_with_format(0, 0, &s.title, &bold)?;
        for (c, h) in s.header.iter().enumerate() {
            ws.write_string_with_format(1, c as u16, h, &bold)?;
            ws.set_column_width(c as u16, 14)?;
        }
        for (ri, row) in s.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (y, x) = (ri as u32 + 2, c as u16);
                match cell {
                    Cell::Text(t) => {
                        ws.write_string(y, x, t)?;
                    }
                    Cell::Num(Some(v)) => {
                        ws.write_number(y, x, *v)?;
                    }
                    Cell::Num(None) => {}
                }
            }
        }
        if s.title.starts_with("趋势") && !s.rows.is_empty() {
            let last = s.rows.len() as u32 + 1;
            let mut chart = Chart::new(ChartType::Line);
            chart.title().set_name(&s.title);
            chart
                .add_series()
                .set_name("得分")
                .set_categories((name.as_str(), 2, 0, last, 0))
                .set_values((name.as_str(), 2, 1, last, 1));
            chart
                .add_series()
                .set_name("按期处置率(%)")
                .set_categories((name.as_str(), 2, 0, last, 0))
                .set_values((name.as_str(), 2, 4, last, 4));
            ws.insert_chart(last + 2, 0, &chart)?;
        }
    }
    wb.save_to_buffer()
}

/// A sheet name: at most 28 characters, none of `[]:*?/\`.
fn sheet_name(t: &str) -> String {
    t.chars()
        .filter(|c| !"[]:*?/\\：（）".contains(*c))
        .take(20)
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PRINT_CSS: &str = "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:2em;color:#111}h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}table{border-collapse:collapse;font-size:.8em;margin-bottom:1em}th,td{border:1px solid #777;padding:2px 6px;text-align:right}th{background:#eee}td.t{text-align:left}p.meta{color:#444}@media print{body{margin:0}h2{break-after:avoid}table{break-inside:auto}tr{break-inside:avoid}}";

/// The print-ready page.
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>");
    o.push_str(&esc(&r.title));
    o.push_str("</title><style>");
    o.push_str(PRINT_CSS);
    o.push_str("</style></head><body><main>\n<h1>");
    o.push_str(&esc(&r.title));
    o.push_str(&format!(
        "</h1>\n<p class=\"meta\">考核办法：{} · 周期：{} · 生成：{}</p>\n",
        esc(&r.scheme),
        esc(&r.period),
        format_local(r.generated_at)
    ));
    o.push_str(&format!("<h2>趋势：{}</h2>\n", esc(&r.trend_of)));
    o.push_str(&trend_svg(&r.trend));
    for s in &r.sections {
        o.push_str(&format!("<h2>{}</h2>\n<table><thead><tr>", esc(&s.title)));
        for h in &s.header {
            o.push_str(&format!("<th scope=\"col\">{}</th>", esc(h)));
        }
        o.push_str("</tr></thead><tbody>\n");
        for row in &s.rows {
            o.push_str("<tr>");
            for c in row {
                match c {
                    Cell::Text(t) => o.push_str(&format!("<td class=\"t\">{}</td>", esc(t))),
                    Cell::Num(v) => o.push_str(&format!("<td>{}</td>", num_text(*v))),
                }
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</tbody></table>\n");
    }
    o.push_str("</main></body></html>\n");
    o
}

/// The score over the periods as an SVG line (0–100).
fn trend_svg(trend: &[(String, Option<f64>, Figures)]) -> String {
    let (w, h, pad) = (560.0, 160.0, 30.0);
    let n = trend.len().max(2) as f64 - 1.0;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / n;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v.clamp(0.0, 100.0) / 100.0;
    let pts: Vec<String> = trend
        .iter()
        .enumerate()
        .filter_map(|(i, (_, s, _))| s.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect();
    let mut o = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"得分趋势\">");
    o.push_str(&format!(
        "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#777\"/>",
        h - pad,
        w - pad,
        h - pad
    ));
    o.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1a56b0\" stroke-width=\"2\" points=\"{}\"/>",
        pts.join(" ")
    ));
    for (i, (p, s, _)) in trend.iter().enumerate() {
        o.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            x(i),
            h - 8.0,
            esc(p)
        ));
        if let Some(v) = s {
            o.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{v:.1}</text>",
                x(i),
                y(*v) - 6.0
            ));
        }
    }
    o.push_str("</svg>\n");
    o
}

/// A file answer.
pub fn file(bytes: Vec<u8>, format: Format, name: &str) -> Response {
    let mut r = (super::api::headers_of(format, name), bytes).into_response();
    if format == Format::Html {
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
            ),
        );
    }
    r
}

/// Renders a report in a format and answers it.
pub fn respond(r: &Report, format: Format, name: &str) -> Result<Response, ApiError> {
    Ok(match format {
        Format::Xlsx => file(xlsx(r).map_err(ApiError::internal)?, format, name),
        Format::Csv => file(csv(r).into_bytes(), format, name),
        Format::Html => file(html(r).into_bytes(), format, name),
    })
}
