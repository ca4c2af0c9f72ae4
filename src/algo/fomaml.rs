//! First-order MAML: the meta-gradient is the query gradient at the adapted parameters, the
//! second-order terms (the Hessians of the inner steps) dropped. It shares MAML's machinery.

use super::maml::{Maml, Order};
use super::AlgoContext;

pub struct Fomaml;

impl Fomaml {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(ctx: AlgoContext) -> Maml {
        Maml::with_order(ctx, Order::First)
    }
}
