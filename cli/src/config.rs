//! One TOML file for the long-running subcommands, built on their flags.
//!
//! Every flag of `pool`, `settle` and `api` is also a key of that
//! subcommand's section (`[pool] max_connections_per_ip = 100` is
//! `--max-connections-per-ip 100`) and an environment variable
//! (`PROOFPOOL_POOL_MAX_CONNECTIONS_PER_IP`; a few keep shorter names shown in
//! `--help`). Precedence: command-line flag, then environment, then the file
//! (`proofpool --config FILE pool`), then the built-in default. List values
//! (`node_url`) from the file and the command line add up.
//!
//! The clap definitions are the single source: `proofpool config example`
//! prints the commented example file, `proofpool config reference` the
//! operator guide's table, and tests keep both committed copies current.
//! `proofpool config check FILE` reports every problem at once, each with its
//! key.

use clap::{Arg, ArgAction, Command};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The subcommands a config file configures, in file order.
pub(crate) const SECTIONS: &[&str] = &["pool", "settle", "api"];

/// Arguments of `proofpool config`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Check a config file and report every problem, with its key.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print a fully commented example config (every key, its default and variable).
    Example,
    /// Print the configuration reference as a Markdown table.
    Reference,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// `section.key`, or the section, or the file.
    pub(crate) key: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn skipped(arg: &Arg) -> bool {
    matches!(
        arg.get_id().as_str(),
        "help" | "version" | "config" | "log_format"
    )
}

/// The environment variable of `arg` in `section`.
fn env_name(section: &str, arg: &Arg) -> String {
    format!(
        "PROOFPOOL_{}_{}",
        section.to_uppercase(),
        arg.get_id().as_str().to_uppercase()
    )
}

/// Gives every configurable argument an environment variable (unless it has
/// one already) and lets a later occurrence of a flag override an earlier
/// one (the file's values come first on the command line).
pub(crate) fn prepare(cmd: Command) -> Command {
    let mut cmd = cmd;
    for section in SECTIONS {
        cmd = cmd.mut_subcommand(section, |sc| {
            sc.args_override_self(true).mut_args(|arg| {
                if arg.get_env().is_some() || skipped(&arg) {
                    return arg;
                }
                let name: &'static str = Box::leak(env_name(section, &arg).into_boxed_str());
                arg.env(name)
            })
        })
    }
    cmd
}

fn key_of(arg: &Arg) -> Option<String> {
    arg.get_long().map(|l| l.replace('-', "_"))
}

fn value_text(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("expected a single value, got {}", other.type_str())),
    }
}

fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_owned()
}

/// Runs `arg`'s own value parser on `text`.
fn parse_one(arg: &Arg, text: &str) -> Result<(), String> {
    let probe = Arg::new("value")
        .long("value")
        .action(ArgAction::Set)
        .value_parser(arg.get_value_parser().clone());
    Command::new("probe")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([format!("--value={text}")])
        .map(|_| ())
        .map_err(|e| {
            let msg = first_line(&e);
            match msg.split_once("for '--value <value>': ") {
                Some((_, why)) => format!("invalid value {text:?}: {why}"),
                None => msg,
            }
        })
}

/// Turns `section` of a parsed file into command-line arguments for the
/// subcommand, validating every key with the flag's own parser. Keys whose
/// environment variable is set are left to the environment.
pub(crate) fn section_args(
    cmd: &Command,
    section: &str,
    table: &toml::Table,
    problems: &mut Vec<Problem>,
) -> Vec<OsString> {
    let mut out = Vec::new();
    let Some(sc) = cmd.find_subcommand(section) else {
        problems.push(Problem {
            key: section.to_owned(),
            message: format!("unknown section (known: {})", SECTIONS.join(", ")),
        });
        return out;
    };
    for (key, value) in table {
        let problem = |message: String| Problem {
            key: format!("{section}.{key}"),
            message,
        };
        let Some(arg) = sc
            .get_arguments()
            .find(|a| !skipped(a) && key_of(a).as_deref() == Some(key.as_str()))
        else {
            let known: Vec<String> = sc
                .get_arguments()
                .filter(|a| !skipped(a))
                .filter_map(key_of)
                .collect();
            problems.push(problem(format!(
                "unknown key (known keys: {})",
                known.join(", ")
            )));
            continue;
        };
        if arg
            .get_env()
            .is_some_and(|env| std::env::var_os(env).is_some())
        {
            continue;
        }
        let flag = format!("--{}", arg.get_long().unwrap_or(key));
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => match value {
                toml::Value::Boolean(true) => out.push(flag.into()),
                toml::Value::Boolean(false) => {}
                other => problems.push(problem(format!(
                    "expected true or false, got {}",
                    other.type_str()
                ))),
            },
            action => {
                let values: Vec<&toml::Value> = match (action, value) {
                    (ArgAction::Append, toml::Value::Array(items)) => items.iter().collect(),
                    (_, v) => vec![v],
                };
                for v in values {
                    match value_text(v) {
                        Ok(text) => match parse_one(arg, &text) {
                            Ok(()) => out.push(format!("{flag}={text}").into()),
                            Err(e) => problems.push(problem(e)),
                        },
                        Err(message) => problems.push(problem(message)),
                    }
                }
            }
        }
    }
    out
}

