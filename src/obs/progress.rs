//! The progress bar of a long catch-up: requests done of total, rows written, ETA. Drawn
//! only on a terminal and never with JSON logs; otherwise every call is a no-op.

use std::fmt;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// A progress bar that may be switched off. Clones share one bar.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    enabled: bool,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::off()
    }
}

impl Progress {
    /// No bar: for logs as JSON, no terminal, tests and library use.
    pub fn off() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
            enabled: false,
        }
    }

    /// A bar on stderr, shown once `Progress::start` is called.
    pub fn on_stderr() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
            enabled: true,
        }
    }

    /// The writer that prints log lines with the bar hidden meanwhile.
    pub(crate) fn log_writer(&self) -> AroundBar {
        AroundBar(self.bar.clone())
    }

    /// Shows the bar for `requests` real-time requests (nothing for none).
    pub(crate) fn start(&self, requests: usize) {
        self.start_as(requests, "requests");
    }

    /// Shows the bar for the `requests` `ListQuality` requests of a history load.
    pub(crate) fn start_history(&self, requests: usize) {
        self.start_as(requests, "history requests");
    }

    fn start_as(&self, requests: usize, what: &str) {
        if !self.enabled || requests == 0 {
            return;
        }
        let style = ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {what}, {{msg}}, eta {{eta}}"
        ))
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        self.bar.set_style(style);
        self.bar.set_length(requests as u64);
        self.bar.set_position(0);
        self.bar.set_message("0 rows fetched, 0 written");
        self.bar.set_draw_target(ProgressDrawTarget::stderr());
        self.bar.enable_steady_tick(Duration::from_millis(500));
    }

    /// One request is back (answered or failed for good).
    pub(crate) fn request_done(&self) {
        self.bar.inc(1);
    }

    /// Rows fetched (as answers arrive) and written (at each checkpoint) so far.
    pub(crate) fn rows(&self, fetched: u64, written: u64) {
        if self.enabled {
            self.bar
                .set_message(format!("{fetched} rows fetched, {written} written"));
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if self.enabled {
            self.bar.finish_and_clear();
        }
    }
}

/// Writes log lines to stderr with the progress bar hidden meanwhile.
#[derive(Clone)]
pub(crate) struct AroundBar(pub(crate) indicatif::ProgressBar);

impl<'a> MakeWriter<'a> for AroundBar {
    type Writer = AroundBar;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Write for AroundBar {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.suspend(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_counts_rows_as_answers_arrive_and_as_they_are_written() {
        // Never started: nothing is drawn, but the message is kept.
        let p = Progress::on_stderr();
        p.rows(1_200, 0);
        assert_eq!(p.bar.message(), "1200 rows fetched, 0 written");
        p.rows(2_400, 1_200);
        assert_eq!(p.bar.message(), "2400 rows fetched, 1200 written");
        let off = Progress::off();
        off.rows(5, 0);
        assert_eq!(off.bar.message(), "");
    }

    #[test]
    fn a_history_load_has_its_own_bar_of_its_requests() {
        let p = Progress::on_stderr();
        p.start_history(6);
        p.request_done();
        assert_eq!((p.bar.position(), p.bar.length()), (1, Some(6)));
        p.finish();
        // Off, or with nothing to ask, no bar is shown.
        let off = Progress::off();
        off.start_history(6);
        assert_eq!(off.bar.length(), None);
        let none = Progress::on_stderr();
        none.start_history(0);
        assert_eq!(none.bar.length(), None);
    }
}
