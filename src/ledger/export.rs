//! The ledger as files: `invoices list` (table, CSV, JSON) and `export` (CSV, libro registro). Pure: rows in,
//! text out.

use chrono::Datelike;
use rust_decimal::Decimal;

use crate::extract::model::TaxLine;
use crate::store::ledger::LedgerRow;

/// The columns of `invoices list --format csv` and `export --format csv`, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "state",
    "received_at",
    "supplier_name",
    "supplier_tax_id",
    "invoice_number",
    "issue_date",
    "due_date",
    "currency",
    "net_amount",
    "tax_amount",
    "total_amount",
    "amount_due",
    "iban",
    "source",
    "document_type",
    "customer_name",
    "customer_tax_id",
    "sender",
];

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn amount(v: Option<Decimal>) -> String {
    v.map(|d| d.to_string()).unwrap_or_default()
}

/// One invoice's values in `CSV_COLUMNS` order.
pub fn csv_values(r: &LedgerRow) -> Vec<String> {
    vec![
        r.id.to_string(),
        r.state.clone(),
        r.received_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        text(&r.supplier_name),
        text(&r.supplier_tax_id),
        text(&r.invoice_number),
        r.issue_date.map(|d| d.to_string()).unwrap_or_default(),
        r.due_date.map(|d| d.to_string()).unwrap_or_default(),
        text(&r.currency),
        amount(r.net_amount),
        amount(r.tax_amount),
        amount(r.total_amount),
        amount(r.amount_due),
        text(&r.iban),
        text(&r.source),
        text(&r.document_type),
        text(&r.customer_name),
        text(&r.customer_tax_id),
        r.sender.clone(),
    ]
}

/// RFC 4180: a field with the separator, a quote or a line break is quoted, its quotes doubled. A field that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading apostrophe, unless it is a
/// number: supplier names come from the internet.
fn field(v: &str, sep: char) -> String {
    let risky = v.starts_with(['=', '+', '@']) || (v.starts_with('-') && v.parse::<Decimal>().is_err());
    let v = if risky { format!("'{v}") } else { v.to_string() };
    if v.contains([sep, '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

pub fn csv_line(values: &[String], sep: char) -> String {
    values.iter().map(|v| field(v, sep)).collect::<Vec<_>>().join(&sep.to_string())
}

pub fn csv(rows: &[LedgerRow]) -> String {
    let mut out = csv_line(&CSV_COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>(), ',');
    out.push('\n');
    for r in rows {
        out.push_str(&csv_line(&csv_values(r), ','));
        out.push('\n');
    }
    out
}

pub fn json(rows: &[LedgerRow]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                let mut o = serde_json::Map::new();
                for (k, v) in CSV_COLUMNS.iter().zip(csv_values(r)) {
                    o.insert(k.to_string(), if v.is_empty() { serde_json::Value::Null } else { v.into() });
                }
                o.insert("review_reasons".into(), r.review_reasons.clone());
                o.insert("fraud_signals".into(), r.fraud_signals.clone());
                serde_json::Value::Object(o)
            })
            .collect(),
    )
}

