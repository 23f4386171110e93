//! India's numbering plan (+91) as libphonenumber's metadata writes it, checked without
//! loading that metadata: the enqueue's fast path for the numbers nearly every job holds.
//!
//! `phonenumber` keeps every region's patterns behind one lock and a cache keyed by the
//! pattern's text, and loads all of them (about 70 ms) at the first number a process checks:
//! two fifths of a bulk enqueue's CPU went there, and no two threads could check at once.
//! Here India's patterns are compiled once, each when first needed, and read without a lock.
//!
//! Only what this module is sure of is answered here: a ten-digit national number (every
//! Indian mobile has ten) that the plan accepts. Anything else, and every refusal, is left to
//! libphonenumber, so its errors are the ones producers see. The tests keep the patterns equal
//! to the metadata's and compare the two judgements on every five-digit prefix.

use std::sync::OnceLock;

use regex::Regex;

/// `+91`: the calling code this plan is for.
pub(super) const CALLING_CODE: &str = "+91";

/// The one length of national number this module answers for.
const NATIONAL_DIGITS: usize = 10;

/// The metadata's `generalDesc` (no lengths of its own): a number must match it first.
const GENERAL: &str = r"(?:000800|[2-9]\d\d)\d{7}|1\d{7,12}";

/// A kind of number in the plan (`mobile`, `fixed_line`, ...): the metadata's descriptor.
pub(super) struct Kind {
    /// The national number's possible lengths.
    pub(super) lengths: &'static [usize],
    /// The national number's pattern, whitespace removed.
    pub(super) pattern: &'static str,
}

