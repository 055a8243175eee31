//! A deterministic generator of realistic Spanish invoices, rendered to a real text-layer PDF, with their ground
//! truth. No public Spanish invoice with ground truth exists, so tests, the demo and `examples/gen_spanish` make
//! their own.
//!
//! The PDF is written by hand (PDF 1.4, the standard 14 fonts in WinAnsiEncoding): every byte is ours, so the
//! same spec always gives the same file, and poppler reads it like any office-suite invoice. What varies, all of
//! it drawn from a seed (`SampleInvoice::generate`):
//! - four layouts (`Layout`): title right of the letterhead, letterhead on the right, side-by-side boxed
//!   `EMISOR` / `CLIENTE` with the header as a table, and a ruled table-heavy one with a tax breakdown;
//! - three fonts (Helvetica, Times-Roman, Courier), date notations, label wordings, number formats;
//! - IVA 21/10/4 and mixed rates on one invoice, IRPF 15% and 7%, facturas rectificativas (negative amounts,
//!   `Rectifica a la factura …`), several pages (lines overflow, totals on the last page);
//! - invoices that lack a due date, an IBAN or the customer's NIF (`expected()` lists them under `absent`).
//!
//! Degraded scans (`render_scan`) are made the same way: the page is drawn rotated a few degrees on grainy
//! paper with specks, then rasterised by poppler's `pdftoppm` at 150–300 dpi to PNG or to JPEG at a chosen
//! quality. No image library is needed, and the result is the same for the same seed.

#![allow(dead_code)]

#[path = "ttf.rs"]
pub mod ttf;

use chrono::{Datelike, NaiveDate};
use rust_decimal::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::fmt::Write;

#[derive(Debug, Clone)]
pub struct Line {
    pub description: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    /// This line's IVA rate when it differs from the invoice's (mixed rates: food at 10%, books at 4%).
    pub iva: Option<Decimal>,
}

/// Where things sit on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Letterhead top left, `FACTURA` and its number top right, customer under the letterhead.
    Classic,
    /// Letterhead top right, title and a small number/date block top left, `Facturar a` box.
    HeaderRight,
    /// `EMISOR` and `CLIENTE` side by side in boxes; number, date and due date as a table (labels above values).
    Boxes,
    /// Ruled tables everywhere: header grid, item grid, a tax breakdown per rate and a totals grid.
    Table,
}

/// The fonts the generator uses (regular and bold of each), embedded in every PDF (`ttf.rs`): Liberation Sans,
/// Serif and Mono stand in for Helvetica, Times and Courier with the same metrics; `Receipt` is DejaVu Sans Mono,
/// a till printer's face that also has `₹`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    Helvetica,
    Times,
    Courier,
    Receipt,
}

impl Font {
    fn faces(self) -> (ttf::FaceId, ttf::FaceId) {
        use ttf::FaceId::*;
        match self {
            Font::Helvetica => (Sans, SansBold),
            Font::Times => (Serif, SerifBold),
            Font::Courier => (Mono, MonoBold),
            Font::Receipt => (ReceiptMono, ReceiptMonoBold),
        }
    }

    fn face(self, bold: bool) -> &'static ttf::Face {
        let (regular, heavy) = self.faces();
        ttf::face(if bold { heavy } else { regular })
    }

    /// Advance width of a char in 1/1000 em, from the embedded font's metrics.
    fn width(self, bold: bool, c: char) -> f32 {
        self.face(bold).width(c)
    }

    pub fn text_width(self, bold: bool, size: f32, s: &str) -> f32 {
        s.chars().map(|c| self.width(bold, c)).sum::<f32>() * size / 1000.0
    }
}

/// How dates are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// `15/10/2025`
    Slash,
    /// `15-10-2025`
    Dash,
    /// `15.10.2025`
    Dot,
    /// `15 de octubre de 2025`
    Long,
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
    /// IVA rate in percent (21, 10, 4) of every line without its own.
    pub iva: Decimal,
    /// IRPF withholding in percent (15 or 7), for professionals' invoices.
    pub irpf: Option<Decimal>,
    pub iban: Option<String>,
    /// A factura rectificativa: the amounts are negative and it names the corrected invoice.
    pub rectifies: Option<String>,
    pub layout: Layout,
    pub font: Font,
    pub date_style: DateStyle,
    /// Which wording of the labels (`Factura nº` / `Nº de factura` / `Número de factura` …), 0..3.
    pub wording: usize,
    /// Amounts printed `1.234,56 €` (true) or bare `1.234,56` in columns headed `(EUR)`.
    pub euro_sign: bool,
    /// False for an invoice to a private person or an older template that leaves the customer's NIF out.
    pub customer_nif_printed: bool,
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

/// A Spanish NIE (X/Y/Z + 7 digits + letter; the prefix counts as 0/1/2 in the mod-23 check).
pub fn nie(prefix: char, number: u32) -> String {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let lead = "XYZ".find(prefix).expect("X, Y or Z") as u32;
    let n = lead * 10_000_000 + number % 10_000_000;
    format!("{prefix}{:07}{}", number % 10_000_000, LETTERS[(n % 23) as usize] as char)
}

/// A Spanish IBAN from the 20 digits of the account (check digits by ISO 13616 mod 97), grouped by four.
pub fn iban_es(account: &str) -> String {
    assert_eq!(account.len(), 20);
    let rearranged = format!("{account}142800"); // E=14, S=28, then "00"
    let rem = rearranged.bytes().fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 97);
    let raw = format!("ES{:02}{account}", 98 - rem);
    raw.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

