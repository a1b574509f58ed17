//! `spin`: a pure integer loop with the registers live. Asynchronous events (interrupts, IPIs,
//! task_work, preemption) land here, at arbitrary instructions.

use super::{Action, Spec};

pub(super) const SPEC: Spec = Spec::new("spin", "integer loop with registers live; async events land here", Action::Spin);
