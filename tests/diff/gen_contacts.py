#!/usr/bin/env python3
"""Generate a realistic synthetic contacts file (CSV, optionally XLSX) for tests and benchmarks.

The sample of the differential normalisation test (tests/it/normalise.rs, run with NO_XLSX=1 and
only the standard library) and the input of the benchmarks (benches/). The XLSX needs openpyxl,
which only the benchmarks install.

Usage: gen_contacts.py N [OUTDIR]   (NO_XLSX=1 to skip the XLSX; XLSX needs openpyxl)

Columns: first_name,last_name,email,phone,country,company,plan,signup_date
Deterministic (seed 20240611).  Phone numbers are generated from real national
numbering ranges (area codes / mobile prefixes) in many written styles; ~5% of rows
get a deliberately broken phone and ~5% a deliberately broken / edge-case email.
No phone/email library is consulted while generating, so the data is not biased
towards either implementation.  A sidecar file (labels.csv) records which generator
branch produced each phone/email so disagreements can be categorised later.

About 6% of the good phones then get damage that doto-bulk repairs (drawn from a second random
stream, so every other value is the same as without it): a `tel:` prefix, a doubled `+`, an
invisible character, or a spreadsheet number cell that lost its leading `0`/`+` (the digits
only; an int cell in the XLSX). labels.csv gives, for those rows, the phone as written before
the damage (`phone_ref`: the reference verdict is Google's on it) and `phone_numeric` (1: the
value is a number cell).
"""
import csv
import datetime as dt
import random
import sys
import os

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
OUT = sys.argv[2] if len(sys.argv) > 2 else "."
WRITE_XLSX = os.environ.get("NO_XLSX") is None
os.makedirs(OUT, exist_ok=True)
R = random.Random(20240611)
REPAIR = random.Random(20260312)  # the repaired classes: a stream of their own


def d(n):
    return "".join(R.choice("0123456789") for _ in range(n))


def d1(n):  # first digit 2-9
    return R.choice("23456789") + d(n - 1)


# ---------------------------------------------------------------------------
# National number generators: return (cc, national_significant_number, kind, nat_prefix)
# ---------------------------------------------------------------------------
US_AREAS = ["415", "212", "312", "646", "206", "617", "305", "512", "702", "213", "404", "303",
            "718", "917", "408", "650", "619", "214", "713", "602"]


def gen_US():
    area = R.choice(US_AREAS)
    exch = R.choice("23456789") + d(2)
    if exch[1:] == "11":
        exch = exch[0] + "23"
    line = d(4)
    if R.random() < 0.10:  # the classic fictional 555 exchange
        exch, line = "555", R.choice(["2671", "0199", "1234", "0100", "4567"])
    return "1", area + exch + line, "fixed_or_mobile", "1"


def gen_GB():
    r = R.random()
    if r < 0.45:  # mobile 07xxx xxxxxx
        pre = R.choice(["7912", "7400", "7500", "7123", "7834", "7712", "7956", "7305", "7588", "7472"])
        return "44", pre + d(6), "mobile", "0"
    if r < 0.75:  # London 020 7xxx xxxx / 020 8xxx xxxx / 020 3xxx xxxx
        return "44", "20" + R.choice("783") + d(7), "fixed", "0"
    if r < 0.90:  # 4-digit area + 7 digit subscriber (0161 Manchester, 0121 Birmingham, 0113 Leeds, 0151 Liverpool)
        return "44", R.choice(["161", "121", "113", "151", "117", "131", "141"]) + R.choice("234") + d(6), "fixed", "0"
    # 5-digit area codes e.g. 01865 (Oxford), 01223 (Cambridge) + 6 digits
    return "44", R.choice(["1865", "1223", "1392", "1603"]) + d1(6), "fixed", "0"


def gen_DE():
    r = R.random()
    if r < 0.5:  # mobile
        pre = R.choice(["151", "152", "157", "159", "160", "170", "171", "172", "173", "175", "176", "177", "178", "179"])
        rest = 8 if pre in ("151", "152", "157", "159", "176") else 7
        return "49", pre + d(rest), "mobile", "0"
    area = R.choice(["30", "40", "89", "69", "221", "211", "711", "341", "351", "911"])
    sub_len = 8 if len(area) == 2 else 7
    if R.random() < 0.3:
        sub_len -= 1
    return "49", area + d1(sub_len), "fixed", "0"


