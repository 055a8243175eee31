//! The mails people read, rendered in every language and compared with the reviewed copies in
//! `tests/snapshots/mails/` (text and HTML): the reply to a supplier (all fine, and with failures), the
//! confirmation, the batch summary, the daily digest and the alert digest.
//!
//! A changed rendering fails here until its copy is reviewed: `UPDATE_SNAPSHOTS=1 cargo test --test it mail_render::`
//! rewrites the copies, and `git diff tests/snapshots` shows what changed.
//!
//! Beside the snapshots: no mail in one language carries the other's words, and no mail shows a raw key.

use chrono::{NaiveDate, TimeZone, Utc};
use invoice_intake::config::Language;
use invoice_intake::extract::{Check, ErrorCode, Extraction, Party, Source};
use invoice_intake::mail::mime::{SkipReason, Skipped};
use invoice_intake::mail::render::{
    self, AlertsView, DigestInvoice, DigestView, FailedMail, FailureKind, QuarantinedMail, Rendered,
};
use invoice_intake::mail::reply::{BatchConfirmation, BatchItem, Confirmation, Outcome, ReplyContent};
use rust_decimal::Decimal;
use std::path::PathBuf;
use std::str::FromStr;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn tax(rate: &str, base: &str, amount: &str) -> invoice_intake::extract::model::TaxLine {
    invoice_intake::extract::model::TaxLine {
        rate: Some(dec(rate)),
        base: Some(dec(base)),
        amount: Some(dec(amount)),
        category: None,
    }
}

