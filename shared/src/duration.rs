//! Durations as Herald reads them everywhere: flags (`--claim-idle 30s`), job fields
//! (`valid_for`, `send_in`, `before`) in bulk lines and the HTTP API, the dashboard's forms.
//!
//! One grammar, stated twice and kept equal by the tests below: the parser ([`parse`]) and
//! the regular expression the OpenAPI document gives every duration field ([`pattern`]), so
//! a client validating against the document and the server never disagree about what is a
//! duration. The grammar: one or more parts, each a whole number and a unit, optionally
//! separated by spaces (`10m`, `1h 30m`, `1h30m`, `2 days`, `90sec`), with spaces allowed
//! around the whole and between a number and its unit. The units are humantime's (the
//! crate that parsed durations before and still formats them):
//!
//! | unit | names |
//! |---|---|
//! | nanosecond | `nanos`, `nsec`, `ns` |
//! | microsecond | `usec`, `us`, `µs` |
//! | millisecond | `millis`, `msec`, `ms` |
//! | second | `seconds`, `second`, `secs`, `sec`, `s` |
//! | minute | `minutes`, `minute`, `mins`, `min`, `m` |
//! | hour | `hours`, `hour`, `hrs`, `hr`, `h` |
//! | day | `days`, `day`, `d` |
//! | week | `weeks`, `week`, `wks`, `wk`, `w` |
//! | month (30.44 days) | `months`, `month`, `M` |
//! | year (365.25 days) | `years`, `year`, `yrs`, `yr`, `y` |
//!
//! Not durations: fractions (`1.5h`: write `1h 30m`), tabs or line breaks, a number without
//! a unit, units in other cases (`10S`). humantime accepted the first two; nothing in
//! Herald's documents ever used them, and a grammar a JSON Schema pattern states exactly is
//! worth more. What the grammar cannot say is range: a part so large that the sum does not
//! fit a [`Duration`] is [`DurationError::TooLong`] (far past every maximum Herald has), and
//! each field's own bounds (longer than zero, at most 24h or 365 days) are checked where the
//! field is.
//!
//! Pure: no I/O, no clock.

use std::time::Duration;

/// The units, each with its names and its length.
const UNITS: &[(&[&str], Duration)] = &[
    (&["nanos", "nsec", "ns"], Duration::from_nanos(1)),
    (&["usec", "us", "µs"], Duration::from_micros(1)),
    (&["millis", "msec", "ms"], Duration::from_millis(1)),
    (
        &["seconds", "second", "secs", "sec", "s"],
        Duration::from_secs(1),
    ),
    (
        &["minutes", "minute", "mins", "min", "m"],
        Duration::from_secs(60),
    ),
    (
        &["hours", "hour", "hrs", "hr", "h"],
        Duration::from_secs(3600),
    ),
    (&["days", "day", "d"], Duration::from_secs(86_400)),
    (
        &["weeks", "week", "wks", "wk", "w"],
        Duration::from_secs(7 * 86_400),
    ),
    (&["months", "month", "M"], Duration::from_secs(2_630_016)),
    (
        &["years", "year", "yrs", "yr", "y"],
        Duration::from_secs(31_557_600),
    ),
];

/// Why a text is not a duration. Positions count characters from 0.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("it is empty")]
    Empty,
    #[error("expected a number at character {at}")]
    NumberExpected { at: usize },
    #[error("the number at character {at} has no unit")]
    UnitMissing { at: usize },
    #[error("unexpected {found:?} at character {at} (no fractions, signs or tabs: e.g. 1h 30m)")]
    Unexpected { at: usize, found: char },
    #[error("unknown unit {unit:?} (units: ns, us, ms, s, m, h, d, w, M, y, or their long names)")]
    UnknownUnit { unit: String },
    #[error("it is too long to represent")]
    TooLong,
}

