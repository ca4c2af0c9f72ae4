//! Scratch buffers kept from call to call.

/// The first `len` values of `buf`, for the caller to overwrite, `buf` grown to hold them if
/// it must. The buffers a conv step keeps only grow: a query batch follows a support batch of
/// a few images, and zeroing the difference again on every call cost ~2 % of a conv step
/// (memset) when they were resized to each batch.
pub fn at_least(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_largest_length_asked_and_keeps_the_values() {
        let mut buf = vec![];
        at_least(&mut buf, 3).copy_from_slice(&[1.0, 2.0, 3.0]);
        assert_eq!(at_least(&mut buf, 2), &[1.0, 2.0]);
        assert_eq!(buf.len(), 3, "a shorter request does not shrink it");
        assert_eq!(at_least(&mut buf, 5), &[1.0, 2.0, 3.0, 0.0, 0.0]);
    }
}
