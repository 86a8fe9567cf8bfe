//! Where a field path (`issuers[1].audiences[0]`) is in a settings file: the line a
//! configuration error names. TOML and JSON know their spans; YAML errors name the path.

use super::Format;

/// The keys and indices of a path: `issuers[1].audiences` is `issuers`, `1`, `audiences`.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(index) = index.parse() {
                steps.push(Step::Index(index));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    steps
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `path` in `text`, when the format gives spans and the file names it.
pub(super) fn find(text: &str, format: Format, path: &str) -> Option<usize> {
    let steps = steps(path);
    let offset = match format {
        Format::Json => json_offset(text, &steps),
        Format::Toml => toml_offset(text, &steps),
        Format::Yaml => None,
    }?;
    Some(line_at(text, offset))
}

fn json_offset(text: &str, steps: &[Step<'_>]) -> Option<usize> {
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    let mut current: &RawValue = serde_json::from_str(text).ok()?;
    for step in steps {
        current = match step {
            Step::Key(key) => *serde_json::from_str::<BTreeMap<&str, &RawValue>>(current.get())
                .ok()?
                .get(key)?,
            Step::Index(index) => *serde_json::from_str::<Vec<&RawValue>>(current.get())
                .ok()?
                .get(*index)?,
        };
    }
    // The raw value borrows from `text`: its address gives its offset.
    (current.get().as_ptr() as usize).checked_sub(text.as_ptr() as usize)
}

#[cfg(feature = "config-toml")]
fn toml_offset(text: &str, steps: &[Step<'_>]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut span = root.span();
    let mut value: Option<&DeValue<'_>> = None;
    let mut table = Some(root.get_ref());
    for step in steps {
        let next = match (step, table, value) {
            (Step::Key(key), Some(table), _) => table
                .iter()
                .find(|(name, _)| name.get_ref().as_ref() == *key)
                .map(|(_, v)| v)?,
            (Step::Index(index), _, Some(DeValue::Array(items))) => items.get(*index)?,
            _ => return None,
        };
        span = next.span();
        value = Some(next.get_ref());
        table = match next.get_ref() {
            DeValue::Table(inner) => Some(inner),
            _ => None,
        };
    }
    Some(span.start)
}

#[cfg(not(feature = "config-toml"))]
fn toml_offset(_: &str, _: &[Step<'_>]) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_find_their_lines() {
        let text = "{\n  \"issuers\": [\n    {\"issuer\": \"a\"},\n    {\"issuer\": \"b\",\n     \"audiences\": [\"x\", \"\"]}\n  ]\n}";
        assert_eq!(find(text, Format::Json, "issuers[1].audiences[1]"), Some(5));
        assert_eq!(find(text, Format::Json, "issuers[0].issuer"), Some(3));
        assert_eq!(find(text, Format::Json, "leeway"), None);
    }

    #[cfg(feature = "config-toml")]
    #[test]
    fn toml_paths_find_their_lines() {
        let text = "leeway = \"1s\"\n[[issuers]]\nissuer = \"a\"\n[[issuers]]\nissuer = \"b\"\naudiences = [\"x\",\n  \"\"]\n";
        assert_eq!(find(text, Format::Toml, "issuers[1].audiences[1]"), Some(7));
        assert_eq!(find(text, Format::Toml, "issuers[1].issuer"), Some(5));
        assert_eq!(find(text, Format::Toml, "leeway"), Some(1));
    }
}
