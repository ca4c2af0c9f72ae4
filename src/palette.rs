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

/// The colour of the `i`-th entry of the table; wraps after ten.
pub fn arm(i: usize) -> Rgb {
    ARMS[i % ARMS.len()]
}

/// The arms the shipped experiments use, each with its own hue, so MAML is blue wherever it
/// appears (live, opened from Runs, in an exported figure).
const KNOWN: [&str; 10] = [
    "maml",
    "fomaml",
    "reptile",
    "multitask",
    "anil",
    "metasgd",
    "protonet",
    "matching",
    "relation",
    "baseline",
];

/// The slot an identity asks for: its known one, else a stable hash of its name (FNV-1a, so it
/// does not change between builds or platforms).
fn preferred(identity: &str) -> usize {
    let key = identity.to_lowercase();
    if let Some(i) = KNOWN.iter().position(|k| *k == key) {
        return i;
    }
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % ARMS.len() as u64) as usize
}

/// One colour per arm, a function of the arms' identities (their names), not of their order:
/// the same set of arms gets the same colours in every view and export. Identities are served
/// in sorted order, each its preferred slot, or the next free one when another took it (so two
/// arms of one view never share a colour while there are ten or fewer); equal identities share.
pub fn assign(identities: &[&str]) -> Vec<Rgb> {
    let mut distinct: Vec<&str> = identities.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let mut taken = [false; ARMS.len()];
    let mut slot_of = std::collections::HashMap::new();
    for id in distinct {
        let want = preferred(id);
        let slot = (0..ARMS.len())
            .map(|k| (want + k) % ARMS.len())
            .find(|s| !taken[*s])
            .unwrap_or(want);
        taken[slot] = true;
        slot_of.insert(id, slot);
    }
    identities.iter().map(|id| ARMS[slot_of[id]]).collect()
}

/// Viridis (matplotlib's default sequential map) at nine stops: dark blue for the low end to
/// yellow for the high end, ordered in lightness so it reads in grey and to colour-blind eyes.
const VIRIDIS: [Rgb; 9] = [
    Rgb(0x44, 0x01, 0x54),
    Rgb(0x47, 0x2c, 0x7a),
    Rgb(0x3b, 0x51, 0x8b),
    Rgb(0x2c, 0x71, 0x8e),
    Rgb(0x21, 0x90, 0x8d),
    Rgb(0x27, 0xad, 0x81),
    Rgb(0x5c, 0xc8, 0x63),
    Rgb(0xaa, 0xdc, 0x32),
    Rgb(0xfd, 0xe7, 0x25),
];

/// ColorBrewer's RdBu at seven stops, blue (negative) through near-white to red (positive).
const RDBU: [Rgb; 7] = [
    Rgb(0x21, 0x66, 0xac),
    Rgb(0x67, 0xa9, 0xcf),
    Rgb(0xd1, 0xe5, 0xf0),
    Rgb(0xf7, 0xf7, 0xf7),
    Rgb(0xfd, 0xdb, 0xc7),
    Rgb(0xef, 0x8a, 0x62),
    Rgb(0xb2, 0x18, 0x2b),
];

fn ramp(stops: &[Rgb], t: f64) -> Rgb {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let x = t * (stops.len() - 1) as f64;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (stops[i], stops[i + 1]);
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A continuous value's colour, `t` in [0, 1] (low to high): what task embeddings are coloured
/// by, on screen and in the exported figure.
pub fn sequential(t: f64) -> Rgb {
    ramp(&VIRIDIS, t)
}

/// A signed value's colour, `t` in [−1, 1]: blue below zero, red above, near-white at zero (the
/// affinity heatmap's scale).
pub fn diverging(t: f64) -> Rgb {
    ramp(&RDBU, (t + 1.0) / 2.0)
}

/// Black or white, whichever reads on `bg` (by its luma).
pub fn ink_on(bg: Rgb) -> Rgb {
    let luma = 0.299 * bg.0 as f64 + 0.587 * bg.1 as f64 + 0.114 * bg.2 as f64;
    if luma > 140.0 {
        Rgb(0, 0, 0)
    } else {
        Rgb(0xff, 0xff, 0xff)
    }
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

    #[test]
    fn an_arm_keeps_its_colour_whatever_its_position() {
        let a = assign(&["maml", "fomaml", "multitask"]);
        let b = assign(&["multitask", "maml", "fomaml"]);
        assert_eq!(a[0], b[1]);
        assert_eq!(a[1], b[2]);
        assert_eq!(a[2], b[0]);
        assert_eq!(a[0], ARMS[0], "MAML is blue");
        // Unknown names collide in hash now and then: they still get distinct colours.
        let names: Vec<String> = (0..10).map(|i| format!("arm-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let c = assign(&refs);
        for i in 0..10 {
            for j in i + 1..10 {
                assert_ne!(c[i], c[j]);
            }
        }
        // A seed group and a single run of one arm share its colour.
        let c = assign(&["maml", "maml", "reptile"]);
        assert_eq!(c[0], c[1]);
    }

    #[test]
    fn scales_run_from_end_to_end_through_their_middle() {
        assert_eq!(sequential(0.0), VIRIDIS[0]);
        assert_eq!(sequential(1.0), VIRIDIS[8]);
        assert_eq!(sequential(0.5), VIRIDIS[4]);
        assert_eq!(diverging(-1.0), RDBU[0]);
        assert_eq!(diverging(0.0), RDBU[3]);
        assert_eq!(diverging(2.0), RDBU[6]);
        assert_eq!(ink_on(RDBU[3]), Rgb(0, 0, 0));
        assert_eq!(ink_on(VIRIDIS[0]), Rgb(0xff, 0xff, 0xff));
    }
}
