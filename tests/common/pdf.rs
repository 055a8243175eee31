//! A deterministic generator of realistic Spanish invoices, rendered to a real text-layer PDF, with their ground
//! truth. No public Spanish invoice with ground truth exists, so tests and the demo make their own.
//!
//! The PDF is written by hand (PDF 1.4, the standard Helvetica fonts in WinAnsiEncoding): every byte is ours, so
//! the same spec always gives the same file, and poppler reads it like any office-suite invoice.

#![allow(dead_code)]

use chrono::NaiveDate;
use rust_decimal::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::fmt::Write;

#[derive(Debug, Clone)]
pub struct Line {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
}

#[derive(Debug, Clone)]
pub struct SampleInvoice {
    pub number: String,
    pub issue_date: NaiveDate,
    pub due_date: Option<NaiveDate>,
    pub supplier_name: String,
    pub supplier_nif: String,
    pub supplier_address: Vec<String>,
    pub customer_name: String,
    pub customer_nif: String,
    pub customer_address: Vec<String>,
    pub lines: Vec<Line>,
    /// IVA rate in percent (21, 10, 4).
    pub iva: Decimal,
    /// IRPF withholding in percent (15 or 7), for professionals' invoices.
    pub irpf: Option<Decimal>,
    pub iban: Option<String>,
    /// A factura rectificativa: the amounts are negative and it names the corrected invoice.
    pub rectifies: Option<String>,
}

/// A Spanish CIF with its control character computed (AEAT rules: letter + 7 digits + control).
pub fn cif(letter: char, digits: &str) -> String {
    let d: Vec<u32> = digits.chars().map(|c| c.to_digit(10).expect("digit")).collect();
    assert_eq!(d.len(), 7);
    let even: u32 = d.iter().skip(1).step_by(2).sum();
    let odd: u32 = d.iter().step_by(2).map(|x| (2 * x) / 10 + (2 * x) % 10).sum();
    let control = (10 - (even + odd) % 10) % 10;
    // Letters P, Q, R, S, N, W (public bodies, foreign entities) take a letter control; the rest a digit.
    if "PQRSNW".contains(letter) {
        format!("{letter}{digits}{}", b"JABCDEFGHI"[control as usize] as char)
    } else {
        format!("{letter}{digits}{control}")
    }
}

