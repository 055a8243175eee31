//! OCR with tesseract, run inside the sandbox. We read its TSV word boxes and lay the words back out in lines
//! and columns, so the same layout-aware rules read scans and text-layer PDFs alike.

use std::path::Path;
use std::process::Command;

use super::ErrorCode;

/// English and Spanish first (our suppliers), then the other EU languages when their packs are installed.
const PREFERRED: &[&str] = &["eng", "spa", "deu", "fra", "nld", "ita", "por"];

/// Tesseract reads glyphs best at 20–30 px of x-height-to-cap-height; a screenshot's 10 px text loses letters
/// and digits (`8` for `6`, dropped commas). Below this median word height the page is enlarged first.
const SMALL_TEXT_PX: f32 = 16.0;

pub fn languages() -> Vec<String> {
    let Ok(out) = Command::new("tesseract").arg("--list-langs").output() else { return Vec::new() };
    let listed = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let have: Vec<&str> = listed.lines().map(str::trim).collect();
    PREFERRED.iter().filter(|l| have.contains(l)).map(|l| l.to_string()).collect()
}

/// OCR one image file (PNG, JPEG, PGM, TIFF; multi-page TIFF too) into layout text.
///
/// Page segmentation `--psm 4` (one column of text of varying sizes): automatic segmentation (`--psm 3`) drops
/// a column of amounts that stands apart at the right edge, as on till slips, where the total then has no
/// amount; the word boxes give the columns back anyway (`layout_from_tsv`). A page on which psm 4 finds almost
/// no amounts is read again as sparse text (see `with_amounts`). On the family captures psm 4 read
/// 93.1% of the fields against psm 3's 92.2% (receipts 82.0% against 75.5%). Tesseract binarises (Otsu) and
/// follows skewed lines itself, and `layout_from_tsv` deskews the word boxes, which is what the rules need. An
/// unevenly lit photo is evened out first (see `even_out`). A sheet fed sideways or upside down is turned upright
/// (see `turned`): tesseract's orientation detection (OSD) says how far, and the page is read again. `workdir`
/// holds the prepared copies.
pub fn image_to_text(
    path: &Path,
    langs: &[String],
    dpi: Option<u32>,
    workdir: &Path,
) -> Result<String, (ErrorCode, String)> {
    let evened = even_out(path, workdir);
    let read = read_upright(evened.as_deref().unwrap_or(path), langs, dpi, workdir);
    if let Some(evened) = &evened {
        let _ = std::fs::remove_file(evened);
    }
    read
}

/// `image_to_text` on the image as prepared: read, turned upright and enlarged where needed.
fn read_upright(
    path: &Path,
    langs: &[String],
    dpi: Option<u32>,
    workdir: &Path,
) -> Result<String, (ErrorCode, String)> {
    let tsv = tesseract_tsv(path, langs, dpi, "4")?;
    let upright = turned(&tsv).and_then(|how| read_turned(path, langs, dpi, workdir, how, &tsv));
    let was_turned = upright.is_some();
    let tsv = upright.unwrap_or(tsv);
    if let Some(enlarged) = upscale_factor(&tsv).and_then(|k| read_enlarged(path, langs, dpi, workdir, k, &tsv)) {
        return Ok(layout_from_tsv(&enlarged));
    }
    let tsv = if was_turned { tsv } else { with_amounts(path, langs, dpi, tsv) };
    Ok(layout_from_tsv(&tsv))
}

/// Fewer amounts than this in a reading and the page is read again as sparse text (see `with_amounts`).
const FEW_AMOUNTS: usize = 3;

/// The reading of one column of text (`--psm 4`), or the page read as sparse text (`--psm 11`) when that finds
/// more amounts. On a photo with specks between the items and their amounts, psm 4 sometimes takes the text at
/// the left for the only column and drops the amounts at the right edge altogether: a till slip then has
/// labels (`Total`, `IVA 21%`) and no figure. Sparse text finds every word wherever it stands, and
/// `layout_from_tsv` puts the words back in rows by their boxes. It reads worse where psm 4 does well (90.9%
/// of the family captures' fields against 93.2%), so it is only asked when psm 4 found fewer than
/// `FEW_AMOUNTS` amounts, at the cost of one more tesseract pass on such a page.
fn with_amounts(path: &Path, langs: &[String], dpi: Option<u32>, tsv: String) -> String {
    let found = amounts(&tsv);
    if found >= FEW_AMOUNTS {
        return tsv;
    }
    match tesseract_tsv(path, langs, dpi, "11") {
        Ok(sparse) if amounts(&sparse) > found => sparse,
        _ => tsv,
    }
}

/// How many words of a reading are amounts with two decimals (`1,29`, `€5,04`, `1.234,56`).
fn amounts(tsv: &str) -> usize {
    static AMOUNT: std::sync::LazyLock<regex_lite::Regex> =
        std::sync::LazyLock::new(|| super::rules::regex(r"^\D{0,2}\d{1,3}(?:[.,' ]?\d{3})*[.,]\d{2}\D{0,2}$"));
    rows(tsv).filter(|r| AMOUNT.is_match(&r.text)).count()
}

/// Side of the square, in pixels, over which the paper's brightness is judged (see `even_out`): wider than a
/// line of text and a shaded table heading, narrower than a shadow across the sheet.
const BACKGROUND_CELL: u32 = 16;

/// A photo of a sheet (light falling unevenly, grey paper) as a copy whose paper is white all over, when the
/// paper's brightness varies; `None` for an evenly lit page, which is read as it is.
///
/// Tesseract binarises with one global threshold (Otsu), so on a photo lit from one side it reads only the
/// bright half. Here the paper's brightness is estimated at every point (the brightest pixels around it, on a
/// 16× smaller copy, smoothed) and each pixel divided by it: ink stays dark, paper becomes white. A multi-page
/// TIFF is left alone (the decoder sees its first page only).
fn even_out(path: &Path, workdir: &Path) -> Option<std::path::PathBuf> {
    let reader = image::ImageReader::open(path).ok()?.with_guessed_format().ok()?;
    if reader.format() == Some(image::ImageFormat::Tiff) {
        return None;
    }
    let img = reader.decode().ok()?.into_luma8();
    let paper = paper_brightness(&img)?;
    if !uneven(&paper) {
        return None;
    }
    let (w, h) = img.dimensions();
    let paper = image::imageops::resize(&paper, w, h, image::imageops::FilterType::Triangle);
    let mut out = img;
    for (p, b) in out.pixels_mut().zip(paper.pixels()) {
        let b = u32::from(b.0[0].max(1));
        p.0[0] = (u32::from(p.0[0]) * 255 / b).min(255) as u8;
    }
    let file = workdir.join("evened.pgm");
    out.save_with_format(&file, image::ImageFormat::Pnm).ok()?;
    Some(file)
}

