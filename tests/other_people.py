"""Person records generated otherwise than by ``bigalign.datasets``: other fields
(a phone, an e-mail address, a city with its zip code, dates written
day/month/year), other noise (keyboard-neighbour typos, initials, double
surnames, day and month swapped, a year off by one, a new e-mail provider,
a moved city), other value pools. A learned model that only works on
``bigalign.datasets`` fails here.

Records of the register (``targetset``) are people; the alignset holds noisy
copies of 80% of them plus people the register does not know.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEIGHBOURS = {}
for _r, _row in enumerate(_KEYBOARD):
    for _c, _key in enumerate(_row):
        _NEIGHBOURS[_key] = "".join(_KEYBOARD[r][c] for r in range(max(0, _r - 1), min(3, _r + 2))
                                    for c in (_c - 1, _c, _c + 1)
                                    if 0 <= c < len(_KEYBOARD[r]) and (r, c) != (_r, _c))
_PROVIDERS = ["mailbox.example", "post.example", "inbox.example", "letters.example", "web.example"]


@dataclass
class OtherPeople:
    alignset: pd.DataFrame
    targetset: pd.DataFrame
    truth: pd.DataFrame  # align_id, target_id


def _words(rng: np.random.Generator, count: int, parts: tuple[list[str], ...]) -> list[str]:
    """Distinct words made of one piece from each list."""
    seen: dict[str, None] = {}
    while len(seen) < count:
        seen["".join(rng.choice(p) for p in parts)] = None
    return list(seen)


def _zipf_choice(rng: np.random.Generator, pool: list[str], size: int, exponent: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(pool) + 1) ** exponent
    return np.asarray(pool, dtype=object)[rng.choice(len(pool), size, p=weights / weights.sum())]


def _typo(rng: np.random.Generator, word: str) -> str:
    """A keyboard neighbour struck, a letter doubled or dropped."""
    if len(word) < 3:
        return word
    at = int(rng.integers(1, len(word)))
    kind = rng.integers(3)
    if kind == 0 and word[at] in _NEIGHBOURS:
        return word[:at] + rng.choice(list(_NEIGHBOURS[word[at]])) + word[at + 1:]
    if kind == 1:
        return word[:at] + word[at] + word[at:]
    return word[:at] + word[at + 1:]


def other_people(n: int, seed: int = 0) -> OtherPeople:
    """``n`` register records and about ``n`` noisy records to link to them."""
    rng = np.random.default_rng(seed)
    firsts = _words(rng, 400, (["al", "be", "ca", "da", "el", "fa", "ge", "ha", "jo", "ka", "lu", "ma", "no", "pe",
                                "ra", "sa", "ti", "vi"], ["b", "l", "n", "r", "s", "th", "v", "m"],
                               ["a", "o", "ie", "ine", "el", "is", "on", "ette"]))
    lasts = _words(rng, 3000, (["ander", "bern", "cort", "dupr", "essl", "fonten", "gall", "hoff", "ivan", "jank",
                                "kessl", "laur", "mont", "nov", "orl", "petr", "quint", "ross", "stein", "tavern",
                                "urb", "vall", "wink", "zell"], ["", "a", "e", "i", "o"],
                               ["", "s", "t", "ck", "n", "r", "z"], ["son", "er", "ini", "ov", "eau", "berg", "", "ez",
                                                                     "quist", "ard"]))
    cities = _words(rng, 250, (["port", "saint ", "new ", "old ", "east ", "", "", ""],
                               ["ash", "birch", "clay", "dun", "elm", "fair", "glen", "hart", "iron", "kings", "lake",
                                "mill", "north", "oak", "pine", "red", "stone", "west"],
                               ["ford", "ham", "ton", "field", "wick", "bury", "dale", "mouth"]))
    zips = {c: f"{rng.integers(10000, 99999)}" for c in cities}
    first = _zipf_choice(rng, firsts, n)
    last = _zipf_choice(rng, lasts, n, 0.8)
    city = _zipf_choice(rng, cities, n, 1.1)
    born = [dt.date(1930, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 75 * 365, n)]
    phone = [f"0{rng.integers(1, 8)}{rng.integers(10**7, 10**8)}" for _ in range(n)]
    email = [f"{f}.{s}{'' if rng.random() < 0.6 else rng.integers(1, 99)}@{rng.choice(_PROVIDERS)}"
             for f, s in zip(first, last)]
    register = pd.DataFrame({"pid": [f"R{k:07d}" for k in range(n)], "first": first, "last": last,
                             "born": [d.strftime("%d/%m/%Y") for d in born], "phone": phone, "email": email,
                             "city": city, "zip": [zips[c] for c in city]})

    copied = np.sort(rng.choice(n, int(0.8 * n), replace=False))
    rows = []
    for k in copied:
        r = register.iloc[k]
        f, s, b, p, e, c, z = r["first"], r["last"], born[k], r["phone"], r["email"], r["city"], r["zip"]
        if rng.random() < 0.15:
            f = _typo(rng, f)
        if rng.random() < 0.05:
            f = f[0]  # an initial
        if rng.random() < 0.15:
            s = _typo(rng, s)
        if rng.random() < 0.04:
            s = f"{s}-{rng.choice(lasts)}"  # a double surname
        if rng.random() < 0.05 and b.day <= 12:
            b = dt.date(b.year, b.day, b.month)  # day and month swapped
        elif rng.random() < 0.03:
            b = dt.date(b.year + int(rng.choice([-1, 1])), b.month, min(b.day, 28))
        p = None if rng.random() < 0.1 else p
        if p is not None and rng.random() < 0.1:
            at = int(rng.integers(2, len(p)))
            p = p[:at] + str(rng.integers(10)) + p[at + 1:]
        if rng.random() < 0.15:
            e = None
        elif rng.random() < 0.1:
            e = e.split("@")[0] + "@" + str(rng.choice(_PROVIDERS))
        if rng.random() < 0.08:  # moved
            c = str(_zipf_choice(rng, cities, 1, 1.1)[0])
            z = zips[c]
        elif rng.random() < 0.08:
            c = _typo(rng, c)
        rows.append({"first": f, "last": s, "born": None if rng.random() < 0.04 else b.strftime("%d/%m/%Y"),
                     "phone": p, "email": e, "city": c, "zip": z})
    strangers = other_people_strangers(rng, n // 4, firsts, lasts, cities, zips)
    alignset = pd.concat([pd.DataFrame(rows), strangers], ignore_index=True)
    order = rng.permutation(len(alignset))
    alignset = alignset.iloc[order].reset_index(drop=True)
    alignset.insert(0, "pid", [f"A{k:07d}" for k in range(len(alignset))])
    source = np.r_[copied, np.full(len(strangers), -1)][order]
    matched = source >= 0
    truth = pd.DataFrame({"align_id": alignset["pid"][matched].to_numpy(),
                          "target_id": register["pid"].to_numpy()[source[matched]]})
    return OtherPeople(alignset, register, truth)


def other_people_strangers(rng: np.random.Generator, count: int, firsts: list[str], lasts: list[str],
                           cities: list[str], zips: dict[str, str]) -> pd.DataFrame:
    """People the register does not know, from the same pools (so some share a name, a city, a birth year)."""
    first = _zipf_choice(rng, firsts, count)
    last = _zipf_choice(rng, lasts, count, 0.8)
    city = _zipf_choice(rng, cities, count, 1.1)
    born = [dt.date(1930, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 75 * 365, count)]
    return pd.DataFrame({"first": first, "last": last, "born": [d.strftime("%d/%m/%Y") for d in born],
                         "phone": [f"0{rng.integers(1, 8)}{rng.integers(10**7, 10**8)}" for _ in range(count)],
                         "email": [f"{f}.{s}@{rng.choice(_PROVIDERS)}" for f, s in zip(first, last)],
                         "city": city, "zip": [zips[c] for c in city]})


def messy_people(n: int) -> pd.DataFrame:
    """``bigalign.datasets``' people (``n``), and ten records as real ones also are: capitals and accents,
    apostrophes, blank and missing values, dates in several forms (two are none: 31/02/1991, 91-8-14)."""
    from bigalign.datasets import person_records

    people = person_records(n, seed=3).alignset
    messy = pd.DataFrame({
        "rec_id": [f"m{i}" for i in range(10)],
        "given_name": ["Éloïse", "  ", None, "JEAN-PAUL", "d'Arcy", "Zoë", "a\x1fb", "ÅSA", "x", "Ma"],
        "surname": ["Müller", "O'Brien", "Dupont", None, "", "Łukasiewicz", "van der Berg", "Nguyễn", "1a", " "],
        "date_of_birth": ["14 août 1991", "1991-08-14", "19910814", "31/02/1991", None, "", "August 14, 1991",
                          "14.08.1991", "91-8-14", "1991-08-14T10:00"],
        "street_number": ["1", None, "12b", "", "7", "7", "x", "9", "10", "11"],
        "address": ["Rue de l'Église", "  ", None, "MAIN ST", "main st", "Château d'Eau", "a", "b", "c", "d"],
        "suburb": ["Saint-Étienne"] * 5 + [None] * 5,
        "postcode": ["42000", None, "", "4200", "42000", "1", "2", "3", "4", "5"],
        "soc_sec_id": ["1", "2", None, "", "5", "6", "7", "8", "9", "0"],
    })
    return pd.concat([people, messy], ignore_index=True)

