//! STUB (replaced by the spectral branch).
use crate::error::Result;
/// stub
pub trait MatrixRows: Sync {
    /// stub
    fn shape(&self) -> (usize, usize);
    /// stub
    fn read_rows(&self, start: usize, out: &mut [f32]);
}
/// stub
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankMethod {
    /// stub
    Exact,
    /// stub
    Randomized,
}
/// stub
#[derive(Debug, Clone)]
pub struct SpectralOptions {
    /// stub
    pub seed: u64,
    /// stub
    pub method: RankMethod,
    /// stub
    pub rtol: Option<f64>,
    /// stub
    pub max_k: usize,
    /// stub
    pub exact_max_dim: usize,
}
impl Default for SpectralOptions {
    fn default() -> Self {
        SpectralOptions {
            seed: 0,
            method: RankMethod::Randomized,
            rtol: None,
            max_k: 512,
            exact_max_dim: 8192,
        }
    }
}
/// stub
#[derive(Debug, Clone)]
pub struct SpectralSummary {
    /// stub
    pub rank: Option<usize>,
    /// stub
    pub sigma_max: Option<f64>,
    /// stub
    pub stable_rank: Option<f64>,
    /// stub
    pub effective_rank: Option<f64>,
    /// stub
    pub energy_rank_90: Option<usize>,
    /// stub
    pub energy_rank_99: Option<usize>,
    /// stub
    pub method: RankMethod,
    /// stub
    pub lower_bound: bool,
}
/// stub
pub fn analyse(_m: &dyn MatrixRows, _f: f64, _o: &SpectralOptions) -> Result<SpectralSummary> {
    Ok(SpectralSummary {
        rank: None,
        sigma_max: None,
        stable_rank: None,
        effective_rank: None,
        energy_rank_90: None,
        energy_rank_99: None,
        method: RankMethod::Exact,
        lower_bound: false,
    })
}
