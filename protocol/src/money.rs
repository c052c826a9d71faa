//! Money amounts: prices as people write them (`"$0.01"`, `"0.01"`) or as atomic units (`"10000"`), turned
//! into a token's atomic units (`U256`), and atomic units turned back into text for display.
//!
//! Rules: a `$` prefix or a decimal point means whole-token units (USDC is a dollar), scaled by the asset's
//! decimals; plain digits mean atomic units. Signs, exponents, separators, empty strings, more fractional
//! digits than the asset has, and values beyond `U256` are refused, each with its own error.

use alloy::primitives::U256;

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("the amount is empty")]
    Empty,
    #[error("negative amounts are not allowed: `{0}`")]
    Negative(String),
    #[error("exponents are not allowed (write the number out): `{0}`")]
    Exponent(String),
    #[error("`{input}` has {found} decimal places; this asset has {max}")]
    TooManyDecimals { input: String, found: usize, max: u8 },
    #[error("`{0}` is too large")]
    Overflow(String),
    #[error("`{0}` is not an amount (expected e.g. \"$0.01\", \"0.01\" or atomic units \"10000\")")]
    Invalid(String),
}

/// Parses a price: `"$0.01"` or `"0.01"` in token units, `"10000"` in atomic units.
pub fn parse_price(input: &str, decimals: u8) -> Result<U256, MoneyError> {
    let text = input.trim();
    check_common(input, text)?;
    if let Some(dollars) = text.strip_prefix('$') {
        check_common(input, dollars)?;
        return parse_units_inner(input, dollars, decimals);
    }
    if text.contains('.') {
        parse_units_inner(input, text, decimals)
    } else {
        parse_atomic(text)
    }
}

/// Parses whole-token units (`"1.5"` USDC → `1500000`), with or without a `$`.
pub fn parse_units(input: &str, decimals: u8) -> Result<U256, MoneyError> {
    let text = input.trim();
    check_common(input, text)?;
    let text = text.strip_prefix('$').unwrap_or(text);
    check_common(input, text)?;
    parse_units_inner(input, text, decimals)
}

/// Parses plain atomic units (`"10000"`).
pub fn parse_atomic(input: &str) -> Result<U256, MoneyError> {
    let text = input.trim();
    check_common(input, text)?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MoneyError::Invalid(input.to_owned()));
    }
    U256::from_str_radix(text, 10).map_err(|_| MoneyError::Overflow(input.to_owned()))
}

fn check_common(input: &str, text: &str) -> Result<(), MoneyError> {
    if text.is_empty() {
        return Err(MoneyError::Empty);
    }
    if text.starts_with('-') || text.starts_with("$-") {
        return Err(MoneyError::Negative(input.to_owned()));
    }
    if text.bytes().any(|b| b == b'e' || b == b'E') && !text.starts_with("0x") {
        return Err(MoneyError::Exponent(input.to_owned()));
    }
    Ok(())
}

fn parse_units_inner(input: &str, text: &str, decimals: u8) -> Result<U256, MoneyError> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_only(whole) || !digits_only(fraction) || (text.contains('.') && fraction.is_empty())
    {
        return Err(MoneyError::Invalid(input.to_owned()));
    }
    let significant = fraction.trim_end_matches('0');
    if significant.len() > usize::from(decimals) {
        return Err(MoneyError::TooManyDecimals {
            input: input.to_owned(),
            found: significant.len(),
            max: decimals,
        });
    }
    let overflow = || MoneyError::Overflow(input.to_owned());
    let scale = U256::from(10u8)
        .checked_pow(U256::from(decimals))
        .ok_or_else(overflow)?;
    let whole = U256::from_str_radix(whole, 10).map_err(|_| overflow())?;
    let mut fraction_value = if significant.is_empty() {
        U256::ZERO
    } else {
        U256::from_str_radix(significant, 10).map_err(|_| overflow())?
    };
    for _ in significant.len()..usize::from(decimals) {
        fraction_value = fraction_value.checked_mul(U256::from(10u8)).ok_or_else(overflow)?;
    }
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction_value))
        .ok_or_else(overflow)
}

