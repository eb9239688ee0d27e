//! Pictures of a pipeline's output, for `modelc data preview`: a PNG grid of training images
//! after preprocessing and augmentation (each pixel drawn 4×4, its label written under it: the
//! class id, the one-hot target's class, or a single target value to two decimals), or a line
//! plot of a series.
//!
//! Input: a [`Dataset`], how many samples, and the epoch whose augmentation to show.
//! Output: the PNG file's bytes. Values are mapped linearly from the shown minimum..maximum to
//! black..white.

use super::augment::augment_batch;
use super::glyphs::{draw_text, text_width, Canvas, GLYPH_H};
use super::loader::{take_rows, Dataset};
use super::samples::{Features, Labels};
use crate::diag::codes::DATA_EMPTY;
use crate::diag::Diagnostic;
use ndarray::Axis;

const ZOOM: usize = 4;
const GAP: usize = 2;
const PLOT_W: usize = 600;
const PLOT_H: usize = 200;
/// Labels are drawn with each font pixel 2×2, in white.
const LABEL_SCALE: usize = 2;
const LABEL_INK: u8 = 255;

fn encode(
    width: usize,
    height: usize,
    color: png::ColorType,
    pixels: &[u8],
) -> Result<Vec<u8>, Diagnostic> {
    let fail = |e: png::EncodingError| {
        Diagnostic::error(
            crate::diag::codes::IO_WRITE,
            format!("cannot encode png: {e}"),
        )
    };
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(fail)?;
        w.write_image_data(pixels).map_err(fail)?;
        w.finish().map_err(fail)?;
    }
    Ok(out)
}

