//! `pagefault`: the first touch of a fresh page from inside the window, so the page-fault
//! exception entry and exit run with the registers live.

use super::{Action, Spec};

pub(super) const SPEC: Spec = Spec::new("pagefault", "first touch of a fresh page (page fault) from inside the window", Action::Touch);
