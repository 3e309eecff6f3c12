//! Exact decimals as they arrive in JSON (numbers or strings) and as they leave (decimal strings).

use rust_decimal::Decimal;
use serde_json::Value;

/// Most decimal places an amount keeps exactly (docs/design.md "Money": Arrow `Decimal128(38, 18)` inside).
pub const MAX_SCALE: u32 = 18;

/// Parses a JSON number or string as an exact decimal. JSON numbers keep their written digits because
/// serde_json runs with `arbitrary_precision`, so `0.1` is 0.1, not the nearest double.
pub fn from_json(field: &str, value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err(format!("{field} must be a number")),
    };
    parse(field, &text)
}

/// Parses decimal text, plain (`300`, `-4.25`) or scientific (`1.5E-7`).
pub fn parse(field: &str, text: &str) -> Result<Decimal, String> {
    let parsed = if text.contains(['e', 'E']) { Decimal::from_scientific(text) } else { text.parse::<Decimal>() };
    let value = parsed.map_err(|_| format!("{field} must be a number, got {text:?}"))?;
    if value.scale() > MAX_SCALE && value.normalize().scale() > MAX_SCALE {
        return Err(format!("{field} has more than {MAX_SCALE} decimal places"));
    }
    Ok(value.normalize())
}

/// Formats a decimal the way Vantage does: `300.0`, `4.25`, `0.85` (at least one decimal place).
pub fn to_wire(value: Decimal) -> String {
    let v = value.normalize();
    if v.scale() == 0 {
        format!("{v}.0")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_numbers_and_strings_parse_exactly() {
        let n: Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(from_json("amount", &n).unwrap().to_string(), "0.1");
        assert_eq!(from_json("amount", &json!("300.50")).unwrap().to_string(), "300.5");
        assert_eq!(from_json("amount", &json!("1.5E-7")).unwrap().to_string(), "0.00000015");
    }

    #[test]
    fn long_fractions_survive_json_numbers() {
        let n: Value = serde_json::from_str("20.52022672899123456").unwrap();
        assert_eq!(from_json("amount", &n).unwrap().to_string(), "20.52022672899123456");
    }

    #[test]
    fn non_numbers_are_rejected_naming_the_field() {
        assert_eq!(from_json("percentage", &json!(true)).unwrap_err(), "percentage must be a number");
        assert!(from_json("percentage", &json!("abc")).unwrap_err().starts_with("percentage must be a number"));
    }

    #[test]
    fn more_than_eighteen_places_is_rejected() {
        assert!(parse("amount", "0.1234567890123456789").unwrap_err().contains("18 decimal places"));
        assert!(parse("amount", "0.123456789012345678").is_ok());
    }

    #[test]
    fn wire_format_always_has_a_decimal_point() {
        assert_eq!(to_wire(Decimal::from(300)), "300.0");
        assert_eq!(to_wire("4.250".parse().unwrap()), "4.25");
        assert_eq!(to_wire("0.85".parse().unwrap()), "0.85");
    }
}