fn to_byte(v: f32, lo: f32, hi: f32) -> u8 {
    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    (t.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The PNG bytes previewing the first `count` training samples at `epoch`.
pub fn preview_png(ds: &Dataset, count: usize, epoch: u64) -> Result<Vec<u8>, Diagnostic> {
    let n = count.min(ds.train.features.len());
    if n == 0 {
        return Err(Diagnostic::error(
            DATA_EMPTY,
            "there are no training samples to preview",
        ));
    }
    let rows: Vec<usize> = (0..n).collect();
    let picked = take_rows(&ds.train, &rows);
    // A multi-input pipeline previews its first group, with that group's augmentation.
    let (features, augment) = match picked.features {
        Features::Groups(g) => (
            g.into_iter().next().map(|g| g.features),
            ds.spec
                .inputs
                .first()
                .map_or(&[][..], |g| g.augment.as_slice()),
        ),
        other => (Some(other), ds.spec.augment.as_slice()),
    };
    let Some(Features::F32(a)) = features else {
        return series_plot(&ds.train.features);
    };
    let a = augment_batch(augment, &a, &rows, ds.spec.seed, epoch)?;
    let &[_, h, w, c] = a.shape() else {
        return series_plot(&ds.train.features);
    };
    let channels = if c == 3 { 3 } else { 1 };
    let cols = (n as f64).sqrt().ceil() as usize;
    let grid_rows = n.div_ceil(cols);
    let label_h = if matches!(picked.labels, Labels::None) {
        0
    } else {
        GLYPH_H * LABEL_SCALE + GAP
    };
    let cell_w = w * ZOOM + GAP;
    let cell_h = h * ZOOM + GAP + label_h;
    let (width, height) = (cols * cell_w + GAP, grid_rows * cell_h + GAP);
    let lo = a.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut px = vec![40u8; width * height * channels];
    for (i, img) in a.outer_iter().enumerate() {
        let (ox, oy) = (GAP + (i % cols) * cell_w, GAP + (i / cols) * cell_h);
        for y in 0..h * ZOOM {
            for x in 0..w * ZOOM {
                for k in 0..channels {
                    let v = img[[y / ZOOM, x / ZOOM, k]];
                    px[((oy + y) * width + ox + x) * channels + k] = to_byte(v, lo, hi);
                }
            }
        }
        if let Some(text) = label_text(&picked.labels, i) {
            let x = ox + (w * ZOOM).saturating_sub(text_width(&text, LABEL_SCALE)) / 2;
            let mut canvas = Canvas {
                pixels: &mut px,
                width,
                channels,
            };
            draw_text(
                &mut canvas,
                &text,
                x,
                oy + h * ZOOM + 1,
                LABEL_SCALE,
                LABEL_INK,
            );
        }
    }
    let color = if channels == 3 {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    };
    encode(width, height, color, &px)
}

/// The label of sample `i` as drawn: a class id, a one-hot target's class, or one value.
fn label_text(labels: &Labels, i: usize) -> Option<String> {
    match labels {
        Labels::None => None,
        // One text per output's label set, a blank between them (`7 1`).
        Labels::Outputs(sets) => sets
            .iter()
            .map(|l| label_text(l, i))
            .collect::<Option<Vec<_>>>()
            .map(|t| t.join(" ")),
        Labels::Class(ids) => ids.get(i).map(ToString::to_string),
        Labels::Values(v) => {
            if i >= v.len_of(Axis(0)) {
                return None;
            }
            let row = v.index_axis(Axis(0), i);
            if row.len() == 1 {
                return row.iter().next().map(|x| format!("{x:.2}"));
            }
            let mut best: Option<(usize, f32)> = None;
            for (k, &x) in row.iter().enumerate() {
                if best.is_none_or(|(_, b)| x > b) {
                    best = Some((k, x));
                }
            }
            best.map(|(k, _)| k.to_string())
        }
    }
}

/// A line plot of the first feature value of each sample, in order (up to `PLOT_W` samples).
fn series_plot(features: &Features) -> Result<Vec<u8>, Diagnostic> {
    if let Features::Groups(g) = features {
        return match g.first() {
            Some(first) => series_plot(&first.features),
            None => Err(Diagnostic::error(
                DATA_EMPTY,
                "there are no features to preview",
            )),
        };
    }
    let per = features.sample_shape().iter().product::<usize>().max(1);
    let values: Vec<f32> = match features {
        Features::F32(a) => a.iter().step_by(per).take(PLOT_W).copied().collect(),
        Features::I64(a) => a
            .iter()
            .step_by(per)
            .take(PLOT_W)
            .map(|&v| v as f32)
            .collect(),
        Features::Groups(_) => Vec::new(),
    };
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut px = vec![255u8; PLOT_W * PLOT_H];
    let y_of = |v: f32| -> usize {
        let t = f32::from(to_byte(v, lo, hi)) / 255.0;
        ((1.0 - t) * (PLOT_H - 1) as f32).round() as usize
    };
    let step = (PLOT_W - 1) as f32 / (values.len().max(2) - 1) as f32;
    let mut prev: Option<usize> = None;
    for x in 0..PLOT_W {
        // the value at this column, interpolated between the two nearest samples
        let pos = x as f32 / step;
        let i = (pos.floor() as usize).min(values.len().saturating_sub(1));
        let j = (i + 1).min(values.len().saturating_sub(1));
        let t = pos - i as f32;
        let (a, b) = (
            values.get(i).copied().unwrap_or(0.0),
            values.get(j).copied().unwrap_or(0.0),
        );
        let y = y_of(a + (b - a) * t);
        let from = prev.unwrap_or(y);
        for yy in from.min(y)..=from.max(y) {
            if let Some(p) = px.get_mut(yy * PLOT_W + x) {
                *p = 0;
            }
        }
        prev = Some(y);
    }
    encode(PLOT_W, PLOT_H, png::ColorType::Grayscale, &px)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::loader::load_dataset;
    use crate::data::spec::{
        Augment, Batch, ColumnRef, CsvSource, FeatureColumns, LabelRead, PipelineSpec, SourceKind,
        SourceSpec, Step, Transform,
    };
    use crate::diag::Span;

    fn spec(kind: SourceKind, preprocess: Vec<Transform>, augment: Vec<Augment>) -> PipelineSpec {
        let s = Span::default();
        PipelineSpec {
            name: "P".into(),
            span: s,
            source: SourceSpec { kind, span: s },
            preprocess: preprocess
                .into_iter()
                .map(|op| Step { op, span: s })
                .collect(),
            augment: augment.into_iter().map(|op| Step { op, span: s }).collect(),
            split: None,
            shuffle: None,
            batch: Batch {
                size: 4,
                drop_remainder: false,
                span: s,
            },
            seed: 0,
            inputs: Vec::new(),
        }
    }

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    pub(crate) fn root() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn digits_preview_is_a_4x4_grid_of_enlarged_images() {
        let csv = SourceKind::Csv(CsvSource {
            path: "data/digits.csv".into(),
            label: Some(ColumnRef::Name("target".into())),
            label_read: LabelRead::Class { classes: Some(10) },
            features: FeatureColumns::AllButLabel { count: Some(64) },
            header: true,
            more_labels: Vec::new(),
            label_spans: Vec::new(),
        });
        let ds = load_dataset(
            &spec(
                csv,
                vec![Transform::Reshape {
                    shape: vec![8, 8, 1],
                }],
                vec![],
            ),
            &root(),
        )
        .unwrap();
        let bytes = preview_png(&ds, 16, 0).unwrap();
        std::fs::write(
            std::env::temp_dir().join("modelc_digits_preview.png"),
            &bytes,
        )
        .unwrap();
        let (info, px) = decode(&bytes);
        // Each cell: 32 pixels of image, a 2-pixel gap, then a 12-pixel label strip.
        assert_eq!((info.width, info.height), (4 * 34 + 2, 4 * 46 + 2));
        // digit 0 (the first row of digits.csv) has pixel (0, 0) = 0 and pixel (row 1, col 3) =
        // 15 of 16; its cell starts at (2, 2) and each pixel is drawn 4x4
        let at = |x: usize, y: usize| px[y * info.width as usize + x];
        assert_eq!(at(2 + 1, 2 + 1), 0);
        assert_eq!(at(2 + 3 * 4 + 1, 2 + 4 + 1), to_byte(15.0, 0.0, 16.0));
        assert_eq!(at(2 + 3 * 4 + 1, 2 + 2 * 4 + 1), to_byte(2.0, 0.0, 16.0));
        assert_eq!(at(0, 0), 40); // background
                                  // The labels of the first two rows (digits 0 and 1) are written under their cells,
                                  // centred: a 6-pixel glyph at x = cell + 13, y = 2 + 32 + 1 = 35, font pixels 2×2.
        assert_eq!(at(2 + 13, 35), 255, "top-left of the 0");
        assert_eq!(at(2 + 13 + 2, 35 + 4), 40, "the hole of the 0");
        assert_eq!(at(36 + 13 + 2, 35), 255, "top of the 1");
        assert_eq!(at(36 + 13, 35), 40, "left of the 1's top");
    }

    #[test]
    fn labels_read_as_class_ids_one_hot_classes_or_values() {
        let classes = Labels::Class(vec![3, 12]);
        assert_eq!(label_text(&classes, 1).as_deref(), Some("12"));
        assert_eq!(label_text(&classes, 2), None);
        let one_hot = ndarray::arr2(&[[0.0f32, 0.0, 1.0], [0.9, 0.1, 0.0]]).into_dyn();
        assert_eq!(
            label_text(&Labels::Values(one_hot.clone()), 0).as_deref(),
            Some("2")
        );
        assert_eq!(
            label_text(&Labels::Values(one_hot), 1).as_deref(),
            Some("0")
        );
        let values = ndarray::arr2(&[[-1.254f32]]).into_dyn();
        assert_eq!(
            label_text(&Labels::Values(values), 0).as_deref(),
            Some("-1.25")
        );
        assert_eq!(label_text(&Labels::None, 0), None);
        let two = Labels::Outputs(vec![
            Labels::Class(vec![3, 12]),
            Labels::Values(ndarray::array![[0.5_f32], [1.0]].into_dyn()),
        ]);
        assert_eq!(label_text(&two, 1).as_deref(), Some("12 1.00"));
        assert_eq!(label_text(&two, 2), None);
    }

    #[test]
    fn series_preview_is_a_line_plot() {
        let csv = SourceKind::Csv(CsvSource {
            path: "data/sunspots.csv".into(),
            label: None,
            label_read: LabelRead::Value,
            features: FeatureColumns::Listed(vec![ColumnRef::Name("sunspots".into())]),
            header: true,
            more_labels: Vec::new(),
            label_spans: Vec::new(),
        });
        let ds = load_dataset(&spec(csv, vec![], vec![]), &root()).unwrap();
        let bytes = preview_png(&ds, 16, 0).unwrap();
        std::fs::write(
            std::env::temp_dir().join("modelc_sunspots_preview.png"),
            &bytes,
        )
        .unwrap();
        let (info, px) = decode(&bytes);
        assert_eq!((info.width, info.height), (600, 200));
        // every column has some ink, and the plot is mostly background
        for x in 0..600 {
            assert!(
                (0..200).any(|y| px[y * 600 + x] == 0),
                "column {x} is empty"
            );
        }
        let ink: usize = px.iter().map(|&p| usize::from(p == 0)).sum();
        assert!(ink < 600 * 200 / 4, "{ink}");
    }

    #[test]
    fn augmented_preview_changes_with_the_epoch() {
        let sine = SourceKind::Sine(crate::data::spec::SineSource {
            n: 64,
            period: 8.0,
            noise: 0.0,
            seed: 0,
        });
        let ds = load_dataset(
            &spec(
                sine,
                vec![Transform::Reshape {
                    shape: vec![1, 1, 1],
                }],
                vec![Augment::Noise { std: 0.5 }],
            ),
            &root(),
        )
        .unwrap();
        assert_ne!(
            preview_png(&ds, 9, 0).unwrap(),
            preview_png(&ds, 9, 1).unwrap()
        );
    }
}