def gen_FR():
    if R.random() < 0.55:
        nsn = "6" + R.choice("012345678") + d(7) if R.random() < 0.75 else "7" + R.choice("56789") + d(7)
        return "33", nsn, "mobile", "0"
    return "33", R.choice(["1", "3", "4", "5"]) + R.choice("23456789") + d(7), "fixed", "0"


def gen_IN():
    if R.random() < 0.7:
        return "91", R.choice(["98", "99", "97", "96", "94", "93", "91", "90", "88", "87", "81", "80", "79", "70", "63", "62"]) + d(8), "mobile", "0"
    area = R.choice(["11", "22", "33", "44", "80", "40"])
    return "91", area + R.choice("2456") + d(7), "fixed", "0"


BR_AREAS = ["11", "21", "31", "41", "51", "61", "71", "81", "19", "27", "48", "85"]


def gen_BR():
    area = R.choice(BR_AREAS)
    if R.random() < 0.65:
        return "55", area + "9" + R.choice("6789") + d(7), "mobile", "0"
    return "55", area + R.choice("2345") + d(7), "fixed", "0"


def gen_AU():
    if R.random() < 0.6:
        return "61", "4" + R.choice(["0", "1", "2", "3", "6"]) + d(7), "mobile", "0"
    area = R.choice(["2", "3", "7", "8"])
    first = {"2": R.choice(["9", "8"]), "3": R.choice(["9", "8"]), "7": R.choice(["3", "5"]), "8": R.choice(["9", "8"])}[area]
    return "61", area + first + d(7), "fixed", "0"


def gen_JP():
    if R.random() < 0.6:
        return "81", R.choice(["90", "80", "70"]) + R.choice("123456789") + d(7), "mobile", "0"
    area = R.choice(["3", "6"])
    return "81", area + R.choice("23456789") + d(7), "fixed", "0"


def gen_ES():
    if R.random() < 0.6:
        nsn = "6" + d(8) if R.random() < 0.85 else "7" + R.choice("1234") + d(7)
        return "34", nsn, "mobile", ""
    return "34", R.choice(["91", "93", "95", "96", "94", "98"]) + R.choice("12345678") + d(6), "fixed", ""


def gen_NG():
    if R.random() < 0.8:
        pre = R.choice(["803", "806", "813", "816", "703", "706", "810", "802", "808", "812", "701", "805", "807", "815", "905", "902"])
        return "234", pre + d(7), "mobile", "0"
    return "234", "20" + R.choice("1259") + d(7), "fixed", "0"


GEN = {"US": gen_US, "GB": gen_GB, "DE": gen_DE, "FR": gen_FR, "IN": gen_IN,
       "BR": gen_BR, "AU": gen_AU, "JP": gen_JP, "ES": gen_ES, "NG": gen_NG}
CC = {"US": "1", "GB": "44", "DE": "49", "FR": "33", "IN": "91", "BR": "55", "AU": "61", "JP": "81", "ES": "34", "NG": "234"}
IDD = {"US": "011", "GB": "00", "DE": "00", "FR": "00", "IN": "00", "BR": "0021", "AU": "0011", "JP": "010", "ES": "00", "NG": "009"}
COUNTRY_WEIGHTS = [("US", 30), ("GB", 12), ("DE", 10), ("FR", 8), ("IN", 10), ("BR", 8), ("AU", 6), ("JP", 5), ("ES", 6), ("NG", 5)]


def groups(s, sizes, sep=" "):
    out, i = [], 0
    for n in sizes:
        if i >= len(s):
            break
        out.append(s[i:i + n])
        i += n
    if i < len(s):
        out[-1] += s[i:]
    return sep.join(out)


