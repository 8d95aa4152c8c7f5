//! Placeholder until the emulator lands.
#[derive(Debug, Clone, clap::Args)]
pub struct EmulatorArgs {}
pub async fn run_cli(_a: EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
