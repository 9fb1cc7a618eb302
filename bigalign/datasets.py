"""Generated person records with planted corrupted duplicates and their truth.

Nothing is downloaded: value pools are built from syllables (thousands of
surnames, streets and suburbs) and a list of common given names with their
nicknames, drawn with Zipf-like frequencies so that blocks grow as they do on
real registers; past a million people, a population is made of regions with
places of their own, so that a larger set is as hard per record, not denser
(see ``POOL_PEOPLE``). Every record of the targetset that matches one of the
alignset is a corrupted copy: typos, OCR and phonetic errors, swapped names,
nicknames, missing values, changed date formats. The same seed gives the
same records at any size.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "PersonEntities", "PersonRecords", "company_records", "person_entities", "person_records"]

COLUMNS = ["rec_id", "given_name", "surname", "date_of_birth", "street_number", "address", "suburb", "postcode",
           "soc_sec_id"]

_GIVEN = {
    # name: nicknames
    "william": ["bill", "will"], "robert": ["bob", "rob"], "james": ["jim", "jimmy"], "john": ["jack", "johnny"],
    "michael": ["mike", "mick"], "david": ["dave"], "richard": ["dick", "rick"], "thomas": ["tom", "tommy"],
    "charles": ["charlie", "chuck"], "joseph": ["joe"], "christopher": ["chris"], "daniel": ["dan", "danny"],
    "matthew": ["matt"], "anthony": ["tony"], "andrew": ["andy", "drew"], "joshua": ["josh"],
    "benjamin": ["ben"], "samuel": ["sam"], "alexander": ["alex"], "nicholas": ["nick"], "jonathan": ["jon"],
    "edward": ["ed", "ted"], "patrick": ["pat"], "peter": ["pete"], "stephen": ["steve"], "timothy": ["tim"],
    "elizabeth": ["liz", "beth", "betty"], "margaret": ["maggie", "peggy"], "katherine": ["kate", "kathy"],
    "jennifer": ["jen", "jenny"], "rebecca": ["becky"], "victoria": ["vicky"], "susan": ["sue"],
    "deborah": ["deb", "debbie"], "patricia": ["pat", "trish"], "jessica": ["jess"], "samantha": ["sam"],
    "alexandra": ["alex", "sandra"], "christine": ["chris"], "abigail": ["abby"], "kimberly": ["kim"],
    "jacqueline": ["jackie"], "dorothy": ["dot"], "frances": ["fran"], "madeleine": ["maddie"],
}
_PLAIN_GIVEN = (
    "mary sarah emily olivia chloe charlotte sophie grace lily ruby isabella mia zoe ella hannah lucy amelia "
    "jasmine laura claire julie nathalie isabelle sylvie camille manon lea ines louise jade emma alice anna "
    "helene marie sandrine aurelie celine caroline nina eva rose clara lena noah liam ethan lucas hugo louis "
    "jules arthur gabriel raphael leo paul adam nathan theo tom maxime antoine nicolas julien pierre francois "
    "jean luc marc eric olivier philippe laurent sebastien vincent christophe frederic thierry pascal alain "
    "bernard michel andre jacques henri georges rene marcel yves gerard claude bruno didier serge dylan ryan "
    "jack oliver harry george oscar charlie jacob riley mason logan lachlan cooper hamish angus fergus rhys "
    "owen evan ian kevin brian sean shane wayne craig scott grant dean glenn keith neil ross troy kyle"
).split()
_ONSETS = ("b bl br c ch cl cr d dr f fl fr g gl gr h j k kr l m n p pl pr r s sch sh sl st t th tr v w "
           "wh y z").split()
_VOWELS = "a e i o u ou ai ea ie au oo y".split()
_CODAS = "n r l s t rd ll nd m ck x rt ng nt lt rs".split() + [""] * 6
_SUFFIXES = ("son sen ez ier ot ard mann ini ino sky ley ton er by ford well wood field ham man s ette eau "
             "elli ova ic ek ova ing").split() + [""] * 8
_STREET_TYPES = "street road avenue place lane drive crescent court parade terrace way close".split()


def _pool(rng: np.random.Generator, size: int, syllables: int) -> list[str]:
    seen: dict[str, None] = {}
    while len(seen) < size:
        parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)]
        word = "".join(parts) + rng.choice(_SUFFIXES)
        if 3 <= len(word) <= 14:
            seen[word] = None
    return list(seen)


def _zipf(rng: np.random.Generator, pool_size: int, n: int, exponent: float) -> np.ndarray:
    p = 1.0 / np.arange(1, pool_size + 1) ** exponent
    return rng.choice(pool_size, size=n, p=p / p.sum())


_OCR = [("o", "0"), ("l", "1"), ("i", "1"), ("s", "5"), ("b", "6"), ("g", "9"), ("m", "rn"), ("e", "c"),
        ("u", "v"), ("h", "b")]
_PHONETIC = [("ph", "f"), ("c", "k"), ("ck", "k"), ("ie", "y"), ("ei", "ie"), ("th", "t"), ("ou", "oo"),
             ("ll", "l"), ("s", "z"), ("y", "i"), ("eau", "o"), ("ai", "ay"), ("x", "ks")]


def _typo(text: str, r: random.Random) -> str:
    if len(text) < 2:
        return text
    i = r.randrange(len(text))
    kind = r.random()
    letter = chr(r.randrange(97, 123))
    if kind < 0.3:
        return text[:i] + letter + text[i + 1:]
    if kind < 0.55:
        return text[:i] + text[i + 1:]
    if kind < 0.8:
        return text[:i] + letter + text[i:]
    i = min(i, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _substitute(text: str, table: list[tuple[str, str]], r: random.Random) -> str:
    options = [(a, b) for a, b in table if a in text] + [(b, a) for a, b in table if b in text]
    if not options:
        return _typo(text, r)
    a, b = r.choice(options)
    at = [i for i in range(len(text)) if text.startswith(a, i)]
    i = r.choice(at)
    return text[:i] + b + text[i + len(a):]


def _corrupt_text(text: str, r: random.Random) -> str:
    if not text:
        return text
    kind = r.random()
    if kind < 0.6:
        return _typo(text, r)
    if kind < 0.8:
        return _substitute(text, _OCR, r)
    return _substitute(text, _PHONETIC, r)


def _format_date(date: dt.date, style: int) -> str:
    return [f"{date:%Y%m%d}", date.isoformat(), f"{date:%d/%m/%Y}", f"{date:%d-%m-%Y}"][style]


@dataclass
class PersonRecords:
    """An alignset, a targetset and the true pairs ``(align_id, target_id)``."""

    alignset: pd.DataFrame
    targetset: pd.DataFrame
    truth: pd.DataFrame


# People up to which the value pools are fixed. Beyond, they grow as a larger population's do, so
# that a larger set is as hard per record, not denser: a population of more people is made of regions
# of this many people each, every region with places of its own (streets, suburbs and their postcodes,
# drawn with the same Zipf-like law within it: one pool shared by all would give its most common places
# ever more people, since a Zipf law of exponent over 1/2 grows denser with its pool); surnames grow as
# distinct words do in text (Heaps' law, ∝ n^0.6); given names not at all. Up to it, the records are
# those of every earlier version.
POOL_PEOPLE = 1_200_000  # (the people of person_records(1_000_000): a million, and 200,000 others)
SURNAME_GROWTH = 0.6


def _regions(people: int) -> int:
    return max(1, math.ceil(people / POOL_PEOPLE))


def _grown(pool: list[str], people: int, exponent: float, stream: int) -> list[str]:
    """``pool`` with the values a population of ``people`` adds (from a stream of its own)."""
    target = int(len(pool) * (people / POOL_PEOPLE) ** exponent)
    if target <= len(pool):
        return pool
    seen = dict.fromkeys(pool)
    extra = np.random.default_rng([12345, stream])
    while len(seen) < target:
        seen.update(dict.fromkeys(_pool(extra, target - len(seen), 2)))
    return list(seen)[:target]


def _value_pools(people: int) -> tuple[list[str], list[str], list[str], list[str], np.ndarray]:
    """Given names, surnames, streets, suburbs and their postcodes for ``people`` people."""
    pools = np.random.default_rng(12345)
    surnames = _pool(pools, 8000, 2)
    streets = _pool(pools, 6000, 2)
    suburbs = _pool(pools, 3000, 2)
    postcodes = pools.choice(np.arange(1000, 9999), size=len(suburbs), replace=False)
    if people > POOL_PEOPLE:
        surnames = _grown(surnames, people, SURNAME_GROWTH, 1)
        places = _regions(people) * POOL_PEOPLE  # (the streets and suburbs of whole regions)
        streets = _grown(streets, places, 1.0, 2)
        grown = _grown(suburbs, places, 1.0, 3)
        more = np.random.default_rng([12345, 4]).choice(np.arange(10_000, 99_999), size=len(grown) - len(suburbs),
                                                         replace=False)  # (five digits beyond the four-digit ones)
        suburbs, postcodes = grown, np.concatenate([postcodes, more])
    return list(_GIVEN) + _PLAIN_GIVEN, surnames, streets, suburbs, postcodes


def _people(rng: np.random.Generator, count: int,
            population: int | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``count`` distinct people of a ``population`` (by default, of ``count``): their records, birth dates
    (ordinals) and date styles."""
    given_pool, surnames, streets, suburbs, postcodes = _value_pools(max(count, population or 0))
    given = np.array(given_pool, dtype=object)[_zipf(rng, len(given_pool), count, 0.6)]
    surname = np.array(surnames, dtype=object)[_zipf(rng, len(surnames), count, 0.6)]
    born = rng.integers(dt.date(1920, 1, 1).toordinal(), dt.date(2010, 12, 31).toordinal(), count)
    regions = _regions(max(count, population or 0))
    # (drawn only for several regions: one region's records are those of every earlier version)
    region = rng.integers(0, regions, count) if regions > 1 else 0
    region_streets, region_suburbs = len(streets) // regions, len(suburbs) // regions
    street_index = region * region_streets + _zipf(rng, region_streets, count, 0.6)
    street = np.array(streets, dtype=object)[street_index]
    street_type = np.array(_STREET_TYPES, dtype=object)[rng.integers(0, len(_STREET_TYPES), count)]
    suburb_index = region * region_suburbs + _zipf(rng, region_suburbs, count, 0.7)
    number = rng.integers(1, 400, count)
    # (seven digits for up to 9 million people, then eight)
    ids = np.arange(1_000_000, 9_999_999) if count <= 8_999_999 else np.arange(10_000_000, 99_999_999)
    soc_sec = rng.choice(ids, size=count, replace=False)
    styles = rng.integers(0, 4, count)
    frame = pd.DataFrame({
        "given_name": given, "surname": surname,
        "date_of_birth": [_format_date(dt.date.fromordinal(int(d)), 2) for d in born],
        "street_number": number.astype(str), "address": [f"{s} {t}" for s, t in zip(street, street_type)],
        "suburb": np.array(suburbs, dtype=object)[suburb_index], "postcode": postcodes[suburb_index].astype(str),
        "soc_sec_id": soc_sec.astype(str),
    })
    return frame, born, styles


