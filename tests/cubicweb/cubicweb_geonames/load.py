"""Run by ``cubicweb-ctl shell INSTANCE load.py -- CITIES.csv``: the frozen geonames cities as Locations of
France (the seed's query asks for a population over 1,000 and feature class P)."""

import csv

france = cnx.create_entity("Country", name="France")  # noqa: F821 (the shell's connection)
with open(__args__[0], newline="") as f:  # noqa: F821 (the shell's arguments)
    for row in csv.DictReader(f):
        cnx.create_entity("Location", name=row["name"], geonameid=int(row["geonameid"]),  # noqa: F821
                          latitude=float(row["latitude"]), longitude=float(row["longitude"]),
                          population=100_000, feature_class="P", country=france)
cnx.commit()  # noqa: F821
