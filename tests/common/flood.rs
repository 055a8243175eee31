//! Many invoice mails at once, and counting what came back: one reply per mail, told apart by In-Reply-To.

use anyhow::{Context, Result};
use std::collections::HashMap;

use super::pdf::SampleInvoice;
use super::{MailBuilder, Received, TestWorld, DOMAIN, PASSWORD};

/// A supplier's mail with one text-layer PDF invoice numbered `number`.
pub fn invoice_mail(w: &TestWorld, number: &str) -> MailBuilder {
    let pdf = SampleInvoice::basic(number).render_pdf();
    MailBuilder::new(w, &format!("Factura {number}")).attach(&format!("factura-{number}.pdf"), "application/pdf", pdf)
}

/// Replies per original Message-ID, by In-Reply-To: (distinct reply Message-IDs, deliveries).
pub fn replies_by_original(replies: &[Received]) -> HashMap<String, (usize, usize)> {
    let mut ids: HashMap<String, Vec<String>> = HashMap::new();
    for r in replies {
        let key = r.in_reply_to.clone().unwrap_or_default();
        ids.entry(key).or_default().push(r.message_id.clone().unwrap_or_default());
    }
    ids.into_iter()
        .map(|(k, mut v)| {
            let deliveries = v.len();
            v.sort();
            v.dedup();
            (k, (v.len(), deliveries))
        })
        .collect()
}

/// Check that each mail got exactly one reply (one distinct Message-ID) and return how many reply copies were
/// delivered twice: the same Message-ID again, which is what a kill between the server's 250 and our record of
/// it produces (at-least-once delivery; a mail client shows it as the same message).
pub fn assert_one_reply_each(replies: &[Received], originals: &[String]) -> usize {
    let by = replies_by_original(replies);
    let mut resent = 0;
    for id in originals {
        let id = id.trim_matches(['<', '>']);
        let (distinct, deliveries) = by.get(id).copied().unwrap_or((0, 0));
        assert_eq!(distinct, 1, "mail {id} has {distinct} distinct replies");
        resent += deliveries - 1;
    }
    assert_eq!(by.len(), originals.len(), "replies to mails we did not send: {:?}", by.keys());
    resent
}

/// Put raw messages into `user`'s folder `folder` with IMAP APPEND over one session (creating the folder): a
/// flood that arrives faster than SMTP would deliver it, with the bytes exactly as given.
pub async fn append_all(w: &TestWorld, user: &str, folder: &str, raws: &[Vec<u8>]) -> Result<()> {
    let tcp = tokio::net::TcpStream::connect((w.servers.host.as_str(), w.servers.imap_port)).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    let mut session = client.login(format!("{user}@{DOMAIN}"), PASSWORD).await.map_err(|(e, _)| e)?;
    let _ = session.create(folder).await;
    for raw in raws {
        session.append(folder, None, None, raw).await.context("IMAP APPEND")?;
    }
    session.logout().await.ok();
    Ok(())
}
