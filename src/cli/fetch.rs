//! `aib fetch`: flags and the call into [`crate::hub`].

use crate::error::{Error, Result};

/// Flags of `aib fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Hub repo id, e.g. `Qwen/Qwen3-4B`.
    #[arg(value_name = "MODEL_ID")]
    model_id: Option<String>,
}

/// Runs `aib fetch`.
pub fn run(_args: FetchArgs) -> Result<()> {
    Err(Error::usage("`aib fetch` is not yet implemented"))
}
