//! The E2B template build's check (`e2b/check-template.sh`, the Dockerfile's last step), run here against the
//! real extractor and this machine's poppler and tesseract: it passes on a complete image and fails, naming the
//! tool, on the broken images `doctor` also catches (an unloadable libpoppler, no `spa` pack, no tesseract on
//! the PATH).

use crate::e2b_support;

use std::process::Command;

fn check_template(env: &[(&str, &str)]) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2b/check-template.sh");
    let out = Command::new("sh")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_invoice-intake"))
        .args(["eng", "spa"])
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("TESSDATA_PREFIX")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn failed_names(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.strip_prefix("FAILED: "))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["name"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn a_complete_image_passes_the_template_check() {
    let (ok, out) = check_template(&[]);
    assert!(ok, "{out}");
    assert!(out.contains("template check passed"), "{out}");
    assert!(out.contains(r#""name":"scanned PDF in spa","ok":true"#), "{out}");
}

#[test]
fn an_image_whose_poppler_cannot_load_its_library_fails_the_build_naming_the_tools() {
    let (_libs, lib_path) = e2b_support::broken_poppler();
    let (ok, out) = check_template(&[("LD_LIBRARY_PATH", &lib_path)]);
    assert!(!ok, "{out}");
    let failed = failed_names(&out);
    for tool in ["pdfinfo", "pdftotext", "pdfdetach", "pdftoppm", "scanned PDF in spa"] {
        assert!(failed.iter().any(|f| f == tool), "{tool} not named: {failed:?}\n{out}");
    }
    assert!(out.contains("template check FAILED"), "{out}");
}

#[test]
fn an_image_without_the_spanish_pack_fails_the_build_naming_it() {
    let (_tessdata, tessdata) = e2b_support::tessdata_without("spa");
    let (ok, out) = check_template(&[("TESSDATA_PREFIX", &tessdata)]);
    assert!(!ok, "{out}");
    assert_eq!(failed_names(&out), ["tesseract language spa", "scanned PDF in spa"], "{out}");
}

#[test]
fn an_image_without_tesseract_on_the_path_fails_the_build_naming_it() {
    // A PATH with poppler's tools only.
    let dir = tempfile::tempdir().unwrap();
    for tool in ["pdfinfo", "pdftotext", "pdftoppm", "pdfdetach"] {
        let real = ["/usr/bin", "/bin"].iter().map(|d| std::path::Path::new(d).join(tool)).find(|p| p.exists());
        std::os::unix::fs::symlink(real.unwrap(), dir.path().join(tool)).unwrap();
    }
    let path = dir.path().display().to_string();
    let (ok, out) = check_template(&[("PROBE_PATH", &path)]);
    assert!(!ok, "{out}");
    let failed = failed_names(&out);
    assert!(failed.iter().any(|f| f == "tesseract"), "{failed:?}\n{out}");
    assert!(failed.iter().any(|f| f == "tesseract language eng"), "{failed:?}\n{out}");
    assert!(!failed.iter().any(|f| f == "pdftotext"), "{failed:?}\n{out}");
}