/// Every kind of number the metadata describes for India, the likeliest first (a number is
/// valid when it is any of them): mobile, fixed line, toll free, UAN, premium rate, shared
/// cost (the test names each).
pub(super) const KINDS: [Kind; 6] = [
    Kind {
        lengths: &[10],
        pattern: concat!(
            r"(?:6(?:1279|828[01489])|7(?:887[02-9]|9(?:313|79[07-9]))|8(?:079[04-9]|(?:84",
            r"|91)7[02-8]))\d{5}|(?:160[01]|6(?:(?:12|[2-4]1|5[17]|6[13]|80)[0189]|7(?:1[0189]|86))",
            r"|7(?:1(?:2[0189]|9[0-5])|3(?:2[5-8]|[34][017-9]|9[016-9])|5(?:[15][017-9]|2[04-9]|9[7-9])",
            r"|6(?:0[0-47]|1[0-257-9]|2[0-4]|3[19]|5[4589])|70[0289]|88[089]|97[02-8])|8(?:0(?:6[67]",
            r"|7[02-8])|70[017-9]|84[01489]|91[0-289]))\d{6}|(?:731|8(?:16|2[014]|3[126]|6[136]|7[78]",
            r"|83))(?:[0189]\d|7[02-8])\d{5}|(?:6(?:(?:1[1358]|2[2457]|3[2-4]|4[235-7]|5[2-689]",
            r"|6[24578])\d|7(?:[23569]\d|4[0189]|8[0-57-9])|8(?:[14-6]\d|2[0-79]))|7(?:1(?:[013-8]\d",
            r"|9[6-9])|3(?:2[0-49]|9[2-5])|5(?:2[1-3]|9[0-6])|6(?:0[5689]|2[5-9]|3[02-8]|4\d|5[0-367])",
            r"|70[13-7]|881))[0189]\d{5}|(?:6(?:[09]\d|1[04679]|2[03689]|3[05-9]|4[0489]|50|6[069]|7[07]",
            r"|8[7-9])|7(?:[024]\d|3[05-8]|5[0346-8]|6[6-9]|7[1-9]|8[0-79]|9[089])|8(?:0[01589]",
            r"|1[0-57-9]|2[235-9]|3[03-57-9]|[45]\d|6[02457-9]|7[1-69]|8[0-25-9]|9[02-9])|9\d\d)\d{7}",
        ),
    },
    Kind {
        lengths: &[10],
        pattern: concat!(
            r"(?:2717(?:[2-7]\d|95)|6828[235-7]\d)\d{4}|(?:170[24]|280[13468]|4(?:20[24]|72[2-8])",
            r"|552[1-7])\d{6}|(?:271[0-689]|682[0-79]|782[0-6])[2-7]\d{5}|(?:2(?:[02][2-79]|90)|3(?:23",
            r"|80)|683|79[1-7])\d{7}|(?:11|33|4[04]|80)[2-7]\d{7}|(?:342|674|788)(?:[0189][2-7]",
            r"|[2-7]\d)\d{5}|(?:1(?:2[0-249]|3[0-25]|4[145]|[59][14]|6[014]|7[1257]|8[01346])|2(?:1[257]",
            r"|3[013]|4[01]|5[0137]|6[0158]|78|8[1568]|9[14])|3(?:26|4[13]|5[34]|6[01489]|7[02-46]",
            r"|8[159])|4(?:1[36]|2[1-47]|3[15]|5[12]|6[0-26-9]|7[014-9]|8[013-57]|9[014-7])|5(?:1[025]",
            r"|22|[36][25]|4[28]|[578]1|9[15])|6(?:12|[2-47]1|5[17]|6[13]|80)|7(?:12|2[14]|3[134]|4[47]",
            r"|5[15]|[67]1)|8(?:16|2[014]|3[126]|6[136]|7[078]|8[34]|91))[2-7]\d{6}|(?:1(?:2[35-8]",
            r"|3[346-9]|4[236-9]|[59][0235-9]|6[235-9]|7[34689]|8[257-9])|2(?:1[134689]|3[24-8]|4[2-8]",
            r"|5[25689]|6[2-4679]|7[3-79]|8[2-479]|9[235-9])|3(?:01|1[79]|2[1245]|4[5-8]|5[125689]",
            r"|6[235-7]|7[157-9]|8[2-46-8])|4(?:1[14578]|2[5689]|3[2-467]|5[4-7]|6[35]|73|8[2689]",
            r"|9[2389])|5(?:[16][146-9]|2[14-8]|3[1346]|4[14-69]|5[46]|7[2-4]|8[2-8]|9[246])|6(?:1[1358]",
            r"|2[2457]|3[2-4]|4[235-7]|5[2-689]|6[24578]|7[235689]|8[14-6])|7(?:1[013-9]|2[0235-9]",
            r"|3[2679]|4[1-35689]|5[2-46-9]|[67][02-9]|8[013-7]|9[089])|8(?:1[1357-9]|2[235-8]",
            r"|3[03-57-9]|4[0-24-9]|5\d|6[2457-9]|7[1-6]|8[1256]|9[2-4]))\d[2-7]\d{5}",
        ),
    },
    Kind {
        lengths: &[8, 9, 10, 11, 12, 13],
        pattern: r"000800\d{7}|180(?:0\d{4,9}|3\d{9})",
    },
    Kind {
        lengths: &[10],
        pattern: r"140\d{7}",
    },
    Kind {
        lengths: &[13],
        pattern: r"186[12]\d{9}",
    },
    Kind {
        lengths: &[11],
        pattern: r"1860\d{7}",
    },
];

/// The national number of `e164` when it is `+91` and ten digits, the first not `0` (a `0`
/// is India's national prefix, which libphonenumber may strip: left to it).
pub(super) fn ten_digit_national(e164: &str) -> Option<&str> {
    let national = e164.strip_prefix(CALLING_CODE)?;
    let well_formed = national.len() == NATIONAL_DIGITS
        && national.bytes().all(|b| b.is_ascii_digit())
        && !national.starts_with('0');
    well_formed.then_some(national)
}

/// Whether libphonenumber would find `national` (from [`ten_digit_national`]) valid: it
/// matches the general pattern and one kind's length and pattern, each from its start.
pub(super) fn is_valid(national: &str) -> bool {
    static GENERAL_REGEX: OnceLock<Regex> = OnceLock::new();
    static KIND_REGEX: [OnceLock<Regex>; KINDS.len()] = [const { OnceLock::new() }; KINDS.len()];
    if !GENERAL_REGEX
        .get_or_init(|| anchored(GENERAL))
        .is_match(national)
    {
        return false;
    }
    KINDS.iter().zip(&KIND_REGEX).any(|(kind, regex)| {
        kind.lengths.contains(&national.len())
            && regex
                .get_or_init(|| anchored(kind.pattern))
                .is_match(national)
    })
}

