//! The library side of `aib layers`: WeightWatcher's spectral metrics of each matrix, attention
//! heads split out of their projections, and how matrices drift from layer to layer.

pub mod analysis;
pub mod detx;
pub mod documents;
pub mod drift;
pub mod heads;
pub mod incomplete_gamma;
pub mod metrics;
pub mod mp_fit;
pub mod nelder_mead;
pub mod parts;
pub mod plots;
pub mod power_law;
pub mod randomize;
pub mod truncated_power_law;
pub mod xmin_peak;
