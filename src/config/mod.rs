//! Pipeline files: what the user writes (`*File` types, serde) and the validated
//! [`Pipeline`] a run uses. Validation happens once, here, and every rejection names the
//! file, the key and the reason.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::TimeDelta;
use serde::Deserialize;

use crate::discovery::calls::{RoomMatch, RoomScan};
use crate::domain::endpoint::url_is_loopback;
use crate::domain::{PipelineName, ProductType, Target};
use volc_rtc::limits::{DEFAULT_ENDPOINT, DEFAULT_REGION, INDICATORS, REQUESTS_PER_SECOND};

/// Longest id we accept for apps, rooms and users. Real ids are far shorter; the cap keeps
/// object keys under every store's limit.
pub(crate) const MAX_ID_LEN: usize = 128;

/// Longest escaped `app_id=` directory name: file systems allow 255 bytes a name.
pub(crate) const MAX_SEGMENT_LEN: usize = 255;

/// A config file that cannot be used. Always names the file; `key` is the dotted path
/// of the offending entry when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}{reason}", key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
pub struct ConfigError {
    /// The pipeline file at fault.
    pub file: PathBuf,
    /// The dotted key at fault (`targets[0].app_id`) or `--endpoint`; `None`: the whole file.
    pub key: Option<String>,
    /// Why it is refused, for the person who wrote the file.
    pub reason: String,
}

/// How to reach the API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// Base URL requests go to: the file's `[api] endpoint`, or `--endpoint`.
    pub endpoint: String,
    pub(crate) region: String,
    pub(crate) requests_per_second: f64,
    /// `ListRoomInfo`'s own rate (room discovery): it has its own limit, 10 a second.
    pub(crate) room_info_requests_per_second: f64,
    /// Allow `http://` to a host that is not loopback.
    pub(crate) allow_http: bool,
}

/// Recovering recorded gaps from the offline API (`ListQuality`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecoverySettings {
    /// Whether runs recover gaps at all (an account without access to `ListQuality`
    /// turns it off).
    pub(crate) enabled: bool,
    /// `ListQuality`'s own rate: it has its own limit, 2 a second.
    pub(crate) requests_per_second: f64,
    /// The most `ListQuality` requests one run sends: some accounts have a daily quota.
    pub(crate) max_requests_per_run: u32,
    /// How far back a target's history is loaded at 5 minutes when it is first served
    /// (`history = "30d"`): `None` loads none.
    pub(crate) history: Option<TimeDelta>,
}

/// Recovery requests one run sends when the file does not say: one minute at 2 a second.
pub(crate) const DEFAULT_RECOVERY_REQUESTS: u32 = 120;

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            enabled: true,
            requests_per_second: 2.0,
            max_requests_per_run: DEFAULT_RECOVERY_REQUESTS,
            history: None,
        }
    }
}

/// Where the dataset goes.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkSettings {
    /// A local path, `file://` URL or `s3://bucket/prefix`.
    pub(crate) url: String,
    /// Slot length; divides 60 minutes and is a multiple of 30 s.
    pub slot: TimeDelta,
    /// S3 endpoint override (else `AWS_ENDPOINT` / `AWS_ENDPOINT_URL`).
    pub(crate) endpoint: Option<String>,
    /// S3 region override (else `AWS_REGION`).
    pub(crate) region: Option<String>,
}

impl SinkSettings {
    /// The `[sink]` overrides of the store's endpoint and region.
    pub(crate) fn store_options(&self) -> crate::sink::StoreOptions {
        crate::sink::StoreOptions {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
        }
    }
}

/// A validated pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub(crate) name: PipelineName,
    pub(crate) file: PathBuf,
    /// The `[api]` table: where requests go and how fast.
    pub api: ApiSettings,
    /// The `[sink]` table: where the dataset goes and its slot length.
    pub sink: SinkSettings,
    /// Expanded targets, sorted and unique; shared, not copied, with a run's fetches.
    pub targets: Arc<[Target]>,
    /// The `rooms = "active"` entries: rooms found with `ListRoomInfo`, in file order.
    pub(crate) scans: Arc<[RoomScan]>,
    /// The `[recovery]` table.
    pub(crate) recovery: RecoverySettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    name: String,
    #[serde(default)]
    api: ApiFile,
    sink: SinkFile,
    #[serde(default)]
    recovery: RecoveryFile,
    #[serde(default)]
    targets: Vec<TargetFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryFile {
    enabled: Option<bool>,
    requests_per_second: Option<f64>,
    max_requests_per_run: Option<u32>,
    history: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiFile {
    endpoint: Option<String>,
    region: Option<String>,
    requests_per_second: Option<f64>,
    room_info_requests_per_second: Option<f64>,
    allow_http: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinkFile {
    url: String,
    slot: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    app_id: String,
    indicators: Vec<String>,
    product_types: Option<Vec<String>>,
    rooms: Option<RoomsFile>,
    room_match: Option<String>,
    users: Option<Vec<String>>,
    max_lag: Option<String>,
}

/// `rooms`: the room ids, or `"active"` for every room that had a call.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of room ids, or \"active\" for every room that had a call"
)]
enum RoomsFile {
    List(Vec<String>),
    Mode(String),
}

impl TargetFile {
    /// The listed rooms, when `rooms` is a list.
    fn room_list(&self) -> Option<&[String]> {
        match &self.rooms {
            Some(RoomsFile::List(ids)) => Some(ids),
            _ => None,
        }
    }
}

