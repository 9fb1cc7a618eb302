"""The seed's geonames schema, as its RQL query reads it: a Location's name, position, population and feature
class, and its country."""

from yams.buildobjs import EntityType, Float, Int, String, SubjectRelation


class Country(EntityType):
    name = String(required=True, maxsize=128)


class Location(EntityType):
    name = String(required=True, maxsize=256)
    geonameid = Int(required=True, unique=True)
    latitude = Float()
    longitude = Float()
    population = Int()
    feature_class = String(maxsize=1)
    country = SubjectRelation("Country", cardinality="?*")