/// The regular expression of the grammar, anchored (`^...$`), in the dialect JSON Schema
/// uses (ECMA-262; Python's `re` and Rust's `regex` read it alike): what the OpenAPI
/// document gives every duration field as its `pattern`.
pub fn pattern() -> String {
    let mut names: Vec<&str> = UNITS
        .iter()
        .flat_map(|(names, _)| names.iter().copied())
        .collect();
    // Longest first: the same set either way, but engines that try alternatives in order
    // find the match sooner.
    names.sort_by_key(|name| std::cmp::Reverse(name.chars().count()));
    let unit = names.join("|");
    format!("^ *[0-9]+ *({unit})( *[0-9]+ *({unit}))* *$")
}

fn is_unit_char(c: char) -> bool {
    c.is_ascii_alphabetic() || c == 'µ'
}

/// Reads a duration written in the grammar above.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let chars: Vec<char> = text.chars().collect();
    let run = |from: usize, test: fn(char) -> bool| {
        chars[from..]
            .iter()
            .position(|c| !test(*c))
            .map_or(chars.len(), |n| from + n)
    };
    let spaces = |from: usize| run(from, |c| c == ' ');
    let mut at = spaces(0);
    if at == chars.len() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    while at < chars.len() {
        // A number: its digits, at least one.
        let digits_end = run(at, |c| c.is_ascii_digit());
        if digits_end == at {
            return Err(match chars[at] {
                c if is_unit_char(c) => DurationError::NumberExpected { at },
                found => DurationError::Unexpected { at, found },
            });
        }
        // Past u64, the sum could never fit either: saturate, and answer TooLong below.
        let number = chars[at..digits_end].iter().fold(0u64, |n, c| {
            n.checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c.to_digit(10).unwrap_or(0))))
                .unwrap_or(u64::MAX)
        });
        // A unit: the whole run of letters (after a unit comes a space, a digit or the
        // end, so the run is the unit).
        let unit_start = spaces(digits_end);
        let unit_end = run(unit_start, is_unit_char);
        if unit_end == unit_start {
            return Err(match chars.get(unit_start) {
                None => DurationError::UnitMissing { at },
                Some(&found) => DurationError::Unexpected {
                    at: unit_start,
                    found,
                },
            });
        }
        let unit: String = chars[unit_start..unit_end].iter().collect();
        let length = UNITS
            .iter()
            .find(|(names, _)| names.contains(&unit.as_str()))
            .map(|(_, length)| *length)
            .ok_or(DurationError::UnknownUnit { unit })?;
        total = total
            .checked_add(times(length, number).ok_or(DurationError::TooLong)?)
            .ok_or(DurationError::TooLong)?;
        at = spaces(unit_end);
    }
    Ok(total)
}