impl Pipeline {
    /// Points the pipeline at another endpoint (the `--endpoint` flag), with the same
    /// checks as the file's `[api] endpoint`.
    pub fn override_endpoint(&mut self, endpoint: &str) -> Result<(), ConfigError> {
        validate_endpoint(endpoint, self.api.allow_http).map_err(|reason| ConfigError {
            file: self.file.clone(),
            key: Some("--endpoint".into()),
            reason,
        })?;
        self.api.endpoint = endpoint.to_string();
        Ok(())
    }
}

/// Reads and validates a pipeline file.
pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        key: None,
        reason: format!("cannot read the file: {e}"),
    })?;
    parse(path, &text)
}

/// A relative local sink path resolved against the folder of the pipeline file at
/// `path`, so that a pipeline writes to the same place from whatever folder a
/// scheduler, `status` or a person starts it; URLs and absolute paths as given.
fn beside(path: &Path, url: &str) -> String {
    let trimmed = url.trim();
    if trimmed.contains("://") || Path::new(trimmed).is_absolute() {
        return url.to_string();
    }
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => {
            let joined = dir.join(trimmed.strip_prefix("./").unwrap_or(trimmed));
            joined.display().to_string()
        }
        None => url.to_string(),
    }
}

/// Validates pipeline text as if read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Pipeline, ConfigError> {
    let in_file = |r: Rejection| {
        // A rejection of a value names the line it is on, when the key is found there.
        let key = match locate(text, &r.key) {
            Some((line, column)) => format!("{} (line {line}, column {column})", r.key),
            None => r.key,
        };
        ConfigError {
            file: path.to_path_buf(),
            key: (!key.is_empty()).then_some(key),
            reason: r.reason,
        }
    };
    let raw: PipelineFile = toml::from_str(text).map_err(|e| {
        let (key, reason) = describe_toml_error(text, &e);
        ConfigError {
            file: path.to_path_buf(),
            key: (!key.is_empty()).then_some(key),
            reason,
        }
    })?;
    let name = PipelineName::parse(&raw.name).map_err(|r| in_file(Rejection::new("name", r)))?;
    // Sections are checked in file order (api, sink, recovery, targets): the first
    // rejection wins.
    let api = api_settings(raw.api).map_err(in_file)?;
    let mut sink = sink_settings(raw.sink).map_err(in_file)?;
    sink.url = beside(path, &sink.url);
    let recovery = recovery_settings(raw.recovery).map_err(in_file)?;
    let (targets, scans) = expand_targets(&raw.targets).map_err(in_file)?;
    Ok(Pipeline {
        name,
        file: path.to_path_buf(),
        api,
        sink,
        targets,
        scans,
        recovery,
    })
}

/// A rejection from one section's checks: the dotted key and the reason. The section
/// helpers do not know the file; [`parse`] adds it to make the [`ConfigError`].
struct Rejection {
    key: String,
    reason: String,
}

impl Rejection {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The `[api]` table with its defaults filled in, so a run never sees a missing value;
/// checks the endpoint, the region and the rate, in that order.
fn api_settings(api: ApiFile) -> Result<ApiSettings, Rejection> {
    let allow_http = api.allow_http.unwrap_or(false);
    let endpoint = api.endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    validate_endpoint(&endpoint, allow_http).map_err(|r| Rejection::new("api.endpoint", r))?;
    let region = api.region.unwrap_or_else(|| DEFAULT_REGION.to_string());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Rejection::new(
            "api.region",
            format!("{region:?} is not a region name such as \"cn-north-1\""),
        ));
    }
    let rps = rate(api.requests_per_second, 2.0, "api.requests_per_second")?;
    let room_info = rate(
        api.room_info_requests_per_second,
        10.0,
        "api.room_info_requests_per_second",
    )?;
    Ok(ApiSettings {
        endpoint,
        region,
        requests_per_second: rps,
        room_info_requests_per_second: room_info,
        allow_http,
    })
}

impl Pipeline {
    /// A warning when the file asks for more than the API's documented rate: the API
    /// throttles what exceeds it, so runs slow down, fail or overstate their capacity,
    /// unless the account's quota was raised.
    pub(crate) fn rate_warning(&self) -> Option<String> {
        let rps = self.api.requests_per_second;
        (rps > REQUESTS_PER_SECOND).then(|| {
            format!(
                "{}: api.requests_per_second = {rps} is above the API's documented {REQUESTS_PER_SECOND} requests/second per account: requests over it are throttled (429) and the capacity shown is not reached; keep it at {REQUESTS_PER_SECOND} unless Volcengine raised this account's quota",
                self.file.display()
            )
        })
    }
}

/// The `[recovery]` table with its defaults filled in.
fn recovery_settings(r: RecoveryFile) -> Result<RecoverySettings, Rejection> {
    let default = RecoverySettings::default();
    let requests_per_second = rate(
        r.requests_per_second,
        default.requests_per_second,
        "recovery.requests_per_second",
    )?;
    let max_requests_per_run = r
        .max_requests_per_run
        .unwrap_or(default.max_requests_per_run);
    if max_requests_per_run == 0 {
        return Err(Rejection::new(
            "recovery.max_requests_per_run",
            "0 requests cannot recover anything: give at least 1, or set recovery.enabled = false",
        ));
    }
    let enabled = r.enabled.unwrap_or(default.enabled);
    let history = r
        .history
        .as_deref()
        .map(parse_history)
        .transpose()
        .map_err(|reason| Rejection::new("recovery.history", reason))?;
    if history.is_some() && !enabled {
        return Err(Rejection::new(
            "recovery.history",
            "history is loaded by recovery, which recovery.enabled = false turns off: remove history, or enable recovery",
        ));
    }
    Ok(RecoverySettings {
        enabled,
        requests_per_second,
        max_requests_per_run,
        history,
    })
}