/// An invoice number in one of the shapes Spanish software prints (`F2025-0042`, `2025/117`, `A-1234`,
/// `FV25/000123`); rectificativas get their own series (`R-2025-007`, `RECT25/0003`).
fn invoice_number(r: &mut Rng, issue: NaiveDate, rectificativa: bool) -> String {
    let y = issue.year();
    let n = r.range(1, 2400);
    if rectificativa {
        return match r.below(3) {
            0 => format!("R-{y}-{n:03}"),
            1 => format!("RECT{:02}/{n:04}", y % 100),
            _ => format!("FR{y}{n:05}"),
        };
    }
    match r.below(5) {
        0 => format!("F{y}-{n:04}"),
        1 => format!("{y}/{n}"),
        2 => format!("A-{n:04}"),
        3 => format!("FV{:02}/{n:06}", y % 100),
        _ => format!("{y}-{n:04}"),
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same invoices on every machine and
/// with every version of the `rand` crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Uniform in `[lo, hi)`.
    pub fn float(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

const COMPANIES: &[&str] = &[
    "Suministros Norte S.L.",
    "Distribuciones Levante S.A.",
    "Talleres Gómez e Hijos S.L.",
    "Papelería Central S.L.U.",
    "Construcciones Ebro S.A.",
    "Informática Alhambra S.L.",
    "Limpiezas Brillo S.L.",
    "Transportes Cantábrico S.A.",
    "Frutas Huerta Valenciana S.Coop.",
    "Gráficas Ñandú S.L.",
    "Electricidad Rayo S.L.",
    "Hostelería Sol y Mar S.L.",
    "Ferretería La Llave S.A.",
    "Consultores Ibéricos S.L.",
    "Reformas Castilla S.L.",
    "Mobiliario de Oficina Tajo S.A.",
];
const PROFESSIONALS: &[&str] = &[
    "Laura Gómez Ruiz",
    "Javier Martín Ortega",
    "Carmen Núñez Delgado",
    "Andrés Peña Lozano",
    "María José Fernández Gil",
    "Pablo Ibáñez Serrano",
];
const CUSTOMERS: &[&str] = &[
    "Example Buyer S.L.",
    "Hotel Miramar S.A.",
    "Clínica Dental Sonrisa S.L.",
    "Ayuntamiento de Villanueva",
    "Academia Cervantes S.L.",
    "Restaurante El Fogón S.L.",
    "Bodegas Ribera Alta S.A.",
    "Asesoría Núñez y Asociados S.L.",
    "Colegio San José S.Coop.",
    "Autoescuela Rápida S.L.",
];
const STREETS: &[&str] = &[
    "Calle Mayor",
    "Avenida de la Paz",
    "Calle Alcalá",
    "Paseo de Gracia",
    "Calle San Vicente",
    "Avda. Constitución",
    "Plaza de España",
    "Calle Real",
    "Ronda de Valencia",
    "Polígono Industrial Las Rozas, nave",
];
const TOWNS: &[(&str, &str)] = &[
    ("28013", "Madrid"),
    ("08007", "Barcelona"),
    ("46001", "Valencia"),
    ("41004", "Sevilla"),
    ("50001", "Zaragoza"),
    ("48001", "Bilbao"),
    ("29015", "Málaga"),
    ("15003", "A Coruña"),
    ("30001", "Murcia"),
    ("47001", "Valladolid"),
];
/// Items with a typical unit price and whether they go at a reduced IVA rate (10% food and hospitality, 4%
/// books and basic food).
const ITEMS: &[(&str, &str, u8)] = &[
    ("Papel A4 80 g (caja 5 paquetes)", "24.50", 21),
    ("Tóner impresora láser", "89.90", 21),
    ("Transporte", "15.00", 21),
    ("Mantenimiento mensual equipos", "120.00", 21),
    ("Horas de consultoría", "65.00", 21),
    ("Licencia software anual", "349.00", 21),
    ("Instalación eléctrica (mano de obra)", "42.00", 21),
    ("Cable 2,5 mm² (rollo 100 m)", "57.80", 21),
    ("Servicio de limpieza oficinas", "310.00", 21),
    ("Silla ergonómica", "189.95", 21),
    ("Menú del día (comida de empresa)", "14.50", 10),
    ("Aceite de oliva virgen extra 5 l", "32.40", 10),
    ("Fruta variada (kg)", "2.35", 10),
    ("Alojamiento habitación doble", "95.00", 10),
    ("Libro técnico contabilidad", "38.00", 4),
    ("Pan y leche (suministro semanal)", "18.20", 4),
    ("Revista profesional suscripción", "45.00", 4),
    ("Reparación de maquinaria", "210.00", 21),
    ("Desplazamiento técnico", "30.00", 21),
    ("Diseño gráfico folleto", "450.00", 21),
];
const PROFESSIONAL_ITEMS: &[(&str, &str)] = &[
    ("Asesoría fiscal trimestral", "800.00"),
    ("Honorarios proyecto de reforma", "1250.00"),
    ("Traducción jurada (página)", "35.00"),
    ("Sesiones de formación", "180.00"),
    ("Informe pericial", "960.00"),
    ("Dirección de obra", "1500.00"),
];
const MONTHS_ES: &[&str] = &[
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];

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
                    iva: None,
                },
                Line {
                    description: "Tóner impresora láser".into(),
                    quantity: dec("2"),
                    unit_price: dec("89.90"),
                    iva: None,
                },
                Line { description: "Transporte".into(), quantity: dec("1"), unit_price: dec("15.00"), iva: None },
            ],
            iva: dec("21"),
            irpf: None,
            iban: Some("ES91 2100 0418 4502 0005 1332".into()),
            rectifies: None,
            layout: Layout::Classic,
            font: Font::Helvetica,
            date_style: DateStyle::Slash,
            wording: 0,
            euro_sign: true,
            customer_nif_printed: true,
        }
    }

    /// A professional's invoice with IRPF withheld.
    pub fn with_irpf(number: &str) -> SampleInvoice {
        let mut s = SampleInvoice::basic(number);
        s.supplier_name = "Laura Gómez Ruiz".into();
        s.supplier_nif = nif(51234567);
        s.lines = vec![Line {
            description: "Asesoría fiscal octubre".into(),
            quantity: dec("1"),
            unit_price: dec("800.00"),
            iva: None,
        }];
        s.irpf = Some(dec("15"));
        s
    }

    /// Invoice `index` of the set drawn from `seed`. Layouts, fonts and the features that matter cycle with the
    /// index, so any dozen consecutive invoices cover every layout and font, IRPF, mixed rates, a rectificativa,
    /// a multi-page invoice and each missing field; the rest (names, items, numbers, dates) comes from the seed.
    pub fn generate(seed: u64, index: usize) -> SampleInvoice {
        let mut r = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
        let i = index;
        let layout = [Layout::Classic, Layout::HeaderRight, Layout::Boxes, Layout::Table][i % 4];
        let font = [Font::Helvetica, Font::Times, Font::Courier][(i / 4 + i) % 3];
        let professional = i % 3 == 1;
        let rectificativa = i % 5 == 3;
        let mixed = !professional && i % 3 == 2;
        let many_lines = i % 6 == 5;
        let missing = i % 4; // 0: nothing missing; 1: no due date; 2: no IBAN; 3: no customer NIF (some)
        let date_style = [DateStyle::Slash, DateStyle::Dash, DateStyle::Dot, DateStyle::Long][(i / 2) % 4];

        let year = *r.pick(&[2024, 2025, 2026]);
        let issue_date = NaiveDate::from_ymd_opt(year, r.range(1, 12) as u32, r.range(1, 28) as u32).unwrap();
        let due_date = (missing != 1).then(|| issue_date + chrono::Duration::days(*r.pick(&[15, 30, 45, 60])));

        let (supplier_name, supplier_nif) = if professional {
            let id = if r.chance(25) {
                nie(*r.pick(&['X', 'Y', 'Z']), r.range(1_000_000, 9_999_999) as u32)
            } else {
                nif(r.range(10_000_000, 79_999_999) as u32)
            };
            (r.pick(PROFESSIONALS).to_string(), id)
        } else {
            let letter = *r.pick(&['A', 'B', 'B', 'B', 'F']);
            (r.pick(COMPANIES).to_string(), cif(letter, &format!("{:07}", r.range(1_000_000, 9_999_999))))
        };
        let mut customer_name = r.pick(CUSTOMERS).to_string();
        while customer_name == supplier_name {
            customer_name = r.pick(CUSTOMERS).to_string();
        }
        let customer_nif = if customer_name.starts_with("Ayuntamiento") {
            cif('P', &format!("{:07}", r.range(1_000_000, 9_999_999)))
        } else {
            let letter = *r.pick(&['A', 'B', 'B', 'F']);
            cif(letter, &format!("{:07}", r.range(1_000_000, 9_999_999)))
        };
        let address = |r: &mut Rng| {
            let (cp, town) = *r.pick(TOWNS);
            vec![format!("{} {}", r.pick(STREETS), r.range(1, 140)), format!("{cp} {town}")]
        };
        let supplier_address = address(&mut r);
        let customer_address = address(&mut r);

        let iva = if professional {
            dec("21")
        } else {
            {
                let rate: &&str = r.pick(&["21", "21", "21", "10", "4"]);
                dec(rate)
            }
        };
        let n_lines = if many_lines { r.range(38, 55) as usize } else { r.range(1, 7) as usize };
        let mut lines = Vec::new();
        for k in 0..n_lines {
            let (description, price, rate) = if professional {
                let (d, p) = *r.pick(PROFESSIONAL_ITEMS);
                (d.to_string(), dec(p), None)
            } else if mixed {
                let (d, p, rate) = ITEMS[(r.below(ITEMS.len() as u64) as usize + k * 7) % ITEMS.len()];
                (d.to_string(), dec(p), Some(Decimal::from(rate)))
            } else {
                let (d, p, _) = *r.pick(ITEMS);
                (d.to_string(), dec(p), None)
            };
            // Prices drift a little from the list so that amounts are not all round.
            let cents = Decimal::new(r.range(-150, 150), 2);
            let unit_price = (price + cents).max(dec("0.50"));
            let quantity =
                if r.chance(20) { Decimal::new(r.range(5, 120), 1).normalize() } else { Decimal::from(r.range(1, 25)) };
            lines.push(Line { description, quantity, unit_price, iva: rate });
        }
        // Mixed rates really are mixed: make sure at least two rates appear.
        if mixed && lines.len() >= 2 {
            let rates: Vec<Decimal> = lines.iter().filter_map(|l| l.iva).collect();
            if rates.iter().all(|x| *x == rates[0]) {
                let other = if rates[0] == dec("21") { dec("10") } else { dec("21") };
                lines[0].iva = Some(other);
            }
        } else if mixed {
            lines.push(Line {
                description: "Libro técnico contabilidad".into(),
                quantity: Decimal::ONE,
                unit_price: dec("38.00"),
                iva: Some(dec("4")),
            });
        }

        let number = invoice_number(&mut r, issue_date, rectificativa);
        let rectifies = rectificativa.then(|| {
            let mut original = invoice_number(&mut r, issue_date, false);
            if original == number {
                original.push('1');
            }
            original
        });
        let iban = (missing != 2).then(|| {
            let digits: String = (0..20).map(|_| char::from(b'0' + r.below(10) as u8)).collect();
            iban_es(&digits)
        });
        SampleInvoice {
            number,
            issue_date,
            due_date,
            supplier_name,
            supplier_nif,
            supplier_address,
            customer_name,
            customer_nif,
            customer_address,
            lines,
            iva,
            irpf: professional.then(|| {
                let rate: &&str = r.pick(&["15", "15", "7"]);
                dec(rate)
            }),
            iban,
            rectifies,
            layout,
            font,
            date_style,
            wording: r.below(3) as usize,
            euro_sign: r.chance(70),
            customer_nif_printed: missing != 3,
        }
    }

    fn sign(&self) -> Decimal {
        if self.rectifies.is_some() {
            Decimal::NEGATIVE_ONE
        } else {
            Decimal::ONE
        }
    }

    /// A line's amount as printed (negative on a rectificativa).
    pub fn line_amount(&self, l: &Line) -> Decimal {
        (l.quantity * l.unit_price * self.sign()).round_dp(2)
    }

    /// The taxable base per IVA rate, highest rate first; the quota of each is rounded on its own, as the
    /// Reglamento de facturación (RD 1619/2012 art. 6) prints it.
    pub fn bases(&self) -> Vec<(Decimal, Decimal, Decimal)> {
        let mut by_rate: Vec<(Decimal, Decimal)> = Vec::new();
        for l in &self.lines {
            let rate = l.iva.unwrap_or(self.iva);
            let amount = self.line_amount(l);
            match by_rate.iter_mut().find(|(r, _)| *r == rate) {
                Some(e) => e.1 += amount,
                None => by_rate.push((rate, amount)),
            }
        }
        by_rate.sort_by_key(|b| std::cmp::Reverse(b.0));
        by_rate.into_iter().map(|(rate, base)| (rate, base, (base * rate / dec("100")).round_dp(2))).collect()
    }

    pub fn net(&self) -> Decimal {
        self.lines.iter().map(|l| self.line_amount(l)).sum::<Decimal>().round_dp(2)
    }
    pub fn tax(&self) -> Decimal {
        self.bases().iter().map(|(_, _, q)| *q).sum()
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

    /// The ground truth, in the shape of `schema/invoice.schema.json`. Fields the page does not show are null
    /// and named under `absent` (not a schema field: `eval` ignores it, the no-invention test reads it).
    pub fn expected(&self) -> Value {
        let customer_tax = self.customer_nif_printed.then(|| self.customer_nif.clone());
        let mut absent = Vec::new();
        if self.due_date.is_none() {
            absent.push("due_date");
        }
        if self.iban.is_none() {
            absent.push("supplier.iban");
        }
        if customer_tax.is_none() {
            absent.push("customer.tax_id");
        }
        json!({
            "invoice_number": self.number,
            "issue_date": self.issue_date.to_string(),
            "due_date": self.due_date.map(|d| d.to_string()),
            "currency": "EUR",
            "document_type": if self.rectifies.is_some() { "corrected_invoice" } else { "invoice" },
            "supplier": {"name": self.supplier_name, "tax_id": self.supplier_nif, "iban": self.iban},
            "customer": {"name": self.customer_name, "tax_id": customer_tax},
            "net_amount": self.net().to_string(),
            "tax_amount": self.tax().to_string(),
            "total_amount": self.total().to_string(),
            "amount_due": self.due().to_string(),
            "absent": absent,
        })
    }

    /// Pages the invoice takes (the items overflow onto more pages; the totals are on the last).
    pub fn page_count(&self) -> usize {
        self.render_pages().len()
    }

    pub fn render_pdf(&self) -> Vec<u8> {
        pdf(&self.render_pages(), self.font, None)
    }

    /// A Factur-X (CII, MINIMUM profile) XML with this invoice's number, date, parties and amounts, except that
    /// `total` is written as its grand total and amount due: pass `self.total()` for an XML that agrees with
    /// the page, anything else for one that does not.
    pub fn factur_x_xml(&self, total: Decimal) -> String {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:factur-x.eu:1p0:minimum</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{number}</ram:ID>
    <ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">{date}</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty>
        <ram:Name>{supplier}</ram:Name>
        <ram:PostalTradeAddress><ram:CountryID>ES</ram:CountryID></ram:PostalTradeAddress>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">ES{supplier_nif}</ram:ID></ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>{customer}</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeDelivery/>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:TaxBasisTotalAmount>{net}</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">{tax}</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>{total}</ram:GrandTotalAmount>
        <ram:DuePayableAmount>{total}</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"#,
            number = esc(&self.number),
            date = self.issue_date.format("%Y%m%d"),
            supplier = esc(&self.supplier_name),
            supplier_nif = self.supplier_nif,
            customer = esc(&self.customer_name),
            net = self.net(),
            tax = self.tax(),
        )
    }

    /// The invoice as a Factur-X PDF: its pages, with `xml` embedded as `factur-x.xml` in /EmbeddedFiles and
    /// /AF, where Factur-X readers look for it.
    pub fn render_pdf_with_xml(&self, xml: &str) -> Vec<u8> {
        pdf_with_attachment(&self.render_pages(), self.font, Some(("factur-x.xml", xml.as_bytes())))
    }

    /// The invoice with the QR codes `payloads` at the foot of its last page, side by side from the right, and
    /// `caption` under them: as one embedded image (one code) or drawn module by module in vector graphics.
    pub fn render_pdf_with_qr(&self, payloads: &[&str], caption: &str, drawing: QrDrawing) -> Vec<u8> {
        let (pages, overlay) = self.pages_with_qr(payloads, caption, drawing);
        pdf(&pages, self.font, overlay.as_ref())
    }

    /// The invoice with its codes (drawn in vector graphics) scanned: to an image-only PDF, one JPEG per page,
    /// as a scanner's "scan to PDF" makes it, when `to_pdf`; else to one PNG or JPEG (`opts.jpeg`), as a phone
    /// sends it. Needs poppler's `pdftoppm`.
    pub fn render_scan_with_qr(
        &self,
        payloads: &[&str],
        caption: &str,
        opts: &ScanOptions,
        to_pdf: bool,
    ) -> std::io::Result<Vec<u8>> {
        let (pages, _) = self.pages_with_qr(payloads, caption, QrDrawing::Vector);
        scan(&pages, self.font, A4, opts, to_pdf)
    }

    /// The invoice's pages with the codes on the last one; the image they are drawn from, if `drawing` embeds one.
    fn pages_with_qr(&self, payloads: &[&str], caption: &str, drawing: QrDrawing) -> (Vec<Page>, Option<Overlay>) {
        const SIDE: f32 = 110.0;
        let mut pages = self.render_pages();
        let last = pages.last_mut().expect("an invoice has a page");
        let f = self.font;
        last.text(f, 300.0, 50.0, 7.0, false, caption);
        let mut overlay = None;
        for (k, payload) in payloads.iter().enumerate() {
            let code = qrcode::QrCode::new(payload.as_bytes()).expect("the payload fits a QR code");
            let n = code.width();
            let dark: Vec<bool> = code.to_colors().iter().map(|c| *c == qrcode::Color::Dark).collect();
            let (x0, y0) = (440.0 - k as f32 * (SIDE + 20.0), 60.0);
            match drawing {
                QrDrawing::Image => {
                    assert_eq!(payloads.len(), 1, "one embedded image per page");
                    // Four pixels a module and a quiet zone of four modules (ISO/IEC 18004 §6.3.8).
                    let (scale, quiet) = (4, 4);
                    let side = (n + 2 * quiet) * scale;
                    let mut data = vec![255u8; side * side];
                    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
                        let (mx, my) = (i % n + quiet, i / n + quiet);
                        for y in my * scale..(my + 1) * scale {
                            data[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
                        }
                    }
                    overlay = Some(Overlay { width: side as u32, height: side as u32, data });
                    let _ = writeln!(last.ops, "q {SIDE} 0 0 {SIDE} {x0} {y0} cm /Im1 Do Q");
                }
                QrDrawing::Vector => {
                    let m = SIDE / (n + 8) as f32;
                    let _ = writeln!(last.ops, "q 0 g");
                    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
                        let (mx, my) = ((i % n + 4) as f32, (i / n + 4) as f32);
                        let _ = writeln!(last.ops, "{} {} {m} {m} re f", x0 + mx * m, y0 + SIDE - (my + 1.0) * m);
                    }
                    let _ = writeln!(last.ops, "Q");
                }
            }
        }
        (pages, overlay)
    }

    fn render_pages(&self) -> Vec<Page> {
        let mut d = Doc::new(self.font);
        match self.layout {
            Layout::Classic => self.classic(&mut d),
            Layout::HeaderRight => self.header_right(&mut d),
            Layout::Boxes => self.boxes(&mut d),
            Layout::Table => self.table(&mut d),
        }
        d.finish(self)
    }

    fn date(&self, d: NaiveDate) -> String {
        match self.date_style {
            DateStyle::Slash => d.format("%d/%m/%Y").to_string(),
            DateStyle::Dash => d.format("%d-%m-%Y").to_string(),
            DateStyle::Dot => d.format("%d.%m.%Y").to_string(),
            DateStyle::Long => format!("{} de {} de {}", d.day(), MONTHS_ES[d.month0() as usize], d.year()),
        }
    }

    fn money(&self, d: Decimal) -> String {
        if self.euro_sign {
            eur(d)
        } else {
            eur(d).trim_end_matches(" €").to_string()
        }
    }

    fn title(&self) -> &'static str {
        if self.rectifies.is_some() {
            "FACTURA RECTIFICATIVA"
        } else {
            "FACTURA"
        }
    }

    fn number_label(&self) -> &'static str {
        ["Factura nº:", "Nº de factura:", "Número de factura:"][self.wording % 3]
    }
    fn date_label(&self) -> &'static str {
        ["Fecha de expedición:", "Fecha factura:", "Fecha:"][self.wording % 3]
    }
    fn due_label(&self) -> &'static str {
        ["Vencimiento:", "Fecha de vencimiento:", "Vencimiento:"][self.wording % 3]
    }
    fn total_label(&self) -> &'static str {
        ["Total factura", "TOTAL FACTURA", "Importe total"][self.wording % 3]
    }
    fn due_amount_label(&self) -> &'static str {
        ["Total a pagar", "Líquido a pagar", "TOTAL A PAGAR"][self.wording % 3]
    }
    fn tax_id_label(&self) -> &'static str {
        ["NIF:", "CIF:", "N.I.F.:"][self.wording % 3]
    }

    /// `Retención IRPF 15%` as a row label.
    fn irpf_label(&self) -> Option<String> {
        self.irpf.map(|r| format!("Retención IRPF {}%", r.normalize()))
    }

    /// `IVA 21%` rows of the totals, one per rate.
    fn iva_rows(&self) -> Vec<(String, Decimal, Decimal)> {
        self.bases()
            .into_iter()
            .map(|(rate, base, quota)| (format!("IVA {}%", rate.normalize()), base, quota))
            .collect()
    }

    fn rectifies_line(&self) -> Option<String> {
        self.rectifies.as_ref().map(|r| format!("Rectifica a la factura: {r}"))
    }

    fn footer(&self, p: &mut Page, font: Font) {
        let town = self.supplier_address.last().and_then(|t| t.split_once(' ')).map_or("Madrid", |(_, t)| t);
        let text = if self.irpf.is_some() {
            format!("{} - Actividad profesional sujeta a retención", self.supplier_name)
        } else {
            format!("{} - Inscrita en el Registro Mercantil de {town}", self.supplier_name)
        };
        p.text(font, 50.0, 40.0, 7.0, false, &text);
    }

    /// The original layout (and the one `basic()` keeps): letterhead left, title right, customer below.
    fn classic(&self, d: &mut Doc) {
        let f = self.font;
        let p = d.page();
        p.text(f, 50.0, 790.0, if f == Font::Courier { 14.0 } else { 20.0 }, true, &self.supplier_name);
        let mut y = 772.0;
        for l in &self.supplier_address {
            p.text(f, 50.0, y, 10.0, false, l);
            y -= 13.0;
        }
        p.text(f, 50.0, y, 10.0, false, &format!("NIF: {}", self.supplier_nif));
        let x = if f == Font::Courier { 360.0 } else { 400.0 };
        p.text(f, x, 790.0, if self.rectifies.is_some() { 14.0 } else { 18.0 }, true, self.title());
        p.text(f, x, 768.0, 10.0, false, &format!("{} {}", self.number_label(), self.number));
        p.text(f, x, 754.0, 10.0, false, &format!("{} {}", self.date_label(), self.date(self.issue_date)));
        if let Some(due) = self.due_date {
            p.text(f, x, 740.0, 10.0, false, &format!("{} {}", self.due_label(), self.date(due)));
        }
        if let Some(r) = self.rectifies_line() {
            p.text(f, x, 726.0, 10.0, false, &r);
        }
        p.text(f, 50.0, 690.0, 11.0, true, "Cliente");
        p.text(f, 50.0, 676.0, 10.0, false, &self.customer_name);
        let mut y = 663.0;
        for l in &self.customer_address {
            p.text(f, 50.0, y, 10.0, false, l);
            y -= 13.0;
        }
        if self.customer_nif_printed {
            p.text(f, 50.0, y, 10.0, false, &format!("CIF: {}", self.customer_nif));
        }
        d.y = 590.0;
        self.items(d, &[50.0, 330.0, 400.0, 480.0], false);
        d.y -= 20.0;
        self.totals_rows(d, 330.0, 545.0);
        self.payment(d, 50.0);
    }

    /// Letterhead on the right, title and header block on the left, `Facturar a` box.
    fn header_right(&self, d: &mut Doc) {
        let f = self.font;
        let p = d.page();
        let x = 330.0;
        p.text(f, x, 790.0, 14.0, true, &self.supplier_name);
        let mut y = 775.0;
        for l in &self.supplier_address {
            p.text(f, x, y, 9.0, false, l);
            y -= 12.0;
        }
        p.text(f, x, y, 9.0, false, &format!("{} {}", self.tax_id_label(), self.supplier_nif));
        p.text(f, x, y - 12.0, 9.0, false, "Tel. 91 555 12 34 · info@empresa.es");
        // A long title would run into the letterhead: rectificativas print it smaller.
        p.text(f, 50.0, 790.0, if self.rectifies.is_some() { 15.0 } else { 22.0 }, true, self.title());
        let mut y = 760.0;
        let rows: Vec<(&str, String)> = [
            Some((self.number_label(), self.number.clone())),
            Some((self.date_label(), self.date(self.issue_date))),
            self.due_date.map(|dd| (self.due_label(), self.date(dd))),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (label, value) in rows {
            p.text(f, 50.0, y, 10.0, true, label);
            p.text(f, 165.0, y, 10.0, false, &value);
            y -= 14.0;
        }
        if let Some(r) = self.rectifies_line() {
            p.text(f, 50.0, y, 9.0, false, &r);
            p.text(f, 50.0, y - 12.0, 9.0, false, "Motivo: devolución de mercancía");
        }
        p.rect(48.0, 600.0, 260.0, 80.0, false);
        p.text(f, 56.0, 666.0, 9.0, true, "FACTURAR A:");
        p.text(f, 56.0, 652.0, 10.0, false, &self.customer_name);
        let mut y = 639.0;
        for l in &self.customer_address {
            p.text(f, 56.0, y, 9.0, false, l);
            y -= 12.0;
        }
        if self.customer_nif_printed {
            p.text(f, 56.0, y, 9.0, false, &format!("NIF/CIF: {}", self.customer_nif));
        }
        d.y = 570.0;
        self.items(d, &[50.0, 320.0, 390.0, 470.0], true);
        d.y -= 18.0;
        self.totals_box(d);
        self.payment(d, 50.0);
    }

    /// `EMISOR` / `CLIENTE` boxes side by side; the header as a table with the labels above the values.
    fn boxes(&self, d: &mut Doc) {
        let f = self.font;
        let p = d.page();
        p.text(f, 50.0, 795.0, 20.0, true, self.title());
        for (x, label, name, address, id) in [
            (50.0, "EMISOR", &self.supplier_name, &self.supplier_address, Some(&self.supplier_nif)),
            (
                310.0,
                "CLIENTE",
                &self.customer_name,
                &self.customer_address,
                self.customer_nif_printed.then_some(&self.customer_nif),
            ),
        ] {
            p.rect(x - 4.0, 680.0, 240.0, 92.0, false);
            p.text(f, x, 760.0, 9.0, true, label);
            p.text(f, x, 745.0, 10.0, true, name);
            let mut y = 732.0;
            for l in address.iter() {
                p.text(f, x, y, 9.0, false, l);
                y -= 12.0;
            }
            if let Some(id) = id {
                p.text(f, x, y, 9.0, false, &format!("NIF: {id}"));
            }
        }
        // Header table: labels in one row, values in the row under them.
        let mut cols: Vec<(&str, String)> =
            vec![("Nº FACTURA", self.number.clone()), ("FECHA", self.date(self.issue_date))];
        if let Some(due) = self.due_date {
            cols.push(("VENCIMIENTO", self.date(due)));
        }
        if let Some(r) = &self.rectifies {
            cols.push(("RECTIFICA A", r.clone()));
        }
        let w = 495.0 / cols.len() as f32;
        p.fill_rect(46.0, 640.0, 499.0, 16.0, 0.88);
        for (k, (label, value)) in cols.iter().enumerate() {
            let x = 50.0 + w * k as f32;
            p.text(f, x, 645.0, 8.5, true, label);
            p.text(f, x, 628.0, 10.0, false, value);
        }
        p.line(46.0, 622.0, 545.0, 622.0);
        if self.rectifies.is_some() {
            p.text(f, 50.0, 606.0, 9.0, false, "Factura rectificativa por devolución de mercancía.");
        }
        d.y = 585.0;
        self.items(d, &[50.0, 330.0, 400.0, 480.0], false);
        d.y -= 16.0;
        self.totals_table(d);
        self.payment(d, 50.0);
    }

    /// Ruled grids: header grid, item grid, tax breakdown per rate, totals grid.
    fn table(&self, d: &mut Doc) {
        let f = self.font;
        let p = d.page();
        p.text(f, 50.0, 795.0, 16.0, true, &self.supplier_name);
        p.text(
            f,
            50.0,
            781.0,
            9.0,
            false,
            &format!("{} · {} · NIF {}", self.supplier_address[0], self.supplier_address[1], self.supplier_nif),
        );
        p.text(f, 430.0, 795.0, if self.rectifies.is_some() { 10.0 } else { 16.0 }, true, self.title());
        // Header grid: two columns of label | value rows.
        let mut rows: Vec<(&str, String, &str, String)> = vec![
            (self.number_label(), self.number.clone(), "Cliente:", self.customer_name.clone()),
            (
                self.date_label(),
                self.date(self.issue_date),
                "Dirección:",
                format!("{}, {}", self.customer_address[0], self.customer_address[1]),
            ),
        ];
        let third = self.due_date.map(|dd| (self.due_label(), self.date(dd)));
        let nif_row = self.customer_nif_printed.then(|| ("NIF cliente:", self.customer_nif.clone()));
        match (third, nif_row) {
            (Some((a, b)), Some((c, e))) => rows.push((a, b, c, e)),
            (Some((a, b)), None) => rows.push((a, b, "", String::new())),
            (None, Some((c, e))) => rows.push(("", String::new(), c, e)),
            (None, None) => {}
        }
        if let Some(r) = &self.rectifies {
            rows.push(("Rectifica a:", r.clone(), "", String::new()));
        }
        let mut y = 760.0;
        for (a, b, c, e) in &rows {
            p.rect(48.0, y - 5.0, 249.0, 16.0, false);
            p.rect(297.0, y - 5.0, 250.0, 16.0, false);
            p.text(f, 52.0, y, 8.5, true, a);
            p.text(f, 162.0, y, 9.0, false, b);
            p.text(f, 301.0, y, 8.5, true, c);
            p.text(f, 370.0, y, if e.len() > 34 { 7.5 } else { 9.0 }, false, e);
            y -= 16.0;
        }
        d.y = y - 24.0;
        self.items(d, &[52.0, 320.0, 390.0, 470.0], true);
        d.y -= 18.0;
        // Tax breakdown: one row per rate.
        d.ensure(30.0 + 16.0 * self.bases().len() as f32 + 90.0);
        let y0 = d.y;
        let p = d.page();
        let heads = ["Tipo IVA", "Base imponible", "Cuota IVA"];
        let xs = [300.0, 380.0, 470.0];
        p.fill_rect(296.0, y0 - 4.0, 251.0, 15.0, 0.85);
        for (k, h) in heads.iter().enumerate() {
            p.text(f, xs[k], y0, 8.5, true, h);
        }
        let mut y = y0 - 16.0;
        for (rate, base, quota) in self.bases() {
            p.rect(296.0, y - 4.0, 251.0, 15.0, false);
            p.text(f, 300.0, y, 9.0, false, &format!("{}%", rate.normalize()));
            p.text_right(f, 455.0, y, 9.0, false, &self.money(base));
            p.text_right(f, 543.0, y, 9.0, false, &self.money(quota));
            y -= 15.0;
        }
        d.y = y - 12.0;
        self.totals_rows(d, 300.0, 543.0);
        self.payment(d, 52.0);
    }

    /// The item rows, with a header, paginated: rows that do not fit go on the next page under a repeated
    /// header, after a `Suma y sigue` line.
    fn items(&self, d: &mut Doc, xs: &[f32; 4], ruled: bool) {
        let f = self.font;
        let head = |d: &mut Doc| {
            let y = d.y;
            let p = d.page();
            if ruled {
                p.fill_rect(xs[0] - 4.0, y - 4.0, 549.0 - xs[0], 15.0, 0.85);
            }
            p.text(f, xs[0], y, 9.0, true, "Descripción");
            p.text(f, xs[1], y, 9.0, true, "Cantidad");
            p.text(f, xs[2], y, 9.0, true, "Precio");
            p.text(f, xs[3], y, 9.0, true, if self.euro_sign { "Importe" } else { "Importe (EUR)" });
            d.y -= 17.0;
        };
        head(d);
        let mut running = Decimal::ZERO;
        for (k, l) in self.lines.iter().enumerate() {
            // Leave room for the totals after the last row; otherwise just for the row and the carry line.
            if d.y < 110.0 {
                let y = d.y;
                let carried = self.money(running);
                let p = d.page();
                p.text(f, xs[1], y - 4.0, 9.0, true, "Suma y sigue");
                p.text_right(f, 545.0, y - 4.0, 9.0, true, &carried);
                d.new_page(self);
                head(d);
            }
            let amount = self.line_amount(l);
            running += amount;
            let y = d.y;
            let p = d.page();
            let desc = match l.iva {
                Some(rate) if rate != self.iva || self.lines.iter().any(|o| o.iva != l.iva) => {
                    format!("{} ({}%)", l.description, rate.normalize())
                }
                _ => l.description.clone(),
            };
            let size = if f == Font::Courier { 8.0 } else { 9.0 };
            p.text(f, xs[0], y, size, false, &desc);
            p.text_right(f, xs[1] + 40.0, y, 9.0, false, &spanish_number(l.quantity));
            p.text_right(f, xs[3] - 10.0, y, 9.0, false, &self.money(l.unit_price));
            p.text_right(f, 545.0, y, 9.0, false, &self.money(amount));
            if ruled {
                p.line(xs[0] - 4.0, y - 4.0, 549.0, y - 4.0);
            }
            d.y -= 14.0;
            let _ = k;
        }
    }

    /// Totals as label/amount rows (Classic, Table).
    fn totals_rows(&self, d: &mut Doc, x: f32, right: f32) {
        let f = self.font;
        let n = 2 + self.bases().len() + 2 * usize::from(self.irpf.is_some());
        d.ensure(18.0 * n as f32 + 70.0);
        let mut rows: Vec<(String, Decimal, bool)> = vec![("Base imponible".into(), self.net(), false)];
        for (label, _, quota) in self.iva_rows() {
            rows.push((label, quota, false));
        }
        if let Some(l) = self.irpf_label() {
            rows.push((l, -self.withheld(), false));
        }
        rows.push((self.total_label().into(), self.total(), true));
        if self.irpf.is_some() {
            rows.push((self.due_amount_label().into(), self.due(), true));
        }
        for (label, amount, bold) in rows {
            let y = d.y;
            let text = self.money(amount);
            let p = d.page();
            p.text(f, x, y, 10.0, bold, &label);
            p.text_right(f, right, y, 10.0, bold, &text);
            d.y -= 15.0;
        }
    }

    /// Totals in a framed box at the bottom right (HeaderRight).
    fn totals_box(&self, d: &mut Doc) {
        let n = 2 + self.bases().len() + 2 * usize::from(self.irpf.is_some());
        d.ensure(18.0 * n as f32 + 80.0);
        let top = d.y + 12.0;
        self.totals_rows(d, 340.0, 540.0);
        let bottom = d.y + 8.0;
        d.page().rect(334.0, bottom, 212.0, top - bottom, false);
        d.y -= 6.0;
    }

    /// Totals as a grid: a row of headings and the amounts under them (Boxes).
    fn totals_table(&self, d: &mut Doc) {
        let f = self.font;
        d.ensure(110.0);
        let mut cols: Vec<(String, Decimal)> = vec![("Base imponible".into(), self.net())];
        for (label, _, quota) in self.iva_rows() {
            cols.push((format!("Cuota {label}"), quota));
        }
        if let Some(rate) = self.irpf {
            cols.push((format!("IRPF {}%", rate.normalize()), -self.withheld()));
        }
        cols.push(("TOTAL".into(), self.total()));
        let w = 499.0 / cols.len() as f32;
        let y = d.y;
        let p = d.page();
        p.fill_rect(46.0, y - 4.0, 499.0, 15.0, 0.85);
        for (k, (label, amount)) in cols.iter().enumerate() {
            let x = 46.0 + w * k as f32;
            let size = if label.len() > 16 || cols.len() > 4 { 7.5 } else { 8.5 };
            p.text(f, x + 3.0, y, size, true, label);
            p.text_right(f, x + w - 4.0, y - 18.0, 9.5, label == "TOTAL", &self.money(*amount));
            p.rect(x, y - 24.0, w, 35.0, false);
        }
        d.y -= 44.0;
        if self.irpf.is_some() {
            let y = d.y;
            let text = self.money(self.due());
            let p = d.page();
            p.text(f, 330.0, y, 10.0, true, self.due_amount_label());
            p.text_right(f, 543.0, y, 10.0, true, &text);
            d.y -= 16.0;
        }
    }

    fn payment(&self, d: &mut Doc, x: f32) {
        let f = self.font;
        let p = d.page();
        match &self.iban {
            Some(iban) => {
                p.text(f, x, 100.0, 9.0, false, "Forma de pago: transferencia bancaria");
                p.text(f, x, 87.0, 9.0, false, &format!("IBAN: {iban}"));
            }
            None => p.text(f, x, 100.0, 9.0, false, "Forma de pago: contado"),
        }
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

/// A quantity as Spanish invoices print it: `10`, `2,5`.
fn spanish_number(d: Decimal) -> String {
    d.normalize().to_string().replace('.', ",")
}

/// Pages being drawn, with the current page and the pen's height on it.
struct Doc {
    pages: Vec<Page>,
    y: f32,
    font: Font,
}

impl Doc {
    fn new(font: Font) -> Doc {
        Doc { pages: vec![Page::default()], y: 800.0, font }
    }

    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a page")
    }

    /// Start a new page with a short continuation header.
    fn new_page(&mut self, inv: &SampleInvoice) {
        self.pages.push(Page::default());
        let f = self.font;
        let p = self.page();
        p.text(f, 50.0, 800.0, 11.0, true, &inv.supplier_name);
        p.text(f, 330.0, 800.0, 10.0, false, &format!("{} {} (continuación)", inv.number_label(), inv.number));
        p.line(46.0, 792.0, 549.0, 792.0);
        self.y = 770.0;
    }

    /// Make sure `height` points are left above the payment footer, else continue on a new page.
    fn ensure(&mut self, height: f32) {
        if self.y - height < 80.0 {
            let f = self.font;
            self.pages.push(Page::default());
            self.page().text(f, 50.0, 800.0, 9.0, false, "(continuación)");
            self.y = 770.0;
        }
    }

    /// Footers and page numbers once the page count is known.
    fn finish(mut self, inv: &SampleInvoice) -> Vec<Page> {
        let n = self.pages.len();
        let f = self.font;
        for (k, p) in self.pages.iter_mut().enumerate() {
            inv.footer(p, f);
            if n > 1 {
                p.text(f, 480.0, 40.0, 8.0, false, &format!("Página {} de {n}", k + 1));
            }
        }
        self.pages
    }
}

/// How `render_pdf_with_qr` puts a code on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrDrawing {
    /// An embedded grey image, as most invoicing software does.
    Image,
    /// Filled squares in the content stream, as a PDF library's SVG or vector output does.
    Vector,
}

