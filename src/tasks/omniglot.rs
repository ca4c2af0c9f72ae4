//! Omniglot N-way K-shot classification from the official folder layout
//! (`<root>/images_background|images_evaluation/<Alphabet>/<character>/*.png`).
//!
//! Every drawing is decoded once at load, resized and kept in memory as f32; sampling never
//! touches disk. Rotated classes are not stored: a rotation is a pure index permutation, so it is
//! applied while an episode is assembled, which keeps memory at one copy of the data set.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::json;

use super::*;
use crate::experiment::{OmniglotProtocol, OmniglotSpec};

/// The two halves of the official release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Set {
    Background,
    Evaluation,
}

impl Set {
    const ALL: [Set; 2] = [Set::Background, Set::Evaluation];

    fn folder(self) -> &'static str {
        match self {
            Set::Background => "images_background",
            Set::Evaluation => "images_evaluation",
        }
    }
}

struct Alphabet {
    set: Set,
    name: String,
    /// Indices into `Layout::chars`.
    chars: Range<usize>,
}

impl Alphabet {
    /// `images_background/Latin`: unique even if both sets had an alphabet of the same name.
    fn qualified(&self) -> String {
        format!("{}/{}", self.set.folder(), self.name)
    }
}

struct Character {
    alphabet: usize,
    name: String,
    dir: PathBuf,
    /// PNG files, sorted by name.
    files: Vec<PathBuf>,
}

/// The folder tree, listed but not decoded. Everything is sorted by name so that class numbering
/// (and therefore every seeded split and episode) does not depend on directory iteration order.
struct Layout {
    present: [bool; 2],
    alphabets: Vec<Alphabet>,
    chars: Vec<Character>,
}

/// Classes per split, as `metalab check` reports them before anything is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SplitCount {
    pub alphabets: usize,
    pub characters: usize,
    /// Characters × rotations: the classes tasks are drawn from.
    pub classes: usize,
}

/// What `scan` found: folder layout and the seeded split, without decoding any image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub root: PathBuf,
    pub background_present: bool,
    pub evaluation_present: bool,
    pub alphabets: usize,
    pub characters: usize,
    pub images: usize,
    pub train: SplitCount,
    pub validation: SplitCount,
    pub test: SplitCount,
}

impl ScanSummary {
    pub fn count(&self, split: Split) -> SplitCount {
        match split {
            Split::Train => self.train,
            Split::Validation => self.validation,
            Split::Test => self.test,
        }
    }
}

impl std::fmt::Display for ScanSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |p: bool| if p { "present" } else { "missing" };
        write!(
            f,
            "Omniglot at {}: images_background {}, images_evaluation {}; {} alphabets, {} characters, {} images; \
             classes train {} / val {} / test {} (alphabets {} / {} / {})",
            self.root.display(),
            present(self.background_present),
            present(self.evaluation_present),
            self.alphabets,
            self.characters,
            self.images,
            self.train.classes,
            self.validation.classes,
            self.test.classes,
            self.train.alphabets,
            self.validation.alphabets,
            self.test.alphabets,
        )
    }
}

pub struct Omniglot {
    spec: OmniglotSpec,
    seed: u64,
    layout: Layout,
    /// First drawing of each character in `images`.
    first: Vec<usize>,
    /// `size × size` f32 per drawing, characters in layout order, drawings in file order.
    images: Vec<f32>,
    /// Global class ids (`character × rotations + quarter_turns`) per split, ascending.
    classes: [Vec<usize>; 3],
    char_split: Vec<Split>,
}

fn split_index(split: Split) -> usize {
    match split {
        Split::Train => 0,
        Split::Validation => 1,
        Split::Test => 2,
    }
}

fn protocol_name(p: &OmniglotProtocol) -> &'static str {
    match p {
        OmniglotProtocol::BackgroundEvaluation => "BackgroundEvaluation",
        OmniglotProtocol::AlphabetSplit { .. } => "AlphabetSplit",
        OmniglotProtocol::CharacterSplit { .. } => "CharacterSplit",
    }
}

fn rotations(spec: &OmniglotSpec) -> usize {
    if spec.rotations {
        4
    } else {
        1
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FamilyError + '_ {
    move |source| FamilyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Sub-folders of `dir`, sorted by name. Stray files (READMEs, .DS_Store) are not classes.
fn sorted_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, FamilyError> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        if path.is_dir() {
            out.push((entry.file_name().to_string_lossy().into_owned(), path));
        }
    }
    out.sort();
    Ok(out)
}

fn sorted_pngs(dir: &Path) -> Result<Vec<PathBuf>, FamilyError> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let is_png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

