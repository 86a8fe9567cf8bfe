//! How option values are written in settings files: durations as people write them
//! (`"60s"`, `"5m"`, `"1h30m"`, `"250ms"`, `"2d"`), read and written, and lists that may
//! be written as their one value.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses `"1h30m"`-style text: one or more number-unit pairs, units `ms`, `s`, `m`,
/// `h`, `d`; whole numbers only.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like \"60s\", \"5m\" or \"250ms\"");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "d" => Duration::from_secs(number.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        rest = &rest[unit..];
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// The shortest text [`parse`] reads back as `duration` (whole milliseconds).
pub(crate) fn format(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if rest >= size {
            text.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if rest > 0 {
        text.push_str(&format!("{rest}ms"));
    }
    text
}

/// Serde for `Duration` fields written as text.
pub(crate) mod text {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*duration))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for `Option<Duration>` fields written as text (`None` is left out).
pub(crate) mod optional {
    use super::*;

    #[allow(clippy::ref_option)]
    pub(crate) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => s.serialize_some(&format(*duration)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::text::deserialize(d).map(Some)
    }
}

/// A list of strings, or one string for a list of one.
pub(crate) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(parse("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "60", "s", "1.5s", "5 minutes", "-1s", "1y"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formatted_durations_read_back() {
        for ms in [0, 1, 250, 1000, 60_000, 5_400_000, 86_400_000, 90_061_001] {
            let duration = Duration::from_millis(ms);
            assert_eq!(
                parse(&format(duration)),
                Ok(duration),
                "{}",
                format(duration)
            );
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
    }
}
