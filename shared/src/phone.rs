//! Phone numbers: E.164 input split into Interakt's `countryCode` + `phoneNumber`, with
//! libphonenumber's metadata (crate `phonenumber`), and masked for logs.
//!
//! The guide's `phoneNumber.substring(0, 3)` is wrong for +1, +7, +971 and many more; the
//! country code's length comes from the metadata, never from a fixed offset.
//!
//! Two depths of checking:
//! - [`Phone::parse_e164`] / [`Phone::parse_split`]: valid for its country's numbering plan,
//!   by libphonenumber. What producers check at enqueue (the library, the CLI, the HTTP API),
//!   so every job holds a valid number in canonical E.164 form. A ten-digit Indian number is
//!   checked against India's plan held here ([`india`], kept equal to the metadata by its
//!   tests), without loading or locking libphonenumber's.
//! - [`Phone::split_e164`] / [`Phone::split_parts`]: E.164 shape and a known country calling
//!   code ([`CALLING_CODES`], libphonenumber's own list; a test keeps them equal). What the
//!   worker checks before each send: it splits numbers producers already validated, and
//!   never loads libphonenumber's metadata (about 7 MB of heap and a tenth of a send's CPU).
//!   A number that is E.164 but not valid for its country (an entry written to the stream by
//!   hand) is then refused by Interakt, and dead-lettered with Interakt's reason.

mod india;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A phone number that libphonenumber accepts as valid, in Interakt's split form.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone {
    /// `+91`
    pub country_code: String,
    /// `9999999999`
    pub national_number: String,
}

/// Why a phone number was refused. The input is not repeated, as it may be a customer's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("must be in E.164 form with a leading '+' and country code, e.g. +919999999999")]
    MissingPlus,
    #[error("is not a phone number ({0})")]
    Unparsable(String),
    #[error("is not a valid number for its country code")]
    Invalid,
    #[error("does not start with a known country calling code")]
    UnknownCallingCode,
    #[error("must have {min} to {max} digits in all (E.164), not {digits}")]
    Length {
        digits: usize,
        min: usize,
        max: usize,
    },
}

/// Every country calling code libphonenumber's metadata knows, ascending (the test
/// `the_calling_codes_are_libphonenumbers_own` keeps the two equal). No code is a prefix of
/// another, so the first digits of an E.164 number name exactly one.
pub const CALLING_CODES: [u16; 215] = [
    1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54,
    55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211,
    212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234,
    235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253,
    254, 255, 256, 257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298,
    299, 350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377,
    378, 380, 381, 382, 383, 385, 386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506,
    507, 508, 509, 590, 591, 592, 593, 594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676,
    677, 678, 679, 680, 681, 682, 683, 685, 686, 687, 688, 689, 690, 691, 692, 800, 808, 850, 852,
    853, 855, 856, 870, 878, 880, 881, 882, 883, 886, 888, 960, 961, 962, 963, 964, 965, 966, 967,
    968, 970, 971, 972, 973, 974, 975, 976, 977, 979, 992, 993, 994, 995, 996, 998,
];

/// E.164: at most 15 digits, country code included.
const MAX_DIGITS: usize = 15;
/// The shortest national numbers in use have 4 digits (Niue, +683).
const MIN_NATIONAL_DIGITS: usize = 4;

/// The country calling code that `digits` (an E.164 number without its `+`) starts with.
fn calling_code(digits: &str) -> Option<usize> {
    if digits.starts_with('0') {
        return None; // no code starts with 0 (and "091" must not read as 91)
    }
    (1..=3).find(|&len| {
        digits
            .get(..len)
            .and_then(|code| code.parse::<u16>().ok())
            .is_some_and(|code| CALLING_CODES.binary_search(&code).is_ok())
    })
}

/// The digits of `text`, with the separators people write between them (spaces, dashes,
/// dots, parentheses) dropped; `None` when anything else is there.
fn digits_of(text: &str) -> Option<String> {
    let mut digits = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    Some(digits)
}

