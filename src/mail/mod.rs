//! Everything that speaks IMAP, SMTP or MIME lives here, and nothing else does.

pub mod auth;
pub mod headers;
pub mod i18n;
pub mod imap;
pub mod language;
pub mod mime;
pub mod oauth2;
pub mod render;
pub mod reply;
pub mod settings;
pub mod smtp;
pub mod tnef;
