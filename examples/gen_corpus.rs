//! Writes the layout-family set (`tests/common/families`) for `invoice-intake eval`.
//!
//! Usage: `gen_corpus OUT_DIR [--seed N] [--per-lang N] [--scans] [--family NAME]...`
//!
//! - `OUT_DIR/<family>/text/<lang>-NN.pdf` + `.expected.json`: text-layer PDFs, `--per-lang` (default 6) per
//!   language (es, en, de, fr, nl, it, pt) and family;
//! - with `--scans`, `OUT_DIR/<family>/scans/<lang>-NN.scan.{png,jpg,pdf}` + `.expected.json`: the same documents
//!   captured by a scanner (150–300 dpi, tilted, grain, PNG or JPEG), as small screenshots (about 10 px text)
//!   or as phone photos (blur, uneven light, JPEG).
//!
//! The same arguments always give the same documents. `scripts/eval-families OUT_DIR` scores them per family
//! and medium; `HELD_OUT` families are listed in `OUT_DIR/held-out.txt`.

#[path = "../tests/common/families/mod.rs"]
mod families;
#[path = "../tests/common/pdf.rs"]
mod pdf;

use anyhow::{bail, Context, Result};
use families::{Capture, Document, Family, FAMILIES, HELD_OUT, LANGS};
use std::path::Path;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    let (mut seed, mut per_lang, mut scans) = (20251015u64, 6usize, false);
    let mut only: Vec<Family> = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().context("--seed N")?.parse().context("--seed N")?,
            "--per-lang" => per_lang = args.next().context("--per-lang N")?.parse().context("--per-lang N")?,
            "--scans" => scans = true,
            "--family" => {
                let name = args.next().context("--family NAME")?;
                only.push(Family::from_name(&name).with_context(|| format!("no family {name}"))?);
            }
            _ if out.is_none() && !a.starts_with("--") => out = Some(a),
            _ => bail!("usage: gen_corpus OUT_DIR [--seed N] [--per-lang N] [--scans] [--family NAME]..."),
        }
    }
    let Some(out) = out else { bail!("usage: gen_corpus OUT_DIR [--seed N] [--per-lang N] [--scans]") };
    let out = Path::new(&out);
    let families: Vec<Family> = if only.is_empty() { FAMILIES.to_vec() } else { only };
    std::fs::create_dir_all(out)?;
    let held: Vec<&str> = HELD_OUT.iter().map(|f| f.name()).collect();
    std::fs::write(out.join("held-out.txt"), held.join("\n") + "\n")?;
    for family in families {
        let text = out.join(family.name()).join("text");
        std::fs::create_dir_all(&text)?;
        let scan_dir = out.join(family.name()).join("scans");
        if scans {
            std::fs::create_dir_all(&scan_dir)?;
        }
        for lang in LANGS {
            for i in 0..per_lang {
                let doc = Document::generate(family, lang, seed, i);
                let name = format!("{}-{i:02}", lang.code());
                let truth = doc.expected().to_string();
                std::fs::write(text.join(format!("{name}.pdf")), doc.render_pdf())?;
                std::fs::write(text.join(format!("{name}.pdf.expected.json")), &truth)?;
                if scans {
                    let capture = Capture::generate(seed, i + lang as usize);
                    let (bytes, ext) = doc.render_capture(&capture).context("pdftoppm (poppler-utils) renders")?;
                    let file = format!("{name}.scan.{ext}");
                    std::fs::write(scan_dir.join(&file), bytes)?;
                    std::fs::write(scan_dir.join(format!("{file}.expected.json")), &truth)?;
                }
            }
        }
        println!("{}", out.join(family.name()).display());
    }
    Ok(())
}