/// Reads and parses a config file.
pub(crate) fn read(path: &Path) -> Result<toml::Table, Problem> {
    let text = std::fs::read_to_string(path).map_err(|e| Problem {
        key: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    text.parse::<toml::Table>().map_err(|e| Problem {
        key: path.display().to_string(),
        message: format!("not valid TOML: {}", e.to_string().trim()),
    })
}

/// Every problem with `table` as a config for all sections it has.
pub(crate) fn check(cmd: &Command, table: &toml::Table) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (section, value) in table {
        let Some(inner) = value.as_table() else {
            problems.push(Problem {
                key: section.clone(),
                message: format!(
                    "expected a [{section}] section, got a {} (sections: {})",
                    value.type_str(),
                    SECTIONS.join(", ")
                ),
            });
            continue;
        };
        if !SECTIONS.contains(&section.as_str()) {
            problems.push(Problem {
                key: section.clone(),
                message: format!("unknown section (known: {})", SECTIONS.join(", ")),
            });
            continue;
        }
        let before = problems.len();
        let args = section_args(cmd, section, inner, &mut problems);
        if problems.len() > before {
            continue;
        }
        // Whole-section checks: required keys, conflicts.
        let mut argv: Vec<OsString> = vec!["proofpool".into(), section.into()];
        argv.extend(args);
        if let Err(e) = cmd.clone().try_get_matches_from(argv) {
            problems.push(Problem {
                key: section.clone(),
                message: first_line(&e),
            });
        }
    }
    problems
}

/// The command line with the `--config` file's section for the chosen
/// subcommand spliced in right after the subcommand's name.
pub(crate) fn expand(cmd: &Command, raw: Vec<OsString>) -> Result<Vec<OsString>, Vec<Problem>> {
    let mut path = None;
    let mut rest = Vec::with_capacity(raw.len());
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            path = it.next().map(PathBuf::from);
            continue;
        }
        if let Some(p) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            path = Some(PathBuf::from(p));
            continue;
        }
        rest.push(a);
    }
    let Some(path) = path else {
        return Ok(rest);
    };
    let table = read(&path).map_err(|p| vec![p])?;
    let Some(at) = rest
        .iter()
        .position(|a| a.to_str().is_some_and(|s| SECTIONS.contains(&s)))
    else {
        return Ok(rest);
    };
    let section = rest[at].to_string_lossy().into_owned();
    let mut problems = Vec::new();
    let args = match table.get(&section) {
        Some(toml::Value::Table(t)) => section_args(cmd, &section, t, &mut problems),
        Some(other) => {
            problems.push(Problem {
                key: section.clone(),
                message: format!("expected a table, got {}", other.type_str()),
            });
            Vec::new()
        }
        None => Vec::new(),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut out = rest;
    let tail = out.split_off(at + 1);
    out.extend(args);
    out.extend(tail);
    Ok(out)
}

fn toml_literal(text: &str) -> String {
    if text.parse::<i64>().is_ok() || text == "true" || text == "false" {
        text.to_owned()
    } else {
        format!("{text:?}")
    }
}