/// `number` units of `length`, exactly, or `None` past [`Duration::MAX`].
fn times(length: Duration, number: u64) -> Option<Duration> {
    if length.subsec_nanos() == 0 {
        // A second and up: whole seconds.
        number
            .checked_mul(length.as_secs())
            .map(Duration::from_secs)
    } else {
        // Below a second: nanoseconds.
        u64::try_from(length.as_nanos())
            .ok()
            .and_then(|ns| number.checked_mul(ns))
            .map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn regex() -> regex::Regex {
        regex::Regex::new(&pattern()).expect("the pattern compiles")
    }

    /// Both directions, one table: what the parser accepts (with its value) is what the
    /// pattern matches, and what it refuses the pattern does not match.
    #[test]
    fn the_pattern_matches_exactly_what_the_parser_accepts() {
        let s = Duration::from_secs;
        let accepted: &[(&str, Duration)] = &[
            ("10m", s(600)),
            ("90s", s(90)),
            ("1h 30m", s(5400)),
            ("1h30m", s(5400)),
            ("  2 days ", s(2 * 86_400)),
            ("90sec", s(90)),
            ("2 min", s(120)),
            ("1day 2h", s(93_600)),
            ("365d", s(365 * 86_400)),
            ("24h", s(86_400)),
            ("23h 59m 59s", s(86_399)),
            ("0s", Duration::ZERO),
            ("007m", s(420)),
            ("1ms", Duration::from_millis(1)),
            ("1µs 1ns", Duration::from_nanos(1001)),
            ("1M", s(2_630_016)),
            ("1y", s(31_557_600)),
            (
                "1yrs 1wks 1hrs 1mins 1secs",
                s(31_557_600 + 604_800 + 3600 + 60 + 1),
            ),
            ("1m1s", s(61)),
            ("1 m 1 s", s(61)),
            ("5000000000s", s(5_000_000_000)),
            ("5000000000ms", s(5_000_000)),
        ];
        let refused: &[(&str, DurationError)] = &[
            ("", DurationError::Empty),
            ("   ", DurationError::Empty),
            ("0A", DurationError::UnknownUnit { unit: "A".into() }),
            ("10", DurationError::UnitMissing { at: 0 }),
            ("1h 30", DurationError::UnitMissing { at: 3 }),
            ("h", DurationError::NumberExpected { at: 0 }),
            ("1.5h", DurationError::Unexpected { at: 1, found: '.' }),
            ("-1s", DurationError::Unexpected { at: 0, found: '-' }),
            ("+1s", DurationError::Unexpected { at: 0, found: '+' }),
            ("1\ts", DurationError::Unexpected { at: 1, found: '\t' }),
            ("1s\n", DurationError::Unexpected { at: 2, found: '\n' }),
            ("10S", DurationError::UnknownUnit { unit: "S".into() }),
            ("1hm", DurationError::UnknownUnit { unit: "hm".into() }),
            ("1 hour minute", DurationError::NumberExpected { at: 7 }),
            ("soon", DurationError::NumberExpected { at: 0 }),
            (
                "１s",
                DurationError::Unexpected {
                    at: 0, found: '１'
                },
            ),
            ("99999999999999999999999y", DurationError::TooLong),
            ("600000000000y", DurationError::TooLong),
        ];
        let regex = regex();
        for (text, value) in accepted {
            assert_eq!(parse(text).as_ref(), Ok(value), "{text:?} parses");
            assert!(regex.is_match(text), "{text:?} matches {}", pattern());
        }
        for (text, why) in refused {
            assert_eq!(parse(text).as_ref(), Err(why), "{text:?} is refused");
            // Too long is range, not grammar: the pattern matches it.
            let grammatical = *why == DurationError::TooLong;
            assert_eq!(
                regex.is_match(text),
                grammatical,
                "{text:?} vs {}",
                pattern()
            );
        }
    }

    /// Every string of up to five characters from an alphabet that covers the grammar's
    /// edges: the parser and the pattern agree on each.
    #[test]
    fn parser_and_pattern_agree_on_every_short_string() {
        let alphabet = ['1', '0', ' ', 'm', 's', 'h', 'M', 'x', '.', 'µ', '\t'];
        let regex = regex();
        let mut level = vec![String::new()];
        let mut texts = level.clone();
        for _ in 0..5 {
            level = level
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(level.iter().cloned());
        }
        assert!(texts.len() > 150_000);
        for text in &texts {
            assert_eq!(
                parse(text).is_ok(),
                regex.is_match(text),
                "{text:?}: parser {:?}, pattern {}",
                parse(text),
                pattern()
            );
        }
    }

    proptest! {
        #[test]
        fn parser_and_pattern_agree_on_generated_strings(text in "[0-9 a-zA-Zµ.\t-]{0,12}") {
            prop_assert_eq!(parse(&text).is_ok(), regex().is_match(&text), "{:?}", text);
        }

        #[test]
        fn what_the_pattern_generates_parses(
            text in pattern().trim_start_matches('^').trim_end_matches('$')
        ) {
            prop_assert!(regex().is_match(&text), "{:?}", text);
            let parsed = parse(&text);
            prop_assert!(
                parsed.is_ok() || parsed == Err(DurationError::TooLong),
                "{:?}: {:?}", text, parsed
            );
        }

        #[test]
        fn what_herald_prints_it_reads_back(secs in 0u64..=400 * 86_400, nanos in 0u32..1_000_000_000) {
            let duration = Duration::new(secs, nanos);
            let printed = humantime::format_duration(duration).to_string();
            prop_assert_eq!(parse(&printed), Ok(duration), "{}", printed);
        }
    }
}
