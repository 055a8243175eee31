//! The e-invoice reader: any bytes as CII / UBL / Facturae XML. Must never panic and must stay within its limits.
#![no_main]

use invoice_intake::extract::einvoice::{self, XmlLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(invoices) = einvoice::parse("fuzz.xml", data, &XmlLimits::default()) {
        for e in invoices {
            serde_json::to_string(&e).expect("an extraction always serialises");
        }
    }
});
