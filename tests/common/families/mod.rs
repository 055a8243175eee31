//! Layout families: invoices and receipts drawn after conventions that real documents follow, each in seven
//! languages (es, en, de, fr, nl, it, pt), as text-layer PDFs and as scans, screenshots and phone photos, with
//! their ground truth in the shape `shared/EVALUATION.md` scores.
//!
//! The families are the yardstick for reading documents this project did not design: rules are tuned on some
//! and measured on the others ([`HELD_OUT`]); `docs/extraction-families.md` says what convention each models.
//! Everything comes from a seed, so a set is the same on every machine; the fonts are embedded (`ttf.rs`), so
//! the scans' pixels do not depend on the fonts a machine has.
//!
//! Use it beside `pdf.rs`, under the name `pdf`:
//! ```ignore
//! #[path = "common/pdf.rs"] mod pdf;
//! #[path = "common/families/mod.rs"] mod families;
//! ```

#![allow(dead_code)]

#[path = "ids.rs"]
pub mod ids;
#[path = "layouts.rs"]
mod layouts;
#[path = "locale.rs"]
pub mod locale;

use super::pdf::{self, Font, Page, Rng, ScanOptions};
use chrono::{Datelike, NaiveDate};
use ids::Country;
pub use locale::{Lang, LANGS};
use rust_decimal::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// DIN 5008 business letter: sender line and addressee in the envelope window (no label), info block
    /// beside it, subject line, legal footer in columns with the tax ID and bank only there.
    DinWindow,
    /// Letterhead across the top, labelled customer block, legal footer with registration, tax ID and bank.
    LetterheadFooter,
    /// Parties as key–value rows (`Name:`, `Address:`, `VAT No.:`) under section headings (Seller / Buyer),
    /// values far right of their labels.
    KeyValue,
    /// Supplier and customer in two boxes side by side, headed From / To.
    TwoColumn,
    /// A ruled grid of number / date / due date / customer no. with each value under its label (`Nº`, `Nr.`, `#`).
    HeaderGrid,
    /// A till slip: shop header with legal form, unlabelled date and time, items, totals beside cash tendered,
    /// change and a rounding line; no customer.
    Receipt,
    /// A long invoice over several pages: header repeated, subtotals carried forward, totals on the last page.
    MultiPage,
    /// A credit note referring to the invoice it corrects, with negative amounts.
    CreditNote,
    /// `Bill to` and `Ship to` side by side: the ship-to party is not the customer.
    BillShip,
    /// A title with words between it and the number: `Rechnung des Monats Oktober Nr. 2025-117`.
    TitleWords,
    /// A compact summary with each total's label set tight against its amount.
    GluedTotals,
}

pub const FAMILIES: [Family; 11] = [
    Family::DinWindow,
    Family::LetterheadFooter,
    Family::KeyValue,
    Family::TwoColumn,
    Family::HeaderGrid,
    Family::Receipt,
    Family::MultiPage,
    Family::CreditNote,
    Family::BillShip,
    Family::TitleWords,
    Family::GluedTotals,
];

/// Families kept out of rule tuning: the extractor is measured on them to see whether its rules generalise
/// to conventions they were not written against (leave-families-out).
pub const HELD_OUT: [Family; 3] = [Family::LetterheadFooter, Family::TwoColumn, Family::BillShip];

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::DinWindow => "din_window",
            Family::LetterheadFooter => "letterhead_footer",
            Family::KeyValue => "key_value",
            Family::TwoColumn => "two_column",
            Family::HeaderGrid => "header_grid",
            Family::Receipt => "receipt",
            Family::MultiPage => "multi_page",
            Family::CreditNote => "credit_note",
            Family::BillShip => "bill_ship",
            Family::TitleWords => "title_words",
            Family::GluedTotals => "glued_totals",
        }
    }

    pub fn from_name(name: &str) -> Option<Family> {
        FAMILIES.into_iter().find(|f| f.name() == name)
    }

    pub fn held_out(self) -> bool {
        HELD_OUT.contains(&self)
    }
}

#[derive(Debug, Clone)]
pub struct Party {
    pub name: String,
    pub street: String,
    pub town: String,
    pub country: Country,
    pub tax_id: String,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub description: String,
    pub quantity: Decimal,
    /// Net unit price (gross on a receipt).
    pub price: Decimal,
    /// VAT rate in percent.
    pub rate: Decimal,
}

