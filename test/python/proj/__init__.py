"""A Python package the interop tests use as the home of errors raised in TypeScript."""
