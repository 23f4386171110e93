//! Configuration shared by every binary: where Redis is, which namespace, the Interakt
//! account and its rate plan, and the DLT SMS fallback.
//!
//! Each piece is a `clap::Args` struct that binaries flatten into their own commands, so a
//! flag and its environment variable are spelled once for all of them. Raw arguments are
//! turned into validated settings ([`RateLimit`], [`SmsSettings`]) once, at start-up;
//! nothing downstream re-reads the environment.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use crate::compose::{self, SmsSettings};
use crate::secret::Redacted;

pub const DEFAULT_BASE_URL: &str = "https://api.interakt.ai/v1/public";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_NAMESPACE: &str = "herald";

pub use crate::error::ConfigError;

/// Reads `.env` from the working directory when present. Variables already set win.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// The heading every command's `--help` shows the Redis connection flags under, after the
/// command's own flags.
pub const REDIS_HELP_HEADING: &str = "Redis connection";

/// Where a binary's own flags that every subcommand takes (`--log-format`, the producer's
/// `--tz`) sort in a subcommand's `--help`: after the subcommand's own flags.
pub const GLOBAL_DISPLAY_ORDER: usize = 900;

/// Where Redis is and which namespace of keys this deployment owns.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = REDIS_HELP_HEADING)]
pub struct RedisArgs {
    /// Redis URL: `redis://[[user]:password@]host:port[/db]`, or `rediss://...` for TLS.
    #[arg(long, env = "REDIS_URL", default_value = DEFAULT_REDIS_URL, global = true, hide_env_values = true)]
    pub redis_url: Redacted<String>,
    /// Redis Cluster seed nodes, comma-separated (`redis://host:port,...`, or `rediss://` for
    /// TLS); when set, every connection goes to the cluster and --redis-url is not used.
    #[arg(
        long,
        env = "REDIS_CLUSTER_NODES",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub redis_cluster_nodes: Vec<Redacted<String>>,
    /// Redis Sentinels, comma-separated (`redis://[user:password@]host:26379,...`, or
    /// `rediss://` for TLS to the Sentinels and the primary; the user and password are the
    /// Sentinels'); with --redis-sentinel-master, every connection goes to the primary they
    /// name (and to the new one after a failover) and --redis-url is not used.
    #[arg(
        long,
        env = "REDIS_SENTINEL_NODES",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub redis_sentinel_nodes: Vec<Redacted<String>>,
    /// The name the Sentinels monitor the primary under (`sentinel monitor NAME ...`).
    #[arg(long, env = "REDIS_SENTINEL_MASTER", global = true)]
    pub redis_sentinel_master: Option<String>,
    /// The ACL user on Redis's data nodes when the URLs name none: the primary found through
    /// the Sentinels (whose URLs carry the Sentinels' own user), or the server/cluster.
    #[arg(long, env = "REDIS_USERNAME", global = true)]
    pub redis_username: Option<String>,
    /// The password on Redis's data nodes when the URLs carry none (as --redis-username);
    /// given in both places, the two must agree.
    #[arg(long, env = "REDIS_PASSWORD", global = true, hide_env_values = true)]
    pub redis_password: Option<Redacted<String>>,
    /// PEM file of the CA that signed Redis's certificate, for `rediss://` with a private CA
    /// (default: the system's roots).
    #[arg(long, env = "REDIS_CA_CERT", global = true, value_name = "PEM")]
    pub redis_ca_cert: Option<std::path::PathBuf>,
    /// PEM file of the client certificate, for Redis servers that require one (mutual TLS);
    /// needs --redis-client-key.
    #[arg(long, env = "REDIS_CLIENT_CERT", global = true, value_name = "PEM")]
    pub redis_client_cert: Option<std::path::PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(long, env = "REDIS_CLIENT_KEY", global = true, value_name = "PEM")]
    pub redis_client_key: Option<std::path::PathBuf>,
    /// Key namespace; every key is `{NAMESPACE}:...` (one hash tag, so Lua works on Cluster).
    #[arg(long, env = "HERALD_NAMESPACE", default_value = DEFAULT_NAMESPACE, global = true)]
    pub namespace: String,
}

