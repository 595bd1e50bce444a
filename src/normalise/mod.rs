//! Normalisation: newtypes whose `parse` is their only constructor, so that a value of the type
//! is a value the server will accept. (Interim implementation: the normalisation issue replaces
//! the insides, the signatures stay.)
mod email;
mod phone;
mod values;

pub use email::Email;
pub use phone::{PhoneE164, Region};
pub use values::{Identifier, check_text};
