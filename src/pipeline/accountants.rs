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

use crate::extract::Extraction;
use crate::ledger::instructions::{self, Instruction};
use crate::ledger::{correct, Corrected};
use crate::mail::headers::{self, AutoSubmitted};
use crate::mail::mime::Incoming;
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
        // This answer has Spanish and English words so far; the other languages get English.
        let language = request.language.unwrap_or(match self.accountants_language() {
            crate::config::Language::Es => "es",
            _ => "en",
        });
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
                lines.push(w.unknown.to_string());
                "from the accountants, about no invoice we can tell".to_string()
            }
            [id] => {
                let id = *id;
                let summary = self.apply_request(tx, id, &request.instructions, &author, w, &mut lines).await?;
                if !request.note.is_empty() {
                    db::add_note(tx, id, m.id, &author, &request.note).await?;
                    lines.push(w.noted.to_string());
                }
                if lines.is_empty() {
                    lines.push(w.nothing.to_string());
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
                lines.push(w.several.replace("{ids}", &ids.join(", ")));
                if !request.note.is_empty() {
                    lines.push(w.noted.to_string());
                }
                format!("from the accountants about invoices {}: filed as a note", ids.join(", "))
            }
        };
        if !invoices.is_empty() && !incoming.documents.is_empty() {
            lines.push(w.attachments.to_string());
        }
        if let Some(to) = &incoming.reply_to {
            let thread = Answer {
                from: &self.config.smtp.from,
                to,
                subject: &incoming.subject,
                message_id: incoming.message_id.as_deref(),
                references: &incoming.references,
            };
            let (mail_id, mail) = thread.compose("answer", m.id, &lines)?;
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
                let why = w.invalid.replace("{field}", &w.field(field)).replace("{value}", value);
                lines.push(why);
                return Ok(format!("refused: {field} = {value:?} is not valid"));
            }
        }
        let mut summary = Vec::new();
        if !pairs.is_empty() {
            match crate::ledger::apply_corrections(&self.config, &self.pool, tx, id, &pairs, author, "mail").await? {
                Corrected::Done(done) => {
                    lines.push(w.changed.to_string());
                    for c in &done.changes {
                        let old = c.old.as_deref().unwrap_or("-");
                        let (old_shown, new_shown) = (w.value(&c.field, old), w.value(&c.field, &c.new));
                        lines.push(format!("- {}: {old_shown} → {new_shown}", w.field(&c.field)));
                        summary.push(format!("{} {old} -> {}", c.field, c.new));
                    }
                    for check in done.rechecked.iter().filter(|c| !c.ok) {
                        lines.push(format!("{} {}", w.review, w.check(&check.name)));
                    }
                }
                refused => {
                    // Values were checked above, and the invoice is locked: a duplicate is what is left.
                    lines.push(w.duplicate.to_string());
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
            lines.push(w.approved.to_string());
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

/// A plain-text answer in a mail's thread.
struct Answer<'a> {
    from: &'a str,
    to: &'a str,
    subject: &'a str,
    message_id: Option<&'a str>,
    references: &'a [String],
}

impl Answer<'_> {
    fn compose(&self, kind: &str, message_ref: i64, lines: &[String]) -> Result<(String, Message)> {
        let text = lines.iter().map(|l| headers::line_text(l)).collect::<Vec<_>>().join("\n") + "\n";
        let id = crate::mail::reply::stable_message_id(kind, message_ref, &text, self.from);
        let subject = self.subject.trim();
        let subject =
            if subject.to_lowercase().starts_with("re:") { subject.to_string() } else { format!("Re: {subject}") };
        let mut b = Message::builder()
            .from(self.from.parse::<Mailbox>()?)
            .to(self.to.parse::<Mailbox>()?)
            .subject(headers::header_text(&subject))
            .message_id(Some(id.clone()))
            .header(AutoSubmitted("auto-replied".into()))
            .date_now();
        if let Some(parent) = self.message_id.and_then(headers::message_id) {
            b = b.in_reply_to(parent.clone()).references(headers::references(self.references, &parent).join(" "));
        }
        Ok((id, b.header(ContentType::TEXT_PLAIN).body(text)?))
    }
}

/// The answer's sentences in one language.
pub(super) struct Words {
    changed: &'static str,
    approved: &'static str,
    noted: &'static str,
    nothing: &'static str,
    /// `{field}` and `{value}` are filled in.
    invalid: &'static str,
    duplicate: &'static str,
    review: &'static str,
    /// `{ids}` is filled in.
    several: &'static str,
    unknown: &'static str,
    /// Documents attached to a reply to a confirmation are not booked.
    attachments: &'static str,
    /// The schema's fields, in `correct::FIELDS` order (number, dates, currency, type, supplier, customer,
    /// amounts).
    fields: [&'static str; 14],
    /// totals_add_up, tax_id_checksum, iban_checksum.
    checks: [&'static str; 3],
}

impl Words {
    fn field(&self, field: &str) -> String {
        let k = correct::FIELDS.iter().position(|f| *f == field);
        k.map(|k| self.fields[k].to_string()).unwrap_or_else(|| field.replace(['_', '.'], " "))
    }

    /// A value as this language writes it: amounts with a decimal comma except in English.
    fn value(&self, field: &str, value: &str) -> String {
        let amount = matches!(field, "net_amount" | "tax_amount" | "total_amount" | "amount_due");
        if amount && !std::ptr::eq(self, &EN) {
            value.replace('.', ",")
        } else {
            value.to_string()
        }
    }

    fn check(&self, name: &str) -> &'static str {
        correct::RECHECKED.iter().position(|c| *c == name).map(|k| self.checks[k]).unwrap_or(self.checks[0])
    }
}

pub(super) fn words(language: &str) -> &'static Words {
    match language {
        "en" => &EN,
        "de" => &DE,
        "fr" => &FR,
        "nl" => &NL,
        "it" => &IT,
        "pt" => &PT,
        _ => &ES,
    }
}

static ES: Words = Words {
    attachments: "Los documentos adjuntos no se han registrado: envíelos en un correo nuevo, no como respuesta.",
    changed: "Cambios aplicados:",
    approved: "Factura aprobada.",
    noted: "Su nota se ha guardado en la factura.",
    nothing: "No hemos encontrado cambios ni texto en su mensaje.",
    invalid: "No se ha cambiado nada: «{value}» no es un valor válido para {field}.",
    duplicate: "No se ha cambiado nada: con estos datos sería la misma factura que otra ya registrada.",
    review: "Sigue pendiente de revisión:",
    several: "Su mensaje responde a una confirmación de varias facturas ({ids}); no se ha cambiado nada. Corrija cada una respondiendo a su confirmación.",
    unknown: "No sabemos a qué factura se refiere: responda a la confirmación de la factura.",
    fields: [
        "número", "fecha de emisión", "vencimiento", "moneda", "tipo de documento", "proveedor", "NIF del proveedor",
        "IBAN", "cliente", "NIF del cliente", "base imponible", "IVA", "total", "importe a pagar",
    ],
    checks: [
        "la base imponible más el IVA no da el total.",
        "un NIF no supera su dígito de control.",
        "el IBAN no supera su control.",
    ],
};

static EN: Words = Words {
    attachments: "The attached documents were not recorded: please send them in a new mail, not as a reply.",
    changed: "Changes applied:",
    approved: "Invoice approved.",
    noted: "Your note was filed with the invoice.",
    nothing: "We found no change and no text in your message.",
    invalid: "Nothing was changed: \"{value}\" is not a valid {field}.",
    duplicate: "Nothing was changed: with these values it would be the same invoice as one already recorded.",
    review: "Still needs review:",
    several: "Your message answers a confirmation of several invoices ({ids}); nothing was changed. Correct each one by replying to its own confirmation.",
    unknown: "We cannot tell which invoice you mean: please reply to the invoice's confirmation.",
    fields: [
        "number", "issue date", "due date", "currency", "document type", "supplier", "supplier's VAT ID", "IBAN",
        "customer", "customer's VAT ID", "net amount", "VAT", "total", "amount due",
    ],
    checks: [
        "the net amount plus VAT does not make the total.",
        "a VAT ID fails its check digit.",
        "the IBAN fails its check.",
    ],
};

static DE: Words = Words {
    attachments: "Die angehängten Dokumente wurden nicht erfasst: bitte senden Sie sie in einer neuen Nachricht, nicht als Antwort.",
    changed: "Übernommene Änderungen:",
    approved: "Rechnung freigegeben.",
    noted: "Ihre Notiz wurde bei der Rechnung abgelegt.",
    nothing: "Wir haben in Ihrer Nachricht weder Änderungen noch Text gefunden.",
    invalid: "Nichts wurde geändert: „{value}“ ist kein gültiger Wert für {field}.",
    duplicate: "Nichts wurde geändert: mit diesen Angaben wäre es dieselbe Rechnung wie eine bereits erfasste.",
    review: "Muss weiter geprüft werden:",
    several: "Ihre Nachricht antwortet auf eine Bestätigung mehrerer Rechnungen ({ids}); nichts wurde geändert. Bitte antworten Sie auf die Bestätigung der einzelnen Rechnung.",
    unknown: "Wir können nicht erkennen, welche Rechnung Sie meinen: bitte antworten Sie auf deren Bestätigung.",
    fields: [
        "Rechnungsnummer", "Rechnungsdatum", "Fälligkeit", "Währung", "Belegart", "Lieferant",
        "USt-IdNr. des Lieferanten", "IBAN", "Kunde", "USt-IdNr. des Kunden", "Nettobetrag", "MwSt.", "Gesamtbetrag",
        "Zahlbetrag",
    ],
    checks: [
        "Nettobetrag und MwSt. ergeben nicht den Gesamtbetrag.",
        "eine USt-IdNr. hat eine falsche Prüfziffer.",
        "die IBAN besteht die Prüfung nicht.",
    ],
};

static FR: Words = Words {
    attachments: "Les documents joints n'ont pas été enregistrés : envoyez-les dans un nouveau message, pas en réponse.",
    changed: "Modifications appliquées :",
    approved: "Facture approuvée.",
    noted: "Votre note a été classée avec la facture.",
    nothing: "Nous n'avons trouvé ni modification ni texte dans votre message.",
    invalid: "Rien n'a été modifié : « {value} » n'est pas une valeur valable pour {field}.",
    duplicate: "Rien n'a été modifié : avec ces valeurs, ce serait la même facture qu'une facture déjà enregistrée.",
    review: "Reste à vérifier :",
    several: "Votre message répond à une confirmation de plusieurs factures ({ids}) ; rien n'a été modifié. Répondez à la confirmation de chaque facture.",
    unknown: "Nous ne savons pas de quelle facture il s'agit : répondez à la confirmation de la facture.",
    fields: [
        "numéro", "date de facture", "échéance", "devise", "type de document", "fournisseur", "n° TVA du fournisseur",
        "IBAN", "client", "n° TVA du client", "montant HT", "TVA", "montant TTC", "net à payer",
    ],
    checks: [
        "le montant HT plus la TVA ne donne pas le total.",
        "un numéro de TVA a une clé de contrôle fausse.",
        "l'IBAN ne passe pas le contrôle.",
    ],
};

static NL: Words = Words {
    attachments: "De bijgevoegde documenten zijn niet geregistreerd: stuur ze in een nieuw bericht, niet als antwoord.",
    changed: "Toegepaste wijzigingen:",
    approved: "Factuur goedgekeurd.",
    noted: "Uw notitie is bij de factuur opgeslagen.",
    nothing: "We vonden geen wijzigingen en geen tekst in uw bericht.",
    invalid: "Er is niets gewijzigd: \"{value}\" is geen geldige waarde voor {field}.",
    duplicate: "Er is niets gewijzigd: met deze gegevens zou het dezelfde factuur zijn als een al geregistreerde.",
    review: "Moet nog gecontroleerd worden:",
    several: "Uw bericht beantwoordt een bevestiging van meerdere facturen ({ids}); er is niets gewijzigd. Beantwoord de bevestiging van elke factuur afzonderlijk.",
    unknown: "We weten niet welke factuur u bedoelt: beantwoord de bevestiging van de factuur.",
    fields: [
        "factuurnummer", "factuurdatum", "vervaldatum", "valuta", "documentsoort", "leverancier",
        "btw-nummer leverancier", "IBAN", "klant", "btw-nummer klant", "bedrag excl. btw", "btw", "totaal",
        "te betalen",
    ],
    checks: [
        "het bedrag excl. btw plus de btw is niet het totaal.",
        "een btw-nummer heeft een onjuist controlecijfer.",
        "de IBAN doorstaat de controle niet.",
    ],
};

static IT: Words = Words {
    attachments: "I documenti allegati non sono stati registrati: li invii in un nuovo messaggio, non come risposta.",
    changed: "Modifiche applicate:",
    approved: "Fattura approvata.",
    noted: "La sua nota è stata archiviata con la fattura.",
    nothing: "Non abbiamo trovato modifiche né testo nel suo messaggio.",
    invalid: "Non è stato modificato nulla: «{value}» non è un valore valido per {field}.",
    duplicate: "Non è stato modificato nulla: con questi dati sarebbe la stessa fattura di una già registrata.",
    review: "Da verificare ancora:",
    several: "Il suo messaggio risponde a una conferma di più fatture ({ids}); non è stato modificato nulla. Risponda alla conferma di ciascuna fattura.",
    unknown: "Non sappiamo a quale fattura si riferisce: risponda alla conferma della fattura.",
    fields: [
        "numero", "data fattura", "scadenza", "valuta", "tipo di documento", "fornitore", "partita IVA del fornitore",
        "IBAN", "cliente", "partita IVA del cliente", "imponibile", "IVA", "totale", "importo da pagare",
    ],
    checks: [
        "l'imponibile più l'IVA non dà il totale.",
        "una partita IVA ha una cifra di controllo errata.",
        "l'IBAN non supera il controllo.",
    ],
};

static PT: Words = Words {
    attachments: "Os documentos anexos não foram registados: envie-os numa nova mensagem, não como resposta.",
    changed: "Alterações aplicadas:",
    approved: "Fatura aprovada.",
    noted: "A sua nota foi arquivada com a fatura.",
    nothing: "Não encontrámos alterações nem texto na sua mensagem.",
    invalid: "Nada foi alterado: «{value}» não é um valor válido para {field}.",
    duplicate: "Nada foi alterado: com estes dados seria a mesma fatura que outra já registada.",
    review: "Continua por rever:",
    several: "A sua mensagem responde a uma confirmação de várias faturas ({ids}); nada foi alterado. Responda à confirmação de cada fatura.",
    unknown: "Não sabemos a que fatura se refere: responda à confirmação da fatura.",
    fields: [
        "número", "data de emissão", "vencimento", "moeda", "tipo de documento", "fornecedor", "NIF do fornecedor",
        "IBAN", "cliente", "NIF do cliente", "base tributável", "IVA", "total", "valor a pagar",
    ],
    checks: [
        "a base tributável mais o IVA não dá o total.",
        "um NIF falha o dígito de controlo.",
        "o IBAN falha o controlo.",
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_names_every_field_and_check() {
        for lang in ["es", "en", "de", "fr", "nl", "it", "pt"] {
            let w = words(lang);
            assert_eq!(w.fields.len(), correct::FIELDS.len());
            assert!(w.fields.iter().chain(&w.checks).all(|s| !s.is_empty() && !s.contains('_')), "{lang}");
            assert!(w.invalid.contains("{value}") && w.invalid.contains("{field}") && w.several.contains("{ids}"));
        }
        assert_eq!(words("es").field("total_amount"), "total");
        assert_eq!(words("en").field("issue_date"), "issue date");
        assert_eq!(words("fr").field("net_amount"), "montant HT");
        assert_eq!(words("es").value("total_amount", "512.00"), "512,00");
        assert_eq!(words("en").value("total_amount", "512.00"), "512.00");
        assert_eq!(words("de").value("invoice_number", "F.1"), "F.1");
        assert_eq!(words("de").field("supplier.tax_id"), "USt-IdNr. des Lieferanten");
    }

    #[test]
    fn an_accountant_is_known_by_the_bare_address() {
        assert_eq!(bare_address("Ana <Ana@Example.test>"), "ana@example.test");
        assert_eq!(bare_address(" ana@example.test "), "ana@example.test");
    }
}
