//! The text-field parser: any text as a PDF text layer or OCR output. Must never panic; what it returns must
//! serialise as the schema's JSON.
#![no_main]

use invoice_intake::extract::text::{read_invoice_text, OwnCompany};
use invoice_intake::extract::Source;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let own = OwnCompany { names: vec!["Example Buyer S.L.".into()], tax_ids: vec!["ESB76543214".into()] };
    for source in [Source::PdfText, Source::Ocr] {
        let e = read_invoice_text("fuzz.pdf", text, source, &own);
        serde_json::to_string(&e).expect("an extraction always serialises");
    }
});
