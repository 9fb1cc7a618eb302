"""The generated data: the same records at every size up to a million, pools that grow beyond."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from bigalign.datasets import POOL_PEOPLE, _people, _value_pools, person_entities, person_records


def digest(*frames) -> str:
    return hashlib.sha256(b"".join(f.to_csv(index=False).encode() for f in frames)).hexdigest()[:16]


def test_the_records_of_a_seed_do_not_change():
    # (what every benchmark and test of the earlier versions read: a change here changes every figure)
    data = person_records(1500, seed=0)
    assert digest(data.alignset, data.targetset, data.truth) == "37f650173924ba22"
    assert data.alignset["soc_sec_id"].str.len().eq(7).all()


def test_pools_grow_with_the_population_beyond_a_million():
    base = _value_pools(POOL_PEOPLE)
    grown = _value_pools(POOL_PEOPLE * 3)
    given, surnames, streets, suburbs, postcodes = (len(p) for p in grown)
    assert given == len(base[0])  # given names do not grow
    assert surnames == int(len(base[1]) * 3 ** 0.6) and streets == 3 * len(base[2]) and suburbs == 3 * len(base[3])
    assert grown[1][:len(base[1])] == base[1] and grown[3][:len(base[3])] == base[3]  # (the first ones kept)
    assert len(set(grown[1])) == surnames and len(set(grown[3])) == suburbs
    assert len(np.unique(grown[4])) == suburbs  # a postcode each


def test_a_larger_population_is_made_of_regions_with_places_of_their_own():
    # (so that places are as crowded at ten million people as at one: a key on them is not denser)
    frame, _, _ = _people(np.random.default_rng(0), 6000, population=POOL_PEOPLE * 3)
    _, _, streets, suburbs, _ = _value_pools(POOL_PEOPLE * 3)
    street_region = frame["address"].str.rsplit(" ", n=1).str[0].map({s: k // (len(streets) // 3)
                                                                      for k, s in enumerate(streets)})
    suburb_region = frame["suburb"].map({s: k // (len(suburbs) // 3) for k, s in enumerate(suburbs)})
    assert (street_region == suburb_region).all() and sorted(suburb_region.unique()) == [0, 1, 2]
    assert suburb_region.value_counts().min() > 1800  # (a region drawn uniformly)


def test_entities_have_several_records_spread_over_the_sets():
    people = person_entities(4000, seed=1, sets=("x", "y"))
    sizes = people.entities.groupby("entity").size()
    assert len(people.entities) == 4000 and sizes.max() <= 8 and 0.4 < (sizes == 1).mean() < 0.6
    assert min(map(len, people.sets.values())) > 1800 and sum(map(len, people.sets.values())) == 4000
    assert (people.entities.groupby("entity")["set"].nunique() == 2).sum() > 300
    assert people.entities.merge(people.sets["x"], left_on="id", right_on="rec_id").shape[0] == len(people.sets["x"])


def test_companies_are_another_kind_of_records_with_other_noise():
    """The second generated data set: companies, copies with dropped or shuffled name words, phone digits,
    years off by one; the same seed, the same records."""
    from bigalign.datasets import company_records

    first, again = company_records(3000, seed=4), company_records(3000, seed=4)
    pd.testing.assert_frame_equal(first.targetset, again.targetset)
    assert list(first.alignset.columns) == ["rec_id", "name", "legal_form", "city", "street", "phone", "founded",
                                            "sector"]
    assert len(first.truth) == 2100 and len(first.targetset) == 3000 and first.alignset["rec_id"].is_unique
    pairs = first.truth.merge(first.alignset, left_on="align_id", right_on="rec_id").merge(
        first.targetset, left_on="target_id", right_on="rec_id", suffixes=("_a", "_b"))
    changed = {c: float((pairs[f"{c}_a"] != pairs[f"{c}_b"]).mean()) for c in ("name", "phone", "founded", "city")}
    assert 0.2 < changed["name"] < 0.6 and 0.1 < changed["phone"] < 0.5 and 0.05 < changed["founded"] < 0.3
    assert (pairs["name_a"] != pairs["name_b"]).sum() > (pairs["sector_a"] != pairs["sector_b"]).sum() == 0


def test_relatives_live_at_the_address_of_a_copied_person():
    """Relatives replace some of the targetset's other people: the surname and address of an align person
    who has a copy, another given name, born years apart or, a fifth of them, the same day; the alignset,
    the copies and the truth stay those of the same seed without them."""
    plain = person_records(2000, seed=4, movers=0.3)
    related = person_records(2000, seed=4, movers=0.3, relatives=0.5)
    assert related.alignset.equals(plain.alignset) and related.truth.equals(plain.truth)
    copies = set(related.truth["target_id"])
    others = related.targetset[~related.targetset["rec_id"].isin(copies)]
    home = ["surname", "street_number", "address", "suburb", "postcode"]
    at_home = others.merge(related.alignset[related.alignset["rec_id"].isin(related.truth["align_id"])], on=home,
                           suffixes=("", "_of"))
    # about half the 400 others (the generator's own draw), each another person than the one they live with
    assert 150 < at_home["rec_id"].nunique() < 250
    assert (at_home["given_name"] != at_home["given_name_of"]).all()
    born = pd.to_datetime(at_home["date_of_birth"], format="%d/%m/%Y")
    born_of = pd.to_datetime(at_home["date_of_birth_of"], format="%d/%m/%Y")
    twins = (born == born_of).mean()
    assert 0.1 < twins < 0.3 and ((born - born_of).abs().dt.days[born != born_of] >= 365).all()
    with pytest.raises(ValueError, match="shares"):
        person_records(10, relatives=1.5)
