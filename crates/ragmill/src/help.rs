//! The command line as clap builds it from [`Cli`], with the embedding flags shown only where
//! they matter.
//!
//! The flags that choose and reach the embedding model (`--model-dir`, `--precision`,
//! `--engine`, `--embed-*`) are global, so that they may come before or after the subcommand
//! and one configuration file and one set of `RAGMILL_*` variables serve every command. Global
//! flags are listed in every subcommand's help, though, where `users add --help` listing seven
//! embedding flags only buries its one real option. clap copies a global flag into a
//! subcommand unless the subcommand already has an argument with the same id, so each command
//! that does not embed gets a hidden copy of those flags (the same id, environment variable and
//! default): they are still accepted and read exactly as before, only not listed.

use clap::{Arg, Command, CommandFactory};

use crate::cli::Cli;

/// The local model's flags: which model, at what precision, on what engine.
const LOCAL: &[&str] = &["model_dir", "precision", "engine"];
/// The remote embedding backend's flags.
const REMOTE: &[&str] = &["embed_backend", "embed_endpoints", "embed_model", "embed_api_key"];

/// Copies of the global `flags` placed on the subcommand at `path`, `hidden` or shown; applied
/// in order: a copy placed on a command reaches its subcommands, unless one of them gets its
/// own copy later in the list.
struct Place {
    path: &'static [&'static str],
    flags: &'static [&'static [&'static str]],
    hidden: bool,
}

const PLACES: &[Place] = &[
    // No model at all.
    Place { path: &["users"], flags: &[LOCAL, REMOTE], hidden: true },
    Place { path: &["vectors"], flags: &[LOCAL, REMOTE], hidden: true },
    Place { path: &["documents"], flags: &[LOCAL, REMOTE], hidden: true },
    Place { path: &["bench"], flags: &[LOCAL, REMOTE], hidden: true },
    // The local model only (remote backends are never used).
    Place { path: &["bench", "embed"], flags: &[LOCAL], hidden: false },
    Place { path: &["bench", "search"], flags: &[LOCAL], hidden: false },
    Place { path: &["embed"], flags: &[REMOTE], hidden: true },
    Place { path: &["embed-server"], flags: &[REMOTE], hidden: true },
    Place { path: &["models"], flags: &[REMOTE], hidden: true },
];

/// [`Cli`]'s command, its embedding flags hidden from the commands that do not embed.
pub fn command() -> Command {
    let mut cmd = Cli::command();
    let globals: Vec<Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).cloned().collect();
    for p in PLACES {
        let copies: Vec<Arg> = p
            .flags
            .iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| globals.iter().find(|a| a.get_id() == *id))
            .map(|a| a.clone().hide(p.hidden))
            .collect();
        cmd = place(cmd, p.path, &copies);
    }
    cmd
}

/// Adds `copies` to the subcommand at `path` (nothing if there is none such).
fn place(cmd: Command, path: &[&str], copies: &[Arg]) -> Command {
    let Some((first, rest)) = path.split_first() else {
        return copies.iter().fold(cmd, |c, a| c.arg(a.clone()));
    };
    if cmd.find_subcommand(first).is_none() {
        return cmd;
    }
    cmd.mut_subcommand(first, |sub| place(sub, rest, copies))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help(path: &[&str]) -> String {
        let mut cmd = command();
        cmd.build();
        let mut sub = &mut cmd;
        for name in path {
            sub = sub.find_subcommand_mut(name).expect("subcommand");
        }
        sub.render_long_help().to_string()
    }

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn embedding_flags_show_only_where_they_matter() {
        for path in [&["users", "add"][..], &["users"], &["vectors", "sync"], &["bench", "pool"]] {
            let text = help(path);
            for flag in ["--embed-endpoint", "--embed-backend", "--model-dir", "--precision"] {
                assert!(!text.contains(flag), "{path:?} lists {flag}:\n{text}");
            }
            assert!(text.contains("--data-dir"), "{path:?}:\n{text}");
        }
        for path in [&["bench", "embed"][..], &["embed"], &["models", "verify"]] {
            let text = help(path);
            assert!(!text.contains("--embed-endpoint"), "{path:?}:\n{text}");
            assert!(text.contains("--model-dir") && text.contains("--precision"), "{path:?}");
        }
        for path in [&["ingest"][..], &["serve"], &["search"], &["worker"], &["eval"]] {
            let text = help(path);
            assert!(text.contains("--embed-endpoint") && text.contains("--model-dir"), "{path:?}");
        }
    }
}