/// `pattern` matched from the start of the text, as libphonenumber's descriptors match (a
/// match that starts at 0; the lengths bound the end).
fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})")).expect("the plan's patterns are tested to compile")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptor's pattern as libphonenumber stores it, whitespace removed (its patterns
    /// are compiled ignoring whitespace).
    fn pattern_of(desc: &phonenumber::metadata::Descriptor) -> String {
        let text = desc.national_number().as_str();
        assert!(
            !text.contains("\\ "),
            "an escaped space would be lost: {text}"
        );
        text.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn the_plan_is_libphonenumbers_own() {
        let db = &*phonenumber::metadata::DATABASE;
        assert_eq!(db.region(&91), Some(vec!["IN"]), "one region for +91");
        let india = db.by_id("IN").unwrap();
        // What `ten_digit_national` assumes about parsing: only a leading 0 is stripped.
        assert_eq!(india.national_prefix(), Some("0"));
        assert!(india.national_prefix_for_parsing().is_none());
        assert!(india.national_prefix_transform_rule().is_none());
        let d = india.descriptors();
        assert_eq!(pattern_of(d.general()), GENERAL, "update GENERAL");
        assert!(
            d.general().possible_length().is_empty(),
            "GENERAL has no lengths"
        );
        let in_kinds_order = [
            ("mobile", d.mobile()),
            ("fixed_line", d.fixed_line()),
            ("toll_free", d.toll_free()),
            ("uan", d.uan()),
            ("premium_rate", d.premium_rate()),
            ("shared_cost", d.shared_cost()),
        ];
        for ((name, desc), kind) in in_kinds_order.into_iter().zip(&KINDS) {
            let desc = desc.unwrap_or_else(|| panic!("the metadata has no {name}: drop it"));
            assert_eq!(pattern_of(desc), kind.pattern, "update KINDS' {name}");
            let lengths: Vec<usize> = desc.possible_length().iter().map(|&l| l as usize).collect();
            assert_eq!(lengths, kind.lengths, "update KINDS' {name} lengths");
        }
        for (name, desc) in [
            ("voip", d.voip()),
            ("personal_number", d.personal_number()),
            ("pager", d.pager()),
            ("voicemail", d.voicemail()),
        ] {
            assert!(desc.is_none(), "the metadata has a {name}: add it to KINDS");
        }
    }

    /// Every five-digit start of a ten-digit national number (the plan's patterns decide by
    /// at most six), with a seeded random rest: judged here exactly as libphonenumber judges
    /// it, and a valid one split the same way.
    #[test]
    fn a_ten_digit_number_is_judged_as_libphonenumber_judges_it() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut valid, mut checked) = (0, 0);
        for start in 10_000..100_000u64 {
            let national = format!("{start}{:05}", next() % 100_000);
            let e164 = format!("+91{national}");
            let ours = ten_digit_national(&e164).map(is_valid);
            let theirs = phonenumber::parse(None, &e164)
                .ok()
                .filter(phonenumber::is_valid)
                .map(|parsed| (parsed.code().value(), parsed.national().value().to_string()));
            assert_eq!(ours, Some(theirs.is_some()), "{e164}");
            if let Some(split) = theirs {
                assert_eq!(split, (91, national), "{e164}");
                valid += 1;
            }
            checked += 1;
        }
        assert!(
            valid > checked / 4,
            "the sample holds valid numbers: {valid} of {checked}"
        );
        assert!(valid < checked, "and invalid ones");
    }

    #[test]
    fn only_ten_digits_after_plus_91_are_answered_here() {
        assert_eq!(ten_digit_national("+919876543210"), Some("9876543210"));
        for other in [
            "+9109876543210",
            "+91987654321",
            "+9198765432100",
            "+91 9876543210",
            "+91987654321x",
            "+14155552671",
            "919876543210",
            "+91",
        ] {
            assert_eq!(ten_digit_national(other), None, "{other:?}");
        }
    }
}