/// How amounts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumFmt {
    pub thousands: Option<char>,
    pub decimal: char,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyFmt {
    /// `1.234,56 €`
    SymbolAfter,
    /// `€ 1.234,56`, `£1,234.56`
    SymbolBefore,
    /// `1.234,56 EUR`
    CodeAfter,
    /// `1.234,56`, with the currency named once in a column head or a note.
    Bare,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFmt {
    /// Day, month, year with a separator: `15/10/2025`, `15.10.2025`, `15-10-2025`.
    Dmy(char),
    /// `2025-10-15`
    Iso,
    /// `15 octobre 2025`, `15. Oktober 2025`, `15 de octubre de 2025`
    Long,
    /// `Oct 15, 2025`
    UsLong,
}

/// A receipt's payment: cash handed over, change given, and the cash-rounding adjustment.
#[derive(Debug, Clone)]
pub struct Payment {
    pub tendered: Decimal,
    pub rounding: Decimal,
    pub time: String,
    /// `Total (incl. GST)` / `Total excl.` lines.
    pub show_net: bool,
}

/// One generated document: what it says, and how it is drawn.
#[derive(Debug, Clone)]
pub struct Document {
    pub family: Family,
    pub lang: Lang,
    pub index: usize,
    pub number: String,
    pub issue: NaiveDate,
    pub due: Option<NaiveDate>,
    pub currency: &'static str,
    pub supplier: Party,
    pub customer: Option<Party>,
    pub customer_tax_printed: bool,
    pub supplier_tax_printed: bool,
    pub ship_to: Option<Party>,
    pub items: Vec<Item>,
    /// On a credit note, the invoice it corrects.
    pub corrects: Option<String>,
    pub iban: Option<String>,
    pub payment: Option<Payment>,
    /// Whether an explicit amount-due line is printed.
    pub due_line: bool,
    pub font: Font,
    pub num: NumFmt,
    pub money: MoneyFmt,
    pub date_fmt: DateFmt,
    /// The symbol printed for the currency (`€`, `£`, `RM`, `₹`, `Rs`, `CHF`).
    pub symbol: &'static str,
    /// Picks among label wordings.
    pub wording: u64,
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

impl Document {
    /// Document `index` of `family` in `lang`, drawn from `seed`. Features cycle with the index (missing due
    /// date, IBAN or customer tax ID; mixed VAT rates; number and date formats), the rest comes from the seed.
    pub fn generate(family: Family, lang: Lang, seed: u64, index: usize) -> Document {
        let salt = family as u64 * 7919 + lang as u64 * 104_729;
        let mut r = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(salt).wrapping_add(index as u64 * 31));
        let l = lang.labels();
        let receipt = family == Family::Receipt;
        // English documents come from Britain, and receipts also from Malaysia, India and the US; some German
        // invoices from Switzerland.
        let shop = receipt.then_some(index % l.shops.len());
        let country = match (lang, shop) {
            (Lang::En, Some(k)) => [Country::Gb, Country::My, Country::In, Country::Us, Country::In][k % 5],
            (Lang::En, None) if index % 5 == 4 => Country::Us,
            (Lang::De, None) if index % 6 == 5 => Country::Ch,
            _ => lang.home(),
        };
        let currency = country.currency();
        let year = *r.pick(&[2024, 2025, 2025, 2026]);
        // Issue dates from January 2024 to October 2026: never in the future of the machine that reads them.
        let last_month = if year == 2026 { 10 } else { 12 };
        let issue = NaiveDate::from_ymd_opt(year, r.range(1, last_month) as u32, r.range(1, 28) as u32).unwrap();
        let missing = index % 4; // 1: no due date; 2: no IBAN; 3: no customer tax ID
        let due = (!receipt && missing != 1).then(|| issue + chrono::Duration::days(*r.pick(&[14, 30, 30, 45, 60])));
        let party = |r: &mut Rng, name: &str, c: Country| Party {
            name: name.to_string(),
            street: format!("{} {}", r.pick(l.streets), r.range(1, 140)),
            town: r.pick(l.towns).to_string(),
            country: c,
            tax_id: c.tax_id(r),
        };
        let supplier_name = match shop {
            Some(k) => l.shops[k].to_string(),
            None => r.pick(l.companies).to_string(),
        };
        let mut supplier = party(&mut r, &supplier_name, country);
        // Shops outside Europe have their own street shapes.
        let abroad: &[(&str, &str)] = match country {
            Country::My => {
                &[("No. 12, Jalan Ampang", "50450 Kuala Lumpur"), ("Lot 3, Jalan Tun Razak", "10400 Penang")]
            }
            Country::In => &[("12 MG Road", "Bengaluru 560001"), ("45 Linking Road, Bandra", "Mumbai 400050")],
            Country::Us => &[("123 Main St", "Springfield, IL 62701"), ("48 Ocean Ave", "Portland, ME 04101")],
            _ => &[],
        };
        if !abroad.is_empty() {
            let (street, town) = *r.pick(abroad);
            supplier.street = street.to_string();
            supplier.town = town.to_string();
        }
        let customer = (!receipt).then(|| {
            // Some customers are abroad (an intra-EU customer with its own VAT ID).
            let c = if country != Country::Us && r.chance(15) {
                *r.pick(&[Country::De, Country::Fr, Country::Nl, Country::Es])
            } else {
                country
            };
            let name = *r.pick(l.customers);
            party(&mut r, name, c)
        });
        let ship_to = (family == Family::BillShip).then(|| {
            let name = l.customers.iter().find(|n| Some(**n) != customer.as_ref().map(|c| c.name.as_str())).unwrap();
            let mut p = party(&mut r, name, country);
            p.name = format!(
                "{} – {}",
                name,
                ["Warehouse", "Lager", "Almacén", "Entrepôt", "Magazijn", "Magazzino", "Armazém"][lang as usize]
            );
            p
        });
        let (std_rate, reduced) = country.vat_rates();
        let mixed = index % 3 == 2;
        let n_items = match family {
            Family::MultiPage => r.range(45, 70) as usize,
            Family::Receipt => r.range(2, 8) as usize,
            _ => r.range(1, 6) as usize,
        };
        let mut items = Vec::new();
        for k in 0..n_items {
            let (desc, price, reduced_item) = if receipt {
                let (d, p) = *r.pick(l.shop_items);
                (d, p, true)
            } else {
                *r.pick(l.items)
            };
            let rate = if (mixed || receipt) && reduced_item { dec(reduced) } else { dec(std_rate) };
            let cents = Decimal::new(r.range(-90, 90), 2);
            let mut price = (dec(price) + if receipt { Decimal::ZERO } else { cents }).max(dec("0.50"));
            if currency == "INR" {
                price = (price * dec("40")).round_dp(0);
            }
            let quantity = if receipt {
                Decimal::from(r.range(1, 3))
            } else if r.chance(15) {
                Decimal::new(r.range(5, 95), 1)
            } else {
                Decimal::from(r.range(1, 20))
            };
            items.push(Item { description: desc.to_string(), quantity, price, rate });
            // A receipt's mixed slip: one standard-rate article.
            if receipt && k == 0 && mixed {
                items.push(Item {
                    description: [
                        "Bolsa reutilizable",
                        "Carrier bag",
                        "Tragetasche",
                        "Sac cabas",
                        "Draagtas",
                        "Shopper",
                        "Saco reutilizável",
                    ][lang as usize]
                        .to_string(),
                    quantity: Decimal::ONE,
                    price: dec("4.95"),
                    rate: dec(std_rate),
                });
            }
        }
        if mixed && !receipt && items.iter().all(|i| i.rate == items[0].rate) && std_rate != reduced {
            let (d, p, _) = *l.items.iter().find(|i| i.2).unwrap();
            items.push(Item { description: d.to_string(), quantity: Decimal::ONE, price: dec(p), rate: dec(reduced) });
        }
        let number = invoice_number(&mut r, issue, family, country);
        let corrects = (family == Family::CreditNote)
            .then(|| invoice_number(&mut r, issue - chrono::Duration::days(20), Family::DinWindow, country));
        let iban = if receipt || missing == 2 { None } else { country.iban(&mut r) };
        let font = if receipt {
            Font::Receipt
        } else {
            [Font::Helvetica, Font::Times, Font::Helvetica, Font::Courier][(index + family as usize) % 4]
        };
        let num = match (lang, country) {
            (_, Country::Ch) => NumFmt { thousands: Some('\''), decimal: '.' },
            (Lang::En, _) => NumFmt { thousands: Some(','), decimal: '.' },
            (Lang::Fr, _) => NumFmt { thousands: Some(' '), decimal: ',' },
            (Lang::Pt, _) => NumFmt { thousands: Some(if index % 2 == 0 { ' ' } else { '.' }), decimal: ',' },
            _ => NumFmt { thousands: Some('.'), decimal: ',' },
        };
        let num = if index % 5 == 3 { NumFmt { thousands: None, ..num } } else { num };
        let money = if receipt {
            if index % 4 == 3 {
                MoneyFmt::Bare
            } else {
                MoneyFmt::SymbolBefore
            }
        } else {
            match (lang, index % 4) {
                (Lang::En, 0 | 1) | (Lang::Nl, 0 | 1) => MoneyFmt::SymbolBefore,
                (_, 2) => MoneyFmt::CodeAfter,
                (_, 3) => MoneyFmt::Bare,
                _ => MoneyFmt::SymbolAfter,
            }
        };
        let date_fmt = match (lang, index % 4) {
            _ if receipt => DateFmt::Dmy(match lang {
                Lang::De => '.',
                Lang::Nl => '-',
                _ => '/',
            }),
            (Lang::En, 0) if country == Country::Us => DateFmt::UsLong,
            (Lang::En, 0) => DateFmt::Long,
            (Lang::En, 1) if country == Country::Us => DateFmt::UsLong,
            (Lang::En, 1) => DateFmt::Dmy('/'),
            (Lang::De, 0 | 2) => DateFmt::Dmy('.'),
            (Lang::Nl, 0) => DateFmt::Dmy('-'),
            (_, 0) => DateFmt::Dmy('/'),
            (_, 1) => DateFmt::Long,
            (_, 2) if !receipt => DateFmt::Iso,
            _ => DateFmt::Dmy(if lang == Lang::De { '.' } else { '/' }),
        };
        let symbol = match currency {
            "EUR" => "€",
            "GBP" => "£",
            "USD" => "$",
            "CHF" => "CHF",
            "MYR" => "RM",
            "INR" => {
                if index % 4 == 2 {
                    "₹"
                } else {
                    "Rs"
                }
            }
            _ => currency,
        };
        let mut doc = Document {
            family,
            lang,
            index,
            number,
            issue,
            due,
            currency,
            supplier,
            customer,
            // American invoices print no customer tax number.
            customer_tax_printed: missing != 3 && country != Country::Us,
            supplier_tax_printed: country != Country::Us,
            ship_to,
            items,
            corrects,
            iban,
            payment: None,
            due_line: index % 3 != 1,
            font,
            num,
            money,
            date_fmt,
            symbol,
            wording: r.next_u64(),
        };
        if receipt {
            let total = doc.gross_total();
            // Cash rounding where small coins are gone: to 0.05 in the Netherlands and Malaysia, to the whole
            // rupee in India.
            let step = match country {
                Country::Nl | Country::My => dec("20"),
                Country::In => Decimal::ONE,
                _ => Decimal::ZERO,
            };
            let rounding = if step.is_zero() {
                Decimal::ZERO
            } else {
                let rounded = (total * step).round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero) / step;
                rounded.round_dp(2) - total
            };
            let paid = total + rounding;
            let note = [dec("5"), dec("10"), dec("20"), dec("50"), dec("100")];
            let unit = if currency == "INR" { dec("100") } else { Decimal::ONE };
            let tendered = note.iter().map(|n| *n * unit).find(|n| *n >= paid).unwrap_or(paid.ceil());
            doc.payment = Some(Payment {
                tendered,
                rounding,
                time: format!("{:02}:{:02}", r.range(8, 21), r.range(0, 59)),
                show_net: r.chance(60),
            });
        }
        doc
    }

    fn sign(&self) -> Decimal {
        if self.family == Family::CreditNote {
            Decimal::NEGATIVE_ONE
        } else {
            Decimal::ONE
        }
    }

    pub fn line_amount(&self, i: &Item) -> Decimal {
        (i.quantity * i.price * self.sign()).round_dp(2)
    }

    /// Per VAT rate, highest first: (rate, base, tax). On an invoice the base is the sum of net lines; on a
    /// receipt (gross prices) the tax is taken out of each rate's gross sum.
    pub fn bases(&self) -> Vec<(Decimal, Decimal, Decimal)> {
        let mut by_rate: Vec<(Decimal, Decimal)> = Vec::new();
        for i in &self.items {
            let a = self.line_amount(i);
            match by_rate.iter_mut().find(|(r, _)| *r == i.rate) {
                Some(e) => e.1 += a,
                None => by_rate.push((i.rate, a)),
            }
        }
        by_rate.sort_by_key(|b| std::cmp::Reverse(b.0));
        by_rate
            .into_iter()
            .map(|(rate, sum)| {
                if self.payment.is_some() || self.family == Family::Receipt {
                    let base = (sum * dec("100") / (dec("100") + rate)).round_dp(2);
                    (rate, base, sum - base)
                } else {
                    (rate, sum, (sum * rate / dec("100")).round_dp(2))
                }
            })
            .collect()
    }

    fn gross_total(&self) -> Decimal {
        self.items.iter().map(|i| self.line_amount(i)).sum()
    }

    pub fn net(&self) -> Decimal {
        self.bases().iter().map(|b| b.1).sum()
    }
    pub fn tax(&self) -> Decimal {
        self.bases().iter().map(|b| b.2).sum()
    }
    pub fn total(&self) -> Decimal {
        self.net() + self.tax()
    }
    /// What is paid: the total after a receipt's cash rounding.
    pub fn paid(&self) -> Decimal {
        self.total() + self.payment.as_ref().map_or(Decimal::ZERO, |p| p.rounding)
    }

    pub fn document_type(&self) -> &'static str {
        match self.family {
            Family::Receipt => "receipt",
            Family::CreditNote => "credit_note",
            _ => "invoice",
        }
    }

    /// The ground truth (EVALUATION.md): only what the page shows. Fields the page does not show are left out
    /// and named under `absent` (not scored by `eval`; the no-invention test reads it: they must come back null).
    pub fn expected(&self) -> Value {
        let mut t = Map::new();
        let mut absent: Vec<&str> = Vec::new();
        t.insert("invoice_number".into(), json!(self.number));
        t.insert("issue_date".into(), json!(self.issue.to_string()));
        match self.due {
            Some(d) => {
                t.insert("due_date".into(), json!(d.to_string()));
            }
            None => absent.push("due_date"),
        }
        t.insert("currency".into(), json!(self.currency));
        t.insert("document_type".into(), json!(self.document_type()));
        let mut supplier = json!({"name": self.supplier.name});
        if self.supplier_tax_printed {
            supplier["tax_id"] = tax_truth(&self.supplier.tax_id);
        } else {
            absent.push("supplier.tax_id");
        }
        match &self.iban {
            Some(iban) => supplier["iban"] = json!(iban),
            None => absent.push("supplier.iban"),
        }
        t.insert("supplier".into(), supplier);
        match &self.customer {
            Some(c) => {
                let mut customer = json!({"name": c.name});
                if self.customer_tax_printed {
                    customer["tax_id"] = tax_truth(&c.tax_id);
                } else {
                    absent.push("customer.tax_id");
                }
                t.insert("customer".into(), customer);
            }
            None => {
                absent.push("customer.name");
                absent.push("customer.tax_id");
            }
        }
        let receipt = self.payment.as_ref();
        if receipt.is_none_or(|p| p.show_net) {
            t.insert("net_amount".into(), json!(self.net().to_string()));
            t.insert("tax_amount".into(), json!(self.tax().to_string()));
        }
        t.insert("total_amount".into(), json!(self.paid().to_string()));
        if receipt.is_none() && self.due_line {
            t.insert("amount_due".into(), json!(self.total().to_string()));
        }
        t.insert("absent".into(), json!(absent));
        Value::Object(t)
    }

    /// Pick a wording among `options`, stable per document and `slot`.
    pub fn pick<'a>(&self, options: &'a [&'a str], slot: u32) -> &'a str {
        let mut z = self.wording ^ u64::from(slot).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        options[((z ^ (z >> 29)) % options.len() as u64) as usize]
    }

    pub fn amount(&self, d: Decimal) -> String {
        let s = format!("{:.2}", d.round_dp(2).abs());
        let (int, frac) = s.split_once('.').unwrap();
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                if let Some(t) = self.num.thousands {
                    grouped.push(t);
                }
            }
            grouped.push(c);
        }
        let sign = if d.is_sign_negative() && !d.is_zero() { "-" } else { "" };
        format!("{sign}{grouped}{}{frac}", self.num.decimal)
    }

    /// An amount with the currency as the document writes it.
    pub fn money(&self, d: Decimal) -> String {
        let a = self.amount(d);
        match self.money {
            MoneyFmt::SymbolAfter => format!("{a} {}", self.symbol),
            MoneyFmt::SymbolBefore if self.symbol.len() > 2 || self.symbol == "Rs" || self.symbol == "RM" => {
                format!("{} {a}", self.symbol)
            }
            MoneyFmt::SymbolBefore => format!("{}{a}", self.symbol),
            MoneyFmt::CodeAfter => format!("{a} {}", self.currency),
            MoneyFmt::Bare => a,
        }
    }

    /// A rate as printed: `21%`, `5,5 %`.
    pub fn rate(&self, r: Decimal) -> String {
        let s = r.normalize().to_string().replace('.', &self.num.decimal.to_string());
        if self.lang == Lang::Fr || self.lang == Lang::De {
            format!("{s} %")
        } else {
            format!("{s}%")
        }
    }

    pub fn qty(&self, q: Decimal) -> String {
        q.normalize().to_string().replace('.', &self.num.decimal.to_string())
    }

    pub fn date(&self, d: NaiveDate) -> String {
        let l = self.lang.labels();
        let month = l.months[d.month0() as usize];
        match self.date_fmt {
            DateFmt::Dmy(sep) => format!("{:02}{sep}{:02}{sep}{}", d.day(), d.month(), d.year()),
            DateFmt::Iso => d.format("%Y-%m-%d").to_string(),
            DateFmt::UsLong => format!("{} {}, {}", &month[..3], d.day(), d.year()),
            DateFmt::Long => match self.lang {
                Lang::De => format!("{}. {month} {}", d.day(), d.year()),
                Lang::Es | Lang::Pt => format!("{} de {month} de {}", d.day(), d.year()),
                _ => format!("{} {month} {}", d.day(), d.year()),
            },
        }
    }

    /// Where amounts go without a currency sign, the note that names the currency.
    pub fn currency_note(&self) -> Option<String> {
        (self.money == MoneyFmt::Bare).then(|| {
            let word = match self.lang {
                Lang::Es => "Importes en",
                Lang::En => "Amounts in",
                Lang::De => "Beträge in",
                Lang::Fr => "Montants en",
                Lang::Nl => "Bedragen in",
                Lang::It => "Importi in",
                Lang::Pt => "Valores em",
            };
            format!("{word} {}", self.currency)
        })
    }

    /// The pages of the document and their size in points.
    pub fn render_pages(&self) -> (Vec<Page>, [f32; 2]) {
        layouts::render(self)
    }

    pub fn render_pdf(&self) -> Vec<u8> {
        let (pages, media) = self.render_pages();
        pdf::pdf_sized(&pages, self.font, media)
    }

    pub fn page_count(&self) -> usize {
        self.render_pages().0.len()
    }

    /// The document captured as an image: by a flatbed scanner, as a small screenshot, or by a phone camera.
    /// Returns the bytes and the file extension.
    pub fn render_capture(&self, capture: &Capture) -> std::io::Result<(Vec<u8>, &'static str)> {
        let (pages, media) = self.render_pages();
        match capture {
            Capture::Scanner(opts) => {
                let ext = opts.extension(pages.len());
                Ok((pdf::scan_pages(&pages, self.font, media, opts)?, ext))
            }
            Capture::Screenshot { dpi } => {
                let opts = ScanOptions { dpi: *dpi, angle: 0.0, noise: 0, jpeg: None, seed: 1, turn: 0 };
                let ext = opts.extension(pages.len());
                Ok((pdf::scan_pages(&pages, self.font, media, &opts)?, ext))
            }
            Capture::Phone { dpi, angle, blur, quality, seed } => {
                let opts = ScanOptions { dpi: *dpi, angle: *angle, noise: 1, jpeg: None, seed: *seed, turn: 0 };
                if pages.len() > 1 {
                    let opts = ScanOptions { jpeg: Some(*quality), ..opts };
                    return Ok((pdf::scan_pages(&pages, self.font, media, &opts)?, "pdf"));
                }
                let png = pdf::scan_pages(&pages, self.font, media, &opts)?;
                Ok((phone_photo(&png, *blur, *quality, *seed)?, "jpg"))
            }
        }
    }
}

