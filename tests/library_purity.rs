//! The library (`src/` outside `src/cli`, `src/tui` and `src/main.rs`) never prints and reads
//! neither environment variables nor the clock: what it has to say leaves it as events and
//! return values (ARCHITECTURE.md, "Library purity"). A scan of its source, test modules left
//! out, so a `println!` or an `env::var` that slips in fails here.

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
            if rel != "src/cli" && rel != "src/tui" {
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