/// A Spanish NIF (DNI number + letter, mod 23).
pub fn nif(number: u32) -> String {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    format!("{number:08}{}", LETTERS[(number % 23) as usize] as char)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

impl SampleInvoice {
    /// A typical one-page invoice from a Spanish supplier.
    pub fn basic(number: &str) -> SampleInvoice {
        SampleInvoice {
            number: number.to_string(),
            issue_date: NaiveDate::from_ymd_opt(2025, 10, 15).unwrap(),
            due_date: NaiveDate::from_ymd_opt(2025, 11, 14),
            supplier_name: "Suministros Norte S.L.".into(),
            supplier_nif: cif('B', "1234567"),
            supplier_address: vec!["Calle Mayor 12".into(), "28013 Madrid".into()],
            customer_name: "Example Buyer S.L.".into(),
            customer_nif: cif('B', "7654321"),
            customer_address: vec!["Avenida de la Paz 3".into(), "46001 Valencia".into()],
            lines: vec![
                Line {
                    description: "Papel A4 80 g (caja 5 paquetes)".into(),
                    quantity: dec("10"),
                    unit_price: dec("24.50"),
                },
                Line { description: "Tóner impresora láser".into(), quantity: dec("2"), unit_price: dec("89.90") },
                Line { description: "Transporte".into(), quantity: dec("1"), unit_price: dec("15.00") },
            ],
            iva: dec("21"),
            irpf: None,
            iban: Some("ES91 2100 0418 4502 0005 1332".into()),
            rectifies: None,
        }
    }

    /// A professional's invoice with IRPF withheld.
    pub fn with_irpf(number: &str) -> SampleInvoice {
        let mut s = SampleInvoice::basic(number);
        s.supplier_name = "Laura Gómez Ruiz".into();
        s.supplier_nif = nif(51234567);
        s.lines =
            vec![Line {
                description: "Asesoría fiscal octubre".into(), quantity: dec("1"), unit_price: dec("800.00")
            }];
        s.irpf = Some(dec("15"));
        s
    }

    pub fn net(&self) -> Decimal {
        let sign = if self.rectifies.is_some() { Decimal::NEGATIVE_ONE } else { Decimal::ONE };
        (self.lines.iter().map(|l| l.quantity * l.unit_price).sum::<Decimal>() * sign).round_dp(2)
    }
    pub fn tax(&self) -> Decimal {
        (self.net() * self.iva / dec("100")).round_dp(2)
    }
    pub fn withheld(&self) -> Decimal {
        self.irpf.map(|r| (self.net() * r / dec("100")).round_dp(2)).unwrap_or(Decimal::ZERO)
    }
    pub fn total(&self) -> Decimal {
        self.net() + self.tax()
    }
    pub fn due(&self) -> Decimal {
        self.total() - self.withheld()
    }

    /// The ground truth, in the shape of `shared/invoice.schema.json`.
    pub fn expected(&self) -> Value {
        json!({
            "invoice_number": self.number,
            "issue_date": self.issue_date.to_string(),
            "due_date": self.due_date.map(|d| d.to_string()),
            "currency": "EUR",
            "document_type": if self.rectifies.is_some() { "corrected_invoice" } else { "invoice" },
            "supplier": {"name": self.supplier_name, "tax_id": self.supplier_nif, "iban": self.iban},
            "customer": {"name": self.customer_name, "tax_id": self.customer_nif},
            "net_amount": self.net().to_string(),
            "tax_amount": self.tax().to_string(),
            "total_amount": self.total().to_string(),
            "amount_due": self.due().to_string(),
        })
    }

    pub fn render_pdf(&self) -> Vec<u8> {
        let mut p = Page::default();
        let title = if self.rectifies.is_some() { "FACTURA RECTIFICATIVA" } else { "FACTURA" };
        p.text(50.0, 790.0, 20.0, true, &self.supplier_name);
        let mut y = 772.0;
        for l in &self.supplier_address {
            p.text(50.0, y, 10.0, false, l);
            y -= 13.0;
        }
        p.text(50.0, y, 10.0, false, &format!("NIF: {}", self.supplier_nif));
        p.text(400.0, 790.0, 18.0, true, title);
        p.text(400.0, 768.0, 10.0, false, &format!("Factura nº: {}", self.number));
        p.text(400.0, 754.0, 10.0, false, &format!("Fecha de expedición: {}", self.issue_date.format("%d/%m/%Y")));
        if let Some(d) = self.due_date {
            p.text(400.0, 740.0, 10.0, false, &format!("Vencimiento: {}", d.format("%d/%m/%Y")));
        }
        if let Some(r) = &self.rectifies {
            p.text(400.0, 726.0, 10.0, false, &format!("Rectifica a la factura: {r}"));
        }
        p.text(50.0, 690.0, 11.0, true, "Cliente");
        p.text(50.0, 676.0, 10.0, false, &self.customer_name);
        let mut y = 663.0;
        for l in &self.customer_address {
            p.text(50.0, y, 10.0, false, l);
            y -= 13.0;
        }
        p.text(50.0, y, 10.0, false, &format!("CIF: {}", self.customer_nif));

        let mut y = 590.0;
        p.text(50.0, y, 10.0, true, "Descripción");
        p.text(330.0, y, 10.0, true, "Cantidad");
        p.text(400.0, y, 10.0, true, "Precio");
        p.text(480.0, y, 10.0, true, "Importe");
        y -= 18.0;
        let sign = if self.rectifies.is_some() { Decimal::NEGATIVE_ONE } else { Decimal::ONE };
        for l in &self.lines {
            p.text(50.0, y, 10.0, false, &l.description);
            p.text(345.0, y, 10.0, false, &l.quantity.normalize().to_string());
            p.text(400.0, y, 10.0, false, &eur(l.unit_price));
            p.text(480.0, y, 10.0, false, &eur((l.quantity * l.unit_price * sign).round_dp(2)));
            y -= 15.0;
        }
        y -= 20.0;
        let mut row = |label: &str, amount: Decimal, bold: bool| {
            p.text(330.0, y, 10.0, bold, label);
            p.text(480.0, y, 10.0, bold, &eur(amount));
            y -= 15.0;
        };
        row("Base imponible", self.net(), false);
        row(&format!("IVA {}%", self.iva.normalize()), self.tax(), false);
        if let Some(r) = self.irpf {
            row(&format!("Retención IRPF {}%", r.normalize()), -self.withheld(), false);
        }
        row("Total factura", self.total(), true);
        if self.irpf.is_some() {
            row("Total a pagar", self.due(), true);
        }
        if let Some(iban) = &self.iban {
            p.text(50.0, 120.0, 10.0, false, "Forma de pago: transferencia bancaria");
            p.text(50.0, 106.0, 10.0, false, &format!("IBAN: {iban}"));
        }
        p.text(
            50.0,
            60.0,
            8.0,
            false,
            &format!("{} - Inscrita en el Registro Mercantil de Madrid", self.supplier_name),
        );
        pdf(&[p])
    }
}

/// `1.234,56 €`, the way Spanish invoices print money.
pub fn eur(d: Decimal) -> String {
    let s = format!("{:.2}", d.round_dp(2));
    let (neg, s) = s.strip_prefix('-').map(|r| (true, r)).unwrap_or((false, s.as_str()));
    let (int, frac) = s.split_once('.').unwrap_or((s, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{}{grouped},{frac} €", if neg { "-" } else { "" })
}

#[derive(Default)]
pub struct Page {
    ops: String,
}

impl Page {
    pub fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str) {
        let font = if bold { "F2" } else { "F1" };
        let _ = writeln!(self.ops, "BT /{font} {size} Tf {x} {y} Td ({}) Tj ET", escape(s));
    }
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let b = winansi(c);
        match b {
            b'(' | b')' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// WinAnsiEncoding: Latin-1 for 0xA0–0xFF, plus the euro sign at 0x80.
fn winansi(c: char) -> u8 {
    match c {
        '€' => 0x80,
        c if (c as u32) < 0x100 => c as u8,
        _ => b'?',
    }
}

/// Assemble pages into a PDF 1.4 file with a correct cross-reference table.
pub fn pdf(pages: &[Page]) -> Vec<u8> {
    let mut objects: Vec<String> = Vec::new();
    let n = pages.len();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 5 + 2 * i)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into());
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".into());
    for (i, page) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {} 0 R >>",
            6 + 2 * i
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{}endstream", page.ops.len(), page.ops));
    }
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(encode_latin1(o));
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

/// Content streams are ASCII already (non-ASCII is octal-escaped); this keeps any stray char one byte wide.
fn encode_latin1(s: &str) -> Vec<u8> {
    s.chars().map(winansi).collect()
}
