//! The web UI: pages and their assets, embedded in the binary (no build step, no
//! third-party code), served at `/ui/…`; and the one endpoint the command centre needs
//! beyond the API, `GET /api/v1/map` (open cases aggregated per region, plus the most
//! urgent as markers), so the page never receives every case.

use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use cityos_core::case::State as CaseState;
use cityos_core::Level;
use cityos_engine::query::{CaseQuery, Page, Sort};
use cityos_engine::store::FigureSample;
use cityos_engine::{CaseStore, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

/// (file name, content type, bytes) of every embedded file.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "login.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/login.html"),
    ),
    (
        "centre.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/centre.html"),
    ),
    (
        "cases.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/cases.html"),
    ),
    (
        "case.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/case.html"),
    ),
    (
        "vitals.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/vitals.html"),
    ),
    (
        "inspector.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/inspector.html"),
    ),
    (
        "scenarios.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/scenarios.html"),
    ),
    (
        "lifecircle.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/lifecircle.html"),
    ),
    (
        "catalogue.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/catalogue.html"),
    ),
    (
        "catalogue.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/catalogue.js"),
    ),
    (
        "triage.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/triage.html"),
    ),
    (
        "triage.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/triage.js"),
    ),
    (
        "evaluation.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/evaluation.html"),
    ),
    (
        "evaluation.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/evaluation.js"),
    ),
    (
        "citizen.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/citizen.html"),
    ),
    (
        "meals.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/meals.html"),
    ),
    (
        "canteen.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/canteen.html"),
    ),
    (
        "meals.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/meals.js"),
    ),
    (
        "canteen.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/canteen.js"),
    ),
    (
        "meals.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/meals.css"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/login.js"),
    ),
    (
        "map.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/map.js"),
    ),
    (
        "centre.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/centre.js"),
    ),
    (
        "cases.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/cases.js"),
    ),
    (
        "case.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/case.js"),
    ),
    (
        "vitals.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/vitals.js"),
    ),
    (
        "inspector.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/inspector.js"),
    ),
    (
        "scenarios.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/scenarios.js"),
    ),
    (
        "lifecircle.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/lifecircle.js"),
    ),
    (
        "assistance.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/assistance.html"),
    ),
    (
        "assistance.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/assistance.js"),
    ),
    (
        "assistcounts.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/assistcounts.html"),
    ),
    (
        "assistcounts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/assistcounts.js"),
    ),
    (
        "citizen.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/citizen.js"),
    ),
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/sw.js"),
    ),
];

/// `GET /` — to the sign-in page.
pub async fn root() -> Redirect {
    Redirect::temporary("/ui/login.html")
}

/// A deployment's own tile server for a raster base layer under the maps (off by
/// default: nothing is fetched from outside unless configured): an `http(s)://` URL
/// template with `{z}`, `{x}` and `{y}` (Web Mercator, 256-px tiles) and the attribution
/// text the maps show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiles {
    pub url: String,
    pub attribution: String,
    /// `scheme://host[:port]` of the template, the one origin the pages' CSP adds.
    pub origin: String,
}

impl Tiles {
    /// Checks a URL template: http or https, a host, `{z}`, `{x}` and `{y}` each once in
    /// the path, no quote, space or semicolon (it goes into a CSP header).
    pub fn new(url: &str, attribution: Option<&str>) -> Result<Tiles, String> {
        let url = url.trim();
        let bad = |why: &str| Err(format!("tile URL {url:?}: {why}"));
        let Some(rest) = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return bad("must start with http:// or https://");
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return bad("names no valid host");
        }
        for key in ["{z}", "{x}", "{y}"] {
            if path.matches(key).count() != 1 {
                return bad(&format!("must hold {key} once in its path"));
            }
        }
        if url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | ';' | ','))
        {
            return bad("may not hold spaces, quotes, commas or semicolons");
        }
        let attribution = attribution.map(str::trim).unwrap_or("").to_string();
        if attribution.chars().count() > 200 || attribution.chars().any(char::is_control) {
            return Err("the tile attribution must be one line of at most 200 characters".into());
        }
        Ok(Tiles {
            origin: format!("{}{host}", &url[..url.len() - rest.len()]),
            url: url.to_string(),
            attribution,
        })
    }
}