/// Atomic units as token units, without trailing zeros: `10000` at 6 decimals → `"0.01"`, `2000000` → `"2"`.
pub fn format_units(amount: U256, decimals: u8) -> String {
    let digits = amount.to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = if digits.len() <= decimals {
        format!("{}{digits}", "0".repeat(decimals + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// Atomic units as a dollar price: `10000` at 6 decimals → `"$0.01"`.
pub fn format_usd(amount: U256, decimals: u8) -> String {
    format!("${}", format_units(amount, decimals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<U256, MoneyError> {
        parse_price(s, 6)
    }

    #[test]
    fn prices_in_dollars_units_and_atomic() {
        assert_eq!(p("$0.01"), Ok(U256::from(10_000u64)));
        assert_eq!(p("0.01"), Ok(U256::from(10_000u64)));
        assert_eq!(p("10000"), Ok(U256::from(10_000u64)));
        assert_eq!(p("$1"), Ok(U256::from(1_000_000u64)));
        assert_eq!(p(" $2.5 "), Ok(U256::from(2_500_000u64)));
        assert_eq!(p("0.000001"), Ok(U256::from(1u64)));
        assert_eq!(
            p("1.1000000"),
            Ok(U256::from(1_100_000u64)),
            "trailing zeros beyond decimals are fine"
        );
        assert_eq!(p("0"), Ok(U256::ZERO));
    }

    #[test]
    fn each_bad_amount_has_its_own_error() {
        assert_eq!(p(""), Err(MoneyError::Empty));
        assert_eq!(p("  "), Err(MoneyError::Empty));
        assert_eq!(p("$"), Err(MoneyError::Empty));
        assert!(matches!(p("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(p("$-0.01"), Err(MoneyError::Negative(_))));
        assert!(matches!(p("1e6"), Err(MoneyError::Exponent(_))));
        assert!(matches!(p("$1E2"), Err(MoneyError::Exponent(_))));
        assert!(matches!(
            p("0.0000001"),
            Err(MoneyError::TooManyDecimals { found: 7, max: 6, .. })
        ));
        assert!(matches!(p(&"9".repeat(80)), Err(MoneyError::Overflow(_))));
        assert!(matches!(
            p(&format!("{}.5", "9".repeat(75))),
            Err(MoneyError::Overflow(_))
        ));
        for bad in ["1,000", "+1", "1.", ".5", "abc", "0x10", "1 000", "$$1", "1.2.3", "١"] {
            assert!(
                matches!(p(bad), Err(MoneyError::Invalid(_))),
                "{bad:?} gave {:?}",
                p(bad)
            );
        }
    }

    #[test]
    fn formats_without_trailing_zeros() {
        assert_eq!(format_units(U256::from(10_000u64), 6), "0.01");
        assert_eq!(format_units(U256::from(2_000_000u64), 6), "2");
        assert_eq!(format_units(U256::from(1u64), 6), "0.000001");
        assert_eq!(format_units(U256::ZERO, 6), "0");
        assert_eq!(format_units(U256::from(1_234_567_890u64), 6), "1234.56789");
        assert_eq!(format_units(U256::from(7u64), 0), "7");
        assert_eq!(format_usd(U256::from(10_000u64), 6), "$0.01");
    }

    #[test]
    fn atomic_and_units_parsers_are_strict() {
        assert_eq!(parse_atomic("123"), Ok(U256::from(123u64)));
        assert!(matches!(parse_atomic("1.5"), Err(MoneyError::Invalid(_))));
        assert_eq!(parse_units("3", 6), Ok(U256::from(3_000_000u64)));
        assert_eq!(parse_units("$0.5", 6), Ok(U256::from(500_000u64)));
        assert_eq!(parse_units("7", 0), Ok(U256::from(7u64)));
        assert!(matches!(parse_units("0.1", 0), Err(MoneyError::TooManyDecimals { .. })));
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(raw in proptest::prelude::any::<u128>(), decimals in 0u8..=18) {
            let amount = U256::from(raw);
            let text = format_units(amount, decimals);
            proptest::prop_assert_eq!(parse_units(&text, decimals), Ok(amount));
            proptest::prop_assert_eq!(parse_units(&format!("${text}"), decimals), Ok(amount));
        }

        #[test]
        fn parse_never_panics(s in ".{0,90}", decimals in proptest::prelude::any::<u8>()) {
            let _ = parse_price(&s, decimals);
            let _ = parse_units(&s, decimals);
        }
    }
}
