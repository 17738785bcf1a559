//! The event stream: `GET /api/v1/events/stream`, Server-Sent Events of committed case
//! changes in the caller's scope, resumable with `Last-Event-ID` (caught up from the
//! log, then live from the bus).

use super::ApiResult;
use crate::cases::scope_query;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{require, Caller};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use cityos_engine::query::CaseQuery;
use cityos_engine::store::CaseEvent;
use cityos_engine::{CaseStore, StoreError};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// For browsers' EventSource, which cannot send headers.
    access_token: Option<String>,
    last_event_id: Option<String>,
    /// Without a resume point: start this many events back (at most 500; those in the
    /// caller's scope are sent), so that a new page's live feed is not empty.
    recent: Option<u32>,
}

/// An event as the stream sends it; `full` = to a command centre (officers see notes as
/// written, everyone else with personal data masked).
fn event_json(e: &cityos_engine::store::CaseEvent, full: bool) -> String {
    let note = if full {
        std::borrow::Cow::Borrowed(e.note.as_str())
    } else {
        std::borrow::Cow::Owned(cityos_core::privacy::mask_personal(&e.note))
    };
    json!({
        "id": e.id, "kind": e.kind, "case_id": e.case_id, "number": e.number, "category": e.category,
        "priority": cityos_core::Priority::from_rank(e.priority as u8), "action": e.action, "from": e.from, "to": e.to,
        "at": cityos_core::time::format_rfc3339(e.at), "actor": e.actor, "note": note,
        "subdistrict": e.subdistrict, "community": e.community, "grid": e.grid, "department": e.department,
    })
    .to_string()
}

struct StreamState {
    st: AppState,
    /// The bus: case events (resumable, with ids) and vital-sign events (alerts, level
    /// changes: live only, without ids).
    rx: crate::bus::Subscription,
    backlog: std::collections::VecDeque<cityos_engine::store::CaseEvent>,
    last: i64,
    /// Whom the events are for.
    filter: Filter,
    /// The last page read from the log was full: there may be more after it.
    more: bool,
}

/// How far back (in events of the whole district, times the number asked for) `recent`
/// looks for the caller's own: a sub-district's last 50 among the district's last 12,800.
const RECENT_REACH: i64 = 256;

/// Events read from the log per page when a client catches up.
const STREAM_PAGE: usize = 1000;

impl StreamState {
    async fn refill(&mut self) -> bool {
        let (last, region, dept) = (
            self.last,
            self.filter.region.clone(),
            self.filter.department.clone(),
        );
        match self
            .st
            .0
            .reads
            .run(move |s| events_page(s, last, region.as_deref(), dept.as_deref()))
            .await
        {
            Ok(Ok(v)) => {
                self.more = v.len() >= STREAM_PAGE;
                self.backlog.extend(v);
                true
            }
            _ => false,
        }
    }
}