impl RedisArgs {
    /// The single server at `url` in `namespace`, with no TLS files: what a program that
    /// builds its settings directly (the demo) passes.
    pub fn single(url: Redacted<String>, namespace: impl Into<String>) -> RedisArgs {
        RedisArgs {
            redis_url: url,
            redis_cluster_nodes: Vec::new(),
            redis_sentinel_nodes: Vec::new(),
            redis_sentinel_master: None,
            redis_username: None,
            redis_password: None,
            redis_ca_cert: None,
            redis_client_cert: None,
            redis_client_key: None,
            namespace: namespace.into(),
        }
    }

    /// The cluster when seed nodes are given, else the primary of the Sentinels when they
    /// are given, else the single server at `--redis-url`.
    pub fn target(&self) -> crate::redis_pool::Target {
        let nodes: Vec<Redacted<String>> = self
            .redis_cluster_nodes
            .iter()
            .filter(|n| !n.expose().trim().is_empty())
            .cloned()
            .collect();
        let sentinels: Vec<Redacted<String>> = self
            .redis_sentinel_nodes
            .iter()
            .filter(|n| !n.expose().trim().is_empty())
            .cloned()
            .collect();
        let servers = if !nodes.is_empty() {
            crate::redis_pool::Servers::Cluster(nodes)
        } else if !sentinels.is_empty() {
            crate::redis_pool::Servers::Sentinel {
                nodes: sentinels,
                master: self.redis_sentinel_master.clone().unwrap_or_default(),
            }
        } else {
            crate::redis_pool::Servers::Single(self.redis_url.clone())
        };
        // An empty variable (`REDIS_CA_CERT=`) is no file.
        let file =
            |path: &Option<std::path::PathBuf>| path.clone().filter(|p| !p.as_os_str().is_empty());
        crate::redis_pool::Target {
            servers,
            tls: crate::redis_pool::TlsFiles {
                ca_cert: file(&self.redis_ca_cert),
                client_cert: file(&self.redis_client_cert),
                client_key: file(&self.redis_client_key),
            },
            // An empty variable is none, as for the files.
            auth: crate::redis_pool::Credentials {
                username: self.redis_username.clone().filter(|u| !u.is_empty()),
                password: self
                    .redis_password
                    .clone()
                    .filter(|p| !p.expose().is_empty()),
            },
        }
    }
}

/// Interakt's documented plans and their per-key limits.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// 300 requests a minute.
    Growth,
    /// 600 requests a minute.
    Advanced,
    /// Configured per account: needs --rate.
    Enterprise,
}

impl Plan {
    /// The plan's documented limit; `None` for enterprise, whose limit is per contract.
    pub fn rate(self) -> Option<RateLimit> {
        let per_minute = |n| RateLimit::new(n, Duration::from_secs(60));
        match self {
            Plan::Growth => per_minute(300),
            Plan::Advanced => per_minute(600),
            Plan::Enterprise => None,
        }
    }
}

/// `N` requests per `period`, in any sliding window of that length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    pub fn new(requests: u32, period: Duration) -> Option<RateLimit> {
        let requests = NonZeroU32::new(requests)?;
        (!period.is_zero()).then_some(RateLimit { requests, period })
    }

    /// The steady spacing between requests: `period / requests`.
    pub fn interval(&self) -> Duration {
        self.period / self.requests.get()
    }
}

impl FromStr for RateLimit {
    type Err = String;

    /// `300/1m`, `50/5s`, `10000/1h`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = "expected N/PERIOD, e.g. 300/1m or 50/5s";
        let (n, period) = s.split_once('/').ok_or_else(|| format!("{s:?}: {hint}"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {n:?} is not a count; {hint}"))?;
        let period = crate::duration::parse(period.trim())
            .map_err(|e| format!("{s:?}: bad period ({e}); {hint}"))?;
        RateLimit::new(n, period)
            .ok_or_else(|| format!("{s:?}: count and period must be above zero"))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.requests,
            humantime::format_duration(self.period)
        )
    }
}

/// The plan and an optional explicit rate, as operators give them.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RateArgs {
    /// Interakt plan; sets the rate limit unless --rate is given: growth 300/1m (when
    /// neither is given), advanced 600/1m, enterprise per contract (needs --rate).
    #[arg(long, env = "INTERAKT_PLAN", value_enum)]
    pub plan: Option<Plan>,
    /// Requests per window, shared by all replicas: N/PERIOD (300/1m, 50/5s). Overrides --plan;
    /// required for enterprise.
    #[arg(long = "rate", env = "INTERAKT_RATE_LIMIT")]
    pub rate: Option<RateLimit>,
}