impl Layout {
    fn list(root: &Path) -> Result<Layout, FamilyError> {
        if !root.is_dir() {
            return Err(FamilyError::MissingRoot {
                path: root.to_path_buf(),
            });
        }
        let mut layout = Layout {
            present: [false; 2],
            alphabets: vec![],
            chars: vec![],
        };
        for (i, set) in Set::ALL.into_iter().enumerate() {
            let dir = root.join(set.folder());
            if !dir.is_dir() {
                continue;
            }
            layout.present[i] = true;
            for (name, adir) in sorted_dirs(&dir)? {
                let start = layout.chars.len();
                let alphabet = layout.alphabets.len();
                for (cname, cdir) in sorted_dirs(&adir)? {
                    let files = sorted_pngs(&cdir)?;
                    layout.chars.push(Character {
                        alphabet,
                        name: cname,
                        dir: cdir,
                        files,
                    });
                }
                // An empty alphabet folder holds no classes; counting it would skew alphabet splits.
                if layout.chars.len() > start {
                    layout.alphabets.push(Alphabet {
                        set,
                        name,
                        chars: start..layout.chars.len(),
                    });
                }
            }
        }
        Ok(layout)
    }

    fn has(&self, set: Set) -> bool {
        self.present[set as usize]
    }
}

/// The fraction-based split of `n` shuffled units: (train, validation) counts, rest test.
/// Train, and validation when asked for, get at least one unit each; if rounding overshoots `n`,
/// train gives way first so a requested validation split is never silently dropped.
fn split_sizes(n: usize, train: f64, validation: f64) -> (usize, usize) {
    let mut n_train = ((train * n as f64).round() as usize).max(1);
    let mut n_val = (validation * n as f64).round() as usize;
    if validation > 0.0 {
        n_val = n_val.max(1);
    }
    n_val = n_val.min(n.saturating_sub(1));
    n_train = n_train.min(n - n_val);
    (n_train, n_val)
}

fn assign(units: usize, train: f64, validation: f64, rng: &mut Rng) -> Vec<Split> {
    let mut order: Vec<usize> = (0..units).collect();
    order.shuffle(rng);
    let (n_train, n_val) = split_sizes(units, train, validation);
    let mut out = vec![Split::Test; units];
    for (rank, &u) in order.iter().enumerate() {
        if rank < n_train {
            out[u] = Split::Train;
        } else if rank < n_train + n_val {
            out[u] = Split::Validation;
        }
    }
    out
}

/// Fraction of background alphabets held out for validation under `BackgroundEvaluation`.
const BACKGROUND_VALIDATION: f64 = 0.1;

/// Which split each character belongs to, per the protocol, or why the protocol cannot be met.
fn assign_characters(
    layout: &Layout,
    spec: &OmniglotSpec,
    seed: u64,
) -> Result<Vec<Split>, FamilyError> {
    let mut rng = Rng::seed_from_u64(seed);
    let protocol = protocol_name(&spec.protocol).to_string();
    let missing = |set: Set, fix: String| FamilyError::MissingSplit {
        path: spec.root.join(set.folder()),
        protocol: protocol.clone(),
        fix,
    };
    let per_alphabet = |alpha_split: &[Split]| {
        layout
            .chars
            .iter()
            .map(|c| alpha_split[c.alphabet])
            .collect::<Vec<_>>()
    };
    match spec.protocol {
        OmniglotProtocol::BackgroundEvaluation => {
            let split_alone =
                "use protocol: AlphabetSplit(train: 0.7, validation: 0.1) to split the";
            if !layout.has(Set::Background) {
                let fix = if layout.has(Set::Evaluation) {
                    format!("{split_alone} evaluation set alone")
                } else {
                    format!(
                        "put images_background/ and images_evaluation/ of the Omniglot release under {}",
                        spec.root.display()
                    )
                };
                return Err(missing(Set::Background, fix));
            }
            if !layout.has(Set::Evaluation) {
                return Err(missing(
                    Set::Evaluation,
                    format!("{split_alone} background set alone, or add images_evaluation/ from the Omniglot release"),
                ));
            }
            let background: Vec<usize> = (0..layout.alphabets.len())
                .filter(|&a| layout.alphabets[a].set == Set::Background)
                .collect();
            let held = assign(
                background.len(),
                1.0 - BACKGROUND_VALIDATION,
                BACKGROUND_VALIDATION,
                &mut rng,
            );
            let mut alpha_split = vec![Split::Test; layout.alphabets.len()];
            for (&a, &s) in background.iter().zip(&held) {
                // Rounding can leave a background alphabet in "test"; it belongs to training.
                alpha_split[a] = if s == Split::Validation {
                    Split::Validation
                } else {
                    Split::Train
                };
            }
            Ok(per_alphabet(&alpha_split))
        }
        OmniglotProtocol::AlphabetSplit { train, validation }
        | OmniglotProtocol::CharacterSplit { train, validation } => {
            if !layout.has(Set::Background) && !layout.has(Set::Evaluation) {
                return Err(missing(
                    Set::Background,
                    format!(
                        "{} holds neither images_background/ nor images_evaluation/: point `family.root` at the folder that does",
                        spec.root.display()
                    ),
                ));
            }
            if matches!(spec.protocol, OmniglotProtocol::AlphabetSplit { .. }) {
                let alpha_split = assign(layout.alphabets.len(), train, validation, &mut rng);
                Ok(per_alphabet(&alpha_split))
            } else {
                Ok(assign(layout.chars.len(), train, validation, &mut rng))
            }
        }
    }
}

