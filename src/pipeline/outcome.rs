//! What a read message comes to: its invoices stored, its fraud signals, its reply and confirmation queued.

use anyhow::Result;
use tracing::{info, warn};

use crate::config::Language;
use crate::extract::Extraction;
use crate::fraud;
use crate::mail::mime::{self, Incoming};
use crate::mail::reply::{self, MessageError, Outcome, ReplyContent, Thread};
use crate::store::{self, MessageState, StoredMessage};

use super::App;

/// An invoice this message brought and we stored.
struct Stored {
    label: String,
    extraction: Extraction,
    invoice_id: i64,
    /// Fraud signals, as sentences in the accountants' language.
    alerts: Vec<String>,
    /// Which of the message's documents it was read from.
    doc_index: usize,
}

fn attachment(d: &mime::Document) -> reply::Attachment<'_> {
    reply::Attachment { filename: &d.filename, content_type: d.kind.as_str(), bytes: &d.bytes }
}

/// The language of the first document that says where its supplier is.
fn document_language(outcomes: &[(String, Outcome)]) -> Option<Language> {
    outcomes.iter().find_map(|(_, o)| {
        let country = o.extraction().supplier.as_ref()?.country.as_deref()?;
        crate::mail::i18n::language_of_country(country)
    })
}

/// The folder a handled message is moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Folder {
    Processed,
    Failed,
}

/// What `decide` is told about a read message: its documents' outcomes (after the store's duplicate checks)
/// and what was learnt about the mail itself.
pub(super) struct Facts<'a> {
    pub outcomes: &'a [(String, Outcome)],
    pub incoming: &'a Incoming,
    pub too_large: Option<&'a MessageError>,
    /// Why extraction kept failing, when it did on the last attempt.
    pub poisoned: Option<&'a str>,
    /// Why the sender gets no reply: a mail without an invoice held back (`App::reply_held`), or one from the
    /// accountants.
    pub held: Option<&'a str>,
    pub max_attachments: usize,
}

/// What a message comes to: its final state and folder, the reason an operator reads, and whom we answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Verdict<'a> {
    pub state: MessageState,
    pub folder: Folder,
    pub reason: Option<String>,
    pub reply_to: Option<&'a String>,
}

impl App {
    /// The accountants' language: `[notify] language`, else `[reply] default_language`.
    pub(super) fn accountants_language(&self) -> Language {
        self.config.notify.language.unwrap_or(self.config.reply.default_language)
    }

    /// Where replies to our mails should go: the mailbox we read (the IMAP user, when it is an address), else
    /// the address we send from.
    pub(super) fn intake_address(&self) -> String {
        let user = self.config.imap.username.trim();
        if user.parse::<lettre::Address>().is_ok() {
            user.to_string()
        } else {
            self.config.smtp.from_address()
        }
    }