/// A Spanish invoice with two VAT rates and an IRPF withholding, read with confidence.
fn good_invoice() -> Extraction {
    let mut e = Extraction::empty("factura-2025-0042.pdf");
    e.source = Some(Source::PdfText);
    e.invoice_number = Some("2025-0042".into());
    e.issue_date = NaiveDate::from_ymd_opt(2025, 10, 15);
    e.due_date = NaiveDate::from_ymd_opt(2025, 11, 14);
    e.currency = Some("EUR".into());
    e.supplier = Some(Party {
        name: Some("Suministros Norte S.L.".into()),
        tax_id: Some("B12345674".into()),
        country: Some("ES".into()),
        iban: Some("ES9121000418450200051332".into()),
    });
    e.customer = Some(Party {
        name: Some("Facturas Ejemplo S.L.".into()),
        tax_id: Some("B87654321".into()),
        ..Default::default()
    });
    e.taxes = Some(vec![tax("21", "1000.00", "210.00"), tax("10", "200.00", "20.00")]);
    e.net_amount = Some(dec("1200.00"));
    e.tax_amount = Some(dec("230.00"));
    e.total_amount = Some(dec("1430.00"));
    e.amount_due = Some(dec("1280.00"));
    e.push_warning("a withholding (IRPF) of 150.00 lowers the amount due");
    e.confidence = Some(
        [("invoice_number", 0.95), ("issue_date", 0.9), ("total_amount", 0.95), ("amount_due", 0.9)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    e
}

/// An invoice whose checks failed, with English details and warnings as the extractor writes them.
fn doubtful_invoice() -> Extraction {
    let mut e = Extraction::empty("scan.pdf");
    e.source = Some(Source::Ocr);
    e.invoice_number = Some("A-77".into());
    e.issue_date = NaiveDate::from_ymd_opt(2025, 10, 2);
    e.currency = Some("EUR".into());
    e.supplier =
        Some(Party { name: Some("Talleres Sur".into()), tax_id: Some("B11111111".into()), ..Default::default() });
    e.customer = Some(Party { name: Some("Facturas Ejemplo".into()), ..Default::default() });
    e.total_amount = Some(dec("80.00"));
    e.amount_due = Some(dec("80.00"));
    e.push_check(Check::new(
        "iban_checksum",
        false,
        Some("ES9221000418450200051332 fails mod 97 or its length".into()),
    ));
    e.push_check(Check::new("totals_add_up", false, Some("the net and tax amounts printed do not add up".into())));
    e.push_warning("net and tax amounts contradict the total and were dropped");
    e.push_warning("IBAN ES9221000418450200051332 is printed with a wrong check; it was not kept");
    e.confidence = Some(
        [("invoice_number", 0.9), ("amount_due", 0.5), ("customer.name", 0.4), ("total_amount", 0.8)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    );
    e
}

fn failed(file: &str, code: ErrorCode) -> Extraction {
    Extraction::failed(file, code, "the English message for operators")
}

fn content<'a>(lang: Language, outcomes: &'a [(String, Outcome)], skipped: &'a [Skipped]) -> ReplyContent<'a> {
    ReplyContent {
        language: lang,
        outcomes,
        skipped,
        resent_of: None,
        message_error: None,
        max_pages: 50,
        max_attachments: 20,
    }
}

fn received() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 16, 9, 30, 0).unwrap()
}

fn reply_ok(lang: Language) -> Rendered {
    let o = vec![("factura-2025-0042.pdf".to_string(), Outcome::Stored(good_invoice()))];
    render::render_reply(&content(lang, &o, &[]), "Factura octubre").unwrap()
}

fn reply_failures(lang: Language) -> Rendered {
    let o = vec![
        ("scan.pdf".to_string(), Outcome::Stored(doubtful_invoice())),
        ("roto.pdf".to_string(), Outcome::Failed(failed("roto.pdf", ErrorCode::Unreadable))),
        ("clave.pdf".to_string(), Outcome::Failed(failed("clave.pdf", ErrorCode::Encrypted))),
        (
            "copia.pdf".to_string(),
            Outcome::Duplicate {
                extraction: good_invoice(),
                first_seen: Utc.with_ymd_and_hms(2025, 10, 1, 8, 0, 0).unwrap(),
                invoice_number: Some("2025-0042".into()),
            },
        ),
    ];
    let skipped = vec![Skipped { filename: "logo.svg".into(), reason: SkipReason::UnsupportedType }];
    render::render_reply(&content(lang, &o, &skipped), "").unwrap()
}

fn confirmation(lang: Language) -> Rendered {
    let e = good_invoice();
    let alerts = vec![invoice_intake::mail::i18n::fraud_sentence(
        &invoice_intake::fraud::Signal::IbanChanged {
            previous: "ES7620770024003102575766".into(),
            now: "ES9121000418450200051332".into(),
            since: NaiveDate::from_ymd_opt(2024, 1, 10),
        },
        lang,
    )];
    render::render_confirmation(&Confirmation {
        language: lang,
        extraction: &e,
        filename: "factura-2025-0042.pdf",
        sender: "facturacion@suministros-norte.test",
        subject: "Factura octubre",
        message_id: Some("<m1@suministros-norte.test>"),
        message_ref: 3,
        invoice_ref: 9,
        alerts: &alerts,
        received: Some(received()),
        min_confidence: 0.6,
        attached: true,
    })
    .unwrap()
}

fn confirmation_review(lang: Language) -> Rendered {
    let e = doubtful_invoice();
    render::render_confirmation(&Confirmation {
        language: lang,
        extraction: &e,
        filename: "scan.pdf",
        sender: "admin@talleres-sur.test",
        subject: "fra",
        message_id: None,
        message_ref: 4,
        invoice_ref: 10,
        alerts: &[],
        received: Some(received()),
        min_confidence: 0.6,
        attached: true,
    })
    .unwrap()
}

fn batch(lang: Language) -> Rendered {
    let invoices: Vec<Extraction> = (1..=3)
        .map(|i| {
            let mut e = good_invoice();
            e.invoice_number = Some(format!("FAC-{i:03}"));
            e.source = Some(Source::Facturae);
            e
        })
        .chain(std::iter::once(doubtful_invoice()))
        .collect();
    let items: Vec<BatchItem<'_>> = invoices
        .iter()
        .enumerate()
        .map(|(i, e)| BatchItem { extraction: e, filename: "lote.xsig", invoice_ref: 20 + i as i64, alerts: &[] })
        .collect();
    let failed = vec![("roto.pdf".to_string(), ErrorCode::Unreadable)];
    render::render_batch(&BatchConfirmation {
        language: lang,
        items: &items,
        failed: &failed,
        sender: "facturacion@suministros-norte.test",
        subject: "Lote de facturas",
        message_id: Some("<lote@suministros-norte.test>"),
        message_ref: 5,
        received: Some(received()),
        min_confidence: 0.6,
        documents: 3,
        attached: 2,
    })
    .unwrap()
}

fn quarantined() -> Vec<QuarantinedMail> {
    vec![
        QuarantinedMail {
            message_ref: 41,
            sender: "billing@paypa1.test".into(),
            subject: "Urgent invoice".into(),
            message_id: Some("<x1@paypa1.test>".into()),
            reason: "sender not authenticated: no Authentication-Results from mx.example.test".into(),
        },
        QuarantinedMail {
            message_ref: 42,
            sender: "ceo@example.com".into(),
            subject: "Pago hoy".into(),
            message_id: None,
            reason: "sender not authenticated: dmarc=fail for example.com; Reply-To: ceo@evil.test".into(),
        },
    ]
}

fn failed_mail() -> Vec<FailedMail> {
    vec![
        FailedMail {
            message_ref: 43,
            sender: "admin@talleres-sur.test".into(),
            subject: "factura".into(),
            received: Some(received()),
            documents: vec!["roto.pdf".into()],
            kind: FailureKind::Document(ErrorCode::Unreadable),
        },
        FailedMail {
            message_ref: 44,
            sender: "info@proveedor.test".into(),
            subject: "Hola".into(),
            received: Some(received()),
            documents: vec![],
            kind: FailureKind::NoDocuments,
        },
    ]
}

fn alerts(lang: Language) -> Rendered {
    render::render_alerts(&AlertsView { quarantined: quarantined(), failed: failed_mail() }, lang).unwrap()
}

fn digest(lang: Language) -> Rendered {
    let good = good_invoice();
    let doubt = doubtful_invoice();
    let inv = |id: i64, e: &Extraction, number: &str, review: Vec<String>| DigestInvoice {
        invoice_ref: id,
        supplier: e.supplier.as_ref().and_then(|s| s.name.clone()).unwrap_or_default(),
        supplier_tax_id: e.supplier.as_ref().and_then(|s| s.tax_id.clone()),
        number: Some(number.into()),
        issue_date: e.issue_date,
        total: e.total_amount,
        currency: e.currency.clone(),
        review,
    };
    let view = DigestView {
        date: NaiveDate::from_ymd_opt(2025, 10, 16).unwrap(),
        invoices: vec![
            inv(9, &good, "2025-0042", vec![]),
            inv(11, &good, "2025-0043", vec![]),
            inv(10, &doubt, "A-77", render::review_reasons(&doubt, lang, 0.6)),
        ],
        failed: failed_mail(),
        quarantined: quarantined(),
        csv_attached: true,
    };
    render::render_digest(&view, lang).unwrap()
}

type Mail = (&'static str, fn(Language) -> Rendered);

const MAILS: [Mail; 7] = [
    ("reply_ok", reply_ok),
    ("reply_failures", reply_failures),
    ("confirmation", confirmation),
    ("confirmation_review", confirmation_review),
    ("batch", batch),
    ("digest", digest),
    ("alerts", alerts),
];

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/mails")
}

/// The mail as its snapshot keeps it: the subject, then the body.
fn snapshot_text(r: &Rendered, body: &str) -> String {
    format!("Subject: {}\n\n{body}", r.subject)
}

#[test]
fn every_mail_in_every_language_matches_its_reviewed_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let dir = snapshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut differ = Vec::new();
    for lang in Language::ALL {
        for (name, make) in MAILS {
            let r = make(lang);
            for (ext, body) in [("txt", &r.text), ("html", &r.html)] {
                let path = dir.join(format!("{name}.{}.{ext}.snap", lang.code()));
                let got = snapshot_text(&r, body);
                if update {
                    std::fs::write(&path, &got).unwrap();
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(want) if want == got => {}
                    _ => differ.push(path.display().to_string()),
                }
            }
        }
    }
    assert!(
        differ.is_empty(),
        "these renderings differ from their snapshots (UPDATE_SNAPSHOTS=1 to review): {differ:#?}"
    );
}

