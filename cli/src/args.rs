//! Command-line arguments: `--name value` options (repeatable), `--flag` switches, and
//! positional values, with the names each command accepts.

use crate::commands::Failure;

/// Parsed arguments.
pub(crate) struct Args {
    options: Vec<(String, String)>,
    flags: Vec<String>,
    pub(crate) positional: Vec<String>,
}

impl Args {
    /// Parses `args`; `valued` names options that take a value, `switches` those that
    /// do not. Anything else starting with `--` is a usage error.
    pub(crate) fn parse(
        args: &[String],
        valued: &[&str],
        switches: &[&str],
    ) -> Result<Self, Failure> {
        let mut parsed = Self {
            options: Vec::new(),
            flags: Vec::new(),
            positional: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.strip_prefix("--") {
                Some(name) if switches.contains(&name) => parsed.flags.push(name.to_owned()),
                Some(name) if valued.contains(&name) => {
                    let value = iter
                        .next()
                        .ok_or_else(|| Failure::Usage(format!("--{name} needs a value")))?;
                    parsed.options.push((name.to_owned(), value.clone()));
                }
                Some(name) => return Err(Failure::Usage(format!("unknown option --{name}"))),
                None => parsed.positional.push(arg.clone()),
            }
        }
        Ok(parsed)
    }

    /// The last value of an option.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable option.
    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.options
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a switch is on.
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}
