//! Mail from the accountants: a mail from an address in `[notify] accountants`, or a reply to one of our
//! confirmations, is never answered as supplier mail. Lines such as `total: 512,00`, `número: F-2025-17` or
//! `aprobar` in it (`ledger::instructions`) are applied to the confirmed invoice with the ledger's audit trail
//! (`via = mail`), the rest of their text is filed as a note on it, and the accountant gets one answer saying what
//! changed. Only an address in `[notify] accountants` changes an invoice: anyone else's reply to a confirmation is
//! filed as a note and not answered. Automatic mail (an out-of-office notice) is left alone. Documents attached to
//! a reply to a confirmation are not booked: the answer asks for them in a new mail.
//!
//! ```text
//! reply to confirmation ──▶ corrections + approval (audit trail) ──▶ note ──▶ one answer ──▶ processed
//! ```

use anyhow::Result;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;
use tracing::info;

use crate::config::Language;
use crate::extract::Extraction;
use crate::ledger::instructions::{self, Instruction};
use crate::ledger::{correct, Corrected};
use crate::mail::headers::{self, AutoSubmitted};
use crate::mail::i18n;
use crate::mail::mime::Incoming;
use crate::mail::reply::Thread;
use crate::store::{self, accountants as db, MessageState, StoredMessage};

use super::App;

impl App {
    /// Is `address` one of `[notify] accountants`?
    pub(super) fn is_accountant(&self, address: Option<&str>) -> bool {
        let Some(a) = address.map(bare_address) else { return false };
        self.config.notify.accountants.iter().any(|acc| bare_address(acc).eq_ignore_ascii_case(&a))
    }

    /// Handle `m` when it is the accountants' (see the module); `None` leaves it to the supplier path. A mail
    /// from an accountant that names no confirmation but carries documents (a forwarded invoice) is booked as
    /// usual: `outcome` then answers nobody but the accountants.
    pub(super) async fn accountants_mail(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        m: &StoredMessage,
        incoming: &Incoming,
    ) -> Result<Option<MessageState>> {
        let from_accountant = self.is_accountant(incoming.from.as_deref());
        let invoices = db::invoices_confirmed_by(tx, &incoming.answers).await?;
        if invoices.is_empty() && !(from_accountant && incoming.documents.is_empty()) {
            return Ok(None);
        }
        if let Some(why) = &incoming.no_reply {
            return self
                .finish_accountants(
                    tx,
                    m.id,
                    MessageState::Ignored,
                    format!("from the accountants, automatic ({why}): not read"),
                )
                .await;
        }
        let author = incoming.from.clone().unwrap_or_else(|| "(no sender)".into());
        let request = instructions::parse(&body_text(&m.raw));
        if !from_accountant {
            for id in &invoices {
                if !request.own_text.is_empty() {
                    db::add_note(tx, *id, m.id, &author, &request.own_text).await?;
                }
            }
            let reason = format!("a reply to our confirmation from {author}, not an accountant: filed as a note");
            return self.finish_accountants(tx, m.id, MessageState::Processed, reason).await;
        }
        let language = request.language.unwrap_or(self.accountants_language().code());
        let w = words(language);
        let mut lines = Vec::new();
        let reason = match invoices.as_slice() {
            [] => {
                // An answer to a mail of ours that names no confirmation gets no answer: two robots must not talk.
                if store::own_mail_among(tx, &incoming.answers).await?.is_some() {
                    return self
                        .finish_accountants(
                            tx,
                            m.id,
                            MessageState::Processed,
                            "from the accountants, about no invoice".into(),
                        )
                        .await;
                }
                lines.push(w.s("unknown"));
                "from the accountants, about no invoice we can tell".to_string()
            }
            [id] => {
                let id = *id;
                let summary = self.apply_request(tx, id, &request.instructions, &author, &w, &mut lines).await?;
                if !request.note.is_empty() {
                    db::add_note(tx, id, m.id, &author, &request.note).await?;
                    lines.push(w.s("noted"));
                }
                if lines.is_empty() {
                    lines.push(w.s("nothing"));
                }
                format!("from the accountants about invoice {id}: {summary}")
            }
            several => {
                let ids: Vec<String> = several.iter().map(i64::to_string).collect();
                for id in several {
                    if !request.note.is_empty() {
                        db::add_note(tx, *id, m.id, &author, &request.note).await?;
                    }
                }
                lines.push(w.s("several").replace("{ids}", &ids.join(", ")));
                if !request.note.is_empty() {
                    lines.push(w.s("noted"));
                }
                format!("from the accountants about invoices {}: filed as a note", ids.join(", "))
            }
        };
        if !invoices.is_empty() && !incoming.documents.is_empty() {
            lines.push(w.s("attachments"));
        }
        if let Some(to) = &incoming.reply_to {
            let thread = Thread {
                from: &self.config.smtp.from,
                to,
                subject: &incoming.subject,
                message_id: incoming.message_id.as_deref(),
                references: &incoming.references,
            };
            let (mail_id, mail) = compose_answer(&thread, m.id, &lines)?;
            let outbox = store::NewOutboxMail {
                message_ref: m.id,
                kind: "answer",
                mail_message_id: &mail_id,
                envelope_from: &self.config.smtp.from_address(),
                recipients: std::slice::from_ref(to),
                body: &mail.formatted(),
            };
            store::enqueue_mail(tx, &outbox).await?;
        }
        self.finish_accountants(tx, m.id, MessageState::Processed, reason).await
    }