    /// Store the outcome, queue the replies and decide the message's folder, all in one transaction.
    /// `poisoned` says why extraction kept failing when it did on the last attempt.
    pub(super) async fn finalize(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        m: &StoredMessage,
        incoming: &Incoming,
        extracted: Vec<(mime::Document, Vec<Extraction>)>,
        too_large: Option<MessageError>,
        poisoned: Option<String>,
    ) -> Result<MessageState> {
        // A mail without a From is nobody's: its documents are its own, never merged with other such mail.
        let sender = match incoming.from.as_deref() {
            Some(from) => store::clean_address(from),
            None => format!("(no sender: message {})", m.id),
        };
        // A resend is the same Message-ID from the same sender; another sender reusing the id learns nothing.
        let resent_of = match (&incoming.message_id, &incoming.from) {
            (Some(id), Some(_)) => store::earlier_message_from(tx, id, &sender, m.id).await?.map(|(_, at)| at),
            _ => None,
        };
        let mut outcomes: Vec<(String, Outcome)> = Vec::new();
        let mut stored: Vec<Stored> = Vec::new();
        // The documents, kept to go with the accountants' confirmation.
        let mut originals: Vec<mime::Document> = Vec::new();
        for (position, (doc, results)) in extracted.into_iter().enumerate() {
            let sha = crate::extract::sha256_hex(&doc.bytes);
            let summary = serde_json::to_value(&results)?;
            let first_error = results.iter().find_map(|r| r.error.as_ref().map(|e| e.code.as_str()));
            let attachment_id = store::insert_attachment(
                tx,
                &store::NewAttachment {
                    message_ref: m.id,
                    position: position as i32,
                    filename: &doc.filename,
                    content_type: doc.kind.as_str(),
                    size_bytes: doc.bytes.len() as i64,
                    sha256: &sha,
                    status: if results.iter().any(Extraction::is_ok) { "ok" } else { "error" },
                    error_code: first_error,
                    result: summary,
                },
            )
            .await?;
            let several = results.len() > 1;
            let doc_index = originals.len();
            let filename = doc.filename.clone();
            originals.push(doc);
            for (index, e) in results.into_iter().enumerate() {
                let label = if several { format!("{filename} #{}", index + 1) } else { filename.clone() };
                if !e.is_ok() {
                    outcomes.push((label, Outcome::Failed(e)));
                    continue;
                }
                let e = match self.addressed_to_us(e) {
                    Ok(e) => e,
                    Err(not_ours) => {
                        outcomes.push((label, *not_ours));
                        continue;
                    }
                };
                let keys = crate::store::keys::InvoiceKeys::of(&e, &sender);
                let earlier = match store::invoice_by_document(tx, &sender, &sha, index as i32).await? {
                    Some(same_file) => Some(same_file),
                    None => store::ledger::invoice_by_content(tx, &keys).await?,
                };
                if let Some(existing) = earlier {
                    outcomes.push((
                        label,
                        Outcome::Duplicate {
                            extraction: e,
                            first_seen: existing.created_at,
                            invoice_number: existing.invoice_number,
                        },
                    ));
                    continue;
                }
                let origin = store::InvoiceOrigin {
                    message_ref: m.id,
                    attachment_ref: attachment_id,
                    message_id: incoming.message_id.as_deref(),
                    sender: &sender,
                    sha256: &sha,
                    index: index as i32,
                };
                match store::insert_invoice(tx, &origin, &e).await? {
                    Some(invoice_id) => {
                        info!(invoice_id, number = e.invoice_number.as_deref().unwrap_or(""), "invoice stored");
                        let alerts = self.fraud_signals(tx, &sender, invoice_id, &e).await?;
                        let (review, reasons) =
                            crate::ledger::review::assess(&e, &alerts, self.config.review.min_confidence);
                        store::ledger::set_review(tx, invoice_id, review.as_str(), &serde_json::to_value(&reasons)?)
                            .await?;
                        stored.push(Stored {
                            label: label.clone(),
                            extraction: e.clone(),
                            invoice_id,
                            alerts,
                            doc_index,
                        });
                        outcomes.push((label, Outcome::Stored(e)));
                    }
                    // Another worker stored the same invoice while we read it; its commit came first.
                    None => {
                        let first = store::ledger::invoice_by_content(tx, &keys).await?;
                        outcomes.push((
                            label,
                            Outcome::Duplicate {
                                extraction: e,
                                first_seen: first.as_ref().map_or_else(chrono::Utc::now, |f| f.created_at),
                                invoice_number: first.and_then(|f| f.invoice_number),
                            },
                        ))
                    }
                }
            }
        }

        let any_invoice = outcomes.iter().any(|(_, o)| is_invoice(o));
        // The supplier's language: their mail's, else their document's, else the configured one.
        let language =
            incoming.language.or_else(|| document_language(&outcomes)).unwrap_or(self.config.reply.default_language);
        let held = match (&incoming.no_reply, any_invoice) {
            // An invoice the accountants forwarded: they get the confirmation, nobody gets a supplier's reply.
            (None, _) if self.is_accountant(incoming.from.as_deref()) => Some("it comes from the accountants".into()),
            (None, false) => self.reply_held(tx, incoming).await?,
            _ => None,
        };
        let facts = Facts {
            outcomes: &outcomes,
            incoming,
            too_large: too_large.as_ref(),
            poisoned: poisoned.as_deref(),
            held: held.as_deref(),
            max_attachments: self.config.limits.max_attachments,
        };
        let Verdict { state, folder, mut reason, reply_to } = decide(&facts);
        let target = match folder {
            Folder::Processed => &self.config.imap.processed_mailbox,
            Folder::Failed => &self.config.imap.failed_mailbox,
        };
        if let Some(to) = reply_to {
            let content = ReplyContent {
                language,
                outcomes: &outcomes,
                skipped: &incoming.skipped,
                resent_of,
                message_error: too_large.or(poisoned.is_some().then_some(MessageError::UnderReview)),
                max_pages: self.config.sandbox.max_pages,
                max_attachments: self.config.limits.max_attachments,
            };
            let thread = Thread {
                from: &self.config.smtp.from,
                to,
                subject: &incoming.subject,
                message_id: incoming.message_id.as_deref(),
                references: &incoming.references,
            };
            match reply::compose_reply(&thread, &content, m.id) {
                Ok((id, mail)) => {
                    store::enqueue_mail(
                        tx,
                        &store::NewOutboxMail {
                            message_ref: m.id,
                            kind: "reply",
                            mail_message_id: &id,
                            envelope_from: &self.config.smtp.from_address(),
                            recipients: std::slice::from_ref(to),
                            body: &mail.formatted(),
                        },
                    )
                    .await?;
                }
                // The address came from the mail's own headers: one we cannot write to is a fact about this
                // mail, not a reason to stop. The outcome is stored and the operator sees why nobody was told.
                Err(e) => {
                    warn!(to = to.as_str(), error = %e, "cannot write a reply to this address; not replying");
                    add_note(&mut reason, format!("not answered: the reply address {to:?} is not usable ({e})"));
                }
            }
        } else {
            info!(reason = reason.as_deref().unwrap_or(""), "not replying");
        }
        if !self.config.notify.accountants.is_empty() {
            self.confirm(tx, m, incoming, &sender, &stored, &outcomes, &originals).await?;
            // A message that left no invoice is reported in the next alert digest, not in a mail of its own.
            if state == MessageState::Failed {
                store::mark_alert_pending(tx, m.id).await?;
            }
        }
        store::finish_message(tx, m.id, state, reason.as_deref(), Some(target)).await?;
        info!(state = state.as_str(), documents = outcomes.len(), "message handled");
        Ok(state)
    }

