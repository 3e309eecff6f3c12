//! Documents costd renders for people: an invoice as PDF and CSV ([`invoice`]), laid out with a small
//! page model over `pdf-writer` ([`pdf`]). Pure functions of stored data: no I/O.

pub mod invoice;
pub mod pdf;
