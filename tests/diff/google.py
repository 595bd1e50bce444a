#!/usr/bin/env python3
"""Reference verdicts for the differential normalisation test (tests/it/normalise.rs).

Reads a contacts.csv made by tests/diff/gen_contacts.py and writes, for every data row,
Google's verdict on its phone (libphonenumber's Python port, region = the row's country column)
and on its email (email-validator, check_deliverability=False), as CSV on stdout:

    row,phone,email

where each verdict is `ok:<normalised value>`, `err:<reason>` or `blank`. The phone is
normalised to E.164 (extension dropped, as E.164 has none); the email is trimmed and
lower-cased first, as doto-bulk does, and its `normalized` form is printed. With LABELS (the
labels.csv of the same run), a phone the generator damaged in a way doto-bulk repairs is judged
as written before the damage (its `phone_ref`): the repair must give that number or none.

With --examples instead of a file, it makes its own phone sample covering every region of the
metadata: each region's example number of every type, written nationally, internationally,
in E.164 and as dialled from the US, plus mutations (a digit dropped, added, changed), and
prints `raw,region,phone,numeric` verdicts for them. It adds the damage doto-bulk repairs, each
judged as the number before the damage: `tel:` and `++` prefixes, an invisible character, and
the national and E.164 forms as a spreadsheet number cell holds them (digits only, leading
zeros lost; `numeric` = 1).

Usage: google.py CONTACTS.csv [LABELS.csv] | google.py --examples
       (with the interpreter of the venv made by tests/setup.sh)
"""
import csv
import sys

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat


def phone_verdict(raw, region):
    raw = raw.strip()
    if not raw:
        return "blank"
    try:
        num = phonenumbers.parse(raw, region or None)
    except NumberParseException as e:
        return f"err:parse {e.error_type}"
    if not phonenumbers.is_valid_number(num):
        return "err:invalid"
    return "ok:" + phonenumbers.format_number(num, PhoneNumberFormat.E164)


def email_verdict(raw):
    e = raw.strip().lower()
    if not e:
        return "blank"
    try:
        v = validate_email(e, check_deliverability=False)
    except EmailNotValidError as err:
        return "err:" + str(err).replace("\n", " ")
    return "ok:" + v.normalized


def phone_refs(labels):
    """Row -> the phone as written before a repaired damage, from labels.csv."""
    if labels is None:
        return {}
    with open(labels, newline="", encoding="utf-8") as fh:
        return {int(r["row"]): r["phone_ref"] for r in csv.DictReader(fh) if r.get("phone_ref")}


def main(path, labels=None):
    refs = phone_refs(labels)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["row", "phone", "email"])
    with open(path, newline="", encoding="utf-8-sig") as fh:
        r = csv.reader(fh)
        header = next(r)
        col = {name: i for i, name in enumerate(header)}
        for i, row in enumerate(r):
            phone = refs.get(i, row[col["phone"]])
            out.writerow([i, phone_verdict(phone, row[col["country"]].strip()),
                          email_verdict(row[col["email"]])])


TYPES = ["FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE", "SHARED_COST", "VOIP",
         "PERSONAL_NUMBER", "PAGER", "UAN", "VOICEMAIL"]


def examples():
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["raw", "region", "phone", "numeric"])
    seen = set()

    def emit(raw, region, ref=None, numeric=0):
        if raw and (raw, region, numeric) not in seen:
            seen.add((raw, region, numeric))
            out.writerow([raw, region, phone_verdict(ref or raw, region), numeric])

    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for t in TYPES:
            ex = phonenumbers.example_number_for_type(region, getattr(phonenumbers.PhoneNumberType, t))
            if ex is None:
                continue
            nat = phonenumbers.format_number(ex, PhoneNumberFormat.NATIONAL)
            intl = phonenumbers.format_number(ex, PhoneNumberFormat.INTERNATIONAL)
            e164 = phonenumbers.format_number(ex, PhoneNumberFormat.E164)
            emit(nat, region)
            emit(intl, region)
            emit(e164, region)
            emit(intl, "US" if region != "US" else "GB")
            emit(phonenumbers.format_out_of_country_calling_number(ex, "US"), "US")
            emit(phonenumbers.format_out_of_country_calling_number(ex, "GB"), "GB")
            digits = "".join(c for c in nat if c.isdigit())
            emit(digits, region)
            if len(digits) > 3:
                emit(digits[:-1], region)
                emit(digits + "5", region)
                i = len(digits) // 2
                emit(digits[:i] + str((int(digits[i]) + 3) % 10) + digits[i + 1:], region)
                emit(e164[:-1], region)
                emit(e164 + "7", region)
            # The damage doto-bulk repairs, judged as the number before it.
            emit("tel:" + intl, region, intl)
            emit("+" + e164, region, e164)
            emit(nat[:1] + "\u200b" + nat[1:], region, nat)
            emit("\ufeff" + intl + "\u00ad", region, intl)
            emit(str(int(digits)), region, nat, 1)
            emit(e164[1:], region, e164, 1)


if __name__ == "__main__":
    if sys.argv[1] == "--examples":
        examples()
    else:
        main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