def _corrupt(row: dict, date_of_birth: dt.date, style: int, corruptions: int, r: random.Random) -> None:
    """A record copied by someone else: ``corruptions`` typos, swaps, nicknames, blanks, date slips."""
    row["date_of_birth"] = _format_date(date_of_birth, style)
    for _ in range(corruptions):
        kind = r.random()
        if kind < 0.35:
            column = r.choice(["given_name", "surname", "address", "suburb"])
            row[column] = _corrupt_text(row[column], r)
        elif kind < 0.45:
            row["given_name"], row["surname"] = row["surname"], row["given_name"]
        elif kind < 0.55 and row["given_name"] in _GIVEN:
            row["given_name"] = r.choice(_GIVEN[row["given_name"]])
        elif kind < 0.7:
            row[r.choice(["given_name", "address", "suburb", "postcode", "street_number", "soc_sec_id",
                          "date_of_birth"])] = ""
        elif kind < 0.8:
            d = date_of_birth
            if d.day <= 12:  # day and month swapped
                row["date_of_birth"] = _format_date(dt.date(d.year, d.day, d.month), style)
            else:
                row["date_of_birth"] = _format_date(d + dt.timedelta(days=r.choice([-1, 1, 10, -10])), style)
        elif kind < 0.9 and row["soc_sec_id"]:
            digits = list(row["soc_sec_id"])
            i = r.randrange(len(digits))
            digits[i] = str(r.randrange(10))
            row["soc_sec_id"] = "".join(digits)
        else:
            row["postcode"] = _typo(row["postcode"], r) if row["postcode"] else row["postcode"]


