//! The insights chart, drawn as a PNG for both adapters (`/insights` attaches it, the
//! HTML report of `shopkeep insights` inlines it): questions per UTC day, stacked as
//! answered by the bot, handed off and not answered, above the 👍 and 👎 cast per day.
//!
//! Drawn with plotters on an in-memory bitmap and encoded with the `png` crate. Text uses
//! DejaVu Sans from the `dejavu` crate, compiled in, so the chart needs no system fonts
//! (the fonts' licence, Bitstream Vera's with DejaVu's changes in the public domain, ships
//! with that crate and allows embedding).

use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, DrawingBackend};
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use crate::assistant::moderation::insights::DayCounts;

/// The chart's width in pixels.
pub const WIDTH: u32 = 960;
/// The chart's height in pixels.
pub const HEIGHT: u32 = 540;
/// Height of the questions panel; the feedback panel takes the rest.
const QUESTIONS_PANEL: u32 = 340;

/// Bars of questions answered by the bot.
pub const ANSWERED: RGBColor = RGBColor(46, 139, 87);
/// Bars of questions handed off.
pub const HANDED_OFF: RGBColor = RGBColor(230, 159, 0);
/// Bars of questions not answered (rate-limited, busy, failed).
pub const NOT_ANSWERED: RGBColor = RGBColor(150, 150, 150);
/// Bars of 👍.
pub const HELPFUL: RGBColor = RGBColor(0, 114, 178);
/// Bars of 👎.
pub const NOT_HELPFUL: RGBColor = RGBColor(204, 51, 17);

/// The font family name the embedded DejaVu Sans is registered under.
const FONT: &str = "sans-serif";

type DrawError = DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

/// Why the chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The embedded font did not load (a broken build).
    #[error("the embedded chart font could not be loaded")]
    Font,
    /// Drawing failed.
    #[error("could not draw the insights chart")]
    Draw(#[source] DrawError),
    /// PNG encoding failed.
    #[error("could not encode the insights chart as PNG")]
    Encode(#[source] png::EncodingError),
}

impl From<DrawError> for ChartError {
    fn from(error: DrawError) -> Self {
        ChartError::Draw(error)
    }
}

/// The chart of `days` (oldest first, one bar each) as a PNG of [`WIDTH`] × [`HEIGHT`]
/// pixels, RGB, 8 bits per channel. No days draws empty panels.
pub fn png(days: &[DayCounts]) -> Result<Vec<u8>, ChartError> {
    register_embedded_font()?;
    let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(QUESTIONS_PANEL);
        draw_panel(&top, &QUESTIONS, &QUESTION_SERIES, days)?;
        draw_panel(&bottom, &FEEDBACK, &FEEDBACK_SERIES, days)?;
        root.present()?;
    }
    encode(&pixels)
}

fn register_embedded_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    ok.then_some(()).ok_or(ChartError::Font)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One kind of bar: its legend name, colour, count per day, and the part of the day's
/// slot (fractions from its left edge) it spans.
struct Series {
    name: &'static str,
    color: RGBColor,
    count: fn(&DayCounts) -> u64,
    slot: (f64, f64),
}

/// One panel's layout.
struct Panel {
    caption: &'static str,
    caption_size: u32,
    /// Bars of the series stacked on each other (else each from zero).
    stacked: bool,
    /// The top share of the panel kept free for the legend.
    legend_share: f64,
    y_labels: usize,
}

const QUESTIONS: Panel = Panel {
    caption: "Questions per day (UTC)",
    caption_size: 20,
    stacked: true,
    legend_share: 0.3,
    y_labels: 6,
};

const QUESTION_SERIES: [Series; 3] = [
    Series {
        name: "answered by the bot",
        color: ANSWERED,
        count: |d| d.answered,
        slot: (0.06, 0.94),
    },
    Series {
        name: "handed off",
        color: HANDED_OFF,
        count: |d| d.handed_off,
        slot: (0.06, 0.94),
    },
    Series {
        name: "not answered",
        color: NOT_ANSWERED,
        count: |d| d.not_answered,
        slot: (0.06, 0.94),
    },
];

const FEEDBACK: Panel = Panel {
    caption: "Feedback per day",
    caption_size: 18,
    stacked: false,
    legend_share: 0.45,
    y_labels: 4,
};

/// Two bars side by side in each day's slot.
const FEEDBACK_SERIES: [Series; 2] = [
    Series {
        name: "helpful",
        color: HELPFUL,
        count: |d| d.helpful,
        slot: (0.08, 0.5),
    },
    Series {
        name: "not helpful",
        color: NOT_HELPFUL,
        count: |d| d.not_helpful,
        slot: (0.5, 0.92),
    },
];

