//! The mails we write from outside data: any subject, Message-ID, References, supplier name or invoice number
//! gives a reply, a confirmation (with the original attached under its own name) and an alert digest that lettre
//! builds, whose every line is within RFC 5322's 998 octets, and that parse again.
#![no_main]

use invoice_intake::config::Language;
use invoice_intake::extract::{validate, Extraction, Party};
use invoice_intake::mail::render::{AlertsView, QuarantinedMail};
use invoice_intake::mail::reply::{self, Addresses, Attachment, Confirmation, Outcome, ReplyContent, Thread};
use libfuzzer_sys::fuzz_target;

fn check(raw: &[u8]) {
    for line in raw.split(|&b| b == b'\n') {
        assert!(line.len() <= 999, "a line of {} octets", line.len());
    }
    assert!(mail_parser::MessageParser::default().parse(raw).is_some(), "the mail parses again");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Fields separated by NUL; repeated so short inputs still fill every field with something long.
    let mut fields = text.split('\0').map(|f| f.repeat(1 + 4000 / (f.len() + 1)));
    let mut next = || fields.next().unwrap_or_default();
    let (subject, message_id, name, number, currency) = (next(), next(), next(), next(), next());
    let references: Vec<String> = next().split(' ').map(str::to_string).collect();

    let mut e = Extraction::empty(name.clone());
    e.invoice_number = Some(number);
    e.currency = Some(currency);
    e.supplier = Some(Party { name: Some(name.clone()), tax_id: Some(name.clone()), ..Default::default() });
    let e = validate::validate(e, chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
    let outcomes = vec![(name.clone(), Outcome::Stored(e.clone()))];
    let content = ReplyContent {
        language: Language::Es,
        outcomes: &outcomes,
        skipped: &[],
        resent_of: None,
        message_error: None,
        max_pages: 50,
        max_attachments: 20,
    };
    let thread = Thread {
        from: "intake@example.test",
        to: "supplier@example.test",
        subject: &subject,
        message_id: Some(&message_id),
        references: &references,
    };
    let (_, mail) = reply::compose_reply(&thread, &content, 1).expect("lettre builds the reply");
    check(&mail.formatted());

    let accountants = ["a@example.test".to_string()];
    let to = Addresses {
        from: "\"Facturas\" <intake@example.test>",
        to: &accountants,
        reply_to: Some("intake@example.test"),
    };
    let c = Confirmation {
        language: Language::En,
        extraction: &e,
        filename: &name,
        sender: &name,
        subject: &subject,
        message_id: Some(&message_id),
        message_ref: 1,
        invoice_ref: 2,
        alerts: std::slice::from_ref(&subject),
        received: None,
        min_confidence: 0.6,
        attached: true,
    };
    // The original keeps its own name, whatever that name is.
    let original = Attachment { filename: &name, content_type: "application/pdf", bytes: b"%PDF-1.4" };
    let (_, mail) = reply::compose_confirmation(&to, &c, Some(original)).expect("lettre builds the confirmation");
    check(&mail.formatted());

    let alerts = AlertsView {
        quarantined: vec![QuarantinedMail {
            message_ref: 3,
            sender: name.clone(),
            subject: subject.clone(),
            message_id: Some(message_id.clone()),
            reason: subject.clone(),
        }],
        failed: Vec::new(),
    };
    let (_, mail) = reply::compose_alert_digest(&to, Language::Es, &alerts).expect("lettre builds the alert digest");
    check(&mail.formatted());
});
