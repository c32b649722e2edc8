//! `docs/metrics.md` must document every family the golden expositions contain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[test]
fn metrics_doc_covers_every_golden_family() {
    let root = common::repo_root();
    let doc = std::fs::read_to_string(root.join("docs/metrics.md")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("tests/golden")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, ty) = rest.split_once(' ').unwrap();
            let shown = match ty {
                "counter" => format!("{name}_total"),
                "info" => format!("{name}_info"),
                _ => name.to_string(),
            };
            if !doc.contains(&format!("`{shown}`")) && !missing.contains(&shown) {
                missing.push(shown);
            }
        }
    }
    assert!(missing.is_empty(), "docs/metrics.md lacks: {missing:?}");
}