/// A fixed-width table for a terminal.
pub fn table(rows: &[LedgerRow]) -> String {
    let header = ["id", "state", "received", "supplier", "tax id", "number", "issued", "total", "cur"];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let supplier: String = text(&r.supplier_name).chars().take(28).collect();
        lines.push(vec![
            r.id.to_string(),
            r.state.clone(),
            r.received_at.format("%Y-%m-%d").to_string(),
            supplier,
            text(&r.supplier_tax_id),
            text(&r.invoice_number),
            r.issue_date.map(|d| d.to_string()).unwrap_or_default(),
            amount(r.total_amount),
            text(&r.currency),
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{} invoices\n", rows.len()));
    out
}

/// The columns of the libro registro de facturas recibidas, as the AEAT's model names them (Orden
/// HAC/773/2019 and the AEAT's "Formato de libros registro de IVA"), trimmed to what an invoice shows.
pub const LIBRO_COLUMNS: &[&str] = &[
    "Ejercicio",
    "Periodo",
    "Fecha Expedición",
    "Fecha Operación",
    "Serie-Número",
    "NIF Expedidor",
    "Nombre Expedidor",
    "Base Imponible",
    "Tipo de IVA",
    "Cuota IVA Soportado",
    "Tipo Retención IRPF",
    "Importe Retención IRPF",
    "Total Factura",
];

/// One line per invoice and VAT rate, `;`-separated with decimal commas as Spanish spreadsheets read them. The
/// invoice's IRPF withholding and total go on its first line only, so that summing a column gives the period's
/// figures. An invoice without a known breakdown gets one line with its net and tax and no rate: a rate is never
/// guessed.
pub fn libro_registro(rows: &[LedgerRow]) -> String {
    let mut out = csv_line(&LIBRO_COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>(), ';');
    out.push('\n');
    for r in rows {
        for line in libro_lines(r) {
            out.push_str(&csv_line(&line, ';'));
            out.push('\n');
        }
    }
    out
}

/// An invoice's lines of the libro registro.
pub fn libro_lines(r: &LedgerRow) -> Vec<Vec<String>> {
    let date = r.issue_date.unwrap_or_else(|| r.received_at.date_naive());
    let period = format!("{}T", (date.month0() / 3) + 1);
    let taxes = breakdown(r);
    let (irpf_rate, irpf) = withholding(r);
    taxes
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let first = i == 0;
            vec![
                date.year().to_string(),
                period.clone(),
                r.issue_date.map(|d| d.format("%d/%m/%Y").to_string()).unwrap_or_default(),
                String::new(),
                text(&r.invoice_number),
                text(&r.supplier_tax_id),
                text(&r.supplier_name),
                comma(t.base),
                comma(t.rate),
                comma(t.amount),
                if first { comma(irpf_rate) } else { String::new() },
                if first { comma(irpf) } else { String::new() },
                if first { comma(r.total_amount) } else { String::new() },
            ]
        })
        .collect()
}

fn comma(v: Option<Decimal>) -> String {
    v.map(|d| d.to_string().replace('.', ",")).unwrap_or_default()
}

/// The tax lines to book: the stored breakdown, whose single line follows corrected net and tax amounts; else
/// one line with the net and tax and no rate.
fn breakdown(r: &LedgerRow) -> Vec<TaxLine> {
    let stored: Vec<TaxLine> = r
        .result
        .get("taxes")
        .cloned()
        .and_then(|t| serde_json::from_value::<Option<Vec<TaxLine>>>(t).ok())
        .flatten()
        .unwrap_or_default();
    match stored.as_slice() {
        [] => vec![TaxLine { rate: None, base: r.net_amount, amount: r.tax_amount, category: None }],
        [one] => vec![TaxLine { base: r.net_amount.or(one.base), amount: r.tax_amount.or(one.amount), ..one.clone() }],
        _ => stored,
    }
}

/// The IRPF withheld: what the total exceeds the amount due by, when the invoice says it withholds; with its
/// rate when that is one of the rates the law sets (19, 15, 7, 2 or 1 %) on the net amount.
fn withholding(r: &LedgerRow) -> (Option<Decimal>, Option<Decimal>) {
    let says_so = r
        .result
        .get("warnings")
        .and_then(|w| w.as_array())
        .is_some_and(|w| w.iter().any(|x| x.as_str().is_some_and(|s| s.contains("IRPF"))));
    let (Some(total), Some(due)) = (r.total_amount, r.amount_due) else { return (None, None) };
    if !says_so || due >= total {
        return (None, None);
    }
    let withheld = total - due;
    let rate = r.net_amount.filter(|n| !n.is_zero()).and_then(|net| {
        [19, 15, 7, 2, 1]
            .into_iter()
            .map(Decimal::from)
            .find(|rate| (net * rate / Decimal::from(100)).round_dp(2) == withheld)
    });
    (rate, Some(withheld))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("Talleres, S.L.", ','), "\"Talleres, S.L.\"");
        assert_eq!(field("say \"hi\"", ','), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)", ','), "'=HYPERLINK(1)");
        assert_eq!(field("-120.00", ','), "-120.00");
    }
}
