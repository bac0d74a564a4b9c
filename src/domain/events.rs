//! An instance's events as its configuration asks for them: the platform's
//! common entries (`event.notification.enabled`, `event.vendor.type`,
//! `event.notification.callback.url`, `event.notification.signature.key`,
//! `event.poller.refresh_interval`, `event.poller.configuration`) read into
//! [`EventSettings`], and the rules between them that one entry's type
//! cannot say (checked with the rest of the configuration, at the create and
//! at every update: a `400` names the entry).
//!
//! What the polls keep on the instance (`store::events`) follows from them:
//! [`PollChange`] says what a change of the configuration does to it.

use serde_json::Value;

use super::token::InstanceId;

pub const ENABLED: &str = "event.notification.enabled";
pub const VENDOR_TYPE: &str = "event.vendor.type";
pub const CALLBACK_URL: &str = "event.notification.callback.url";
pub const SIGNATURE_KEY: &str = "event.notification.signature.key";
pub const INTERVAL: &str = "event.poller.refresh_interval";
pub const POLLER_CONFIGURATION: &str = "event.poller.configuration";

/// Minutes between two polls when `event.poller.refresh_interval` is not given.
pub const DEFAULT_INTERVAL_MINUTES: u64 = 15;
/// The longest interval taken (a week): a longer one is a typo more often than a wish.
pub const MAX_INTERVAL_MINUTES: u64 = 7 * 24 * 60;
/// The object types a poll serves (the hub's resource the changes are of).
pub const OBJECT_TYPES: &[&str] = &["incidents"];
/// How many partitions the due index is spread over: a poll's write lands on
/// one of them (`pollShard`), the tick reads them all.
pub const SHARDS: u32 = 32;

/// What an instance with events enabled asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSettings {
    pub callback_url: String,
    pub interval_minutes: u64,
    /// The poller configuration's CEQL `where` for incidents, as JQL: it
    /// narrows which changes are events.
    pub filter_jql: Option<String>,
    /// Whether a signature key is set (it is a secret: sealed with the others).
    pub signed: bool,
}

impl EventSettings {
    pub fn interval_ms(&self) -> i64 {
        (self.interval_minutes * 60_000) as i64
    }
}

/// The settings of an instance's stored configuration (its plain values and
/// the names of the secrets set); `None` when events are not enabled.
pub fn settings(plain: &[(String, String)], secret_keys: &[String]) -> Option<EventSettings> {
    let get = |key: &str| plain.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    read(&get, secret_keys.iter().any(|k| k == SIGNATURE_KEY)).ok().flatten()
}

/// The rules between the event entries, on the configuration's parsed values
/// (`get` answers an entry's plain value; `signed`: a signature key is set).
/// The first entry in error, if any, for the configuration to name with
/// its other problems.
pub fn check<'a>(get: &dyn Fn(&str) -> Option<&'a str>, signed: bool) -> Result<(), Problem> {
    read(get, signed).map(|_| ())
}

/// An event entry in error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Required by the others, and missing.
    Missing(&'static str),
    /// Not what the others allow: the entry and why.
    Invalid(&'static str, String),
}

fn read<'a>(get: &dyn Fn(&str) -> Option<&'a str>, signed: bool) -> Result<Option<EventSettings>, Problem> {
    if get(ENABLED) != Some("true") {
        return Ok(None);
    }
    // Absent means polling: the only kind served.
    if get(VENDOR_TYPE).is_some_and(|t| t != "polling") {
        return Err(Problem::Invalid(
            VENDOR_TYPE,
            "webhook events are not served for this element: set it to polling (changes are polled every \
             event.poller.refresh_interval minutes)"
                .into(),
        ));
    }
    let callback_url = get(CALLBACK_URL).ok_or(Problem::Missing(CALLBACK_URL))?.to_owned();
    let interval_minutes = match get(INTERVAL) {
        None => DEFAULT_INTERVAL_MINUTES,
        Some(text) => match text.parse::<f64>() {
            Ok(n) if n.fract() == 0.0 && (1.0..=MAX_INTERVAL_MINUTES as f64).contains(&n) => n as u64,
            _ => {
                return Err(Problem::Invalid(
                    INTERVAL,
                    format!("must be a whole number of minutes from 1 to {MAX_INTERVAL_MINUTES}"),
                ))
            }
        },
    };
    let filter_jql = match get(POLLER_CONFIGURATION) {
        None => None,
        Some(text) => poller_filter(text).map_err(|p| Problem::Invalid(POLLER_CONFIGURATION, p))?,
    };
    Ok(Some(EventSettings { callback_url, interval_minutes, filter_jql, signed }))
}

