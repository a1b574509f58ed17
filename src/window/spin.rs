//! `spin`: a pure integer loop with the registers live. Asynchronous events (interrupts, IPIs,
//! task_work, preemption) land here, at arbitrary instructions.

use super::{Action, Spec};

pub(super) const SPEC: Spec = Spec {
    name: "spin",
    describe: "integer loop with registers live; async events land here",
    action: Action::Spin,
    available: super::always,
};
