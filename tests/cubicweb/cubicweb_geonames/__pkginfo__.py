modname = "cubicweb_geonames"
distname = "cubicweb-geonames"
numversion = (0, 1, 0)
version = ".".join(str(n) for n in numversion)
license = "LGPL"
author = "bigalign"
author_email = "bigalign@localhost"
description = "Locations and their country, as the seed's geonames instance has them"
web = ""
__depends__ = {"cubicweb": ">= 5.0.0", "cubicweb-web": ">= 1.6.0"}
__recommends__: dict = {}