def person_records(n: int, seed: int = 0, duplicates: float = 0.8, corruptions: float = 2.0,
                   population: int | None = None, movers: float = 0.0, relatives: float = 0.0) -> PersonRecords:
    """Generate ``n`` align records and ``n`` target records.

    Parameters
    ----------
    n : int
        Records per set.
    seed : int
    duplicates : float
        Share of align records with a corrupted copy in the targetset; the
        rest of the targetset are other people.
    corruptions : float
        Mean number of corruptions per copy (Poisson, at least one).
    population : int, optional
        The people these records are a sample of (their names and places
        drawn from its pools): samples of a larger set, generated apart, are
        then as dense as the whole. By default, the records' own people.
    movers : float
        Share of the copies whose person moved between the two sets: street
        number, street, suburb and postcode all those of another address
        (fields that disagree together, as in real registers).
    relatives : float
        Share of the targetset's other people who are relatives of a copied align person, at the address
        they had (surname, street number, street, suburb and postcode): another given name, born one to
        forty years apart — or the same day, a twin, one in five. Non-matches that agree on everything
        but a name and a date.
    """
    if n < 1:
        raise ValueError("n must be positive")
    if not (0 <= movers <= 1 and 0 <= relatives <= 1):
        raise ValueError("movers and relatives must be shares in [0, 1]")
    rng = np.random.default_rng(seed)
    r = random.Random(seed)
    n_dup = int(round(n * duplicates))
    # align people, then others for the rest of the targetset
    frame, born, styles = _people(rng, n + (n - n_dup), population)
    align = frame.iloc[:n].reset_index(drop=True)
    copies = align.iloc[rng.permutation(n)[:n_dup]]
    truth_align = copies.index.to_numpy()
    copies = copies.reset_index(drop=True).copy()
    date_of_birth = [dt.date.fromordinal(int(d)) for d in born[truth_align]]
    rows = copies.to_dict("records")
    n_corruptions = np.maximum(1, rng.poisson(corruptions, n_dup))
    for k, row in enumerate(rows):
        _corrupt(row, date_of_birth[k], int(styles[k]), int(n_corruptions[k]), r)
    if movers:  # (a stream of its own: without movers, the same records as before)
        _move(rows, movers, np.random.default_rng([seed, 38]), max(len(frame), population or 0))
    others = frame.iloc[n:].to_dict("records")
    if relatives:  # (a stream of its own, as movers)
        _relate(others, align, truth_align, relatives, np.random.default_rng([seed, 39]))
    return _linked_sets(align, rows, others, truth_align, rng, "at")


