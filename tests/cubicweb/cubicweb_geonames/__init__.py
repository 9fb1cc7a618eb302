"""A minimal cube with the seed's ``Location`` type: what bigalign's tests query by RQL."""
