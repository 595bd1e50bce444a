#!/usr/bin/env python3
"""Reference verdicts for the differential normalisation test (tests/it/normalise.rs).

Reads a contacts.csv made by ../shared/peers/gen_contacts.py and writes, for every data row,
Google's verdict on its phone (libphonenumber's Python port, region = the row's country column)
and on its email (email-validator, check_deliverability=False), as CSV on stdout:

    row,phone,email

where each verdict is `ok:<normalised value>`, `err:<reason>` or `blank`. The phone is
normalised to E.164 (extension dropped, as E.164 has none); the email is trimmed and
lower-cased first, as doto-bulk does, and its `normalized` form is printed.

Usage: google.py CONTACTS.csv   (with the interpreter of the venv made by tests/setup.sh)
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


def main(path):
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["row", "phone", "email"])
    with open(path, newline="", encoding="utf-8-sig") as fh:
        r = csv.reader(fh)
        header = next(r)
        col = {name: i for i, name in enumerate(header)}
        for i, row in enumerate(r):
            out.writerow([i, phone_verdict(row[col["phone"]], row[col["country"]].strip()),
                          email_verdict(row[col["email"]])])


if __name__ == "__main__":
    main(sys.argv[1])