/// The paper's brightness on a grid of `BACKGROUND_CELL` squares: each cell's mean, then the brightest cell
/// within two cells around (so text and rules, darker than the paper, drop out), then smoothed.
fn paper_brightness(img: &image::GrayImage) -> Option<image::GrayImage> {
    let (w, h) = img.dimensions();
    let (sw, sh) = (w / BACKGROUND_CELL, h / BACKGROUND_CELL);
    if sw < 8 || sh < 8 {
        return None;
    }
    let small = image::imageops::resize(img, sw, sh, image::imageops::FilterType::Triangle);
    let mut brightest = small.clone();
    for y in 0..sh {
        for x in 0..sw {
            let mut m = 0u8;
            for yy in y.saturating_sub(2)..(y + 3).min(sh) {
                for xx in x.saturating_sub(2)..(x + 3).min(sw) {
                    m = m.max(small.get_pixel(xx, yy).0[0]);
                }
            }
            brightest.put_pixel(x, y, image::Luma([m]));
        }
    }
    Some(image::imageops::blur(&brightest, 2.0))
}

/// Is the paper lit unevenly, or grey? Its brightness varies by more than a tenth across the sheet (2nd to 98th
/// percentile), or most of it is darker than white paper.
fn uneven(paper: &image::GrayImage) -> bool {
    let mut v: Vec<u8> = paper.pixels().map(|p| p.0[0]).collect();
    v.sort_unstable();
    let at = |q: usize| u32::from(v[(v.len() - 1) * q / 100]);
    let (lo, mid, hi) = (at(2), at(50), at(98));
    lo * 10 < hi * 9 || mid < 215
}

/// How much to enlarge a page whose text is small: 3× under 11 px, 2× under `SMALL_TEXT_PX`, else not at all.
/// Judged by the median height of the words tesseract found (three characters or more, so specks do not count).
fn upscale_factor(tsv: &str) -> Option<u32> {
    let heights: Vec<f32> = rows(tsv).filter(|r| r.text.chars().count() >= 3).map(|r| r.height).collect();
    if heights.len() < 5 {
        return None;
    }
    let h = median(heights, SMALL_TEXT_PX);
    if h < 11.0 {
        Some(3)
    } else if h < SMALL_TEXT_PX {
        Some(2)
    } else {
        None
    }
}

/// The page read again enlarged `k` times with its contrast stretched, when that reading is the better one
/// (more confident words). Enlarging costs one more tesseract pass, on small images only.
fn read_enlarged(path: &Path, langs: &[String], dpi: Option<u32>, workdir: &Path, k: u32, tsv: &str) -> Option<String> {
    let img = image::ImageReader::open(path).ok()?.with_guessed_format().ok()?.decode().ok()?.into_luma8();
    let (w, h) = img.dimensions();
    if w.saturating_mul(k) > 8000 || h.saturating_mul(k) > 12000 {
        return None;
    }
    let mut big = image::imageops::resize(&img, w * k, h * k, image::imageops::FilterType::CatmullRom);
    stretch_contrast(&mut big);
    let out = workdir.join("enlarged.pgm");
    big.save_with_format(&out, image::ImageFormat::Pnm).ok()?;
    let again =
        tesseract_tsv(&out, langs, dpi.map(|d| d * k), "4").map(|t| with_amounts(&out, langs, dpi.map(|d| d * k), t));
    let _ = std::fs::remove_file(&out);
    let again = again.ok()?;
    (confident_words(&again) >= confident_words(tsv)).then_some(again)
}

/// Map the 1st..99th percentile of grey to black..white: screenshots with grey text on a tinted background
/// binarise badly otherwise.
fn stretch_contrast(img: &mut image::GrayImage) {
    let mut hist = [0u64; 256];
    for p in img.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    let total: u64 = hist.iter().sum();
    let pct = |q: u64| {
        let mut acc = 0;
        hist.iter().position(|&n| {
            acc += n;
            acc * 100 >= total * q
        })
    };
    let (Some(lo), Some(hi)) = (pct(1), pct(99)) else { return };
    if hi <= lo + 10 {
        return;
    }
    let (lo, span) = (lo as f32, (hi - lo) as f32);
    for p in img.pixels_mut() {
        p.0[0] = (((p.0[0] as f32 - lo) / span) * 255.0).clamp(0.0, 255.0) as u8;
    }
}

