//! The `carload` binary.

mod cli;
mod edge;
mod tui;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    if let Some(n) = args.threads {
        // Only fails if a pool was already built, which cannot have happened yet.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(n as usize).build_global();
    }
    // Signals end the run after the workstation gives the terminal back.
    edge::signals::install(tui::terminal::restore);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tui::terminal::restore();
            let usage = e.downcast_ref::<edge::UsageError>().is_some();
            let status = e.downcast_ref::<cli::Exit>().map(|x| x.0);
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let prefix = if colour { "\x1b[31merror:\x1b[0m" } else { "error:" };
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            // Messages can quote untrusted text (file names, a node's errors): control
            // characters are escaped so they cannot drive the terminal or break the line.
            eprintln!("{prefix} {}", carload::text::escape_controls(&dedup_chain(msg)));
            match (usage, status) {
                (true, _) => ExitCode::from(2),
                (_, Some(code)) => ExitCode::from(code),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// Joins an error chain on one line, dropping causes already quoted by their context.
fn dedup_chain(parts: Vec<String>) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !out.iter().any(|o| o.contains(&p)) {
            out.push(p);
        }
    }
    out.join(": ")
}
