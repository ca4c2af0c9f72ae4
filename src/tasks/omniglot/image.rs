//! Decoding the release's PNGs to ink in [0, 1] and resizing them to the experiment's size.

use std::fs;
use std::path::Path;

use super::io_err;
use crate::tasks::{FamilyError, Progress};

/// One PNG as ink in [0, 1] (strokes 1), area-resized to `size × size`: what the family
/// holds for every drawing, for images that come from elsewhere (Lake's one-shot runs).
pub fn load_image(path: &Path, size: usize) -> Result<Vec<f32>, FamilyError> {
    let (ink, w, h) = decode(path)?;
    Ok(resize_area(&ink, w, h, size))
}

/// Largest accepted side: Omniglot's drawings are 105×105.
pub(super) const MAX_SIDE: u32 = 4096;

/// Decode one PNG to ink in [0, 1] (strokes 1, paper 0), `width × height`, row-major.
pub(super) fn decode(path: &Path) -> Result<(Vec<f32>, usize, usize), FamilyError> {
    let bad = |message: String| FamilyError::BadImage {
        path: path.to_path_buf(),
        message,
    };
    let file = fs::File::open(path).map_err(io_err(path))?;
    // The decoder's own buffers are bounded too, not only the frame below.
    let mut decoder = png::Decoder::new_with_limits(
        std::io::BufReader::new(file),
        png::Limits { bytes: 64 << 20 },
    );
    // 1-bit grey (the release's format) comes out as 8-bit 0/255; 16-bit is cut to 8.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a readable PNG: {e}")))?;
    // The header says how large the frame is; check it before allocating the frame, so that a
    // 60000×60000 header is an error rather than an allocation failure that aborts the process.
    let (w, h) = (reader.info().width, reader.info().height);
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(bad(format!(
            "the image is {w}×{h} pixels; drawings larger than {MAX_SIDE}×{MAX_SIDE} are refused"
        )));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("not a readable PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    if w == 0 || h == 0 {
        return Err(bad("image has no pixels".into()));
    }
    let channels = info.color_type.samples();
    let mut ink = Vec::with_capacity(w * h);
    if info.color_type == png::ColorType::Grayscale {
        // The release's format, kept free of per-pixel branching: decoding dominates load time.
        for row in buf.chunks(info.line_size).take(h) {
            ink.extend(row[..w].iter().map(|&g| 1.0 - g as f32 / 255.0));
        }
        return Ok((ink, w, h));
    }
    for row in buf.chunks(info.line_size).take(h) {
        for px in row[..w * channels].chunks_exact(channels) {
            let grey = match info.color_type {
                png::ColorType::Grayscale | png::ColorType::Indexed => px[0] as f32,
                png::ColorType::GrayscaleAlpha => {
                    // Transparent means paper: composite over white.
                    let a = px[1] as f32 / 255.0;
                    px[0] as f32 * a + 255.0 * (1.0 - a)
                }
                png::ColorType::Rgb => (px[0] as f32 + px[1] as f32 + px[2] as f32) / 3.0,
                png::ColorType::Rgba => {
                    let a = px[3] as f32 / 255.0;
                    let v = (px[0] as f32 + px[1] as f32 + px[2] as f32) / 3.0;
                    v * a + 255.0 * (1.0 - a)
                }
            };
            ink.push(1.0 - grey / 255.0);
        }
    }
    Ok((ink, w, h))
}

/// Weights of source pixels in each of `to` output pixels along one axis: the overlap of the
/// source pixel with the output pixel's footprint, normalised so each output row sums to 1.
pub(super) fn box_weights(from: usize, to: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = from as f64 / to as f64;
    (0..to)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let mut w = vec![];
            let mut s = lo.floor() as usize;
            while (s as f64) < hi && s < from {
                let overlap = (hi.min(s as f64 + 1.0) - lo.max(s as f64)).max(0.0);
                if overlap > 0.0 {
                    w.push((s, (overlap / scale) as f32));
                }
                s += 1;
            }
            w
        })
        .collect()
}

/// Area-averaging (box filter) resize. Chosen over bilinear because it is exact for the large
/// 105→28 reduction: every source pixel contributes in proportion to the area it covers, so thin
/// 1-bit strokes become grey levels instead of being skipped by point sampling.
pub fn resize_area(src: &[f32], w: usize, h: usize, size: usize) -> Vec<f32> {
    if w == size && h == size {
        return src.to_vec();
    }
    let wx = box_weights(w, size);
    let wy = box_weights(h, size);
    let mut out = vec![0f32; size * size];
    let mut row = vec![0f32; w];
    for (oy, ys) in wy.iter().enumerate() {
        row.iter_mut().for_each(|v| *v = 0.0);
        for &(sy, wgt) in ys {
            for (acc, &v) in row.iter_mut().zip(&src[sy * w..(sy + 1) * w]) {
                *acc += wgt * v;
            }
        }
        for (ox, xs) in wx.iter().enumerate() {
            out[oy * size + ox] = xs.iter().map(|&(sx, wgt)| wgt * row[sx]).sum();
        }
    }
    out
}