    /// Queue the accountants' confirmation: one per message, with the original documents attached (as many as
    /// `[notify] max_batch_attachment_bytes` allows); a single invoice gets its full table, several a summary.
    #[allow(clippy::too_many_arguments)]
    async fn confirm(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        m: &StoredMessage,
        incoming: &Incoming,
        sender: &str,
        stored: &[Stored],
        outcomes: &[(String, Outcome)],
        originals: &[mime::Document],
    ) -> Result<()> {
        if stored.is_empty() {
            return Ok(());
        }
        let language = self.accountants_language();
        let intake = self.intake_address();
        let to = reply::Addresses {
            from: &self.config.smtp.from,
            to: &self.config.notify.accountants,
            reply_to: Some(&intake),
        };
        let max = self.config.notify.max_batch_attachment_bytes;
        let (id, mail) = if let [one] = stored {
            let original = originals.get(one.doc_index).filter(|d| d.bytes.len() as u64 <= max).map(attachment);
            let c = reply::Confirmation {
                language,
                extraction: &one.extraction,
                filename: &one.label,
                sender,
                subject: &incoming.subject,
                message_id: incoming.message_id.as_deref(),
                message_ref: m.id,
                invoice_ref: one.invoice_id,
                alerts: &one.alerts,
                received: Some(m.received_at),
                min_confidence: self.config.review.min_confidence,
                attached: original.is_some(),
            };
            reply::compose_confirmation(&to, &c, original)?
        } else {
            let items: Vec<reply::BatchItem<'_>> = stored
                .iter()
                .map(|s| reply::BatchItem {
                    extraction: &s.extraction,
                    filename: &s.label,
                    invoice_ref: s.invoice_id,
                    alerts: &s.alerts,
                })
                .collect();
            let failed: Vec<(String, crate::extract::ErrorCode)> = outcomes
                .iter()
                .filter_map(|(name, o)| match o {
                    Outcome::Failed(e) => Some((name.clone(), e.error.as_ref()?.code)),
                    _ => None,
                })
                .collect();
            let docs: Vec<reply::Attachment<'_>> = originals.iter().map(attachment).collect();
            let attached = reply::attachments_within(&docs, max);
            let b = reply::BatchConfirmation {
                language,
                items: &items,
                failed: &failed,
                sender,
                subject: &incoming.subject,
                message_id: incoming.message_id.as_deref(),
                message_ref: m.id,
                received: Some(m.received_at),
                min_confidence: self.config.review.min_confidence,
                documents: originals.len(),
                attached: attached.len(),
            };
            reply::compose_batch_confirmation(&to, &b, &attached)?
        };
        store::enqueue_mail(
            tx,
            &store::NewOutboxMail {
                message_ref: m.id,
                kind: "confirmation",
                mail_message_id: &id,
                envelope_from: &self.config.smtp.from_address(),
                recipients: &self.config.notify.accountants,
                body: &mail.formatted(),
            },
        )
        .await?;
        // So that the accountants' reply to it finds its invoices.
        let invoice_ids: Vec<i64> = stored.iter().map(|s| s.invoice_id).collect();
        store::accountants::remember_confirmation(tx, &id, &invoice_ids).await?;
        Ok(())
    }

