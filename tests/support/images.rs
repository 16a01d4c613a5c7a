//! PNG images the tests receive (charts, screenshots), decoded to RGB.

/// A decoded image: its size and its pixels, RGB, 8 bits per channel, row by row.
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Three bytes per pixel, row by row.
    pub rgb: Vec<u8>,
}

/// Decodes a PNG (RGB or RGBA, 8 bits per channel); panics if it is not one.
pub fn decode_png(bytes: &[u8]) -> Image {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let frame = reader.next_frame(&mut pixels).expect("PNG image data");
    assert_eq!(frame.bit_depth, png::BitDepth::Eight, "8 bits per channel");
    let rgb = match frame.color_type {
        png::ColorType::Rgb => pixels[..frame.buffer_size()].to_vec(),
        png::ColorType::Rgba => pixels[..frame.buffer_size()]
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    Image {
        width: frame.width,
        height: frame.height,
        rgb,
    }
}

impl Image {
    /// How many pixels are within `tolerance` of `color` in every channel.
    pub fn pixels_near(&self, color: plotters::style::RGBColor, tolerance: u8) -> usize {
        let want = [color.0, color.1, color.2];
        self.rgb
            .chunks_exact(3)
            .filter(|p| {
                p.iter()
                    .zip(want)
                    .all(|(&got, want)| got.abs_diff(want) <= tolerance)
            })
            .count()
    }
}