# Among relatives at one address, the share of twins (born the same day).
TWINS = 0.2


def _relate(others: list[dict], align: pd.DataFrame, copied: np.ndarray, share: float,
            rng: np.random.Generator) -> None:
    """A ``share`` of ``others`` become relatives of the align people at ``copied``: their surname and
    address, another given name, a birth date one to forty years apart or, for :data:`TWINS` of them,
    the same."""
    related = np.flatnonzero(rng.random(len(others)) < share)
    of = copied[rng.integers(0, len(copied), len(related))]
    given_pool = np.array(list(_GIVEN) + _PLAIN_GIVEN, dtype=object)
    given = given_pool[rng.integers(0, len(given_pool), len(related))]
    twin = rng.random(len(related)) < TWINS
    years = rng.integers(1, 41, len(related)) * rng.choice([-1, 1], len(related))
    days = rng.integers(0, 365, len(related))
    for i, k in enumerate(related.tolist()):
        person = align.iloc[int(of[i])]
        born = dt.datetime.strptime(person["date_of_birth"], "%d/%m/%Y").date()  # (as _people writes it)
        if not twin[i]:
            born = dt.date.fromordinal(born.toordinal() + int(years[i]) * 365 + int(days[i]))
        if given[i] == person["given_name"]:  # (another name: a relative named after the person is a namesake)
            given[i] = given_pool[(int(np.flatnonzero(given_pool == given[i])[0]) + 1) % len(given_pool)]
        others[k].update({column: person[column] for column in
                          ("surname", "street_number", "address", "suburb", "postcode")},
                         given_name=given[i], date_of_birth=_format_date(born, 2))