/// The poller configuration: `{"incidents": {"where": "<CEQL>"}}`, the
/// `where` optional (every change of an incident is an event without it).
fn poller_filter(text: &str) -> Result<Option<String>, String> {
    let value: Value = serde_json::from_str(text).map_err(|_| "must be a JSON object".to_owned())?;
    let Value::Object(types) = value else {
        return Err("must be a JSON object".into());
    };
    let mut filter = None;
    for (object_type, config) in &types {
        if !OBJECT_TYPES.contains(&object_type.as_str()) {
            return Err(format!(
                "polls {} only: {object_type:?} is not a resource whose changes are polled",
                OBJECT_TYPES.join(", ")
            ));
        }
        let Value::Object(members) = config else {
            return Err(format!("{object_type} must be an object, such as {{\"where\": \"priority = 'High'\"}}"));
        };
        for (name, value) in members {
            match (name.as_str(), value) {
                ("where", Value::String(w)) if w.trim().is_empty() => {}
                ("where", Value::String(w)) => {
                    let expr = super::ceql::parse(w).map_err(|e| format!("{object_type}.where: {e}"))?;
                    filter = Some(expr.to_jql());
                }
                ("where", _) => return Err(format!("{object_type}.where must be a CEQL string")),
                (other, _) => {
                    return Err(format!("{object_type}.{other} is not served: the one member taken is where (CEQL)"))
                }
            }
        }
    }
    Ok(filter)
}

/// The due index's partition of an instance: fixed by its id, so that its
/// polls always land on the same one and the instances spread over all.
pub fn shard_of(id: InstanceId) -> String {
    // The id is random (see `InstanceId::random`): its low bits are as good as a hash.
    format!("DUE#{:02}", id.get() % u64::from(SHARDS))
}

/// What a change of an instance does to its polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollChange {
    /// Nothing: the polls go on as they were (or stay off).
    Keep,
    /// Events were just enabled: the first poll, an interval from now, looks
    /// back to `since` (now).
    Start { shard: String, due_ms: i64, since_ms: i64 },
    /// Events were turned off: everything the polls kept goes.
    Stop,
    /// The credentials changed (or were accepted again): polls stopped by a
    /// refused login go on, soon; the account's time zone is asked again.
    Resume { due_ms: i64 },
    /// The interval changed on polls that run: the next one an interval
    /// (the new one) from now, not at the old interval's time.
    Reschedule { due_ms: i64 },
}

/// What changing `before` into `after` (the settings, and whether the
/// credentials changed) does to the polls, at `now_ms`; `running`: whether
/// the polls run now (not stopped by a disable or a refused login).
pub fn poll_change(
    id: InstanceId,
    before: Option<&EventSettings>,
    after: Option<&EventSettings>,
    credentials: Credentials,
    running: bool,
    now_ms: i64,
) -> PollChange {
    let credentials_changed = credentials != Credentials::Same;
    match (before, after) {
        (None, Some(after)) => {
            PollChange::Start { shard: shard_of(id), due_ms: now_ms + after.interval_ms(), since_ms: now_ms }
        }
        // Another site: its changes from now, its own cursor, window and clock.
        (Some(_), Some(after)) if credentials == Credentials::NewSite => {
            PollChange::Start { shard: shard_of(id), due_ms: now_ms + after.interval_ms(), since_ms: now_ms }
        }
        (Some(_), None) => PollChange::Stop,
        (Some(_), Some(_)) if credentials_changed => PollChange::Resume { due_ms: now_ms },
        // A new filter: asked at once (a filter JIRA refused, mended, is
        // not left waiting its hour).
        (Some(before), Some(after)) if running && before.filter_jql != after.filter_jql => {
            PollChange::Reschedule { due_ms: now_ms }
        }
        (Some(before), Some(after)) if running && before.interval_minutes != after.interval_minutes => {
            PollChange::Reschedule { due_ms: now_ms + after.interval_ms() }
        }
        _ => PollChange::Keep,
    }
}