    async fn finish_accountants(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        id: i64,
        state: MessageState,
        reason: String,
    ) -> Result<Option<MessageState>> {
        info!(reason = reason.as_str(), "mail from the accountants handled");
        let folder = &self.config.imap.processed_mailbox;
        store::finish_message(tx, id, state, Some(&reason), Some(folder)).await?;
        Ok(Some(state))
    }

    /// Apply the corrections and the approval to invoice `id`; the answer's lines go to `lines`. Returns what
    /// happened, for the message's reason.
    async fn apply_request(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        id: i64,
        request: &[Instruction],
        author: &str,
        w: &Words,
        lines: &mut Vec<String>,
    ) -> Result<String> {
        let pairs: Vec<(String, String)> = request
            .iter()
            .filter_map(|i| match i {
                Instruction::Correct { field, value } => Some((field.to_string(), value.clone())),
                Instruction::Approve => None,
            })
            .collect();
        let approve = request.contains(&Instruction::Approve);
        // Checked one by one first, so the answer can say which value was refused, in the accountant's words.
        for (field, value) in &pairs {
            if correct::apply(&mut Extraction::empty(""), field, value).is_err() {
                let why = w.s("invalid").replace("{field}", &w.field(field)).replace("{value}", value);
                lines.push(why);
                return Ok(format!("refused: {field} = {value:?} is not valid"));
            }
        }
        let mut summary = Vec::new();
        if !pairs.is_empty() {
            match crate::ledger::apply_corrections(&self.config, &self.pool, tx, id, &pairs, author, "mail").await? {
                Corrected::Done(done) => {
                    lines.push(w.s("changed"));
                    for c in &done.changes {
                        let old = c.old.as_deref().unwrap_or("-");
                        let (old_shown, new_shown) = (w.value(&c.field, old), w.value(&c.field, &c.new));
                        lines.push(format!("- {}: {old_shown} → {new_shown}", w.field(&c.field)));
                        summary.push(format!("{} {old} -> {}", c.field, c.new));
                    }
                    for check in done.rechecked.iter().filter(|c| !c.ok) {
                        lines.push(format!("{} {}", w.s("review"), w.check(&check.name)));
                    }
                }
                refused => {
                    // Values were checked above, and the invoice is locked: a duplicate is what is left.
                    lines.push(w.s("duplicate"));
                    return Ok(refused.why().unwrap_or_default());
                }
            }
        }
        if approve {
            let before = crate::store::ledger::review_state(tx, id).await?;
            crate::store::ledger::approve(&mut **tx, &[id]).await?;
            let record = crate::store::ledger::NewCorrection {
                invoice_ref: id,
                field: "review_state",
                old_value: before.as_deref(),
                new_value: "approved",
                corrected_by: author,
                via: "mail",
            };
            crate::store::ledger::insert_correction(tx, &record).await?;
            lines.push(w.s("approved"));
            summary.push("approved".into());
        }
        Ok(if summary.is_empty() { "a note".into() } else { summary.join(", ") })
    }
}

