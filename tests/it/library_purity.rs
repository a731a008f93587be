//! The library (`src/` outside the binary's `src/cli`, `src/tui`, `src/edge` and `src/main.rs`)
//! never prints and reads neither environment variables nor the clock: what it has to say
//! leaves it as events and return values (ARCHITECTURE.md, "Library purity"). A scan of its
//! source, test modules left out, so a `println!` or an `env::var` that slips in fails here.
//!
//! The binary's two edges, the command line (`src/cli`) and the workstation (`src/tui`), are
//! siblings over the library: neither imports the other, except the command router starting the
//! workstation; what both need is in the library or in `src/edge`, which imports neither.

use std::path::Path;

/// What the library must not call, as it appears in source.
const FORBIDDEN: &[&str] = &[
    "print!(",
    "println!(",
    "eprint!(",
    "eprintln!(",
    "dbg!(",
    "io::stdout(",
    "io::stderr(",
    "io::stdin(",
    "env::var",
    "env::args",
    "env::temp_dir",
    "env::current_dir",
    "var_os(",
    "SystemTime::now(",
    "Instant::now(",
];

/// The documented exception: the IPFS client's request deadlines and retry backoff.
const CLOCK_ALLOWED: &[&str] = &["src/ipfs/http.rs", "src/ipfs/client.rs"];

fn scan(dir: &Path, found: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            // The binary: the two edges and what they share (signal cleanup, the host name and
            // the clocks handed to the library, command-line options).
            if rel != "src/cli" && rel != "src/tui" && rel != "src/edge" {
                scan(&path, found);
            }
            continue;
        }
        if !rel.ends_with(".rs") || rel == "src/main.rs" || rel.ends_with("/tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code == "#[cfg(test)]" {
                break; // the test module closes the file
            }
            if code.starts_with("//") {
                continue;
            }
            let allowed = |f: &&&str| f.contains("::now(") && CLOCK_ALLOWED.contains(&rel.as_str());
            if FORBIDDEN.iter().any(|f| code.contains(f) && !allowed(&f)) {
                found.push(format!("{rel}:{}: {code}", n + 1));
            }
        }
    }
}

#[test]
fn the_library_never_prints_nor_reads_the_environment_or_the_clock() {
    let mut found = Vec::new();
    scan(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
    assert!(found.is_empty(), "library code that prints or reads the environment or the clock:\n{}", found.join("\n"));
}

/// The binary's modules that may name another: `(file, module, item)` — the command router
/// (`carload tui` and a bare `carload` on a terminal start the workstation).
const ROUTER: &[(&str, &str, &str)] = &[("src/cli/args.rs", "tui", "TuiArgs"), ("src/cli/run.rs", "tui", "run")];

/// Every `crate::M::Item` (and `crate::M::{…}`, `crate::{M, …}`) path in `code` naming module `m`:
/// the item named right after it (`*` for a group).
fn paths_into(code: &str, m: &str) -> Vec<String> {
    let mut found = Vec::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    // `super::super::cli` is seen at its last `super::`.
    for prefix in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{cli, …}`: the group names the module itself.
                let inner = group.split('}').next().unwrap_or("");
                if inner.split(',').any(|p| ident(p.trim()) == m) {
                    found.push("*".to_string());
                }
            } else if ident(after) == m {
                let tail = &after[m.len()..];
                found.push(match tail.strip_prefix("::") {
                    Some(t) if t.starts_with('{') => "*".to_string(),
                    Some(t) => ident(t),
                    None => "*".to_string(),
                });
            }
            rest = &rest[at + prefix.len()..];
        }
    }
    found
}

/// Paths in `dir`'s sources into any of `modules`, but the router's.
fn cross_paths(dir: &str, modules: &[&str], found: &mut Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if !rel.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for m in modules {
                    for item in paths_into(code, m) {
                        if !ROUTER.contains(&(rel.as_str(), m, item.as_str())) {
                            found.push(format!("{rel}:{}: {code}", n + 1));
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn the_command_line_and_the_workstation_import_only_the_library_and_the_edge() {
    let mut found = Vec::new();
    cross_paths("src/tui", &["cli"], &mut found);
    cross_paths("src/cli", &["tui"], &mut found);
    cross_paths("src/edge", &["cli", "tui"], &mut found);
    assert!(found.is_empty(), "imports between the edges (other than the command router):\n{}", found.join("\n"));
}

#[test]
fn the_cross_import_scan_sees_every_form() {
    assert_eq!(paths_into("use crate::cli::shipment::FormatArg;", "cli"), ["shipment"]);
    assert_eq!(paths_into("let x = crate::tui::builds::human_secs(1.0);", "tui"), ["builds"]);
    assert_eq!(paths_into("use crate::{cli, edge};", "cli"), ["*"]);
    assert_eq!(paths_into("use super::super::cli::{args, run};", "cli"), ["*"]);
    assert_eq!(paths_into("Tui(crate::tui::TuiArgs),", "tui"), ["TuiArgs"]);
    assert!(paths_into("use crate::edge::options::ProfileArgs;", "cli").is_empty());
    assert!(paths_into("use super::clipboard;", "cli").is_empty());
}