/// A number as people type it on a command line (`+91 99999-99999`, `+1 (415) 555-0100`):
/// the separators between its digits (spaces, dashes, dots, parentheses) dropped when it is a
/// `+` and digits apart from them, so a job holds `+919999999999`. Anything else comes back
/// as it was, for the validation to refuse with its reason. For flags (`--phone`), never for
/// JSON bodies, which are E.164 exactly as the API's document says.
pub fn without_separators(text: &str) -> String {
    let trimmed = text.trim();
    match trimmed.strip_prefix('+').and_then(digits_of) {
        Some(digits) if !digits.is_empty() => format!("+{digits}"),
        _ => text.to_string(),
    }
}

/// [`without_separators`] as a clap value parser: a `--phone` flag's value.
pub fn typed_number(text: &str) -> Result<String, std::convert::Infallible> {
    Ok(without_separators(text))
}

impl Phone {
    /// Parses `+919999999999`, tolerating spaces, dashes, dots and parentheses.
    pub fn parse_e164(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if !trimmed.starts_with('+') {
            return Err(PhoneError::MissingPlus);
        }
        if let Some(national) = india::ten_digit_national(trimmed).filter(|n| india::is_valid(n)) {
            return Ok(Phone {
                country_code: india::CALLING_CODE.to_string(),
                national_number: national.to_string(),
            });
        }
        let parsed = phonenumber::parse(None, trimmed)
            .map_err(|err| PhoneError::Unparsable(err.to_string()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid);
        }
        Ok(Phone {
            country_code: format!("+{}", parsed.code().value()),
            national_number: parsed.national().value().to_string(),
        })
    }

    /// Parses Interakt's split form (`"+91"`, `"9999999999"`), as raw requests carry it.
    pub fn parse_split(country_code: &str, national_number: &str) -> Result<Self, PhoneError> {
        let phone = Self::parse_e164(&format!("{country_code}{national_number}"))?;
        check_same_split(phone, country_code)
    }

    /// Splits `+919999999999` by its country calling code, tolerating spaces, dashes, dots
    /// and parentheses: E.164 shape and a known calling code, not validity for the country
    /// (see the module's doc). Cheap: no metadata is loaded.
    pub fn split_e164(input: &str) -> Result<Self, PhoneError> {
        let number = input
            .trim()
            .strip_prefix('+')
            .ok_or(PhoneError::MissingPlus)?;
        let digits = digits_of(number)
            .filter(|digits| !digits.is_empty())
            .ok_or_else(|| PhoneError::Unparsable("has characters other than digits".into()))?;
        let code = calling_code(&digits).ok_or(PhoneError::UnknownCallingCode)?;
        let (min, max) = (code + MIN_NATIONAL_DIGITS, MAX_DIGITS);
        if !(min..=max).contains(&digits.len()) {
            return Err(PhoneError::Length {
                digits: digits.len(),
                min,
                max,
            });
        }
        Ok(Phone {
            country_code: format!("+{}", &digits[..code]),
            national_number: digits[code..].to_string(),
        })
    }

    /// [`Phone::split_e164`] of Interakt's split form, which must split back the same way.
    pub fn split_parts(country_code: &str, national_number: &str) -> Result<Self, PhoneError> {
        let phone = Self::split_e164(&format!("{country_code}{national_number}"))?;
        check_same_split(phone, country_code)
    }

    /// `+919999999999`
    pub fn e164(&self) -> String {
        format!("{}{}", self.country_code, self.national_number)
    }

    /// The form safe for logs: country code and the last two digits (`+91********99`).
    pub fn masked(&self) -> String {
        mask(&self.e164())
    }
}

/// How many digits at the end of a number its OTP-guard prefix leaves out: a prefix names a
/// block of 10,000 numbers.
pub const PREFIX_DROPPED_DIGITS: usize = 4;