/// The text a person reads: the text part, and the HTML part without its tags.
fn readable(r: &Rendered) -> String {
    let mut html = String::new();
    let mut in_tag = false;
    for c in r.html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                html.push(' ');
            }
            c if !in_tag => html.push(c),
            _ => {}
        }
    }
    format!("{}\n{}\n{}", r.subject, r.text, html.replace("&#39;", "'").replace("&quot;", "\""))
}

#[test]
fn spanish_mails_carry_no_english_and_english_mails_no_spanish() {
    const ENGLISH: &[&str] = &[
        " the ",
        "fails",
        "were dropped",
        "Confidence",
        "Reason",
        "Please",
        "Subject",
        "Sender",
        "message",
        "no subject",
        "not kept",
        "Authentication-Results",
    ];
    const SPANISH: &[&str] =
        &[" el ", "Confianza", "registrada", "por favor", "sin asunto", "Motivo", "Remitente", "Asunto", "Origen"];
    for (name, make) in MAILS {
        let es = readable(&make(Language::Es));
        for w in ENGLISH {
            assert!(!es.contains(w), "the Spanish {name} says {w:?}:\n{es}");
        }
        let en = readable(&make(Language::En));
        for w in SPANISH {
            assert!(!en.contains(w), "the English {name} says {w:?}:\n{en}");
        }
    }
}