/// The page read again after turning it as OSD says, when that reading is the better one (see `image_to_text`).
fn read_turned(
    path: &Path,
    langs: &[String],
    dpi: Option<u32>,
    workdir: &Path,
    how: Turned,
    tsv: &str,
) -> Option<String> {
    let rotate = orientation(path, dpi).filter(|r| *r != 0)?;
    let upright = rotate_image(path, rotate, workdir)?;
    let again = tesseract_tsv(&upright, langs, dpi, "4");
    let _ = std::fs::remove_file(&upright);
    let again = again.ok()?;
    // Tesseract reads sideways lines about as confidently as upright ones, so a page that looked sideways takes
    // the turned reading unless it is much worse; a page that only looked unsure (upside down, or just a poor
    // scan) takes it only when it is better, so a wrong guess from OSD on a poor scan changes nothing.
    let (before, after) = (confident_words(tsv), confident_words(&again));
    let better = match how {
        Turned::Sideways => after * 2 >= before,
        Turned::Unsure => after > before * 2,
    };
    better.then_some(again)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turned {
    Sideways,
    Unsure,
}

/// `dpi` for images that do not say (PGM pages we rendered): tesseract otherwise assumes 70 dpi and judges
/// specks and strokes by the wrong size.
fn tesseract_tsv(path: &Path, langs: &[String], dpi: Option<u32>, psm: &str) -> Result<String, (ErrorCode, String)> {
    let langs = if langs.is_empty() { "eng".to_string() } else { langs.join("+") };
    let out = tesseract(path, dpi, psm)
        .args(["-l", &langs, "tsv"])
        .output()
        .map_err(|e| (ErrorCode::SandboxFailure, format!("cannot run tesseract: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("the image cannot be read").to_string();
        return Err((ErrorCode::Unreadable, msg));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `tesseract IMAGE stdout --psm PSM [--dpi DPI]`, for the caller to add the rest.
fn tesseract(path: &Path, dpi: Option<u32>, psm: &str) -> Command {
    let mut cmd = Command::new("tesseract");
    cmd.arg(path).arg("stdout").args(["--psm", psm]);
    if let Some(dpi) = dpi {
        cmd.args(["--dpi", &dpi.to_string()]);
    }
    cmd
}

/// Every word row (level 5) of tesseract's TSV that holds text, as tesseract read it.
fn rows(tsv: &str) -> impl Iterator<Item = Word> + '_ {
    tsv.lines().skip(1).filter_map(|line| {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" || cols[11].trim().is_empty() {
            return None;
        }
        let n = |i: usize| cols[i].parse::<u32>().unwrap_or(0);
        let f = |i: usize| cols[i].parse::<f32>().unwrap_or(0.0);
        Some(Word {
            page: n(1),
            line: (n(2), n(3), n(4)),
            left: f(6),
            top: f(7),
            width: f(8),
            height: f(9),
            conf: cols[10].parse().unwrap_or(-1.0),
            text: cols[11].trim().to_string(),
        })
    })
}

fn confident_words(tsv: &str) -> usize {
    rows(tsv).filter(|r| r.conf >= 70.0 && r.text.chars().count() >= 3).count()
}

/// Does the page look turned? Read sideways, most words of four or more letters stand taller than wide; read
/// upside down, tesseract is sure of few words (measured on a generated invoice: upright 75 of 109 words at
/// confidence 70 or more, upside down 15 of 113; sideways 68 of 68 long words taller than wide, upright 0).
fn turned(tsv: &str) -> Option<Turned> {
    let (mut long, mut tall, mut all) = (0, 0, 0);
    for r in rows(tsv) {
        all += 1;
        if r.text.chars().count() >= 4 {
            long += 1;
            tall += usize::from(r.height > r.width);
        }
    }
    if long >= 5 && tall * 2 > long {
        Some(Turned::Sideways)
    } else if all >= 10 && confident_words(tsv) * 3 < all {
        Some(Turned::Unsure)
    } else if !rows(tsv).any(|r| r.conf >= 50.0 && r.text.chars().count() >= 3) {
        // Nothing legible: reading one column of text (`--psm 4`), tesseract finds no words at all on a page
        // fed sideways. Orientation detection decides, and an empty page stays as it was.
        Some(Turned::Unsure)
    } else {
        None
    }
}

/// Tesseract's orientation detection: how many degrees clockwise to turn the image to make it upright, when
/// it is confident.
fn orientation(path: &Path, dpi: Option<u32>) -> Option<u32> {
    let out = tesseract(path, dpi, "0").output().ok()?;
    parse_osd(&String::from_utf8_lossy(&out.stdout))
}

fn parse_osd(osd: &str) -> Option<u32> {
    let field = |key: &str| {
        osd.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().trim_start_matches(':').trim().to_string())
    };
    let rotate: u32 = field("Rotate")?.parse().ok()?;
    let confidence: f32 = field("Orientation confidence")?.parse().ok()?;
    // Right answers measured 10 to 13 here; tesseract's own documentation treats under 2 as a guess.
    (confidence >= 5.0 && matches!(rotate, 0 | 90 | 180 | 270)).then_some(rotate)
}

/// The image turned `degrees` clockwise, as a grey PGM in `workdir` (decoded here, inside the jail).
fn rotate_image(path: &Path, degrees: u32, workdir: &Path) -> Option<std::path::PathBuf> {
    let img = image::ImageReader::open(path).ok()?.with_guessed_format().ok()?.decode().ok()?;
    let img = match degrees {
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => return None,
    };
    let out = workdir.join("upright.pgm");
    img.into_luma8().save_with_format(&out, image::ImageFormat::Pnm).ok()?;
    Some(out)
}

/// (page, tesseract's block/paragraph/line numbers, indices of its words)
type TesseractLine = (u32, (u32, u32, u32), Vec<usize>);

#[derive(Debug, Clone)]
struct Word {
    page: u32,
    /// Tesseract's block, paragraph and line numbers: words of one line were read as one run of text.
    line: (u32, u32, u32),
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    /// -1 when tesseract gives none.
    conf: f32,
    text: String,
}

impl Word {
    fn centre(&self) -> (f32, f32) {
        (self.left + self.width / 2.0, self.top + self.height / 2.0)
    }
}

/// Words from tesseract's TSV (level 5 rows), without the specks it reads as stray punctuation.
fn words(tsv: &str) -> Vec<Word> {
    let mut words: Vec<Word> = Vec::new();
    for mut r in rows(tsv) {
        if r.conf < 0.0 {
            continue;
        }
        // Dust and specks come back as `:`, `'`, `;`, `*`, `.` with low confidence; real punctuation is
        // attached to a word. A confident `&` stands alone between two words of a name (`Schmidt & Partner`).
        let money = r.text.chars().any(|c| matches!(c, '€' | '$' | '£' | '%' | '-'));
        let lone_mark = r.text.chars().count() == 1 && r.text != "&";
        if !r.text.chars().any(char::is_alphanumeric) && !money && (r.conf < 60.0 || lone_mark) {
            continue;
        }
        // Only a tax ID right after its label is repaired: an invoice number may have the same shape.
        let after_label = words.last().is_some_and(|w| {
            let prev = w.text.to_lowercase();
            (w.page, w.line) == (r.page, r.line) && ["nif", "cif", "dni", "nie"].iter().any(|l| prev.contains(l))
        });
        if let Some(fixed) = after_label.then(|| repair_tax_id(&r.text)).flatten() {
            r.text = fixed;
        }
        let after_vat_label = words.last().is_some_and(|w| {
            let prev = w.text.to_lowercase();
            (w.page, w.line) == (r.page, r.line) && VAT_LABELS.iter().any(|l| prev.contains(l))
        });
        if let Some(fixed) = after_vat_label.then(|| repair_vat_prefix(&r.text)).flatten() {
            r.text = fixed;
        }
        if let Some(amount) = specked_amount(&r.text) {
            r.text = amount;
        }
        if let Some(word) = specked_word(&r.text) {
            r.text = word;
        }
        if let Some(last) = words.last_mut().filter(|w| amount_apart(w, &r)) {
            last.text.push_str(&r.text);
            last.width = r.left + r.width - last.left;
            continue;
        }
        words.push(r);
    }
    ampersands(&mut words);
    words
}

/// OCR reads the `&` of a name as a euro sign (`Silva €: Filhos, Lda.`), and a name with a currency sign in it
/// is no name. A lone `€` (with a speck after it) between two words of letters on one tesseract line is the
/// `&`; next to an amount it stays a euro sign.
fn ampersands(words: &mut [Word]) {
    let letters = |w: &Word| {
        w.text.chars().filter(|c| c.is_alphabetic()).count() >= 2 && !w.text.chars().any(|c| c.is_ascii_digit())
    };
    for k in 1..words.len().saturating_sub(1) {
        let (before, sign, after) = (&words[k - 1], &words[k], &words[k + 1]);
        let same_line = before.line == sign.line && sign.line == after.line && before.page == after.page;
        if same_line
            && matches!(sign.text.as_str(), "€" | "€:" | "€;" | "€." | "€,")
            && letters(before)
            && letters(after)
        {
            words[k].text = "&".to_string();
        }
    }
}

/// OCR reads an amount as two words, a narrow space after a separator: `5856,` `17` (the cents), or
/// `TOTAL£5,` `198.28` (after the thousands); the amount parser then finds `17` or `198.28`. Two words of one
/// tesseract line are one amount when the first ends in the separator and the second is the rest of the amount
/// (two digits of cents, with a currency code or sign after them; or a group of three digits and the decimals),
/// and the gap between them is no wider than a digit.
fn amount_apart(before: &Word, rest: &Word) -> bool {
    static UNITS: std::sync::LazyLock<regex_lite::Regex> =
        std::sync::LazyLock::new(|| super::rules::regex(r"^-?[0-9][0-9.' ]*[.,]$"));
    static CENTS: std::sync::LazyLock<regex_lite::Regex> =
        std::sync::LazyLock::new(|| super::rules::regex(r"^[0-9]{2}(?:€|\$|£|[A-Z]{3})?$"));
    static THOUSANDS: std::sync::LazyLock<regex_lite::Regex> =
        std::sync::LazyLock::new(|| super::rules::regex(r"(?:^|[^0-9.,])[0-9]{1,3}[.,]$"));
    static GROUPS: std::sync::LazyLock<regex_lite::Regex> = std::sync::LazyLock::new(|| {
        super::rules::regex(r"^[0-9]{3}(?:[.,'][0-9]{3})*[.,][0-9]{2}(?:€|\$|£|[A-Z]{3})?$")
    });
    let digit = before.width / before.text.chars().count().max(1) as f32;
    (before.page, before.line) == (rest.page, rest.line)
        && ((UNITS.is_match(&before.text) && CENTS.is_match(&rest.text))
            || (THOUSANDS.is_match(&before.text) && GROUPS.is_match(&rest.text)))
        && rest.left - (before.left + before.width) <= digit * 1.2
}

/// An amount with a speck OCR read into it as a quote or colon: before it (`‘20,00`), at its decimal separator
/// (`3:,87`) or after it (`1,29:`). The amount without the speck; `None` for anything else, a time (`17:49`)
/// included, since a speck is only taken out where it touches the decimal part's separator or the word's ends.
fn specked_amount(word: &str) -> Option<String> {
    static SPECKED: std::sync::LazyLock<regex_lite::Regex> = std::sync::LazyLock::new(|| {
        super::rules::regex(r"^[‘’'`\x22:;]*(-?\d{1,3}(?:[.,' ]\d{3})*)[‘’'`:;]?([.,]\d{2})[‘’'`:;]*$")
    });
    let c = SPECKED.captures(word)?;
    let amount = format!("{}{}", &c[1], &c[2]);
    (amount != word).then_some(amount)
}

/// A word with a speck read into it as a closing quote (`Total’ excl. GST`, which no label then matches): the
/// word without it. Only one mark, after three letters or more: an elision is one letter (`l’`) or has its
/// next word glued on (`dell’acqua`).
fn specked_word(word: &str) -> Option<String> {
    let body = word.trim_end_matches(['’', '\'', '‘', '`']);
    (body.len() + '’'.len_utf8() >= word.len()
        && body.len() < word.len()
        && body.chars().count() >= 3
        && body.chars().all(char::is_alphabetic))
    .then(|| body.to_string())
}

/// Characters OCR confuses with `target` in a check character (`0` for `Q`, `l` for `I`, `8` for `B`).
fn confusable(target: char, read: char) -> bool {
    let class = |c: char| match c.to_ascii_uppercase() {
        '0' | 'O' | 'Q' | 'D' => 0,
        '8' | 'B' => 1,
        '5' | 'S' | '$' => 2,
        '2' | 'Z' => 3,
        '6' | 'G' => 4,
        '4' | 'A' => 5,
        '7' | 'T' => 6,
        '1' | 'I' | 'L' | 'J' | '|' | ']' => 7,
        '3' | 'E' => 8,
        'C' | '(' => 9,
        _ => 100 + c as u32,
    };
    read.to_ascii_uppercase() == target || class(read) == class(target)
}

/// OCR reads the check character of a Spanish NIF, NIE or CIF as a look-alike (`275850660` for `27585066Q`,
/// `11676369mM` for `11676369M`, `P6562626l` for `P6562626I`). When the character the digits call for looks
/// like what was read, it is written back; anything else is left as read, and then fails its check downstream.
fn repair_tax_id(word: &str) -> Option<String> {
    const NIF_LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let body = word.trim_end_matches(['.', ',', ';', ':']);
    let tail = &word[body.len()..];
    let first = body.chars().next()?;
    let (prefix, digits_len) = match first {
        'X' | 'Y' | 'Z' => (Some(first), 7),
        'A'..='H' | 'J' | 'N' | 'P'..='S' | 'U' | 'V' | 'W' => (Some(first), 7),
        _ => (None, 8),
    };
    let rest = if prefix.is_some() { &body[1..] } else { body };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).take(digits_len).collect();
    let read = &rest[digits.len()..];
    if digits.len() != digits_len || read.is_empty() || read.chars().count() > 2 {
        return None;
    }
    // What the check character must be: one letter for a NIF or NIE, a digit and/or a letter for a CIF.
    let wanted: Vec<char> = match prefix {
        None | Some('X' | 'Y' | 'Z') => {
            let lead = prefix.map_or(0, |c| "XYZ".find(c).unwrap_or(0) as u64 * 10_000_000);
            let n = lead + digits.parse::<u64>().ok()?;
            vec![NIF_LETTERS[(n % 23) as usize] as char]
        }
        Some(letter) => {
            let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
            let even: u32 = d.iter().skip(1).step_by(2).sum();
            let odd: u32 = d.iter().step_by(2).map(|x| (2 * x) / 10 + (2 * x) % 10).sum();
            let control = (10 - (even + odd) % 10) % 10;
            let as_digit = char::from_digit(control, 10)?;
            let as_letter = b"JABCDEFGHI"[control as usize] as char;
            match letter {
                'P' | 'Q' | 'R' | 'S' | 'N' | 'W' => vec![as_letter],
                'A' | 'B' | 'E' | 'H' => vec![as_digit],
                _ => vec![as_digit, as_letter],
            }
        }
    };
    if wanted.iter().any(|w| read == w.to_string()) {
        return None;
    }
    let fix = wanted.into_iter().find(|&w| read.chars().all(|r| confusable(w, r)))?;
    Some(format!("{}{digits}{fix}{tail}", prefix.map(String::from).unwrap_or_default()))
}

/// Words that end a VAT number's label (`P. IVA:`, `USt-IdNr.:`, `TVA`, `BTW-nr`, `VAT No:`).
const VAT_LABELS: &[&str] = &["iva", "vat", "tva", "btw", "ust", "idnr", "mwst", "nif", "nipc"];

/// OCR reads the country prefix of a VAT number as digits (`1167256425843` for `IT67256425843`, `7T` or `11`
/// for `IT`). A word of digits after a VAT label, whose first two characters look like a country's code and
/// whose rest then passes that country's check digit, is written back with the code; when no country's check
/// passes, or more than one does, the word stays as read.
fn repair_vat_prefix(word: &str) -> Option<String> {
    use super::rules::taxid::TaxId;
    const CODES: &[&str] =
        &["AT", "BE", "DE", "EE", "ES", "FI", "FR", "GB", "IE", "IT", "LT", "NL", "PL", "PT", "SE", "SI"];
    let body = word.trim_end_matches(['.', ',', ';', ':']);
    let tail = &word[body.len()..];
    let mut chars = body.chars();
    let (a, b) = (chars.next()?, chars.next()?);
    let rest = chars.as_str();
    if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() || rest.len() < 8 || !rest.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // A `T` of a monospaced font has feet that OCR reads as a `1`.
    let like = |code: char, read: char| confusable(code, read) || (code == 'T' && read == '1');
    let mut fits = CODES.iter().filter(|code| {
        let mut c = code.chars();
        let (x, y) = (c.next().unwrap_or(' '), c.next().unwrap_or(' '));
        like(x, a) && like(y, b) && TaxId::parse(&format!("{code}{rest}")).is_ok_and(|t| t.checksum_verified())
    });
    let code = fits.next()?;
    fits.next().is_none().then(|| format!("{code}{rest}{tail}"))
}

/// The page's skew as a slope (dy/dx), from the lines tesseract found: it follows a skewed line word by word,
/// so the median slope of its long lines is the page's. A scan a few degrees off would otherwise put a label
/// and its amount at the far right on different rows.
fn skew(words: &[Word]) -> f32 {
    let mut slopes: Vec<f32> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let j = (i..words.len()).find(|&k| words[k].line != words[i].line || words[k].page != words[i].page);
        let j = j.unwrap_or(words.len());
        let line = &words[i..j];
        if line.len() >= 2 {
            let pts: Vec<(f32, f32)> = line.iter().map(|w| (w.left + w.width / 2.0, w.top + w.height)).collect();
            let span = pts.last().map_or(0.0, |p| p.0) - pts[0].0;
            if span > 8.0 * line[0].height.max(1.0) {
                let n = pts.len() as f32;
                let (mx, my) = (pts.iter().map(|p| p.0).sum::<f32>() / n, pts.iter().map(|p| p.1).sum::<f32>() / n);
                let sxx: f32 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
                let sxy: f32 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
                if sxx > 0.0 {
                    slopes.push(sxy / sxx);
                }
            }
        }
        i = j;
    }
    if slopes.is_empty() {
        return 0.0;
    }
    slopes.sort_by(f32::total_cmp);
    let m = slopes[slopes.len() / 2];
    // More than about 6 degrees is not a scanner's skew but a bad estimate (or a rotated page, for OSD).
    if m.abs() > 0.1 {
        0.0
    } else {
        m
    }
}

