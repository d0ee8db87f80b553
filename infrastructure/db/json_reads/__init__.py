"""Compiled reads: a GraphQL selection of known types turned into one PostgreSQL statement that
returns the JSON of the answer (authorization in the statement), as PostGraphile does.

- `selection.py`: the transport-neutral selection tree (what the GraphQL layer hands over);
- `sql_text.py`: aliases and placeholders of one statement, literals, scalars as the resolvers write them;
- `shapes.py`: each compilable GraphQL type as SQL (its columns, enums, datetimes, relations);
  `board_shapes.py`: boards as their members see them; `connections.py`: Relay pages;
- `arguments.py`: what each root binds, by slot name;
- `roots.py`: each compilable root field, with its authorization and arguments as bind parameters,
  and a whole operation as one statement;
- `marks.py`: cursors and download URLs marked in the JSON, for Python to sign afterwards;
- `runner.py`: execution on the driver pool (cursors signed in one pass over the text).

Anything not described here is not compiled: the caller runs the ordinary resolvers instead.
"""