/// A rate key with its default (the API's own limit for that action).
fn rate(given: Option<f64>, default: f64, key: &str) -> Result<f64, Rejection> {
    let rps = given.unwrap_or(default);
    if !(rps.is_finite() && rps > 0.0 && rps <= 1000.0) {
        return Err(Rejection::new(
            key,
            format!(
                "{rps} is not a rate: give requests per second above 0 and at most 1000 (the API allows {default:.1} per account)"
            ),
        ));
    }
    Ok(rps)
}

/// The `[sink]` table with the default slot length filled in; checks the slot before
/// the URL.
fn sink_settings(sink: SinkFile) -> Result<SinkSettings, Rejection> {
    let slot_text = sink.slot.unwrap_or_else(|| "5m".to_string());
    let slot = parse_slot(&slot_text).map_err(|r| Rejection::new("sink.slot", r))?;
    if sink.url.trim().is_empty() {
        return Err(Rejection::new(
            "sink.url",
            "is empty: give a local path or s3://bucket/prefix",
        ));
    }
    Ok(SinkSettings {
        url: sink.url,
        slot,
        endpoint: sink.endpoint,
        region: sink.region,
    })
}

/// Every `[[targets]]` entry checked and expanded, in file order, into the pipeline's
/// sorted, unique targets: an entry is fully checked before its targets are added, so
/// a bad key is reported before a repeat.
fn expand_targets(entries: &[TargetFile]) -> Result<Expanded, Rejection> {
    if entries.is_empty() {
        return Err(Rejection::new(
            "targets",
            "no [[targets]] entry: add at least one with app_id and indicators",
        ));
    }
    let mut targets = TargetSet::default();
    let mut scans: Vec<RoomScan> = Vec::new();
    // The entry index of each of `scans`, for messages.
    let mut scan_entries: Vec<usize> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry_targets(i, entry)? {
            Entry::Listed(listed) => {
                for target in listed {
                    targets.insert(i, target)?;
                }
            }
            Entry::Scan(scan) => {
                if let Some(j) = scans
                    .iter()
                    .position(|s| s.app_id == scan.app_id)
                    .map(|k| scan_entries[k])
                {
                    return Err(Rejection::new(
                        format!("targets[{i}]"),
                        format!(
                            "repeats the rooms = \"active\" of app {} in targets[{j}]: one entry per app finds its rooms (name both product types in it, narrow it with room_match)",
                            scan.app_id
                        ),
                    ));
                }
                scans.push(scan);
                scan_entries.push(i);
            }
        }
    }
    Ok((
        targets.targets.into_iter().collect::<Vec<_>>().into(),
        scans.into(),
    ))
}

/// The dotted key of field `field` of the `i`th `[[targets]]` entry, as rejections
/// name it (`targets[0].rooms[1]`).
fn target_key(i: usize, field: &str) -> String {
    format!("targets[{i}].{field}")
}

/// Checks the `i`th `[[targets]]` entry field by field, in the order its rejections
/// are reported, and expands it into its targets.
fn entry_targets(i: usize, t: &TargetFile) -> Result<Entry, Rejection> {
    let at = |field: &str| target_key(i, field);
    check_app_id(&t.app_id).map_err(|r| Rejection::new(at("app_id"), r))?;
    let indicators =
        entry_indicators(&t.indicators).map_err(|r| Rejection::new(at("indicators"), r))?;
    let max_lag = t
        .max_lag
        .as_deref()
        .map(parse_max_lag)
        .transpose()
        .map_err(|r| Rejection::new(at("max_lag"), r))?;
    let products = entry_products(t.product_types.as_deref())
        .map_err(|r| Rejection::new(at("product_types"), r))?;
    if let Scope::Active(room_match) = check_scope(i, t)? {
        return Ok(Entry::Scan(RoomScan {
            app_id: t.app_id.clone(),
            product_types: products.into_iter().collect(),
            indicators,
            room_match,
            max_lag,
        }));
    }
    let mut out = Vec::new();
    for &pt in &products {
        for room in scope_ids(t.room_list()) {
            for user in scope_ids(t.users.as_deref()) {
                out.push(Target {
                    app_id: t.app_id.clone(),
                    product_type: pt,
                    room_id: room.clone(),
                    user_id: user,
                    indicators: indicators.clone(),
                    max_lag,
                });
            }
        }
    }
    Ok(Entry::Listed(out))
}

/// The listed targets and the `rooms = "active"` entries of a pipeline.
type Expanded = (Arc<[Target]>, Arc<[RoomScan]>);

/// Where an entry's rooms come from.
enum Scope {
    /// The file names them (or none: app-level data).
    Listed,
    /// `rooms = "active"`, narrowed by the `room_match` glob if any.
    Active(Option<RoomMatch>),
}

/// What one `[[targets]]` entry stands for.
enum Entry {
    /// Its targets, expanded.
    Listed(Vec<Target>),
    /// `rooms = "active"`: its rooms are found at run time.
    Scan(RoomScan),
}

/// An app id is also a directory name once escaped, so on top of [`check_id`] its
/// escaped form must fit a file name.
fn check_app_id(app_id: &str) -> Result<(), String> {
    check_id(app_id)?;
    let segment = crate::domain::escape::app_segment(app_id);
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(format!(
            "{:?} becomes the {}-byte directory name {segment:?}: at most {MAX_SEGMENT_LEN} bytes fit a file name",
            app_id,
            segment.len()
        ));
    }
    Ok(())
}