#[test]
fn no_mail_shows_a_raw_key_or_a_percentage() {
    const RAW: &[&str] = &[
        "amount_due",
        "total_amount",
        "pdf_text",
        "customer.name",
        "iban_checksum",
        "totals_add_up",
        "unreadable",
        "no_invoice_found",
        "%\n",
        "80%",
        "{",
        "}",
    ];
    for lang in Language::ALL {
        for (name, make) in MAILS {
            let r = make(lang);
            let text = format!("{}\n{}", r.subject, r.text);
            for raw in RAW {
                assert!(!text.contains(raw), "the {lang:?} {name} shows {raw:?}:\n{text}");
            }
        }
    }
}

#[test]
fn the_confirmation_lists_what_the_accountants_book_by() {
    let r = confirmation(Language::Es);
    for want in [
        "[ALERTA] Factura registrada: Suministros Norte S.L. nº 2025-0042 — 1.430,00 EUR",
        "Fecha de emisión",
        "15/10/2025",
        "Vencimiento",
        "14/11/2025",
        "Recibida",
        "16/10/2025",
        "Cliente",
        "Facturas Ejemplo S.L. (NIF B87654321)",
        "ES91 2100 0418 4502 0005 1332",
        "Base imponible al 21 %",
        "Base imponible al 10 %",
        "IVA al 21 %",
        "IVA al 10 %",
        "Retención IRPF",
        "-150,00 EUR",
        "A pagar",
        "1.280,00 EUR",
        "seguro",
        "Referencia: mensaje 3, factura 9",
    ] {
        assert!(readable(&r).contains(want), "{want:?} missing:\n{}", r.text);
    }
    // The alert comes before the table.
    assert!(r.text.find("ALERTA:").unwrap() < r.text.find("Base imponible").unwrap(), "{}", r.text);
    assert!(r.html.contains("<table"), "a real table");
    let review = confirmation_review(Language::Es);
    assert!(review.subject.starts_with("[REVISAR] "), "{}", review.subject);
    assert!(review.text.contains("revisar"), "{}", review.text);
    assert!(!review.text.contains("50%") && !review.text.contains("0.5"), "{}", review.text);
}