def _move(rows: list[dict], movers: float, rng: np.random.Generator, population: int) -> None:
    """A share ``movers`` of ``rows`` move: a new street number, street, suburb and postcode, drawn from
    the pools of places (an address nobody had, not a neighbour's: the records of someone who moved do
    not meet a stranger's)."""
    moved = np.flatnonzero(rng.random(len(rows)) < movers)
    _, _, streets, suburbs, postcodes = _value_pools(population)
    street = rng.integers(0, len(streets), len(moved))
    kind = rng.integers(0, len(_STREET_TYPES), len(moved))
    suburb = rng.integers(0, len(suburbs), len(moved))
    number = rng.integers(400, 800, len(moved))  # (numbers nobody had: people live at 1 to 399)
    for i, k in enumerate(moved.tolist()):
        rows[k].update(street_number=str(number[i]), address=f"{streets[street[i]]} {_STREET_TYPES[kind[i]]}",
                       suburb=suburbs[suburb[i]], postcode=str(postcodes[suburb[i]]))


def _linked_sets(align: pd.DataFrame, copies: list[dict], others: list[dict], copied: np.ndarray,
                 rng: np.random.Generator, prefixes: str) -> PersonRecords:
    """The alignset, the targetset of the ``copies`` (of the align records at ``copied``) and ``others``
    shuffled, ids ``{prefix}{row}``, and the true pairs."""
    target_rows = copies + others
    order = rng.permutation(len(target_rows))
    target = pd.DataFrame([target_rows[i] for i in order], columns=align.columns)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    align.insert(0, "rec_id", [f"{prefixes[0]}{i}" for i in range(len(align))])
    target.insert(0, "rec_id", [f"{prefixes[1]}{i}" for i in range(len(target))])
    truth = pd.DataFrame({"align_id": align["rec_id"].to_numpy()[copied],
                          "target_id": target["rec_id"].to_numpy()[position[:len(copies)]]})
    return PersonRecords(align, target, truth.sort_values("align_id", kind="mergesort").reset_index(drop=True))


@dataclass
class PersonEntities:
    """Records of people spread over named sets, several records per person."""

    sets: dict[str, pd.DataFrame]  # each: rec_id, then the person columns
    entities: pd.DataFrame  # set, id, entity: who each record is


# Records per person: 1 to 8, about half of the people with one (a geometric law).
LARGEST_ENTITY = 8


