//! A PDF's embedded images read without poppler: any bytes as a PDF whose image streams are decoded and whose
//! page tree is walked.
#![no_main]

use invoice_intake::extract::qr::pdf_images;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let readable = pdf_images::readable(data);
    if let Ok(images) = pdf_images::code_images(data) {
        assert_eq!(readable, Ok(images.len()), "the images decoded are not those planned");
        for i in &images {
            assert!(u64::from(i.image.width()) * u64::from(i.image.height()) <= 16_000_000);
        }
    }
    if let Some((pages, drawn)) = pdf_images::image_pages(data, 50) {
        assert!(pages <= 51);
        assert!(drawn.values().flatten().all(|&p| (1..=pages).contains(&p)));
    }
});