/// An entry's indicators, sorted and unique, shared by all its targets; each must be
/// one `ListRealTimeQuality` knows.
fn entry_indicators(names: &[String]) -> Result<Arc<[String]>, String> {
    if names.is_empty() {
        return Err(format!(
            "is empty: name at least one of {}",
            INDICATORS.join(", ")
        ));
    }
    let mut indicators = BTreeSet::new();
    for ind in names {
        if !INDICATORS.contains(&ind.as_str()) {
            return Err(format!(
                "{ind:?} is not an indicator of ListRealTimeQuality: use one of {}",
                INDICATORS.join(", ")
            ));
        }
        indicators.insert(ind.clone());
    }
    Ok(indicators.into_iter().collect())
}

/// An entry's product types, sorted and unique; `["native"]` when the key is left out.
fn entry_products(names: Option<&[String]>) -> Result<BTreeSet<ProductType>, String> {
    let default = ["native".to_string()];
    let mut products = BTreeSet::new();
    for p in names.unwrap_or(&default) {
        let pt = ProductType::parse(p)
            .ok_or_else(|| format!("{p:?} is not a product type: use \"native\" or \"web\""))?;
        products.insert(pt);
    }
    if products.is_empty() {
        return Err(
            "is empty: leave it out for [\"native\"] or name \"native\" and/or \"web\"".into(),
        );
    }
    Ok(products)
}

/// Checks an entry's `rooms`, `room_match` and `users`: users only within listed rooms,
/// as the API applies them; says whether the entry lists its rooms or finds them.
fn check_scope(i: usize, t: &TargetFile) -> Result<Scope, Rejection> {
    match &t.rooms {
        Some(RoomsFile::List(rooms)) => check_id_list(
            i,
            "rooms",
            rooms,
            "is empty: leave it out for app-level data or name the rooms",
        )?,
        Some(RoomsFile::Mode(mode)) if mode == "active" => {
            return check_active(i, t).map(Scope::Active);
        }
        Some(RoomsFile::Mode(mode)) => {
            return Err(Rejection::new(
                target_key(i, "rooms"),
                format!(
                    "{mode:?} is not a room list: name the rooms, or give \"active\" for every room that had a call"
                ),
            ));
        }
        None => {}
    }
    if t.room_match.is_some() {
        return Err(Rejection::new(
            target_key(i, "room_match"),
            "needs rooms = \"active\": it narrows the rooms found with ListRoomInfo",
        ));
    }
    if let Some(users) = &t.users {
        if t.room_list().is_none() {
            return Err(Rejection::new(
                target_key(i, "users"),
                "needs rooms: the API applies UserId only together with a RoomId",
            ));
        }
        check_id_list(
            i,
            "users",
            users,
            "is empty: leave it out for room-level data or name the users",
        )?;
    }
    Ok(Scope::Listed)
}

/// `rooms = "active"`: no `users` (a room found at run time has no users to name), and a
/// `room_match` that is a glob.
fn check_active(i: usize, t: &TargetFile) -> Result<Option<RoomMatch>, Rejection> {
    if t.users.is_some() {
        return Err(Rejection::new(
            target_key(i, "users"),
            "cannot go with rooms = \"active\": users are named only within listed rooms",
        ));
    }
    t.room_match
        .as_deref()
        .map(RoomMatch::parse)
        .transpose()
        .map_err(|r| Rejection::new(target_key(i, "room_match"), r))
}

/// Rooms and users take the same checks: a list given must name at least one id (else
/// `if_empty`), and each id must pass [`check_id`], keyed by its index (`rooms[1]`).
fn check_id_list(i: usize, field: &str, ids: &[String], if_empty: &str) -> Result<(), Rejection> {
    if ids.is_empty() {
        return Err(Rejection::new(target_key(i, field), if_empty));
    }
    for (j, id) in ids.iter().enumerate() {
        check_id(id).map_err(|r| Rejection::new(target_key(i, &format!("{field}[{j}]")), r))?;
    }
    Ok(())
}

/// The rooms or users a target list ranges over: each id given, or `None` alone (the
/// app- or room-level data) when the key is left out.
fn scope_ids(ids: Option<&[String]>) -> Vec<Option<String>> {
    match ids {
        Some(ids) => ids.iter().cloned().map(Some).collect(),
        None => vec![None],
    }
}

/// The pipeline's targets while they are collected, with their keys beside them so a
/// repeat is found without a scan.
#[derive(Default)]
struct TargetSet {
    targets: BTreeSet<Target>,
    /// Keys seen so far: a set, so a pipeline of thousands of targets is checked in
    /// linear time (a scan per target took 30 s at 8,000).
    keys: HashSet<String>,
}

impl TargetSet {
    /// Adds a target of the `i`th entry, rejecting one whose (app, product type, room,
    /// user) is already there.
    fn insert(&mut self, i: usize, target: Target) -> Result<(), Rejection> {
        if !self.keys.insert(target.key())
            && let Some(prev) = self
                .targets
                .iter()
                .find(|p: &&Target| p.key() == target.key())
        {
            return Err(Rejection::new(
                format!("targets[{i}]"),
                format!("repeats target {prev}: list each (app, product type, room, user) once"),
            ));
        }
        self.targets.insert(target);
        Ok(())
    }
}

