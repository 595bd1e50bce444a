//! Which export a header row comes from: the CRM and the view (HubSpot default view or all
//! properties, Salesforce report or Data Loader, Zoho contacts or leads, Pipedrive single or
//! label-split columns, Chatwoot; Google Contacts and Outlook address books, English or localised
//! (German, French, Spanish), Mailchimp audiences; Brevo, Zendesk users, LinkedIn connections),
//! and the identifier prefix the shipped mapping of that CRM uses.
use super::{norm, strip_entity, strip_prefix_folded};

/// An export layout `mapping init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// What it is, for stderr and the draft's first comment.
    pub name: &'static str,
    /// The identifier prefix (`hubspot-`), as in `mappings/*.yaml`.
    pub prefix: &'static str,
    /// Why it was taken for that layout.
    pub why: &'static str,
    /// An address book (Google, Outlook): no record id, and many contacts have a phone alone, so
    /// the phone is a match key too.
    pub phone_key: bool,
    /// Phone numbers written without `+` start with their country code (Brevo's `SMS`): the
    /// draft reads them with `international: true` and needs no region for them.
    pub international: bool,
}

/// No CRM recognised: a spreadsheet of the user's own.
pub const PLAIN: Layout = Layout {
    name: "no known CRM export (a spreadsheet of your own)",
    prefix: "import-",
    why: "no CRM's column names",
    phone_key: false,
    international: false,
};

fn layout(name: &'static str, prefix: &'static str, why: &'static str) -> Layout {
    Layout {
        name,
        prefix,
        why,
        phone_key: false,
        international: false,
    }
}

fn address_book(name: &'static str, prefix: &'static str, why: &'static str) -> Layout {
    Layout {
        phone_key: true,
        ..layout(name, prefix, why)
    }
}

/// The layout of `headers` (the values of the record id column help tell Zoho's `zcrm_` ids).
pub fn detect(headers: &[String], id_values: &[&str]) -> Layout {
    let exact = |n: &str| headers.iter().any(|h| h.trim() == n);
    let has = |n: &str| headers.iter().any(|h| norm(h) == n);
    if let Some(l) = pipedrive(headers)
        .or_else(|| others(headers))
        .or_else(|| localised_outlook(headers))
    {
        return l;
    }
    if id_values.iter().any(|v| v.trim().starts_with("zcrm_"))
        || exact("Record Id")
        || headers.iter().any(|h| h.trim().ends_with(".id"))
    {
        let why = "\"Record Id\" / \"… .id\" columns / zcrm_ ids";
        return if exact("Lead Owner") || exact("Lead Owner.id") {
            layout("Zoho CRM leads export", "zoho-", why)
        } else {
            layout("Zoho CRM contacts export", "zoho-", why)
        };
    }
    if exact("id") && exact("phone_number") {
        let why = "Chatwoot's snake_case columns id, name, email, phone_number";
        return if has("customattributes") || has("additionalattributes") {
            layout(
                "Chatwoot contacts export (with attributes)",
                "chatwoot-",
                why,
            )
        } else {
            layout(
                "Chatwoot contacts export (default columns)",
                "chatwoot-",
                why,
            )
        };
    }
    if exact("Record ID")
        && [
            "contactowner",
            "countryregion",
            "lifecyclestage",
            "leadstatus",
            "createdate",
        ]
        .iter()
        .any(|n| has(n))
    {
        let why = "\"Record ID\" with HubSpot's property names";
        return if exact("Associated Company") && headers.len() <= 20 {
            layout("HubSpot contacts export (default view)", "hubspot-", why)
        } else {
            layout("HubSpot contacts export (all properties)", "hubspot-", why)
        };
    }
    (google(headers).or_else(|| outlook(headers)))
        .or_else(|| mailchimp(headers))
        .or_else(|| salesforce(headers))
        .unwrap_or(PLAIN)
}