#[test]
fn values_from_a_document_are_shown_never_interpreted() {
    let mut e = good_invoice();
    e.supplier.as_mut().unwrap().name = Some("Norte <img src=x onerror=alert(1)> & \"Hijos\"".into());
    e.invoice_number = Some("<script>alert(1)</script>".into());
    let r = render::render_confirmation(&Confirmation {
        language: Language::Es,
        extraction: &e,
        filename: "<b>f</b>.pdf",
        sender: "a@b.test",
        subject: "<i>x</i>",
        message_id: None,
        message_ref: 1,
        invoice_ref: 2,
        alerts: &[],
        received: None,
        min_confidence: 0.6,
        attached: true,
    })
    .unwrap();
    for raw in ["<img", "<script", "<b>f", "<i>x"] {
        assert!(!r.html.contains(raw), "{raw} reached the HTML: {}", r.html);
    }
    assert!(r.html.contains("Norte &lt;img src=x onerror=alert(1)&gt; &amp; &quot;Hijos&quot;"), "{}", r.html);
    assert!(r.text.contains("Norte <img src=x onerror=alert(1)> & \"Hijos\""), "the text part shows it as it is");
}

#[test]
fn an_english_mail_without_a_subject_is_answered_in_english() {
    assert_eq!(reply_failures(Language::En).subject, "Re: (no subject)");
    assert_eq!(reply_failures(Language::De).subject, "Re: (kein Betreff)");
}

/// Headless Chromium, as `scripts/deps` installs it.
fn chromium() -> PathBuf {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|name| PathBuf::from("/usr/bin").join(name))
        .find(|p| p.exists());
    found.expect("headless Chromium is needed to look at the mails (scripts/deps installs the chromium package)")
}

/// Render `html` in headless Chromium at `width` pixels and return the screenshot, kept in
/// target/mail-screenshots/`name`.png.
fn screenshot(name: &str, html: &str, width: u32) -> image::RgbaImage {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/mail-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join(format!("{name}.html"));
    let png = dir.join(format!("{name}.png"));
    std::fs::write(&page, html).unwrap();
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={width},1400"),
            &format!("--screenshot={}", png.display()),
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(png.exists(), "Chromium wrote no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    image::open(&png).unwrap().to_rgba8()
}

fn pixels_like(img: &image::RgbaImage, rgb: [u8; 3]) -> usize {
    img.pixels().filter(|p| p.0[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 2)).count()
}

#[test]
fn the_confirmation_and_the_digest_render_in_a_browser_with_their_warnings_highlighted() {
    let shot = screenshot("confirmation.es", &confirmation(Language::Es).html, 800);
    assert_eq!(shot.width(), 800);
    // The fraud alert is a red box, and the card is white on grey.
    assert!(pixels_like(&shot, [0xff, 0xeb, 0xe9]) > 10_000, "no red alert box");
    assert!(pixels_like(&shot, [0xff, 0xff, 0xff]) > 200_000, "no white card");
    let review = screenshot("confirmation_review.es", &confirmation_review(Language::Es).html, 800);
    assert!(pixels_like(&review, [0xff, 0xf8, 0xc5]) > 10_000, "no yellow review box");
    let digest = screenshot("digest.es", &digest(Language::Es).html, 800);
    assert!(pixels_like(&digest, [0xff, 0xf8, 0xc5]) > 10_000, "the invoice to review is not highlighted");
    let batch = screenshot("batch.es", &batch(Language::Es).html, 1000);
    assert!(pixels_like(&batch, [0xff, 0xf8, 0xc5]) > 5_000, "the doubtful invoice of the batch is not highlighted");
    // A phone's width: the tables still fit.
    let narrow = screenshot("confirmation.es.narrow", &confirmation(Language::Es).html, 400);
    assert_eq!(narrow.width(), 400);
    screenshot("reply_failures.de", &reply_failures(Language::De).html, 800);
    screenshot("alerts.en", &alerts(Language::En).html, 800);
}