/// One page's content stream.
#[derive(Default, Clone)]
pub struct Page {
    ops: String,
}

impl Page {
    /// Text in the invoice's font (`F1` regular, `F2` bold).
    pub fn text(&mut self, _font: Font, x: f32, y: f32, size: f32, bold: bool, s: &str) {
        let font = if bold { "F2" } else { "F1" };
        let _ = writeln!(self.ops, "BT /{font} {size} Tf {x} {y} Td ({}) Tj ET", escape(s));
    }

    /// Text whose right edge is at `right`.
    pub fn text_right(&mut self, font: Font, right: f32, y: f32, size: f32, bold: bool, s: &str) {
        let x = right - font.text_width(bold, size, s);
        self.text(font, (x * 100.0).round() / 100.0, y, size, bold, s);
    }

    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: bool) {
        let _ = writeln!(self.ops, "0.5 w {x} {y} {w} {h} re {}", if fill { "f" } else { "S" });
    }

    pub fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, grey: f32) {
        let _ = writeln!(self.ops, "q {grey} g {x} {y} {w} {h} re f Q");
    }

    pub fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        let _ = writeln!(self.ops, "0.5 w {x1} {y1} m {x2} {y2} l S");
    }
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let b = ttf::encode(c);
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

/// A grey image drawn under (or over) a page: `data` is one byte per pixel, `width` × `height`.
pub struct Overlay {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Assemble pages into a PDF 1.4 file with a correct cross-reference table. The pages of a scan may use an
/// image `/Im1` (the paper grain) and the images `/Pg<n>` (scanned pages, JPEG).
fn pdf(pages: &[Page], font: Font, image: Option<&Overlay>) -> Vec<u8> {
    pdf_with_jpegs(pages, font, image, &[])
}

/// A4 in points.
pub const A4: [f32; 2] = [595.0, 842.0];

/// Pages of `media` size (width, height in points) as a text-layer PDF.
pub fn pdf_sized(pages: &[Page], font: Font, media: [f32; 2]) -> Vec<u8> {
    write_pdf(pages, font, None, &[], None, media)
}

fn pdf_with_attachment(pages: &[Page], font: Font, attachment: Option<(&str, &[u8])>) -> Vec<u8> {
    write_pdf(pages, font, None, &[], attachment, A4)
}

fn pdf_with_jpegs(pages: &[Page], font: Font, image: Option<&Overlay>, jpegs: &[Jpeg]) -> Vec<u8> {
    write_pdf(pages, font, image, jpegs, None, A4)
}

fn write_pdf(
    pages: &[Page],
    font: Font,
    image: Option<&Overlay>,
    jpegs: &[Jpeg],
    attachment: Option<(&str, &[u8])>,
    media: [f32; 2],
) -> Vec<u8> {
    let [mw, mh] = media;
    // Objects: 1 catalog, 2 pages, 3 F1, 4 F2, 5 grain image (or null), then per page: page, contents; then
    // the JPEG pages.
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let n = pages.len();
    let first_page = 6;
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", first_page + 2 * i)).collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes());
    // The two font dictionaries; their descriptors and programs go at the end.
    objects.push(Vec::new());
    objects.push(Vec::new());
    match image {
        Some(img) => {
            let mut o = format!(
                "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 8 /Length {} >>\nstream\n",
                img.width,
                img.height,
                img.data.len()
            )
            .into_bytes();
            o.extend(&img.data);
            o.extend(b"\nendstream");
            objects.push(o);
        }
        None => objects.push(b"null".to_vec()),
    }
    let jpeg_base = first_page + 2 * n;
    let xobjects: String = (0..jpegs.len()).map(|k| format!(" /Pg{k} {} 0 R", jpeg_base + k)).collect();
    for (i, page) in pages.iter().enumerate() {
        let im = if image.is_some() { " /Im1 5 0 R" } else { "" };
        let xo =
            if image.is_some() || !jpegs.is_empty() { format!(" /XObject <<{im}{xobjects} >>") } else { String::new() };
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {mw} {mh}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >>{xo} >> /Contents {} 0 R >>",
                first_page + 2 * i + 1
            )
            .into_bytes(),
        );
        let mut o = format!("<< /Length {} >>\nstream\n", page.ops.len()).into_bytes();
        o.extend(encode_latin1(&page.ops));
        o.extend(b"endstream");
        objects.push(o);
    }
    for j in jpegs {
        let space = if j.components == 1 { "DeviceGray" } else { "DeviceRGB" };
        let mut o = format!(
            "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /{space} /BitsPerComponent 8 /Filter /DCTDecode /Length {} >>\nstream\n",
            j.width,
            j.height,
            j.data.len()
        )
        .into_bytes();
        o.extend(&j.data);
        o.extend(b"\nendstream");
        objects.push(o);
    }
    if let Some((name, data)) = attachment {
        // The embedded file stream, its file specification, and a catalog that names it.
        let stream = objects.len() + 1;
        let mut o = format!(
            "<< /Type /EmbeddedFile /Subtype /text#2Fxml /Length {} /Params << /Size {} >> >>\nstream\n",
            data.len(),
            data.len()
        )
        .into_bytes();
        o.extend(data);
        o.extend(b"\nendstream");
        objects.push(o);
        let spec = objects.len() + 1;
        objects.push(
            format!("<< /Type /Filespec /F ({name}) /UF ({name}) /AFRelationship /Data /EF << /F {stream} 0 R >> >>")
                .into_bytes(),
        );
        objects[0] = format!(
            "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [({name}) {spec} 0 R] >> >> /AF [{spec} 0 R] >>"
        )
        .into_bytes();
    }
    for (k, bold) in [(2, false), (3, true)] {
        let face = font.face(bold);
        let descriptor = objects.len() + 1;
        objects[k] = face.font_object(descriptor);
        objects.push(face.descriptor_object(descriptor + 1));
        objects.push(face.program_object());
    }
    let mut out: Vec<u8> = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(o);
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
    s.chars().map(ttf::encode).collect()
}

