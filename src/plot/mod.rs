//! Charts for `aib embed`, `aib layers` and the report page, each written as SVG of a stated
//! size and PNG at twice that size (print density).
//!
//! A chart is a plain struct ([`LineChart`], [`MultiLineChart`], [`BarChart`],
//! [`CategoryBarChart`], [`Scatter`], [`Histogram`], [`MarkedHistogram`], [`Heatmap`],
//! [`EsdChart`]) drawn by plotters
//! on either backend, all in one style (`style`): Okabe–Ito colours with a fixed colour per
//! block type, light major grid lines only, round ticks with short labels (`axis`), log axes
//! for series spanning more than two decades, legends right of the data (`legend`). Text is
//! laid out (and in PNG rasterised) with DejaVu Sans, bundled in the binary, so the output never
//! depends on the fonts of the machine; SVG names the family `sans-serif` for viewers. Files are
//! written atomically (a temporary sibling, renamed).

mod axis;
mod charts;
mod legend;
mod style;

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use charts::{
    Band, BarChart, CategoryBarChart, EsdChart, EsdOverlay, Heatmap, Histogram, LineChart,
    MarkedHistogram, MultiLineChart, Scatter,
};
pub use style::Density;

use crate::error::{Error, ErrorKind, Result};
use crate::output::atomic::write_atomically;

/// The font family every chart's text uses.
const FONT_FAMILY: &str = "sans-serif";

/// DejaVu Sans 2.37 (Bitstream Vera licence, in `assets/fonts/`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The density PNGs are drawn at: twice the stated size, sharp in print.
pub const PNG_DENSITY: Density = Density(2);

/// Something that can draw itself on any plotters backend.
pub trait Chart {
    /// Draws the chart on `area` (already cleared to white), every layout size multiplied by
    /// `density`.
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Makes the bundled font the one plotters rasterises `FONT_FAMILY` with.
fn register_bundled_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bytes are a valid font file committed with the source; failing here is a build
        // defect, which the plot tests catch.
        let registered =
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, DEJAVU_SANS);
        debug_assert!(registered.is_ok(), "the bundled DejaVu Sans does not parse");
    });
}

fn drawing_error(path: &Path, err: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("drawing the chart {}: {err}", path.display()),
    )
}

/// The chart as an SVG document of `width × height` pixels.
pub fn render_svg(chart: &impl Chart, (width, height): (u32, u32)) -> Result<String> {
    // SVG text is written as text, but plotters measures it for the layout with the same font.
    register_bundled_font();
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        area.fill(&WHITE)
            .and_then(|()| chart.draw(&area, Density(1)))
            .and_then(|()| area.present())
            .map_err(|e| drawing_error(Path::new("(svg)"), e))?;
    }
    Ok(svg)
}

/// The chart laid out at `size` as a PNG image at [`PNG_DENSITY`]: 1920 × 1280 pixels (8-bit
/// RGB) for a `size` of 960 × 640.
pub fn render_png(chart: &impl Chart, size: (u32, u32)) -> Result<Vec<u8>> {
    register_bundled_font();
    let (width, height) = (PNG_DENSITY.px(size.0), PNG_DENSITY.px(size.1));
    let mut pixels = vec![255_u8; width as usize * height as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        area.fill(&WHITE)
            .and_then(|()| chart.draw(&area, PNG_DENSITY))
            .and_then(|()| area.present())
            .map_err(|e| drawing_error(Path::new("(png)"), e))?;
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels))
        .map_err(|e| drawing_error(Path::new("(png)"), e))?;
    Ok(png)
}

/// Writes `stem.svg` of `size` pixels and `stem.png` at [`PNG_DENSITY`] (`stem` plus those
/// extensions), each atomically; returns their paths.
pub fn write_chart(
    chart: &impl Chart,
    stem: &Path,
    size: (u32, u32),
) -> Result<(PathBuf, PathBuf)> {
    let with_extension = |ext: &str| {
        let mut name = stem.as_os_str().to_owned();
        name.push(".");
        name.push(ext);
        PathBuf::from(name)
    };
    let (svg_path, png_path) = (with_extension("svg"), with_extension("png"));
    let svg = render_svg(chart, size)?;
    write_atomically(&svg_path, |out| out.write_all(svg.as_bytes()))?;
    let png = render_png(chart, size)?;
    write_atomically(&png_path, |out| out.write_all(&png))?;
    Ok((svg_path, png_path))
}

#[cfg(test)]
mod tests;