def national_styles(country, nsn, kind):
    """Return a list of plausible national-format spellings of the NSN."""
    if country == "US":
        a, e, l = nsn[:3], nsn[3:6], nsn[6:]
        return [f"({a}) {e}-{l}", f"{a}-{e}-{l}", f"{a}.{e}.{l}", f"{a}{e}{l}", f"1-{a}-{e}-{l}",
                f"1 ({a}) {e}-{l}", f"{a} {e} {l}"]
    if country == "GB":
        if nsn.startswith("20"):
            return ["0" + groups(nsn, [2, 4, 4]), "0" + nsn, "(0" + nsn[:2] + ") " + groups(nsn[2:], [4, 4])]
        if nsn.startswith("7"):
            return ["0" + groups(nsn, [4, 6]), "0" + nsn, "0" + groups(nsn, [4, 3, 3])]
        if len(nsn) == 10 and nsn[0] == "1" and nsn[2] == "1" or nsn[:3] in ("113", "117", "131", "141", "151", "161", "121"):
            return ["0" + groups(nsn, [3, 3, 4]), "0" + groups(nsn, [3, 7]), "(0" + nsn[:3] + ") " + groups(nsn[3:], [3, 4])]
        return ["0" + groups(nsn, [4, 6]), "(0" + nsn[:4] + ") " + nsn[4:], "0" + nsn]
    if country == "DE":
        if nsn[0] == "1":
            return ["0" + groups(nsn, [3, 20]), "0" + nsn, "0" + nsn[:3] + "/" + nsn[3:], "0" + nsn[:3] + "-" + nsn[3:]]
        al = 2 if nsn[:2] in ("30", "40", "89", "69") else 3
        return ["0" + nsn[:al] + " " + nsn[al:], "0" + nsn[:al] + "/" + nsn[al:], "(0" + nsn[:al] + ") " + nsn[al:],
                "0" + nsn[:al] + " " + groups(nsn[al:], [2, 2, 2, 2, 2])]
    if country == "FR":
        return ["0" + nsn[0] + " " + groups(nsn[1:], [2, 2, 2, 2]), "0" + nsn, "0" + nsn[0] + "." + groups(nsn[1:], [2, 2, 2, 2], "."),
                "0" + nsn[0] + "-" + groups(nsn[1:], [2, 2, 2, 2], "-")]
    if country == "IN":
        if kind == "mobile":
            return [groups(nsn, [5, 5]), nsn, "0" + nsn, "0" + groups(nsn, [5, 5]), groups(nsn, [3, 3, 4], "-")]
        return ["0" + nsn[:2] + " " + groups(nsn[2:], [4, 4]), "0" + nsn[:2] + "-" + nsn[2:], "(0" + nsn[:2] + ") " + nsn[2:]]
    if country == "BR":
        a, s = nsn[:2], nsn[2:]
        return [f"({a}) {s[:-4]}-{s[-4:]}", f"{a} {s[:-4]}-{s[-4:]}", f"0{a} {s}", f"({a}){s}", nsn]
    if country == "AU":
        if nsn[0] == "4":
            return ["0" + groups(nsn, [3, 3, 3]), "0" + nsn, "0" + nsn[:3] + "-" + nsn[3:6] + "-" + nsn[6:]]
        return ["(0" + nsn[0] + ") " + groups(nsn[1:], [4, 4]), "0" + nsn[0] + " " + groups(nsn[1:], [4, 4]), "0" + nsn]
    if country == "JP":
        if kind == "mobile":
            return ["0" + nsn[:2] + "-" + nsn[2:6] + "-" + nsn[6:], "0" + nsn, "0" + nsn[:2] + " " + nsn[2:6] + " " + nsn[6:]]
        return ["0" + nsn[0] + "-" + nsn[1:5] + "-" + nsn[5:], "0" + nsn, "(0" + nsn[0] + ") " + nsn[1:5] + "-" + nsn[5:]]
    if country == "ES":
        if nsn[0] in "67":
            return [groups(nsn, [3, 3, 3]), groups(nsn, [3, 2, 2, 2]), nsn]
        return [groups(nsn, [2, 3, 2, 2]), groups(nsn, [3, 3, 3]), nsn]
    if country == "NG":
        return ["0" + groups(nsn, [3, 3, 4]), "0" + nsn, "0" + nsn[:3] + "-" + nsn[3:6] + "-" + nsn[6:]]
    raise KeyError(country)


