//! A 3×5 pixel font for the labels `modelc data preview` draws under each sample: digits, `-`,
//! `.` and `?`, enough for class ids and rounded values. Drawn into 8-bit pixel buffers, so the
//! picture needs no font library.
//!
//! Input: text, a pixel buffer (row-major, `channels` bytes per pixel) and a place. Output:
//! the text's pixels set to `ink`; characters outside the font and pixels outside the buffer
//! are skipped, never a panic.

/// Width and height of one glyph, in font pixels.
pub const GLYPH_W: usize = 3;
pub const GLYPH_H: usize = 5;

/// Rows of a glyph, top first; bit 2 is the left column.
fn glyph(c: char) -> Option<[u8; GLYPH_H]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '-' => [0b000, 0b000, 0b111, 0b000, 0b000],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        '?' => [0b111, 0b001, 0b011, 0b000, 0b010],
        _ => return None,
    })
}

/// A pixel buffer to draw into.
pub struct Canvas<'a> {
    pub pixels: &'a mut [u8],
    pub width: usize,
    pub channels: usize,
}

/// The width in pixels of `text` drawn at `scale` (one font pixel of space between glyphs).
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    (n * (GLYPH_W + 1)).saturating_sub(1) * scale
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel `scale`×`scale`.
pub fn draw_text(canvas: &mut Canvas<'_>, text: &str, x: usize, y: usize, scale: usize, ink: u8) {
    for (i, c) in text.chars().enumerate() {
        let Some(rows) = glyph(c) else { continue };
        let gx = x + i * (GLYPH_W + 1) * scale;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (0b100 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) = (gx + col * scale + dx, y + row * scale + dy);
                        if px >= canvas.width {
                            continue;
                        }
                        let at = (py * canvas.width + px) * canvas.channels;
                        if let Some(p) = canvas.pixels.get_mut(at..at + canvas.channels) {
                            p.fill(ink);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text drawn at scale 1 as rows of `#` and `.`.
    fn picture(text: &str) -> Vec<String> {
        let width = text_width(text, 1);
        let mut pixels = vec![0u8; width * GLYPH_H];
        let mut canvas = Canvas {
            pixels: &mut pixels,
            width,
            channels: 1,
        };
        draw_text(&mut canvas, text, 0, 0, 1, 255);
        pixels
            .chunks(width)
            .map(|r| {
                r.iter()
                    .map(|&p| if p == 255 { '#' } else { '.' })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn digits_are_drawn_as_their_font_rows() {
        assert_eq!(
            picture("17"),
            [".#..###", "##....#", ".#...#.", ".#...#.", "###..#."]
        );
        assert_eq!(text_width("10", 2), 14);
    }

    #[test]
    fn unknown_characters_and_the_edge_are_skipped() {
        let mut pixels = vec![0u8; 4 * GLYPH_H];
        let mut canvas = Canvas {
            pixels: &mut pixels,
            width: 4,
            channels: 1,
        };
        draw_text(&mut canvas, "x8", 0, 0, 1, 9);
        draw_text(&mut canvas, "8", 2, 3, 1, 9);
        // "x" is blank and the "8" after it starts at x = 4, past the edge; of the "8" at (2, 3)
        // only its top two rows fit, cut at x = 4: three pixels.
        let inked: usize = pixels.iter().map(|&p| usize::from(p == 9)).sum();
        assert_eq!(inked, 2 + 1, "{pixels:?}");
    }
}