/// How a scan is degraded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanOptions {
    pub dpi: u32,
    /// Clockwise rotation of the sheet on the scanner glass, in degrees.
    pub angle: f32,
    /// 0 (clean) to 3 (grainy paper, many specks, some broken strokes).
    pub noise: u8,
    /// `Some(quality)` for JPEG output (1..100), `None` for PNG.
    pub jpeg: Option<u8>,
    pub seed: u64,
    /// The sheet fed sideways or upside down: 0, 90, 180 or 270 degrees clockwise (never drawn by `generate`).
    pub turn: u32,
}

impl ScanOptions {
    /// Degradation drawn from a seed: 150–300 dpi, up to ±3°, some noise, PNG or JPEG at quality 35–80.
    pub fn generate(seed: u64) -> ScanOptions {
        let mut r = Rng::new(seed ^ 0x5CA7);
        ScanOptions {
            dpi: *r.pick(&[150, 200, 200, 240, 300, 300]),
            angle: r.float(-3.0, 3.0),
            noise: r.below(4) as u8,
            jpeg: r.chance(50).then(|| r.range(35, 80) as u8),
            seed,
            turn: 0,
        }
    }

    /// The file extension of the result: `png`, `jpg`, or `pdf` for a multi-page scan.
    pub fn extension(&self, pages: usize) -> &'static str {
        if pages > 1 {
            "pdf"
        } else if self.jpeg.is_some() {
            "jpg"
        } else {
            "png"
        }
    }
}