def intl_styles(country, nsn):
    cc = CC[country]
    if country == "US":
        a, e, l = nsn[:3], nsn[3:6], nsn[6:]
        return [f"+1 {a} {e} {l}", f"+1 ({a}) {e}-{l}", f"+1-{a}-{e}-{l}", f"+1{nsn}"]
    spaced = national_styles(country, nsn, "mobile" if nsn[0] in "4679" else "fixed")[0].lstrip("(").replace(")", "")
    if spaced.startswith("0"):
        spaced = spaced[1:]
    return [f"+{cc} {spaced}", f"+{cc}{nsn}", f"+{cc} {nsn}", f"+{cc} (0){spaced}" if country in ("GB", "DE", "FR") else f"+{cc}-{nsn}",
            f"00{cc} {spaced}"]


EXT_STYLES = [" x{e}", " ext. {e}", " ext {e}", " Ext.{e}", " #{e}", ";ext={e}", " extension {e}"]


def make_phone(country):
    """-> (phone_string, label)"""
    r = R.random()
    # ---- deliberately broken (~5%) ----
    if r < 0.05:
        cc, nsn, kind, np = GEN[country]()
        choice = R.randrange(16)
        if choice == 0:
            return "", "bad:empty"
        if choice == 1:
            return R.choice(["n/a", "N/A", "-", "none", "unknown", "TBD", "call me", "?"]), "bad:text"
        if choice == 2:
            return d(R.randint(3, 6)), "bad:too_short"
        if choice == 3:
            return national_styles(country, nsn, kind)[0][:-2], "bad:truncated"
        if choice == 4:
            return national_styles(country, nsn, kind)[0] + d(R.randint(2, 3)), "bad:too_long"
        if choice == 5:
            return "+" + R.choice(["999", "888", "801", "875", "0"]) + " " + d(9), "bad:bad_cc"
        if choice == 6:
            return R.choice(["000-000-0000", "(000) 000-0000", "0000000000", "1111111111", "123-456-7890", "9999999999"]), "bad:placeholder"
        if choice == 7:
            return "0151 12345678" + d(2) if country == "DE" else "0" + d(R.randint(11, 13)), "bad:too_long_digits"
        if choice == 8:
            return "+" + cc + " " + d(4), "bad:intl_too_short"
        if choice == 9:  # US area code starting with 0/1
            return R.choice(["0", "1"]) + d(2) + "-" + d1(3) + "-" + d(4) if country == "US" else "+" + cc + " 0" + d(len(nsn) - 1), "bad:bad_prefix"
        if choice == 10:
            return nsn[:4] + "O" + nsn[5:] if len(nsn) > 5 else nsn, "bad:letter_O"
        if choice == 11:
            return national_styles(country, nsn, kind)[0] + " / " + national_styles(country, nsn, kind)[1], "bad:two_numbers"
        if choice == 12:
            return "tel: " + d(2), "bad:garbage"
        if choice == 13:
            return "+" + cc + "+" + nsn, "bad:double_plus"
        if choice == 14:  # wrong digit count after the trunk prefix
            return "0" + nsn[:-1], "bad:missing_digit"
        return "1-800-" + R.choice(["FLOWERS", "CALLNOW", "GOFEDEX", "DENTIST"]), "edge:vanity"
    cc, nsn, kind, np = GEN[country]()
    label = f"ok:{country}:{kind}"
    r2 = R.random()
    if r2 < 0.03:  # number from another country, written internationally
        other = R.choice([c for c, _ in COUNTRY_WEIGHTS if c != country])
        cc2, nsn2, kind2, _ = GEN[other]()
        s = R.choice(intl_styles(other, nsn2))
        if s.startswith("00"):
            s = IDD[country] + " " + s[2:]  # dialling from `country`
        phone, label = s, f"ok:foreign:{other}:{kind2}"
    elif r2 < 0.33:
        s = R.choice(intl_styles(country, nsn))
        if s.startswith("00"):
            s = IDD[country] + " " + s[2:] if country != "US" else "011 " + s[2:]
            if country == "US":  # 011 + 1 is silly, use +1 instead
                s = "+1 " + nsn
        phone, label = s, label + ":intl"
    else:
        phone = R.choice(national_styles(country, nsn, kind))
        label = label + ":national"
    if R.random() < 0.02:
        phone += R.choice(EXT_STYLES).format(e=d(R.randint(2, 5)))
        label += ":ext"
    if R.random() < 0.01:
        phone = " " + phone + " "
        label += ":ws"
    return phone, label


