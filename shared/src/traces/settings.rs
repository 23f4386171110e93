//! OpenTelemetry's standard environment variables, read once at start-up into
//! [`TraceSettings`]: where spans go, what is sampled, how much may wait for export.
//!
//! A variable that is set but cannot work is a [`ConfigError`] naming it (the binaries exit
//! 2), never a warning and a silent default: an operator who set `OTEL_TRACES_SAMPLER_ARG=1%`
//! learns it at once. Unset variables take the specification's defaults, except the
//! endpoint: with none, tracing is off. Header values (often a collector's API key) never
//! appear in an error or in `Debug`. Pure: the environment comes in as a lookup function,
//! so every rule is tested without touching the process's.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::error::ConfigError;

use super::sampler::Sampling;

/// Where the collector is, for traces alone (used as it is).
pub const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// Where the collector is, for every signal (`/v1/traces` is added).
pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
const TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
const TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
const COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
const TRACES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
const BSP_QUEUE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
const BSP_BATCH: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
const BSP_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
const BSP_TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";

/// Every variable read, for a test that clears them (or a doc that lists them).
pub const VARIABLES: [&str; 20] = [
    TRACES_ENDPOINT,
    ENDPOINT,
    SDK_DISABLED,
    TRACES_EXPORTER,
    SERVICE_NAME,
    RESOURCE_ATTRIBUTES,
    PROTOCOL,
    TRACES_PROTOCOL,
    HEADERS,
    TRACES_HEADERS,
    TIMEOUT,
    TRACES_TIMEOUT,
    COMPRESSION,
    TRACES_COMPRESSION,
    SAMPLER,
    SAMPLER_ARG,
    BSP_QUEUE,
    BSP_BATCH,
    BSP_DELAY,
    BSP_TIMEOUT,
];

/// The specification's defaults.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_QUEUE: usize = 2048;
pub const DEFAULT_BATCH: usize = 512;
pub const DEFAULT_DELAY: Duration = Duration::from_secs(5);
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// How this process exports its spans; `None` from [`TraceSettings::read`] means it does
/// not (no endpoint, `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).
#[derive(Clone, PartialEq)]
pub struct TraceSettings {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub endpoint: String,
    /// `service.name` of every span.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, in order (the service name is not among them).
    pub resource: Vec<(String, String)>,
    /// Sent with every export; values are secrets (never printed).
    pub headers: HashMap<String, String>,
    /// One export request's bound (`OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub timeout: Duration,
    pub sampling: Sampling,
    /// Spans that may wait for export; one more is dropped and counted.
    pub queue: usize,
    /// Spans per export request.
    pub batch: usize,
    /// The longest a span waits before its batch is sent.
    pub delay: Duration,
    /// One export's bound, retries included (`OTEL_BSP_EXPORT_TIMEOUT`).
    pub export_timeout: Duration,
}

impl fmt::Debug for TraceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.headers.keys().collect();
        names.sort();
        f.debug_struct("TraceSettings")
            .field("endpoint", &self.endpoint)
            .field("service_name", &self.service_name)
            .field("resource", &self.resource)
            .field("headers (values hidden)", &names)
            .field("timeout", &self.timeout)
            .field("sampling", &self.sampling)
            .field("queue", &self.queue)
            .field("batch", &self.batch)
            .field("delay", &self.delay)
            .field("export_timeout", &self.export_timeout)
            .finish()
    }
}