/// A tax ID's truth: as printed, except that a Swiss UID's `MWST` suffix (which says the UID is registered for
/// VAT) is not part of the number.
fn tax_truth(id: &str) -> Value {
    json!(id.strip_suffix(" MWST").unwrap_or(id))
}

/// How a document is turned into an image.
#[derive(Debug, Clone, PartialEq)]
pub enum Capture {
    Scanner(ScanOptions),
    /// A screenshot of the page at screen resolution: body text about 10 px high.
    Screenshot {
        dpi: u32,
    },
    /// A phone photo: tilted, blurred, unevenly lit, JPEG.
    Phone {
        dpi: u32,
        angle: f32,
        blur: f32,
        quality: u8,
        seed: u64,
    },
}

impl Capture {
    /// The capture of document `index`: scanners mostly, every third a screenshot, every fifth a phone photo.
    pub fn generate(seed: u64, index: usize) -> Capture {
        let mut r = Rng::new(seed ^ 0xCA97 ^ (index as u64).wrapping_mul(0x9E37));
        match index % 5 {
            1 => Capture::Screenshot { dpi: *r.pick(&[96, 110, 120]) },
            3 => Capture::Phone {
                dpi: *r.pick(&[150, 180, 200]),
                angle: r.float(-4.0, 4.0),
                blur: r.float(0.5, 1.1),
                quality: r.range(45, 75) as u8,
                seed: seed ^ index as u64,
            },
            _ => Capture::Scanner(ScanOptions::generate(seed ^ (index as u64 * 977))),
        }
    }
}