/// Brevo's contacts export (its attribute names: `EMAIL`, `FIRSTNAME`, `SMS`, `CONTACT ID`), a
/// Zendesk users CSV (`name,email,external_id,details,notes,phone,role,restriction,…`) or
/// LinkedIn's `Connections.csv` (`First Name,Last Name,URL,Email Address,…,Connected On`).
fn others(headers: &[String]) -> Option<Layout> {
    let exact = |n: &str| headers.iter().any(|h| h.trim() == n);
    let any = |ns: &[&str]| ns.iter().any(|n| exact(n));
    if exact("EMAIL") && any(&["SMS", "CONTACT ID", "WHATSAPP", "LANDLINE_NUMBER"]) {
        return Some(Layout {
            international: true,
            ..layout(
                "Brevo contacts export",
                "brevo-",
                "Brevo's attribute names EMAIL, FIRSTNAME, LASTNAME, SMS",
            )
        });
    }
    if exact("external_id") && any(&["restriction", "role", "details"]) {
        return Some(layout(
            "Zendesk Support users CSV",
            "zendesk-",
            "name, email, external_id with Zendesk's role/restriction/details columns",
        ));
    }
    (exact("URL") && exact("Connected On") && exact("First Name")).then(|| {
        layout(
            "LinkedIn connections export (Connections.csv)",
            "linkedin-",
            "First Name, Last Name, URL, Email Address, Connected On",
        )
    })
}

/// Outlook's CSV as a German, French or Spanish Outlook writes it: the same columns, translated
/// (Microsoft's own names, as Exchange reads them per language).
fn localised_outlook(headers: &[String]) -> Option<Layout> {
    let exact = |n: &str| headers.iter().any(|h| h.trim() == n);
    let any = |ns: &[&str]| ns.iter().any(|n| exact(n));
    let (name, why) = if any(&["E-Mail-Adresse", "E-Mail 2: Adresse"])
        && any(&[
            "Vorname",
            "Nachname",
            "Mobiltelefon",
            "Telefon geschäftlich",
        ]) {
        (
            "Outlook contacts CSV (German Outlook: Vorname, Nachname, E-Mail-Adresse)",
            "Outlook's German column names",
        )
    } else if any(&["Adresse de messagerie", "Adresse de messagerie 2"])
        && any(&["Prénom", "Tél. mobile", "Téléphone (bureau)"])
    {
        (
            "Outlook contacts CSV (French Outlook: Prénom, Nom, Adresse de messagerie)",
            "Outlook's French column names",
        )
    } else if exact("Apellidos")
        && any(&[
            "Dirección de correo electrónico 2",
            "Teléfono del trabajo",
            "Segundo nombre",
        ])
    {
        (
            "Outlook contacts CSV (Spanish Outlook: Nombre, Apellidos, Dirección de correo electrónico)",
            "Outlook's Spanish column names",
        )
    } else {
        return None;
    };
    Some(address_book(name, "outlook-", why))
}

/// `E-mail 1 - Value` → `Some(("E-mail", "Value"))`: Google's numbered `What N - Part` columns.
fn numbered(h: &str) -> Option<(&str, &str)> {
    let (what, rest) = h.trim().split_once(' ')?;
    let (n, part) = rest.split_once(" - ")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some((what, part))
}

/// Google Contacts: numbered `E-mail 1 - Value` / `Phone 1 - Value` columns; the current export
/// labels them (`E-mail 1 - Label`, with First/Middle/Last Name), the older one types them
/// (`E-mail 1 - Type`, with Name, Given Name, Family Name, Group Membership).
fn google(headers: &[String]) -> Option<Layout> {
    let parts: Vec<(&str, &str)> = headers.iter().filter_map(|h| numbered(h)).collect();
    let valued = parts
        .iter()
        .any(|&(w, p)| (w == "E-mail" || w == "Phone") && p == "Value");
    if !valued {
        return None;
    }
    let typed = parts.iter().any(|&(_, p)| p == "Type");
    Some(if typed {
        address_book(
            "Google Contacts CSV (older export: Name, Given Name, E-mail 1 - Type)",
            "google-",
            "numbered \"E-mail 1 - Value\" columns with \"- Type\" labels",
        )
    } else {
        address_book(
            "Google Contacts CSV (Google CSV export)",
            "google-",
            "numbered \"E-mail 1 - Value\" / \"Phone 1 - Value\" columns",
        )
    })
}

/// Outlook's CSV (Outlook's Import/Export wizard, and Google's "Outlook CSV" export):
/// `E-mail Address` with `E-mail 2 Address` or Outlook's phone columns.
fn outlook(headers: &[String]) -> Option<Layout> {
    let exact = |n: &str| headers.iter().any(|h| h.trim() == n);
    let phones = [
        "Business Phone",
        "Home Phone",
        "Mobile Phone",
        "Primary Phone",
    ];
    (exact("E-mail Address") && (exact("E-mail 2 Address") || phones.iter().any(|p| exact(p))))
        .then(|| {
            address_book(
                "Outlook contacts CSV",
                "outlook-",
                "\"E-mail Address\", \"E-mail 2 Address\" and Outlook's phone columns",
            )
        })
}

