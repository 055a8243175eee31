//! Invoices that carry a code of each kind the extractor reads (Swiss QR-bill, EPC GiroCode, VeriFactu,
//! TicketBAI, Portuguese AT QR), each with the payload its specification prescribes and the fields that payload
//! carries. Used by `tests/qr.rs` and by `examples/gen_qr` (the benchmark's documents).

#![allow(dead_code)]

use super::pdf::SampleInvoice;
use rust_decimal::Decimal;

/// ISO 13616 check digits for `country` + `bban`.
pub fn iban(country: &str, bban: &str) -> String {
    let digits: String =
        format!("{bban}{country}00").chars().map(|c| c.to_digit(36).expect("alphanumeric").to_string()).collect();
    let rem = digits.bytes().fold(0u32, |r, d| (r * 10 + (d - b'0') as u32) % 97);
    format!("{country}{:02}{bban}", 98 - rem)
}

/// TicketBAI's CRC-8 (polynomial 0x07, initial 0), as its specification's annex gives it.
pub fn crc8(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |mut crc, b| {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
        }
        crc
    })
}

/// An EPC069-12 version 002 payload: beneficiary, IBAN, amount and the invoice number as remittance text.
pub fn epc(inv: &SampleInvoice, iban: &str, amount: Decimal) -> String {
    format!("BCD\n002\n1\nSCT\n\n{}\n{iban}\nEUR{amount}\n\n\n{}", inv.supplier_name, inv.number)
}

/// The IBAN the generated Spanish invoices print.
pub fn spanish_iban() -> String {
    iban("ES", "21000418450200051332")
}

/// One invoice with its code: the payload, the caption printed beside it, the source the extractor records for
/// the code's fields, and those fields (dotted result names) with the values the code gives them.
#[derive(Clone)]
pub struct Coded {
    pub name: &'static str,
    pub invoice: SampleInvoice,
    pub payload: String,
    pub caption: String,
    pub source: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

/// One invoice for each of the five kinds of code, every field of the code matching what the page prints.
pub fn five_kinds() -> Vec<Coded> {
    vec![verifactu(), ticketbai(), pt(), swiss(), girocode()]
}

pub fn verifactu() -> Coded {
    let inv = SampleInvoice::basic("VF-2025-0101");
    let payload = format!(
        "https://www2.agenciatributaria.gob.es/wlpl/TIKE-CONT/ValidarQR?nif={}&numserie={}&fecha={}&importe={}",
        inv.supplier_nif,
        inv.number,
        inv.issue_date.format("%d-%m-%Y"),
        inv.total()
    );
    Coded {
        name: "verifactu",
        fields: vec![
            ("supplier.tax_id", inv.supplier_nif.clone()),
            ("invoice_number", inv.number.clone()),
            ("issue_date", inv.issue_date.to_string()),
            ("total_amount", inv.total().to_string()),
        ],
        invoice: inv,
        payload,
        caption: "QR tributario: VERI*FACTU".into(),
        source: "qr_verifactu",
    }
}

/// TicketBAI: the identifier and the URL, each with its CRC-8. The page prints the series before the number.
pub fn ticketbai() -> Coded {
    let inv = SampleInvoice::basic("27174");
    let id = format!("TBAI-{}-{}-btFpwP8dcLGAF-", inv.supplier_nif, inv.issue_date.format("%d%m%y"));
    let id = format!("{id}{:03}", crc8(id.as_bytes()));
    let head = format!("https://batuz.eus/QRTBAI/?id={id}&s=T&nf={}&i={}", inv.number, inv.total());
    let payload = format!("{head}&cr={:03}", crc8(head.as_bytes()));
    let mut printed = inv.clone();
    printed.number = format!("T-{}", inv.number);
    Coded {
        name: "ticketbai",
        fields: vec![
            ("supplier.tax_id", inv.supplier_nif.clone()),
            ("invoice_number", inv.number.clone()),
            ("issue_date", inv.issue_date.to_string()),
            ("total_amount", inv.total().to_string()),
        ],
        invoice: printed,
        payload,
        caption: id,
        source: "qr_ticketbai",
    }
}

/// Portuguese AT QR: a Portuguese issuer, a buyer with a NIF, the ATCUD.
pub fn pt() -> Coded {
    let mut inv = SampleInvoice::basic("FT 2025A/17");
    inv.supplier_nif = "500000000".into();
    inv.customer_nif = "123456789".into();
    let payload = format!(
        "A:500000000*B:123456789*C:PT*D:FT*E:N*F:{}*G:FT 2025A/17*H:JJ7XK2MP-17*I1:PT*I7:{}*I8:{}*N:{}*O:{}*Q:kLp0*R:9999",
        inv.issue_date.format("%Y%m%d"),
        inv.net(),
        inv.tax(),
        inv.tax(),
        inv.total()
    );
    Coded {
        name: "pt",
        fields: vec![
            ("supplier.tax_id", "500000000".to_string()),
            ("customer.tax_id", "123456789".to_string()),
            ("customer.country", "PT".to_string()),
            ("invoice_number", "FT 2025A/17".to_string()),
            ("issue_date", inv.issue_date.to_string()),
            ("tax_amount", inv.tax().to_string()),
            ("total_amount", inv.total().to_string()),
        ],
        invoice: inv,
        payload,
        caption: "ATCUD: JJ7XK2MP-17".into(),
        source: "qr_pt",
    }
}

/// Swiss QR-bill with Swico S1 bill information: number, date and UID.
pub fn swiss() -> Coded {
    let mut inv = SampleInvoice::basic("RE-2025-88");
    let ch = "CH9300762011623852957".to_string();
    inv.iban = Some(ch.clone());
    inv.supplier_nif = "CHE-106.017.086".into();
    let payload = format!(
        "SPC\n0200\n1\n{ch}\nS\n{}\nBahnhofstrasse\n1\n8001\nZürich\nCH\n\n\n\n\n\n\n\n{}\nCHF\nS\n{}\nHauptgasse\n2\n3000\nBern\nCH\nNON\n\n\nEPD\n//S1/10/RE-2025-88/11/{}/30/106017086",
        inv.supplier_name,
        inv.total(),
        inv.customer_name,
        inv.issue_date.format("%y%m%d"),
    );
    Coded {
        name: "swiss",
        fields: vec![
            ("supplier.iban", ch),
            ("supplier.name", inv.supplier_name.clone()),
            ("supplier.country", "CH".into()),
            ("supplier.tax_id", "CHE106017086".into()),
            ("customer.name", inv.customer_name.clone()),
            ("customer.country", "CH".into()),
            ("currency", "CHF".into()),
            ("amount_due", inv.total().to_string()),
            ("invoice_number", "RE-2025-88".into()),
            ("issue_date", inv.issue_date.to_string()),
        ],
        invoice: inv,
        payload,
        caption: "Zahlteil".into(),
        source: "qr_swiss",
    }
}

/// EPC GiroCode with the IBAN the page prints.
pub fn girocode() -> Coded {
    let mut inv = SampleInvoice::basic("GC-2025-7");
    let page_iban = spanish_iban();
    inv.iban = Some(page_iban.clone());
    let payload = epc(&inv, &page_iban, inv.total());
    Coded {
        name: "epc",
        fields: vec![
            ("supplier.iban", page_iban),
            ("supplier.name", inv.supplier_name.clone()),
            ("currency", "EUR".into()),
            ("amount_due", inv.total().to_string()),
        ],
        invoice: inv,
        payload,
        caption: "GiroCode".into(),
        source: "qr_epc",
    }
}