/// What a change did to the instance's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    Same,
    /// New credentials for the same site (its URL unchanged).
    Changed,
    /// The site's URL changed: another site, whose changes start now.
    NewSite,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    #[test]
    fn enabled_events_need_a_callback_and_polling() {
        let off = [(ENABLED, "false"), (VENDOR_TYPE, "webhook")];
        assert_eq!(check(&values(&off), false), Ok(()));
        let no_callback = [(ENABLED, "true")];
        assert_eq!(check(&values(&no_callback), false), Err(Problem::Missing(CALLBACK_URL)));
        let webhook = [(ENABLED, "true"), (VENDOR_TYPE, "webhook"), (CALLBACK_URL, "https://app.example/cb")];
        let Err(Problem::Invalid(key, problem)) = check(&values(&webhook), false) else { panic!("webhook is refused") };
        assert_eq!(key, VENDOR_TYPE);
        assert!(problem.contains("webhook events are not served"), "{problem}");
    }

    #[test]
    fn the_interval_defaults_to_15_minutes_and_takes_whole_minutes() {
        let base = [(ENABLED, "true"), (CALLBACK_URL, "https://app.example/cb")];
        let s = read(&values(&base), true).ok().flatten().unwrap();
        assert_eq!((s.interval_minutes, s.signed, s.filter_jql), (15, true, None));
        for bad in ["0", "1.5", "100000", "soon"] {
            let pairs = [base[0], base[1], (INTERVAL, bad)];
            assert!(matches!(check(&values(&pairs), false), Err(Problem::Invalid(INTERVAL, _))), "{bad}");
        }
        let one = [base[0], base[1], (INTERVAL, "1")];
        assert_eq!(read(&values(&one), false).ok().flatten().unwrap().interval_ms(), 60_000);
    }

    #[test]
    fn the_poller_configuration_takes_a_ceql_where_for_incidents() {
        let base = [(ENABLED, "true"), (CALLBACK_URL, "https://app.example/cb")];
        let with = |config: &'static str| [base[0], base[1], (POLLER_CONFIGURATION, config)];
        let s = read(&values(&with(r#"{"incidents":{"where":"priority = 'High'"}}"#)), false).ok().flatten();
        assert_eq!(s.unwrap().filter_jql.as_deref(), Some("priority = \"High\""));
        for bad in [r#"{"issues":{}}"#, r#"{"incidents":{"url":"/x"}}"#, r#"{"incidents":{"where":"a ="}}"#, "[1]"] {
            assert!(
                matches!(check(&values(&with(bad)), false), Err(Problem::Invalid(POLLER_CONFIGURATION, _))),
                "{bad}"
            );
        }
    }

    #[test]
    fn what_a_change_does_to_the_polls() {
        let id = InstanceId::new(1234567).unwrap();
        let s =
            EventSettings { callback_url: "https://a/".into(), interval_minutes: 5, filter_jql: None, signed: false };
        assert_eq!(
            poll_change(id, None, Some(&s), Credentials::Same, true, 1000),
            PollChange::Start { shard: shard_of(id), due_ms: 1000 + 300_000, since_ms: 1000 }
        );
        assert_eq!(poll_change(id, Some(&s), None, Credentials::Changed, true, 1000), PollChange::Stop);
        assert_eq!(
            poll_change(id, Some(&s), Some(&s), Credentials::Changed, true, 1000),
            PollChange::Resume { due_ms: 1000 }
        );
        assert_eq!(
            poll_change(id, Some(&s), Some(&s), Credentials::NewSite, true, 1000),
            PollChange::Start { shard: shard_of(id), due_ms: 1000 + 300_000, since_ms: 1000 },
            "another site: its changes from now"
        );
        assert_eq!(poll_change(id, Some(&s), Some(&s), Credentials::Same, true, 1000), PollChange::Keep);
        assert_eq!(poll_change(id, None, None, Credentials::Changed, true, 1000), PollChange::Keep);
        let one = EventSettings { interval_minutes: 1, ..s.clone() };
        assert_eq!(
            poll_change(id, Some(&s), Some(&one), Credentials::Same, true, 1000),
            PollChange::Reschedule { due_ms: 61_000 }
        );
        assert_eq!(
            poll_change(id, Some(&s), Some(&one), Credentials::Same, false, 1000),
            PollChange::Keep,
            "stopped polls stay stopped"
        );
        let filtered = EventSettings { filter_jql: Some("project = \"DEMO\"".into()), ..s.clone() };
        assert_eq!(
            poll_change(id, Some(&s), Some(&filtered), Credentials::Same, true, 1000),
            PollChange::Reschedule { due_ms: 1000 },
            "a new filter is asked at once"
        );
        assert!(shard_of(id).starts_with("DUE#") && shard_of(id).len() == 6);
    }
}