/// Mailchimp's audience export: `Email Address` with its system columns (`MEMBER_RATING`,
/// `OPTIN_TIME`, `LEID`, `EUID`, …).
fn mailchimp(headers: &[String]) -> Option<Layout> {
    let exact = |n: &str| headers.iter().any(|h| h.trim() == n);
    let system = [
        "MEMBER_RATING",
        "OPTIN_TIME",
        "CONFIRM_TIME",
        "LEID",
        "EUID",
    ];
    let n = system.iter().filter(|c| exact(c)).count();
    (exact("Email Address") && n >= 2).then(|| {
        layout(
            "Mailchimp audience export",
            "mailchimp-",
            "\"Email Address\" with MEMBER_RATING, OPTIN_TIME, LEID, EUID",
        )
    })
}

/// Pipedrive: `Person - ` before every column; label-split when `Person - Email - Work` and the
/// like are there.
fn pipedrive(headers: &[String]) -> Option<Layout> {
    let person = headers
        .iter()
        .filter(|h| strip_prefix_folded(h.trim(), "person - ").is_some())
        .count();
    if person < 2 {
        return None;
    }
    let split = headers.iter().any(|h| {
        let mut parts = strip_entity(h).split('-').map(str::trim);
        let first = parts.next().map(norm).unwrap_or_default();
        (first == "email" || first == "phone") && parts.next().is_some()
    });
    let why = "\"Person - \" columns";
    Some(if split {
        layout(
            "Pipedrive people export (e-mail and phone split by label)",
            "pipedrive-",
            why,
        )
    } else {
        layout(
            "Pipedrive people export (one e-mail and phone column)",
            "pipedrive-",
            why,
        )
    })
}