/// Does the protocol promise a validation split? (`validation: 0.0` opts out of one.)
fn uses_validation(p: &OmniglotProtocol) -> bool {
    match p {
        OmniglotProtocol::BackgroundEvaluation => true,
        OmniglotProtocol::AlphabetSplit { validation, .. }
        | OmniglotProtocol::CharacterSplit { validation, .. } => *validation > 0.0,
    }
}

fn too_few(spec: &OmniglotSpec, split: Split, available: usize) -> FamilyError {
    let mut fixes = vec![];
    if available >= 2 {
        fixes.push(format!("lower ways to {available}"));
    }
    if !spec.rotations && available * 4 >= spec.ways {
        fixes.push(format!("add rotations: true ({} classes)", available * 4));
    }
    fixes.push(match (&spec.protocol, split) {
        (OmniglotProtocol::BackgroundEvaluation, Split::Test) => {
            "check that images_evaluation/ holds the full release (20 alphabets, 659 characters)".into()
        }
        (OmniglotProtocol::BackgroundEvaluation, _) => {
            "use a larger split, e.g. protocol: AlphabetSplit(train: 0.7, validation: 0.1) or CharacterSplit(train: 0.7, validation: 0.1)".into()
        }
        (OmniglotProtocol::AlphabetSplit { .. }, _) => format!(
            "use a larger {split:?} split: change the fractions in AlphabetSplit, or use CharacterSplit(...) to split characters rather than whole alphabets"
        ),
        (OmniglotProtocol::CharacterSplit { .. }, _) => {
            format!("use a larger {split:?} split: change the fractions in CharacterSplit")
        }
    });
    FamilyError::TooFewClasses {
        split,
        available,
        ways: spec.ways,
        fix: fixes.join(", or "),
    }
}

/// Layout, split and every check that does not need pixels.
fn survey(
    spec: &OmniglotSpec,
    seed: u64,
) -> Result<(Layout, Vec<Split>, ScanSummary), FamilyError> {
    if spec.image_size == 0 || spec.ways == 0 {
        return Err(FamilyError::Other(format!(
            "Omniglot needs image_size > 0 and ways > 0 (got image_size {}, ways {})\n  fix: use image_size: 28, ways: 5",
            spec.image_size, spec.ways
        )));
    }
    let layout = Layout::list(&spec.root)?;
    let char_split = assign_characters(&layout, spec, seed)?;
    let rot = rotations(spec);
    let mut counts = [SplitCount::default(); 3];
    for (a, alphabet) in layout.alphabets.iter().enumerate() {
        let mut seen = [false; 3];
        for c in alphabet.chars.clone() {
            debug_assert_eq!(layout.chars[c].alphabet, a);
            let s = split_index(char_split[c]);
            counts[s].characters += 1;
            counts[s].classes += rot;
            seen[s] = true;
        }
        for (count, seen) in counts.iter_mut().zip(seen) {
            count.alphabets += seen as usize;
        }
    }
    // Report the smallest split, so that "lower ways to N" is a fix for every split at once.
    let smallest = [Split::Train, Split::Validation, Split::Test]
        .into_iter()
        .filter(|&s| s != Split::Validation || uses_validation(&spec.protocol))
        .min_by_key(|&s| counts[split_index(s)].classes)
        .expect("train and test are always used");
    let available = counts[split_index(smallest)].classes;
    if available < spec.ways {
        return Err(too_few(spec, smallest, available));
    }
    let need = spec.shots + spec.queries;
    if let Some(c) = layout.chars.iter().find(|c| c.files.len() < need) {
        return Err(FamilyError::Other(format!(
            "{}: {} PNG drawings, but shots + queries = {need} distinct drawings are needed per class\n  fix: lower shots or queries (the release has 20 drawings per character), or remove this folder",
            c.dir.display(),
            c.files.len()
        )));
    }
    let summary = ScanSummary {
        root: spec.root.clone(),
        background_present: layout.has(Set::Background),
        evaluation_present: layout.has(Set::Evaluation),
        alphabets: layout.alphabets.len(),
        characters: layout.chars.len(),
        images: layout.chars.iter().map(|c| c.files.len()).sum(),
        train: counts[0],
        validation: counts[1],
        test: counts[2],
    };
    Ok((layout, char_split, summary))
}

/// Check the folder layout, the seeded split and the class counts without decoding any image.
pub fn scan(spec: &OmniglotSpec, seed: u64) -> Result<ScanSummary, FamilyError> {
    survey(spec, seed).map(|(_, _, summary)| summary)
}

/// One PNG as ink in [0, 1] (strokes 1), area-resized to `size × size`: what the family
/// holds for every drawing, for images that come from elsewhere (Lake's one-shot runs).
pub fn load_image(path: &Path, size: usize) -> Result<Vec<f32>, FamilyError> {
    let (ink, w, h) = decode(path)?;
    Ok(resize_area(&ink, w, h, size))
}