impl RateArgs {
    /// The limit in force: `--rate` if given, else the plan's (growth when neither is).
    pub fn resolve(&self) -> Result<RateLimit, ConfigError> {
        if let Some(rate) = self.rate {
            return Ok(rate);
        }
        let plan = self.plan.unwrap_or(Plan::Growth);
        plan.rate().ok_or_else(|| {
            ConfigError::new(
                "INTERAKT_RATE_LIMIT (--rate)",
                "the enterprise plan's limit is per contract: give it, e.g. --rate 1200/1m",
            )
        })
    }
}

/// The Interakt account.
#[derive(clap::Args, Clone, Debug)]
pub struct InteraktArgs {
    /// API key from Settings > Developer Settings, sent as `Authorization: Basic <key>`;
    /// required.
    #[arg(long, env = "INTERAKT_API_KEY", hide_env_values = true)]
    pub api_key: Option<Redacted<String>>,
    /// Base URL of the public API, where `/rcs/message/` lives (the sandbox's:
    /// `http://127.0.0.1:8089/v1/public`).
    #[arg(long, env = "INTERAKT_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,
}

impl InteraktArgs {
    pub fn require_api_key(&self) -> Result<Redacted<String>, ConfigError> {
        match &self.api_key {
            Some(key) if !key.expose().trim().is_empty() => Ok(key.clone()),
            _ => Err(ConfigError::new(
                "INTERAKT_API_KEY (--api-key)",
                "is required: copy it from Interakt's Settings > Developer Settings",
            )),
        }
    }

    /// The send endpoint: `{base}/rcs/message/`.
    pub fn send_url(&self) -> Result<String, ConfigError> {
        let base = self.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError::new(
                "INTERAKT_BASE_URL (--base-url)",
                format!("is {base:?}; expected an http(s) URL such as {DEFAULT_BASE_URL}"),
            ));
        }
        Ok(format!("{base}/rcs/message/"))
    }
}

/// The DLT-registered SMS fallback. All of sender, entity and template ids, or none.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SmsArgs {
    /// DLT sender id (header), six letters or digits.
    #[arg(long, env = "DLT_SENDER_ID")]
    pub dlt_sender_id: Option<String>,
    /// DLT principal entity id.
    #[arg(long, env = "DLT_PE_ID")]
    pub dlt_pe_id: Option<String>,
    /// DLT template id of the OTP SMS.
    #[arg(long, env = "DLT_OTP_TEMPLATE_ID")]
    pub dlt_otp_template_id: Option<String>,
    /// DLT template id of the booking SMS.
    #[arg(long, env = "DLT_TEMPLATE_ID")]
    pub dlt_template_id: Option<String>,
    /// SMS provider name (ask Interakt support).
    #[arg(long, env = "SMS_PROVIDER_NAME", default_value = "default")]
    pub sms_provider_name: String,
    /// The OTP SMS text exactly as registered; `{{1}}` is the code.
    #[arg(long, env = "SMS_OTP_TEXT", default_value = compose::DEFAULT_OTP_SMS_TEXT)]
    pub sms_otp_text: String,
    /// The booking SMS text exactly as registered; `{{1}}`..`{{4}}` are service, date, time, id.
    #[arg(long, env = "SMS_BOOKING_TEXT", default_value = compose::DEFAULT_BOOKING_SMS_TEXT)]
    pub sms_booking_text: String,
    /// DLT template id of the reminder SMS. Optional: without it reminders go without SMS
    /// fallback (the worker says so at start-up).
    #[arg(long, env = "DLT_REMINDER_TEMPLATE_ID")]
    pub dlt_reminder_template_id: Option<String>,
    /// The reminder SMS text exactly as registered; `{{1}}`..`{{4}}` are service, date, time, id.
    #[arg(long, env = "SMS_REMINDER_TEXT", default_value = compose::DEFAULT_REMINDER_SMS_TEXT)]
    pub sms_reminder_text: String,
}