/// Day labels shown at most (every day up to this many, else every k-th).
const MAX_DAY_LABELS: usize = 14;

/// A y range over `max` that leaves the top `legend` share of the panel free for the
/// legend (so that bars never run under it), at least 0..5.
fn y_range(max: u64, legend: f64) -> std::ops::Range<u64> {
    let top = (max as f64 / (1.0 - legend)).ceil() as u64 + 1;
    0..top.max(5)
}

/// Draws one panel: a slot per day (x from 0 to the number of days), the series' bars,
/// the days' month-day labels under their slots, and the legend.
fn draw_panel(
    area: &Area<'_>,
    panel: &Panel,
    series: &[Series],
    days: &[DayCounts],
) -> Result<(), ChartError> {
    let max = days
        .iter()
        .map(|day| {
            let counts = series.iter().map(|s| (s.count)(day));
            if panel.stacked {
                counts.sum()
            } else {
                counts.max().unwrap_or(0)
            }
        })
        .max()
        .unwrap_or(0);
    let slots = days.len().max(1);
    let caption = (FONT, panel.caption_size)
        .into_font()
        .style(FontStyle::Bold);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, caption)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..slots as f64, y_range(max, panel.legend_share))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(panel.y_labels)
        .label_style((FONT, 13))
        .draw()?;
    let mut base = vec![0u64; days.len()];
    for s in series {
        let mut bars = Vec::new();
        for (i, day) in days.iter().enumerate() {
            let count = (s.count)(day);
            let from = if panel.stacked { base[i] } else { 0 };
            base[i] = from + count;
            if count > 0 {
                let x = i as f64;
                bars.push(Rectangle::new(
                    [(x + s.slot.0, from), (x + s.slot.1, from + count)],
                    s.color.filled(),
                ));
            }
        }
        let color = s.color;
        chart
            .draw_series(bars)?
            .label(s.name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
    }
    let (left, top) = area.get_base_pixel();
    let label_style =
        TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, day) in days
        .iter()
        .enumerate()
        .step_by(days.len().div_ceil(MAX_DAY_LABELS).max(1))
    {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0));
        let label = day.date.get(5..).unwrap_or(&day.date);
        area.draw(&Text::new(
            label.to_string(),
            (x - left, y - top + 6),
            label_style.clone(),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

fn encode(pixels: &[u8]) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(ChartError::Encode)?;
    writer
        .write_image_data(pixels)
        .map_err(ChartError::Encode)?;
    writer.finish().map_err(ChartError::Encode)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, counts: [u64; 5]) -> DayCounts {
        DayCounts {
            date: date.into(),
            start: 0,
            answered: counts[0],
            handed_off: counts[1],
            not_answered: counts[2],
            helpful: counts[3],
            not_helpful: counts[4],
        }
    }

    /// The decoded RGB pixels of a PNG, with its size.
    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        (info.width, info.height, pixels)
    }

    fn count_of(pixels: &[u8], color: RGBColor) -> usize {
        pixels
            .chunks_exact(3)
            .filter(|p| p == &[color.0, color.1, color.2])
            .count()
    }

    #[test]
    fn each_series_is_drawn_in_its_colour_in_proportion() {
        let days = [
            day("2026-11-29", [8, 2, 0, 3, 0]),
            day("2026-11-30", [8, 2, 0, 3, 0]),
        ];
        let (width, height, pixels) = decode(&png(&days).unwrap());
        assert_eq!((width, height), (WIDTH, HEIGHT));
        let answered = count_of(&pixels, ANSWERED);
        let handed_off = count_of(&pixels, HANDED_OFF);
        // Bars (and a legend swatch each) in the series' colours, about 4 : 1.
        assert!(answered > 3 * handed_off, "{answered} vs {handed_off}");
        assert!(handed_off > 200, "{handed_off}");
        assert!(count_of(&pixels, HELPFUL) > 200);
        // Only legend swatches (12 × 12 at most) for the series with no bars.
        assert!(count_of(&pixels, NOT_ANSWERED) <= 13 * 13);
        assert!(count_of(&pixels, NOT_HELPFUL) <= 13 * 13);
    }

    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        let (_, _, empty) = decode(&png(&[]).unwrap());
        // The top 36 rows hold the caption and nothing else (no axes, no bars).
        let caption = &empty[..(WIDTH * 36 * 3) as usize];
        let dark = caption
            .chunks_exact(3)
            .filter(|p| p.iter().all(|&c| c < 100))
            .count();
        assert!(dark > 300, "{dark} dark pixels in the caption");
    }
}
