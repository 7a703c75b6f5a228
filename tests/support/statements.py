"""Statements seen by a ``before_cursor_execute`` listener, named alike on both databases."""


def head(statement: str) -> str:
    """The statement's first three words (``INSERT INTO person``, ``UPDATE person SET``); a PostgreSQL ``COPY t
    (…) FROM STDIN`` (how ``kernel.postgres_rows`` inserts many rows) is named as the insert it is."""
    words = statement.split()
    if words[:1] == ["COPY"]:
        return f"INSERT INTO {words[1].strip(chr(34))}"
    return " ".join(words[:3])