impl SmsArgs {
    /// `None` when no DLT setting is given (no SMS fallback); an error naming each missing
    /// or malformed variable when only some are.
    pub fn resolve(&self) -> Result<Option<SmsSettings>, ConfigError> {
        let fields = [
            ("DLT_SENDER_ID", &self.dlt_sender_id),
            ("DLT_PE_ID", &self.dlt_pe_id),
            ("DLT_OTP_TEMPLATE_ID", &self.dlt_otp_template_id),
            ("DLT_TEMPLATE_ID", &self.dlt_template_id),
        ];
        let missing: Vec<_> = fields
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if missing.len() == fields.len() {
            return Ok(None);
        }
        if !missing.is_empty() {
            return Err(ConfigError::new(
                missing.join(", "),
                "missing: the SMS fallback needs DLT_SENDER_ID, DLT_PE_ID, DLT_OTP_TEMPLATE_ID and DLT_TEMPLATE_ID together",
            ));
        }
        let get = |v: &Option<String>| v.clone().unwrap_or_default().trim().to_string();
        let settings = SmsSettings {
            sender_id: get(&self.dlt_sender_id),
            pe_id: get(&self.dlt_pe_id),
            provider_name: self.sms_provider_name.clone(),
            otp_template_id: get(&self.dlt_otp_template_id),
            booking_template_id: get(&self.dlt_template_id),
            otp_text: self.sms_otp_text.clone(),
            booking_text: self.sms_booking_text.clone(),
            reminder_template_id: self
                .dlt_reminder_template_id
                .as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string),
            reminder_text: self.sms_reminder_text.clone(),
        };
        check_sms_settings(&settings)?;
        Ok(Some(settings))
    }
}

/// Renders a sample OTP and booking with the settings and validates them, so a DLT id of the
/// wrong length or a text whose placeholders do not match is caught at start-up, named by
/// its environment variable. The sample number is only split, as a worker splits numbers
/// (libphonenumber's metadata stays unloaded in a worker: see [`crate::phone`]).
fn check_sms_settings(settings: &SmsSettings) -> Result<(), ConfigError> {
    use crate::validate::PhoneCheck;
    let otp = crate::job::Otp {
        phone: "+919999999999".into(),
        code: "123456".to_string().into(),
    };
    let booking = crate::job::Booking {
        phone: "+919999999999".into(),
        booking_id: "B1".into(),
        service: "Haircut".into(),
        date: "2026-01-01".into(),
        time: "10:00".into(),
        image_url: None,
    };
    let reminder = crate::job::Reminder {
        booking: booking.clone(),
        tz: crate::schedule::DEFAULT_TIMEZONE.into(),
    };
    let samples = [
        (
            "SMS_OTP_TEXT",
            "DLT_OTP_TEMPLATE_ID",
            compose::otp_request(&otp, Some(crate::job::DEFAULT_OTP_VALIDITY), Some(settings)),
        ),
        (
            "SMS_BOOKING_TEXT",
            "DLT_TEMPLATE_ID",
            compose::booking_request(&booking, Some(settings)),
        ),
        (
            "SMS_REMINDER_TEXT",
            "DLT_REMINDER_TEMPLATE_ID",
            compose::reminder_request(&reminder, None, Some(settings)),
        ),
    ];
    for (text_var, template_var, request) in samples {
        if let Err(err) = crate::validate::validate_request_with(&request, PhoneCheck::Split) {
            let v = &err.violations[0];
            let name = match v.path.rsplit('.').next().unwrap_or_default() {
                "sender_id" => "DLT_SENDER_ID",
                "pe_id" => "DLT_PE_ID",
                "dlt_te_id" => template_var,
                "provider_name" => "SMS_PROVIDER_NAME",
                _ => text_var,
            };
            return Err(ConfigError::new(name, v.reason.clone()));
        }
    }
    Ok(())
}

