//! The `rtcq` binary: parse the command line, set up logs, run the command, exit with
//! its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use rtcq::cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
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
            Command::Run(a) => rtcq::commands::run(a).await as u8,
            Command::Backfill(a) => rtcq::commands::backfill(a).await as u8,
            Command::Plan(a) => rtcq::commands::plan(a).await as u8,
            Command::Status(a) => rtcq::commands::status(a).await as u8,
            Command::Emulator(a) => match rtcq::emulator::run_cli(a.clone()).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            },
        }
    });
    ExitCode::from(code)
}
