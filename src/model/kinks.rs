//! How piecewise-linear units (ReLU, max pool) choose their branch: one idea, used by a whole
//! network ([`Kinks`] over a [`KinkPattern`]) and by one fused op (`Kinks<Vec<u8>>`, one
//! layer's codes). Apart from `model/mod.rs` so that the device layer (`ops::device`), which
//! the model imports, can name it without importing its parent.

/// The branch every piecewise-linear unit (ReLU, max pool) took, in the order the network met
/// them: one code per unit and one list per layer (for an MLP, 1 = the ReLU passed; for a conv
/// block, the max-pool window's winner or "clipped by the ReLU").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KinkPattern {
    pub codes: Vec<Vec<u8>>,
}

/// How piecewise-linear units choose their branch, recorded into or replayed from a `P`: a
/// whole network's [`KinkPattern`], or one layer's codes (`Vec<u8>`) inside a fused op.
///
/// Second-order MAML takes Hessian-vector products as central differences of gradients. With
/// ReLU, a perturbation of the parameters can flip a unit across its kink, and the difference
/// quotient then measures the jump, not the curvature (errors of 100% were seen). Autodiff
/// treats kinks as having measure zero; replaying the pattern recorded at θ gives exactly that
/// Hessian, because with the pattern fixed the network is smooth in its parameters.
#[derive(Debug)]
pub enum Kinks<'a, P = KinkPattern> {
    /// Decided by the inputs, as usual.
    Free,
    /// Decided by the inputs, and recorded.
    Record(&'a mut P),
    /// Taken from a recording made on the same batch.
    Replay(&'a P),
}

impl<P> Kinks<'_, P> {
    /// The same mode for a shorter borrow, so one job's mode can be handed on call by call.
    pub fn reborrow(&mut self) -> Kinks<'_, P> {
        match self {
            Kinks::Free => Kinks::Free,
            Kinks::Record(p) => Kinks::Record(p),
            Kinks::Replay(p) => Kinks::Replay(p),
        }
    }
}