    /// Why a mail without an invoice gets no reply, when it gets none: it answers a mail of ours (a robot that
    /// does not mark itself, RFC 3834, would loop with us), or its sender had their hourly share of replies.
    pub(super) async fn reply_held(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        incoming: &Incoming,
    ) -> Result<Option<String>> {
        if let Some(ours) = store::own_mail_among(tx, &incoming.answers).await? {
            return Ok(Some(format!("it answers our mail {ours} and carries no invoice")));
        }
        let Some(to) = &incoming.reply_to else { return Ok(None) };
        let budget = self.config.reply.max_replies_without_invoice_per_hour;
        let sent = store::recent_replies_without_invoice(tx, to).await?;
        Ok((sent >= i64::from(budget)).then(|| {
            format!(
                "{sent} replies about mail without an invoice went to {to} within the hour \
                 (reply.max_replies_without_invoice_per_hour = {budget})"
            )
        }))
    }

    /// An invoice whose customer is clearly another company is flagged with a failed `addressed_to_us` check
    /// (so it needs review and the confirmation says `[REVISAR]`), or with `on_foreign_customer = "reject"`
    /// returned as the supplier's answer instead of being booked.
    pub(super) fn addressed_to_us(&self, mut e: Extraction) -> std::result::Result<Extraction, Box<Outcome>> {
        let Some(why) = crate::ledger::review::foreign_customer(&e, &self.config.company) else { return Ok(e) };
        warn!(reason = why.as_str(), "invoice addressed to another company");
        if self.config.company.on_foreign_customer == crate::config::ForeignCustomer::Reject {
            return Err(Box::new(Outcome::NotForUs { extraction: e, reason: why }));
        }
        e.push_check(crate::extract::Check::new(crate::ledger::review::ADDRESSED_TO_US, false, Some(why)));
        Ok(e)
    }

    /// Compare a newly stored invoice with the supplier's history: a changed IBAN (business email compromise)
    /// or a reused number with another total. Signals are stored with the invoice and returned as sentences.
    pub(super) async fn fraud_signals(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        sender: &str,
        invoice_id: i64,
        e: &Extraction,
    ) -> Result<Vec<String>> {
        let supplier = e.supplier.clone().unwrap_or_default();
        let history = store::supplier_history(tx, supplier.tax_id.as_deref(), sender, invoice_id).await?;
        let new = fraud::NewInvoice {
            supplier_tax_id: supplier.tax_id,
            sender: sender.to_string(),
            invoice_number: e.display_number(),
            total_amount: e.total_amount,
            iban: supplier.iban,
            issue_date: e.issue_date,
            qr_iban_mismatch: e
                .qr_codes
                .iter()
                .flatten()
                // Every code on the page asks to be paid, a second bill's too.
                .find_map(|c| Some((c.iban.clone()?, c.page_iban.clone()?))),
        };
        let signals = fraud::signals(&new, &history);
        if signals.is_empty() {
            return Ok(Vec::new());
        }
        warn!(invoice_id, count = signals.len(), "fraud signals raised");
        store::set_fraud_signals(tx, invoice_id, &serde_json::to_value(&signals)?).await?;
        let language = self.accountants_language();
        Ok(signals.iter().map(|s| crate::mail::i18n::fraud_sentence(s, language)).collect())
    }
}

