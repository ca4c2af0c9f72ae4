//! The PNG backend: plotters' bitmap backend with its text drawn here. Plotters' `ab_glyph`
//! text places each glyph's bounding box at the pen position, dropping the glyph's side bearing,
//! so digits and letters come out unevenly spaced (`1 0 steps`); this lays glyphs out at their
//! real positions with kerning, from the same shipped font. Everything but text is passed
//! through unchanged.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use plotters::prelude::{BitMapBackend, DrawingBackend};
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

type Error = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

pub struct Raster<'a> {
    inner: BitMapBackend<'a>,
    font: FontRef<'static>,
}

impl<'a> Raster<'a> {
    pub fn new(inner: BitMapBackend<'a>, font: FontRef<'static>) -> Raster<'a> {
        Raster { inner, font }
    }

    /// The scale at which one em is `size / 1.24` pixels: the em plotters' SVG backend asks
    /// for (`font-size = size / 1.24`), so the PNG and the SVG lay out alike.
    fn scale(&self, size: f64) -> PxScale {
        let em = (size / 1.24) as f32;
        let per_em = self.font.units_per_em().unwrap_or(2048.0);
        PxScale::from(em * self.font.height_unscaled() / per_em)
    }

    fn advance(&self, scale: PxScale, text: &str) -> f32 {
        let f = self.font.as_scaled(scale);
        let mut x = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                x += f.kern(p, id);
            }
            x += f.h_advance(id);
            prev = Some(id);
        }
        x
    }
}

impl DrawingBackend for Raster<'_> {
    type ErrorType = Error;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        p: BackendCoord,
        c: BackendColor,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_pixel(p, c)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_rect(a, b, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        c: BackendCoord,
        r: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_circle(c, r, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Error>> {
        let scale = self.scale(style.size());
        Ok((
            self.advance(scale, text).ceil() as u32,
            (style.size() / 1.24).ceil() as u32,
        ))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Error>> {
        let colour = style.color();
        if colour.alpha == 0.0 {
            return Ok(());
        }
        let scale = self.scale(style.size());
        let f = self.font.as_scaled(scale);
        let width = self.advance(scale, text);
        let anchor = style.anchor();
        let x0 = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        // Baseline from the anchor: the line box (ascent over descent) is what is aligned.
        let baseline = match anchor.v_pos {
            VPos::Top => f.ascent(),
            VPos::Center => (f.ascent() + f.descent()) / 2.0,
            VPos::Bottom => f.descent(),
        };
        let trans = style.transform();
        let mut pixels = Vec::new();
        let mut pen = x0;
        let mut prev = None;
        for c in text.chars() {
            let id = f.glyph_id(c);
            if let Some(p) = prev {
                pen += f.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(scale, point(pen, baseline));
            pen += f.h_advance(id);
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cover| {
                    let (ux, uy) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                    pixels.push((trans.transform(ux, uy), cover));
                });
            }
        }
        for ((dx, dy), cover) in pixels {
            let c = BackendColor {
                alpha: colour.alpha * f64::from(cover.min(1.0)),
                rgb: colour.rgb,
            };
            self.inner.draw_pixel((pos.0 + dx, pos.1 + dy), c)?;
        }
        Ok(())
    }
}
