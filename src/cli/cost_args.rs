//! `--cost-usd`, `--tokens-in`, `--tokens-out`: what work done by hand cost, recorded on its
//! event.

use crate::event::{Cost, CostSource};
use crate::{Error, Result};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct CostArgs {
    /// What this work cost in US dollars (recorded with source "provider").
    #[arg(long, value_name = "USD")]
    pub cost_usd: Option<f64>,
    /// Input tokens this work used.
    #[arg(long, value_name = "N")]
    pub tokens_in: Option<u64>,
    /// Output tokens this work produced.
    #[arg(long, value_name = "N")]
    pub tokens_out: Option<u64>,
}

impl CostArgs {
    pub fn cost(&self) -> Result<Cost> {
        let usd_micros = match self.cost_usd {
            Some(usd) if !usd.is_finite() || usd < 0.0 => {
                return Err(Error::usage(format!("--cost-usd {usd} is not a non-negative amount")));
            }
            Some(usd) => (usd * 1e6).round() as u64,
            None => 0,
        };
        Ok(Cost {
            input_tokens: self.tokens_in.unwrap_or(0),
            output_tokens: self.tokens_out.unwrap_or(0),
            usd_micros,
            source: if self.cost_usd.is_some() { CostSource::Provider } else { CostSource::None },
            ..Cost::default()
        })
    }
}
