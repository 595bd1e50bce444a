//! Normalisation: newtypes whose `parse` is their only constructor, so that a value of the type
//! is a value the server will accept and a mail or phone system can use. Phones are checked with
//! Google's libphonenumber algorithm on the `phonenumber` crate's metadata (see `phone`), emails
//! against what mail systems accept (see `email`), and every text value for spreadsheet and
//! encoding damage (see `values`). The rules, and how they compare with Google's libphonenumber
//! and Python's email-validator, are in `benches/README.md` (Normalisation).
mod email;
mod phone;
mod regions;
mod values;

pub use email::{Email, EmailRead};
pub use phone::{PhoneE164, PhoneRead, Region, RowRegion};
pub(crate) use values::is_invisible;
pub use values::{Identifier, check_text};
