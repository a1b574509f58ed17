//! The live one-line progress display: on a terminal only, never with --quiet.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::si;
use crate::engine::Progress;

pub struct Line {
    bar: Option<ProgressBar>,
    total: Duration,
}

impl Line {
    pub fn new(quiet: bool, total: Duration) -> Line {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            b
        });
        Line { bar, total }
    }

    pub fn update(&self, p: &Progress) {
        let Some(bar) = &self.bar else { return };
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        let mut msg = format!(
            "{:.1}/{:.0}s  {} checks ({}/s)  {} mismatches",
            p.elapsed.as_secs_f64(),
            self.total.as_secs_f64(),
            si(p.checks as f64),
            si(p.checks as f64 / secs),
            p.mismatches
        );
        for (name, n) in &p.trigger_events {
            msg.push_str(&format!("  {name} {}/s", si(*n as f64 / secs)));
        }
        bar.set_message(msg);
        bar.tick();
    }

    pub fn message(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_string());
            bar.tick();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
