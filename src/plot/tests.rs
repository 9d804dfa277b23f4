//! Every chart kind renders a well-formed SVG of the stated size and a PNG of twice that, text
//! included; legends stay clear of the data.

use super::*;

const SIZE: (u32, u32) = (640, 400);

fn line() -> LineChart {
    LineChart {
        title: "Elbow".into(),
        x_label: "k".into(),
        y_label: "inertia".into(),
        points: (2..12)
            .map(|k| (f64::from(k), 100.0 / f64::from(k)))
            .collect(),
        marked: Some((5, "k = 7".into())),
    }
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

fn check(chart: &impl Chart) {
    let svg = render_svg(chart, SIZE).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
    assert!(svg.contains("width=\"640\"") && svg.contains("height=\"400\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    let png = render_png(chart, SIZE).unwrap();
    assert_eq!(png_size(&png), (2 * SIZE.0, 2 * SIZE.1));
}

#[test]
fn every_kind_renders_at_the_stated_size() {
    check(&line());
    check(&BarChart {
        title: "Cluster sizes".into(),
        x_label: "cluster".into(),
        y_label: "rows".into(),
        values: vec![5.0, 3.0, 9.0, f64::NAN],
    });
    check(&Scatter {
        title: "PCA".into(),
        x_label: "PC1".into(),
        y_label: "PC2".into(),
        points: vec![(0.0, 1.0, Some(0)), (1.0, 0.5, Some(3)), (0.2, 0.1, None)],
    });
    check(&Histogram {
        title: "Norms".into(),
        x_label: "norm".into(),
        y_label: "rows".into(),
        values: vec![1.0, 2.0, 2.5, f64::INFINITY],
        bins: 4,
    });
    check(&MarkedHistogram {
        title: "Scores".into(),
        x_label: "score".into(),
        y_label: "tokens".into(),
        values: ("tokens".into(), vec![-0.2, 0.1, 0.3]),
        marked: ("unused tokens".into(), vec![0.9, 0.95]),
        bins: 10,
    });
    check(&Heatmap {
        title: "Heads".into(),
        x_label: "head".into(),
        y_label: "layer".into(),
        rows: 3,
        cols: 4,
        values: (0..12).map(f64::from).collect(),
    });
    check(&CategoryBarChart {
        title: "Parameters by dtype".into(),
        x_label: "parameters".into(),
        bars: vec![("BF16".into(), 4e7), ("F32".into(), 1e4)],
    });
    check(&EsdChart {
        title: "ESD".into(),
        eigenvalues: (1..400).map(|i| f64::from(i).powf(1.5)).collect(),
        xmin: Some(100.0),
        randomized: None,
    });
    check(&EsdChart {
        title: "ESD beside its shuffle".into(),
        eigenvalues: (1..400).map(|i| f64::from(i).powf(1.5)).collect(),
        xmin: Some(100.0),
        randomized: Some((1..400).map(|i| f64::from(i % 50 + 1)).collect()),
    });
    check(&multi_line(12));
    // Empty data still draws a frame.
    check(&Scatter {
        title: "empty".into(),
        x_label: String::new(),
        y_label: String::new(),
        points: Vec::new(),
    });
}

#[test]
fn a_png_is_twice_the_stated_size() {
    let png = render_png(&line(), (960, 640)).unwrap();
    assert_eq!(png_size(&png), (1920, 1280));
}

/// Lines per block type over 30 layers, the first `count` block types, the α band shaded.
fn multi_line(count: usize) -> MultiLineChart {
    let series = crate::model::classify::BlockType::ALL
        .iter()
        .cycle()
        .take(count)
        .enumerate()
        .map(|(i, block)| {
            let points = (0..30)
                .map(|layer| {
                    (
                        f64::from(layer),
                        2.0 + 0.3 * i as f64 + f64::from(layer) / 10.0,
                    )
                })
                .collect();
            (block.as_str().to_string(), points)
        })
        .collect();
    MultiLineChart {
        title: "alpha by layer".into(),
        x_label: "layer".into(),
        y_label: "alpha".into(),
        series,
        band: Some(Band::typical_alpha()),
    }
}

/// The value of attribute `name` of the SVG element `element` (its text from `<` to `>`).
fn attribute(element: &str, name: &str) -> Option<f64> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + element[start..].find('"')?;
    element[start..end].parse().ok()
}

#[test]
fn no_legend_entry_sits_on_a_plotted_point() {
    for (count, size) in [(3, SIZE), (10, SIZE), (10, (720, 450)), (16, (960, 640))] {
        let chart = multi_line(count);
        let svg = render_svg(&chart, size).unwrap();
        let entries = chart.legend();
        let legend = legend::legend_box(size, &entries, Density(1)).unwrap();
        let circles: Vec<(f64, f64, f64)> = svg
            .split('<')
            .filter(|e| e.starts_with("circle"))
            .map(|e| {
                let at = |n| attribute(e, n).unwrap();
                (at("cx"), at("cy"), at("r"))
            })
            .collect();
        assert_eq!(circles.len(), 30 * count, "every point is drawn");
        for (x, y, r) in circles {
            assert!(
                !legend.near((x, y), r),
                "point ({x}, {y}) under the legend {legend:?}"
            );
        }
        // The legend's text is where the layout says, so the check above is about the legend.
        for entry in &entries {
            let text = svg
                .split('<')
                .find(|e| {
                    e.starts_with("text")
                        && e.split_once('>').map(|(_, text)| text.trim())
                            == Some(entry.label.as_str())
                })
                .unwrap_or_else(|| panic!("no legend text {}", entry.label));
            let (x, y) = (attribute(text, "x").unwrap(), attribute(text, "y").unwrap());
            assert!(
                legend.near((x, y), 0.0),
                "{} at ({x}, {y}) outside {legend:?}",
                entry.label
            );
        }
    }
}

/// The text of every `<text>` element of an SVG.
fn texts(svg: &str) -> Vec<&str> {
    svg.split('<')
        .filter(|e| e.starts_with("text"))
        .filter_map(|e| Some(e.split_once('>')?.1.trim()))
        .collect()
}

#[test]
fn a_chart_of_zero_to_forty_million_ticks_in_tens_of_millions() {
    let chart = LineChart {
        title: "Parameters".into(),
        x_label: "layer".into(),
        y_label: "parameters".into(),
        points: (0..5).map(|i| (f64::from(i), f64::from(i) * 1e7)).collect(),
        marked: None,
    };
    let svg = render_svg(&chart, SIZE).unwrap();
    let texts = texts(&svg);
    for label in ["0", "10M", "20M", "30M", "40M"] {
        assert!(texts.contains(&label), "{label} in {texts:?}");
    }
    assert!(
        texts
            .iter()
            .all(|t| !t.ends_with(".0") && !t.contains("000")),
        "{texts:?}"
    );
}

#[test]
fn png_text_comes_from_the_bundled_font() {
    // The same chart with and without a title: the title's glyphs must change pixels.
    let with = render_png(&line(), SIZE).unwrap();
    let without = render_png(
        &LineChart {
            title: String::new(),
            ..line()
        },
        SIZE,
    )
    .unwrap();
    assert_ne!(with, without);
    let svg = render_svg(&line(), SIZE).unwrap();
    assert!(svg.contains("Elbow") && svg.contains("k = 7"));
}

#[test]
fn histogram_bins_as_numpy() {
    let histogram = Histogram {
        title: String::new(),
        x_label: String::new(),
        y_label: String::new(),
        values: vec![0.0, 0.5, 1.0, 1.5, 2.0, f64::NAN],
        bins: 2,
    };
    // numpy.histogram([0, .5, 1, 1.5, 2], bins=2) → counts [2, 3], edges [0, 1, 2].
    assert_eq!(histogram.counts(), vec![(0.0, 1.0, 2), (1.0, 2.0, 3)]);
}

#[test]
fn marked_values_stack_on_the_others_in_shared_bins() {
    let histogram = MarkedHistogram {
        title: String::new(),
        x_label: String::new(),
        y_label: String::new(),
        values: (String::new(), vec![0.0, 0.5, 1.0, f64::NAN]),
        marked: (String::new(), vec![1.5, 2.0, 1.2]),
        bins: 2,
    };
    // The bins span both sets, [0, 1) and [1, 2]: 0 and 0.5 below, 1 with the marked above.
    assert_eq!(histogram.counts(), vec![(0.0, 1.0, 2, 0), (1.0, 2.0, 1, 3)]);
}

#[test]
fn writes_both_files_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let (svg, png) = write_chart(&line(), &dir.path().join("elbow"), SIZE).unwrap();
    assert!(svg.ends_with("elbow.svg") && png.ends_with("elbow.png"));
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (1280, 800));
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
}
