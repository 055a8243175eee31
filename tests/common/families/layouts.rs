//! How each family puts a document on the page.

use super::ids::Country;
use super::pdf::{Font, Page, A4};
use super::{Document, Family, Lang, MoneyFmt};
use rust_decimal::Decimal;

pub fn render(d: &Document) -> (Vec<Page>, [f32; 2]) {
    if d.family == Family::Receipt {
        return receipt(d);
    }
    let mut c = Canvas::new(d);
    match d.family {
        Family::DinWindow => din_window(&mut c),
        Family::LetterheadFooter => letterhead_footer(&mut c),
        Family::KeyValue => key_value(&mut c),
        Family::TwoColumn => two_column(&mut c),
        Family::HeaderGrid => header_grid(&mut c),
        Family::MultiPage => multi_page(&mut c),
        Family::CreditNote => credit_note(&mut c),
        Family::BillShip => bill_ship(&mut c),
        Family::TitleWords => title_words(&mut c),
        Family::GluedTotals => glued_totals(&mut c),
        Family::Receipt => unreachable!(),
    }
    (c.finish(), A4)
}

/// Pages being drawn, the pen's height on the current one, and what to print on each new page.
struct Canvas<'a> {
    d: &'a Document,
    pages: Vec<Page>,
    y: f32,
    font: Font,
    /// Repeat the table head and carry the subtotal over on a page break.
    carry: bool,
    /// Print `Page n of N` at the foot of every page.
    numbered: bool,
    footer: Vec<Vec<String>>,
    carried: Decimal,
}

impl<'a> Canvas<'a> {
    fn new(d: &'a Document) -> Canvas<'a> {
        Canvas {
            d,
            pages: vec![Page::default()],
            y: 800.0,
            font: d.font,
            carry: false,
            numbered: false,
            footer: Vec::new(),
            carried: Decimal::ZERO,
        }
    }

    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a page")
    }

    fn t(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str) {
        let f = self.font;
        self.page().text(f, x, y, size, bold, s);
    }

    fn r(&mut self, right: f32, y: f32, size: f32, bold: bool, s: &str) {
        let f = self.font;
        self.page().text_right(f, right, y, size, bold, s);
    }

    fn w(&self, size: f32, bold: bool, s: &str) -> f32 {
        self.font.text_width(bold, size, s)
    }

    /// Text shrunk until it fits `width`.
    fn fit(&mut self, x: f32, y: f32, size: f32, bold: bool, s: &str, width: f32) {
        let mut size = size;
        while size > 6.0 && self.w(size, bold, s) > width {
            size -= 0.5;
        }
        self.t(x, y, size, bold, s);
    }

    fn lines(&mut self, x: f32, y: f32, size: f32, lines: &[String]) -> f32 {
        let mut y = y;
        for l in lines {
            self.t(x, y, size, false, l);
            y -= size + 3.0;
        }
        y
    }

    /// The foot of every page: legal columns, and page numbers when asked.
    fn finish(mut self) -> Vec<Page> {
        let n = self.pages.len();
        let (l, numbered, footer) = (self.d.lang.labels(), self.numbered, std::mem::take(&mut self.footer));
        let font = self.font;
        for (k, p) in self.pages.iter_mut().enumerate() {
            if !footer.is_empty() {
                p.line(50.0, 78.0, 545.0, 78.0);
                let w = 495.0 / footer.len() as f32;
                for (i, col) in footer.iter().enumerate() {
                    let mut y = 68.0;
                    for line in col {
                        let mut size = 6.5;
                        while size > 4.5 && font.text_width(false, size, line) > w - 6.0 {
                            size -= 0.25;
                        }
                        p.text(font, 50.0 + w * i as f32, y, size, false, line);
                        y -= 8.5;
                    }
                }
            }
            if numbered || n > 1 {
                p.text_right(font, 545.0, 24.0, 7.5, false, &format!("{} {} {} {n}", l.page, k + 1, l.of));
            }
        }
        self.pages
    }
}

fn address(p: &super::Party) -> Vec<String> {
    vec![p.name.clone(), p.street.clone(), p.town.clone()]
}