def person_entities(n: int, seed: int = 0, sets: tuple[str, ...] = ("records",),
                    corruptions: float = 2.0) -> PersonEntities:
    """``n`` records of people with 1 to :data:`LARGEST_ENTITY` records each
    (a geometric law: half have one, a quarter two…), the first as given and
    the others corrupted copies (as in :func:`person_records`), spread at
    random over ``sets``; ``entities`` says who each record is."""
    if n < 1:
        raise ValueError("n must be positive")
    rng = np.random.default_rng(seed)
    r = random.Random(seed)
    sizes = np.minimum(rng.geometric(0.5, n), LARGEST_ENTITY)
    sizes = sizes[:int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    sizes[-1] -= int(sizes.sum()) - n  # exactly n records
    frame, born, styles = _people(rng, len(sizes))
    people = frame.to_dict("records")
    entity = np.repeat(np.arange(len(sizes)), sizes)
    first = np.r_[True, entity[1:] != entity[:-1]]
    n_corruptions = np.maximum(1, rng.poisson(corruptions, n))
    rows = []
    for k, (e, original) in enumerate(zip(entity.tolist(), first.tolist())):
        row = dict(people[e])
        if not original:
            _corrupt(row, dt.date.fromordinal(int(born[e])), int(styles[e]), int(n_corruptions[k]), r)
        rows.append(row)
    where = rng.integers(0, len(sets), n)
    order = rng.permutation(n)
    out, truth = {}, []
    for s, name in enumerate(sets):
        chosen = order[where[order] == s]
        records = pd.DataFrame([rows[i] for i in chosen], columns=frame.columns)
        records.insert(0, "rec_id", [f"{name[0]}{i}" for i in range(len(chosen))])
        out[name] = records
        truth.append(pd.DataFrame({"set": name, "id": records["rec_id"], "entity": entity[chosen]}))
    return PersonEntities(out, pd.concat(truth, ignore_index=True))


_LEGAL_FORMS = {"sa": "societe anonyme", "sarl": "societe a responsabilite limitee", "sas": "societe par actions",
                "ltd": "limited", "gmbh": "gesellschaft mit beschrankter haftung", "inc": "incorporated",
                "llc": "limited liability company", "bv": "besloten vennootschap"}
_SECTORS = ("bakery builders carpentry catering chemicals clothing consulting dairy dentistry electronics "
            "engineering farming fisheries freight furniture glassworks haulage hotels insurance jewellery "
            "logistics machinery metalworks mining optics pharmacy plumbing printing publishing textiles").split()


def company_records(n: int, seed: int = 0, duplicates: float = 0.7, corruptions: float = 1.5) -> PersonRecords:
    """``n`` registered companies and ``n`` records of another register, ``duplicates`` of them copies of the
    first's with other noise than people's: a company name of one to three coined words and a legal form
    (written out, abbreviated or left out), a city, a street address, a phone number, a year of foundation
    and a sector. A copy loses a word of its name or has them in another order, its phone written with a
    digit wrong or missing, its year off by one, its city or street misspelt. Columns: ``rec_id``, ``name``,
    ``legal_form``, ``city``, ``street``, ``phone``, ``founded``, ``sector``."""
    if n < 1:
        raise ValueError("n must be positive")
    rng = np.random.default_rng(seed)
    r = random.Random(seed)
    n_dup = int(round(n * duplicates))
    total = n + (n - n_dup)
    words = _pool(rng, 30_000 + total // 20, 2)
    cities = _pool(rng, 2_000 + total // 500, 2)
    streets = _pool(rng, 8_000 + total // 100, 2)
    counts = rng.integers(1, 4, total)
    name_words = _zipf(rng, len(words), int(counts.sum()), 0.8)
    names, at = [], 0
    for k in counts.tolist():
        names.append(" ".join(words[w] for w in name_words[at:at + k]))
        at += k
    forms = np.array(list(_LEGAL_FORMS))[rng.integers(0, len(_LEGAL_FORMS), total)]
    frame = pd.DataFrame({
        "name": names, "legal_form": forms,
        "city": np.array(cities, dtype=object)[_zipf(rng, len(cities), total, 1.0)],
        "street": [f"{number} {streets[s]} {_STREET_TYPES[t]}" for number, s, t in zip(
            rng.integers(1, 300, total).tolist(), _zipf(rng, len(streets), total, 0.9).tolist(),
            rng.integers(0, len(_STREET_TYPES), total).tolist())],
        "phone": ["0" + "".join(map(str, digits)) for digits in rng.integers(0, 10, (total, 9)).tolist()],
        "founded": rng.integers(1890, 2025, total).astype(str),
        "sector": np.array(_SECTORS, dtype=object)[rng.integers(0, len(_SECTORS), total)]})
    align = frame.iloc[:n].reset_index(drop=True)
    chosen = rng.permutation(n)[:n_dup]
    rows = align.iloc[chosen].to_dict("records")
    for row, k in zip(rows, np.maximum(1, rng.poisson(corruptions, n_dup)).tolist()):
        for _ in range(k):
            _corrupt_company(row, r)
    return _linked_sets(align, rows, frame.iloc[n:].to_dict("records"), chosen, rng, "cr")


def _corrupt_company(row: dict, r: random.Random) -> None:
    field = r.choice(["name", "name", "legal_form", "city", "street", "phone", "phone", "founded"])
    value = row[field]
    if not value:
        return
    if field == "name":
        words = value.split()
        kind = r.random()
        if len(words) > 1 and kind < 0.35:
            words.pop(r.randrange(len(words)))
        elif len(words) > 1 and kind < 0.6:
            r.shuffle(words)
        else:
            i = r.randrange(len(words))
            words[i] = _corrupt_text(words[i], r)
        row[field] = " ".join(words)
    elif field == "legal_form":
        row[field] = r.choice([_LEGAL_FORMS.get(value, value), value.upper(), ""])
    elif field in ("city", "street"):
        row[field] = "" if r.random() < 0.2 else _corrupt_text(value, r)
    elif field == "phone":
        i = r.randrange(1, len(value))
        row[field] = "" if r.random() < 0.3 else value[:i] + str(r.randrange(10)) + value[i + 1:]
    else:
        row[field] = str(int(value) + r.choice([-1, 1]))
