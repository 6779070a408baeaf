//! The SVG plot of a run: the latency percentile curve on top, throughput over time below.
//!
//! The percentile axis is in "nines" (0 = p0, 1 = p90, 2 = p99, 3 = p99.9 …) so the tail gets
//! as much room as the median, as in HdrHistogram's own plots; latency is on a log axis so a
//! 20 µs median and a 50 ms outlier are both readable.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::bench::latency::Latency;
use crate::bench::report::Report;

/// Width and height of the SVG in pixels.
const SIZE: (u32, u32) = (1000, 800);

/// Draws `report` into the SVG file at `path`.
///
/// # Errors
/// Failures of the drawing backend (usually the file cannot be written).
pub fn draw(path: &Path, report: &Report) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let mut curves = vec![("produce", &report.latency, BLUE)];
    if let Some(c) = &report.consume {
        curves.push(("end to end (ms clock)", &c.e2e, RED));
    }
    draw_percentiles(&top, report.mode, &curves)?;
    draw_throughput(&bottom, report)?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// `quantile` as a count of nines: 0.99 → 2.
fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).max(1e-9).log10()
}

fn percentile_label(nines: &f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-nines));
    format!("p{}", (p * 1000.0).round() / 1000.0)
}

/// A log axis' label: only 1, 2 and 5 times a power of ten are written, so the labels of a
/// decade do not crowd each other.
fn log_label(us: &f64) -> String {
    let leading = us / 10f64.powf(us.log10().floor());
    if [1.0, 2.0, 5.0].iter().any(|d| (leading - d).abs() < 0.01) {
        format!("{us:.0}")
    } else {
        String::new()
    }
}

fn draw_percentiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    mode: &str,
    curves: &[(&str, &Latency, RGBColor)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let points: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|(_, l, _)| {
            l.curve()
                .into_iter()
                .map(|(q, us)| (nines(q), us.max(1) as f64))
                .collect()
        })
        .collect();
    let y_max = points.iter().flatten().map(|p| p.1).fold(10.0, f64::max) * 1.5;
    // From the power of ten below the fastest answer, so the curve fills the height.
    let fastest = points.iter().flatten().map(|p| p.1).fold(y_max, f64::min);
    let y_min = 10f64.powf(fastest.log10().floor()).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{mode}: latency by percentile"), ("sans-serif", 20))
        .margin(15)
        // Room for the last percentile's label, centred on the right edge.
        .margin_right(40)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..5f64, (y_min..y_max).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(6)
        .x_label_formatter(&percentile_label)
        .y_label_formatter(&log_label)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for ((name, _, color), pts) in curves.iter().zip(points) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn draw_throughput<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let pts: Vec<(f64, f64)> = report
        .series
        .iter()
        .map(|s| (s.second, s.bytes_per_sec / 1e6))
        .collect();
    let x_max = pts.iter().map(|p| p.0).fold(1.0, f64::max);
    let y_max = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(area)
        .caption("throughput", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("MB/s acknowledged")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_map_percentiles_to_even_steps() {
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(percentile_label(&2.0), "p99");
        assert_eq!(percentile_label(&0.0), "p0");
    }

    #[test]
    fn a_log_axis_labels_one_two_and_five_of_each_decade() {
        let labelled: Vec<String> = [100.0, 200.0, 300.0, 500.0, 700.0, 1000.0, 2000.0, 9000.0]
            .iter()
            .map(log_label)
            .collect();
        assert_eq!(labelled, ["100", "200", "", "500", "", "1000", "2000", ""]);
    }
}