fn country_name(c: Country, lang: Lang) -> Option<&'static str> {
    if c == lang.home() {
        return None;
    }
    Some(match c {
        Country::De => "Deutschland",
        Country::Fr => "France",
        Country::Nl => "Nederland",
        Country::Es => "España",
        Country::Ch => "Schweiz",
        Country::Us => "USA",
        Country::Gb => "United Kingdom",
        Country::It => "Italia",
        Country::Pt => "Portugal",
        Country::My => "Malaysia",
        Country::In => "India",
    })
}

/// The customer's address lines, with the country when it is abroad.
fn customer_lines(d: &Document) -> Vec<String> {
    let c = d.customer.as_ref().expect("an invoice has a customer");
    let mut v = address(c);
    if let Some(n) = country_name(c.country, d.lang) {
        v.push(n.to_string());
    }
    v
}

/// The short word for "number" after a title: `Rechnung Nr.`, `Invoice No.`.
fn no_word(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "No.",
        Lang::De | Lang::Nl => "Nr.",
        Lang::Fr => "n°",
        Lang::It => "n.",
        Lang::Es => "nº",
        Lang::Pt => "n.º",
    }
}

fn vat_line(d: &Document, slot: u32, id: &str) -> String {
    format!("{} {id}", d.pick(d.lang.labels().vat_id, slot))
}

fn title(d: &Document) -> String {
    let l = d.lang.labels();
    if d.family == Family::CreditNote {
        d.pick(l.credit_note, 1).to_string()
    } else {
        d.pick(l.invoice, 1).to_string()
    }
}

/// `(label, value)` rows of the header: number, date, due date (when printed).
fn header_rows(d: &Document) -> Vec<(String, String)> {
    let l = d.lang.labels();
    let mut rows =
        vec![(d.pick(l.number, 2).to_string(), d.number.clone()), (d.pick(l.date, 3).to_string(), d.date(d.issue))];
    if let Some(due) = d.due {
        rows.push((d.pick(l.due, 4).to_string(), d.date(due)));
    }
    rows
}

fn label_rows(c: &mut Canvas, x: f32, vx: f32, y: f32, size: f32, rows: &[(String, String)]) -> f32 {
    let mut y = y;
    for (label, value) in rows {
        c.t(x, y, size, true, label);
        c.t(vx, y, size, false, value);
        y -= size + 5.0;
    }
    y
}

/// The item table from `c.y` down, breaking pages as needed; amounts right-aligned at `right`.
fn items(c: &mut Canvas, x: f32, right: f32) {
    let d = c.d;
    let l = d.lang.labels();
    let cur = if d.money == MoneyFmt::Bare { format!(" ({})", d.currency) } else { String::new() };
    let head = |c: &mut Canvas| {
        let y = c.y;
        c.page().fill_rect(x - 4.0, y - 4.0, right - x + 8.0, 15.0, 0.88);
        c.t(x, y, 8.5, true, l.description);
        c.r(right - 200.0, y, 8.5, true, l.qty);
        c.r(right - 95.0, y, 8.5, true, l.unit_price);
        c.r(right, y, 8.5, true, &format!("{}{cur}", l.amount));
        c.y -= 18.0;
    };
    head(c);
    let mut sum = Decimal::ZERO;
    for item in &d.items {
        if c.y < 120.0 {
            if c.carry {
                let y = c.y + 8.0;
                c.page().line(x, y, right, y);
                c.t(right - 200.0, c.y - 4.0, 8.5, true, l.carried);
                c.r(right, c.y - 4.0, 8.5, true, &d.money(sum));
            }
            c.pages.push(Page::default());
            c.y = 800.0;
            let cont = format!("{} {} ({})", title(d), d.number, l.continued);
            c.t(x, c.y, 9.0, true, &d.supplier.name);
            c.r(right, c.y, 9.0, false, &cont);
            c.y -= 26.0;
            if c.carry {
                c.t(right - 200.0, c.y, 8.5, true, l.carried);
                c.r(right, c.y, 8.5, true, &d.money(sum));
                c.y -= 18.0;
                head(c);
            }
        }
        let amount = d.line_amount(item);
        sum += amount;
        c.fit(x, c.y, 9.0, false, &item.description, right - x - 250.0);
        c.r(right - 200.0, c.y, 9.0, false, &d.qty(item.quantity));
        c.r(right - 95.0, c.y, 9.0, false, &d.amount(item.price * d.sign_of()));
        c.r(right, c.y, 9.0, false, &d.money(amount));
        c.y -= 13.0;
    }
    let y = c.y + 8.0;
    c.page().line(x - 4.0, y, right + 4.0, y);
    c.carried = sum;
    c.y -= 10.0;
}