/// Parses a human duration (`10m`, `30s`, `1h 30m`): a flag, a job field, a form field. The
/// grammar is [`crate::duration`]'s, the one the OpenAPI document's pattern states.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); e.g. 30s, 10m, 1h 30m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let rate: RateLimit = "300/1m".parse().unwrap();
        assert_eq!(rate.requests.get(), 300);
        assert_eq!(rate.period, Duration::from_secs(60));
        assert_eq!(rate.interval(), Duration::from_millis(200));
        assert_eq!(rate.to_string(), "300/1m");
        assert_eq!(
            "50/5s".parse::<RateLimit>().unwrap().period,
            Duration::from_secs(5)
        );
        for bad in ["300", "x/1m", "0/1m", "10/0s", "10/soon"] {
            let err = bad.parse::<RateLimit>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn plans_map_to_their_limits() {
        let resolve = |plan, rate: Option<&str>| {
            RateArgs {
                plan,
                rate: rate.map(|r| r.parse().unwrap()),
            }
            .resolve()
        };
        assert_eq!(resolve(None, None).unwrap().to_string(), "300/1m");
        assert_eq!(
            resolve(Some(Plan::Advanced), None).unwrap().to_string(),
            "600/1m"
        );
        assert_eq!(
            resolve(Some(Plan::Growth), Some("50/5s"))
                .unwrap()
                .to_string(),
            "50/5s"
        );
        assert!(
            resolve(Some(Plan::Enterprise), None)
                .unwrap_err()
                .name
                .contains("INTERAKT_RATE_LIMIT")
        );
        assert_eq!(
            resolve(Some(Plan::Enterprise), Some("1200/1m"))
                .unwrap()
                .requests
                .get(),
            1200
        );
    }

    fn sms_args() -> SmsArgs {
        SmsArgs {
            dlt_sender_id: Some("HERALD".into()),
            dlt_pe_id: Some("1201159195599372920".into()),
            dlt_otp_template_id: Some("1107174012164676172".into()),
            dlt_template_id: Some("1107174012164676173".into()),
            sms_provider_name: "default".into(),
            sms_otp_text: compose::DEFAULT_OTP_SMS_TEXT.into(),
            sms_booking_text: compose::DEFAULT_BOOKING_SMS_TEXT.into(),
            dlt_reminder_template_id: Some("1107174012164676174".into()),
            sms_reminder_text: compose::DEFAULT_REMINDER_SMS_TEXT.into(),
        }
    }

    #[test]
    fn the_reminder_template_is_optional_and_checked_when_given() {
        let settings = SmsArgs {
            dlt_reminder_template_id: None,
            ..sms_args()
        }
        .resolve()
        .unwrap()
        .unwrap();
        assert_eq!(settings.reminder_template_id, None, "optional");
        let err = SmsArgs {
            sms_reminder_text: "Reminder: {{1}} on {{2}}".into(),
            ..sms_args()
        }
        .resolve()
        .unwrap_err();
        assert_eq!(err.name, "SMS_REMINDER_TEXT");
        let err = SmsArgs {
            dlt_reminder_template_id: Some("12".into()),
            ..sms_args()
        }
        .resolve()
        .unwrap_err();
        assert_eq!(err.name, "DLT_REMINDER_TEMPLATE_ID");
    }

    #[test]
    fn sms_settings_are_all_or_nothing_and_checked() {
        assert_eq!(
            SmsArgs {
                sms_provider_name: "default".into(),
                ..SmsArgs::default()
            }
            .resolve(),
            Ok(None)
        );
        assert!(sms_args().resolve().unwrap().is_some());
        let err = SmsArgs {
            dlt_pe_id: None,
            ..sms_args()
        }
        .resolve()
        .unwrap_err();
        assert_eq!(err.name, "DLT_PE_ID");
        let err = SmsArgs {
            dlt_pe_id: Some("12ab".into()),
            ..sms_args()
        }
        .resolve()
        .unwrap_err();
        assert_eq!(err.name, "DLT_PE_ID");
        let err = SmsArgs {
            sms_otp_text: "no placeholder".into(),
            ..sms_args()
        }
        .resolve()
        .unwrap_err();
        assert_eq!(err.name, "SMS_OTP_TEXT");
        let err = SmsArgs {
            dlt_template_id: Some("1".into()),
            ..sms_args()
        }
        .resolve()
        .unwrap_err();
        assert_eq!(err.name, "DLT_TEMPLATE_ID");
    }

    #[test]
    fn api_key_is_required_and_redacted() {
        let args = InteraktArgs {
            api_key: None,
            base_url: DEFAULT_BASE_URL.into(),
        };
        assert!(args.require_api_key().is_err());
        let args = InteraktArgs {
            api_key: Some("secret-key".to_string().into()),
            ..args
        };
        assert!(!format!("{args:?}").contains("secret-key"));
        assert_eq!(
            args.send_url().unwrap(),
            "https://api.interakt.ai/v1/public/rcs/message/"
        );
    }
}
