//! The `rtcq-emulator` binary: serve the stand-in API on loopback until SIGINT or
//! SIGTERM. The first line of stdout is `listening on http://<addr>`; logs go to stderr
//! as text (`RUST_LOG` filters them).

use std::process::ExitCode;

use clap::Parser;
use rtcq_emulator::EmulatorArgs;

/// A local stand-in for the Volcengine RTC quality API, for demos, tests and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "rtcq-emulator", version)]
struct Cli {
    #[command(flatten)]
    args: EmulatorArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    match runtime.block_on(rtcq_emulator::run_cli(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
