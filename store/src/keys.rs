//! Every Redis key Herald uses, in one place.
//!
//! All keys of a namespace share one hash tag, `{namespace}`, so they live in one Redis
//! Cluster slot and the Lua scripts that touch several of them at once (idempotent enqueue,
//! moving due retries, dead-lettering) run on Cluster unchanged.

use herald_shared::config::ConfigError;
use herald_shared::job::Lane;

/// The consumer group every worker replica joins on each lane.
pub const WORKER_GROUP: &str = "workers";

/// How long a sent marker is kept: far longer than any redelivery can take.
pub const SENT_MARKER_TTL_SECS: u64 = 7 * 24 * 3600;

/// How long an idempotency key holds its job once the job has finished (sent, dead,
/// expired) unless the producer is configured otherwise; while the job is pending the key
/// holds it however long that is.
pub const DEFAULT_IDEMPOTENCY_WINDOW: std::time::Duration =
    std::time::Duration::from_secs(24 * 60 * 60);

/// The one field of a lane's stream entry: the job envelope as JSON ([`herald_shared::Job::to_json`]).
pub const JOB_FIELD: &str = "job";

/// A counter of the stats hash ([`Keys::stats`]), kept per lane under `<name>:<lane>`
/// (`sent:otp`). The names are a storage format read by `status`, dashboards and the demo:
/// a rename is a compile error here, never a counter silently starting again from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stat {
    /// Jobs sent (Interakt answered 200).
    Sent,
    /// Retries scheduled after a transient failure.
    Retried,
    /// Retries scheduled after a 429.
    RateLimited,
    /// Jobs dead-lettered.
    Dead,
    /// Sent messages Interakt reported delivered, read, or revoked (each counted once).
    Delivered,
    Read,
    Revoked,
    /// Sent messages Interakt tried to withdraw and could not.
    RevokeFailed,
    /// Jobs cancelled (or superseded) before their send began (the cancel scripts).
    Cancelled,
}

impl Stat {
    pub const ALL: [Stat; 9] = [
        Stat::Sent,
        Stat::Retried,
        Stat::RateLimited,
        Stat::Dead,
        Stat::Delivered,
        Stat::Read,
        Stat::Revoked,
        Stat::RevokeFailed,
        Stat::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Stat::Sent => "sent",
            Stat::Retried => "retried",
            Stat::RateLimited => "rate_limited",
            Stat::Dead => "dead",
            Stat::Delivered => "delivered",
            Stat::Read => "read",
            Stat::Revoked => "revoked",
            Stat::RevokeFailed => "revoke_failed",
            Stat::Cancelled => "cancelled",
        }
    }

    /// The field of the stats hash: `sent:otp`.
    pub fn field(self, lane: Lane) -> String {
        self.field_for(lane.as_str())
    }

    /// The field for a lane known only by the name a record holds (the message index).
    pub fn field_for(self, lane: &str) -> String {
        format!("{}:{lane}", self.as_str())
    }
}

/// Key names of one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// `{herald}`: the hash-tagged prefix.
    prefix: String,
}

