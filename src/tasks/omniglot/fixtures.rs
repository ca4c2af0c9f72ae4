//! Fake Omniglot trees for the tests: tiny PNGs whose pixels encode which file they came from.

use std::fs;
use std::io::BufWriter;
use std::path::Path;

use crate::experiment::{OmniglotProtocol, OmniglotSpec};

pub(crate) const SIDE: usize = 8;

/// Write a `w × h` grey PNG; `ink(r, c)` pixels are black. 1-bit like the release, or 8-bit.
pub(crate) fn write_png(
    path: &Path,
    w: usize,
    h: usize,
    one_bit: bool,
    ink: impl Fn(usize, usize) -> bool,
) {
    let file = BufWriter::new(fs::File::create(path).unwrap());
    let mut enc = png::Encoder::new(file, w as u32, h as u32);
    enc.set_color(png::ColorType::Grayscale);
    let data: Vec<u8> = if one_bit {
        enc.set_depth(png::BitDepth::One);
        (0..h)
            .flat_map(|r| {
                let ink = &ink;
                (0..w.div_ceil(8)).map(move |byte| {
                    (0..8).fold(0u8, |acc, bit| {
                        let c = byte * 8 + bit;
                        let white = c < w && !ink(r, c);
                        acc | ((white as u8) << (7 - bit))
                    })
                })
            })
            .collect()
    } else {
        enc.set_depth(png::BitDepth::Eight);
        (0..h)
            .flat_map(|r| (0..w).map(move |c| (r, c)))
            .map(|(r, c)| if ink(r, c) { 0 } else { 255 })
            .collect()
    };
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(&data).unwrap();
}

/// A fake set: `alphabets × chars × drawings` 8×8 images. Drawing number `g` (counted across
/// the whole set in name order, from `first_id`) is written as the bits of `g + 1` along the
/// top two rows, so an episode's images can be traced back to their files. The first alphabet is
/// 1-bit, the others 8-bit; stray non-PNG files are sprinkled in.
pub(crate) fn fake_set(
    root: &Path,
    set: &str,
    alphabets: usize,
    chars: usize,
    drawings: usize,
    first_id: usize,
) {
    for a in 0..alphabets {
        let adir = root.join(set).join(format!("Alphabet{a}"));
        fs::create_dir_all(&adir).unwrap();
        fs::write(adir.join("README.txt"), "not a class").unwrap();
        for c in 0..chars {
            let cdir = adir.join(format!("character{:02}", c + 1));
            fs::create_dir_all(&cdir).unwrap();
            fs::write(cdir.join("Thumbs.db"), "junk").unwrap();
            for d in 0..drawings {
                let g = first_id + (a * chars + c) * drawings + d;
                let code = g + 1;
                let path = cdir.join(format!("{:04}_{:02}.png", a * chars + c + 1, d + 1));
                write_png(&path, SIDE, SIDE, a == 0, |r, col| {
                    r < 2 && (code >> (r * SIDE + col)) & 1 == 1
                });
            }
        }
    }
}

/// Read back the drawing number from an unrotated image at full size.
pub(crate) fn drawing_id(img: &[f32]) -> usize {
    (0..2 * SIDE)
        .map(|k| ((img[k] > 0.5) as usize) << k)
        .sum::<usize>()
        - 1
}

pub(crate) fn spec(root: &Path, protocol: OmniglotProtocol) -> OmniglotSpec {
    OmniglotSpec {
        root: root.to_path_buf(),
        ways: 3,
        shots: 2,
        queries: 3,
        image_size: SIDE,
        rotations: false,
        protocol,
        classes: crate::experiment::ClassDraw::AnyAlphabet,
        alphabet_tasks: None,
    }
}

pub(crate) const THIRDS: OmniglotProtocol = OmniglotProtocol::AlphabetSplit {
    train: 0.34,
    validation: 0.33,
};

pub(crate) fn background_only() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fake_set(dir.path(), "images_background", 3, 4, 20, 0);
    dir
}