# ---------------------------------------------------------------------------
FIRST = {
    "US": ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara",
           "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Chris", "Karen", "Daniel", "Nancy", "Matthew", "Lisa", "Mary-Kate", "D'Andre"],
    "GB": ["Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Mia", "Charlie", "Sophie", "Siobhan", "Niamh", "Rhys", "Eilidh"],
    "DE": ["Lukas", "Anna", "Jonas", "Lea", "Felix", "Lena", "Jürgen", "Sören", "Maximilian", "Katharina", "Björn", "Ute", "Günther"],
    "FR": ["Jean", "Marie", "Pierre", "Camille", "Louis", "Léa", "François", "Chloé", "Émile", "Hélène", "Jérôme", "Anaïs"],
    "IN": ["Aarav", "Priya", "Vivaan", "Ananya", "Rohan", "Saanvi", "Arjun", "Diya", "Rahul", "Kavya", "Sai", "Lakshmi"],
    "BR": ["João", "Maria", "Pedro", "Ana", "Lucas", "Júlia", "Gabriel", "Beatriz", "Matheus", "Larissa", "Conceição", "Luíza"],
    "AU": ["Jack", "Charlotte", "William", "Olivia", "Noah", "Mia", "Liam", "Isla", "Lachlan", "Matilda"],
    "JP": ["Haruto", "Yui", "Sota", "Hina", "Yuto", "Aoi", "Ren", "Sakura", "Takumi", "Yūki", "Kenta", "Mei"],
    "ES": ["Hugo", "Lucía", "Martín", "Sofía", "Pablo", "María", "Álvaro", "Paula", "Iñigo", "Nuria", "José", "Begoña"],
    "NG": ["Chinedu", "Ngozi", "Emeka", "Adaeze", "Oluwaseun", "Funmilayo", "Ibrahim", "Aisha", "Tunde", "Chiamaka", "Yusuf", "Folake"],
}
LAST = {
    "US": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "O'Brien", "Van Buren", "Nguyen", "Lee"],
    "GB": ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Davies", "Evans", "O'Connor", "MacDonald", "Ffrench", "Hughes"],
    "DE": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schäfer", "Groß", "Hoffmann", "von Weizsäcker"],
    "FR": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Lefèvre", "Girard", "Dupont", "Le Gall"],
    "IN": ["Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Das", "Mehta", "Chowdhury", "Banerjee"],
    "BR": ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gonçalves", "Araújo", "Conceição"],
    "AU": ["Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin", "White"],
    "JP": ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Katō", "Saitō", "Ōta"],
    "ES": ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Muñoz", "Díaz", "Ibáñez"],
    "NG": ["Okafor", "Adeyemi", "Eze", "Okonkwo", "Bello", "Balogun", "Nwosu", "Abubakar", "Ogunleye", "Chukwu", "Ibrahim", "Adebayo"],
}
FREEMAIL = {
    "US": ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "aol.com", "icloud.com", "comcast.net"],
    "GB": ["gmail.com", "hotmail.co.uk", "yahoo.co.uk", "btinternet.com", "outlook.com", "sky.com"],
    "DE": ["gmail.com", "web.de", "gmx.de", "t-online.de", "gmx.net", "posteo.de"],
    "FR": ["gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr", "sfr.fr"],
    "IN": ["gmail.com", "yahoo.co.in", "rediffmail.com", "outlook.com", "hotmail.com"],
    "BR": ["gmail.com", "hotmail.com", "uol.com.br", "bol.com.br", "yahoo.com.br", "terra.com.br"],
    "AU": ["gmail.com", "bigpond.com", "outlook.com.au", "hotmail.com", "optusnet.com.au"],
    "JP": ["gmail.com", "yahoo.co.jp", "docomo.ne.jp", "ezweb.ne.jp", "icloud.com"],
    "ES": ["gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es"],
    "NG": ["gmail.com", "yahoo.com", "hotmail.com", "outlook.com"],
}
TLD = {"US": "com", "GB": "co.uk", "DE": "de", "FR": "fr", "IN": "in", "BR": "com.br", "AU": "com.au", "JP": "co.jp", "ES": "es", "NG": "com.ng"}
COMPANY_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell", "Cyberdyne",
                 "Nakatomi", "Wonka", "Gringotts", "Oscorp", "Pied Piper", "Aperture", "Black Mesa", "Blue Sun", "Monarch"]