/// `GET /api/v1/events/stream`: Server-Sent Events of committed case changes in the
/// caller's scope, resumable with `Last-Event-ID` (header or `last_event_id`).
pub async fn events_stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    crate::Q(params): crate::Q<StreamParams>,
    caller: Caller,
) -> ApiResult {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let p = match &params.access_token {
        Some(t) => Some(st.0.key.verify(t, st.now())?),
        None => caller.maybe()?,
    };
    let p = require(p)?;
    if p.role == cityos_core::Role::System {
        // Machine tokens report; they never read the stream, whichever way the token came
        // (the machine guard sees the header and the cookie, not `access_token`).
        return Err(ApiError::forbidden(
            "a machine token may not read the event stream",
        ));
    }
    let mut q = CaseQuery::default();
    if !scope_query(&st, &p, &mut q) {
        return Err(ApiError::forbidden("nothing is visible to this account"));
    }
    // Both the header and the query parameter must be event ids when given (the header
    // wins when both are); anything else is a 400, not a silent restart.
    let event_id = |what: &str, s: &str| {
        s.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::new(
                    Problem::InvalidParameter,
                    format!("{what} {s:?} is not an event id"),
                )
            })
    };
    let from_header = match headers.get("last-event-id") {
        Some(v) => Some(event_id(
            "Last-Event-ID",
            v.to_str().map_err(|_| {
                ApiError::new(
                    Problem::InvalidParameter,
                    "Last-Event-ID is not an event id",
                )
            })?,
        )?),
        None => None,
    };
    let from_query = match &params.last_event_id {
        Some(s) => Some(event_id("last_event_id", s)?),
        None => None,
    };
    if params.recent.is_some_and(|n| n > 500) {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            "recent may be at most 500",
        ));
    }
    let resume = from_header.or(from_query);
    let t = &st.0.cfg.territory;
    let filter = Filter {
        root: t.region(t.root()).code.clone(),
        region: q.region,
        department: q.department,
        hidden: q.exclude_categories,
        full: p.role.is_officer(),
    };
    if st.0.bus.sequenced().is_some() {
        let recent = if resume.is_none() {
            params.recent.unwrap_or(0) as usize
        } else {
            0
        };
        return cluster_stream(
            ClusterStream {
                filter,
                rx: None,
                st: st.clone(),
                backlog: Default::default(),
                last: resume.map_or(0, |r| r as u64),
                more: resume.is_some(),
            },
            recent,
        )
        .await;
    }
    // Subscribe before reading the backlog, so that nothing falls between the two.
    let rx = st.0.bus.subscribe();
    let last = match resume {
        Some(id) => id,
        None => {
            let head =
                st.0.engine
                    .with(|e| e.last_event())
                    .map_err(ApiError::from)?;
            (head - i64::from(params.recent.unwrap_or(0))).max(0)
        }
    };
    let recent = params.recent.unwrap_or(0) as usize;
    let catch_up = resume.is_some() || recent > 0;
    let mut state = StreamState {
        st: st.clone(),
        rx,
        backlog: Default::default(),
        last,
        filter,
        more: false,
    };
    if resume.is_none() && recent > 0 {
        // The last `recent` events the caller may see — not those among the last
        // `recent` of the whole district: read forward from further back, keeping the
        // newest visible ones, then go on from there.
        let head = last + recent as i64;
        state.last = (head - recent as i64 * RECENT_REACH).max(0);
        let mut kept = std::collections::VecDeque::with_capacity(recent);
        loop {
            if !state.refill().await {
                return Err(ApiError::internal("cannot read the event backlog"));
            }
            while let Some(e) = state.backlog.pop_front() {
                state.last = state.last.max(e.id);
                if state.filter.visible(&e) {
                    if kept.len() == recent {
                        kept.pop_front();
                    }
                    kept.push_back(e);
                }
            }
            if !state.more {
                break;
            }
        }
        state.last = kept.front().map_or(state.last, |e: &CaseEvent| e.id - 1);
        state.backlog = kept;
    } else if catch_up && !state.refill().await {
        return Err(ApiError::internal("cannot read the event backlog"));
    }
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.backlog.pop_front() {
                if e.id <= s.last {
                    continue;
                }
                s.last = e.id;
                if !s.filter.visible(&e) {
                    continue;
                }
                let ev = Event::default()
                    .id(e.id.to_string())
                    .event(e.kind.clone())
                    .data(event_json(&e, s.filter.full));
                return Some((Ok::<_, std::convert::Infallible>(ev), s));
            }
            // Catching up: page through the log until it is read to the end, however far
            // behind the client was; only then go live (live events already sent are
            // skipped by id).
            if s.more {
                if !s.refill().await {
                    return None;
                }
                continue;
            }
            match s.rx.recv().await {
                Ok(crate::bus::BusEvent::Vital(v)) => {
                    if s.filter.vital_visible(&v) {
                        let ev = Event::default().event(v.kind).data(v.data.clone());
                        return Some((Ok(ev), s));
                    }
                }
                Ok(crate::bus::BusEvent::Case(e)) => {
                    if e.id > s.last && s.filter.visible(&e) {
                        s.last = e.id;
                        let ev = Event::default()
                            .id(e.id.to_string())
                            .event(e.kind.clone())
                            .data(event_json(&e, s.filter.full));
                        return Some((Ok(ev), s));
                    }
                }
                // Other rooms' events are not the stream's.
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow for the live channel: catch up from the log (missed vital
                    // events are not replayed: the indicators show the state).
                    if !s.refill().await {
                        return None;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// At most [`STREAM_PAGE`] events after `last` in a region and department.
fn events_page(
    s: &mut dyn CaseStore,
    last: i64,
    region: Option<&str>,
    department: Option<&str>,
) -> Result<Vec<CaseEvent>, StoreError> {
    s.events_after(last, STREAM_PAGE, region, department)
}

/// Whom a stream's events are for.
struct Filter {
    region: Option<String>,
    root: String,
    department: Option<String>,
    /// Restricted categories the caller may not see (`crate::cases::hidden_categories`).
    hidden: Vec<String>,
    /// Notes as written (command centres), or masked.
    full: bool,
}

impl Filter {
    fn visible(&self, e: &CaseEvent) -> bool {
        let in_region = self.region.as_ref().is_none_or(|r| {
            *r == self.root
                || [&e.subdistrict, &e.community, &e.grid]
                    .iter()
                    .any(|c| c.as_deref() == Some(r))
        });
        in_region
            && !self.hidden.contains(&e.category)
            && self
                .department
                .as_ref()
                .is_none_or(|d| e.department.as_deref() == Some(d))
    }

    fn vital_visible(&self, e: &crate::bus::VitalEvent) -> bool {
        (!e.officers_only || self.full)
            && self.region.as_ref().is_none_or(|r| {
                *r == self.root || e.region == self.root || r.starts_with(e.region.as_str())
            })
    }
}

/// Several nodes (the bus on NATS JetStream): the stream's sequence numbers are the
/// event ids — one order for every node, so `Last-Event-ID` resumes on any node; the
/// backlog is read back from the JetStream stream, then the node's consumer is followed.
struct ClusterStream {
    st: AppState,
    filter: Filter,
    rx: Option<crate::bus::SequencedSubscription>,
    backlog: std::collections::VecDeque<(u64, std::sync::Arc<CaseEvent>)>,
    /// The last sequence sent or passed over.
    last: u64,
    more: bool,
}

/// Events read back from the stream per page.
const REPLAY_PAGE: usize = 200;

impl ClusterStream {
    async fn refill(&mut self) -> Result<(), String> {
        let Some(bus) = self.st.0.bus.sequenced() else {
            return Err("the bus has no sequence".into());
        };
        let page = bus.case_events_after(self.last, REPLAY_PAGE).await?;
        self.more = page.len() >= REPLAY_PAGE;
        self.backlog.extend(page);
        Ok(())
    }
}

/// Cluster mode, `recent`: how many case events of the caller's sub-district (or of the
/// district, for a district-wide caller) are read back from the stream at most to find
/// the caller's last `recent`, and how far below the stream's head they are looked for.
pub const RECENT_READ_LIMIT: usize = 5_000;
pub const RECENT_SEQ_LIMIT: u64 = 20_000;

impl ClusterStream {
    /// The sub-district whose subject holds every case event the caller may see (`None`:
    /// the whole district's).
    fn subdistrict(&self) -> Option<String> {
        let r = self
            .filter
            .region
            .as_ref()
            .filter(|r| **r != self.filter.root)?;
        let t = &self.st.0.cfg.territory;
        let id = t.by_code(r)?;
        t.codes(t.chain_of(id)).subdistrict
    }

    /// `recent=n` in cluster mode: the caller's own last `n` case events, read back from
    /// the stream's tail by sequence — windows of growing size below the head, each read
    /// forward on the caller's subject, until `n` are found, the stream's start is
    /// reached, [`RECENT_READ_LIMIT`] events were read or [`RECENT_SEQ_LIMIT`]
    /// sequences looked at — then live from the head.
    async fn recent(&mut self, n: usize) -> Result<(), String> {
        let Some(bus) = self.st.0.bus.sequenced() else {
            return Err("the bus has no sequence".into());
        };
        let sd = self.subdistrict();
        let head = bus.head().await?;
        let mut kept: std::collections::VecDeque<(u64, std::sync::Arc<CaseEvent>)> =
            Default::default();
        let (mut hi, mut reach, mut read) = (head, (n as u64 * 2).max(16), 0usize);
        loop {
            // A window never holds more events than may still be read.
            let room = ((RECENT_READ_LIMIT - read) as u64).min(RECENT_SEQ_LIMIT - (head - hi));
            let lo = hi.saturating_sub(reach.min(room));
            let mut seg = Vec::new();
            let mut at = lo;
            'window: loop {
                // Never past the window's top: what is read is bounded by the window.
                let page = bus
                    .case_events_after_in(at, REPLAY_PAGE, hi, sd.as_deref())
                    .await?;
                let full = page.len() >= REPLAY_PAGE;
                for (seq, e) in page {
                    if seq > hi {
                        break 'window;
                    }
                    at = seq;
                    read += 1;
                    if self.filter.visible(&e) {
                        seg.push((seq, e));
                    }
                }
                if !full {
                    break;
                }
            }
            for x in seg.into_iter().rev() {
                kept.push_front(x);
            }
            while kept.len() > n {
                kept.pop_front();
            }
            if kept.len() >= n
                || lo == 0
                || read >= RECENT_READ_LIMIT
                || head - lo >= RECENT_SEQ_LIMIT
            {
                break;
            }
            hi = lo;
            reach *= 4;
        }
        // From the first kept on, then live (events up to the head already kept or not
        // the caller's; the live channel's are passed over by sequence).
        self.last = kept.front().map_or(head, |(s, _)| s - 1);
        self.backlog = kept;
        Ok(())
    }
}

async fn cluster_stream(
    mut s: ClusterStream,
    recent: usize,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let unavailable = |e: String| {
        ApiError::new(
            Problem::Unavailable,
            format!("cannot read the event backlog from NATS: {e}"),
        )
        .retry_after(2)
    };
    // Subscribe before reading the backlog, so that nothing falls between the two.
    s.rx = s.st.0.bus.sequenced().map(|b| b.subscribe_sequenced());
    if recent > 0 {
        s.recent(recent).await.map_err(unavailable)?;
    } else if s.more {
        s.refill().await.map_err(unavailable)?;
    }
    let case = |seq: u64, e: &CaseEvent, full: bool| {
        Event::default()
            .id(seq.to_string())
            .event(e.kind.clone())
            .data(event_json(e, full))
    };
    let stream = futures_util::stream::unfold(s, move |mut s| async move {
        loop {
            if let Some((seq, e)) = s.backlog.pop_front() {
                if seq <= s.last {
                    continue;
                }
                s.last = seq;
                if s.filter.visible(&e) {
                    let ev = case(seq, &e, s.filter.full);
                    return Some((Ok::<_, std::convert::Infallible>(ev), s));
                }
                continue;
            }
            if s.more {
                if s.refill().await.is_err() {
                    return None;
                }
                continue;
            }
            let rx = s.rx.as_mut()?;
            match rx.recv().await {
                Ok((_, crate::bus::BusEvent::Vital(v))) => {
                    if s.filter.vital_visible(&v) {
                        let ev = Event::default().event(v.kind).data(v.data.clone());
                        return Some((Ok(ev), s));
                    }
                }
                Ok((seq, crate::bus::BusEvent::Case(e))) => {
                    if seq > s.last {
                        s.last = seq;
                        if s.filter.visible(&e) {
                            let ev = case(seq, &e, s.filter.full);
                            return Some((Ok(ev), s));
                        }
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow for the live channel: read the rest back from the stream.
                    s.more = true;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}