impl Document {
    fn sign_of(&self) -> Decimal {
        if self.family == Family::CreditNote {
            Decimal::NEGATIVE_ONE
        } else {
            Decimal::ONE
        }
    }

    /// The totals as `(label, amount, bold)` rows.
    fn total_rows(&self) -> Vec<(String, String, bool)> {
        let l = self.lang.labels();
        let mut rows = vec![(self.pick(l.net, 5).to_string(), self.money(self.net()), false)];
        for (rate, _, tax) in self.bases() {
            rows.push((self.pick(l.vat, 6).replace("{rate}", &self.rate(rate)), self.money(tax), false));
        }
        rows.push((self.pick(l.total, 7).to_string(), self.money(self.total()), true));
        if self.due_line {
            rows.push((self.pick(l.amount_due, 8).to_string(), self.money(self.total()), true));
        }
        rows
    }
}

/// The totals block: labels from `x`, amounts right-aligned at `right`.
fn totals(c: &mut Canvas, x: f32, right: f32) {
    let rows = c.d.total_rows();
    if c.y < 80.0 + 15.0 * rows.len() as f32 {
        c.pages.push(Page::default());
        c.y = 780.0;
    }
    for (label, amount, bold) in rows {
        c.t(x, c.y, 9.5, bold, &label);
        c.r(right, c.y, 9.5, bold, &amount);
        c.y -= 15.0;
    }
    if let Some(note) = c.d.currency_note() {
        c.t(x, c.y, 7.5, false, &note);
        c.y -= 12.0;
    }
}

/// Payment terms and the bank account, when the layout prints them in the body.
fn payment(c: &mut Canvas, x: f32) {
    let d = c.d;
    let l = d.lang.labels();
    c.y -= 10.0;
    if c.y < 110.0 {
        c.pages.push(Page::default());
        c.y = 780.0;
    }
    c.t(x, c.y, 8.5, false, l.payment_terms);
    c.y -= 12.0;
    if let Some(iban) = &d.iban {
        c.t(x, c.y, 8.5, false, &format!("{}: IBAN {iban}", l.bank));
        c.y -= 12.0;
    }
}

/// A footer in columns: address, management and register, tax ID, bank.
fn legal_footer(d: &Document) -> Vec<Vec<String>> {
    let l = d.lang.labels();
    let s = &d.supplier;
    let mut cols = vec![vec![s.name.clone(), s.street.clone(), s.town.clone()]];
    let town = s.town.split_once(' ').map_or(s.town.as_str(), |(_, t)| t);
    cols.push(vec![format!("{}: A. Example", l.managing), format!("{} {town} {}", l.register, 10_000 + d.index * 37)]);
    if d.supplier_tax_printed {
        cols.push(vec![vat_line(d, 9, &s.tax_id), format!("{} +00 {} {}", l.phone, 100 + d.index, 4000 + d.index)]);
    }
    if let Some(iban) = &d.iban {
        cols.push(vec![l.bank.to_string(), format!("IBAN {iban}")]);
    }
    cols
}

