//! Naming a workload from its command when `--workload` is not given: the program's base
//! name, or for an interpreter (python, bash, node, …) the script's base name without its
//! extension, e.g. `python3 generate.py --task ti2v-5B` → `generate`. Explicit names are
//! better; this only keeps profiles apart for different programs.

const INTERPRETERS: [&str; 10] = [
    "python",
    "python3",
    "bash",
    "sh",
    "node",
    "ruby",
    "perl",
    "uv",
    "torchrun",
    "accelerate",
];

fn base(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn is_interpreter(program: &str) -> bool {
    let p = base(program);
    INTERPRETERS.contains(&p)
        || (p.starts_with("python") && p[6..].chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The workload name for `argv`, or `None` for an empty command.
pub fn derive(argv: &[String]) -> Option<String> {
    let program = argv.first()?;
    let name = if is_interpreter(program) {
        argv[1..]
            .iter()
            .find(|a| !a.starts_with('-') && a.as_str() != "run")
            .map(|script| {
                let b = base(script);
                b.rsplit_once('.').map_or(b, |(stem, _)| stem).to_string()
            })
            .unwrap_or_else(|| base(program).to_string())
    } else {
        base(program).to_string()
    };
    (!name.is_empty()).then_some(name)
}

/// Whether `name` is acceptable as a workload name: 1–128 characters from
/// `[A-Za-z0-9._-]`, so it is safe in labels, file names and URLs.
pub fn valid(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_from_commands() {
        assert_eq!(
            derive(&v(&["python3", "generate.py", "--task", "ti2v-5B"])).as_deref(),
            Some("generate")
        );
        assert_eq!(
            derive(&v(&["/usr/bin/python3.11", "-u", "/srv/wan/s2v.py"])).as_deref(),
            Some("s2v")
        );
        assert_eq!(
            derive(&v(&["./fake-gpu-job", "--workload", "x"])).as_deref(),
            Some("fake-gpu-job")
        );
        assert_eq!(derive(&v(&["python3"])).as_deref(), Some("python3"));
        assert_eq!(derive(&[]), None);
    }

    #[test]
    fn validity() {
        assert!(valid("ti2v-5b") && valid("s2v_14B.v2"));
        for bad in ["", "a b", "../etc", "x\"y", &"a".repeat(129)] {
            assert!(!valid(bad), "{bad:?}");
        }
    }
}