COMPANY_SUFFIX = {"US": ["Inc.", "LLC", "Corp"], "GB": ["Ltd", "PLC", "LLP"], "DE": ["GmbH", "AG", "GmbH & Co. KG"], "FR": ["SA", "SARL", "SAS"],
                  "IN": ["Pvt Ltd", "Ltd"], "BR": ["Ltda", "S.A."], "AU": ["Pty Ltd"], "JP": ["K.K.", "Co., Ltd."], "ES": ["S.L.", "S.A."], "NG": ["Ltd", "PLC"]}
PLANS = [("free", 50), ("starter", 25), ("pro", 17), ("business", 6), ("enterprise", 2)]

ASCII_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ê": "e", "ë": "e", "à": "a", "â": "a",
                            "ç": "c", "î": "i", "ï": "i", "ô": "o", "û": "u", "ù": "u", "ã": "a", "õ": "o", "á": "a", "í": "i",
                            "ó": "o", "ú": "u", "ñ": "n", "ū": "u", "ō": "o", "Ō": "O", "ó": "o", "É": "E", "Á": "A", "Ü": "Ue",
                            "Ä": "Ae", "Ö": "Oe", "'": "", " ": "", "-": "-", "ł": "l"})


def fold(s):
    return s.lower().translate(ASCII_FOLD)


def make_email(first, last, country, company):
    f, l = fold(first), fold(last)
    r = R.random()
    if r < 0.05:
        dom = R.choice(FREEMAIL[country])
        good = f"{f}.{l}@{dom}"
        c = R.randrange(14)
        if c == 0:
            return good.replace("@", ""), "bad:missing_at"
        if c == 1:
            return f"{f}..{l}@{dom}", "bad:double_dot_local"
        if c == 2:
            return f"{f}.{l}@{dom.replace('.', '..', 1)}", "bad:double_dot_domain"
        if c == 3:
            return f"{first} {last}@{dom}".lower(), "bad:space_in_local"
        if c == 4:
            return good + ".", "bad:trailing_dot_domain"
        if c == 5:
            return f"{f}.@{dom}", "bad:trailing_dot_local"
        if c == 6:
            return f".{f}@{dom}", "bad:leading_dot_local"
        if c == 7:  # unicode (IDN) domain - valid if the lib does IDNA
            return f"{f}@" + R.choice(["bücher.de", "müller-gmbh.de", "café.fr", "españa.es", "日本.jp", "例え.jp", "straße.de", "münchen.de"]), "edge:idn_domain"
        if c == 8:  # unicode local part - valid only with SMTPUTF8 support
            return f"{first.lower()}.{last.lower()}@{dom}".replace(" ", ""), "edge:unicode_local"
        if c == 9:
            return f"{f}.{l}@{dom.split('.')[0]}", "bad:no_tld"
        if c == 10:
            return f"{f}@@{dom}", "bad:double_at"
        if c == 11:
            return good.replace(".", ",", 1) if "." in good else good, "bad:comma"
        if c == 12:
            return R.choice([f"{f}.{l}@", f"@{dom}", f"{f}@-{dom}", f"{f}@{dom.split('.')[0]}.c", f"{f}@[192.168.1.{R.randint(1, 254)}]",
                             f"{f}@localhost", f"{f} <{f}@{dom}>", f"mailto:{f}@{dom}", f"{f}@{dom} "]), "bad:misc"
        return R.choice(["n/a", "", "none", "-", "noemail", "x@x"]), "bad:placeholder"
    pat = R.random()
    if pat < 0.55:
        dom = R.choice(FREEMAIL[country])
    else:
        dom = company.split()[0].lower() + ("-" + company.split()[1].lower() if " " in company and R.random() < 0.3 and company.split()[1][0].isalpha() and company.split()[1].isalpha() else "") + "." + TLD[country]
    dom = fold(dom)
    style = R.randrange(8)
    local = [f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}_{l}", f"{f}.{l}{R.randint(1, 99)}", f"{f}{R.randint(1970, 2005)}",
             f"{f}.{l}+{R.choice(['news', 'crm', 'shop'])}", f"{l}.{f}"][style]
    e = f"{local}@{dom}"
    if R.random() < 0.03:
        e = e.title() if R.random() < 0.5 else e.upper()
    return e, "ok"


