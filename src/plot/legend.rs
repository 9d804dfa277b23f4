//! Legends sit in a column right of the plotting area, never over the data: the chart's width
//! is split, and this module says where and draws the entries.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{BAND_OPACITY, Density, INK, SeriesStyle, text_size};

/// Height of the title strip above a chart, in layout pixels.
pub const TITLE_HEIGHT: u32 = 34;

/// Margin around the plotting area and the legend, in layout pixels.
pub const MARGIN: u32 = 12;

/// Height of one legend entry, in layout pixels.
const ENTRY_HEIGHT: u32 = 20;

/// Length of a legend's line sample, in layout pixels.
const SAMPLE_LENGTH: u32 = 22;

/// Gap between a sample and its text, in layout pixels.
const SAMPLE_GAP: u32 = 6;

/// What a legend entry shows beside its text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// A line of a series.
    Line(SeriesStyle),
    /// A filled swatch of a shaded region.
    Swatch(RGBColor),
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The text.
    pub label: String,
    /// The sample beside it.
    pub mark: Mark,
}

/// A rectangle in device pixels: left, top inclusive; right, bottom exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelBox {
    /// Left edge.
    pub left: i32,
    /// Top edge.
    pub top: i32,
    /// Right edge.
    pub right: i32,
    /// Bottom edge.
    pub bottom: i32,
}

impl PixelBox {
    /// Whether the point (x, y) lies within `pad` pixels of the box.
    #[cfg(test)]
    pub fn near(&self, (x, y): (f64, f64), pad: f64) -> bool {
        x + pad >= f64::from(self.left)
            && x - pad < f64::from(self.right)
            && y + pad >= f64::from(self.top)
            && y - pad < f64::from(self.bottom)
    }
}

/// The width of `text` in the chart font at `size`, in device pixels.
pub fn text_width(text: &str, size: u32, density: Density) -> u32 {
    let font = density.font(size);
    // Measuring fails only for a font that does not load, which the plot tests catch; an
    // estimate from the character count keeps the layout sane then.
    font.box_size(text).map_or_else(
        |_| density.px(size) * text.chars().count() as u32 * 3 / 5,
        |(width, _)| width,
    )
}

/// Where the legend of `entries` goes in a chart of `(width, height)` device pixels: a column
/// at the right edge, from the top of the plotting area down. None without entries.
pub fn legend_box(
    (width, _height): (u32, u32),
    entries: &[Entry],
    density: Density,
) -> Option<PixelBox> {
    let widest = entries
        .iter()
        .map(|e| text_width(&e.label, text_size::LABEL, density))
        .max()?;
    let inner = density.px(SAMPLE_LENGTH + SAMPLE_GAP) + widest;
    let right = width.saturating_sub(density.px(MARGIN));
    let left = right.saturating_sub(inner);
    let top = density.px(TITLE_HEIGHT + MARGIN);
    let bottom = top + density.px(ENTRY_HEIGHT) * entries.len() as u32;
    let signed = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    Some(PixelBox {
        left: signed(left),
        top: signed(top),
        right: signed(right),
        bottom: signed(bottom),
    })
}

/// Draws the title across the top of `area` and splits what is left into the plotting part
/// and, with entries, the legend column (drawn); returns the plotting part.
pub fn title_and_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[Entry],
    density: Density,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, _) = area.dim_in_pixel();
    let (title_strip, body) = area.split_vertically(density.px(TITLE_HEIGHT));
    let centre = (width / 2) as i32;
    title_strip.draw(&Text::new(
        title.to_string(),
        (centre, density.offset(10)),
        density
            .text(text_size::TITLE, &INK)
            .pos(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    let Some(place) = legend_box(area.dim_in_pixel(), entries, density) else {
        return Ok(body);
    };
    // The plotting part ends a margin left of the legend.
    let split = (place.left - density.offset(MARGIN as i32)).max(0) as u32;
    let (plot, _) = body.split_horizontally(split);
    for (i, entry) in entries.iter().enumerate() {
        let y = place.top + density.offset((ENTRY_HEIGHT * i as u32 + ENTRY_HEIGHT / 2) as i32);
        let sample = (
            place.left,
            place.left + density.offset(SAMPLE_LENGTH as i32),
        );
        match entry.mark {
            Mark::Line(style) => {
                let stroke = style.colour.stroke_width(density.px(2));
                // A dashed series shows dashes: two segments with a gap.
                let pieces = if style.dashed {
                    let third = (sample.1 - sample.0) / 3;
                    vec![(sample.0, sample.0 + third), (sample.1 - third, sample.1)]
                } else {
                    vec![sample]
                };
                for (from, to) in pieces {
                    area.draw(&PathElement::new(vec![(from, y), (to, y)], stroke))?;
                }
            }
            Mark::Swatch(colour) => {
                let half = density.offset(6);
                area.draw(&Rectangle::new(
                    [(sample.0, y - half), (sample.1, y + half)],
                    colour.mix(BAND_OPACITY * 2.0).filled(),
                ))?;
            }
        }
        area.draw(&Text::new(
            entry.label.clone(),
            (sample.1 + density.offset(SAMPLE_GAP as i32), y),
            density
                .text(text_size::LABEL, &INK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(plot)
}
