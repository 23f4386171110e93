//! Phone numbers: E.164 input split into Interakt's `countryCode` + `phoneNumber`, with
//! libphonenumber's metadata (crate `phonenumber`), and masked for logs.
//!
//! The guide's `phoneNumber.substring(0, 3)` is wrong for +1, +7, +971 and many more; the
//! country code's length comes from the metadata, never from a fixed offset.

use std::cell::RefCell;
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
}

thread_local! {
    /// The last number this thread found valid, and its split form. A worker parses each
    /// job's number twice back to back (rendering the request, then validating it) and
    /// libphonenumber's check is the costliest step of a send: the second parse is free.
    /// Only valid numbers are kept, so a refusal is always worked out afresh.
    static LAST_VALID: RefCell<Option<(String, Phone)>> = const { RefCell::new(None) };
}

impl Phone {
    /// Parses `+919999999999`, tolerating spaces, dashes, dots and parentheses.
    pub fn parse_e164(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if !trimmed.starts_with('+') {
            return Err(PhoneError::MissingPlus);
        }
        let cached = LAST_VALID.with_borrow(|last| {
            last.as_ref()
                .filter(|(number, _)| number == trimmed)
                .map(|(_, phone)| phone.clone())
        });
        if let Some(phone) = cached {
            return Ok(phone);
        }
        let parsed = phonenumber::parse(None, trimmed)
            .map_err(|err| PhoneError::Unparsable(err.to_string()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid);
        }
        let phone = Phone {
            country_code: format!("+{}", parsed.code().value()),
            national_number: parsed.national().value().to_string(),
        };
        LAST_VALID.set(Some((trimmed.to_string(), phone.clone())));
        Ok(phone)
    }

    /// Parses Interakt's split form (`"+91"`, `"9999999999"`), as raw requests carry it.
    pub fn parse_split(country_code: &str, national_number: &str) -> Result<Self, PhoneError> {
        let phone = Self::parse_e164(&format!("{country_code}{national_number}"))?;
        if phone.country_code != country_code.trim() {
            return Err(PhoneError::Unparsable(format!(
                "country code {country_code:?} does not match the number"
            )));
        }
        Ok(phone)
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

    #[test]
    fn masking_hides_the_middle() {
        let phone = Phone::parse_e164("+919876543210").unwrap();
        assert_eq!(phone.masked(), "+91********10");
        assert_eq!(format!("{phone:?}"), "Phone(+91********10)");
        assert!(!format!("{phone}").contains("87654"));
        assert_eq!(mask("12345"), "*****");
    }
}
