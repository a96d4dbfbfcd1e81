//! `--plot FILE.svg`: the timeline as three charts over time, one above the other: throughput, latency and
//! records outstanding (plotters, SVG backend).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::timeline::Second;
use crate::error::CliError;

/// Width and height of the picture, in pixels.
const SIZE: (u32, u32) = (1000, 900);

/// One line of a chart: its legend, colour and value per second.
struct Line {
    name: &'static str,
    colour: RGBColor,
    value: fn(&Second) -> f64,
}

/// One chart: its title, the unit of its y axis, and its lines.
struct Chart {
    title: &'static str,
    unit: &'static str,
    lines: Vec<Line>,
}

fn charts() -> [Chart; 3] {
    [
        // Kinesis records and throttling are two or three orders of magnitude below user records when
        // aggregating: on the same axis they would be flat lines. They are in --timeline's CSV.
        Chart {
            title: "Throughput (user records with a result)",
            unit: "user records/s",
            lines: vec![Line { name: "user records/s", colour: BLUE, value: |s| s.records_per_s }],
        },
        Chart {
            title: "Latency, put to result, of the records completed each second",
            unit: "ms",
            lines: vec![
                Line { name: "p50", colour: BLUE, value: |s| s.latency_p50_ms },
                Line { name: "p99", colour: MAGENTA, value: |s| s.latency_p99_ms },
                Line { name: "max", colour: RED, value: |s| s.latency_max_ms },
            ],
        },
        Chart {
            title: "Outstanding (put, no result yet)",
            unit: "user records",
            lines: vec![Line {
                name: "records outstanding",
                colour: BLUE,
                value: |s| s.outstanding_records as f64,
            }],
        },
    ]
}

/// Draws `seconds` into an SVG file at `path`.
pub fn write_svg(path: &Path, seconds: &[Second]) -> Result<(), CliError> {
    draw(path, seconds).map_err(|error| CliError::Plot { path: path.to_owned(), message: error.to_string() })
}

fn draw(path: &Path, seconds: &[Second]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = seconds.iter().map(|s| s.time_s).fold(1.0, f64::max);
    for (area, chart) in root.split_evenly((3, 1)).iter().zip(charts()) {
        let y_max = seconds
            .iter()
            .flat_map(|second| chart.lines.iter().map(move |line| (line.value)(second)))
            .fold(0.0, f64::max);
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let mut plot = ChartBuilder::on(area)
            .caption(chart.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        plot.configure_mesh()
            .x_desc("time (s)")
            .y_desc(chart.unit)
            .y_label_formatter(&|value| axis_label(*value))
            .draw()?;
        for line in &chart.lines {
            let points = seconds.iter().map(|second| (second.time_s, (line.value)(second)));
            let colour = line.colour;
            plot.draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        plot.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// An axis value: whole numbers with thousands separators, fractions below 10.
fn axis_label(value: f64) -> String {
    if value.abs() < 10.0 && value.fract() != 0.0 {
        format!("{value:.1}")
    } else {
        crate::failures::thousands(value.max(0.0).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_the_three_charts_and_their_lines() {
        let seconds: Vec<Second> = (1..=5)
            .map(|t| Second {
                time_s: f64::from(t),
                records_per_s: 1000.0 * f64::from(t),
                megabytes_per_s: 0.1,
                kinesis_records_per_s: 10.0,
                requests_per_s: 2.0,
                throttled_per_s: 0.0,
                latency_p50_ms: 100.0,
                latency_p99_ms: 150.0,
                latency_max_ms: 200.0,
                outstanding_records: 50,
                outstanding_bytes: 5000,
            })
            .collect();
        let path = std::env::temp_dir().join(format!("kpl-plot-{}.svg", std::process::id()));
        write_svg(&path, &seconds).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in ["Throughput", "Latency", "Outstanding", "user records/s", "p99", "time (s)", "5,000"] {
            assert!(svg.contains(text), "the chart lacks {text:?}");
        }
        // The 5 lines (2 px wide) have a point per second; the grid's lines are 1 px wide.
        let lines: Vec<usize> = svg
            .split("<polyline")
            .skip(1)
            .map(|element| element.split("/>").next().unwrap_or_default())
            .filter(|element| element.contains("stroke-width=\"2\""))
            .map(|element| {
                element
                    .split(" points=\"")
                    .nth(1)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter(|point| point.contains(','))
                    .count()
            })
            .collect();
        assert_eq!(lines.iter().filter(|&&points| points == 5).count(), 5, "{lines:?}");
    }
}