/// Checks an app, room or user id. Ids become partition values and object-key parts, so
/// they must be printable: no control characters, not empty, not huge. Path characters
/// such as `/` are allowed here and escaped by the sink.
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty: ids must have at least one character".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "is {} bytes long: ids may have at most {MAX_ID_LEN} bytes",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{:?} contains the control character U+{:04X}: ids must be printable",
            id, c as u32
        ));
    }
    Ok(())
}

/// Seconds of `"90s"`, `"5m"` or `"1h"`; `None` for anything else.
fn parse_seconds(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
}

fn parse_slot(s: &str) -> Result<TimeDelta, String> {
    match parse_seconds(s) {
        Some(secs) if secs > 0 && secs % 30 == 0 && 3600 % secs == 0 => {
            Ok(TimeDelta::seconds(secs))
        }
        _ => Err(format!(
            "{s:?} is not a slot length: write it like \"30s\", \"5m\" or \"1h\"; it must divide 60 minutes and be a multiple of 30 s"
        )),
    }
}

/// `max_lag = "10m"`: from one bucket (30 s) to the API's 60 minutes.
fn parse_max_lag(s: &str) -> Result<TimeDelta, String> {
    match parse_seconds(s) {
        Some(secs) if (30..=3600).contains(&secs) => Ok(TimeDelta::seconds(secs)),
        _ => Err(format!(
            "{s:?} is not a lag: write it like \"90s\", \"10m\" or \"1h\", from 30s to 60m"
        )),
    }
}

/// `history = "30d"`: from one hour to the offline API's 30 days.
fn parse_history(s: &str) -> Result<TimeDelta, String> {
    let most = volc_rtc::limits::OFFLINE_LOOKBACK;
    match parse_seconds(s) {
        Some(secs) if secs >= 3600 && secs <= most.num_seconds() => Ok(TimeDelta::seconds(secs)),
        _ => Err(format!(
            "{s:?} is not a history length: write it like \"30d\", \"7d\" or \"12h\", from 1h to {}d (what the offline API keeps)",
            most.num_days()
        )),
    }
}

fn validate_endpoint(endpoint: &str, allow_http: bool) -> Result<(), String> {
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
        format!("{endpoint:?} is not a URL: write it like https://rtc.volcengineapi.com")
    })?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host_port.is_empty() {
        return Err(format!("{endpoint:?} has no host"));
    }
    if host_port.contains('@') {
        return Err(format!(
            "{endpoint:?} has a user name or password before '@': rtcq signs requests itself, so write only https://host[:port]"
        ));
    }
    let url = reqwest::Url::parse(endpoint).map_err(|e| {
        format!("{endpoint:?} is not a URL ({e}): write it like https://rtc.volcengineapi.com")
    })?;
    match scheme {
        "https" => Ok(()),
        "http" => {
            if allow_http || url_is_loopback(&url) {
                Ok(())
            } else {
                Err(format!(
                    "{endpoint:?} is plain http to a host that is not loopback: use https, or set api.allow_http = true if you really mean it"
                ))
            }
        }
        _ => Err(format!("{endpoint:?} must start with https://")),
    }
}

/// The key and reason of a TOML error. The key is never empty: a field the parser
/// missed (`sink.url`, `targets[1].indicators`), the key on the line the parser stopped
/// at, or else that line (`line 3`), so every rejection points somewhere.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> (String, String) {
    let reason = e.message().trim();
    let reason = if reason.is_empty() {
        "is not valid TOML".to_string()
    } else {
        reason.to_string()
    };
    // The span comes from the parser: every slice goes through `get`, never indexing, so
    // an offset that is not on a character boundary cannot panic.
    let span = e.span();
    let start = span.as_ref().map_or(0, |s| s.start.min(text.len()));
    let line_start = text
        .get(..start)
        .and_then(|b| b.rfind('\n'))
        .map_or(0, |i| i + 1);
    let line = text
        .get(line_start..)
        .and_then(|l| l.lines().next())
        .unwrap_or("")
        .trim();
    let line_no = text.get(..start).map_or(1, |b| b.matches('\n').count() + 1);
    let column = text
        .get(line_start..start)
        .map_or(1, |b| b.chars().count() + 1);
    // An empty span is the document itself: no place to point at.
    let at = if span.as_ref().is_some_and(|s| s.start < s.end) {
        format!(" (line {line_no}, column {column})")
    } else {
        String::new()
    };
    let (key, reason) = toml_key(text, line_start, line, line_no, reason, span.as_ref());
    if key.starts_with("line ") {
        return (format!("line {line_no}, column {column}"), reason);
    }
    (format!("{key}{at}"), reason)
}

/// The key a TOML error is about, as its full path (`api.requests_per_second`,
/// `targets[0].app_id`), from the line the parser points at and the table around it.
fn toml_key(
    text: &str,
    line_start: usize,
    line: &str,
    line_no: usize,
    reason: String,
    span: Option<&std::ops::Range<usize>>,
) -> (String, String) {
    let header = table_header(text, line_start, line);

    if let Some(field) = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        // An empty span is the document itself; otherwise it is the table's header.
        let in_table = span.as_ref().is_some_and(|s| s.start < s.end);
        let key = match header {
            Some(table) if in_table => format!("{table}.{field}"),
            _ => field.to_string(),
        };
        return (key, reason);
    }
    if let Some(table) = header {
        return (table, reason);
    }
    let key = line
        .split('=')
        .next()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 64 && !k.contains(char::is_whitespace));
    match key {
        Some(k) => match enclosing_table(text, line_start) {
            Some(table) => (format!("{table}.{k}"), reason),
            None => (k.to_string(), reason),
        },
        None => (format!("line {line_no}"), reason),
    }
}

