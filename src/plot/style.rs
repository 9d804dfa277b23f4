//! The one look of every chart: colours (Okabe–Ito, safe for colour-blind readers), the colour
//! of each block type, text sizes, grid and the pixel density a chart is drawn at.

use plotters::style::{FontDesc, IntoFont, RGBColor, TextStyle};

use super::FONT_FAMILY;
use crate::model::classify::BlockType;

/// How many device pixels one layout pixel is: 1 for SVG, 2 for PNG (print sharpness). Every
/// size in a chart's layout (margins, text, strokes) is given at density 1 and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Density(pub u32);

impl Density {
    /// `pixels` at this density.
    pub fn px(self, pixels: u32) -> u32 {
        pixels * self.0
    }

    /// `pixels` at this density, signed (offsets).
    pub fn offset(self, pixels: i32) -> i32 {
        pixels * self.0 as i32
    }

    /// The chart font at `size` layout pixels.
    pub fn font(self, size: u32) -> FontDesc<'static> {
        (FONT_FAMILY, f64::from(self.px(size))).into_font()
    }

    /// Text of `size` in `colour`.
    pub fn text(self, size: u32, colour: &RGBColor) -> TextStyle<'static> {
        self.font(size).color(colour)
    }
}

/// Text sizes, in layout pixels.
pub mod text_size {
    /// The chart's title.
    pub const TITLE: u32 = 17;
    /// Axis titles.
    pub const AXIS_TITLE: u32 = 14;
    /// Tick labels, legend entries and bar labels.
    pub const LABEL: u32 = 13;
}

/// Okabe & Ito's colour-blind-safe palette (Wong, Nature Methods 8:441, 2011), without its
/// yellow (#F0E442), which is nearly invisible on white.
pub mod okabe_ito {
    use plotters::style::RGBColor;

    /// Blue.
    pub const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
    /// Sky blue.
    pub const SKY_BLUE: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
    /// Bluish green.
    pub const BLUISH_GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
    /// Reddish purple.
    pub const REDDISH_PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
    /// Orange.
    pub const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
    /// Vermillion.
    pub const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
    /// Black.
    pub const BLACK: RGBColor = RGBColor(0x00, 0x00, 0x00);
}

/// The series colours, in order: Okabe–Ito's seven, a neutral grey, and two of Paul Tol's
/// colour-blind-safe "muted" colours (olive, wine) for models with ten kinds of layer matrix.
pub const PALETTE: [RGBColor; 10] = [
    okabe_ito::BLUE,
    okabe_ito::SKY_BLUE,
    okabe_ito::BLUISH_GREEN,
    okabe_ito::REDDISH_PURPLE,
    okabe_ito::ORANGE,
    okabe_ito::VERMILLION,
    okabe_ito::BLACK,
    RGBColor(0x99, 0x99, 0x99),
    RGBColor(0x99, 0x99, 0x33),
    RGBColor(0x88, 0x22, 0x55),
];

/// The fill of a single-series chart (bars, histogram bins, a lone line).
pub const MAIN: RGBColor = okabe_ito::BLUE;

/// A mark on the data: the chosen k, the fit's xmin.
pub const ACCENT: RGBColor = okabe_ito::VERMILLION;

/// The shaded reference band (α 2–6), drawn at [`BAND_OPACITY`].
pub const BAND: RGBColor = okabe_ito::BLUISH_GREEN;

/// Opacity of the reference band's fill.
pub const BAND_OPACITY: f64 = 0.14;

/// Major grid lines.
pub const GRID: RGBColor = RGBColor(0xE3, 0xE3, 0xE3);

/// Axis lines, ticks and text.
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

/// Points without a group (a token outside every cluster), cells without a value.
pub const MISSING: RGBColor = RGBColor(0xB0, 0xB0, 0xB0);

/// How a series is drawn: its colour and whether its line is dashed (only when a chart holds
/// more series than the palette has colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesStyle {
    /// The line and marker colour.
    pub colour: RGBColor,
    /// Whether the line is dashed.
    pub dashed: bool,
}