/// Decode one PNG to ink in [0, 1] (strokes 1, paper 0), `width × height`, row-major.
fn decode(path: &Path) -> Result<(Vec<f32>, usize, usize), FamilyError> {
    let bad = |message: String| FamilyError::BadImage {
        path: path.to_path_buf(),
        message,
    };
    let bytes = fs::read(path).map_err(io_err(path))?;
    let mut decoder = png::Decoder::new(bytes.as_slice());
    // 1-bit grey (the release's format) comes out as 8-bit 0/255; 16-bit is cut to 8.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a readable PNG: {e}")))?;
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
fn box_weights(from: usize, to: usize) -> Vec<Vec<(usize, f32)>> {
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
fn decode_all(files: &[&Path], size: usize) -> Result<Vec<f32>, FamilyError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    decode_all_with(files, size, threads)
}

fn decode_all_with(files: &[&Path], size: usize, threads: usize) -> Result<Vec<f32>, FamilyError> {
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

/// `ways` distinct classes from `pool`, in random order.
pub(super) fn choose_classes(pool: &[usize], ways: usize, rng: &mut Rng) -> Vec<usize> {
    assert!(
        pool.len() >= ways,
        "split has {} classes, cannot draw a {ways}-way task (a split fraction of 0 leaves it empty)",
        pool.len()
    );
    rand::seq::index::sample(rng, pool.len(), ways)
        .into_iter()
        .map(|i| pool[i])
        .collect()
}

/// Assemble an episode class-major. `draw(i, rng, buf)` fills `buf` with `shots + queries`
/// drawings of the task's `i`-th class, the first `shots` for support.
pub(super) fn class_major_episode(
    ways: usize,
    shots: usize,
    queries: usize,
    input_len: usize,
    rng: &mut Rng,
    mut draw: impl FnMut(usize, &mut Rng, &mut [f32]),
) -> Episode {
    let mut sx = Vec::with_capacity(ways * shots * input_len);
    let mut qx = Vec::with_capacity(ways * queries * input_len);
    let mut buf = vec![0f32; (shots + queries) * input_len];
    for i in 0..ways {
        draw(i, rng, &mut buf);
        let (s, q) = buf.split_at(shots * input_len);
        sx.extend_from_slice(s);
        qx.extend_from_slice(q);
    }
    let labels = |k: usize| (0..ways).flat_map(|i| std::iter::repeat_n(i, k)).collect();
    Episode {
        support: Batch {
            n: ways * shots,
            x: sx,
            y: Targets::Classes(labels(shots)),
        },
        query: Batch {
            n: ways * queries,
            x: qx,
            y: Targets::Classes(labels(queries)),
        },
    }
}

impl Omniglot {
    /// List, split, check, then decode every image once (on all cores).
    pub fn load(spec: &OmniglotSpec, seed: u64) -> Result<Omniglot, FamilyError> {
        let (layout, char_split, _) = survey(spec, seed)?;
        let files: Vec<&Path> = layout
            .chars
            .iter()
            .flat_map(|c| c.files.iter().map(|p| p.as_path()))
            .collect();
        let images = decode_all(&files, spec.image_size)?;
        let mut first = Vec::with_capacity(layout.chars.len());
        let mut at = 0;
        for c in &layout.chars {
            first.push(at);
            at += c.files.len();
        }
        let rot = rotations(spec);
        let mut classes: [Vec<usize>; 3] = Default::default();
        for (c, &s) in char_split.iter().enumerate() {
            classes[split_index(s)].extend((0..rot).map(|r| c * rot + r));
        }
        Ok(Omniglot {
            spec: spec.clone(),
            seed,
            layout,
            first,
            images,
            classes,
            char_split,
        })
    }

    /// Classes tasks of `split` are drawn from (global ids).
    pub fn classes(&self, split: Split) -> &[usize] {
        &self.classes[split_index(split)]
    }

    /// Number of drawings of a class.
    pub fn drawings(&self, class: usize) -> usize {
        self.layout.chars[class / rotations(&self.spec)].files.len()
    }

    /// Drawing `d` of `class`, rotated as the class says, `size × size`.
    pub fn image(&self, class: usize, d: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.spec.image_size * self.spec.image_size];
        self.image_into(class, d, &mut out);
        out
    }

    fn image_into(&self, class: usize, d: usize, dst: &mut [f32]) {
        let rot = rotations(&self.spec);
        let (c, turns) = (class / rot, class % rot);
        let n = self.spec.image_size * self.spec.image_size;
        let at = (self.first[c] + d) * n;
        rotate_into(&self.images[at..at + n], self.spec.image_size, turns, dst);
    }

    /// `images_background/Latin/character03` (plus the rotation) for a class id.
    pub fn class_name(&self, class: usize) -> String {
        let rot = rotations(&self.spec);
        let ch = &self.layout.chars[class / rot];
        let base = format!(
            "{}/{}",
            self.layout.alphabets[ch.alphabet].qualified(),
            ch.name
        );
        match class % rot {
            0 => base,
            t => format!("{base} rotated {}°", t * 90),
        }
    }
}

impl TaskFamily for Omniglot {
    fn shape(&self) -> FamilyShape {
        FamilyShape {
            input: vec![1, self.spec.image_size, self.spec.image_size],
            outputs: self.spec.ways,
            kind: TaskKind::Classification,
        }
    }

    fn sample_task(&self, split: Split, rng: &mut Rng) -> Task {
        Task::Classes {
            split,
            classes: choose_classes(self.classes(split), self.spec.ways, rng),
        }
    }

    fn sample_episode(&self, task: &Task, rng: &mut Rng) -> Episode {
        let Task::Classes { classes, .. } = task else {
            panic!("Omniglot family given a {task:?}")
        };
        let (shots, queries) = (self.spec.shots, self.spec.queries);
        let n = self.spec.image_size * self.spec.image_size;
        class_major_episode(classes.len(), shots, queries, n, rng, |i, rng, buf| {
            let class = classes[i];
            let picks = rand::seq::index::sample(rng, self.drawings(class), shots + queries);
            for (dst, d) in buf.chunks_exact_mut(n).zip(picks) {
                self.image_into(class, d, dst);
            }
        })
    }

    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "Omniglot {}-way {}-shot ({} query), {}×{}, train {} / val {} / test {} classes{}",
            s.ways,
            s.shots,
            s.queries,
            s.image_size,
            s.image_size,
            self.classes[0].len(),
            self.classes[1].len(),
            self.classes[2].len(),
            if s.rotations { ", rotations" } else { "" }
        )
    }

    fn split_record(&self) -> serde_json::Value {
        let character_split = matches!(self.spec.protocol, OmniglotProtocol::CharacterSplit { .. });
        let mut splits = serde_json::Map::new();
        for (key, split) in [
            ("train", Split::Train),
            ("validation", Split::Validation),
            ("test", Split::Test),
        ] {
            let chars: Vec<usize> = (0..self.layout.chars.len())
                .filter(|&c| self.char_split[c] == split)
                .collect();
            let mut alphabets: BTreeMap<String, Vec<&str>> = BTreeMap::new();
            for &c in &chars {
                let ch = &self.layout.chars[c];
                alphabets
                    .entry(self.layout.alphabets[ch.alphabet].qualified())
                    .or_default()
                    .push(&ch.name);
            }
            let mut entry = json!({
                "characters": chars.len(),
                "classes": self.classes(split).len(),
                "alphabets": alphabets.keys().collect::<Vec<_>>(),
            });
            // Under a character split an alphabet straddles splits: record the characters themselves.
            if character_split {
                entry["characters_by_alphabet"] = json!(alphabets);
            }
            splits.insert(key.into(), entry);
        }
        let mut record = json!({
            "family": "Omniglot",
            "protocol": self.spec.protocol,
            "seed": self.seed,
            "root": self.spec.root,
            "sets": {
                "images_background": self.layout.has(Set::Background),
                "images_evaluation": self.layout.has(Set::Evaluation),
            },
            "rotations": self.spec.rotations,
            "image_size": self.spec.image_size,
            "splits": splits,
        });
        if self.spec.protocol == OmniglotProtocol::BackgroundEvaluation {
            record["background_validation_fraction"] = json!(BACKGROUND_VALIDATION);
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufWriter;

    const SIDE: usize = 8;

    /// Write a `w × h` grey PNG; `ink(r, c)` pixels are black. 1-bit like the release, or 8-bit.
    fn write_png(
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
    fn fake_set(
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
    fn drawing_id(img: &[f32]) -> usize {
        (0..2 * SIDE)
            .map(|k| ((img[k] > 0.5) as usize) << k)
            .sum::<usize>()
            - 1
    }

    fn spec(root: &Path, protocol: OmniglotProtocol) -> OmniglotSpec {
        OmniglotSpec {
            root: root.to_path_buf(),
            ways: 3,
            shots: 2,
            queries: 3,
            image_size: SIDE,
            rotations: false,
            protocol,
        }
    }

    const THIRDS: OmniglotProtocol = OmniglotProtocol::AlphabetSplit {
        train: 0.34,
        validation: 0.33,
    };

    fn background_only() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path(), "images_background", 3, 4, 20, 0);
        dir
    }

    #[test]
    fn scan_counts_layout_per_split_and_ignores_stray_files() {
        let dir = background_only();
        let s = scan(&spec(dir.path(), THIRDS), 1).unwrap();
        assert!(s.background_present && !s.evaluation_present);
        assert_eq!((s.alphabets, s.characters, s.images), (3, 12, 240));
        for split in [Split::Train, Split::Validation, Split::Test] {
            let n = s.count(split);
            assert_eq!(
                (n.alphabets, n.characters, n.classes),
                (1, 4, 4),
                "{split:?}"
            );
        }
        let mut rot = spec(
            dir.path(),
            OmniglotProtocol::CharacterSplit {
                train: 0.5,
                validation: 0.25,
            },
        );
        rot.rotations = true;
        let s = scan(&rot, 1).unwrap();
        assert_eq!(
            (
                s.train.characters,
                s.validation.characters,
                s.test.characters
            ),
            (6, 3, 3)
        );
        assert_eq!(
            (s.train.classes, s.validation.classes, s.test.classes),
            (24, 12, 12)
        );
        assert!(s.to_string().contains("images_evaluation missing"), "{s}");
    }

    #[test]
    fn missing_root_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nope");
        let err = scan(&spec(&root, THIRDS), 1).unwrap_err();
        assert!(
            matches!(&err, FamilyError::MissingRoot { path } if path == &root),
            "{err}"
        );
        assert!(err.to_string().contains(&root.display().to_string()));
        assert!(Omniglot::load(&spec(&root, THIRDS), 1).is_err());
    }

    #[test]
    fn missing_split_says_which_and_how_to_fix() {
        let dir = background_only();
        let err = Omniglot::load(&spec(dir.path(), OmniglotProtocol::BackgroundEvaluation), 1)
            .err()
            .unwrap();
        let FamilyError::MissingSplit { path, protocol, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(path, &dir.path().join("images_evaluation"));
        assert_eq!(protocol, "BackgroundEvaluation");
        let msg = err.to_string();
        assert!(msg.contains("images_evaluation"), "{msg}");
        assert!(
            msg.contains(
                "AlphabetSplit(train: 0.7, validation: 0.1) to split the background set alone"
            ),
            "{msg}"
        );

        let only_eval = tempfile::tempdir().unwrap();
        fake_set(only_eval.path(), "images_evaluation", 3, 4, 20, 0);
        let err = scan(
            &spec(only_eval.path(), OmniglotProtocol::BackgroundEvaluation),
            1,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("images_background") && msg.contains("evaluation set alone"),
            "{msg}"
        );
        // A split protocol works with the evaluation set alone.
        assert_eq!(
            scan(&spec(only_eval.path(), THIRDS), 1).unwrap().characters,
            12
        );

        let empty = tempfile::tempdir().unwrap();
        let err = scan(&spec(empty.path(), THIRDS), 1).unwrap_err();
        assert!(matches!(err, FamilyError::MissingSplit { .. }), "{err}");
    }

    #[test]
    fn too_few_classes_names_the_split_and_the_fixes() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path(), "images_background", 3, 6, 20, 0);
        fake_set(dir.path(), "images_evaluation", 1, 3, 20, 360);
        let mut five = spec(dir.path(), OmniglotProtocol::BackgroundEvaluation);
        five.ways = 5;
        let err = scan(&five, 1).unwrap_err();
        let FamilyError::TooFewClasses {
            split,
            available,
            ways,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*split, *available, *ways), (Split::Test, 3, 5));
        let msg = err.to_string();
        assert!(
            msg.contains("Test split has 3 classes but tasks are 5-way"),
            "{msg}"
        );
        assert!(
            msg.contains("lower ways to 3") && msg.contains("rotations: true"),
            "{msg}"
        );
        // Rotations make 12 test classes out of 3 characters.
        five.rotations = true;
        let s = scan(&five, 1).unwrap();
        let fam = Omniglot::load(&five, 1).unwrap();
        let rec = fam.split_record();
        assert_eq!(rec["protocol"], "BackgroundEvaluation");
        assert_eq!(
            rec["splits"]["test"]["alphabets"],
            json!(["images_evaluation/Alphabet0"])
        );
        assert_eq!(
            rec["splits"]["validation"]["alphabets"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(rec["splits"]["train"]["classes"], 48);
        assert_eq!(s.test.classes, 12);
        // Background: 3 alphabets, one held out for validation (10%, at least one).
        assert_eq!(
            (s.train.alphabets, s.validation.alphabets, s.test.alphabets),
            (2, 1, 1)
        );

        let mut big = spec(dir.path(), THIRDS);
        big.ways = 7;
        std::fs::remove_dir_all(dir.path().join("images_evaluation")).unwrap();
        let err = scan(&big, 1).unwrap_err();
        assert!(
            matches!(
                err,
                FamilyError::TooFewClasses {
                    split: Split::Train,
                    available: 6,
                    ways: 7,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn too_few_drawings_and_bad_images_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path(), "images_background", 3, 4, 4, 0);
        let err = scan(&spec(dir.path(), THIRDS), 1).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("character01")
                && msg.contains("4 PNG drawings")
                && msg.contains("shots + queries = 5"),
            "{msg}"
        );

        let dir = background_only();
        let bad = dir
            .path()
            .join("images_background/Alphabet1/character02/0006_07.png");
        fs::write(&bad, b"definitely not a png").unwrap();
        // Scanning does not decode, so only loading notices.
        scan(&spec(dir.path(), THIRDS), 1).unwrap();
        let err = Omniglot::load(&spec(dir.path(), THIRDS), 1).err().unwrap();
        assert!(
            matches!(&err, FamilyError::BadImage { path, .. } if path == &bad),
            "{err}"
        );
    }

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
    fn loaded_pixels_match_the_files_at_full_and_reduced_size() {
        let dir = background_only();
        let fam = Omniglot::load(&spec(dir.path(), THIRDS), 1).unwrap();
        for class in 0..12 {
            for d in 0..20 {
                assert_eq!(drawing_id(&fam.image(class, d)), class * 20 + d);
            }
        }
        let mut half = spec(dir.path(), THIRDS);
        half.image_size = 4;
        let fam = Omniglot::load(&half, 1).unwrap();
        // 8→4: each output pixel averages a 2×2 block; only the top source row has ink.
        let code = 5 * 20 + 7 + 1;
        let img = fam.image(5, 7);
        for (c, &v) in img[..4].iter().enumerate() {
            let want = (((code >> (2 * c)) & 1) + ((code >> (2 * c + 1)) & 1)) as f32 / 4.0;
            assert!((v - want).abs() < 1e-6, "pixel {c}: {v} vs {want}");
        }
        assert!(img[4..].iter().all(|&v| v == 0.0));
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
        let one = decode_all_with(&files, 5, 1).unwrap();
        assert_eq!(one.len(), 240 * 25);
        for threads in [2, 3, 7] {
            assert_eq!(decode_all_with(&files, 5, threads).unwrap(), one);
        }
    }

    #[test]
    fn rotations_add_three_rotated_classes_in_the_same_split() {
        let dir = background_only();
        let mut s = spec(dir.path(), THIRDS);
        s.rotations = true;
        let fam = Omniglot::load(&s, 1).unwrap();
        let all: usize = [Split::Train, Split::Validation, Split::Test]
            .iter()
            .map(|&sp| fam.classes(sp).len())
            .sum();
        assert_eq!(all, 48);
        for split in [Split::Train, Split::Validation, Split::Test] {
            for &c in fam.classes(split) {
                let base = c / 4 * 4;
                assert!((0..4).all(|r| fam.classes(split).contains(&(base + r))));
            }
        }
        // Character 0, drawing 0 has one ink pixel: top-left. Counter-clockwise turns move it
        // to bottom-left, bottom-right, top-right.
        let s1 = SIDE - 1;
        for (turns, (r, c)) in [(0, 0), (s1, 0), (s1, s1), (0, s1)].into_iter().enumerate() {
            let img = fam.image(turns, 0);
            let inked: Vec<usize> = (0..SIDE * SIDE).filter(|&i| img[i] > 0.5).collect();
            assert_eq!(inked, vec![r * SIDE + c], "{turns} quarter turns");
        }
        assert!(fam
            .class_name(5)
            .ends_with("Alphabet0/character02 rotated 90°"));
        assert!(
            fam.describe()
                .contains("train 16 / val 16 / test 16 classes, rotations"),
            "{}",
            fam.describe()
        );
    }

    #[test]
    fn seeded_splits_are_reproducible_and_depend_on_the_seed() {
        let dir = background_only();
        let s = spec(
            dir.path(),
            OmniglotProtocol::CharacterSplit {
                train: 0.5,
                validation: 0.25,
            },
        );
        let a = Omniglot::load(&s, 7).unwrap();
        let b = Omniglot::load(&s, 7).unwrap();
        let c = Omniglot::load(&s, 8).unwrap();
        assert_eq!(a.split_record(), b.split_record());
        assert_eq!(a.classes(Split::Test), b.classes(Split::Test));
        assert_ne!(a.classes(Split::Test), c.classes(Split::Test));
        let rec = a.split_record();
        assert_eq!(rec["seed"], 7);
        assert_eq!(rec["protocol"]["CharacterSplit"]["train"], 0.5);
        assert_eq!(rec["splits"]["validation"]["characters"], 3);
        let listed: usize = rec["splits"]["test"]["characters_by_alphabet"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_array().unwrap().len())
            .sum();
        assert_eq!(listed, 3);

        // Alphabet splits hold out whole alphabets, and the record names them.
        let alpha = Omniglot::load(&spec(dir.path(), THIRDS), 3).unwrap();
        let mut named = vec![];
        for key in ["train", "validation", "test"] {
            let names = alpha.split_record()["splits"][key]["alphabets"]
                .as_array()
                .unwrap()
                .clone();
            assert_eq!(names.len(), 1, "{key}");
            named.push(names[0].as_str().unwrap().to_string());
        }
        named.sort();
        assert_eq!(
            named,
            [
                "images_background/Alphabet0",
                "images_background/Alphabet1",
                "images_background/Alphabet2"
            ]
        );
        for split in [Split::Train, Split::Validation, Split::Test] {
            let alphabets: Vec<usize> = alpha.classes(split).iter().map(|&c| c / 4).collect();
            assert!(
                alphabets.iter().all(|&a| a == alphabets[0]),
                "{split:?}: {alphabets:?}"
            );
        }
    }

    #[test]
    fn split_fractions_round_as_documented() {
        assert_eq!(split_sizes(30, 0.7, 0.1), (21, 3));
        assert_eq!(split_sizes(3, 0.7, 0.1), (2, 1));
        assert_eq!(split_sizes(3, 0.9, 0.1), (2, 1));
        assert_eq!(split_sizes(964, 0.7, 0.0), (675, 0));
        assert_eq!(split_sizes(1, 0.7, 0.1), (1, 0));
    }

    #[test]
    fn episodes_are_class_major_distinct_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        fake_set(dir.path(), "images_background", 3, 8, 20, 0);
        let s = OmniglotSpec {
            ways: 4,
            shots: 3,
            queries: 5,
            ..spec(
                dir.path(),
                OmniglotProtocol::CharacterSplit {
                    train: 0.5,
                    validation: 0.25,
                },
            )
        };
        let fam = Omniglot::load(&s, 1).unwrap();
        assert_eq!(
            fam.shape(),
            FamilyShape {
                input: vec![1, SIDE, SIDE],
                outputs: 4,
                kind: TaskKind::Classification
            }
        );
        let mut rng = Rng::seed_from_u64(11);
        let mut seen_orders = std::collections::HashSet::new();
        for _ in 0..50 {
            let task = fam.sample_task(Split::Train, &mut rng);
            let Task::Classes { split, classes } = &task else {
                unreachable!()
            };
            assert_eq!(*split, Split::Train);
            assert_eq!(classes.len(), 4);
            assert!(classes
                .iter()
                .all(|c| fam.classes(Split::Train).contains(c)));
            let mut uniq = classes.clone();
            uniq.sort();
            uniq.dedup();
            assert_eq!(uniq.len(), 4);
            seen_orders.insert(classes.clone());

            let ep = fam.sample_episode(&task, &mut rng);
            assert_eq!((ep.support.n, ep.query.n), (12, 20));
            assert_eq!(ep.support.x.len(), 12 * SIDE * SIDE);
            assert_eq!(ep.query.x.len(), 20 * SIDE * SIDE);
            let Targets::Classes(sy) = &ep.support.y else {
                unreachable!()
            };
            let Targets::Classes(qy) = &ep.query.y else {
                unreachable!()
            };
            assert_eq!(sy, &[0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
            assert_eq!(qy.len(), 20);
            assert!(qy
                .chunks(5)
                .enumerate()
                .all(|(i, ch)| ch.iter().all(|&y| y == i)));
            let mut ids: Vec<usize> = vec![];
            for (batch, labels) in [(&ep.support, sy), (&ep.query, qy)] {
                for (img, &y) in batch.x.chunks(SIDE * SIDE).zip(labels) {
                    let id = drawing_id(img);
                    assert_eq!(id / 20, classes[y], "image of drawing {id} labelled {y}");
                    ids.push(id);
                }
            }
            let n = ids.len();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), n, "a drawing was used twice in one episode");
        }
        // Tasks vary (there are C(6,4)·4! ordered 4-way tasks of 6 train classes).
        assert!(seen_orders.len() > 30, "{}", seen_orders.len());

        let draw = |seed| {
            let mut rng = Rng::seed_from_u64(seed);
            let t = fam.sample_task(Split::Test, &mut Rng::seed_from_u64(seed));
            (t.clone(), fam.sample_episode(&t, &mut rng))
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5).1, draw(6).1);
    }

    /// The real background set, when present: `cargo test --release -- --ignored real_background`.
    #[test]
    #[ignore]
    fn real_background_set_loads_with_rotations() {
        let root = std::env::var_os("METALAB_OMNIGLOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/work/shared/data/omniglot"));
        if !root.join("images_background").is_dir() {
            eprintln!(
                "skipping: no Omniglot background set under {}",
                root.display()
            );
            return;
        }
        let s = OmniglotSpec {
            root,
            ways: 5,
            shots: 1,
            queries: 15,
            image_size: 28,
            rotations: true,
            protocol: OmniglotProtocol::AlphabetSplit {
                train: 0.7,
                validation: 0.1,
            },
        };
        let t = std::time::Instant::now();
        let summary = scan(&s, 1).unwrap();
        let scanned = t.elapsed();
        let t = std::time::Instant::now();
        let fam = Omniglot::load(&s, 1).unwrap();
        let loaded = t.elapsed();
        eprintln!("scan {scanned:?}, load {loaded:?}: {}", fam.describe());
        eprintln!("{summary}");
        assert_eq!(
            (summary.alphabets, summary.characters, summary.images),
            (30, 964, 19280)
        );
        assert_eq!(
            summary.train.classes + summary.validation.classes + summary.test.classes,
            3856
        );
        assert_eq!(fam.images.len(), 19280 * 28 * 28);
        // Strokes cover a small part of each drawing; background is exactly 0 away from them.
        let mean = fam.images.iter().sum::<f32>() / fam.images.len() as f32;
        assert!((0.03..0.3).contains(&mean), "mean ink {mean}");
        assert!(fam.images.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)));
        let mut rng = Rng::seed_from_u64(0);
        let task = fam.sample_task(Split::Test, &mut rng);
        let ep = fam.sample_episode(&task, &mut rng);
        assert_eq!((ep.support.n, ep.query.n), (5, 75));
    }
}
