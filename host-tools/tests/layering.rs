//! The wings of `microcnn-tools` (`src/lib.rs`) import only wings below them, no two
//! modules import each other (directly or around a loop), and no `microcnn` command
//! imports another command.
//!
//! The check reads the sources: every `crate::…` and `super::…` path outside comments,
//! including the names inside `{…}` groups, is resolved to the module that defines it.
//! A *unit* is a wing's top-level module (`train::fit`, `train::nn` with everything
//! under it); units are the nodes of the import graph, and wings are ordered as the
//! numbered list in `lib.rs`'s documentation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a library file: `train/nn/mod.rs` → `["train", "nn"]`.
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// Source without comments (line comments and doc comments; block comments are not used).
fn code(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every path that starts with `crate::` or `super::` (repeated), as module-relative
/// segments after expanding one level of `{a, b::c}` groups: `(supers, segments)`,
/// where `supers` is `None` for `crate::`.
fn paths(code: &str) -> Vec<(Option<usize>, Vec<String>)> {
    let bytes = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let starts_word = i == 0 || !ident(bytes[i - 1]);
        let rest = &code[i..];
        let (supers, mut j) = if starts_word && rest.starts_with("crate::") {
            (None, i + "crate::".len())
        } else if starts_word && rest.starts_with("super::") {
            let mut n = 0;
            let mut j = i;
            while code[j..].starts_with("super::") {
                n += 1;
                j += "super::".len();
            }
            (Some(n), j)
        } else {
            i += 1;
            continue;
        };
        let mut segments = Vec::new();
        loop {
            let start = j;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            if j > start {
                segments.push(code[start..j].to_string());
            }
            if code[j..].starts_with("::{") {
                // A group: each item's leading segments.
                let close = code[j..].find('}').map_or(bytes.len(), |k| j + k);
                for item in code[j + 3..close].split(',') {
                    let item: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|s| s.trim().trim_start_matches('{').to_string())
                        .take_while(|s| !s.is_empty() && s.bytes().all(ident))
                        .collect();
                    let mut full = segments.clone();
                    full.extend(item.into_iter().filter(|s| s != "self"));
                    found.push((supers, full));
                }
                j = close;
                break;
            }
            if code[j..].starts_with("::") {
                j += 2;
                continue;
            }
            found.push((supers, segments));
            break;
        }
        i = j.max(i + 1);
    }
    found
}

/// The longest known module that is a prefix of `segments`.
fn resolve(modules: &BTreeSet<Vec<String>>, segments: &[String]) -> Vec<String> {
    (0..=segments.len()).rev().map(|n| segments[..n].to_vec()).find(|p| modules.contains(p)).unwrap_or_default()
}

/// Wing names in the order of the numbered list in `lib.rs` (lowest first).
fn wing_order(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("//!")?.trim_start();
            let (number, rest) = l.split_once(". [`")?;
            number.parse::<usize>().ok()?;
            Some(rest.split('`').next()?.to_string())
        })
        .collect()
}

/// Imports between units, as `from → {to}` with one example line each.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn unit(module: &[String]) -> String {
    module.iter().take(2).cloned().collect::<Vec<_>>().join("::")
}

fn library_graph() -> (Graph, Vec<String>) {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.retain(|f| !f.starts_with(src().join("bin")));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let module = module_of(file);
        let text = std::fs::read_to_string(file).expect("readable source");
        // `super` in a `mod.rs` or in a `tests` child is resolved from the file's module.
        for (supers, segments) in paths(&code(&text)) {
            let absolute = match supers {
                None => segments,
                Some(n) => {
                    let keep = module.len().saturating_sub(n);
                    let mut base = module[..keep].to_vec();
                    base.extend(segments);
                    base
                }
            };
            let target = resolve(&modules, &absolute);
            let (from, to) = (unit(&module), unit(&target));
            if from != to && !to.is_empty() && !from.is_empty() {
                graph.entry(from).or_default().entry(to).or_insert_with(|| {
                    format!("{}: {}", file.strip_prefix(src()).unwrap().display(), absolute.join("::"))
                });
            }
        }
    }
    let order = wing_order(&std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs"));
    (graph, order)
}

/// A cycle in `graph`, if there is one, as the units around it.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            match state.get(next.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str()) {
            if let Some(c) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn lib_lists_every_wing_once() {
    let (_, order) = library_graph();
    let mut on_disk: Vec<String> = std::fs::read_dir(src())
        .expect("src")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "bin" && n != "lib.rs")
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    on_disk.sort();
    let mut listed = order.clone();
    listed.sort();
    assert_eq!(listed, on_disk, "lib.rs's numbered wing list and the folders of src/ differ");
}

#[test]
fn no_import_cycles_between_modules() {
    let (graph, _) = library_graph();
    if let Some(cycle) = find_cycle(&graph) {
        let steps: Vec<String> = cycle.windows(2).map(|w| graph[&w[0]][&w[1]].clone()).collect();
        panic!("import cycle {}:\n  {}", cycle.join(" → "), steps.join("\n  "));
    }
}

#[test]
fn wings_import_only_wings_below_them() {
    let (graph, order) = library_graph();
    let rank = |unit: &str| {
        let wing = unit.split("::").next().unwrap_or("");
        order.iter().position(|w| w == wing).unwrap_or_else(|| panic!("{wing}: not in lib.rs's wing list"))
    };
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |(to, at)| (from, to, at)))
        .filter(|(from, to, _)| rank(to) > rank(from))
        .map(|(from, to, at)| format!("{from} → {to} ({at})"))
        .collect();
    assert!(upward.is_empty(), "upward imports:\n  {}", upward.join("\n  "));
}

#[test]
fn commands_import_no_other_command() {
    let dir = src().join("bin/microcnn/cmd");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let commands: BTreeSet<String> =
        files.iter().map(|f| f.file_stem().unwrap().to_string_lossy().into_owned()).filter(|n| n != "mod").collect();
    let mut offences = Vec::new();
    for file in &files {
        let text = code(&std::fs::read_to_string(file).expect("readable"));
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        for (supers, segments) in paths(&text) {
            let other = match supers {
                Some(1) => segments.first().cloned(),
                None if segments.first().is_some_and(|s| s == "cmd") => segments.get(1).cloned(),
                _ => None,
            };
            if other.as_ref().is_some_and(|o| commands.contains(o) && *o != name) {
                offences.push(format!("{name}: {}", segments.join("::")));
            }
        }
    }
    let main = std::fs::read_to_string(src().join("bin/microcnn/main.rs")).expect("main.rs");
    assert!(!code(&main).contains("#[path"), "main.rs pulls modules in with #[path]");
    assert!(offences.is_empty(), "commands importing commands: {offences:?}");
}

#[test]
fn the_parser_sees_groups_supers_and_nested_paths() {
    let found =
        paths("use crate::train::{fit, nn::optim::Kind};\nlet x = super::super::a::b(1);\ncrate::io::fs::read(p)");
    let show: Vec<String> = found.iter().map(|(s, p)| format!("{s:?}:{}", p.join("::"))).collect();
    assert_eq!(
        show,
        ["None:train::fit", "None:train::nn::optim::Kind", "Some(2):a::b", "None:io::fs::read"].map(String::from)
    );
}