/// A number as the OTP guard reads it (`docs/otp-guard.md`): its country calling code, its
/// prefix (the number without its last [`PREFIX_DROPPED_DIGITS`] digits, never shorter than
/// its calling code) and the digits after the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardParts<'a> {
    /// `+91`
    pub country_code: &'a str,
    /// `+91987654`: what per-prefix counts, blocks and `guard unblock` name.
    pub prefix: &'a str,
    /// `3210`: the rest of the number (4 digits; fewer when the national number is that short).
    pub suffix: &'a str,
}

/// The guard's parts of `e164`, a number in canonical E.164 (`+` and digits, as a validated
/// job holds it): `+919876543210` is `+91`, `+91987654` and `3210`; `+6837012` (Niue, four
/// national digits) is `+683`, `+683` and `7012`. `None` when it is not `+` and digits with
/// a known calling code.
pub fn guard_parts(e164: &str) -> Option<GuardParts<'_>> {
    let digits = e164.strip_prefix('+')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code = calling_code(digits)?;
    // `+` and the calling code at least; the last 4 digits dropped.
    let cut = 1 + digits.len().saturating_sub(PREFIX_DROPPED_DIGITS).max(code);
    Some(GuardParts {
        country_code: &e164[..1 + code],
        prefix: &e164[..cut],
        suffix: &e164[cut..],
    })
}

/// `code` as an allow-list names a country (`+91`, or `91`), in its canonical form (`+91`);
/// `None` when it is no calling code.
pub fn calling_code_of(code: &str) -> Option<String> {
    let digits = code.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    let len = calling_code(digits).filter(|len| *len == digits.len())?;
    Some(format!("+{}", &digits[..len]))
}

/// The OTP guard's prefix in the form safe for people who are not operators: masked like a
/// number, its four dropped digits shown as `xxxx` (`+******54xxxx`).
pub fn mask_prefix(prefix: &str) -> String {
    format!("{}xxxx", mask(prefix))
}

/// `phone`, when its country code is the `country_code` it was given with.
fn check_same_split(phone: Phone, country_code: &str) -> Result<Phone, PhoneError> {
    if phone.country_code != country_code.trim() {
        return Err(PhoneError::Unparsable(format!(
            "country code {country_code:?} does not match the number"
        )));
    }
    Ok(phone)
}