/// Blur, uneven light (darker towards one corner) and JPEG compression, as a phone camera gives.
fn phone_photo(png: &[u8], blur: f32, quality: u8, seed: u64) -> std::io::Result<Vec<u8>> {
    let img = image::load_from_memory(png).map_err(std::io::Error::other)?.to_luma8();
    let mut img = image::imageops::blur(&img, blur);
    let (w, h) = img.dimensions();
    let mut r = Rng::new(seed);
    let (cx, cy) = (r.float(0.0, 1.0) * w as f32, r.float(0.0, 1.0) * h as f32);
    let reach = (w * w + h * h) as f32;
    for (x, y, p) in img.enumerate_pixels_mut() {
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / reach;
        let light = 1.0 - 0.35 * d.min(1.0);
        let v = f32::from(p.0[0]) * light + 18.0 * (1.0 - light);
        p.0[0] = v.clamp(0.0, 255.0) as u8;
    }
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(enc).map_err(std::io::Error::other)?;
    Ok(out)
}

/// An invoice number in a shape the country's software prints.
fn invoice_number(r: &mut Rng, issue: NaiveDate, family: Family, country: Country) -> String {
    let y = issue.year();
    let n = r.range(1, 9999);
    if family == Family::Receipt {
        return match r.below(3) {
            0 => format!("{n:06}"),
            1 => format!("T{}-{n:05}", y % 100),
            _ => format!("{:04}-{n:06}", r.range(1, 20)),
        };
    }
    if family == Family::CreditNote {
        return match r.below(3) {
            0 => format!("CN-{y}-{n:04}"),
            1 => format!("GS{y}{n:04}"),
            _ => format!("AV{:02}/{n:04}", y % 100),
        };
    }
    match (country, r.below(4)) {
        (Country::Pt, 0 | 1) => format!("FT {}/{n}", ["A", "2025A", "FT01"][r.below(3) as usize]),
        (Country::It, 0 | 1) => format!("{n}/{y}"),
        (Country::Es, 0) => format!("A {n:06}"),
        (_, 0) => format!("{y}-{n:04}"),
        (_, 1) => format!("INV-{n:05}"),
        (_, 2) => format!("{}{n:05}", y % 100),
        _ => format!("R{y}/{n:04}"),
    }
}
