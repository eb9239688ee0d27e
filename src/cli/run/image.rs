//! Image inputs of `modelc run`: one PNG or JPEG file, or a folder of them (its image files in
//! sorted name order), as one batch of `[h, w, c]` pixel arrays.
//!
//! Input: the paths and the [`ImageShape`] the model's pipeline wants where its data first is an
//! image. Output: `f32[n, h, w, c]` holding the pixel values as stored (0–255; the pipeline's
//! `scale` applies as written), grayscale for one channel and RGB for three, each image resized
//! (bilinear, half-pixel centres, the pipeline's own kernel) to the wanted size when there is
//! one; plus the file names, one per row. Invariants: an image's dimensions are read from its
//! header and checked against [`MAX_IMAGE_PIXELS`] before it is decoded; problems are E0812 (the
//! file is not a readable image) and E0813 (the images do not fit the model), I/O is E0900.

use crate::cli::common::read_bytes;
use crate::data::image::{resize_bilinear, Dims};
use crate::data::spec::{Step, Transform};
use crate::diag::{codes, Diagnostic};
use crate::ir::{Dim, Fact};
use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};

/// The most pixels a decoded image may have (8192 × 8192).
pub(super) const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// File name extensions read as images (compared without case).
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// What an image must become: its channels, and the size it is resized to (`None`: kept, the
/// pipeline resizes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ImageShape {
    pub channels: usize,
    pub size: Option<(usize, usize)>,
}

/// Whether `path` names an image file by its extension.
pub(super) fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Where the data first is an image: the first `reshape` to `[h, w, c]` (images are resized to
/// it), else a `resize` (kept at their size, the step resizes them), else the model input
/// `[N, h, w, c]` itself. `None` when the model takes no images.
pub(super) fn image_shape(steps: &[Step<Transform>], model_input: &Fact) -> Option<ImageShape> {
    let channels = match model_input.dims.last() {
        Some(Dim::Known(c)) => *c,
        _ => 1,
    };
    for step in steps {
        match &step.op {
            Transform::Reshape { shape } => {
                return match shape.as_slice() {
                    [h, w, c] => Some(ImageShape {
                        channels: *c,
                        size: Some((*h, *w)),
                    }),
                    _ => None,
                }
            }
            Transform::Resize { .. } => {
                return Some(ImageShape {
                    channels,
                    size: None,
                })
            }
            _ => {}
        }
    }
    match model_input.dims.as_slice() {
        [_, Dim::Known(h), Dim::Known(w), Dim::Known(c)] => Some(ImageShape {
            channels: *c,
            size: Some((*h, *w)),
        }),
        _ => None,
    }
}

/// The image files of a folder, sorted by name; E0813 when it holds none.
pub(super) fn folder_images(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Diagnostic::error(codes::IO_READ, format!("cannot read {shown}: {e}")).at_external(
            shown.clone(),
            0,
            0,
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(misfit(
            &shown,
            format!("{shown} holds no image files"),
            "put the .png or .jpg files to predict on in the folder",
        ));
    }
    Ok(files)
}

/// Reads every image into one `f32[n, h, w, c]` batch.
pub(super) fn read_images(files: &[PathBuf], want: ImageShape) -> Result<ArrayD<f32>, Diagnostic> {
    let mut values: Vec<f32> = Vec::new();
    let mut first: Option<(Dims, String)> = None;
    for path in files {
        let shown = path.display().to_string();
        let (dims, pixels) = read_image(path, want)?;
        match &first {
            Some((d, name)) if *d != dims => {
                return Err(misfit(
                    &shown,
                    format!(
                        "{shown} is {}×{} pixels, {name} is {}×{}: one batch needs one size",
                        dims.w, dims.h, d.w, d.h
                    ),
                    "resize the images to one size first",
                ))
            }
            Some(_) => {}
            None => first = Some((dims, shown.clone())),
        }
        let total = values.len().saturating_add(pixels.len());
        if total.saturating_mul(4) > crate::data::samples::MEMORY_BUDGET_BYTES {
            return Err(misfit(
                &shown,
                format!("the images up to {shown} need more than the memory budget"),
                "predict on fewer images at a time",
            ));
        }
        values.extend(pixels);
    }
    let Some((d, _)) = first else {
        return Err(misfit(
            "",
            "no image given".to_string(),
            "give an image file",
        ));
    };
    ArrayD::from_shape_vec(IxDyn(&[files.len(), d.h, d.w, d.c]), values).map_err(|_| {
        Diagnostic::error(codes::RUN_KERNEL, "image batch has an inconsistent size")
            .note("this is a bug in modelc; please report it")
    })
}

/// One image: its header checked, decoded to the wanted channels, resized to the wanted size.
fn read_image(path: &Path, want: ImageShape) -> Result<(Dims, Vec<f32>), Diagnostic> {
    let shown = path.display().to_string();
    let unreadable = |e: &dyn std::fmt::Display| {
        Diagnostic::error(
            codes::RUN_IMAGE_UNREADABLE,
            format!("{shown} is not a readable PNG or JPEG image: {e}"),
        )
        .at_external(shown.clone(), 0, 0)
        .help("give PNG or JPEG files, or an `.npy` array of the pixels")
    };
    let bytes = read_bytes(path)?;
    let reader = || {
        image::ImageReader::new(std::io::Cursor::new(bytes.as_slice()))
            .with_guessed_format()
            .map_err(|e| unreadable(&e))
    };
    let (w, h) = reader()?.into_dimensions().map_err(|e| unreadable(&e))?;
    if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(misfit(
            &shown,
            format!("{shown} is {w}×{h} pixels, more than the {MAX_IMAGE_PIXELS} pixels an input image may have"),
            "scale the image down first",
        ));
    }
    let mut decoder = reader()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    decoder.limits(limits);
    let decoded = decoder.decode().map_err(|e| unreadable(&e))?;
    let raw: Vec<u8> = match want.channels {
        1 => decoded.to_luma8().into_raw(),
        3 => decoded.to_rgb8().into_raw(),
        c => {
            return Err(misfit(
                &shown,
                format!(
                    "the model's images have {c} channels; image files give 1 (gray) or 3 (RGB)"
                ),
                "give an `.npy` array with the channels the model takes",
            ))
        }
    };
    let from = Dims {
        h: h as usize,
        w: w as usize,
        c: want.channels,
    };
    let pixels: Vec<f32> = raw.into_iter().map(f32::from).collect();
    match want.size {
        Some((th, tw)) if (th, tw) != (from.h, from.w) => {
            let to = Dims {
                h: th,
                w: tw,
                c: from.c,
            };
            let mut out = vec![0.0; to.len()];
            resize_bilinear(&pixels, from, to, &mut out);
            Ok((to, out))
        }
        _ => Ok((from, pixels)),
    }
}

fn misfit(shown: &str, message: String, help: &str) -> Diagnostic {
    let d = Diagnostic::error(codes::RUN_IMAGE_MISFIT, message).help(help.to_string());
    if shown.is_empty() {
        d
    } else {
        d.at_external(shown.to_string(), 0, 0)
    }
}