/// DIN 5008 form B: sender line and addressee in the window (no label), information block right of it,
/// subject line, and the supplier's tax ID and bank only in the footer.
fn din_window(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    // Letterhead: the name large, top right or top left.
    let right_window = d.index % 3 == 2;
    let name_w = c.w(16.0, true, &s.name);
    let lx = if right_window { 50.0 } else { 545.0 - name_w };
    c.t(lx, 790.0, 16.0, true, &s.name);
    // The window, 20 mm from the left (or right-hand, Swiss style), 45 mm from the top.
    let wx = if right_window { 320.0 } else { 57.0 };
    let sender = format!("{} · {} · {}", s.name, s.street, s.town);
    c.fit(wx, 712.0, 7.0, false, &sender, 240.0);
    let end = wx + c.w(7.0, false, &sender).min(240.0);
    c.page().line(wx, 709.0, end, 709.0);
    let mut lines = customer_lines(d);
    if d.customer_tax_printed {
        lines.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    c.lines(wx, 690.0, 10.0, &lines);
    // Information block.
    let ix = if right_window { 57.0 } else { 354.0 };
    let mut rows = vec![(l.customer_no.to_string(), format!("{}", 10_000 + d.index * 13))];
    rows.extend(header_rows(d));
    let vx = ix + rows.iter().map(|(a, _)| c.w(8.5, true, a)).fold(0.0, f32::max) + 8.0;
    label_rows(c, ix, vx, 700.0, 8.5, &rows);
    // Subject line.
    let subject = if d.index % 2 == 0 { format!("{} {} {}", title(d), no_word(d.lang), d.number) } else { title(d) };
    c.t(57.0, 585.0, 12.0, true, &subject);
    c.t(57.0, 560.0, 10.0, false, l.greeting);
    c.fit(57.0, 546.0, 10.0, false, l.intro, 480.0);
    c.y = 520.0;
    items(c, 57.0, 540.0);
    c.y -= 6.0;
    totals(c, 330.0, 540.0);
    c.y -= 8.0;
    c.t(57.0, c.y, 9.0, false, l.payment_terms);
    c.footer = legal_footer(d);
}

/// Letterhead across the top (no tax ID there), a labelled customer block, and the legal footer.
fn letterhead_footer(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    let w = c.w(18.0, true, &s.name);
    c.t((595.0 - w) / 2.0, 792.0, 18.0, true, &s.name);
    let sub = format!("{} · {} · {} +00 {} {}", s.street, s.town, l.phone, 200 + d.index, 5000 + d.index);
    let w = c.w(8.5, false, &sub);
    c.t((595.0 - w) / 2.0, 776.0, 8.5, false, &sub);
    c.page().line(50.0, 768.0, 545.0, 768.0);
    c.t(50.0, 735.0, 20.0, true, &title(d));
    let rows = header_rows(d);
    let vx = 330.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 10.0;
    label_rows(c, 330.0, vx, 740.0, 9.0, &rows);
    c.t(50.0, 690.0, 9.0, true, d.pick(l.bill_to, 12));
    let mut lines = customer_lines(d);
    if d.customer_tax_printed {
        lines.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    c.lines(50.0, 676.0, 10.0, &lines);
    c.y = 590.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    c.y -= 6.0;
    c.t(50.0, c.y, 8.5, false, l.payment_terms);
    // One centred legal block.
    let mut legal = vec![format!("{} · {} · {}", s.name, s.street, s.town)];
    let mut second = Vec::new();
    if d.supplier_tax_printed {
        second.push(vat_line(d, 9, &s.tax_id));
    }
    let town = s.town.split_once(' ').map_or(s.town.as_str(), |(_, t)| t);
    second.push(format!("{} {town} {}", l.register, 20_000 + d.index * 11));
    legal.push(second.join(" · "));
    if let Some(iban) = &d.iban {
        legal.push(format!("{}: IBAN {iban}", l.bank));
    }
    let font = c.font;
    let pages = c.pages.len();
    for k in 0..pages {
        let p = &mut c.pages[k];
        p.line(50.0, 72.0, 545.0, 72.0);
        for (i, line) in legal.iter().enumerate() {
            let w = font.text_width(false, 7.0, line);
            p.text(font, (595.0 - w) / 2.0, 62.0 - 9.0 * i as f32, 7.0, false, line);
        }
    }
}

/// Key–value rows under Seller / Buyer headings, values far right of the labels.
fn key_value(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    c.t(50.0, 790.0, 20.0, true, &title(d));
    let rows = header_rows(d);
    let vx = 330.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 24.0;
    label_rows(c, 330.0, vx, 770.0, 9.0, &rows);
    let vx = [190.0, 230.0, 260.0][d.index % 3];
    let mut y = 740.0;
    let parties: [(&str, &super::Party, bool); 2] = [
        (d.pick(l.seller, 13), &d.supplier, d.supplier_tax_printed),
        (d.pick(l.buyer, 14), d.customer.as_ref().unwrap(), d.customer_tax_printed),
    ];
    for (heading, p, tax) in parties {
        c.t(50.0, y, 11.0, true, heading);
        c.page().line(50.0, y - 4.0, 545.0, y - 4.0);
        y -= 18.0;
        let mut kv = vec![(l.name, p.name.clone()), (l.address, format!("{}, {}", p.street, p.town))];
        if tax {
            kv.push((d.pick(l.vat_id, 15), p.tax_id.clone()));
        }
        for (k, v) in kv {
            c.t(50.0, y, 9.5, false, k);
            c.t(vx, y, 9.5, false, &v);
            y -= 14.0;
        }
        y -= 14.0;
    }
    c.y = y - 10.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    payment(c, 50.0);
}

/// Supplier and customer in two boxes side by side, headed From / To.
fn two_column(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    c.t(50.0, 790.0, 22.0, true, &title(d));
    let rows = header_rows(d);
    let vx = 330.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 10.0;
    label_rows(c, 330.0, vx, 768.0, 9.0, &rows);
    let cust = d.customer.as_ref().unwrap();
    let blocks = [
        (l.from, &d.supplier, d.supplier_tax_printed, None),
        (l.to, cust, d.customer_tax_printed, country_name(cust.country, d.lang)),
    ];
    for (k, (head, p, tax, country)) in blocks.into_iter().enumerate() {
        let x = 50.0 + 250.0 * k as f32;
        c.page().rect(x - 4.0, 625.0, 240.0, 100.0, false);
        c.page().fill_rect(x - 4.0, 709.0, 240.0, 16.0, 0.85);
        c.t(x, 713.0, 9.0, true, head);
        c.fit(x, 695.0, 10.5, true, &p.name, 230.0);
        let mut lines = vec![p.street.clone(), p.town.clone()];
        lines.extend(country.map(str::to_string));
        if tax {
            lines.push(vat_line(d, 16, &p.tax_id));
        }
        c.lines(x, 681.0, 9.0, &lines);
    }
    c.y = 595.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    payment(c, 50.0);
}

/// Letterhead with tax ID, then a ruled grid: number / date / due / customer no., each value under its label.
fn header_grid(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    c.t(50.0, 795.0, 15.0, true, &s.name);
    let mut lh = vec![s.street.clone(), s.town.clone()];
    if d.supplier_tax_printed {
        lh.push(vat_line(d, 9, &s.tax_id));
    }
    c.lines(50.0, 780.0, 8.5, &lh);
    c.r(545.0, 790.0, 20.0, true, &title(d));
    // The grid.
    let mut cells: Vec<(String, String)> = vec![(d.pick(l.number_short, 17).to_string(), d.number.clone())];
    cells.push((d.pick(&[l.date[0], l.date[2]], 18).trim_end_matches(':').trim().to_string(), d.date(d.issue)));
    if let Some(due) = d.due {
        cells.push((d.pick(l.due, 19).trim_end_matches(':').trim().to_string(), d.date(due)));
    }
    cells.push((l.customer_no.trim_end_matches(':').trim().to_string(), format!("K{:05}", 300 + d.index * 7)));
    let w = 495.0 / cells.len() as f32;
    let top = 735.0;
    c.page().fill_rect(50.0, top - 14.0, 495.0, 14.0, 0.88);
    c.page().rect(50.0, top - 34.0, 495.0, 34.0, false);
    for (k, (label, value)) in cells.iter().enumerate() {
        let x = 50.0 + w * k as f32;
        if k > 0 {
            c.page().line(x, top, x, top - 34.0);
        }
        c.t(x + 4.0, top - 10.0, 8.0, true, label);
        c.t(x + 4.0, top - 28.0, 9.5, false, value);
    }
    c.t(50.0, 680.0, 9.0, true, d.pick(l.bill_to, 12));
    let mut lines = customer_lines(d);
    if d.customer_tax_printed {
        lines.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    c.lines(50.0, 666.0, 10.0, &lines);
    c.y = 585.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    payment(c, 50.0);
}

/// A long invoice: the item table runs over pages with the subtotal carried over; totals on the last page.
fn multi_page(c: &mut Canvas) {
    c.carry = true;
    c.numbered = true;
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    c.t(50.0, 795.0, 15.0, true, &s.name);
    let mut lh = vec![s.street.clone(), s.town.clone()];
    if d.supplier_tax_printed {
        lh.push(vat_line(d, 9, &s.tax_id));
    }
    c.lines(50.0, 780.0, 8.5, &lh);
    c.t(330.0, 795.0, 18.0, true, &title(d));
    let rows = header_rows(d);
    let vx = 330.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 10.0;
    label_rows(c, 330.0, vx, 772.0, 9.0, &rows);
    c.t(50.0, 700.0, 9.0, true, d.pick(l.bill_to, 12));
    let mut lines = customer_lines(d);
    if d.customer_tax_printed {
        lines.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    c.lines(50.0, 686.0, 10.0, &lines);
    c.y = 610.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    payment(c, 50.0);
}

/// A credit note: title, the invoice it corrects, negative amounts.
fn credit_note(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    c.t(50.0, 795.0, 15.0, true, &s.name);
    let mut lh = vec![s.street.clone(), s.town.clone()];
    if d.supplier_tax_printed {
        lh.push(vat_line(d, 9, &s.tax_id));
    }
    c.lines(50.0, 780.0, 8.5, &lh);
    c.r(545.0, 795.0, 16.0, true, &title(d));
    let mut rows = header_rows(d);
    rows.push((format!("{}:", l.rectifies), d.corrects.clone().unwrap_or_default()));
    let vx = 300.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 10.0;
    label_rows(c, 300.0, vx, 770.0, 9.0, &rows);
    c.t(50.0, 700.0, 9.0, true, d.pick(l.bill_to, 12));
    let mut lines = customer_lines(d);
    if d.customer_tax_printed {
        lines.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    c.lines(50.0, 686.0, 10.0, &lines);
    c.y = 610.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    payment(c, 50.0);
}

/// Bill to and Ship to side by side (the ship-to party is not the customer).
fn bill_ship(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    c.t(50.0, 795.0, 15.0, true, &s.name);
    let mut lh = vec![s.street.clone(), s.town.clone()];
    if d.supplier_tax_printed {
        lh.push(vat_line(d, 9, &s.tax_id));
    }
    c.lines(50.0, 780.0, 8.5, &lh);
    c.r(545.0, 795.0, 20.0, true, &title(d));
    let rows = header_rows(d);
    let vx = 340.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 10.0;
    label_rows(c, 340.0, vx, 765.0, 9.0, &rows);
    let mut bill = customer_lines(d);
    if d.customer_tax_printed {
        bill.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    let ship = address(d.ship_to.as_ref().unwrap());
    // Ship-to first (left) on some documents.
    let ship_left = d.index % 2 == 1;
    let blocks = [(d.pick(l.bill_to, 12), bill), (d.pick(l.ship_to, 20), ship)];
    for (k, (head, lines)) in blocks.iter().enumerate() {
        let x = if (k == 1) == ship_left { 50.0 } else { 310.0 };
        c.t(x, 690.0, 9.0, true, head);
        c.lines(x, 676.0, 9.5, lines);
    }
    c.y = 590.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    payment(c, 50.0);
}

/// The title runs into the number: `Invoice for consulting services No. INV-00042`.
fn title_words(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    c.t(50.0, 795.0, 15.0, true, &s.name);
    let mut lh = vec![s.street.clone(), s.town.clone()];
    if d.supplier_tax_printed {
        lh.push(vat_line(d, 9, &s.tax_id));
    }
    c.lines(50.0, 780.0, 8.5, &lh);
    c.t(340.0, 780.0, 9.0, true, d.pick(l.bill_to, 12));
    let mut lines = customer_lines(d);
    if d.customer_tax_printed {
        lines.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    c.lines(340.0, 766.0, 9.5, &lines);
    let word = l.invoice[1];
    let no = no_word(d.lang);
    let head = format!("{word} {} {no} {}", d.pick(l.title_for, 21), d.number);
    c.fit(50.0, 680.0, 15.0, true, &head, 495.0);
    let mut rows = vec![(d.pick(l.date, 3).to_string(), d.date(d.issue))];
    if let Some(due) = d.due {
        rows.push((d.pick(l.due, 4).to_string(), d.date(due)));
    }
    let vx = 50.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 10.0;
    label_rows(c, 50.0, vx, 660.0, 9.0, &rows);
    c.y = 610.0;
    items(c, 50.0, 545.0);
    totals(c, 330.0, 545.0);
    payment(c, 50.0);
}

/// A compact summary box whose labels sit tight against their amounts (`TOTAL1.234,56`).
fn glued_totals(c: &mut Canvas) {
    let d = c.d;
    let l = d.lang.labels();
    let s = &d.supplier;
    c.t(50.0, 795.0, 15.0, true, &s.name);
    let mut lh = vec![format!("{} · {}", s.street, s.town)];
    if d.supplier_tax_printed {
        lh.push(vat_line(d, 9, &s.tax_id));
    }
    c.lines(50.0, 780.0, 8.5, &lh);
    c.r(545.0, 795.0, 18.0, true, &title(d));
    let rows = header_rows(d);
    let vx = 340.0 + rows.iter().map(|(a, _)| c.w(9.0, true, a)).fold(0.0, f32::max) + 4.0;
    label_rows(c, 340.0, vx, 770.0, 9.0, &rows);
    c.t(50.0, 720.0, 9.0, true, d.pick(l.bill_to, 12));
    let mut lines = customer_lines(d);
    if d.customer_tax_printed {
        lines.push(vat_line(d, 10, &d.customer.as_ref().unwrap().tax_id));
    }
    c.lines(50.0, 706.0, 10.0, &lines);
    c.y = 620.0;
    items(c, 50.0, 545.0);
    // The summary: label, then the amount one hair's breadth after it, in bold capitals.
    let rows = d.total_rows();
    c.y -= 6.0;
    let top = c.y + 12.0;
    for (label, amount, bold) in &rows {
        let label = label.to_uppercase();
        let w = c.w(10.0, true, &label);
        c.t(330.0, c.y, 10.0, true, &label);
        c.t(330.0 + w + 0.8, c.y, 10.0, *bold, amount);
        c.y -= 14.0;
    }
    let y = c.y;
    c.page().rect(325.0, y + 8.0, 220.0, top - y - 8.0, false);
    if let Some(note) = d.currency_note() {
        c.t(330.0, c.y - 2.0, 7.5, false, &note);
        c.y -= 12.0;
    }
    payment(c, 50.0);
}

/// A till slip on 80 mm paper.
fn receipt(d: &Document) -> (Vec<Page>, [f32; 2]) {
    let l = d.lang.labels();
    let pay = d.payment.as_ref().expect("a receipt has a payment");
    let f = Font::Receipt;
    let width = 226.0;
    let (x, right) = (10.0, width - 10.0);
    let size = 8.0;
    let mut ops: Vec<(f32, bool, bool, String, String)> = Vec::new(); // (size, bold, centred, left, right)
    let mut row = |size: f32, bold: bool, centred: bool, a: &str, b: &str| {
        ops.push((size, bold, centred, a.to_string(), b.to_string()));
    };
    let s = &d.supplier;
    row(10.0, true, true, &s.name, "");
    row(size, false, true, &s.street, "");
    row(size, false, true, &s.town, "");
    let country = s.country;
    let tax_label = match country {
        Country::My => "SST Reg No:",
        Country::In => "GSTIN:",
        Country::Gb => "VAT Reg No:",
        _ => d.pick(l.vat_id, 9),
    };
    if d.supplier_tax_printed {
        row(size, false, true, &format!("{tax_label} {}", s.tax_id), "");
    }
    let title = d.pick(l.receipt, 1);
    if !title.is_empty() {
        row(9.0, true, true, title, "");
    }
    let sep = "-".repeat(36);
    let no_label = match (d.lang, country) {
        (Lang::En, Country::My) => "Cash Inv No.:",
        (Lang::En, Country::In) => "Bill No:",
        (Lang::En, _) => "Receipt No:",
        (Lang::Es, _) => "Nº ticket:",
        (Lang::De, _) => "Bon-Nr.:",
        (Lang::Fr, _) => "Ticket n°",
        (Lang::Nl, _) => "Bonnr.:",
        (Lang::It, _) => "Doc. n.",
        (Lang::Pt, _) => "Doc. n.º",
    };
    row(size, false, false, &format!("{} {}", d.date(d.issue), pay.time), "");
    row(size, false, false, &format!("{no_label} {}", d.number), "");
    row(size, false, false, &sep, "");
    for item in &d.items {
        let amount = d.line_amount(item);
        if item.quantity > Decimal::ONE {
            row(size, false, false, &item.description, "");
            row(
                size,
                false,
                false,
                &format!("  {} x {}", d.qty(item.quantity), d.amount(item.price)),
                &d.amount(amount),
            );
        } else {
            row(size, false, false, &item.description, &d.amount(amount));
        }
    }
    row(size, false, false, &sep, "");
    let tax_word = match country {
        Country::My | Country::In => "GST",
        Country::Us => "Tax",
        _ => "VAT",
    };
    let local_tax = match d.lang {
        Lang::En => tax_word,
        Lang::De => "MwSt.",
        Lang::Fr => "TVA",
        Lang::Nl => "BTW",
        Lang::Es | Lang::It | Lang::Pt => "IVA",
    };
    if pay.show_net {
        let excl = match d.lang {
            Lang::En => format!("Total excl. {tax_word}"),
            Lang::De => "Netto".to_string(),
            _ => d.pick(l.net, 5).to_string(),
        };
        row(size, false, false, &excl, &d.amount(d.net()));
        for (rate, _, tax) in d.bases() {
            if country == Country::In {
                let half = (tax / Decimal::TWO).round_dp(2);
                row(size, false, false, &format!("CGST {}", d.rate(rate / Decimal::TWO)), &d.amount(half));
                row(size, false, false, &format!("SGST {}", d.rate(rate / Decimal::TWO)), &d.amount(tax - half));
            } else {
                row(size, false, false, &format!("{local_tax} {}", d.rate(rate)), &d.amount(tax));
            }
        }
    }
    let total_label = match (d.lang, country) {
        (Lang::En, Country::My | Country::In) => format!("Total (incl. {tax_word})"),
        (Lang::En, _) => "TOTAL".to_string(),
        _ => d.pick(&["TOTAL", "Total"], 7).to_string(),
    };
    let sym = if d.money == MoneyFmt::Bare { d.currency } else { d.symbol };
    let total_text = format!("{sym} {}", d.amount(d.total()));
    if pay.rounding.is_zero() {
        row(10.0, true, false, &total_label, &total_text);
    } else {
        row(size, false, false, &total_label, &d.amount(d.total()));
        row(size, false, false, l.rounding, &d.amount(pay.rounding));
        let to_pay = match d.lang {
            Lang::En => "TOTAL DUE",
            Lang::De => "ZU ZAHLEN",
            Lang::Es => "TOTAL A PAGAR",
            Lang::Fr => "NET A PAYER",
            Lang::Nl => "TE BETALEN",
            Lang::It => "TOTALE",
            Lang::Pt => "TOTAL A PAGAR",
        };
        row(10.0, true, false, to_pay, &format!("{sym} {}", d.amount(d.paid())));
    }
    row(size, false, false, l.cash, &d.amount(pay.tendered));
    row(size, false, false, l.change, &d.amount(pay.tendered - d.paid()));
    row(size, false, false, &sep, "");
    row(size, false, true, l.thanks, "");
    let height = 40.0 + ops.iter().map(|o| o.0 + 4.0).sum::<f32>();
    let mut p = Page::default();
    let mut y = height - 24.0;
    for (sz, bold, centred, a, b) in ops {
        if centred {
            let w = f.text_width(bold, sz, &a);
            p.text(f, ((width - w) / 2.0).max(4.0), y, sz, bold, &a);
        } else {
            p.text(f, x, y, sz, bold, &a);
            if !b.is_empty() {
                p.text_right(f, right, y, sz, bold, &b);
            }
        }
        y -= sz + 4.0;
    }
    (vec![p], [width, height.ceil()])
}
