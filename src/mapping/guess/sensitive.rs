//! Columns that look sensitive (national ids, passwords, tax ids, dates of birth, card and bank
//! numbers): `mapping init` never enables them, except one named exactly with `--include`.
use super::norm;

/// Pieces of a normalised header (lowercase letters and digits only) that mark it, with what
/// they are called in the warning.
const INSIDE: &[(&str, &str)] = &[
    ("socialsecurity", "social security number"),
    ("socialinsurance", "social insurance number"),
    ("nationalid", "national id"),
    ("nationalinsurance", "national insurance number"),
    ("nationalnumber", "national id"),
    ("passport", "passport number"),
    ("driverslicen", "driving licence number"),
    ("drivinglicen", "driving licence number"),
    ("password", "password"),
    ("passwd", "password"),
    ("passcode", "password"),
    ("taxid", "tax id"),
    ("taxnumber", "tax id"),
    ("taxpayer", "tax id"),
    ("taxcode", "tax id"),
    ("vatnumber", "VAT number"),
    ("vatid", "VAT number"),
    ("vatreg", "VAT number"),
    ("employeridentification", "EIN"),
    ("dateofbirth", "date of birth"),
    ("birthdate", "date of birth"),
    ("birthday", "date of birth"),
    ("cardnumber", "card number"),
    ("creditcard", "card number"),
    ("debitcard", "card number"),
    ("iban", "bank account number"),
    ("bankaccount", "bank account number"),
    ("routingnumber", "routing number"),
    ("sortcode", "bank sort code"),
    ("securitycode", "card security code"),
    // Outlook's "Government ID Number", and its German, French, Spanish names; dates of birth
    // in those languages (French Outlook's birthday is "Anniversaire").
    ("governmentid", "national id"),
    ("regierungsnr", "national id"),
    ("sozialversicherung", "social security number"),
    ("codegouvernement", "national id"),
    ("sécuritésociale", "social security number"),
    ("steuernummer", "tax id"),
    ("geburtstag", "date of birth"),
    ("geburtsdatum", "date of birth"),
    ("anniversaire", "date of birth"),
    ("datedenaissance", "date of birth"),
    ("fechadenacimiento", "date of birth"),
    ("cumpleaños", "date of birth"),
];

/// Whole words (split at anything not a letter or digit, and at lower→upper case changes) that
/// mark a header: too short to look for inside other words.
const WORDS: &[(&str, &str)] = &[
    ("ssn", "social security number"),
    ("sin", "social insurance number"),
    ("nino", "national insurance number"),
    ("ein", "EIN"),
    ("tin", "tax id"),
    ("vat", "VAT number"),
    ("dob", "date of birth"),
    ("cvv", "card security code"),
    ("cvc", "card security code"),
    ("pwd", "password"),
    ("aba", "routing number"),
];

/// What a header looks like it holds when that is sensitive (`Date of Birth` → date of birth).
pub fn sensitive(header: &str) -> Option<&'static str> {
    let n = norm(header);
    if let Some((_, what)) = INSIDE.iter().find(|(k, _)| n.contains(k)) {
        return Some(what);
    }
    let words = words(header);
    WORDS
        .iter()
        .find(|(w, _)| words.iter().any(|x| x == w))
        .map(|(_, what)| *what)
}

/// The header's words, lower-cased: `customerSSN` → customer, ssn; `Tax-ID` → tax, id.
fn words(header: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in header.chars() {
        if !c.is_alphanumeric() {
            out.extend((!cur.is_empty()).then(|| std::mem::take(&mut cur)));
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase();
        cur.extend(c.to_lowercase());
    }
    out.extend((!cur.is_empty()).then_some(cur));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_headers_are_found_and_ordinary_ones_are_not() {
        for h in [
            "SSN",
            "customerSSN",
            "Social Security Number",
            "National ID",
            "Portal Password",
            "Tax ID",
            "VAT",
            "VAT Number",
            "EIN",
            "Date of Birth",
            "DOB",
            "Birthday",
            "Credit Card Number",
            "IBAN",
            "Bank Account",
            "Routing Number",
            "Person - Passport",
        ] {
            assert!(sensitive(h).is_some(), "{h}");
        }
        for h in [
            "Email",
            "Weinberg Notes",
            "Einstein",
            "Title",
            "Lead Source",
            "Singapore Office",
            "Account Number",
            "Contact Owner.id",
            "Person - Name",
        ] {
            assert_eq!(sensitive(h), None, "{h}");
        }
    }
}