impl SampleInvoice {
    /// A degraded scan of the invoice: one PNG or JPEG for a one-page invoice, an image-only PDF of JPEG pages
    /// (as a scanner's "scan to PDF" makes) for a longer one. Needs poppler's `pdftoppm`.
    pub fn render_scan(&self, opts: &ScanOptions) -> std::io::Result<Vec<u8>> {
        scan_pages(&self.render_pages(), self.font, A4, opts)
    }
}

/// A degraded scan of `pages` (of `media` size): one PNG or JPEG for one page, an image-only PDF of JPEG pages
/// for more. Needs poppler's `pdftoppm`.
pub fn scan_pages(pages: &[Page], font: Font, media: [f32; 2], opts: &ScanOptions) -> std::io::Result<Vec<u8>> {
    scan(pages, font, media, opts, pages.len() > 1)
}

fn scan(pages: &[Page], font: Font, media: [f32; 2], opts: &ScanOptions, to_pdf: bool) -> std::io::Result<Vec<u8>> {
    let mut r = Rng::new(opts.seed);
    let grain = grain(&mut r, opts.noise);
    let degraded: Vec<Page> = pages.iter().map(|p| degrade(p, opts, &mut r, media)).collect();
    let sheet = write_pdf(&degraded, font, grain.as_ref(), &[], None, media);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("sheet.pdf");
    std::fs::write(&input, sheet)?;
    let mut cmd = std::process::Command::new("pdftoppm");
    cmd.args(["-r", &opts.dpi.to_string(), "-gray"]);
    let jpeg = opts.jpeg.or(if to_pdf { Some(70) } else { None });
    match jpeg {
        Some(q) => cmd.args(["-jpeg", "-jpegopt", &format!("quality={q}")]),
        None => cmd.arg("-png"),
    };
    let status = cmd.arg(&input).arg(dir.path().join("page")).status()?;
    if !status.success() {
        return Err(std::io::Error::other("pdftoppm failed"));
    }
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("page")))
        .collect();
    files.sort();
    if opts.turn != 0 {
        for f in &files {
            turn_image(f, opts.turn)?;
        }
    }
    if !to_pdf {
        return std::fs::read(&files[0]);
    }
    // Scan to PDF: each page a full-page JPEG, nothing else.
    let mut jpegs = Vec::new();
    let mut content = Vec::new();
    for (k, f) in files.iter().enumerate() {
        let data = std::fs::read(f)?;
        jpegs.push(Jpeg::new(data).ok_or_else(|| std::io::Error::other("not a JPEG"))?);
        let mut p = Page::default();
        let _ = writeln!(p.ops, "q {} 0 0 {} 0 0 cm /Pg{k} Do Q", media[0], media[1]);
        content.push(p);
    }
    Ok(write_pdf(&content, font, None, &jpegs, None, media))
}

