"""Compiled reads: a GraphQL selection of known types turned into one PostgreSQL statement that
returns the JSON of the answer (authorization in the statement), as PostGraphile does.

- `selection.py`: the transport-neutral selection tree (what the GraphQL layer hands over);
- `shapes.py`: each compilable GraphQL type as SQL (its columns, enums, datetimes, relations);
- `roots.py`: each compilable root field, with its authorization and arguments as bind parameters;
- `statement.py`: a whole operation as one statement, and its execution on the driver pool
  (cursors are signed in Python afterwards, in one pass over the text).

Anything not described here is not compiled: the caller runs the ordinary resolvers instead.
"""
