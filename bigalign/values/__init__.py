"""Values: the library that normalizers, metrics and blockings share.

:mod:`~bigalign.values.columns` (what is missing; work once per distinct
value), :mod:`~bigalign.values.text` (blank text, joined columns, accents,
Nazca's words), :mod:`~bigalign.values.dates`, :mod:`~bigalign.values.soundex`
and :mod:`~bigalign.values.geo` (numbers, coordinates, great-circle angles).
"""