/// The address in `Name <address>` (or the whole string), lower-cased.
fn bare_address(a: &str) -> String {
    let a = a.trim();
    let inner = match (a.rfind('<'), a.rfind('>')) {
        (Some(l), Some(r)) if l < r => &a[l + 1..r],
        _ => a,
    };
    inner.trim().to_lowercase()
}

/// The mail's own text: its first text/plain part (or the HTML part's text).
fn body_text(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

/// A plain-text answer in the accountant's thread.
fn compose_answer(thread: &Thread<'_>, message_ref: i64, lines: &[String]) -> Result<(String, Message)> {
    let text = lines.iter().map(|l| headers::line_text(l)).collect::<Vec<_>>().join("\n") + "\n";
    let id = crate::mail::reply::stable_message_id("answer", message_ref, &text, thread.from);
    let subject = thread.subject.trim();
    let subject =
        if subject.to_lowercase().starts_with("re:") { subject.to_string() } else { format!("Re: {subject}") };
    let mut b = Message::builder()
        .from(thread.from.parse::<Mailbox>()?)
        .to(thread.to.parse::<Mailbox>()?)
        .subject(headers::header_text(&subject))
        .message_id(Some(id.clone()))
        .header(AutoSubmitted("auto-replied".into()))
        .date_now();
    if let Some(parent) = thread.message_id.and_then(headers::message_id) {
        b = b.in_reply_to(parent.clone()).references(headers::references(thread.references, &parent).join(" "));
    }
    Ok((id, b.header(ContentType::TEXT_PLAIN).body(text)?))
}

/// The answer's sentences in one language, from the mail catalog (`mail::i18n`, section `answer`).
pub(super) struct Words {
    lang: Language,
}

impl Words {
    fn s(&self, key: &str) -> String {
        i18n::t(self.lang, &format!("answer.{key}")).to_string()
    }

    /// A field as the mails name it (`Total`, `Fecha de emisión`).
    fn field(&self, field: &str) -> String {
        i18n::field_label(field, self.lang).unwrap_or_else(|| field.replace(['_', '.'], " "))
    }

    /// A value as this language writes it: amounts with a decimal comma except in English.
    fn value(&self, field: &str, value: &str) -> String {
        let amount = matches!(field, "net_amount" | "tax_amount" | "total_amount" | "amount_due");
        if amount && self.lang != Language::En {
            value.replace('.', ",")
        } else {
            value.to_string()
        }
    }

    /// What a failed check run again after the correction says.
    fn check(&self, name: &str) -> String {
        let name = if correct::RECHECKED.contains(&name) { name } else { correct::RECHECKED[0] };
        self.s(&format!("check_{name}"))
    }
}

/// The words of the language tagged `language` (`es`, `de`, …); Spanish for a tag we do not write.
pub(super) fn words(language: &str) -> Words {
    Words { lang: Language::from_tag(language).unwrap_or(Language::Es) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_fields_checks_and_values_in_the_accountants_language() {
        for lang in Language::ALL {
            let w = words(lang.code());
            for field in correct::FIELDS {
                let label = w.field(field);
                assert!(!label.contains('_') && label != *field, "{lang:?}: {field} shown as {label}");
            }
            for check in correct::RECHECKED {
                assert!(!w.check(check).is_empty(), "{lang:?}: {check}");
            }
            assert!(w.s("invalid").contains("{value}") && w.s("invalid").contains("{field}"), "{lang:?}");
            assert!(w.s("several").contains("{ids}"), "{lang:?}");
        }
        assert_eq!(words("es").field("issue_date"), "Fecha de emisión");
        assert_eq!(words("de").field("supplier.tax_id"), "USt-IdNr. (Lieferant)");
        assert_eq!(words("es").value("total_amount", "512.00"), "512,00");
        assert_eq!(words("en").value("total_amount", "512.00"), "512.00");
        assert_eq!(words("de").value("invoice_number", "F.1"), "F.1");
        assert_eq!(words("pt").s("approved"), "Fatura aprovada.");
        assert_eq!(words("xx").s("approved"), "Factura aprobada.");
    }

    #[test]
    fn an_accountant_is_known_by_the_bare_address() {
        assert_eq!(bare_address("Ana <Ana@Example.test>"), "ana@example.test");
        assert_eq!(bare_address(" ana@example.test "), "ana@example.test");
    }
}