impl TraceSettings {
    /// Reads the process's environment; `default_service` names the service when
    /// `OTEL_SERVICE_NAME` does not.
    pub fn from_env(default_service: &str) -> Result<Option<TraceSettings>, ConfigError> {
        TraceSettings::read(default_service, |name| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ConfigError::new(name, "is not valid UTF-8; set it again"))
            }
        })
    }

    /// Reads the variables through `lookup` (`Ok(None)`: unset).
    pub fn read(
        default_service: &str,
        lookup: impl Fn(&str) -> Result<Option<String>, ConfigError>,
    ) -> Result<Option<TraceSettings>, ConfigError> {
        // Set but empty counts as unset, as the specification says.
        let get = |name: &str| -> Result<Option<String>, ConfigError> {
            Ok(lookup(name)?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()))
        };
        let disabled = match get(SDK_DISABLED)? {
            None => false,
            Some(v) => parse_bool(SDK_DISABLED, &v)?,
        };
        let exporter = get(TRACES_EXPORTER)?;
        let exporting = match exporter.as_deref() {
            None | Some("otlp") => true,
            Some("none") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    TRACES_EXPORTER,
                    format!(
                        "is {other:?}; Herald exports traces over OTLP only: set otlp (the default) or none"
                    ),
                ));
            }
        };
        for name in [TRACES_PROTOCOL, PROTOCOL] {
            if let Some(protocol) = get(name)?
                && protocol != "http/protobuf"
            {
                return Err(ConfigError::new(
                    name,
                    format!(
                        "is {protocol:?}; Herald exports over OTLP/HTTP with protobuf only: set http/protobuf (a collector's port 4318) or unset it"
                    ),
                ));
            }
        }
        for name in [TRACES_COMPRESSION, COMPRESSION] {
            if let Some(compression) = get(name)?
                && compression != "none"
            {
                return Err(ConfigError::new(
                    name,
                    format!(
                        "is {compression:?}; Herald sends spans uncompressed: set none or unset it"
                    ),
                ));
            }
        }
        let endpoint = match (get(TRACES_ENDPOINT)?, get(ENDPOINT)?) {
            (Some(url), _) => Some(checked_url(TRACES_ENDPOINT, &url)?),
            (None, Some(base)) => {
                let base = checked_url(ENDPOINT, &base)?;
                Some(format!("{}/v1/traces", base.trim_end_matches('/')))
            }
            (None, None) => None,
        };
        let service_name = get(SERVICE_NAME)?.unwrap_or_else(|| default_service.to_string());
        let resource = match get(RESOURCE_ATTRIBUTES)? {
            Some(list) => key_values(RESOURCE_ATTRIBUTES, &list)?,
            None => Vec::new(),
        };
        let mut headers = HashMap::new();
        // The general variable first: the traces' own wins where both name a header.
        for name in [HEADERS, TRACES_HEADERS] {
            if let Some(list) = get(name)? {
                for (key, value) in key_values(name, &list)? {
                    check_header(name, &key, &value)?;
                    headers.insert(key, value);
                }
            }
        }
        let timeout = match get(TRACES_TIMEOUT)? {
            Some(ms) => millis(TRACES_TIMEOUT, &ms)?,
            None => match get(TIMEOUT)? {
                Some(ms) => millis(TIMEOUT, &ms)?,
                None => DEFAULT_TIMEOUT,
            },
        };
        let sampling = Sampling::parse(get(SAMPLER)?.as_deref(), get(SAMPLER_ARG)?.as_deref())?;
        let queue = count(BSP_QUEUE, get(BSP_QUEUE)?, DEFAULT_QUEUE)?;
        let batch = count(BSP_BATCH, get(BSP_BATCH)?, DEFAULT_BATCH.min(queue))?;
        if batch > queue {
            return Err(ConfigError::new(
                BSP_BATCH,
                format!(
                    "is {batch}, more than {BSP_QUEUE} ({queue}); a batch is taken from the queue: make it at most {queue}"
                ),
            ));
        }
        let delay = match get(BSP_DELAY)? {
            Some(ms) => millis(BSP_DELAY, &ms)?,
            None => DEFAULT_DELAY,
        };
        let export_timeout = match get(BSP_TIMEOUT)? {
            Some(ms) => millis(BSP_TIMEOUT, &ms)?,
            None => DEFAULT_EXPORT_TIMEOUT,
        };
        let Some(endpoint) = endpoint.filter(|_| !disabled && exporting) else {
            return Ok(None);
        };
        Ok(Some(TraceSettings {
            endpoint,
            service_name,
            resource,
            headers,
            timeout,
            sampling,
            queue,
            batch,
            delay,
            export_timeout,
        }))
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::new(
            name,
            format!("is {value:?}; expected true or false"),
        )),
    }
}

