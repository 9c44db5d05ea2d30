"""Use cases, one module per noun. Each takes a Session and plain values and returns plain
values or dataclasses; none prints or imports Click."""