/// Where `key` (`name`, `sink.url`, `targets[2].rooms`) is set in `text`: the line and
/// column of its value, 1-based; `None` for a table or entry as a whole, or a key the
/// file does not spell out (a default).
fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let (table, field) = match key.rsplit_once('.') {
        Some((t, f)) => (Some(t), f),
        None => (None, key),
    };
    if field.is_empty() || field.contains(['[', ' ']) {
        return None;
    }
    let mut current: Option<String> = None;
    let mut begin = 0;
    for (n, l) in text.split_inclusive('\n').enumerate() {
        let trimmed = l.trim();
        if trimmed.starts_with('[') {
            current = table_header(text, begin, trimmed);
        } else if current.as_deref() == table
            && let Some((k, _)) = trimmed.split_once('=')
            && k.trim() == field
        {
            let value = l.find('=')? + 1;
            let offset = value + (l[value..].len() - l[value..].trim_start().len());
            return Some((n + 1, l.get(..offset)?.chars().count() + 1));
        }
        begin += l.len();
    }
    None
}

/// The table a line at `line_start` sits in: the nearest header above it.
fn enclosing_table(text: &str, line_start: usize) -> Option<String> {
    let mut header = None;
    let mut begin = 0;
    for l in text.get(..line_start)?.split_inclusive('\n') {
        let trimmed = l.trim();
        if trimmed.starts_with('[') {
            header = Some((begin, trimmed));
        }
        begin += l.len();
    }
    let (begin, line) = header?;
    table_header(text, begin, line)
}

/// `sink` for a `[sink]` line, `targets[2]` for the third `[[targets]]` line.
fn table_header(text: &str, line_start: usize, line: &str) -> Option<String> {
    if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
        let name = name.trim();
        let index = text
            .get(..line_start)?
            .lines()
            .filter(|l| {
                l.trim()
                    .strip_prefix("[[")
                    .and_then(|l| l.split("]]").next())
                    .is_some_and(|n| n.trim() == name)
            })
            .count();
        return (!name.is_empty()).then(|| format!("{name}[{index}]"));
    }
    let name = line.strip_prefix('[')?.split(']').next()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "demo"