/// Salesforce: Data Loader's API names (`Id`, `FirstName`, `MailingCity`) or a report's labels
/// (`Mailing City`, `Account Name`, `Contact ID`).
fn salesforce(headers: &[String]) -> Option<Layout> {
    let exact = |n: &str| headers.iter().any(|h| h.trim() == n);
    let api = [
        "FirstName",
        "LastName",
        "MailingCity",
        "MailingCountry",
        "AccountId",
        "MobilePhone",
        "OwnerId",
    ];
    if exact("Id") && api.iter().any(|n| exact(n)) {
        return Some(layout(
            "Salesforce Data Loader export (API field names)",
            "sf-",
            "\"Id\" with API names such as FirstName, MailingCity, AccountId",
        ));
    }
    let report = headers.iter().any(|h| h.trim().starts_with("Mailing "))
        || exact("Contact ID")
        || exact("Contact Record Type")
        || exact("Account Name");
    report.then(|| {
        layout(
            "Salesforce contact report",
            "sf-",
            "Mailing …/Account Name/Contact ID labels",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(row: &str, sep: char) -> Vec<String> {
        row.split(sep)
            .map(|s| s.trim_matches('"').to_string())
            .collect()
    }

    #[test]
    fn the_five_real_header_rows_and_the_other_views() {
        let cases = [
            (
                split(
                    r#""Record ID","First Name","Last Name","Email","Phone Number","Contact owner","Primary Associated Company ID","Last Activity Date","Lead Status","Create Date","Additional email addresses","Associated Company""#,
                    ',',
                ),
                "HubSpot contacts export (default view)",
            ),
            (
                split(
                    "Record ID,First Name,Last Name,Email,Mobile Phone Number,Country/Region,Lifecycle Stage,Company Name,City,Create Date,Contact owner,Job Title,Lead Status,Phone Number,State/Region,Street Address,Postal Code,Website URL,Industry,Annual Revenue,Number of Employees",
                    ',',
                ),
                "HubSpot contacts export (all properties)",
            ),
            (
                split("id,name,email,phone_number,labels", ','),
                "Chatwoot contacts export (default columns)",
            ),
            (
                split(
                    "Record Id,Contact Owner.id,Contact Owner,Lead Source,First Name,Last Name,Email,Mailing State",
                    ',',
                ),
                "Zoho CRM contacts export",
            ),
            (
                split(
                    "Record Id,Lead Owner.id,Lead Owner,Company,First Name,Last Name,Email,State,Country",
                    ',',
                ),
                "Zoho CRM leads export",
            ),
            (
                split(
                    "Salutation,First Name,Last Name,Title,Mailing Street,Mailing City,Mailing State/Province,Mailing Zip/Postal Code,Mailing Country,Phone,Email,Contact Record Type,Account Name,Account Owner,Lead Source",
                    ',',
                ),
                "Salesforce contact report",
            ),
            (
                split(
                    "Id,FirstName,LastName,Email,Phone,MobilePhone,MailingCity,MailingCountry,AccountId",
                    ',',
                ),
                "Salesforce Data Loader export (API field names)",
            ),
            (
                split(
                    "Person - ID;Person - Name;Person - Email - Work;Person - Email - Home;Person - Phone - Mobile;Person - Email messages count",
                    ';',
                ),
                "Pipedrive people export (e-mail and phone split by label)",
            ),
            (
                split(
                    "Person - ID;Person - Name;Person - Email;Person - Phone;Person - Email messages count",
                    ';',
                ),
                "Pipedrive people export (one e-mail and phone column)",
            ),
            (split("Name,Email,Phone", ','), PLAIN.name),
            (
                split(
                    "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,Birthday,Notes,Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value",
                    ',',
                ),
                "Google Contacts CSV (Google CSV export)",
            ),
            (
                split(
                    "Name,Given Name,Additional Name,Family Name,Yomi Name,Given Name Yomi,Additional Name Yomi,Family Name Yomi,Name Prefix,Name Suffix,Initials,Nickname,Short Name,Maiden Name,Birthday,Gender,Location,Billing Information,Directory Server,Mileage,Occupation,Hobby,Sensitivity,Priority,Subject,Notes,Group Membership,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value",
                    ',',
                ),
                "Google Contacts CSV (older export: Name, Given Name, E-mail 1 - Type)",
            ),
            (
                split(
                    "First Name,Middle Name,Last Name,Title,Suffix,Initials,Web Page,Gender,Birthday,Anniversary,Location,Language,Internet Free Busy,Notes,E-mail Address,E-mail 2 Address,E-mail 3 Address,Primary Phone,Home Phone,Home Phone 2,Mobile Phone",
                    ',',
                ),
                "Outlook contacts CSV",
            ),
            (
                split(
                    r#""Email Address","First Name","Last Name",MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES"#,
                    ',',
                ),
                "Mailchimp audience export",
            ),
            // A spreadsheet of one's own with an "E-mail Address" column alone is not Outlook's.
            (split("Name,E-mail Address,Phone", ','), PLAIN.name),
            (
                split(
                    "Anrede,Vorname,Weitere Vornamen,Nachname,Firma,Position,Telefon geschäftlich,Mobiltelefon,E-Mail-Adresse,E-Mail 2: Adresse,Geburtstag",
                    ',',
                ),
                "Outlook contacts CSV (German Outlook: Vorname, Nachname, E-Mail-Adresse)",
            ),
            (
                split(
                    "Titre,Prénom,Deuxième prénom,Nom,Société ,Tél. mobile,Adresse de messagerie,Anniversaire",
                    ',',
                ),
                "Outlook contacts CSV (French Outlook: Prénom, Nom, Adresse de messagerie)",
            ),
            // Spanish Outlook keeps "E-mail Address" and "Mobile Phone" in English: not taken for
            // the English export.
            (
                split(
                    "Title,Nombre,Segundo nombre,Apellidos,Organización,Puesto,Teléfono del trabajo,Mobile Phone,E-mail Address,Dirección de correo electrónico 2",
                    ',',
                ),
                "Outlook contacts CSV (Spanish Outlook: Nombre, Apellidos, Dirección de correo electrónico)",
            ),
            (
                split(
                    "CONTACT ID,EMAIL,FIRSTNAME,LASTNAME,SMS,LANDLINE_NUMBER,WHATSAPP",
                    ',',
                ),
                "Brevo contacts export",
            ),
            (
                split(
                    "name,email,external_id,details,notes,phone,role,restriction,organization,tags",
                    ',',
                ),
                "Zendesk Support users CSV",
            ),
            (
                split(
                    "First Name,Last Name,URL,Email Address,Company,Position,Connected On",
                    ',',
                ),
                "LinkedIn connections export (Connections.csv)",
            ),
            // An own sheet with EMAIL alone, or an "external_id" alone, is no known export.
            (split("EMAIL,NAME,PHONE", ','), PLAIN.name),
            (split("name,email,external_id", ','), PLAIN.name),
        ];
        for (headers, _) in &cases {
            let l = detect(headers, &[]);
            let book = l.prefix == "google-" || l.prefix == "outlook-";
            assert_eq!(l.phone_key, book, "{headers:?}");
        }
        for (headers, want) in cases {
            let l = detect(&headers, &[]);
            assert_eq!(l.name, want, "{headers:?}");
            assert_eq!(l.international, l.prefix == "brevo-", "{headers:?}");
        }
    }
}