/// The palette slot a block type prefers. Block types that share a layer in real models
/// (q, k, v, o; gate, up, down; the experts and their router; the norms) prefer different
/// slots, so in every chart of a run each keeps the same colour; fused kinds (qkv_proj,
/// mlp_gate_up) take the colour of what they fuse, and the tables outside the layers
/// (embedding, output) the colours of kinds they never share a by-layer chart with.
fn preferred_slot(block: BlockType) -> usize {
    match block {
        BlockType::QProj | BlockType::QkvProj | BlockType::Embedding => 0,
        BlockType::KProj | BlockType::PositionEmbedding => 1,
        BlockType::VProj => 2,
        BlockType::OProj | BlockType::Output => 3,
        BlockType::MlpGate | BlockType::MlpGateUp => 4,
        BlockType::MlpUp => 5,
        BlockType::MlpDown => 6,
        BlockType::Norm => 7,
        BlockType::Moe => 8,
        BlockType::MoeRouter | BlockType::Other => 9,
    }
}

/// The block type named `name` (as outputs spell it), if it is one.
fn block_type(name: &str) -> Option<BlockType> {
    BlockType::ALL.into_iter().find(|b| b.as_str() == name)
}

/// The style of each of the series `names` (block types, or any names) in one chart: a block
/// type gets its own slot of [`PALETTE`] unless another series of the chart holds it, then the
/// first free one; no two series share a colour until the palette is used up, after which
/// colours repeat with dashed lines.
pub fn series_styles(names: &[&str]) -> Vec<SeriesStyle> {
    let mut slots: Vec<Option<usize>> = vec![None; names.len()];
    let mut taken = [false; PALETTE.len()];
    for (slot, name) in slots.iter_mut().zip(names) {
        if let Some(preferred) = block_type(name).map(preferred_slot)
            && !taken[preferred]
        {
            taken[preferred] = true;
            *slot = Some(preferred);
        }
    }
    let mut overflow = 0;
    slots
        .into_iter()
        .map(|slot| {
            let free = slot.or_else(|| {
                let free = taken.iter().position(|t| !t)?;
                taken[free] = true;
                Some(free)
            });
            match free {
                Some(index) => SeriesStyle {
                    colour: PALETTE[index],
                    dashed: false,
                },
                None => {
                    overflow += 1;
                    SeriesStyle {
                        colour: PALETTE[(overflow - 1) % PALETTE.len()],
                        dashed: true,
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_block_types_share_a_colour_within_a_chart() {
        let layered: Vec<&str> = BlockType::ALL.iter().map(|b| b.as_str()).collect();
        // Every set of up to ten block types, as far as ten of the sixteen go: each prefix and
        // each suffix of the list, and the kinds of a dense, a fused and an MoE model.
        let mut charts: Vec<Vec<&str>> = Vec::new();
        for n in 1..=PALETTE.len() {
            charts.push(layered[..n].to_vec());
            charts.push(layered[layered.len() - n..].to_vec());
        }
        charts.push(vec![
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "mlp_gate",
            "mlp_up",
            "mlp_down",
            "norm",
            "moe",
            "moe_router",
        ]);
        charts.push(vec![
            "qkv_proj",
            "o_proj",
            "mlp_gate_up",
            "mlp_down",
            "norm",
        ]);
        charts.push(vec!["q_proj", "qkv_proj", "other", "moe_router"]);
        for chart in charts {
            let styles = series_styles(&chart);
            for (i, a) in styles.iter().enumerate() {
                assert!(!a.dashed, "{chart:?}");
                for b in &styles[i + 1..] {
                    assert_ne!(a.colour, b.colour, "{chart:?}");
                }
            }
        }
    }

    #[test]
    fn a_block_type_keeps_its_colour_across_the_charts_of_a_run() {
        // The stats charts hold the norms, the layers charts do not.
        let stats = series_styles(&["k_proj", "mlp_down", "norm", "q_proj"]);
        let layers = series_styles(&["k_proj", "mlp_down", "q_proj"]);
        assert_eq!(stats[0], layers[0]);
        assert_eq!(stats[1], layers[1]);
        assert_eq!(stats[3], layers[2]);
    }

    #[test]
    fn past_the_palette_colours_repeat_dashed() {
        let names: Vec<String> = (0..12).map(|i| format!("series {i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let styles = series_styles(&names);
        assert!(styles[..10].iter().all(|s| !s.dashed));
        assert!(styles[10..].iter().all(|s| s.dashed));
    }
}
