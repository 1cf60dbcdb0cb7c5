//! Progress display for `ingest`: live bars on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ragmill_core::{Progress, Stage};
use ragmill_pipeline::ProgressFn;

/// Shows each document's stage while it is in flight, and an overall bar.
pub struct Reporter {
    names: Vec<String>,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    live: Mutex<HashMap<usize, ProgressBar>>,
}

impl Reporter {
    /// A reporter for documents called `names`; bars only if stderr is a terminal.
    pub fn new(names: Vec<String>) -> Arc<Self> {
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(names.len() as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} documents {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Bars { multi, overall, live: Mutex::new(HashMap::new()) }
        });
        Arc::new(Self { names, bars })
    }

    /// The callback to hand the pipeline.
    pub fn callback(self: &Arc<Self>) -> ProgressFn {
        let me = Arc::clone(self);
        Arc::new(move |i, p| me.update(i, p))
    }

    /// A document's stage while in flight. Final stages are ignored: a document's end is
    /// reported by [`Reporter::finished`], which knows whether it was found unchanged.
    fn update(&self, i: usize, p: &Progress) {
        let name = self.names.get(i).map_or("?", String::as_str);
        if p.stage.is_final() {
            return;
        }
        let Some(bars) = &self.bars else { return };
        let Ok(mut live) = bars.live.lock() else { return };
        let bar = live.entry(i).or_insert_with(|| {
            let bar = bars.multi.insert_before(&bars.overall, ProgressBar::new(1));
            bar.set_style(
                ProgressStyle::with_template(
                    "  {prefix:30!} {msg:10} {bar:20.green/white} {pos}/{len}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(name.to_owned());
            bar
        });
        bar.set_message(p.stage.as_str());
        if p.stage == Stage::Embedding {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        }
    }

    /// Document `i` is done, as `state` (`ready`, `unchanged` or `failed`): a line
    /// `name: state` without a terminal; on one, its bar goes and the overall bar moves on.
    pub fn finished(&self, i: usize, state: &str) {
        let name = self.names.get(i).map_or("?", String::as_str);
        let Some(bars) = &self.bars else {
            eprintln!("{name}: {state}");
            return;
        };
        if let Ok(mut live) = bars.live.lock()
            && let Some(bar) = live.remove(&i)
        {
            bar.finish_and_clear();
            bars.multi.remove(&bar);
        }
        bars.overall.inc(1);
    }

    /// Prints a line without tearing the bars.
    pub fn line(&self, text: &str) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.overall.finish_and_clear();
        }
    }
}