/// Masks any phone-number-like string for logs: keeps a leading `+` and up to three
/// following digits only when the number is long enough, and the last two digits.
pub fn mask(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(|c| c.is_ascii_digit()).collect();
    let keep_tail = if digits.len() >= 8 { 2 } else { 0 };
    let keep_head = if digits.len() >= 10 { 2 } else { 0 };
    let mut out = String::with_capacity(digits.len() + 1);
    if number.trim_start().starts_with('+') {
        out.push('+');
    }
    for (i, d) in digits.iter().enumerate() {
        if i < keep_head || i >= digits.len() - keep_tail {
            out.push(*d);
        } else {
            out.push('*');
        }
    }
    out
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl fmt::Display for Phone {
    /// Masked: a `Phone` that reaches a log line never shows the whole number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Loads libphonenumber's metadata now (about 1 s in debug builds) so the first job, or a
/// benchmark, does not pay for it.
pub fn warm_up() {
    let _ = Phone::parse_e164("+919999999999");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_number_loses_its_separators_and_nothing_else() {
        for (typed, kept) in [
            ("+91 99999 99999", "+919999999999"),
            ("+91-99999-99999", "+919999999999"),
            (" +1 (415) 555.0100 ", "+14155550100"),
            ("+919999999999", "+919999999999"),
            // Not a `+` and digits: left for the validation to refuse with its reason.
            ("99999 99999", "99999 99999"),
            ("+91 9999x", "+91 9999x"),
            ("+", "+"),
            ("", ""),
        ] {
            assert_eq!(without_separators(typed), kept, "{typed:?}");
        }
    }

    #[test]
    fn splits_country_codes_of_every_length() {
        for (input, cc, national) in [
            ("+919999999999", "+91", "9999999999"),
            ("+91 99999-99999", "+91", "9999999999"),
            ("+1 (415) 555-2671", "+1", "4155552671"),
            ("+447911123456", "+44", "7911123456"),
            ("+971501234567", "+971", "501234567"),
            ("+7 912 345-67-89", "+7", "9123456789"),
        ] {
            let phone = Phone::parse_e164(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(phone.country_code, cc, "{input}");
            assert_eq!(phone.national_number, national, "{input}");
        }
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert_eq!(
            Phone::parse_e164("919999999999"),
            Err(PhoneError::MissingPlus)
        );
        assert!(matches!(
            Phone::parse_e164("+abc"),
            Err(PhoneError::Unparsable(_))
        ));
        assert!(Phone::parse_e164("+").is_err());
        assert!(Phone::parse_e164("").is_err());
        assert_eq!(Phone::parse_e164("+91 12345"), Err(PhoneError::Invalid));
        assert!(Phone::parse_e164("+1 000 000 0000").is_err());
        assert_eq!(Phone::parse_e164("+44 12"), Err(PhoneError::Invalid));
    }

    #[test]
    fn the_calling_codes_are_libphonenumbers_own() {
        let db = &*phonenumber::metadata::DATABASE;
        let known: Vec<u16> = (1..=999)
            .filter(|code| db.by_code(code).is_some())
            .collect();
        assert_eq!(
            known, CALLING_CODES,
            "update CALLING_CODES from the metadata"
        );
        for a in CALLING_CODES {
            for b in CALLING_CODES {
                let (a, b) = (a.to_string(), b.to_string());
                assert!(a == b || !b.starts_with(&a), "{a} is a prefix of {b}");
            }
        }
    }

    /// Every number libphonenumber accepts splits the same way without it, in the canonical
    /// form producers store and in the forms people type.
    #[test]
    fn a_valid_number_splits_as_libphonenumber_splits_it() {
        for input in [
            "+919999999999",
            "+91 99999-99999",
            "+1 (415) 555-2671",
            "+447911123456",
            "+971501234567",
            "+7 912 345-67-89",
            "+5491123456789",
            "+8613800138000",
            "+6837012",
            "+35312345678",
            "+2348031234567",
        ] {
            let valid = Phone::parse_e164(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(Phone::split_e164(input), Ok(valid.clone()), "{input}");
            assert_eq!(
                Phone::split_e164(&valid.e164()),
                Ok(valid.clone()),
                "{input}"
            );
            assert_eq!(
                Phone::split_parts(&valid.country_code, &valid.national_number),
                Ok(valid),
                "{input}"
            );
        }
    }

    #[test]
    fn a_split_refuses_what_is_not_e164_with_the_reason() {
        assert_eq!(
            Phone::split_e164("919999999999"),
            Err(PhoneError::MissingPlus)
        );
        assert!(matches!(
            Phone::split_e164("+"),
            Err(PhoneError::Unparsable(_))
        ));
        assert!(matches!(
            Phone::split_e164("+91abc"),
            Err(PhoneError::Unparsable(_))
        ));
        assert_eq!(
            Phone::split_e164("+0999999"),
            Err(PhoneError::UnknownCallingCode)
        );
        assert_eq!(
            Phone::split_e164("+2199999999"),
            Err(PhoneError::UnknownCallingCode)
        );
        assert_eq!(
            Phone::split_e164("+0919999999999"),
            Err(PhoneError::UnknownCallingCode)
        );
        assert_eq!(
            Phone::split_e164("+91999"),
            Err(PhoneError::Length {
                digits: 5,
                min: 6,
                max: 15
            })
        );
        assert_eq!(
            Phone::split_e164("+9199999999999999"),
            Err(PhoneError::Length {
                digits: 16,
                min: 6,
                max: 15
            })
        );
        assert!(Phone::split_parts("+9", "19999999999").is_err());
        assert!(Phone::split_parts("+91", "9999999999").is_ok());
        assert_eq!(
            PhoneError::Length {
                digits: 5,
                min: 6,
                max: 15
            }
            .to_string(),
            "must have 6 to 15 digits in all (E.164), not 5"
        );
    }

    #[test]
    fn split_form_must_agree_with_the_number() {
        assert!(Phone::parse_split("+91", "9999999999").is_ok());
        assert!(Phone::parse_split("+1", "4155552671").is_ok());
        assert!(Phone::parse_split("+9", "19999999999").is_err());
    }

    #[test]
    fn a_number_parsed_again_gets_the_same_answer_as_the_first_time() {
        for input in [
            "+919999999999",
            "+14155552671",
            "+91 12345",
            "+abc",
            "+14155552671",
        ] {
            let first = Phone::parse_e164(input);
            assert_eq!(Phone::parse_e164(input), first, "{input}");
        }
        Phone::parse_e164("+919999999999").unwrap();
        assert!(
            Phone::parse_split("+9", "19999999999").is_err(),
            "the split form is still checked against the remembered number"
        );
        assert_eq!(
            Phone::parse_e164(" +919999999999 ")
                .unwrap()
                .national_number,
            "9999999999"
        );
        assert_eq!(
            Phone::parse_e164("+919999999999").unwrap().country_code,
            "+91"
        );
    }

    /// One valid number of every length libphonenumber accepts (6 to 15 digits, from its
    /// own example numbers): the prefix drops the last four digits and never cuts into the
    /// calling code.
    #[test]
    fn a_prefix_is_the_number_without_its_last_four_digits_at_every_length() {
        let cases = [
            ("+989601", "+98", "+98", "9601"),
            ("+6837012", "+683", "+683", "7012"),
            ("+50051234", "+500", "+5005", "1234"),
            ("+951234567", "+95", "+95123", "4567"),
            ("+2399812345", "+239", "+239981", "2345"),
            ("+96892123456", "+968", "+9689212", "3456"),
            ("+919876543210", "+91", "+91987654", "3210"),
            ("+9668001234567", "+966", "+966800123", "4567"),
            ("+49177991234567", "+49", "+4917799123", "4567"),
            ("+498001234567890", "+49", "+49800123456", "7890"),
        ];
        let mut lengths = Vec::new();
        for (number, code, prefix, suffix) in cases {
            let phone = Phone::parse_e164(number).unwrap_or_else(|e| panic!("{number}: {e}"));
            assert_eq!(phone.e164(), number, "canonical already");
            assert_eq!(phone.country_code, code, "{number}");
            let parts = guard_parts(number).unwrap();
            assert_eq!(
                (parts.country_code, parts.prefix, parts.suffix),
                (code, prefix, suffix),
                "{number}"
            );
            assert_eq!(format!("{}{}", parts.prefix, parts.suffix), number);
            lengths.push(number.len() - 1);
        }
        assert_eq!(lengths, (6..=15).collect::<Vec<_>>(), "every length");
        // Too short for four digits after the calling code: the prefix is the calling code.
        let parts = guard_parts("+68312").unwrap();
        assert_eq!((parts.prefix, parts.suffix), ("+683", "12"));
        for bad in ["", "+", "919876543210", "+91 98765", "+0123456", "+91x"] {
            assert_eq!(guard_parts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn allow_lists_name_calling_codes() {
        assert_eq!(calling_code_of("+91").as_deref(), Some("+91"));
        assert_eq!(calling_code_of(" 971").as_deref(), Some("+971"));
        assert_eq!(calling_code_of("+1").as_deref(), Some("+1"));
        for bad in ["", "+", "+0", "+9199", "+999", "abc", "+91x"] {
            assert_eq!(calling_code_of(bad), None, "{bad:?}");
        }
        assert_eq!(mask_prefix("+91987654"), "+******54xxxx");
    }

    #[test]
    fn masking_hides_the_middle() {
        let phone = Phone::parse_e164("+919876543210").unwrap();
        assert_eq!(phone.masked(), "+91********10");
        assert_eq!(format!("{phone:?}"), "Phone(+91********10)");
        assert!(!format!("{phone}").contains("87654"));
        assert_eq!(mask("12345"), "*****");
    }
}