impl Keys {
    /// A namespace is letters, digits, `-`, `_` and `.`: no braces (they would break the
    /// hash tag) and no `:` (the separator).
    pub fn new(namespace: &str) -> Result<Keys, ConfigError> {
        let ok = !namespace.is_empty()
            && namespace.len() <= 64
            && namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(ConfigError::new(
                "HERALD_NAMESPACE (--namespace)",
                format!("is {namespace:?}; use 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }
        Ok(Keys {
            prefix: format!("{{{namespace}}}"),
        })
    }

    /// The pattern every key of this namespace matches, as an ACL key pattern writes it:
    /// `{herald}:*`.
    pub fn pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }

    /// `{prefix}:` then `parts`, in one allocation of the exact size: every job's settle
    /// builds a few of these, so no `format!` (which grows its buffer as it goes).
    fn key(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        key.push(':');
        for part in parts {
            key.push_str(part);
        }
        key
    }

    /// The namespace's hash tag, `{herald}`: every key of the namespace is in its slot.
    pub fn tag(&self) -> &str {
        &self.prefix
    }

    /// A `SCAN`/`KEYS` pattern matching every key of the namespace.
    pub fn all_pattern(&self) -> String {
        self.key(&["*"])
    }

    /// A `SCAN`/`KEYS` pattern matching every job's record.
    pub fn job_status_pattern(&self) -> String {
        self.key(&["job:*"])
    }

    /// A key of the namespace that no Herald component reads or writes, for tools and tests
    /// that need one in the namespace's slot (`test:<name>`).
    pub fn scratch(&self, name: &str) -> String {
        self.key(&["test:", name])
    }

    /// Stream of jobs waiting on a lane: the default tenant's (and every job's enqueued
    /// before tenants existed).
    pub fn lane(&self, lane: Lane) -> String {
        self.key(&["lane:", lane.as_str()])
    }

    /// Stream of the jobs of `tenant` waiting on `lane`: the lane's own stream for the
    /// default tenant, `lane:<lane>:t:<tenant>` for any other (`tenant.lua`'s `stream_of`
    /// names them the same way).
    pub fn lane_of(&self, lane: Lane, tenant: &str) -> String {
        if tenant.is_empty() || tenant == herald_shared::job::Tenant::DEFAULT {
            return self.lane(lane);
        }
        self.key(&["lane:", lane.as_str(), ":t:", tenant])
    }

    /// The tenants of `lane` with jobs not yet read, in turn order: a sorted set of tenant
    /// names scored by virtual time (jobs read / weight), lowest first.
    pub fn lane_turns(&self, lane: Lane) -> String {
        self.key(&["lane:", lane.as_str(), ":turns"])
    }

    /// The tenants of `lane` other than the default whose stream exists (a set), for
    /// recovery and `status` to visit.
    pub fn lane_streams(&self, lane: Lane) -> String {
        self.key(&["lane:", lane.as_str(), ":streams"])
    }

    /// Rung when a tenant of `lane` comes to have jobs to read (a short stream): what idle
    /// replicas block on.
    pub fn lane_bell(&self, lane: Lane) -> String {
        self.key(&["lane:", lane.as_str(), ":bell"])
    }

    /// The prefix every key of the namespace starts with (`{herald}:`), for scripts that
    /// name a tenant's stream or a lane's sets themselves (`tenant.lua`).
    pub fn prefix(&self) -> String {
        self.key(&[])
    }

    /// An idempotency key's claim: holds `<first job id>:<content fingerprint>` (the id alone
    /// when written before fingerprints) for the key's window.
    pub fn idempotency(&self, key: &str) -> String {
        self.key(&["idem:", key])
    }

    /// A lane's jobs waiting for a retry: sorted set of job JSON scored by when each is due
    /// (ms, Redis clock).
    pub fn delayed(&self, lane: Lane) -> String {
        self.key(&["delayed:", lane.as_str()])
    }

    /// A lane's jobs scheduled to go out later (`send_at`): sorted set of job ids scored by
    /// when each is due (ms, Unix). The bodies are in [`Keys::scheduled_jobs`], once.
    pub fn scheduled(&self, lane: Lane) -> String {
        self.key(&["scheduled:", lane.as_str()])
    }

    /// The bodies of scheduled jobs: hash of job id to job JSON.
    pub fn scheduled_jobs(&self) -> String {
        self.key(&["scheduled:jobs"])
    }

    /// A replace key's current job (string: the id of the last job enqueued under it), so a
    /// newer job cancels it while it is unsent.
    pub fn replace(&self, key: &str) -> String {
        self.key(&["replace:", key])
    }

    /// The prefix of [`Keys::job_status`], for scripts that name a job's record by its id
    /// (the job a replace key names; the job a begin-send is about).
    pub fn job_status_prefix(&self) -> String {
        self.key(&["job:"])
    }

    /// Hash of dead letters by job id.
    pub fn dead(&self) -> String {
        self.key(&["dead"])
    }

    /// Dead OTP letters whose code is still kept, scored by their deadline (ms, Unix): the
    /// code is erased once it passes.
    pub fn dead_codes(&self) -> String {
        self.key(&["dead:codes"])
    }

    /// A lane's dead letter ids, scored by when they died (ms): newest-first listing.
    pub fn dead_index(&self, lane: Lane) -> String {
        self.key(&["dead:index:", lane.as_str()])
    }

    /// Marker that a job was sent (value: Interakt's message id), checked before a send so a
    /// redelivered job is not sent twice. Expires after [`SENT_MARKER_TTL_SECS`].
    pub fn sent(&self, job_id: &str) -> String {
        self.key(&["sent:", job_id])
    }

    /// The shared rate-limit window (sorted set of admitted request times).
    pub fn rate_window(&self) -> String {
        self.key(&["rate:window"])
    }

    /// A marker each durable write sets last, so `WAIT` covers every write before it (a
    /// duplicate enqueue writes nothing else): see [`crate::durability`].
    pub fn replicated(&self) -> String {
        self.key(&["replicated"])
    }

    /// The shared cool-down after a 429: every replica waits until it expires.
    pub fn cooldown(&self) -> String {
        self.key(&["rate:cooldown"])
    }

    /// The OTPs' own sliding log (their share of [`Keys::rate_window`]).
    pub fn rate_window_otp(&self) -> String {
        self.key(&["rate:window:otp"])
    }

    /// The shared budget's state (hash): `configured` N, `effective` N after 429 episodes,
    /// `tat` (the pacing's next token, us, Redis clock), `episode_until`, `streak`.
    pub fn rate_state(&self) -> String {
        self.key(&["rate:state"])
    }

    /// Set (with a short TTL) while bookings are asking for tokens: OTPs then leave them
    /// their share.
    pub fn bookings_waiting(&self) -> String {
        self.key(&["rate:bookings-waiting"])
    }

    /// The replicas whose OTPs found the shared log full (sorted set, scored by when each
    /// claim lapses): they go first for the next tokens that free, before any booking.
    pub fn otp_first(&self) -> String {
        self.key(&["rate:otp-first"])
    }

    /// Counters by lane ([`Stat`]): sent, retried, rate-limited, dead, delivered, read,
    /// revoked.
    pub fn stats(&self) -> String {
        self.key(&["stats"])
    }

    /// Live consumers' heartbeats (sorted set scored by last beat, ms).
    pub fn consumers(&self) -> String {
        self.key(&["consumers"])
    }

    /// A job's record: its state (`state`: scheduled, queued, sending, cancelled, ... the
    /// one place a cancel and the send path's last check meet) and timeline (RFC 3339
    /// timestamps and details: enqueued, attempts, sent, delivered, read, revoked, dead,
    /// cancelled), for `track`. Written by the enqueue script, the cancel script, the
    /// begin-send script, the settle scripts and the webhook processor; expires
    /// [`TIMELINE_TTL_SECS`] after its last write (a scheduled job's, that long after it is
    /// due).
    pub fn job_status(&self, job_id: &str) -> String {
        self.key(&["job:", job_id])
    }

    /// What Herald knows of one message Interakt accepted (hash: job id, lane, masked phone,
    /// sent time), keyed by Interakt's message id, which webhook events name. Expires with the
    /// job's timeline.
    pub fn message(&self, message_id: &str) -> String {
        self.key(&["msg:", message_id])
    }

    /// Webhook events as received and not yet processed (stream, one `event` field of raw
    /// JSON). Entries are deleted once processed, never trimmed.
    pub fn webhook_events(&self) -> String {
        self.key(&["webhook:events"])
    }

    /// A webhook event's de-duplication marker; expires after [`WEBHOOK_DEDUP_TTL_SECS`].
    pub fn webhook_seen(&self, dedup_key: &str) -> String {
        self.key(&["webhook:seen:", dedup_key])
    }

    /// Webhook events Herald does not act on (unknown entity or event types, and objects that
    /// are not events), kept for people to look at; capped at [`UNHANDLED_MAX_LEN`] entries.
    pub fn webhook_unhandled(&self) -> String {
        self.key(&["webhook:unhandled"])
    }

    /// User replies and suggestion taps, for backend services' own consumer groups.
    pub fn inbound(&self) -> String {
        self.key(&["inbound"])
    }

    /// The jobs enqueued for one booking (set of job ids), so an operator finds them by the
    /// booking id; expires [`TIMELINE_TTL_SECS`] after the booking's last enqueue.
    pub fn booking(&self, booking_id: &str) -> String {
        self.key(&["booking:", booking_id])
    }

    /// Sends per live consumer since it started (hash: consumer name -> count), written by
    /// each replica's heartbeat; a consumer's field goes with its heartbeat.
    pub fn consumer_sends(&self) -> String {
        self.key(&["consumers:sends"])
    }

    /// Chart history in 10 s buckets for one Unix hour (see [`crate::history`]).
    pub fn history_fine(&self, hour: u64) -> String {
        self.key(&["history:10s:", &hour.to_string()])
    }

    /// Chart history in 5-minute buckets for one Unix day (see [`crate::history`]).
    pub fn history_coarse(&self, day: u64) -> String {
        self.key(&["history:5m:", &day.to_string()])
    }

    /// OTP latency histograms per minute for one Unix hour (see [`crate::history`]).
    pub fn history_latency(&self, hour: u64) -> String {
        self.key(&["history:otp:", &hour.to_string()])
    }

    // The OTP guard's keys (`guard.lua`, [`crate::guard`]): counts that expire, and the
    // blocks. A refused OTP writes none of them but its refusal's count.

    /// Everything the OTP guard knows of one prefix (`+91987654`: a number without its last
    /// four digits), a hash: whether and why it is blocked, its OTPs in the per-prefix
    /// window, its sends and verifications over the conversion window, and each of its
    /// numbers' accepted OTPs in the per-number window (field `n<last digits>`). Expires once
    /// the newest of those no longer matters (`guard.lua` says when).
    pub fn guard_prefix(&self, prefix: &str) -> String {
        self.key(&["guard:p:", prefix])
    }

    /// The blocked prefixes (sorted set scored by when each block ends, ms, Unix): what
    /// `status`, `guard list` and the dashboard list.
    pub fn guard_blocked(&self) -> String {
        self.key(&["guard:blocked"])
    }

    /// The OTP guard's refusals counted per rule and minute for one Unix hour (hash
    /// `<rule>:<minute>` to a count), kept two hours: `status` sums the last sixty minutes.
    pub fn guard_refused(&self, hour: u64) -> String {
        self.key(&["guard:refused:", &hour.to_string()])
    }

    /// Set (no expiry) the first time the backend reports a verified OTP: the conversion rule
    /// applies only once it is.
    pub fn guard_reports(&self) -> String {
        self.key(&["guard:reports"])
    }

    // The operator dashboard's own keys: its sessions, the secret that signs their cookies,
    // failed logins. Written and read only by herald-dashboard (`herald_dashboard::session`,
    // `herald_dashboard::throttle`); kept together, in this one block.

    /// The secret that signs the dashboard's session cookies and CSRF tokens, unless
    /// `HERALD_DASHBOARD_SECRET` gives one: 64 hex digits of a random 32-byte key, created
    /// once by the first replica that needs it (`SET NX`) and read by every other, so a
    /// cookie one replica issued is checked alike by all. No TTL. Deleting it ends every
    /// session (the next login makes a new one; replicas read it again when a cookie does not
    /// check against the key they hold).
    pub fn dashboard_secret(&self) -> String {
        self.key(&["dashboard:secret"])
    }

    /// One dashboard session, by the random id its cookie carries (hash: `created`, `seen`:
    /// Unix seconds on the dashboard's clock; `token`: a keyed fingerprint of the login
    /// token, never the token). Deleted by logout, and when found idle or too old; its TTL
    /// is what is left of it, so an abandoned one goes by itself.
    pub fn dashboard_session(&self, id: &str) -> String {
        self.key(&["dashboard:session:", id])
    }

    /// Failed dashboard logins from one client address (its IP, as the dashboard's socket
    /// sees it): a counter that expires a fixed time after the first failure.
    pub fn dashboard_login_failures(&self, client: &str) -> String {
        self.key(&["dashboard:login-failures:", client])
    }
}

/// How long a job's timeline and its message index entry are kept after the last write.
pub const TIMELINE_TTL_SECS: u64 = SENT_MARKER_TTL_SECS;

/// How much longer than [`TIMELINE_TTL_SECS`] the enqueue first keeps a job's record (after
/// it is due, for a scheduled one), so that the settle of a send within that time finds the
/// record kept long enough after the send already and leaves its expiry alone: a `PTTL` in
/// place of an `EXPIRE` on most sends (`record_kept` in `record.lua`).
pub const RECORD_TTL_SLACK_SECS: u64 = 3600;

/// How long a webhook event's de-duplication marker is kept: Interakt redelivers within
/// minutes to hours, never days later.
pub const WEBHOOK_DEDUP_TTL_SECS: u64 = 3 * 24 * 3600;

/// The consumer group of webhook processors on [`Keys::webhook_events`].
pub const WEBHOOK_GROUP: &str = "webhook-processors";

/// The one field of a [`Keys::webhook_events`] entry: the event's JSON as received.
pub const EVENT_FIELD: &str = "event";

/// Approximate cap of [`Keys::webhook_unhandled`] (it is processed already: trimming loses
/// nothing Herald needs).
pub const UNHANDLED_MAX_LEN: u64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_named_as_they_always_were() {
        let fields: Vec<String> = Stat::ALL.iter().map(|s| s.field(Lane::Otp)).collect();
        assert_eq!(
            fields,
            [
                "sent:otp",
                "retried:otp",
                "rate_limited:otp",
                "dead:otp",
                "delivered:otp",
                "read:otp",
                "revoked:otp",
                "revoke_failed:otp",
                "cancelled:otp"
            ]
        );
    }

    #[test]
    fn every_key_shares_the_namespace_hash_tag() {
        let keys = Keys::new("herald").unwrap();
        for key in [
            keys.lane(Lane::Otp),
            keys.lane(Lane::Booking),
            keys.idempotency("booking:B1:confirmation"),
            keys.delayed(Lane::Otp),
            keys.scheduled(Lane::Booking),
            keys.scheduled_jobs(),
            keys.replace("otp:+919812345678"),
            keys.job_status_prefix(),
            keys.dead(),
            keys.dead_codes(),
            keys.dead_index(Lane::Booking),
            keys.sent("x"),
            keys.rate_window(),
            keys.cooldown(),
            keys.rate_window_otp(),
            keys.rate_state(),
            keys.bookings_waiting(),
            keys.otp_first(),
            keys.stats(),
            keys.consumers(),
            keys.job_status("x"),
            keys.message("77573603-2d32-481b-9442-c1ae5eace4a9"),
            keys.webhook_events(),
            keys.webhook_seen("event:1"),
            keys.webhook_unhandled(),
            keys.inbound(),
            keys.booking("B123"),
            keys.consumer_sends(),
            keys.history_fine(1),
            keys.history_coarse(1),
            keys.history_latency(1),
            keys.dashboard_secret(),
            keys.dashboard_session("0123abcd"),
            keys.dashboard_login_failures("::1"),
            keys.guard_prefix("+91987654"),
            keys.guard_blocked(),
            keys.guard_refused(1),
            keys.guard_reports(),
        ] {
            assert!(key.starts_with("{herald}:"), "{key}");
        }
        assert_eq!(keys.lane(Lane::Otp), "{herald}:lane:otp");
    }

    #[test]
    fn namespaces_that_break_the_tag_are_refused() {
        for bad in ["", "a{b", "a}b", "a:b", "a b"] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
    }
}