/// The pages' Content-Security-Policy: everything from this origin only, images also
/// from the configured tile server's origin.
pub fn csp(tiles: Option<&Tiles>) -> String {
    let extra = tiles.map(|t| format!(" {}", t.origin)).unwrap_or_default();
    format!("default-src 'self'; img-src 'self' data: blob:{extra}; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
}

/// `GET /ui/{file}` — an embedded page or asset.
pub async fn file(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    page(&st, &name, None)
}

/// An embedded page or asset; with `island` (a page's data for the one signed-in caller
/// it was rendered for) that data goes into the page as `<script type="application/json"
/// id="{id}">` before its first script, and the answer is `Cache-Control: private,
/// no-store` so that no cache keeps it.
pub fn page(st: &AppState, name: &str, island: Option<(&str, &Value)>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => {
            let mut body = dev_override(name).unwrap_or_else(|| body.to_string());
            let cache = match island {
                Some((id, data)) => {
                    let at = body.find("<script").unwrap_or(body.len());
                    body.insert_str(at, &json_island(id, data));
                    "private, no-store"
                }
                None => "no-cache",
            };
            (
                [
                    (header::CONTENT_TYPE, ct.to_string()),
                    (header::CACHE_CONTROL, cache.to_string()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                    (header::CONTENT_SECURITY_POLICY, csp(st.0.tiles.get())),
                ],
                body,
            )
                .into_response()
        }
        None => ApiError::not_found(&format!("page {name:?}")).into_response(),
    }
}

/// `<script type="application/json" id="{id}">…</script>\n` holding `data`, escaped so
/// that nothing in it can end the element or start markup: `<`, `>` and `&` become JSON's
/// `\u003c`, `\u003e`, `\u0026` (they occur only inside strings), and U+2028/U+2029 are
/// escaped too. `JSON.parse` of the element's text gives `data` back unchanged.
pub fn json_island(id: &str, data: &Value) -> String {
    let mut s = String::new();
    for c in data.to_string().chars() {
        match c {
            '<' => s.push_str("\\u003c"),
            '>' => s.push_str("\\u003e"),
            '&' => s.push_str("\\u0026"),
            '\u{2028}' => s.push_str("\\u2028"),
            '\u{2029}' => s.push_str("\\u2029"),
            c => s.push(c),
        }
    }
    format!("<script type=\"application/json\" id=\"{id}\">{s}</script>\n")
}

/// In debug builds only, `CITYOS_UI_DIR` serves the listed files from that directory
/// instead of the embedded copies (editing the UI without relinking); release builds
/// always serve what was compiled in.
fn dev_override(name: &str) -> Option<String> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let dir = std::env::var_os("CITYOS_UI_DIR")?;
    std::fs::read_to_string(std::path::Path::new(&dir).join(name)).ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapParams {
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    markers: Option<usize>,
}

/// `GET /api/v1/map?level=&region=&markers=` — open cases in the caller's scope counted
/// per sub-district, community or grid (aggregated in the store), and the most urgent
/// ones (by deadline, at most `markers`, default 300) as markers.
pub async fn map(
    State(st): State<AppState>,
    crate::Q(p): crate::Q<MapParams>,
    SignedIn(who): SignedIn,
) -> Result<Response, ApiError> {
    let level = match p.level.as_deref().unwrap_or("subdistrict") {
        "subdistrict" => cityos_core::Level::Subdistrict,
        "community" => cityos_core::Level::Community,
        "grid" => cityos_core::Level::Grid,
        other => {
            return Err(ApiError::new(
                Problem::InvalidParameter,
                format!("level {other:?} is not subdistrict, community or grid"),
            ))
        }
    };
    if let Some(r) = &p.region {
        if st.0.cfg.territory.by_code(r).is_none() {
            return Err(ApiError::new(
                Problem::InvalidParameter,
                format!("unknown region {r:?}"),
            ));
        }
    }
    let now = st.now();
    let mut q = CaseQuery {
        states: CaseState::ALL.into_iter().filter(|s| s.is_open()).collect(),
        region: p.region.clone(),
        now,
        sort: Sort::Deadline,
        limit: p.markers.unwrap_or(300).min(1000),
        ..Default::default()
    };
    if !crate::cases::scope_query(&st, &who, &mut q) {
        return Err(ApiError::forbidden("nothing is visible to this account"));
    }
    crate::cases::set_region_level(&st, &mut q);
    // Today's closures and escalations, for accounts that see the whole district.
    let whole = q.region.is_none() && q.department.is_none();
    let midnight = cityos_core::time::local_date(now).local_midnight();
    let (counts, page, actions) =
        st.0.reads
            .run(move |s| map_data(s, &q, level, whole.then_some((midnight, now))))
            .await??;
    let counted = |a: &[(String, i64)], minus: &[(String, i64)]| {
        let n = |k: &str| {
            let of = |v: &[(String, i64)]| v.iter().find(|x| x.0 == k).map_or(0, |x| x.1);
            of(a) - of(minus)
        };
        json!({"reported": n("report"), "closed": n("close"), "escalations": n("escalate"), "dispatched": n("dispatch")})
    };
    let (today, yesterday) = match &actions {
        Some((today, y_since, y_after, sample)) => {
            let mut y = counted(y_since, y_after);
            // The standing figures at this time yesterday, from the sample taken then
            // (null when none was taken within FIGURES_WITHIN of it).
            y["open"] = json!(sample.map(|s| s.open));
            y["overdue"] = json!(sample.map(|s| s.overdue));
            y["on_time_rate"] = json!(sample
                .filter(|s| s.handled > 0)
                .map(|s| s.on_time as f64 / s.handled as f64));
            (Some(counted(today, &[])), Some(y))
        }
        None => (None, None),
    };
    let total: i64 = counts.iter().map(|c| c.1).sum();
    let counts: serde_json::Map<String, Value> =
        counts.into_iter().map(|(k, n)| (k, json!(n))).collect();
    let markers: Vec<Value> = page
        .cases
        .iter()
        .map(|c| {
            let v = crate::cases::wire::case_view_for(c, &st.0.cfg, now, Some(who.role));
            json!({"id": v.id, "number": v.number, "title": v.title, "category_name": v.category_name,
                   "priority": v.priority, "state": v.state, "state_name": v.state_name,
                   "lon": v.lon, "lat": v.lat, "overdue": v.overdue, "due": v.due})
        })
        .collect();
    Ok(Json(json!({"level": level.as_str(), "open": total, "counts": counts, "markers": markers, "today": today, "yesterday": yesterday}))
        .into_response())
}

/// Actions by kind: (since midnight, since yesterday's midnight, since this time
/// yesterday), and the figures sampled at this time yesterday.
type ActionCounts = (
    Vec<(String, i64)>,
    Vec<(String, i64)>,
    Vec<(String, i64)>,
    Option<FigureSample>,
);

/// The headline figures are sampled once per bucket of this length.
pub const FIGURES_EVERY: i64 = 5 * cityos_core::time::MINUTE;
/// Yesterday's figures are those of the newest sample no older than this before the
/// same time yesterday.
pub const FIGURES_WITHIN: i64 = 15 * cityos_core::time::MINUTE;

/// Samples the centre's standing figures (whole district: open cases, those marked
/// overdue, handled and handled on time) once per `FIGURES_EVERY` bucket, so the map
/// can tell yesterday's at this time. Called by the alerts ticker; a bucket already
/// sampled is left alone. Answers whether a sample was taken.
pub async fn sample_figures(st: &AppState) -> Result<bool, ApiError> {
    let now = st.now();
    let bucket = now - now.rem_euclid(FIGURES_EVERY);
    Ok(st
        .0
        .reads
        .run(move |s| -> Result<bool, StoreError> {
            if s.figures_at(now, bucket - 1)?
                .is_some_and(|f| f.bucket == bucket)
            {
                return Ok(false);
            }
            let q = CaseQuery {
                now,
                ..Default::default()
            };
            let stats = s.stats(&q, now)?;
            let open = stats
                .by_state
                .iter()
                .filter(|(k, _)| {
                    CaseState::ALL
                        .into_iter()
                        .any(|c| c.is_open() && c.as_str() == k)
                })
                .map(|(_, n)| n)
                .sum();
            s.record_figures(&FigureSample {
                bucket,
                at: now,
                open,
                overdue: stats.overdue,
                handled: stats.handled,
                on_time: stats.handled_on_time,
            })?;
            Ok(true)
        })
        .await??)
}

/// Open cases per region, the most urgent page, and the actions by kind.
type MapData = (Vec<(String, i64)>, Page, Option<ActionCounts>);

/// What the map shows: open cases per region at `level`, the most urgent page of them,
/// and, when `since` = (midnight, now) is given, the actions by kind since midnight and
/// the counts to tell yesterday's up to this time of day.
fn map_data(
    s: &mut dyn CaseStore,
    q: &CaseQuery,
    level: Level,
    since: Option<(i64, i64)>,
) -> Result<MapData, StoreError> {
    // Today's actions; and yesterday's up to this time of day (those since yesterday's
    // midnight less those since this time yesterday).
    let actions = match since {
        Some((midnight, now)) => Some((
            s.actions_since(midnight)?,
            s.actions_since(midnight - cityos_core::time::DAY)?,
            s.actions_since(now - cityos_core::time::DAY)?,
            s.figures_at(
                now - cityos_core::time::DAY,
                now - cityos_core::time::DAY - FIGURES_WITHIN,
            )?,
        )),
        None => None,
    };
    Ok((s.counts_by_region(q, level)?, s.list_cases(q)?, actions))
}

/// `GET /ui/places.json` — the territory's named places for the maps and the place search
/// (public: names and points only): sub-districts and communities at their
/// representative points, landmarks (metro stations flagged `metro`, and named points of
/// interest from OpenStreetMap) and roads, from the district's gazetteer.
pub async fn places(State(st): State<AppState>) -> Response {
    let body = {
        let t = &st.0.cfg.territory;
        let list: Vec<Value> =
            st.0.cfg
                .intake
                .gazetteer
                .places
                .iter()
                .filter_map(|p| {
                    let [lon, lat] = p.pos?;
                    let name_en = match p.kind {
                        cityos_core::classify::place::PlaceKind::Subdistrict
                        | cityos_core::classify::place::PlaceKind::Community => p
                            .region
                            .as_deref()
                            .and_then(|c| t.by_code(c))
                            .and_then(|id| t.region(id).name_en.clone()),
                        _ => None,
                    };
                    let mut v = json!({"name": p.name, "kind": p.kind.as_str(),
                    "lon": (lon * 1e6).round() / 1e6, "lat": (lat * 1e6).round() / 1e6});
                    if let Some(r) = &p.region {
                        v["region"] = json!(r);
                    }
                    if let Some(e) = name_en {
                        v["name_en"] = json!(e);
                    }
                    if p.name.ends_with("地铁站") {
                        v["metro"] = json!(true);
                    }
                    Some(v)
                })
                .collect();
        // The optional tile base layer (null unless the deployment configured one).
        let tiles =
            st.0.tiles
                .get()
                .map(|t| json!({"url": t.url, "attribution": t.attribution}));
        json!({"places": list, "credit": "© OpenStreetMap contributors (ODbL 1.0)", "tiles": tiles})
            .to_string()
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/v1/cases/{id}/routing` — for the dispatch form (officers): what routing would
/// choose now and why (lead first, each with its line, level and reason); the department
/// that returned the case (退单), if it did; the suggestion — routing's choice, except
/// that a department that returned the case is replaced by the next candidate of its line
/// (the same line one level up); and every department serving the case's place, to pick
/// from (lead + joint, 联勤联动).
pub async fn routing(
    State(st): State<AppState>,
    Path(id): Path<String>,
    SignedIn(who): SignedIn,
) -> Result<Response, ApiError> {
    use cityos_core::Role;
    if !matches!(
        who.role,
        Role::DistrictOfficer | Role::SubdistrictOfficer | Role::Admin
    ) {
        return Err(ApiError::forbidden(
            "only duty officers dispatch, so only they see routing's choice",
        ));
    }
    let c = crate::cases::find_case(&st, &id)
        .await?
        .filter(|c| crate::cases::can_see(&st, &who, c))
        .ok_or_else(|| ApiError::not_found(&format!("case {id:?}")))?;
    let tax = &st.0.cfg.taxonomy;
    let mut cat = tax
        .category(&c.category)
        .ok_or_else(|| ApiError::not_found(&format!("category {:?}", c.category)))?
        .clone();
    if let Some(p) = &c.playbook {
        cat.lead = p.lead.clone();
        cat.assist = p.joint.clone();
    }
    let dept = |code: &str| {
        tax.department(code).map(|d| {
            json!({"department": d.code, "name_zh": d.name_zh, "name_en": d.name_en,
                   "line": d.line, "level": d.level.as_str()})
        })
    };
    let routed = cityos_core::routing::route(tax, &cat, &c.regions);
    let (routing, problem) = match &routed {
        Ok(a) => (
            a.iter()
                .filter_map(|x| {
                    let mut v = dept(&x.department)?;
                    v["lead"] = json!(x.lead);
                    v["reason"] = json!(x.reason);
                    Some(v)
                })
                .collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    // Who returned it: the last dispatch's lead, when the case stands returned.
    let returned: Vec<String> = if c.state == CaseState::Returned {
        c.route
            .iter()
            .filter(|a| a.lead)
            .map(|a| a.department.clone())
            .collect()
    } else {
        Vec::new()
    };
    // The next candidate for a department that returned the case: its line, a level up.
    let chain = [
        c.regions.community.as_deref(),
        c.regions.subdistrict.as_deref(),
        c.regions.district.as_deref(),
    ];
    let next_up = |code: &str| -> Option<String> {
        let d = tax.department(code)?;
        let mut level = d.level.up();
        while let Some(l) = level {
            let region = match l {
                Level::District => chain[2],
                Level::Subdistrict => chain[1],
                Level::Community => chain[0],
                Level::Grid => None,
            };
            if let Some(n) = region.and_then(|r| tax.department_for(&d.line, r)) {
                if !returned.contains(&n.code) {
                    return Some(n.code.clone());
                }
            }
            level = l.up();
        }
        None
    };
    let mut suggested: Vec<Value> = Vec::new();
    for a in routed.as_deref().unwrap_or(&[]) {
        let (code, why) = if returned.contains(&a.department) {
            match next_up(&a.department) {
                Some(n) => (n, "next_up"),
                None => continue,
            }
        } else {
            (a.department.clone(), "routing")
        };
        if !suggested.iter().any(|s| s["department"] == code.as_str()) {
            suggested.push(
                json!({"department": code, "lead": a.lead && suggested.is_empty(), "why": why}),
            );
        }
    }
    if let Some(first) = suggested.first_mut() {
        first["lead"] = json!(true);
    }
    let choices: Vec<Value> = tax
        .departments
        .iter()
        .filter(|d| chain.iter().flatten().any(|r| *r == d.region))
        .filter_map(|d| dept(&d.code))
        .collect();
    Ok(Json(json!({"case": c.number, "state": c.state.as_str(), "routing": routing,
                   "problem": problem, "returned": returned, "suggested": suggested, "choices": choices}))
    .into_response())
}
