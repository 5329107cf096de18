//! `appliance/src/admin.rs` compiled on its own, so fd-store can build and test the IT commands
//! before the `frontdesk` binary wires them: `cargo run -p fd-store --example admin_cli -- --help`.

#[path = "../../src/admin.rs"]
mod admin;

use clap::Parser;

#[derive(Parser)]
#[command(name = "frontdesk")]
struct Cli {
    #[command(subcommand)]
    cmd: admin::AdminCommand,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    admin::run(cli.cmd, std::path::Path::new(admin::DEFAULT_DATA_DIR))
}
