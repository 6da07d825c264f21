//! The README's performance figures come from the last `cargo xtask bench`:
//! each benchmark writes its report (`tests::report`) and this puts it in
//! README.md between the benchmark's markers, replacing the last one.

use std::path::Path;

use anyhow::{Context as _, Result, bail};

/// The markers around benchmark `name`'s report in the README.
fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- cargo xtask bench: {name} -->\n"),
        format!("<!-- end of {name} -->"),
    )
}

/// `readme` with the text between `name`'s markers replaced by `report`.
pub fn splice(readme: &str, name: &str, report: &str) -> Result<String> {
    let (begin, end) = markers(name);
    let Some(start) = readme.find(&begin).map(|i| i + begin.len()) else {
        bail!("README.md has no `{}` marker", begin.trim_end());
    };
    let Some(stop) = readme[start..].find(&end).map(|i| start + i) else {
        bail!("README.md has no `{end}` after `{}`", begin.trim_end());
    };
    Ok(format!("{}{report}{}", &readme[..start], &readme[stop..]))
}

/// Puts every report found in `reports` into the README at `readme`;
/// returns the names of the benchmarks it updated.
pub fn update(readme: &Path, reports: &Path, names: &[&str]) -> Result<Vec<String>> {
    let mut text =
        std::fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let mut updated = Vec::new();
    for name in names {
        let Ok(report) = std::fs::read_to_string(reports.join(format!("{name}.md"))) else {
            continue;
        };
        text = splice(&text, name, &report)?;
        updated.push((*name).to_string());
    }
    std::fs::write(readme, text).with_context(|| format!("writing {}", readme.display()))?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_between_its_own_markers() {
        let readme = "intro\n<!-- cargo xtask bench: a -->\nold a\n<!-- end of a -->\n\
                      mid\n<!-- cargo xtask bench: b -->\nold b\n<!-- end of b -->\nend\n";
        let once = splice(readme, "a", "new a\n").unwrap();
        assert_eq!(
            once,
            "intro\n<!-- cargo xtask bench: a -->\nnew a\n<!-- end of a -->\n\
             mid\n<!-- cargo xtask bench: b -->\nold b\n<!-- end of b -->\nend\n"
        );
        assert_eq!(splice(&once, "a", "new a\n").unwrap(), once, "idempotent");
        assert!(
            splice(readme, "c", "x").is_err(),
            "no marker, no silent skip"
        );
        assert!(splice("<!-- cargo xtask bench: a -->\nno end", "a", "x").is_err());
    }
}