[api]
endpoint = "http://127.0.0.1:8080"
[sink]
url = "./data"
[[targets]]
app_id = "demo-app"
indicators = ["stall_rate", "join_room_success_rate"]
product_types = ["native", "web"]
rooms = ["room-1", "room-2"]
users = ["u1", "u2"]
[[targets]]
app_id = "demo-app"
indicators = ["stall_rate"]
"#;

    fn parse_str(text: &str) -> Result<Pipeline, ConfigError> {
        parse(Path::new("pipelines/t.toml"), text)
    }

    #[test]
    fn the_shipped_pipelines_load_and_the_demos_share_no_name_or_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
        let load = |f: &str| load(&dir.join(f)).unwrap();
        let (demo, live, example) = (
            load("demo.toml"),
            load("demo-live.toml"),
            load("example.toml"),
        );
        let names = [&demo.name, &live.name, &example.name].map(|n| n.as_str().to_string());
        assert_eq!(names, ["demo", "demo_live", "rtc"]);
        let top = |p: &Pipeline| Path::new(&p.sink.url).file_name().unwrap().to_owned();
        assert_eq!(top(&demo), "demo-data");
        assert_eq!(top(&live), "demo-live-data");
        assert_eq!(top(&example), "data");
    }

    #[test]
    fn a_relative_sink_path_is_beside_the_pipeline_file() {
        let f = Path::new("pipelines/t.toml");
        assert_eq!(beside(f, "./data"), "pipelines/data");
        assert_eq!(beside(f, "../data"), "pipelines/../data");
        assert_eq!(beside(f, "/var/lib/rtcq"), "/var/lib/rtcq");
        assert_eq!(beside(f, "s3://b/p"), "s3://b/p");
        assert_eq!(beside(f, "file:///srv/rtcq"), "file:///srv/rtcq");
        assert_eq!(beside(Path::new("t.toml"), "./data"), "./data");
        assert_eq!(parse_str(GOOD).unwrap().sink.url, "pipelines/data");
    }

    #[test]
    fn expands_targets_and_fills_defaults() {
        let p = parse_str(GOOD).unwrap();
        assert_eq!(p.targets.len(), 2 * 2 * 2 + 1);
        assert_eq!(p.api.region, "cn-north-1");
        assert_eq!(p.api.requests_per_second, 2.0);
        assert_eq!(p.sink.slot, TimeDelta::minutes(5));
        let app_level = p.targets.iter().find(|t| t.room_id.is_none()).unwrap();
        assert_eq!(app_level.product_type, ProductType::Native);
        assert_eq!(*app_level.indicators, ["stall_rate".to_string()]);
        let per_user = p.targets.iter().filter(|t| t.user_id.is_some()).count();
        assert_eq!(per_user, 8);
        assert_eq!(
            p.recovery,
            RecoverySettings {
                enabled: true,
                requests_per_second: 2.0,
                max_requests_per_run: 120,
                history: None,
            }
        );
    }

    #[test]
    fn recovery_settings_are_read_and_checked() {
        let with = |table: &str| ACTIVE.replace("[sink]", &format!("[recovery]\n{table}\n[sink]"));
        let p = parse_str(&with(
            "enabled = false\nrequests_per_second = 0.5\nmax_requests_per_run = 7",
        ))
        .unwrap();
        assert_eq!(
            p.recovery,
            RecoverySettings {
                enabled: false,
                requests_per_second: 0.5,
                max_requests_per_run: 7,
                history: None,
            }
        );
        let p = parse_str(&with("history = \"30d\"\nmax_requests_per_run = 3")).unwrap();
        assert_eq!(p.recovery.history, Some(TimeDelta::days(30)));
        let p = parse_str(&with("history = \"12h\"")).unwrap();
        assert_eq!(p.recovery.history, Some(TimeDelta::hours(12)));
        let cases = [
            (
                "max_requests_per_run = 0",
                "pipelines/t.toml: recovery.max_requests_per_run: 0 requests cannot recover anything: give at least 1, or set recovery.enabled = false",
            ),
            (
                "requests_per_second = -1.0",
                "pipelines/t.toml: recovery.requests_per_second: -1 is not a rate: give requests per second above 0 and at most 1000 (the API allows 2.0 per account)",
            ),
            (
                "history = \"31d\"",
                "pipelines/t.toml: recovery.history: \"31d\" is not a history length: write it like \"30d\", \"7d\" or \"12h\", from 1h to 30d (what the offline API keeps)",
            ),
            (
                "history = \"30m\"",
                "pipelines/t.toml: recovery.history: \"30m\" is not a history length: write it like \"30d\", \"7d\" or \"12h\", from 1h to 30d (what the offline API keeps)",
            ),
            (
                "history = \"30d\"\nenabled = false",
                "pipelines/t.toml: recovery.history: history is loaded by recovery, which recovery.enabled = false turns off: remove history, or enable recovery",
            ),
        ];
        for (table, want) in cases {
            assert_eq!(rejection(&with(table)), want);
        }
        assert_eq!(
            rejection(&with("enable = true")),
            "pipelines/t.toml: recovery.enable: unknown field `enable`, \
             expected one of `enabled`, `requests_per_second`, `max_requests_per_run`, `history`"
        );
    }

    /// The message without the line and column a value's rejection points at (tested
    /// on its own in `rejections_point_at_the_line_and_column`).
    fn rejection(text: &str) -> String {
        let got = parse_str(text).unwrap_err().to_string();
        match (got.find(" (line "), got.find("): ")) {
            (Some(i), Some(j)) if i < j && !got[..i].contains(": line") => {
                format!("{}{}", &got[..i], &got[j + 1..])
            }
            _ => got,
        }
    }

    #[test]
    fn rejections_point_at_the_line_and_column() {
        let text = GOOD.replace("requests_per_second", "x").replace(
            "endpoint = \"http://127.0.0.1:8080\"",
            "endpoint = \"http://127.0.0.1:8080\"\nrequests_per_second = 0",
        );
        assert_eq!(
            parse_str(&text).unwrap_err().to_string(),
            "pipelines/t.toml: api.requests_per_second (line 5, column 23): 0 is not a rate: give requests per second above 0 and at most 1000 (the API allows 2.0 per account)"
        );
        let text = GOOD.replacen("app_id = \"demo-app\"", "app_id = \"\"", 1);
        assert_eq!(
            parse_str(&text).unwrap_err().to_string(),
            "pipelines/t.toml: targets[0].app_id (line 8, column 10): is empty: ids must have at least one character"
        );
        // And a syntax error, where the parser points.
        let text = GOOD.replace("[sink]", "[sink]\nurll = \"x\"");
        assert!(
            parse_str(&text).unwrap_err().to_string().starts_with(
                "pipelines/t.toml: sink.urll (line 6, column 1): unknown field `urll`"
            )
        );
    }

    #[test]
    fn rejections_name_file_key_and_reason() {
        let cases = [
            (
                GOOD.replace("name = \"demo\"", "name = \"Demo!\""),
                "pipelines/t.toml: name: \"Demo!\" is not a valid pipeline name",
            ),
            (
                GOOD.replace("name = \"demo\"", "name = \"_demo\""),
                "pipelines/t.toml: name: \"_demo\" is not a valid pipeline name: use 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
            ),
            (
                GOOD.replace("name = \"demo\"", "name = \"-demo\""),
                "pipelines/t.toml: name: \"-demo\" is not a valid pipeline name",
            ),
            (
                GOOD.replace("[api]", "[api]\nrequests_per_second = 1000000.0"),
                "pipelines/t.toml: api.requests_per_second: 1000000 is not a rate: give requests per second above 0 and at most 1000 (the API allows 2.0 per account)",
            ),
            (
                GOOD.replace("[sink]", "[sink]\nslot = \"7m\""),
                "pipelines/t.toml: sink.slot: \"7m\" is not a slot length",
            ),
            (
                GOOD.replace("[sink]", "[sink]\nslot = \"45s\""),
                "pipelines/t.toml: sink.slot: \"45s\"",
            ),
            (
                GOOD.replace("\"stall_rate\", \"join", "\"stalls\", \"join"),
                "pipelines/t.toml: targets[0].indicators: \"stalls\" is not an indicator",
            ),
            (
                GOOD.replace("[\"native\", \"web\"]", "[\"ios\"]"),
                "pipelines/t.toml: targets[0].product_types: \"ios\" is not a product type",
            ),
            (
                GOOD.replace("rooms = [\"room-1\", \"room-2\"]\n", ""),
                "pipelines/t.toml: targets[0].users: needs rooms",
            ),
            (
                GOOD.replace("http://127.0.0.1:8080", "http://example.com"),
                "pipelines/t.toml: api.endpoint: \"http://example.com\" is plain http",
            ),
            (
                GOOD.replace("[api]", "[api]\nrequests_per_second = 0.0"),
                "pipelines/t.toml: api.requests_per_second: 0 is not a rate",
            ),
            (
                GOOD.replace("\"room-2\"", "\"\""),
                "pipelines/t.toml: targets[0].rooms[1]: is empty",
            ),
            (
                GOOD.replace("\"room-2\"", "\"a\\u0000b\""),
                "pipelines/t.toml: targets[0].rooms[1]: \"a\\0b\" contains the control character U+0000",
            ),
        ];
        for (text, want) in cases {
            let got = rejection(&text);
            assert!(got.starts_with(want), "got {got:?}, want prefix {want:?}");
        }
    }

    const ACTIVE: &str = r#"
