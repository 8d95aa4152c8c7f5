//! The `rtcq` binary: parse the command line, set up logs, run the command, exit with
//! its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use rtcq::cli::{Cli, Command};
use rtcq::obs::progress::Progress;

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    // A progress bar only for a run, on a terminal, with text logs.
    let progress = if matches!(cli.command, Command::Run(_) | Command::Backfill(_))
        && std::io::stderr().is_terminal()
        && !rtcq::obs::logs::wants_json(cli.log_format)
    {
        Progress::on_stderr()
    } else {
        Progress::off()
    };
    rtcq::obs::logs::init(cli.log_format, &progress);
    rtcq::api::client::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        match &cli.command {
            Command::Run(a) => rtcq::cli::run(a, progress).await as u8,
            Command::Backfill(a) => rtcq::cli::backfill(a, progress).await as u8,
            Command::Plan(a) => rtcq::cli::plan(a).await as u8,
            Command::Status(a) => rtcq::cli::status(a).await as u8,
            Command::Check(a) => rtcq::cli::check(a).await as u8,
        }
    });
    ExitCode::from(code)
}

/// Keeps glibc's allocator from holding on to memory a run has freed: at most two arenas
/// (with one per thread, each keeps its own peak), and large buffers always mapped and
/// unmapped (glibc otherwise raises that threshold each time a large buffer is freed, and
/// keeps later ones in its heap). Peak RSS then grows about 1.6 KB per target instead of
/// 2 to 3 (docs/performance.md). `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the
/// environment win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a parameter of the allocator, before any thread starts.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
