//! Progress bars on standard error, drawn only when standard error is a terminal.

use std::fmt::Write;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The `{rate}` key: records per second, whole, with thousands separators (`40,148 records/s`).
fn rate(state: &ProgressState, out: &mut dyn Write) {
    let per_second = state.per_sec();
    let whole = if per_second.is_finite() && per_second > 0.0 { per_second.round() as u64 } else { 0 };
    let _ = write!(out, "{} records/s", crate::failures::thousands(whole));
}

/// A bar (with `len`) or a spinner (without) in `template`, on standard error; hidden when standard error is
/// not a terminal (redirected to a file, a pipe, a CI log), whatever standard output is.
pub fn on_stderr(len: Option<u64>, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(template)
        .map(|style| style.with_key("rate", rate))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr()).with_style(style)
}
