//! A fake Omniglot tree for the tests that need one (the real data is never read by tests).

use std::path::Path;

/// `root/images_background/Alpha{a}/character{c}/` with `drawings` PNGs each, `side × side`
/// grey, white but for one black column, `column(alphabet, character, drawing)` (taken modulo
/// the side): what tells characters (and, where the caller wants, drawings) apart.
pub fn fake_omniglot(
    root: &Path,
    (alphabets, characters, drawings): (usize, usize, usize),
    side: usize,
    column: impl Fn(usize, usize, usize) -> usize,
) {
    for a in 0..alphabets {
        for c in 0..characters {
            let dir = root
                .join("images_background")
                .join(format!("Alpha{a}"))
                .join(format!("character{:02}", c + 1));
            std::fs::create_dir_all(&dir).unwrap();
            for d in 0..drawings {
                let mut pixels = vec![255u8; side * side];
                for i in 0..side {
                    pixels[i * side + column(a, c, d) % side] = 0;
                }
                let name = format!("{:04}_{:02}.png", a * 100 + c, d + 1);
                let f = std::fs::File::create(dir.join(name)).unwrap();
                let mut enc = png::Encoder::new(f, side as u32, side as u32);
                enc.set_color(png::ColorType::Grayscale);
                enc.set_depth(png::BitDepth::Eight);
                enc.write_header()
                    .unwrap()
                    .write_image_data(&pixels)
                    .unwrap();
            }
        }
    }
}