/// A placeholder for keys that are required and have no default.
fn example_value(section: &str, key: &str) -> Option<&'static str> {
    Some(match (section, key) {
        ("pool", "node_url") => "[\"http://127.0.0.1:8332/\"]",
        ("pool", "payout_address") => "\"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq\"",
        ("settle", "payout_address") => "\"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq\"",
        ("settle", "rpc_url") => "\"https://l2-rpc.example/\"",
        ("settle", "distributor") | ("api", "distributor") => {
            "\"0x5FbDB2315678afecb367f032d93F642f64180aa3\""
        }
        ("api", "chain_id") => "31337",
        _ => return None,
    })
}

/// The commented example file.
pub(crate) fn example(cmd: &Command) -> String {
    let mut out = String::from(
        "# proofpool configuration: one section per long-running subcommand.\n\
         # Run as `proofpool --config proofpool.toml pool` (or settle, api).\n\
         # Every key is also a flag (`max_connections_per_ip` = `--max-connections-per-ip`)\n\
         # and an environment variable (shown below); flags override the environment,\n\
         # which overrides this file. Check a file with `proofpool config check FILE`.\n\
         # Secrets never go here: the settler key comes from --key-file or\n\
         # PROOFPOOL_SETTLER_KEY, bitcoind credentials from a cookie file or\n\
         # PROOFPOOL_RPC_USER / PROOFPOOL_RPC_PASSWORD.\n",
    );
    for section in SECTIONS {
        let Some(sc) = cmd.find_subcommand(section) else {
            continue;
        };
        let _ = writeln!(out, "\n[{section}]");
        if let Some(about) = sc.get_about() {
            let _ = writeln!(out, "# {about}");
        }
        for arg in sc.get_arguments().filter(|a| !skipped(a)) {
            let Some(key) = key_of(arg) else { continue };
            out.push('\n');
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string());
            for line in help.unwrap_or_default().lines() {
                let _ = writeln!(out, "# {}", line.trim());
            }
            if let Some(env) = arg.get_env() {
                let _ = writeln!(out, "# env: {}", env.to_string_lossy());
            }
            let defaults = arg.get_default_values();
            if matches!(arg.get_action(), ArgAction::SetTrue) {
                let _ = writeln!(out, "# {key} = false");
            } else if let Some(d) = defaults.first() {
                let _ = writeln!(out, "# {key} = {}", toml_literal(&d.to_string_lossy()));
            } else if let Some(v) = example_value(section, &key) {
                let _ = writeln!(out, "{key} = {v}  # required");
            } else {
                let _ = writeln!(out, "# {key} =  (no default: unset)");
            }
        }
    }
    out
}

/// The Markdown reference table.
pub(crate) fn reference(cmd: &Command) -> String {
    let mut out = String::new();
    for section in SECTIONS {
        let Some(sc) = cmd.find_subcommand(section) else {
            continue;
        };
        let _ = writeln!(out, "\n### `[{section}]`\n");
        let _ = writeln!(out, "| Key | Default | Environment | Meaning |");
        let _ = writeln!(out, "|---|---|---|---|");
        for arg in sc.get_arguments().filter(|a| !skipped(a)) {
            let Some(key) = key_of(arg) else { continue };
            let default = match arg.get_action() {
                ArgAction::SetTrue => "false".to_owned(),
                _ => arg
                    .get_default_values()
                    .first()
                    .map(|d| d.to_string_lossy().into_owned())
                    .unwrap_or_else(|| {
                        if arg.is_required_set() {
                            "required".to_owned()
                        } else {
                            "unset".to_owned()
                        }
                    }),
            };
            let env = arg
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let help = arg
                .get_help()
                .map(|h| h.to_string().replace('|', "\\|"))
                .unwrap_or_default();
            let _ = writeln!(out, "| `{key}` | `{default}` | {env} | {help} |");
        }
    }
    out
}

/// `proofpool config …`.
pub(crate) fn run(args: Args, cmd: &Command) -> eyre::Result<()> {
    match args.action {
        Action::Example => {
            print!("{}", example(cmd));
            Ok(())
        }
        Action::Reference => {
            print!("{}", reference(cmd));
            Ok(())
        }
        Action::Check { file } => {
            let problems = match read(&file) {
                Ok(table) => check(cmd, &table),
                Err(p) => vec![p],
            };
            if problems.is_empty() {
                println!("{}: ok", file.display());
                return Ok(());
            }
            for p in &problems {
                eprintln!("{p}");
            }
            eyre::bail!(
                "{}: {} problem{}",
                file.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )
        }
    }
}
