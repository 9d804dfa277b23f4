//! A seeded, portable pseudo-random source: SplitMix64 for bits, Box–Muller for Gaussians.
//!
//! Written here rather than taken from `rand` so that the fixture bytes can never change with a
//! dependency's version: regeneration must be bit-identical.

/// A SplitMix64 stream (Steele, Lea & Flood 2014) with a cached second Box–Muller normal.
pub struct Random {
    state: u64,
    spare_normal: Option<f64>,
}

impl Random {
    /// A stream that depends only on `seed`.
    pub fn new(seed: u64) -> Random {
        Random {
            state: seed,
            spare_normal: None,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform draw from (0, 1], never 0 so that its logarithm is finite.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..bound` (`bound` > 0; the modulo bias is irrelevant for fixtures).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// A standard normal draw (Box–Muller). `ln` and `cos` come from the platform's libm; values
    /// are rounded to at most f32 before they are stored, which absorbs their last-ulp
    /// differences between platforms in all but astronomically rare cases.
    pub fn normal(&mut self) -> f64 {
        if let Some(spare) = self.spare_normal.take() {
            return spare;
        }
        let radius = (-2.0 * self.uniform().ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * self.uniform();
        self.spare_normal = Some(radius * angle.sin());
        radius * angle.cos()
    }
}