INVISIBLE = ["\u200b", "\u00ad", "\ufeff", "\u200e", "\u2060", "\u200c"]


def damage(phone, label):
    """-> (phone as the file holds it, phone_ref, numeric, label) for a good phone."""
    r = REPAIR.random()
    if not label.startswith("ok:") or r >= 0.06:
        return phone, "", 0, label
    kind = REPAIR.randrange(4)
    if kind == 0:
        return REPAIR.choice(["tel:", "tel: ", "TEL:"]) + phone.strip(), phone, 0, label + ":repair_tel"
    if kind == 1 and phone.strip().startswith("+"):
        return "+" + phone.strip(), phone, 0, label + ":repair_plusplus"
    if kind == 2:
        p = phone.strip()
        i = REPAIR.randrange(len(p) + 1)
        return p[:i] + REPAIR.choice(INVISIBLE) + p[i:], phone, 0, label + ":repair_invisible"
    if ":ext" in label:
        return phone, "", 0, label
    digits = "".join(c for c in phone if c.isdigit())
    return str(int(digits)), phone, 1, label + ":repair_numeric"


def wchoice(pairs):
    tot = sum(w for _, w in pairs)
    x = R.random() * tot
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


def main():
    csv_path = os.path.join(OUT, "contacts.csv")
    header = ["first_name", "last_name", "email", "phone", "country", "company", "plan", "signup_date"]
    rows, labels = [], []
    start = dt.date(2015, 1, 1)
    for i in range(N):
        country = wchoice(COUNTRY_WEIGHTS)
        first, last = R.choice(FIRST[country]), R.choice(LAST[country])
        company = R.choice(COMPANY_WORDS) + " " + R.choice(COMPANY_SUFFIX[country])
        email, elabel = make_email(first, last, country, company)
        phone, plabel = make_phone(country)
        phone, pref, numeric, plabel = damage(phone, plabel)
        plan = wchoice(PLANS)
        date = start + dt.timedelta(days=R.randrange(3650))
        rows.append([first, last, email, phone, country, company, plan, date.isoformat()])
        labels.append([i, plabel, elabel, pref, numeric])
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    with open(os.path.join(OUT, "labels.csv"), "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "phone_label", "email_label", "phone_ref", "phone_numeric"])
        w.writerows(labels)
    print("wrote", csv_path, len(rows), "rows")
    if WRITE_XLSX:
        from openpyxl import Workbook
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("contacts")
        ws.append(header)
        for r, lab in zip(rows, labels):
            r = list(r)
            r[7] = dt.date.fromisoformat(r[7])  # real date cell, as a CRM export would have
            if lab[4]:
                r[3] = int(r[3])  # a phone typed into a number cell
            ws.append(r)
        xp = os.path.join(OUT, "contacts.xlsx")
        wb.save(xp)
        print("wrote", xp)


if __name__ == "__main__":
    main()
