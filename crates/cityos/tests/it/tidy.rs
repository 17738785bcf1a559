//! Tidiness as a test: every Rust file opens with a `//!` doc saying what it is for; no
//! ignored tests and no unfinished-work markers are left in the code; the server's rooms
//! import only their own and lower layers; no crate has a module cycle; ARCHITECTURE.md's
//! code map names exactly the source folders there are.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_file_is_documented_and_finished() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    // Built so that this file does not match itself.
    let markers = [
        concat!("#[", "ignore"),
        concat!("to", "do!("),
        concat!("unimpl", "emented!("),
        concat!("TO", "DO"),
        concat!("FIX", "ME"),
        concat!("db", "g!("),
    ];
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("{rel}: does not open with a //! doc comment"));
        }
        for (i, line) in text.lines().enumerate() {
            for m in markers {
                if line.contains(m) {
                    problems.push(format!("{rel}:{}: contains {m:?}", i + 1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The server's rooms by layer: a file may name (`crate::…`) its own room, the crate
/// root's items and rooms of a lower layer — never a sibling on its own layer, never a
/// higher one. `lib.rs` (the root, which composes the rooms' states) is exempt.
const SERVER_LAYERS: &[&[&str]] = &[
    &["http", "bus"],
    &["cases", "ports", "smart"],
    &[
        "api",
        "intake/citizen",
        "intake/inspector",
        "intake/sensor",
        "intake/data",
        "vitals",
        "scenarios",
        "lifecircle",
        "meals",
        "ui",
        "evaluation",
        "assistance",
    ],
    &["intake", "runtime"],
];

/// Expands the path after `crate::` at `i` into its segment lists (`a::{b, c::d}` gives
/// `[a, b]` and `[a, c, d]`); `as` renames are skipped. Answers the lists and where the
/// path ends.
fn paths_at(s: &[u8], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let ws = |i: &mut usize| {
        while *i < s.len() && s[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    ws(&mut i);
    if i < s.len() && s[i] == b'{' {
        i += 1;
        let mut items = Vec::new();
        loop {
            while i < s.len() && (s[i].is_ascii_whitespace() || s[i] == b',') {
                i += 1;
            }
            if i >= s.len() || s[i] == b'}' {
                return (items, i + 1);
            }
            let (sub, j) = paths_at(s, i);
            items.extend(sub);
            if j == i {
                i += 1; // not a path: step over it
            } else {
                i = j;
            }
        }
    }
    let start = i;
    while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
        i += 1;
    }
    let ident = String::from_utf8_lossy(&s[start..i]).to_string();
    if s[i..].starts_with(b"::") {
        let (rest, j) = paths_at(s, i + 2);
        return (
            rest.into_iter()
                .map(|mut r| {
                    r.insert(0, ident.clone());
                    r
                })
                .collect(),
            j,
        );
    }
    let mut j = i;
    ws(&mut j);
    if s[j..].starts_with(b"as ") {
        j += 3;
        ws(&mut j);
        while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'_') {
            j += 1;
        }
        i = j;
    }
    (vec![vec![ident]], i)
}

/// Every `crate::` path in a file's code (comments left out, and the file's unit tests
/// — `#[cfg(test)] mod tests` — which are built into the test binary only and may start
/// the whole service).
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let product = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at]);
    let code: String = product
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = code[from..].find("crate::") {
        let at = from + k;
        let word_start = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        from = at + "crate::".len();
        if word_start {
            out.extend(paths_at(b, from).0);
        }
    }
    out
}

/// The module (or, in the server, the room) a path names, if it names one.
fn module_of(src: &Path, segs: &[String], nested: &[&str]) -> Option<String> {
    let first = segs.first()?;
    let exists = |p: &Path, m: &str| p.join(format!("{m}.rs")).is_file() || p.join(m).is_dir();
    if !exists(src, first) {
        return None; // an item of the crate root
    }
    if nested.contains(&first.as_str()) {
        if let Some(second) = segs.get(1) {
            if exists(&src.join(first), second) {
                return Some(format!("{first}/{second}"));
            }
        }
    }
    Some(first.clone())
}

/// The module (room) a file belongs to; `None` for the crate root.
fn module_of_file(src: &Path, file: &Path, nested: &[&str]) -> Option<String> {
    let rel: Vec<String> = file
        .strip_prefix(src)
        .unwrap()
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    if rel.len() == 1 && (rel[0] == "lib" || rel[0] == "main") {
        return None;
    }
    if nested.contains(&rel[0].as_str()) && rel.len() > 1 && rel[1] != "mod" {
        return Some(format!("{}/{}", rel[0], rel[1]));
    }
    Some(rel[0].clone())
}

/// An import between modules: (from, to, the file that makes it).
type Edge = (String, String, String);

/// Each crate's graph of top-level modules (the server's rooms), from `crate::` paths.
fn module_graphs(root: &Path) -> Vec<(String, Vec<Edge>)> {
    let mut out = Vec::new();
    let mut crates: Vec<_> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    crates.sort();
    for c in crates {
        let src = c.join("src");
        let name = c.file_name().unwrap().to_string_lossy().to_string();
        let nested: &[&str] = if name == "server" { &["intake"] } else { &[] };
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        let mut edges = Vec::new();
        for f in &files {
            let Some(from) = module_of_file(&src, f, nested) else {
                continue;
            };
            let rel = f.strip_prefix(root).unwrap().display().to_string();
            for segs in crate_paths(&std::fs::read_to_string(f).unwrap()) {
                if let Some(to) = module_of(&src, &segs, nested) {
                    if to != from {
                        edges.push((from.clone(), to, rel.clone()));
                    }
                }
            }
        }
        out.push((name, edges));
    }
    out
}

#[test]
fn rooms_import_only_their_own_and_lower_layers() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let layer = |m: &str| SERVER_LAYERS.iter().position(|l| l.contains(&m));
    let (_, edges) = module_graphs(&root)
        .into_iter()
        .find(|(c, _)| c == "server")
        .expect("the server crate");
    assert!(edges.len() > 20, "found only {} imports", edges.len());
    let mut problems = Vec::new();
    for (from, to, file) in &edges {
        let (Some(a), Some(b)) = (layer(from), layer(to)) else {
            problems.push(format!(
                "{file}: `{from}` or `{to}` is in no layer of SERVER_LAYERS"
            ));
            continue;
        };
        if b == a {
            problems.push(format!("{file}: room `{from}` imports its sibling `{to}`"));
        } else if b > a {
            problems.push(format!("{file}: `{from}` imports `{to}`, a higher layer"));
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_crate_has_a_module_cycle() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut problems = Vec::new();
    for (krate, edges) in module_graphs(&root) {
        let mut next: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
            Default::default();
        for (a, b, _) in &edges {
            next.entry(a.as_str()).or_default().insert(b.as_str());
        }
        // Depth-first search; a grey node met again closes a cycle.
        fn visit<'a>(
            n: &'a str,
            next: &std::collections::BTreeMap<&'a str, std::collections::BTreeSet<&'a str>>,
            colour: &mut std::collections::BTreeMap<&'a str, u8>,
            path: &mut Vec<&'a str>,
            found: &mut Vec<String>,
        ) {
            colour.insert(n, 1);
            path.push(n);
            for &m in next.get(n).into_iter().flatten() {
                match colour.get(m).copied().unwrap_or(0) {
                    0 => visit(m, next, colour, path, found),
                    1 => {
                        let at = path.iter().position(|x| *x == m).unwrap();
                        found.push(format!("{} → {m}", path[at..].join(" → ")));
                    }
                    _ => {}
                }
            }
            path.pop();
            colour.insert(n, 2);
        }
        let mut colour: std::collections::BTreeMap<&str, u8> = Default::default();
        let mut found = Vec::new();
        for &n in next.keys() {
            if !colour.contains_key(n) {
                visit(n, &next, &mut colour, &mut Vec::new(), &mut found);
            }
        }
        for c in found {
            problems.push(format!("crates/{krate}: module cycle {c}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The folders under `crates/*/src`, as `crates/x/src/y/`.
fn source_folders(root: &Path) -> std::collections::BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(format!("{}/", rel.replace('\\', "/")));
                walk(&p, root, out);
            }
        }
    }
    let mut out = Default::default();
    for c in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = c.unwrap().path().join("src");
        if src.is_dir() {
            walk(&src, root, &mut out);
        }
    }
    out
}

#[test]
fn the_code_map_names_every_source_folder_and_no_other() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    // The convention: a folder is named in backticks from `crates/` to its closing `/`
    // (a pattern with `<…>` or `*` names none).
    let mut named = std::collections::BTreeSet::new();
    for part in doc.split('`').skip(1).step_by(2) {
        let placeholder = part.contains(['<', '*']);
        if part.starts_with("crates/")
            && part.contains("/src/")
            && part.ends_with('/')
            && !placeholder
        {
            named.insert(part.to_string());
        }
    }
    let there = source_folders(&root);
    let mut problems = Vec::new();
    for n in named.difference(&there) {
        problems.push(format!("ARCHITECTURE.md names `{n}`, which does not exist"));
    }
    for t in there.difference(&named) {
        problems.push(format!("ARCHITECTURE.md's code map misses `{t}`"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