/// Rotate a square image counter-clockwise by `quarter_turns` × 90° into `dst`.
pub fn rotate_into(src: &[f32], size: usize, quarter_turns: usize, dst: &mut [f32]) {
    let s = size;
    for r in 0..s {
        for c in 0..s {
            let (sr, sc) = match quarter_turns % 4 {
                0 => (r, c),
                1 => (c, s - 1 - r),
                2 => (s - 1 - r, s - 1 - c),
                _ => (s - 1 - c, r),
            };
            dst[r * s + c] = src[sr * s + sc];
        }
    }
}

/// Decode and resize `files` on all cores. Files are cut into contiguous chunks, one per thread,
/// and the chunks are concatenated in order, so the result is identical for any thread count.
pub(super) fn decode_all(
    files: &[&Path],
    size: usize,
    progress: &Progress<'_>,
) -> Result<Vec<f32>, FamilyError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    decode_all_with(files, size, threads, progress)
}

pub(super) fn decode_all_with(
    files: &[&Path],
    size: usize,
    threads: usize,
    progress: &Progress<'_>,
) -> Result<Vec<f32>, FamilyError> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = files.len();
    // About a hundred reports over the whole load, whatever its size.
    let every = (total / 100).max(1);
    let done = &done;
    let threads = threads.clamp(1, files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<f32>, FamilyError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part.len() * size * size);
                    for path in part {
                        let (ink, w, h) = decode(path)?;
                        out.extend(resize_area(&ink, w, h, size));
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if n.is_multiple_of(every) || n == total {
                            progress(n, total);
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("image decoding thread panicked"))
            .collect()
    });
    let mut images = Vec::with_capacity(files.len() * size * size);
    // The first error in file order, whichever thread hit it first.
    for part in parts {
        images.extend(part?);
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::omniglot::fixtures::*;
    use crate::tasks::omniglot::layout::Layout;

    #[test]
    fn decoding_inverts_and_area_resizes() {
        let dir = tempfile::tempdir().unwrap();
        let dot = dir.path().join("dot.png");
        write_png(&dot, 3, 3, true, |r, c| r == 1 && c == 1);
        let (ink, w, h) = decode(&dot).unwrap();
        assert_eq!((w, h), (3, 3));
        assert_eq!(ink, vec![0., 0., 0., 0., 1., 0., 0., 0., 0.]);
        // Each 2×2 output pixel covers 1.5×1.5 source pixels, a quarter of the centre one: 0.25 / 2.25.
        for v in resize_area(&ink, 3, 3, 2) {
            assert!((v - 1.0 / 9.0).abs() < 1e-6, "{v}");
        }
        let corner = dir.path().join("corner.png");
        write_png(&corner, 4, 4, false, |r, c| r < 2 && c < 2);
        let (ink, w, h) = decode(&corner).unwrap();
        assert_eq!(resize_area(&ink, w, h, 2), vec![1., 0., 0., 0.]);
        // The release's shape: 105×105 with a 15-pixel-wide vertical bar → 4 of 28 columns inked.
        let bar = dir.path().join("bar.png");
        write_png(&bar, 105, 105, true, |_, c| (30..45).contains(&c));
        let (ink, w, h) = decode(&bar).unwrap();
        let small = resize_area(&ink, w, h, 28);
        let row: Vec<f32> = small[..28].to_vec();
        // Columns 8..12 cover source 30..45 exactly (3.75 source pixels each).
        for (c, v) in row.iter().enumerate() {
            let want = if (8..12).contains(&c) { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-5, "column {c}: {v}");
        }
        for r in small.chunks(28) {
            assert!(r.iter().zip(&row).all(|(a, b)| (a - b).abs() < 1e-5));
        }
    }

    #[test]
    fn a_huge_header_is_refused_before_anything_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.png");
        let enc = png::Encoder::new(fs::File::create(&path).unwrap(), 60_000, 60_000);
        // A header and one data chunk: enough for the decoder to get to the frame.
        let mut w = enc.write_header().unwrap();
        w.write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x03, 0x00])
            .unwrap();
        drop(w);
        let err = decode(&path).unwrap_err();
        assert!(
            matches!(&err, FamilyError::BadImage { message, .. } if message.contains("60000×60000")),
            "{err}"
        );
        fs::write(&path, b"").unwrap();
        assert!(matches!(decode(&path), Err(FamilyError::BadImage { .. })));
    }

    #[test]
    fn decoding_does_not_depend_on_the_thread_count() {
        let dir = background_only();
        let layout = Layout::list(dir.path()).unwrap();
        let files: Vec<&Path> = layout
            .chars
            .iter()
            .flat_map(|c| c.files.iter().map(|p| p.as_path()))
            .collect();
        let reports = std::sync::Mutex::new(Vec::new());
        let one =
            decode_all_with(&files, 5, 1, &|d, t| reports.lock().unwrap().push((d, t))).unwrap();
        // Progress ends at the whole count, in steps of about a hundredth.
        let reports = reports.into_inner().unwrap();
        assert_eq!(reports.last(), Some(&(240, 240)));
        assert!(
            reports.windows(2).all(|w| w[0].0 < w[1].0) && reports.len() >= 100,
            "{reports:?}"
        );
        assert_eq!(one.len(), 240 * 25);
        for threads in [2, 3, 7] {
            assert_eq!(
                decode_all_with(&files, 5, threads, &|_, _| {}).unwrap(),
                one
            );
        }
    }
}