/// An http(s) URL with a host, as given (a collector's, e.g. `http://otel-collector:4318`).
fn checked_url(name: &str, url: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            name,
            format!(
                "is {url:?}: {why}; expected an http(s) URL such as http://otel-collector:4318"
            ),
        )
    };
    let uri: axum::http::Uri = url.parse().map_err(|err| bad(&format!("{err}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("it does not start with http:// or https://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if uri.query().is_some() {
        return Err(bad("it has a query; give the collector's address alone"));
    }
    Ok(url.to_string())
}

/// `key=value,key=value` with percent-encoded values (W3C Baggage's format, which the
/// headers and resource variables use); an error names the variable and the member's key
/// (never its value: a header's is often an API key).
fn key_values(name: &str, list: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, member) in list.split(',').enumerate() {
        let member = member.trim();
        if member.is_empty() {
            continue;
        }
        let Some((key, value)) = member.split_once('=') else {
            return Err(ConfigError::new(
                name,
                format!(
                    "member {} has no '=': expected key=value pairs separated by commas",
                    i + 1
                ),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(ConfigError::new(
                name,
                format!("member {} has an empty key", i + 1),
            ));
        }
        let value = percent_decode(value.trim()).ok_or_else(|| {
            ConfigError::new(
                name,
                format!(
                    "the value of {key:?} is not valid percent-encoding (%XX, UTF-8): encode it again"
                ),
            )
        })?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn check_header(name: &str, key: &str, value: &str) -> Result<(), ConfigError> {
    if axum::http::HeaderName::from_bytes(key.as_bytes()).is_err() {
        return Err(ConfigError::new(
            name,
            format!("{key:?} is not a valid HTTP header name"),
        ));
    }
    if axum::http::HeaderValue::from_str(value).is_err() {
        return Err(ConfigError::new(
            name,
            format!("the value of {key:?} is not a valid HTTP header value (control characters?)"),
        ));
    }
    Ok(())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn millis(name: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            ConfigError::new(
                name,
                format!("is {value:?}; expected whole milliseconds, e.g. 10000"),
            )
        })
}

fn count(name: &str, value: Option<String>, default: usize) -> Result<usize, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ConfigError::new(
            name,
            format!("is {value:?}; expected a whole number of spans, at least 1"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Vars<'a> = &'a [(&'a str, &'a str)];

    fn read(vars: &[(&str, &str)]) -> Result<Option<TraceSettings>, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceSettings::read("herald-worker", |name| Ok(vars.get(name).cloned()))
    }

    fn on(vars: &[(&str, &str)]) -> TraceSettings {
        let mut all = vec![(ENDPOINT, "http://collector:4318")];
        all.extend_from_slice(vars);
        read(&all).unwrap().expect("on")
    }

    #[test]
    fn no_endpoint_means_off_and_an_endpoint_takes_the_specifications_defaults() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&[(ENDPOINT, "")]).unwrap(), None, "empty is unset");
        let settings = on(&[]);
        assert_eq!(settings.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(settings.service_name, "herald-worker");
        assert_eq!(settings.timeout, DEFAULT_TIMEOUT);
        assert_eq!(settings.sampling, Sampling::ParentBasedAlwaysOn);
        assert_eq!(
            (settings.queue, settings.batch, settings.delay),
            (2048, 512, DEFAULT_DELAY)
        );
        assert_eq!(settings.export_timeout, DEFAULT_EXPORT_TIMEOUT);
    }

    #[test]
    fn the_traces_endpoint_is_used_as_it_is_and_wins() {
        let settings = on(&[(TRACES_ENDPOINT, "https://otlp.example.com/custom/path")]);
        assert_eq!(settings.endpoint, "https://otlp.example.com/custom/path");
        let settings = read(&[(ENDPOINT, "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(settings.endpoint, "http://collector:4318/v1/traces");
    }

    #[test]
    fn switched_off_by_the_standard_variables() {
        assert_eq!(
            read(&[(ENDPOINT, "http://c:4318"), (SDK_DISABLED, "true")]).unwrap(),
            None
        );
        assert_eq!(
            read(&[(ENDPOINT, "http://c:4318"), (TRACES_EXPORTER, "none")]).unwrap(),
            None
        );
        assert!(
            read(&[(ENDPOINT, "http://c:4318"), (SDK_DISABLED, "FALSE")])
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn every_malformed_variable_is_named_with_the_fix() {
        // (the variables set, the one the error must name, a word of the fix)
        let cases: &[(Vars, &str, &str)] = &[
            (&[(ENDPOINT, "collector:4318")], ENDPOINT, "http(s) URL"),
            (&[(ENDPOINT, "ftp://collector")], ENDPOINT, "http://"),
            (
                &[(TRACES_ENDPOINT, "http://")],
                TRACES_ENDPOINT,
                "http(s) URL",
            ),
            (
                &[(TRACES_ENDPOINT, "http://c:4318/v1/traces?x=1")],
                TRACES_ENDPOINT,
                "query",
            ),
            (&[(SDK_DISABLED, "yes")], SDK_DISABLED, "true or false"),
            (&[(TRACES_EXPORTER, "jaeger")], TRACES_EXPORTER, "otlp"),
            (&[(PROTOCOL, "grpc")], PROTOCOL, "http/protobuf"),
            (
                &[(TRACES_PROTOCOL, "http/json")],
                TRACES_PROTOCOL,
                "http/protobuf",
            ),
            (&[(COMPRESSION, "gzip")], COMPRESSION, "none"),
            (&[(TIMEOUT, "10s")], TIMEOUT, "milliseconds"),
            (&[(TRACES_TIMEOUT, "-1")], TRACES_TIMEOUT, "milliseconds"),
            (
                &[(SAMPLER, "sometimes")],
                SAMPLER,
                "parentbased_traceidratio",
            ),
            (
                &[(SAMPLER, "traceidratio"), (SAMPLER_ARG, "1%")],
                SAMPLER_ARG,
                "0.01",
            ),
            (
                &[(SAMPLER, "traceidratio"), (SAMPLER_ARG, "2")],
                SAMPLER_ARG,
                "between 0 and 1",
            ),
            (&[(BSP_QUEUE, "0")], BSP_QUEUE, "at least 1"),
            (&[(BSP_BATCH, "many")], BSP_BATCH, "whole number"),
            (
                &[(BSP_QUEUE, "10"), (BSP_BATCH, "20")],
                BSP_BATCH,
                "at most 10",
            ),
            (&[(BSP_DELAY, "5 s")], BSP_DELAY, "milliseconds"),
            (&[(BSP_TIMEOUT, "x")], BSP_TIMEOUT, "milliseconds"),
            (&[(HEADERS, "api-key")], HEADERS, "no '='"),
            (
                &[(TRACES_HEADERS, "bad header=x")],
                TRACES_HEADERS,
                "header name",
            ),
            (&[(HEADERS, "k=%zz")], HEADERS, "percent-encoding"),
            (
                &[(RESOURCE_ATTRIBUTES, "=x")],
                RESOURCE_ATTRIBUTES,
                "empty key",
            ),
        ];
        for (vars, named, fix) in cases {
            let mut all = vec![(ENDPOINT, "http://collector:4318")];
            all.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
            all.extend_from_slice(vars);
            let err = read(&all).unwrap_err();
            assert_eq!(err.name, *named, "{vars:?}: {err}");
            assert!(err.reason.contains(fix), "{vars:?}: {err}");
        }
    }

    /// Even when tracing is off, a malformed variable is reported: whoever set it meant
    /// something.
    #[test]
    fn malformed_variables_are_reported_without_an_endpoint_too() {
        let err = read(&[(SAMPLER, "half")]).unwrap_err();
        assert_eq!(err.name, SAMPLER);
    }

    #[test]
    fn headers_and_resource_attributes_are_decoded_and_header_values_never_shown() {
        let settings = on(&[
            (HEADERS, "api-key=s3cr%3Dt, x-team = herald"),
            (TRACES_HEADERS, "api-key=traces-only"),
            (
                RESOURCE_ATTRIBUTES,
                "deployment.environment=prod,k8s.pod.name=w%2D1",
            ),
        ]);
        assert_eq!(
            settings.headers["api-key"], "traces-only",
            "the traces' own wins"
        );
        assert_eq!(settings.headers["x-team"], "herald");
        assert_eq!(
            settings.resource,
            [
                ("deployment.environment".to_string(), "prod".to_string()),
                ("k8s.pod.name".to_string(), "w-1".to_string())
            ]
        );
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("traces-only") && shown.contains("api-key"),
            "{shown}"
        );
        let err = read(&[(HEADERS, "authorization=Bearer%zzsecret")]).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