/// Decide a read message's state, folder, reason and reply from what is known about it. No I/O: the store's
/// answers (duplicates, the reply budget) come in through `facts`.
pub(super) fn decide<'a>(facts: &Facts<'a>) -> Verdict<'a> {
    let incoming = facts.incoming;
    let any_invoice = facts.outcomes.iter().any(|(_, o)| is_invoice(o));
    let (state, folder, mut reason) = if let Some(why) = facts.poisoned {
        (MessageState::Quarantined, Folder::Failed, Some(why.to_string()))
    } else if let Some(MessageError::TooLarge { bytes, limit }) = facts.too_large {
        (
            MessageState::Failed,
            Folder::Failed,
            Some(format!("too_large: the message is {bytes} bytes; limits.max_message_bytes is {limit}")),
        )
    } else if any_invoice {
        (MessageState::Processed, Folder::Processed, None)
    } else if incoming.documents.is_empty() && incoming.no_reply.is_some() {
        (MessageState::Ignored, Folder::Processed, incoming.no_reply.as_ref().map(|r| format!("not answered: {r}")))
    } else {
        let why = facts
            .outcomes
            .iter()
            .filter_map(|(n, o)| match o {
                Outcome::NotForUs { reason, .. } => Some(format!("{n}: not for us ({reason})")),
                _ => o.extraction().error.as_ref().map(|e| format!("{n}: {} ({})", e.code.as_str(), e.message)),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let why = if why.is_empty() { "no invoice attached".to_string() } else { why };
        (MessageState::Failed, Folder::Failed, Some(why))
    };
    let not_read = incoming.skipped.iter().filter(|k| k.reason == mime::SkipReason::TooMany).count();
    if not_read > 0 {
        add_note(
            &mut reason,
            format!(
                "too_many_attachments: {not_read} documents past limits.max_attachments ({}) were not read",
                facts.max_attachments
            ),
        );
    }
    let reply_to = match (&incoming.no_reply, &incoming.reply_to, facts.held) {
        (None, Some(_), Some(held)) => {
            add_note(&mut reason, format!("not answered: {held}"));
            None
        }
        (None, Some(to), None) => Some(to),
        (Some(why), _, _) => {
            add_note(&mut reason, format!("not answered: {why}"));
            None
        }
        (None, None, _) => {
            add_note(&mut reason, "not answered: no sender address".to_string());
            None
        }
    };
    Verdict { state, folder, reason, reply_to }
}

/// An invoice was read: stored now, or stored before.
fn is_invoice(o: &Outcome) -> bool {
    matches!(o, Outcome::Stored(_) | Outcome::Duplicate { .. })
}

/// Append `note` to an operator's reason, once.
fn add_note(reason: &mut Option<String>, note: String) {
    *reason = Some(match reason.take() {
        Some(r) if r.contains(&note) => r,
        Some(r) => format!("{r}; {note}"),
        None => note,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::ErrorCode;

    const OURS: &str = "intake@example.test";

    fn mail(headers: &str) -> Incoming {
        let raw = format!("From: Supplier <supplier@example.test>\r\nSubject: factura\r\n{headers}\r\nHola\r\n");
        mime::parse(raw.as_bytes(), OURS, 10)
    }

    fn facts<'a>(incoming: &'a Incoming, outcomes: &'a [(String, Outcome)]) -> Facts<'a> {
        Facts { outcomes, incoming, too_large: None, poisoned: None, held: None, max_attachments: 10 }
    }

    fn stored() -> (String, Outcome) {
        let mut e = Extraction::empty("f.pdf");
        e.invoice_number = Some("F-1".into());
        ("f.pdf".into(), Outcome::Stored(e))
    }

    fn damaged() -> (String, Outcome) {
        ("broken.pdf".into(), Outcome::Failed(Extraction::failed("broken.pdf", ErrorCode::Unreadable, "not a PDF")))
    }

    #[test]
    fn a_stored_invoice_is_processed_and_answered() {
        let incoming = mail("");
        let outcomes = [stored()];
        let v = decide(&facts(&incoming, &outcomes));
        assert_eq!((v.state, v.folder, v.reason), (MessageState::Processed, Folder::Processed, None));
        assert_eq!(v.reply_to.map(String::as_str), Some("supplier@example.test"));
    }

    #[test]
    fn a_damaged_document_fails_the_message_with_its_reason_and_is_answered() {
        let incoming = mail("");
        let outcomes = [damaged()];
        let v = decide(&facts(&incoming, &outcomes));
        assert_eq!((v.state, v.folder), (MessageState::Failed, Folder::Failed));
        assert_eq!(v.reason.as_deref(), Some("broken.pdf: unreadable (not a PDF)"));
        assert!(v.reply_to.is_some());
    }

    #[test]
    fn one_invoice_among_damaged_documents_is_enough_to_process_the_message() {
        let incoming = mail("");
        let outcomes = [damaged(), stored()];
        assert_eq!(decide(&facts(&incoming, &outcomes)).state, MessageState::Processed);
    }

    #[test]
    fn a_mail_without_documents_fails_with_no_invoice_attached() {
        let incoming = mail("");
        let v = decide(&facts(&incoming, &[]));
        assert_eq!(v.state, MessageState::Failed);
        assert_eq!(v.reason.as_deref(), Some("no invoice attached"));
    }

    #[test]
    fn an_auto_reply_without_documents_is_ignored_and_not_answered() {
        let incoming = mail("Auto-Submitted: auto-replied\r\n");
        let v = decide(&facts(&incoming, &[]));
        assert_eq!((v.state, v.folder), (MessageState::Ignored, Folder::Processed));
        assert!(v.reply_to.is_none());
        // The reason says why once, not twice.
        let reason = v.reason.unwrap();
        assert!(reason.starts_with("not answered: "), "{reason}");
        assert!(!reason.contains(';'), "{reason}");
    }

    #[test]
    fn a_poisoned_message_is_quarantined_whatever_was_read() {
        let incoming = mail("");
        let outcomes = [stored()];
        let f = Facts { poisoned: Some("the extractor crashed 3 times"), ..facts(&incoming, &outcomes) };
        let v = decide(&f);
        assert_eq!((v.state, v.folder), (MessageState::Quarantined, Folder::Failed));
        assert_eq!(v.reason.as_deref(), Some("the extractor crashed 3 times"));
    }

    #[test]
    fn a_message_over_the_size_limit_fails_with_both_sizes() {
        let incoming = mail("");
        let too_large = MessageError::TooLarge { bytes: 30_000_000, limit: 25_000_000 };
        let f = Facts { too_large: Some(&too_large), ..facts(&incoming, &[]) };
        let v = decide(&f);
        assert_eq!(v.state, MessageState::Failed);
        assert_eq!(
            v.reason.as_deref(),
            Some("too_large: the message is 30000000 bytes; limits.max_message_bytes is 25000000")
        );
        assert!(v.reply_to.is_some(), "the sender learns the limit");
    }

    #[test]
    fn a_held_reply_is_not_sent_and_the_operator_reads_why() {
        let incoming = mail("");
        let f =
            Facts { held: Some("5 replies went to supplier@example.test within the hour"), ..facts(&incoming, &[]) };
        let v = decide(&f);
        assert!(v.reply_to.is_none());
        assert_eq!(
            v.reason.as_deref(),
            Some("no invoice attached; not answered: 5 replies went to supplier@example.test within the hour")
        );
    }

    #[test]
    fn documents_past_the_attachment_limit_are_noted() {
        let mut incoming = mail("");
        incoming.skipped.push(mime::Skipped { filename: "11.pdf".into(), reason: mime::SkipReason::TooMany });
        let outcomes = [stored()];
        let v = decide(&facts(&incoming, &outcomes));
        assert_eq!(v.state, MessageState::Processed);
        assert_eq!(
            v.reason.as_deref(),
            Some("too_many_attachments: 1 documents past limits.max_attachments (10) were not read")
        );
    }

    #[test]
    fn a_mail_we_cannot_answer_says_so() {
        let mut incoming = mail("");
        incoming.reply_to = None;
        let outcomes = [stored()];
        let v = decide(&facts(&incoming, &outcomes));
        assert_eq!(v.state, MessageState::Processed);
        assert_eq!(v.reason.as_deref(), Some("not answered: no sender address"));
    }
}