/// Turn a rendered page `degrees` clockwise, in place, keeping its format.
fn turn_image(path: &std::path::Path, degrees: u32) -> std::io::Result<()> {
    let img = image::open(path).map_err(std::io::Error::other)?;
    let img = match degrees {
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => img,
    };
    img.save(path).map_err(std::io::Error::other)
}

/// Paper grain: a coarse grey texture drawn under the page, light enough to leave text readable.
fn grain(r: &mut Rng, noise: u8) -> Option<Overlay> {
    if noise == 0 {
        return None;
    }
    let (width, height) = (297, 421);
    let spread = 12 * u64::from(noise);
    let data = (0..width * height).map(|_| (255 - r.below(spread + 1)) as u8).collect();
    Some(Overlay { width, height, data })
}

/// The page as a scanner sees it: rotated about its centre, on grainy paper, with dark specks and a few
/// light scratches through the text.
fn degrade(page: &Page, opts: &ScanOptions, r: &mut Rng, media: [f32; 2]) -> Page {
    let [mw, mh] = media;
    let mut ops = String::new();
    if opts.noise > 0 {
        let _ = writeln!(ops, "q {mw} 0 0 {mh} 0 0 cm /Im1 Do Q");
    }
    let a = -opts.angle.to_radians();
    let (s, c) = a.sin_cos();
    let (cx, cy) = (mw / 2.0, mh / 2.0);
    let (tx, ty) = (cx - c * cx + s * cy, cy - s * cx - c * cy);
    let _ = writeln!(ops, "q {c:.6} {s:.6} {:.6} {c:.6} {tx:.3} {ty:.3} cm", -s);
    // Toner is never quite black.
    let ink = 0.05 + 0.05 * f32::from(opts.noise);
    let _ = writeln!(ops, "{ink:.2} g {ink:.2} G");
    ops.push_str(&page.ops);
    ops.push_str("Q\n");
    // Specks: dark dots anywhere, and light scratches.
    let specks = 60 * u64::from(opts.noise);
    for _ in 0..specks {
        let (x, y) = (r.float(20.0, mw - 20.0), r.float(20.0, mh - 20.0));
        let size = r.float(0.3, 1.2);
        let _ = writeln!(ops, "q 0.2 g {x:.1} {y:.1} {size:.2} {size:.2} re f Q");
    }
    for _ in 0..specks / 3 {
        let (x, y) = (r.float(40.0, mw - 40.0), r.float(40.0, mh - 42.0));
        let (w, h) = (r.float(0.4, 3.0), r.float(0.3, 0.8));
        let _ = writeln!(ops, "q 1 g {x:.1} {y:.1} {w:.2} {h:.2} re f Q");
    }
    Page { ops }
}

/// A JPEG to place in a PDF as is (`/DCTDecode`), with what its start-of-frame marker says.
struct Jpeg {
    width: u32,
    height: u32,
    /// 1 (grey) or 3: `pdftoppm -gray -jpeg` still writes three components.
    components: u8,
    data: Vec<u8>,
}

impl Jpeg {
    fn new(data: Vec<u8>) -> Option<Jpeg> {
        let mut i = 2;
        while i + 9 < data.len() {
            if data[i] != 0xFF {
                return None;
            }
            let marker = data[i + 1];
            let len = usize::from(data[i + 2]) << 8 | usize::from(data[i + 3]);
            if (0xC0..=0xC3).contains(&marker) {
                let height = u32::from(data[i + 5]) << 8 | u32::from(data[i + 6]);
                let width = u32::from(data[i + 7]) << 8 | u32::from(data[i + 8]);
                let components = data[i + 9];
                return Some(Jpeg { width, height, components, data });
            }
            i += 2 + len;
        }
        None
    }
}