name = "demo"
[api]
endpoint = "http://127.0.0.1:8080"
[sink]
url = "./data"
[[targets]]
app_id = "demo-app"
indicators = ["stall_rate"]
rooms = "active"
room_match = "live-*"
product_types = ["web", "native"]
max_lag = "10m"
[[targets]]
app_id = "demo-app"
indicators = ["stall_rate"]
"#;

    #[test]
    fn rooms_active_is_a_scan_not_a_target() {
        let p = parse_str(ACTIVE).unwrap();
        assert_eq!(p.targets.len(), 1, "only the app-level entry is listed");
        assert_eq!(p.api.room_info_requests_per_second, 10.0);
        assert_eq!(p.scans.len(), 1);
        let scan = &p.scans[0];
        assert_eq!(
            scan.to_string(),
            "app=demo-app rooms=active room_match=live-*"
        );
        assert_eq!(scan.product_types, [ProductType::Native, ProductType::Web]);
        assert_eq!(*scan.indicators, ["stall_rate".to_string()]);
        assert_eq!(scan.max_lag, Some(TimeDelta::minutes(10)));
        assert!(scan.follows("live-7") && !scan.follows("room-7"));
        let p = parse_str(&ACTIVE.replace("room_match = \"live-*\"\n", "")).unwrap();
        assert!(p.scans[0].follows("anything"));
    }

    #[test]
    fn rooms_active_rejections_name_file_key_and_reason() {
        let cases = [
            (
                ACTIVE.replace("rooms = \"active\"", "rooms = \"all\""),
                "pipelines/t.toml: targets[0].rooms: \"all\" is not a room list: name the rooms, or give \"active\" for every room that had a call",
            ),
            (
                ACTIVE.replace("rooms = \"active\"", "rooms = \"active\"\nusers = [\"u1\"]"),
                "pipelines/t.toml: targets[0].users: cannot go with rooms = \"active\": users are named only within listed rooms",
            ),
            (
                ACTIVE.replace("\"live-*\"", "\"live-[\""),
                "pipelines/t.toml: targets[0].room_match: \"live-[\" is not a glob: invalid range pattern (at character 5)",
            ),
            (
                ACTIVE.replace("rooms = \"active\"", "rooms = [\"r1\"]"),
                "pipelines/t.toml: targets[0].room_match: needs rooms = \"active\": it narrows the rooms found with ListRoomInfo",
            ),
            (
                ACTIVE.replace("[api]", "[api]\nroom_info_requests_per_second = 0.0"),
                "pipelines/t.toml: api.room_info_requests_per_second: 0 is not a rate: give requests per second above 0 and at most 1000 (the API allows 10.0 per account)",
            ),
            (
                format!(
                    "{}[[targets]]\napp_id = \"demo-app\"\nindicators = [\"stall_rate\"]\nrooms = \"active\"\nproduct_types = [\"web\"]\n",
                    ACTIVE.replacen("[[targets]]", "[[targets]]\napp_id = \"other\"\nindicators = [\"stall_rate\"]\n[[targets]]", 1)
                ),
                "pipelines/t.toml: targets[3]: repeats the rooms = \"active\" of app demo-app in targets[1]: one entry per app finds its rooms (name both product types in it, narrow it with room_match)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(rejection(&text), want);
        }
        let got = rejection(&ACTIVE.replace("rooms = \"active\"", "rooms = 3"));
        assert!(
            got.starts_with("pipelines/t.toml: targets[0].rooms: ")
                && got.contains("a list of room ids, or \"active\" for every room that had a call"),
            "{got}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let got = rejection(&GOOD.replace("[sink]", "[sink]\nurll = \"x\""));
        assert!(
            got.starts_with("pipelines/t.toml: sink.urll: unknown field `urll`"),
            "{got}"
        );
    }

    #[test]
    fn duplicate_target_is_rejected() {
        let text =
            format!("{GOOD}\n[[targets]]\napp_id = \"demo-app\"\nindicators = [\"stall_rate\"]\n");
        let got = rejection(&text);
        assert!(
            got.starts_with(
                "pipelines/t.toml: targets[2]: repeats target app=demo-app product=native"
            ),
            "{got}"
        );
    }

    #[test]
    fn slot_lengths() {
        assert_eq!(parse_slot("30s").unwrap(), TimeDelta::seconds(30));
        assert_eq!(parse_slot("1h").unwrap(), TimeDelta::hours(1));
        assert_eq!(parse_slot("15m").unwrap(), TimeDelta::minutes(15));
        assert_eq!(parse_slot("90s").unwrap(), TimeDelta::seconds(90));
        for bad in [
            "",
            "5",
            "0m",
            "7m",
            "45s",
            "7m30s",
            "70s",
            "2h",
            "m",
            "-5m",
            "99999999999999999999m",
        ] {
            assert!(parse_slot(bad).is_err(), "{bad}");
        }
    }
}