fn median(mut v: Vec<f32>, default: f32) -> f32 {
    if v.is_empty() {
        return default;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Rebuild lines from word boxes, like `pdftotext -layout` does from glyphs: the page is deskewed (see `skew`),
/// words whose centres are level form a row, and each word starts at its column (left edge over the typical
/// character width). Words that tesseract read as one line and that sit a normal word space apart are joined
/// by one space, so a name stays one segment; anything further apart gets two or more spaces, a column break.
pub fn layout_from_tsv(tsv: &str) -> String {
    let words = words(tsv);
    if words.is_empty() {
        return String::new();
    }
    let char_w = median(
        words.iter().filter(|w| w.text.chars().count() >= 2).map(|w| w.width / w.text.chars().count() as f32).collect(),
        10.0,
    )
    .max(1.0);
    let line_h = median(words.iter().map(|w| w.height).collect(), 10.0).max(1.0);
    let slope = skew(&words);
    // Deskewed centres: rotate by the small angle whose tangent is `slope`.
    let placed: Vec<(f32, f32)> = words
        .iter()
        .map(|w| {
            let (x, y) = w.centre();
            (w.left + slope * y, y - slope * x)
        })
        .collect();

    // Rows: tesseract's lines, ordered by their deskewed height, merged when level with each other.
    let mut lines: Vec<(u32, f32, Vec<usize>)> = Vec::new(); // (page, centre, word indices)
    let mut by_line: Vec<TesseractLine> = Vec::new();
    for (k, w) in words.iter().enumerate() {
        match by_line.last_mut() {
            Some((p, l, ks)) if *p == w.page && *l == w.line => ks.push(k),
            _ => by_line.push((w.page, w.line, vec![k])),
        }
    }
    let mut runs: Vec<(u32, f32, Vec<usize>)> = by_line
        .into_iter()
        .map(|(p, _, ks)| {
            let c = ks.iter().map(|&k| placed[k].1).sum::<f32>() / ks.len() as f32;
            (p, c, ks)
        })
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for (page, centre, ks) in runs {
        match lines.last_mut() {
            Some((p, c, row)) if *p == page && (centre - *c).abs() < line_h * 0.55 => {
                let n = row.len() as f32;
                *c = (*c * n + centre * ks.len() as f32) / (n + ks.len() as f32);
                row.extend(ks);
            }
            _ => lines.push((page, centre, ks)),
        }
    }

    let mut out = String::new();
    let mut last_page = None;
    for (page, _, mut row) in lines {
        if last_page.is_some_and(|p| p != page) {
            out.push('\u{c}');
        }
        last_page = Some(page);
        row.sort_by(|&a, &b| placed[a].0.total_cmp(&placed[b].0));
        let mut line = String::new();
        let mut prev: Option<usize> = None;
        for k in row {
            let w = &words[k];
            let col = (placed[k].0 / char_w).round().max(0.0) as usize;
            let len = line.chars().count();
            match prev {
                None => line.push_str(&" ".repeat(col.min(300))),
                Some(p) => {
                    let pw = &words[p];
                    let gap = placed[k].0 - (placed[p].0 + pw.width);
                    // A word space is about half a character wide, a column gap several: compare with the
                    // characters of the two words themselves (fonts differ in size on one page).
                    let chars = (pw.text.chars().count() + w.text.chars().count()).max(1) as f32;
                    let glyph = (pw.width + w.width) / chars;
                    // After a comma that tesseract read on the same line (`Lopes, Lda.`), a monospaced font
                    // leaves a whole character of space beside the comma's narrow stroke. (Not after a full
                    // stop: `Lda.  Avenida` is where OCR dropped a `·` between a name and its street, and that
                    // gap is no wider than the one in a till slip's `Doc. n.`)
                    let after_comma = pw.text.ends_with(',') && (pw.page, pw.line) == (w.page, w.line);
                    let space = if after_comma { 2.2 } else { 1.6 };
                    if gap < (space * glyph).max(0.9 * pw.height.min(w.height)) {
                        line.push(' ');
                    } else {
                        line.push_str(&" ".repeat(col.saturating_sub(len).max(2)));
                    }
                }
            }
            line.push_str(&w.text);
            prev = Some(k);
        }
        out.push_str(&join_spaced_capitals(line.trim_end()));
        out.push('\n');
    }
    out
}

/// A letter-spaced heading that tesseract read as pieces (`F ATTU R A`) made one word again (`FATTURA`): three
/// or more pieces of capital letters one space apart, at least half of them a single letter, 4 to 16 letters
/// in all. Words of a phrase (`FECHA DE LA FACTURA`, `TORNILLOS Y TUERCAS`) are longer than one letter.
fn join_spaced_capitals(line: &str) -> String {
    let capitals = |w: &str| w.chars().all(|c| c.is_alphabetic() && c.is_uppercase());
    // (the spaces before the word, the word)
    let mut words: Vec<(&str, &str)> = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let word_at = rest.find(|c: char| c != ' ').unwrap_or(rest.len());
        let word_end = rest[word_at..].find(' ').map_or(rest.len(), |e| word_at + e);
        words.push((&rest[..word_at], &rest[word_at..word_end]));
        rest = &rest[word_end..];
    }
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < words.len() {
        let mut j = i + 1;
        while capitals(words[i].1) && j < words.len() && words[j].0 == " " && capitals(words[j].1) {
            j += 1;
        }
        let run = &words[i..j];
        let singles = run.iter().filter(|(_, w)| w.chars().count() == 1).count();
        let letters: usize = run.iter().map(|(_, w)| w.chars().count()).sum();
        out.push_str(words[i].0);
        if run.len() >= 3 && singles * 2 >= run.len() && (4..=16).contains(&letters) {
            run.iter().for_each(|(_, w)| out.push_str(w));
        } else {
            out.push_str(words[i].1);
            run[1..].iter().for_each(|(gap, w)| {
                out.push_str(gap);
                out.push_str(w);
            });
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_is_taken_only_when_tesseract_is_confident() {
        let osd = |rotate: &str, conf: &str| {
            format!(
                "Page number: 0\nOrientation in degrees: 90\nRotate: {rotate}\nOrientation confidence: {conf}\n\
                 Script: Latin\nScript confidence: 4.40\n"
            )
        };
        let cases: &[(&str, Option<u32>)] = &[
            (&osd("270", "12.65"), Some(270)),
            (&osd("180", "10.41"), Some(180)),
            (&osd("0", "12.14"), Some(0)),
            (&osd("90", "1.20"), None),
            (&osd("45", "12.00"), None),
            ("Too few characters. Skipping this page\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_osd(text), *want, "{text}");
        }
    }

    fn tsv_of(words: &[(&str, f32, f32, f32)]) -> String {
        let mut tsv = String::from(
            "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n",
        );
        for (k, (text, conf, w, h)) in words.iter().enumerate() {
            tsv.push_str(&format!("5\t1\t1\t1\t1\t{k}\t10\t10\t{w}\t{h}\t{conf}\t{text}\n"));
        }
        tsv
    }

    /// One tesseract line of confident words: (text, left, width).
    fn tsv_row(words: &[(&str, f32, f32)]) -> String {
        let mut tsv = String::from(
            "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n",
        );
        for (k, (text, left, width)) in words.iter().enumerate() {
            tsv.push_str(&format!("5\t1\t1\t1\t1\t{k}\t{left}\t10\t{width}\t20\t90\t{text}\n"));
        }
        tsv
    }

    #[test]
    fn a_page_read_sideways_or_unsure_is_judged_turned() {
        let upright = tsv_of(&[("Factura", 95.0, 140.0, 30.0); 12]);
        let sideways = tsv_of(&[("Factura", 90.0, 30.0, 140.0); 12]);
        let unsure = tsv_of(&[("aqn", 30.0, 40.0, 30.0); 12]);
        assert_eq!(turned(&upright), None);
        assert_eq!(turned(&sideways), Some(Turned::Sideways));
        assert_eq!(turned(&unsure), Some(Turned::Unsure));
        assert_eq!(turned(&tsv_of(&[("Factura", 95.0, 140.0, 30.0); 3])), None, "a few clear words are upright");
        assert_eq!(turned(&tsv_of(&[("aqn", 30.0, 40.0, 30.0); 3])), Some(Turned::Unsure), "nothing legible");
        assert_eq!(turned(&tsv_of(&[])), Some(Turned::Unsure), "nothing read at all");
    }

    #[test]
    fn a_tax_id_check_character_misread_as_a_look_alike_is_written_back() {
        let cases: &[(&str, Option<&str>)] = &[
            ("275850660", Some("27585066Q")),
            ("11676369mM", Some("11676369M")),
            ("11676369m", Some("11676369M")),
            ("P6562626l", Some("P6562626I")),
            ("B1234567A", Some("B12345674")),
            ("X1234567L", None),  // already right
            ("275850661", None),  // 1 does not look like Q
            ("2758506", None),    // too short
            ("B12345674", None),  // right
            ("B12345670", None),  // 0 does not look like 4
            ("12345678Z,", None), // right, with punctuation
        ];
        for (read, want) in cases {
            assert_eq!(repair_tax_id(read).as_deref(), *want, "{read}");
        }
    }

    #[test]
    fn words_on_one_row_become_one_line_with_their_columns() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
5\t1\t1\t1\t1\t1\t100\t100\t100\t20\t95\tTotal\n\
5\t1\t2\t1\t1\t1\t600\t102\t120\t20\t93\t1.210,00\n\
5\t1\t1\t1\t2\t1\t100\t140\t80\t20\t90\tIVA\n";
        let text = layout_from_tsv(tsv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].trim_start().starts_with("Total") && lines[0].ends_with("1.210,00"), "{text}");
        assert!(lines[0].find("1.210,00").unwrap() > lines[0].find("Total").unwrap() + 10, "columns kept: {text}");
    }

    #[test]
    fn a_vat_numbers_country_code_read_as_digits_is_written_back_only_when_one_countrys_check_holds() {
        // `IT` read as `11`, and as `1T`.
        assert_eq!(repair_vat_prefix("1167256425843").as_deref(), Some("IT67256425843"));
        assert_eq!(repair_vat_prefix("1T67256425843,").as_deref(), Some("IT67256425843,"));
        // One digit changed: no country's check holds, so the word stays as read.
        assert_eq!(repair_vat_prefix("1167256425844"), None);
        // An Italian number printed without its code, a Spanish NIF, a number already prefixed: left alone.
        assert_eq!(repair_vat_prefix("67256425843"), None);
        assert_eq!(repair_vat_prefix("12345678Z"), None);
        assert_eq!(repair_vat_prefix("IT67256425843"), None);
    }

    #[test]
    fn a_reading_counts_its_amounts_so_a_page_without_any_is_read_again() {
        let slip = tsv_of(&[("Total", 95.0, 60.0, 20.0), ("€5,04", 90.0, 60.0, 20.0), ("1.234,56", 90.0, 80.0, 20.0)]);
        assert_eq!(amounts(&slip), 2);
        let labels_only =
            tsv_of(&[("Subtotal", 95.0, 80.0, 20.0), ("IVA", 95.0, 40.0, 20.0), ("6%", 95.0, 20.0, 20.0)]);
        assert_eq!(amounts(&labels_only), 0);
        // Times, dates and quantities are no amounts.
        let other = tsv_of(&[("11:15", 95.0, 50.0, 20.0), ("22/09/2025", 95.0, 100.0, 20.0), ("3", 95.0, 10.0, 20.0)]);
        assert_eq!(amounts(&other), 0);
    }

    #[test]
    fn an_amount_read_as_two_words_a_narrow_space_after_a_separator_is_one_again() {
        let row =
            |words: &[(&str, f32, f32)]| super::words(&tsv_row(words)).into_iter().map(|w| w.text).collect::<Vec<_>>();
        assert_eq!(row(&[("TOTAL", 0.0, 60.0), ("7085,", 300.0, 60.0), ("97", 368.0, 24.0)]), ["TOTAL", "7085,97"]);
        assert_eq!(row(&[("TOTAL£5,", 300.0, 96.0), ("198.28", 402.0, 72.0)]), ["TOTAL£5,198.28"]);
        // A column apart, or a quantity after a list's comma: two words.
        assert_eq!(row(&[("7085,", 300.0, 60.0), ("97", 400.0, 24.0)]), ["7085,", "97"]);
        assert_eq!(row(&[("Art.", 0.0, 48.0), ("3,", 60.0, 24.0), ("Nr", 96.0, 24.0)]), ["Art.", "3,", "Nr"]);
    }

    #[test]
    fn a_euro_sign_between_two_words_of_a_name_is_its_ampersand() {
        let line = |texts: &[&str]| {
            let spaced: Vec<(&str, f32, f32)> =
                texts.iter().enumerate().map(|(k, t)| (*t, k as f32 * 60.0, 40.0)).collect();
            words(&tsv_row(&spaced)).into_iter().map(|w| w.text).collect::<Vec<_>>().join(" ")
        };
        assert_eq!(line(&["Silva", "€:", "Filhos,", "Lda."]), "Silva & Filhos, Lda.");
        assert_eq!(line(&["TOTAL", "€", "13,56"]), "TOTAL € 13,56");
        assert_eq!(line(&["Importe", "€"]), "Importe €");
    }

    #[test]
    fn a_speck_read_onto_a_word_as_a_quote_is_taken_off_and_elisions_stay() {
        assert_eq!(specked_word("Total’").as_deref(), Some("Total"));
        assert_eq!(specked_word("Roma'").as_deref(), Some("Roma"));
        assert_eq!(specked_word("dell’acqua"), None);
        assert_eq!(specked_word("l’"), None);
        assert_eq!(specked_word("12’"), None);
        assert_eq!(specked_word("Total"), None);
    }

    #[test]
    fn a_speck_read_into_an_amount_is_taken_out_and_times_and_numbers_stay() {
        assert_eq!(specked_amount("3:,87").as_deref(), Some("3,87"));
        assert_eq!(specked_amount("‘20,00").as_deref(), Some("20,00"));
        assert_eq!(specked_amount("1,29:").as_deref(), Some("1,29"));
        assert_eq!(specked_amount("1.234;,56").as_deref(), Some("1.234,56"));
        for kept in ["20,00", "17:49", "12:30:45", "T25-04226", "3:87", "B91926576", "2025:10,15x"] {
            assert_eq!(specked_amount(kept), None, "{kept}");
        }
    }

    #[test]
    fn a_legal_form_after_a_comma_stays_in_the_name_but_a_column_after_a_comma_does_not() {
        let head = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n";
        // Tesseract's TSV of a receipt's monospaced header: 14 px between `Lopes,` and `Lda.`.
        let name = format!(
            "{head}5\t1\t1\t1\t1\t1\t77\t23\t81\t13\t96\tMercearia\n\
5\t1\t1\t1\t1\t2\t170\t25\t50\t14\t96\tLopes,\n\
5\t1\t1\t1\t1\t3\t234\t24\t32\t12\t96\tLda.\n"
        );
        assert_eq!(layout_from_tsv(&name).trim(), "Mercearia Lopes, Lda.");
        // The same gap between two lines that tesseract read apart is a column break.
        let columns = name.replace("5\t1\t1\t1\t1\t3\t234", "5\t1\t2\t1\t1\t1\t234");
        assert!(layout_from_tsv(&columns).contains("Lopes,  "), "{}", layout_from_tsv(&columns));
        // A wide gap after a comma stays a column break on one tesseract line too.
        let far = name.replace("\t234\t24\t32", "\t260\t24\t32");
        assert!(layout_from_tsv(&far).contains("Lopes,  "), "{}", layout_from_tsv(&far));
    }

    #[test]
    fn a_letter_spaced_heading_read_in_pieces_is_one_word_and_phrases_stay_apart() {
        assert_eq!(join_spaced_capitals("   F ATTU R A        N. documento:"), "   FATTURA        N. documento:");
        assert_eq!(join_spaced_capitals("R E C H N U N G"), "RECHNUNG");
        for kept in [
            "FECHA DE LA FACTURA",
            "TORNILLOS Y TUERCAS",
            "A B",
            "IVA  A  B  C",
            "P. IVA: IT66121440516",
            "Total  € 13,56",
            "",
        ] {
            assert_eq!(join_spaced_capitals(kept), kept);
        }
    }

    #[test]
    fn a_confident_ampersand_keeps_a_name_whole_and_specks_go() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
5\t1\t1\t1\t1\t1\t100\t100\t90\t20\t93\tSchmidt\n\
5\t1\t1\t1\t1\t2\t200\t100\t14\t20\t93\t&\n\
5\t1\t1\t1\t1\t3\t224\t100\t90\t20\t96\tPartner\n\
5\t1\t1\t1\t2\t1\t100\t140\t6\t6\t30\t&\n\
5\t1\t1\t1\t2\t2\t300\t140\t6\t6\t95\t.\n";
        let text = layout_from_tsv(tsv);
        assert_eq!(text.trim(), "Schmidt & Partner", "{text:?}");
    }

    /// A page of grey "text" bars on paper lit from the left: bright (240) at the left edge, dim (120) at the
    /// right, where one global threshold reads the paper as ink.
    fn lit_from_one_side() -> image::GrayImage {
        image::GrayImage::from_fn(800, 1000, |x, y| {
            let paper = 240 - (120 * x / 800) as u8;
            let ink = (y % 40) < 8 && (x % 100) < 70;
            image::Luma([if ink { paper / 4 } else { paper }])
        })
    }

    #[test]
    fn paper_lit_from_one_side_is_made_white_and_the_ink_stays_dark() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("photo.png");
        lit_from_one_side().save(&src).unwrap();
        let evened = even_out(&src, dir.path()).expect("an unevenly lit page is evened out");
        let img = image::open(&evened).unwrap().into_luma8();
        // Paper on the dim right side is now as white as on the left; ink is dark on both sides.
        assert!(img.get_pixel(50, 20).0[0] >= 235 && img.get_pixel(750, 20).0[0] >= 235);
        assert!(img.get_pixel(50, 2).0[0] < 90 && img.get_pixel(710, 2).0[0] < 90);
    }

    #[test]
    fn an_evenly_lit_page_is_read_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("scan.png");
        image::GrayImage::from_fn(800, 1000, |x, y| {
            image::Luma([if (y % 40) < 8 && (x % 100) < 70 { 20 } else { 250 }])
        })
        .save(&src)
        .unwrap();
        assert_eq!(even_out(&src, dir.path()), None);
    }
}
