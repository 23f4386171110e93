//! Which spans are recorded: `OTEL_TRACES_SAMPLER` and its argument, and one rule of
//! Herald's on top of the specification's parent-based samplers: a span with no parent that
//! links to the context a job was created in (the worker's `process`, the webhook's
//! `receive`) follows that context's decision, as a child follows its parent's. A job's
//! creation, sends and delivery reports are then recorded together or not at all, whatever
//! the ratio: at 1%, one job in a hundred is traced end to end, not one span in a hundred.
//!
//! Decides only; never records or exports anything.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample};

use crate::error::ConfigError;

const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";

/// `OTEL_TRACES_SAMPLER`'s values Herald knows, with their ratio where they take one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    /// The default.
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl Sampling {
    /// From the two variables' values (`None`: unset). A ratio sampler without an argument
    /// takes 1.0, as the specification says; an argument that is not a number from 0 to 1
    /// is an error naming it.
    pub fn parse(sampler: Option<&str>, arg: Option<&str>) -> Result<Sampling, ConfigError> {
        let ratio = || -> Result<f64, ConfigError> {
            let Some(arg) = arg else { return Ok(1.0) };
            match arg.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                Ok(_) => Err(ConfigError::new(
                    SAMPLER_ARG,
                    format!("is {arg}; a ratio is between 0 and 1 (0.01 samples 1% of traces)"),
                )),
                Err(_) => Err(ConfigError::new(
                    SAMPLER_ARG,
                    format!("is {arg:?}; expected a ratio such as 0.01 (1% of traces)"),
                )),
            }
        };
        Ok(match sampler.unwrap_or("parentbased_always_on") {
            "always_on" => Sampling::AlwaysOn,
            "always_off" => Sampling::AlwaysOff,
            "traceidratio" => Sampling::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Sampling::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampling::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampling::ParentBasedTraceIdRatio(ratio()?),
            other => {
                return Err(ConfigError::new(
                    SAMPLER,
                    format!(
                        "is {other:?}; expected always_on, always_off, traceidratio, parentbased_always_on (the default), parentbased_always_off or parentbased_traceidratio"
                    ),
                ));
            }
        })
    }

    /// The sampler that decides as this says.
    pub fn sampler(self) -> JobSampler {
        let root = |sampling| match sampling {
            Sampling::AlwaysOn | Sampling::ParentBasedAlwaysOn => Sampler::AlwaysOn,
            Sampling::AlwaysOff | Sampling::ParentBasedAlwaysOff => Sampler::AlwaysOff,
            Sampling::TraceIdRatio(r) | Sampling::ParentBasedTraceIdRatio(r) => {
                Sampler::TraceIdRatioBased(r)
            }
        };
        let parent_based = matches!(
            self,
            Sampling::ParentBasedAlwaysOn
                | Sampling::ParentBasedAlwaysOff
                | Sampling::ParentBasedTraceIdRatio(_)
        );
        JobSampler {
            root: if parent_based {
                Sampler::ParentBased(Box::new(root(self)))
            } else {
                root(self)
            },
            follow_links: parent_based,
        }
    }
}

/// The specification's sampler, and for parent-based ones, a root span that links to a
/// job's creation follows the link's decision.
#[derive(Clone, Debug)]
pub struct JobSampler {
    root: Sampler,
    follow_links: bool,
}

impl ShouldSample for JobSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let has_parent = parent_context.is_some_and(|cx| cx.span().span_context().is_valid());
        if self.follow_links
            && !has_parent
            && let Some(link) = links.iter().find(|l| l.span_context.is_valid())
        {
            let sampled = link.span_context.is_sampled();
            let follow = if sampled {
                Sampler::AlwaysOn
            } else {
                Sampler::AlwaysOff
            };
            return follow.should_sample(
                parent_context,
                trace_id,
                name,
                span_kind,
                attributes,
                links,
            );
        }
        self.root
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::SamplingDecision;

    use super::*;

    fn link(sampled: bool) -> Link {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let context = SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            flags,
            true,
            TraceState::default(),
        );
        Link::with_context(context)
    }

    fn decide(sampling: Sampling, links: &[Link]) -> SamplingDecision {
        sampling
            .sampler()
            .should_sample(
                Some(&Context::new()),
                TraceId::from(u128::MAX),
                "process otp",
                &SpanKind::Consumer,
                &[],
                links,
            )
            .decision
    }

    #[test]
    fn the_variables_read_as_the_specification_says() {
        assert_eq!(
            Sampling::parse(None, None).unwrap(),
            Sampling::ParentBasedAlwaysOn
        );
        assert_eq!(
            Sampling::parse(Some("parentbased_traceidratio"), Some("0.01")).unwrap(),
            Sampling::ParentBasedTraceIdRatio(0.01)
        );
        assert_eq!(
            Sampling::parse(Some("traceidratio"), None).unwrap(),
            Sampling::TraceIdRatio(1.0),
            "no argument: 1.0"
        );
        assert_eq!(
            Sampling::parse(Some("always_off"), Some("ignored")).unwrap(),
            Sampling::AlwaysOff,
            "an argument no sampler reads is not checked"
        );
        assert!(Sampling::parse(Some("parentbased_traceidratio"), Some("-0.1")).is_err());
        assert!(Sampling::parse(Some("jaeger_remote"), None).is_err());
    }

    #[test]
    fn a_span_that_links_to_a_jobs_creation_follows_its_decision() {
        use SamplingDecision::{Drop, RecordAndSample};
        // The trace id is the largest: a ratio below 1 never samples it as a root.
        let ratio = Sampling::ParentBasedTraceIdRatio(0.01);
        assert_eq!(decide(ratio, &[]), Drop, "a root: by the ratio");
        assert_eq!(decide(ratio, &[link(true)]), RecordAndSample);
        assert_eq!(decide(Sampling::ParentBasedAlwaysOn, &[link(false)]), Drop);
        assert_eq!(decide(Sampling::ParentBasedAlwaysOn, &[]), RecordAndSample);
        // Samplers that are not parent-based ignore parents, and links too.
        assert_eq!(decide(Sampling::TraceIdRatio(0.01), &[link(true)]), Drop);
        assert_eq!(decide(Sampling::AlwaysOn, &[link(false)]), RecordAndSample);
    }
}
