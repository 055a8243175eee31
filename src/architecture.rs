//! The house's one-way flow, checked: which top-level module names which (`crate::x` in code, tests left out),
//! that no two modules reach each other, and that the extractor, which runs in the sandbox on hostile input,
//! depends on nothing but itself. Run with `--nocapture` to see the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Code without comments and without `#[cfg(test)]` modules.
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim_start() == "#[cfg(test)]" {
            let indent = line.len() - line.trim_start().len();
            let next = lines.next().unwrap_or_default();
            if next.trim_end().ends_with('{') {
                let close = format!("{}}}", " ".repeat(indent));
                for l in lines.by_ref() {
                    if l.trim_end() == close {
                        break;
                    }
                }
            }
            continue;
        }
        // A `//` outside a string literal starts a comment.
        let mut quoted = false;
        let mut end = line.len();
        let bytes = line.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                b'"' if i == 0 || bytes[i - 1] != b'\\' => quoted = !quoted,
                b'/' if !quoted && bytes.get(i + 1) == Some(&b'/') => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..end]);
        out.push('\n');
    }
    out
}

/// The top-level modules that `code` names through `crate::`, including `crate::{a, b::c}` groups.
fn named_modules(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item = true,
                    c if item && (c.is_alphanumeric() || c == '_') => {
                        item = false;
                        out.insert(ident(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let top = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
            let is_test_file = rel.iter().any(|c| c == "tests" || c == "tests.rs");
            if matches!(top.as_str(), "lib" | "main" | "architecture") || is_test_file {
                continue;
            }
            let code = production_code(&std::fs::read_to_string(&path).unwrap());
            let deps = graph.entry(top.clone()).or_default();
            deps.extend(named_modules(&code).into_iter().filter(|m| *m != top));
        }
    }
    graph
}

fn reaches(graph: &Graph, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for d in graph.get(&m).into_iter().flatten() {
            if d == to {
                return true;
            }
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    false
}

#[test]
fn modules_depend_one_way_and_the_extractor_on_nothing() {
    let graph = graph();
    for (module, deps) in &graph {
        println!("{module:>10} -> {}", deps.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    assert!(graph.contains_key("extract") && graph.contains_key("pipeline"), "{graph:?}");
    assert_eq!(graph["extract"], BTreeSet::new(), "extract/ must be pure");
    let circles: Vec<String> = graph
        .keys()
        .flat_map(|a| graph[a].iter().filter(|b| reaches(&graph, b, a)).map(move |b| format!("{a} <-> {b}")))
        .collect();
    assert!(circles.is_empty(), "modules that reach each other: {circles:?}");
}

#[test]
fn the_import_reader_sees_groups_and_skips_comments_and_tests() {
    let code = production_code(
        "use crate::{config::Config, store};\nlet u = \"http://x\"; // crate::eval\nuse crate::mail::mime;\n\
         #[cfg(test)]\nmod tests {\n    use crate::pipeline;\n}\n",
    );
    let names: Vec<String> = named_modules(&code).into_iter().collect();
    assert_eq!(names, ["config", "mail", "store"].map(String::from).to_vec());
}
