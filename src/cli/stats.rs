//! `aib stats`: flags and the call into the engine.

use crate::error::{Error, Result};

/// Flags of `aib stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// A folder of `*.safetensors`, one `.safetensors` file, an index file, or a Hub id in the local cache.
    #[arg(value_name = "MODEL")]
    model: Option<String>,
}

/// Runs `aib stats`.
pub fn run(_args: StatsArgs) -> Result<()> {
    Err(Error::usage("`aib stats` is not yet implemented"))
}
