//! The pipeline name: it names the slot files, the state, the lease and the gap
//! ledger, so one rule decides it, checked once when the pipeline file is read.

use std::fmt;

/// A checked pipeline name: 1 to 64 characters of `a-z`, `0-9`, `_` and `-`, starting
/// with a letter or digit (a leading `_` or `.` would hide the files from Spark).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PipelineName(String);

impl PipelineName {
    /// Checks `name`; the error says the rule.
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(PipelineName(name.to_string()))
        } else {
            Err(format!(
                "{name:?} is not a valid pipeline name: use 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit (a leading '_' would hide the files from Spark)"
            ))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for PipelineName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PipelineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_rule() {
        for good in ["demo", "a", "0-x_y", &"a".repeat(64)] {
            assert_eq!(PipelineName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "_demo",
            "-demo",
            "Demo",
            "de mo",
            "dé",
            ".x",
            &"a".repeat(65),
        ] {
            let e = PipelineName::parse(bad).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "{bad:?} is not a valid pipeline name: use 1 to 64"
                )),
                "{e}"
            );
        }
    }
}
