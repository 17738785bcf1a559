//! The one table of problem codes: every problem the service can answer, each with its
//! HTTP status, its stable snake_case `code` and a short title in Chinese and English.
//! `ApiError` is built only from a [`Problem`]; the OpenAPI document lists the codes per
//! status and on the Problem schema, and the UI's problem messages are these titles (a
//! test holds `ui/app.js` to this table both ways).

use axum::http::StatusCode;

macro_rules! problems {
    ($($(#[$doc:meta])* $v:ident = $status:ident, $code:literal, $zh:literal, $en:literal;)*) => {
        /// A problem the API answers with (see the module's table).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Problem {
            $($(#[$doc])* $v,)*
        }

        impl Problem {
            /// Every problem, in table order.
            pub const ALL: &'static [Problem] = &[$(Problem::$v,)*];

            /// The HTTP status it is answered with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Problem::$v => StatusCode::$status,)*
                }
            }

            /// The stable snake_case code (`code` in problem+json, `/problems/{code}`).
            pub fn code(self) -> &'static str {
                match self {
                    $(Problem::$v => $code,)*
                }
            }

            /// A short title in Chinese, as the UI shows it.
            pub fn zh(self) -> &'static str {
                match self {
                    $(Problem::$v => $zh,)*
                }
            }

            /// A short title in English, as the UI shows it.
            pub fn en(self) -> &'static str {
                match self {
                    $(Problem::$v => $en,)*
                }
            }
        }
    };
}

