//! rtcq copies Volcengine RTC `ListRealTimeQuality` metrics into a Hive-partitioned
//! Parquet dataset on local disk or S3. The design, in [`design`], has the run step by step.
//!
//! One folder per feature, from the bottom up: `domain` holds the words of the design as
//! types; `clock` is the one time source; `api` is the signed client with its pacing and
//! retries (the wire types, signing and error classes are the `volc_rtc` crate's);
//! `config` turns a pipeline file into domain types; `plan` turns cursors into requests
//! and says how many targets a budget serves; `recovery` says what a gap still owes and
//! `discovery` finds the rooms of an app; `sink` writes Parquet slot files and `state`
//! keeps cursors, ledgers and the lease; `obs` is what a run shows (logs, progress, the
//! summary, metrics); `run` is one run as stages, returning a report; `cli` is the
//! command line and its commands. The stand-in API is the `rtcq-emulator` crate, which
//! only the tests use. "Modules" in [`design`] has the table.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub(crate) mod discovery;
pub mod domain;
pub mod obs;
pub mod plan;
pub(crate) mod recovery;
pub mod run;
pub mod sink;
pub mod state;

/// The design: what the job does and why, section by section, as `docs/design.md` in
/// the repository (code comments cite its sections by name).
#[doc = include_str!("../docs/design.md")]
#[allow(rustdoc::broken_intra_doc_links)]
pub mod design {}

#[cfg(test)]
mod design_citations {
    /// Every section a comment cites (the page's path, a comma, the section's name in
    /// quotes) is a section of that page, and nothing points to the design's old place
    /// outside the repository.
    #[test]
    fn every_cited_section_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let headings = |doc: &str| -> Vec<String> {
            std::fs::read_to_string(root.join(doc))
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("## "))
                .map(|h| h.trim_matches('`').to_string())
                .collect()
        };
        let (design, api) = (headings("docs/design.md"), headings("docs/api.md"));
        let mut dirs = vec![root.join("src"), root.join("crates")];
        let mut cited = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let outside = ["..", "shared"].concat();
                assert!(
                    !text.contains(&outside),
                    "{} points outside",
                    path.display()
                );
                for (doc, sections) in [("docs/design.md", &design), ("docs/api.md", &api)] {
                    for (i, _) in text.match_indices(doc) {
                        // The path, maybe in backticks, a comma, the quoted name.
                        let after = text[i + doc.len()..].trim_start_matches('`');
                        let Some(rest) = after.strip_prefix(", \"") else {
                            continue;
                        };
                        // A section name may wrap onto the next comment line.
                        let name: String = rest
                            .split('"')
                            .next()
                            .unwrap()
                            .split_whitespace()
                            .filter(|w| *w != "//!" && *w != "//")
                            .collect::<Vec<_>>()
                            .join(" ");
                        assert!(
                            sections.contains(&name),
                            "{} cites {doc}, \"{name}\", which has no such section",
                            path.display()
                        );
                        cited += 1;
                    }
                }
            }
        }
        assert!(cited >= 15, "{cited}");
    }
}
