//! One colour per arm, everywhere: the workbench's panels, exported SVG/PNG plots and the
//! README's figures all index this table, so the third arm is the same green on screen and
//! on paper. Tableau 10 (Tableau's default categorical palette): ten hues that stay distinct
//! on dark terminals and on white paper, which covers the ten runs a comparison is sized for.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb`, for SVG and CSS.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

pub const ARMS: [Rgb; 10] = [
    Rgb(0x4e, 0x79, 0xa7), // blue
    Rgb(0xf2, 0x8e, 0x2b), // orange
    Rgb(0x59, 0xa1, 0x4f), // green
    Rgb(0xe1, 0x57, 0x59), // red
    Rgb(0x76, 0xb7, 0xb2), // teal
    Rgb(0xed, 0xc9, 0x48), // yellow
    Rgb(0xb0, 0x7a, 0xa1), // purple
    Rgb(0xff, 0x9d, 0xa7), // pink
    Rgb(0x9c, 0x75, 0x5f), // brown
    Rgb(0xba, 0xb0, 0xac), // grey
];

/// The colour of the `i`-th arm (or run) of a view; wraps after ten.
pub fn arm(i: usize) -> Rgb {
    ARMS[i % ARMS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_distinct_and_wrap() {
        for (i, a) in ARMS.iter().enumerate() {
            for b in &ARMS[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(arm(10), arm(0));
        assert_eq!(arm(2).hex(), "#59a14f");
    }
}