problems! {
    // 400: the request's syntax
    /// A query or path parameter, or a header value, is not what the endpoint takes.
    InvalidParameter = BAD_REQUEST, "invalid_parameter", "查询条件有误", "Invalid filter";
    /// The body is not JSON (or NDJSON line) syntax.
    InvalidJson = BAD_REQUEST, "invalid_json", "提交内容不是有效的 JSON", "The body is not valid JSON";
    /// The body could not be read (not UTF-8, cut off).
    UnreadableBody = BAD_REQUEST, "unreadable_body", "无法读取提交内容", "The request could not be read";
    /// Text carries control characters.
    ControlCharacter = BAD_REQUEST, "control_character", "输入包含控制字符", "The input contains control characters";
    /// An `Idempotency-Key` that is not printable ASCII or too long.
    InvalidIdempotencyKey = BAD_REQUEST, "invalid_idempotency_key", "幂等键无效", "Invalid idempotency key";
    /// A photo of no bytes.
    EmptyPhoto = BAD_REQUEST, "empty_photo", "照片为空", "The photo is empty";
    /// A photo whose container (JPEG segments, PNG or WebP chunks) does not parse.
    MalformedPhoto = BAD_REQUEST, "malformed_photo", "照片文件已损坏", "The photo file is damaged";
    /// A media reference that is not one of ours.
    InvalidMediaUrl = BAD_REQUEST, "invalid_media_url", "照片地址无效", "Invalid photo address";
    /// A media reference to no stored file.
    UnknownMedia = BAD_REQUEST, "unknown_media", "照片不存在", "The photo does not exist";
    /// A dataset that cannot be read as the CSV it claims to be.
    InvalidDataset = BAD_REQUEST, "invalid_dataset", "数据集格式有误", "The dataset cannot be read";
    // 401: who is calling
    /// No token and no session.
    MissingToken = UNAUTHORIZED, "missing_token", "请先登录", "Please sign in";
    /// A token that does not verify.
    InvalidToken = UNAUTHORIZED, "invalid_token", "登录已失效，请重新登录", "Your session has ended; sign in again";
    /// A token past its lifetime.
    ExpiredToken = UNAUTHORIZED, "expired_token", "登录已过期，请重新登录", "Your session has expired; sign in again";
    /// Wrong username or password.
    BadCredentials = UNAUTHORIZED, "bad_credentials", "用户名或密码错误", "Wrong username or password";
    // 403: what the caller may do
    /// The caller's role or scope does not allow it.
    Forbidden = FORBIDDEN, "forbidden", "无权执行此操作", "You may not do this";
    /// The caller's department has no task on the case.
    NotYourTask = FORBIDDEN, "not_your_task", "本部门没有此案件的任务", "Your department has no task on this case";
    /// A cookie-authenticated write without the site's own header.
    CsrfCheckFailed = FORBIDDEN, "csrf_check_failed", "请求来源无效，请刷新页面", "The request did not come from this site; reload the page";
    // 404
    /// Nothing by that name, or out of the caller's scope.
    NotFound = NOT_FOUND, "not_found", "未找到", "Not found";
    /// No endpoint at that path.
    NoSuchEndpoint = NOT_FOUND, "no_such_endpoint", "接口不存在", "No such endpoint";
    /// No scenario pack by that name.
    UnknownScenario = NOT_FOUND, "unknown_scenario", "应用场景不存在", "No such scenario pack";
    // 409: the current state
    /// The case's state does not allow the action.
    TransitionNotAllowed = CONFLICT, "transition_not_allowed", "当前状态不允许此操作", "Not allowed in the case's current state";
    /// The case changed since the version the caller saw.
    VersionConflict = CONFLICT, "version_conflict", "案件已被他人更新，请刷新后重试", "Someone changed the case meanwhile; reload and try again";
    /// Values pushed to an indicator that is not fed from outside.
    NotExternal = CONFLICT, "not_external", "该指标不接受外部数据", "This indicator takes no outside values";
    /// A scenario pack reloaded with the version already running.
    ScenarioVersionUnchanged = CONFLICT, "scenario_version_unchanged", "场景包版本号未变更", "The pack's version must change";
    // 413, 415
    /// The body is larger than the endpoint takes.
    PayloadTooLarge = PAYLOAD_TOO_LARGE, "payload_too_large", "文件太大", "File too large";
    /// The body's media type is not one the endpoint takes.
    UnsupportedMediaType = UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "不支持的文件类型", "Unsupported file type";
    // 422: the content
    /// The body is well-formed JSON of the wrong shape.
    InvalidBody = UNPROCESSABLE_ENTITY, "invalid_body", "输入有误", "Invalid input";
    /// A value the rules refuse.
    InvalidArgument = UNPROCESSABLE_ENTITY, "invalid_argument", "输入有误", "Invalid input";
    /// A transition's input that does not fit its action.
    InvalidAction = UNPROCESSABLE_ENTITY, "invalid_action", "该操作的输入有误", "The action's input does not fit";
    /// A value outside an indicator's plausible range.
    ValueOutOfRange = UNPROCESSABLE_ENTITY, "value_out_of_range", "数值超出合理范围", "The value is outside the plausible range";
    /// A category the taxonomy does not know.
    UnknownCategory = UNPROCESSABLE_ENTITY, "unknown_category", "未知的问题类别", "Unknown category";
    /// A category citizens may not report in.
    CategoryNotPublic = UNPROCESSABLE_ENTITY, "category_not_public", "该类别不接受市民上报", "Citizens cannot report in this category";
    /// A department the configuration does not know.
    UnknownDepartment = UNPROCESSABLE_ENTITY, "unknown_department", "未知部门", "Unknown department";
    /// No department is responsible for the case.
    NoRoute = UNPROCESSABLE_ENTITY, "no_route", "找不到负责部门", "No department is responsible";
    /// A place outside the district.
    OutsideTerritory = UNPROCESSABLE_ENTITY, "outside_territory", "该位置不在本辖区内", "That place is outside the district";
    /// Not a position on the earth.
    InvalidPoint = UNPROCESSABLE_ENTITY, "invalid_point", "位置无效", "Invalid position";
    /// Verification without a photo from the site.
    EvidenceRequired = UNPROCESSABLE_ENTITY, "evidence_required", "核查需要至少一张现场照片", "Verification needs at least one photo from the site";
    /// A scenario pack that does not parse or does not fit the running configuration.
    InvalidScenarioPack = UNPROCESSABLE_ENTITY, "invalid_scenario_pack", "场景包有误", "The scenario pack is refused";
    /// An `Idempotency-Key` sent again with another request.
    IdempotencyKeyReused = UNPROCESSABLE_ENTITY, "idempotency_key_reused", "幂等键已用于另一个请求", "The idempotency key was used for another request";
    // 429
    /// Too many failed sign-ins.
    TooManyAttempts = TOO_MANY_REQUESTS, "too_many_attempts", "登录失败次数过多，请稍后再试", "Too many failed sign-ins; try again later";
    /// Too many anonymous lookups.
    TooManyRequests = TOO_MANY_REQUESTS, "too_many_requests", "请求过于频繁，请稍后再试", "Too many requests; try again later";
    // 500
    /// An internal error (logged, never detailed).
    Internal = INTERNAL_SERVER_ERROR, "internal", "系统内部错误", "Internal error";
    // 503, 507
    /// A queue is full; retry shortly.
    Busy = SERVICE_UNAVAILABLE, "busy", "系统繁忙，请稍后再试", "Busy; try again shortly";
    /// The engine has stopped.
    Unavailable = SERVICE_UNAVAILABLE, "unavailable", "服务暂不可用", "Service unavailable";
    /// The database cannot be reached.
    StoreUnavailable = SERVICE_UNAVAILABLE, "store_unavailable", "数据库暂不可用，请稍后再试", "The database is unavailable; try again shortly";
    /// The database cancelled a slow statement.
    StoreTimeout = SERVICE_UNAVAILABLE, "store_timeout", "查询耗时过长，请缩小范围或稍后再试", "The request took too long; narrow it or try again later";
    /// Several nodes: the node that holds the request's partition was sent the request but
    /// its answer never came back — it may or may not have been applied (look before
    /// sending it again; a keyed request may be sent again safely).
    OutcomeUnknown = BAD_GATEWAY, "outcome_unknown", "请求已转交负责节点，但未收到结果，请先查看是否已生效", "Passed on to the node in charge, but its answer was lost; check before sending again";
    /// Several nodes: part of the request was applied on this node and the rest belongs to
    /// a partition another node holds (it was not applied, and the request not passed on).
    PartlyApplied = CONFLICT, "partly_applied", "请求只完成了一部分，其余部分由其他节点负责，请勿整体重发", "Only part of the request was applied; another node is in charge of the rest — do not resend it whole";
    /// The database has no room left.
    InsufficientStorage = INSUFFICIENT_STORAGE, "insufficient_storage", "存储空间不足", "No storage space left";
    // The life circle (issue 18)
    /// A service type the life-circle table does not have.
    UnknownServiceType = UNPROCESSABLE_ENTITY, "unknown_service_type", "未知的生活圈服务类型", "Unknown life-circle service type";
    /// Facilities (candidates, imports) with bad positions or unknown types.
    InvalidFacility = UNPROCESSABLE_ENTITY, "invalid_facility", "设施数据有误", "The facilities are refused";
    /// A what-if with more candidate facilities than it takes.
    TooManyCandidates = UNPROCESSABLE_ENTITY, "too_many_candidates", "备选设施过多", "Too many candidate facilities";
    /// A walking network that is not lines, or has parts that cannot be reached.
    InvalidNetwork = UNPROCESSABLE_ENTITY, "invalid_network", "步行网络有误", "The walking network is refused";
    // The meals room (为老助餐): kind words for an elder.
    /// An order after the meal's cut-off.
    MealAfterCutoff = CONFLICT, "meal_after_cutoff", "这一餐的订餐时间已经过了，请订下一餐", "Ordering for this meal has closed; please order the next meal";
    /// No portions left in the meal.
    MealSoldOut = CONFLICT, "meal_sold_out", "这一餐已经订满了，请换一个食堂或订下一餐", "This meal is fully booked; please choose another canteen or the next meal";
    /// The balance with the subsidy does not cover the meal.
    MealBalanceLow = CONFLICT, "meal_balance_low", "账户里的钱不够这一餐，请家人或工作人员帮忙充值", "The balance is not enough for this meal; ask family or staff to top it up";
    /// A dish not on that day's menu (or no menu that day).
    DishNotOnMenu = UNPROCESSABLE_ENTITY, "dish_not_on_menu", "这道菜这一餐没有，请从当天的菜单里选", "That dish is not on this meal's menu; please choose from the day's menu";
    /// A cancellation after the kitchen started.
    MealCancelClosed = CONFLICT, "meal_cancel_closed", "厨房已经开始做这一餐了，要取消请打电话给食堂", "The kitchen has started this meal; to cancel please call the canteen";
    /// "My usual" before any order.
    NoUsualMeal = CONFLICT, "no_usual_meal", "还没有“老样子”，先点一次餐，以后一下就能订", "No usual meal yet; order once and next time it is one tap";
    /// Delivery asked where the canteen does not deliver.
    NoDelivery = UNPROCESSABLE_ENTITY, "no_delivery", "这一餐不能送到您家，可以选择到店取餐", "This meal cannot be delivered to you; please choose pick-up";
    /// A date of birth that cannot be right.
    ImpossibleAge = UNPROCESSABLE_ENTITY, "impossible_age", "出生日期好像不对，请再核对一下", "The date of birth does not look right; please check it";
    /// Under the service's age.
    UnderMealAge = UNPROCESSABLE_ENTITY, "under_meal_age", "助餐服务面向60岁及以上的老人", "The meal service is for people of 60 and over";
    // Data sharing (数据归集共享)
    /// No dataset by that name.
    UnknownDataset = NOT_FOUND, "unknown_dataset", "数据集不存在", "No such dataset";
    /// No grant by that id (or not one the caller may see).
    UnknownGrant = NOT_FOUND, "unknown_grant", "授权申请不存在", "No such grant";
    /// Rows of a dataset without a grant in force (none, refused, revoked or expired).
    NoGrant = FORBIDDEN, "no_grant", "没有该数据集的有效授权", "No grant in force for this dataset";
    /// Columns (asked for, or filtered on) the dataset does not have or the grant does not give.
    UnknownColumns = UNPROCESSABLE_ENTITY, "unknown_columns", "数据集没有这些列或未获授权", "Unknown or ungranted columns";
    /// A grant whose end date has passed.
    GrantExpired = UNPROCESSABLE_ENTITY, "grant_expired", "授权期限已过", "The grant's end date has passed";
    /// A request overlapping a grant the consumer already has or asked for.
    GrantOverlaps = CONFLICT, "grant_overlaps", "已有重叠的授权或申请", "A grant or request already covers these columns";
    /// A decision the grant's state does not allow (approve a revoked one…).
    GrantNotPending = CONFLICT, "grant_not_pending", "该授权当前状态不允许此操作", "The grant's state does not allow this";
    // The evaluation room (issue 17)
    /// A period that is not a day, week, month, quarter or range of days.
    InvalidPeriod = BAD_REQUEST, "invalid_period", "考核周期格式有误", "The period is not a day, week, month, quarter or range";
    /// A period that ends before it starts.
    PeriodReversed = BAD_REQUEST, "period_reversed", "考核周期的结束早于开始", "The period ends before it starts";
    /// A period that starts after today.
    PeriodInFuture = BAD_REQUEST, "period_in_future", "考核周期尚未开始", "The period has not started yet";
    /// A device id already registered (ids are never reused, even after decommissioning).
    DeviceExists = CONFLICT, "device_exists", "设备编号已登记", "A device with this id is already registered";
}

/// The codes answered with `status`, in table order.
pub fn codes_of(status: u16) -> Vec<&'static str> {
    Problem::ALL
        .iter()
        .filter(|p| p.status().as_u16() == status)
        .map(|p| p.code())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_with_both_titles() {
        let mut seen = std::collections::HashSet::new();
        for p in Problem::ALL {
            let c = p.code();
            assert!(seen.insert(c), "{c} twice");
            assert!(
                c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{c}"
            );
            assert!(p.status().as_u16() >= 400, "{c}");
            assert!(!p.zh().is_empty() && !p.en().is_empty(), "{c}");
        }
    }
}
